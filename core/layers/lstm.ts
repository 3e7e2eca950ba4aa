/**
 * lstm — PyTorch nn.LSTM (one layer, batch_first, no projection), gates in PyTorch's order
 * i, f, g, o. Config, shapes, parameters and the initial-state API: see rnn.ts (shared base);
 * here G = 4, so weight_ih [4H, in], weight_hh [4H, H], bias_ih [4H], bias_hh [4H]
 * (rows 0..H-1 input gate i, H..2H-1 forget gate f, 2H..3H-1 cell candidate g, 3H..4H-1 output gate o).
 * PyTorch's proj_size is accepted only as 0.
 *
 * Canonical arithmetic (kernels/linear.ts for products, core/math elsewhere; every result
 * rounded to f32 and flushed below 2^-126), per sample b and step t, j = 0..H-1:
 *   gi = W_ih x_t + b_ih, gh = W_hh h_{t-1} + b_hh   (each: sum over k ascending from +0, then + bias)
 *   a_q[j] = gi[qH + j] + gh[qH + j]                 (q = 0..3 for i, f, g, o)
 *   i = sigmoid(a_i), f = sigmoid(a_f), g = tanh(a_g), o = sigmoid(a_o)
 *   c_t = (f * c_{t-1}) + (i * g)
 *   h_t = o * tanh(c_t)
 * with h_0, c_0 = the initial state (zeros unless set).
 * Backward through time, t = seq-1 down to 0, with dhrec = dcrec = +0 before the last step:
 *   dh   = dy[b, t, j] + dhrec[j]
 *   tc   = tanh(c_t)
 *   dc   = dcrec[j] + (dh * o) * (1 - tc * tc)
 *   da_i = ((dc * g) * (1 - i)) * i
 *   da_f = ((dc * c_{t-1}) * (1 - f)) * f
 *   da_g = (dc * i) * (1 - g * g)
 *   da_o = ((dh * tc) * (1 - o)) * o
 *   dcrec[j] = dc * f
 *   dhrec = da · W_hh   (sum over the 4H gate rows ascending)
 *   dL/dh0, dL/dc0 = dhrec, dcrec after t = 0.
 *   dx and the parameter gradients as rnn.ts: dx[b, t, k] = sum over gate rows ascending of
 *   da * W_ih; each parameter's grad += one row sum over (b ascending, then t ascending), with
 *   bias_ih and bias_hh both receiving the row sum of da.
 */
import { fail } from '../errors.ts';
import type { FieldReader } from '../fields.ts';
import { putTimeRows, sigmoidGrad, tanhGrad } from '../kernels/recurrent.ts';
import { add, mul, sigmoid, tanh } from '../math/index.ts';
import { Tensor } from '../tensor.ts';
import type { BuildContext, LayerKind, Shape } from './layer.ts';
import { type RecurrentConfig, RecurrentLayer, parseRecurrent, recurrentInputShape } from './rnn.ts';

export interface LstmConfig extends RecurrentConfig {
  type: 'lstm';
}

export const lstmKind: LayerKind = {
  type: 'lstm',
  aliases: [],
  parse(f: FieldReader): LstmConfig {
    const proj = f.optInt('proj_size', { min: 0 });
    if (proj) fail('UNSUPPORTED', 'LSTM projections (proj_size > 0) are not supported; add a dense layer after the lstm', f.at('proj_size'));
    return parseRecurrent(f, 'lstm') as LstmConfig;
  },
  inferInputShape: recurrentInputShape,
  build(cfg, inputShape, ctx) {
    return new LstmLayer(cfg as LstmConfig, inputShape, ctx);
  },
};

interface LstmSaved {
  batch: number;
  x: Float32Array;
  /** Gate activations i, f, g, o for every (b, t): [B, S, 4H]. */
  act: Float32Array;
  /** tanh(c_t): [B, S, H]. */
  tc: Float32Array;
  /** c_{t-1}: [B, S, H]. */
  cprev: Float32Array;
  /** h_{t-1}: [B, S, H]. */
  hprev: Float32Array;
}

class LstmLayer extends RecurrentLayer {
  readonly type = 'lstm';

