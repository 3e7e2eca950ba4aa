import { describe, expect, test } from 'vitest';
import { Network } from '../network.ts';
import { Prng } from '../prng.ts';
import { Tensor } from '../tensor.ts';
import { train } from '../train/index.ts';
import { RecurrentLayer } from './rnn.ts';
import { gradcheck, layerNet, randomTensor, randomizeParams } from '../../tests/helpers/gradcheck.ts';
import { closeness } from '../../tests/helpers/reference64.ts';

type Arr = ArrayLike<number>;
const sig = (v: number): number => 1 / (1 + Math.exp(-v));

/** Float64 PyTorch nn.LSTM (batch_first, gates i, f, g, o): x [B, S, in] -> [B, S, H]. */
function lstm64(x: Arr, B: number, S: number, inF: number, H: number, wih: Arr, whh: Arr, bih: Arr | null, bhh: Arr | null, h0: Arr | null, c0: Arr | null): number[] {
  const out: number[] = new Array(B * S * H).fill(0);
  for (let b = 0; b < B; b++) {
    let h = Array.from({ length: H }, (_, j) => (h0 ? h0[b * H + j] : 0));
    let c = Array.from({ length: H }, (_, j) => (c0 ? c0[b * H + j] : 0));
    for (let t = 0; t < S; t++) {
      const a: number[] = [];
      for (let r = 0; r < 4 * H; r++) {
        let s = (bih ? bih[r] : 0) + (bhh ? bhh[r] : 0);
        for (let k = 0; k < inF; k++) s += wih[r * inF + k] * x[(b * S + t) * inF + k];
        for (let k = 0; k < H; k++) s += whh[r * H + k] * h[k];
        a.push(s);
      }
      const nc: number[] = [], nh: number[] = [];
      for (let j = 0; j < H; j++) {
        const i = sig(a[j]), f = sig(a[H + j]), g = Math.tanh(a[2 * H + j]), o = sig(a[3 * H + j]);
        nc.push(f * c[j] + i * g);
        nh.push(o * Math.tanh(nc[j]));
      }
      h = nh;
      c = nc;
      for (let j = 0; j < H; j++) out[(b * S + t) * H + j] = h[j];
    }
  }
  return out;
}

const lstm = (inF: number, H: number, extra: Record<string, unknown> = {}) => ({ type: 'lstm', input_size: inF, hidden_size: H, ...extra });
const weights = (net: Network, i = 0) => Object.fromEntries(net.parameters().filter((p) => p.name.startsWith(`layers.${i}.`)).map((p) => [p.name.split('.').pop()!, p.param.value.data]));

describe('lstm: forward vs float64', () => {
  const cases: [number, number, number, number, boolean, boolean][] = [
    // batch, seq, in, hidden, bias, initial state
    [2, 5, 3, 4, true, false], [1, 1, 1, 1, true, false], [3, 7, 5, 3, true, true], [2, 4, 2, 6, false, false], [1, 9, 4, 1, false, true],
  ];
  for (const [B, S, inF, H, bias, state] of cases) {
    test(`batch ${B} seq ${S} in ${inF} hidden ${H} bias ${bias} initial state ${state}`, () => {
      const net = Network.fromJSON({ input_shape: [S, inF], layers: [lstm(inF, H, { bias })] });
      randomizeParams(net, 4, [-1, 1]);
      const x = randomTensor([B, S, inF], new Prng(9), [-2, 2]);
      const h0 = state ? randomTensor([B, H], new Prng(1), [-1, 1]) : null;
      const c0 = state ? randomTensor([B, H], new Prng(2), [-2, 2]) : null;
      (net.nodes[0].layer as RecurrentLayer).setInitialState(h0, c0);
      const w = weights(net);
      const ref = lstm64(x.data, B, S, inF, H, w.weight_ih, w.weight_hh, w.bias_ih ?? null, w.bias_hh ?? null, h0?.data ?? null, c0?.data ?? null);
      expect(closeness(net.forward(x).data, ref, 1e-5, 1e-6)).toBeLessThanOrEqual(1);
      // The final state is the last output row and the last cell.
      const fin = (net.nodes[0].layer as RecurrentLayer).finalState()!;
      expect(closeness(fin.h.data, Array.from({ length: B * H }, (_, i) => ref[(Math.floor(i / H) * S + S - 1) * H + (i % H)]), 1e-5, 1e-6)).toBeLessThanOrEqual(1);
      expect(fin.c!.shape).toEqual([B, H]);
    });
  }
});

