/**
 * gru — PyTorch nn.GRU (one layer, batch_first), gates in PyTorch's order r, z, n.
 * Config, shapes, parameters and the initial-state API: see rnn.ts (shared base); here G = 3,
 * so weight_ih [3H, in], weight_hh [3H, H], bias_ih [3H], bias_hh [3H]
 * (rows 0..H-1 reset gate r, H..2H-1 update gate z, 2H..3H-1 candidate n).
 *
 * Canonical arithmetic (kernels/linear.ts for products, core/math elsewhere; every result
 * rounded to f32 and flushed below 2^-126), per sample b and step t, j = 0..H-1, following
 * PyTorch's documented formula (b_hn stays inside the reset product):
 *   gi = W_ih x_t + b_ih, gh = W_hh h_{t-1} + b_hh   (each: sum over k ascending from +0, then + bias)
 *   r = sigmoid(gi_r + gh_r)
 *   z = sigmoid(gi_z + gh_z)
 *   n = tanh(gi_n + r * gh_n)
 *   h_t = ((1 - z) * n) + (z * h_{t-1})
 * with h_0 = the initial state (zeros unless set).
 * Backward through time, t = seq-1 down to 0, with dhrec = +0 before the last step:
 *   dh   = dy[b, t, j] + dhrec[j]
 *   da_n = (dh * (1 - z)) * (1 - n * n)
 *   da_z = ((dh * (h_{t-1} - n)) * (1 - z)) * z
 *   da_r = (((da_n * gh_n) * (1 - r)) * r)
 *   input side  dgi = [da_r, da_z, da_n]
 *   hidden side dgh = [da_r, da_z, da_n * r]
 *   dhrec[k] = (sum over the 3H gate rows j ascending of dgh[j] * W_hh[j, k]) + (dh[k] * z[k])
 *   dL/dh0 = dhrec after t = 0.
 *   dx[b, t, k] = sum over gate rows ascending of dgi * W_ih; weight_ih / bias_ih grads from
 *   dgi and x, weight_hh / bias_hh grads from dgh and h_{t-1}; each grad += one row sum over
 *   (b ascending, then t ascending), as rnn.ts.
 */
import type { FieldReader } from '../fields.ts';
import { putTimeRows, sigmoidGrad, tanhGrad } from '../kernels/recurrent.ts';
import { add, mul, sigmoid, sub, tanh } from '../math/index.ts';
import { Tensor } from '../tensor.ts';
import type { BuildContext, LayerKind, Shape } from './layer.ts';
import { type RecurrentConfig, RecurrentLayer, parseRecurrent, recurrentInputShape } from './rnn.ts';

export interface GruConfig extends RecurrentConfig {
  type: 'gru';
}

export const gruKind: LayerKind = {
  type: 'gru',
  aliases: [],
  parse(f: FieldReader): GruConfig {
    return parseRecurrent(f, 'gru') as GruConfig;
  },
  inferInputShape: recurrentInputShape,
  build(cfg, inputShape, ctx) {
    return new GruLayer(cfg as GruConfig, inputShape, ctx);
  },
};

interface GruSaved {
  batch: number;
  x: Float32Array;
  /** r, z, n for every (b, t): [B, S, 3H]. */
  act: Float32Array;
  /** gh_n = (W_hh h_{t-1} + b_hh) rows 2H..3H-1: [B, S, H]. */
  ghn: Float32Array;
  /** h_{t-1}: [B, S, H]. */
  hprev: Float32Array;
}

class GruLayer extends RecurrentLayer {
  readonly type = 'gru';

  constructor(cfg: GruConfig, inputShape: Shape, ctx: BuildContext) {
    super(cfg, inputShape, ctx, 3, false);
  }

  forward(x: Tensor) {
    const B = x.shape[0];
    const S = this.seq, H = this.hidden, G = 3 * H;
    let h: Float32Array = this.startState(B).h;
    const gi = this.inputProjection(x.data, B);
    const act = new Float32Array(B * S * G);
    const ghn = new Float32Array(B * S * H);
    const y = new Float32Array(B * S * H);
    const hprev = new Float32Array(B * S * H);
    for (let t = 0; t < S; t++) {
      putTimeRows(hprev, h, B, S, t, H);
      const gh = this.hiddenProjection(h, B);
      const hn = new Float32Array(B * H);
      for (let b = 0; b < B; b++) {
        const row = b * S + t;
        const gio = row * G, gho = b * G;
        for (let j = 0; j < H; j++) {
          const r = sigmoid(add(gi[gio + j], gh[gho + j]));
          const z = sigmoid(add(gi[gio + H + j], gh[gho + H + j]));
          const ghnv = gh[gho + 2 * H + j];
          const n = tanh(add(gi[gio + 2 * H + j], mul(r, ghnv)));
          act[gio + j] = r;
          act[gio + H + j] = z;
          act[gio + 2 * H + j] = n;
          ghn[row * H + j] = ghnv;
          hn[b * H + j] = add(mul(sub(1, z), n), mul(z, h[b * H + j]));
        }
      }
      putTimeRows(y, hn, B, S, t, H);
      h = hn;
    }
    this.recordFinal(B, h, null);
    const saved: GruSaved = { batch: B, x: x.data, act, ghn, hprev };
    return { y: new Tensor([B, S, H], y), saved };
  }

  backward(s: unknown, dy: Tensor) {
    const { batch: B, x, act, ghn, hprev } = s as GruSaved;
    const S = this.seq, H = this.hidden, G = 3 * H;
    const g = dy.data;
    const dgi = new Float32Array(B * S * G);
    const dgh = new Float32Array(B * S * G);
    let dhrec: Float32Array = new Float32Array(B * H);
    for (let t = S - 1; t >= 0; t--) {
      const stepI = new Float32Array(B * G);
      const stepH = new Float32Array(B * G);
      const direct = new Float32Array(B * H);
      for (let b = 0; b < B; b++) {
        const row = b * S + t;
        const ao = row * G, so = b * G;
        for (let j = 0; j < H; j++) {
          const r = act[ao + j], z = act[ao + H + j], n = act[ao + 2 * H + j];
          const dh = add(g[row * H + j], dhrec[b * H + j]);
          const dan = tanhGrad(mul(dh, sub(1, z)), n);
          const daz = sigmoidGrad(mul(dh, sub(hprev[row * H + j], n)), z);
          const dar = sigmoidGrad(mul(dan, ghn[row * H + j]), r);
          stepI[so + j] = dar;
          stepI[so + H + j] = daz;
          stepI[so + 2 * H + j] = dan;
          stepH[so + j] = dar;
          stepH[so + H + j] = daz;
          stepH[so + 2 * H + j] = mul(dan, r);
          direct[b * H + j] = mul(dh, z);
        }
      }
      putTimeRows(dgi, stepI, B, S, t, G);
      putTimeRows(dgh, stepH, B, S, t, G);
      const viaW = this.hiddenGrad(stepH, B);
      for (let k = 0; k < B * H; k++) viaW[k] = add(viaW[k], direct[k]);
      dhrec = viaW;
    }
    this.recordGrad(B, dhrec, null);
    const dx = this.inputGrad(dgi, B);
    this.paramGrads(dgi, x, dgh, hprev, B);
    return { dx: new Tensor([B, ...this.inputShape], dx) };
  }
}