  constructor(cfg: LstmConfig, inputShape: Shape, ctx: BuildContext) {
    super(cfg, inputShape, ctx, 4, true);
  }

  forward(x: Tensor) {
    const B = x.shape[0];
    const S = this.seq, H = this.hidden, G = 4 * H;
    const start = this.startState(B);
    let h: Float32Array = start.h;
    let c: Float32Array = start.c;
    const gi = this.inputProjection(x.data, B);
    const act = new Float32Array(B * S * G);
    const y = new Float32Array(B * S * H);
    const tc = new Float32Array(B * S * H);
    const cprev = new Float32Array(B * S * H);
    const hprev = new Float32Array(B * S * H);
    for (let t = 0; t < S; t++) {
      putTimeRows(hprev, h, B, S, t, H);
      putTimeRows(cprev, c, B, S, t, H);
      const gh = this.hiddenProjection(h, B);
      const hn = new Float32Array(B * H);
      const cn = new Float32Array(B * H);
      for (let b = 0; b < B; b++) {
        const row = b * S + t;
        const gio = row * G, gho = b * G, ao = row * G;
        for (let j = 0; j < H; j++) {
          const i = sigmoid(add(gi[gio + j], gh[gho + j]));
          const f = sigmoid(add(gi[gio + H + j], gh[gho + H + j]));
          const g = tanh(add(gi[gio + 2 * H + j], gh[gho + 2 * H + j]));
          const o = sigmoid(add(gi[gio + 3 * H + j], gh[gho + 3 * H + j]));
          const cv = add(mul(f, c[b * H + j]), mul(i, g));
          const tcv = tanh(cv);
          act[ao + j] = i;
          act[ao + H + j] = f;
          act[ao + 2 * H + j] = g;
          act[ao + 3 * H + j] = o;
          tc[row * H + j] = tcv;
          cn[b * H + j] = cv;
          hn[b * H + j] = mul(o, tcv);
        }
      }
      putTimeRows(y, hn, B, S, t, H);
      h = hn;
      c = cn;
    }
    this.recordFinal(B, h, c);
    const saved: LstmSaved = { batch: B, x: x.data, act, tc, cprev, hprev };
    return { y: new Tensor([B, S, H], y), saved };
  }

  backward(s: unknown, dy: Tensor) {
    const { batch: B, x, act, tc, cprev, hprev } = s as LstmSaved;
    const S = this.seq, H = this.hidden, G = 4 * H;
    const g = dy.data;
    const da = new Float32Array(B * S * G);
    let dhrec: Float32Array = new Float32Array(B * H);
    let dcrec: Float32Array = new Float32Array(B * H);
    for (let t = S - 1; t >= 0; t--) {
      const step = new Float32Array(B * G);
      const dcn = new Float32Array(B * H);
      for (let b = 0; b < B; b++) {
        const row = b * S + t;
        const ao = row * G, so = b * G;
        for (let j = 0; j < H; j++) {
          const i = act[ao + j], f = act[ao + H + j], gg = act[ao + 2 * H + j], o = act[ao + 3 * H + j];
          const tcv = tc[row * H + j];
          const dh = add(g[row * H + j], dhrec[b * H + j]);
          const dc = add(dcrec[b * H + j], tanhGrad(mul(dh, o), tcv));
          step[so + j] = sigmoidGrad(mul(dc, gg), i);
          step[so + H + j] = sigmoidGrad(mul(dc, cprev[row * H + j]), f);
          step[so + 2 * H + j] = tanhGrad(mul(dc, i), gg);
          step[so + 3 * H + j] = sigmoidGrad(mul(dh, tcv), o);
          dcn[b * H + j] = mul(dc, f);
        }
      }
      putTimeRows(da, step, B, S, t, G);
      dhrec = this.hiddenGrad(step, B);
      dcrec = dcn;
    }
    this.recordGrad(B, dhrec, dcrec);
    const dx = this.inputGrad(da, B);
    this.paramGrads(da, x, da, hprev, B);
    return { dx: new Tensor([B, ...this.inputShape], dx) };
  }
}