describe('lstm: gradient check', () => {
  const cases: [number, number, number, boolean][] = [
    // seq, in, hidden, bias
    [5, 3, 4, true], [1, 1, 1, true], [1, 4, 3, true], [6, 1, 1, false], [3, 7, 5, true], [4, 2, 3, false], [2, 5, 1, true],
  ];
  for (const [S, inF, H, bias] of cases) {
    for (const seed of [1, 2, 3]) {
      test(`seq ${S} in ${inF} hidden ${H} bias ${bias} seed ${seed}`, () => {
        const r = gradcheck(layerNet(lstm(inF, H, { bias }), [S, inF]), { seed, batch: 1 + (seed % 3), randomizeParams: [-1, 1] });
        expect(r.ok, r.report()).toBe(true);
      });
    }
  }

  test('large pre-activations (saturated gates) still check', () => {
    const r = gradcheck(layerNet(lstm(3, 2), [4, 3]), { seed: 5, randomizeParams: [-2.5, 2.5], inputRange: [-3, 3] });
    expect(r.ok, r.report()).toBe(true);
  });
});

describe('lstm: sequence models in a network', () => {
  test('lstm -> dense per step, and inside sequential / parallel, gradient-check', () => {
    const nets: unknown[] = [
      { input_shape: [6, 3], layers: [lstm(3, 5), { type: 'dense', input_height: 5, output_height: 2, activation: 'tanh' }] },
      // Loom's flat style: a dense feeds 4 steps x 3 features, the last dense reads all 4 x 5 outputs.
      { layers: [{ type: 'dense', input_height: 6, output_height: 12, activation: 'tanh' }, lstm(3, 5, { seq_length: 4 }), { type: 'dense', input_height: 20, output_height: 2 }] },
      // Two stacked layers (PyTorch's num_layers = 2) and a residual over the second.
      { input_shape: [4, 3], layers: [lstm(3, 4), lstm(4, 4), { type: 'residual' }, { type: 'layer_norm', norm_size: 4 }] },
      { input_shape: [3, 2], layers: [{ type: 'sequential', layers: [{ type: 'gru', input_size: 2, hidden_size: 3 }, lstm(3, 2)] }] },
      { input_shape: [3, 2], layers: [{ type: 'parallel', combine_mode: 'concat', branches: [lstm(2, 2), { type: 'gru', input_size: 2, hidden_size: 3 }, { type: 'rnn', input_size: 2, hidden_size: 1 }] }] },
    ];
    for (const [i, cfg] of nets.entries()) {
      const r = gradcheck(cfg, { seed: 10 + i, batch: 2, randomizeParams: [-1, 1], maxPerTensor: 24 });
      expect(r.ok, `${JSON.stringify(cfg)}\n${r.report()}`).toBe(true);
    }
    expect(Network.fromJSON(nets[4]).outputShape).toEqual([3, 6]);
  });

  test('an lstm -> dense model learns a delayed-copy task', () => {
    // Target at step t is the input at step t-1 (0 at t = 0): needs memory across steps.
    const N = 32, S = 5;
    const x = randomTensor([N, S, 1], new Prng(21), [-1, 1]);
    const y = new Float32Array(N * S);
    for (let n = 0; n < N; n++) for (let t = 1; t < S; t++) y[n * S + t] = x.data[n * S + t - 1];
    const net = Network.fromJSON({ input_shape: [S, 1], layers: [lstm(1, 8), { type: 'dense', input_height: 8, output_height: 1 }] }, { seed: 3 });
    const r = train(net, { inputs: x, targets: new Tensor([N, S, 1], y) }, { epochs: 30, batchSize: 8, loss: 'mse', optimizer: { type: 'adamw', lr: 0.03 }, seed: 1 });
    expect(r.epochLosses[r.epochLosses.length - 1]).toBeLessThan(0.1 * r.epochLosses[0]);
  });
});
