import { describe, expect, test } from 'vitest';
import { Network } from '../network.ts';
import { Prng } from '../prng.ts';
import { RecurrentLayer } from './rnn.ts';
import { gradcheck, layerNet, randomTensor, randomizeParams } from '../../tests/helpers/gradcheck.ts';
import { closeness } from '../../tests/helpers/reference64.ts';

type Arr = ArrayLike<number>;
const sig = (v: number): number => 1 / (1 + Math.exp(-v));

/**
 * Float64 PyTorch nn.GRU (batch_first, gates r, z, n):
 * n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - z) * n + z * h.
 */
function gru64(x: Arr, B: number, S: number, inF: number, H: number, wih: Arr, whh: Arr, bih: Arr | null, bhh: Arr | null, h0: Arr | null): number[] {
  const out: number[] = new Array(B * S * H).fill(0);
  for (let b = 0; b < B; b++) {
    let h = Array.from({ length: H }, (_, j) => (h0 ? h0[b * H + j] : 0));
    for (let t = 0; t < S; t++) {
      const gi: number[] = [], gh: number[] = [];
      for (let r = 0; r < 3 * H; r++) {
        let si = bih ? bih[r] : 0;
        for (let k = 0; k < inF; k++) si += wih[r * inF + k] * x[(b * S + t) * inF + k];
        let sh = bhh ? bhh[r] : 0;
        for (let k = 0; k < H; k++) sh += whh[r * H + k] * h[k];
        gi.push(si);
        gh.push(sh);
      }
      const nh: number[] = [];
      for (let j = 0; j < H; j++) {
        const r = sig(gi[j] + gh[j]), z = sig(gi[H + j] + gh[H + j]);
        const n = Math.tanh(gi[2 * H + j] + r * gh[2 * H + j]);
        nh.push((1 - z) * n + z * h[j]);
      }
      h = nh;
      for (let j = 0; j < H; j++) out[(b * S + t) * H + j] = h[j];
    }
  }
  return out;
}

const gru = (inF: number, H: number, extra: Record<string, unknown> = {}) => ({ type: 'gru', input_size: inF, hidden_size: H, ...extra });
const weights = (net: Network) => Object.fromEntries(net.parameters().map((p) => [p.name.split('.').pop()!, p.param.value.data]));

describe('gru: forward vs float64', () => {
  const cases: [number, number, number, number, boolean, boolean][] = [
    // batch, seq, in, hidden, bias, initial state
    [2, 5, 3, 4, true, false], [1, 1, 1, 1, true, false], [3, 7, 5, 3, true, true], [2, 4, 2, 6, false, false], [1, 9, 4, 1, false, true],
  ];
  for (const [B, S, inF, H, bias, state] of cases) {
    test(`batch ${B} seq ${S} in ${inF} hidden ${H} bias ${bias} initial state ${state}`, () => {
      const net = Network.fromJSON({ input_shape: [S, inF], layers: [gru(inF, H, { bias })] });
      randomizeParams(net, 4, [-1, 1]);
      const x = randomTensor([B, S, inF], new Prng(9), [-2, 2]);
      const h0 = state ? randomTensor([B, H], new Prng(1), [-1, 1]) : null;
      (net.nodes[0].layer as RecurrentLayer).setInitialState(h0);
      const w = weights(net);
      const ref = gru64(x.data, B, S, inF, H, w.weight_ih, w.weight_hh, w.bias_ih ?? null, w.bias_hh ?? null, h0?.data ?? null);
      expect(closeness(net.forward(x).data, ref, 1e-5, 1e-6)).toBeLessThanOrEqual(1);
    });
  }

  test('b_hn sits inside the reset product (PyTorch), not outside', () => {
    // With W = 0 and only bias_hh's n rows set, n = tanh(r * b_hn) with r = sigmoid(0) = 0.5.
    const net = Network.fromJSON({ input_shape: [1, 1], layers: [gru(1, 1)] });
    for (const p of net.parameters()) p.param.value.data.fill(0);
    const bhh = net.parameters().find((p) => p.name === 'layers.0.bias_hh')!.param.value.data;
    bhh[2] = 2;
    const y = net.forward(randomTensor([1, 1, 1], new Prng(1), [-1, 1])).data[0];
    expect(Math.abs(y - 0.5 * Math.tanh(1))).toBeLessThan(1e-6); // h = (1 - z) * n, z = 0.5
  });
});

describe('gru: gradient check', () => {
  const cases: [number, number, number, boolean][] = [
    // seq, in, hidden, bias
    [5, 3, 4, true], [1, 1, 1, true], [1, 4, 3, true], [6, 1, 1, false], [3, 7, 5, true], [4, 2, 3, false], [2, 5, 1, true],
  ];
  for (const [S, inF, H, bias] of cases) {
    for (const seed of [1, 2, 3]) {
      test(`seq ${S} in ${inF} hidden ${H} bias ${bias} seed ${seed}`, () => {
        const r = gradcheck(layerNet(gru(inF, H, { bias }), [S, inF]), { seed, batch: 1 + (seed % 3), randomizeParams: [-1, 1] });
        expect(r.ok, r.report()).toBe(true);
      });
    }
  }

  test('gru -> dense in a network, Loom flat layout', () => {
    const cfg = { layers: [{ type: 'dense', input_height: 4, output_height: 10, activation: 'tanh' }, gru(2, 3, { seq_length: 5 }), { type: 'dense', input_height: 3, output_height: 2 }] };
    const r = gradcheck(cfg, { seed: 4, batch: 2, randomizeParams: [-1, 1] });
    expect(r.ok, r.report()).toBe(true);
    expect(Network.fromJSON(cfg).outputShape).toEqual([5, 2]);
  });
});
