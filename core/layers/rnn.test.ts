/**
 * rnn, plus what rnn, lstm and gru share (rnn.ts's base): config, aliases, the sequence shape
 * rule, validation, the initial-state API (for all three types), determinism.
 */
import { describe, expect, test } from 'vitest';
import { Network } from '../network.ts';
import { Prng } from '../prng.ts';
import { Tensor } from '../tensor.ts';
import { RecurrentLayer } from './rnn.ts';
import { gradcheck, layerNet, randomTensor, randomizeParams } from '../../tests/helpers/gradcheck.ts';
import { bits, closeness, errorOf } from '../../tests/helpers/reference64.ts';

type Arr = ArrayLike<number>;

/** Float64 PyTorch nn.RNN (batch_first): x [B, S, in] -> [B, S, H]. */
function rnn64(x: Arr, B: number, S: number, inF: number, H: number, wih: Arr, whh: Arr, bih: Arr | null, bhh: Arr | null, h0: Arr | null, relu: boolean): number[] {
  const out: number[] = new Array(B * S * H).fill(0);
  for (let b = 0; b < B; b++) {
    let h = Array.from({ length: H }, (_, j) => (h0 ? h0[b * H + j] : 0));
    for (let t = 0; t < S; t++) {
      const next: number[] = [];
      for (let j = 0; j < H; j++) {
        let a = (bih ? bih[j] : 0) + (bhh ? bhh[j] : 0);
        for (let k = 0; k < inF; k++) a += wih[j * inF + k] * x[(b * S + t) * inF + k];
        for (let k = 0; k < H; k++) a += whh[j * H + k] * h[k];
        next.push(relu ? Math.max(a, 0) : Math.tanh(a));
      }
      h = next;
      for (let j = 0; j < H; j++) out[(b * S + t) * H + j] = h[j];
    }
  }
  return out;
}

const rnn = (extra: Record<string, unknown> = {}) => ({ type: 'rnn', input_size: 3, hidden_size: 4, ...extra });
const weights = (net: Network) => Object.fromEntries(net.parameters().map((p) => [p.name.split('.').pop()!, p.param.value.data]));
const recurrent = (net: Network, i = 0): RecurrentLayer => {
  const l = net.nodes[i].layer;
  if (!(l instanceof RecurrentLayer)) throw new Error('not a recurrent layer');
  return l;
};

describe('recurrent: config and shapes', () => {
  test('defaults, params, names, shapes, init', () => {
    const net = Network.fromJSON({ layers: [rnn({ seq_length: 5 })] });
    expect(net.nodes[0].layer.config).toEqual({ type: 'rnn', input_size: 3, hidden_size: 4, seq_length: 5, bias: true, nonlinearity: 'tanh' });
    expect(net.inputShape).toEqual([5, 3]);
    expect(net.outputShape).toEqual([5, 4]);
    expect(net.parameters().map((p) => [p.name, p.param.value.shape])).toEqual([
      ['layers.0.weight_ih', [4, 3]], ['layers.0.weight_hh', [4, 4]], ['layers.0.bias_ih', [4]], ['layers.0.bias_hh', [4]],
    ]);
    const w = weights(net);
    expect(Array.from(w.bias_ih)).toEqual([0, 0, 0, 0]);
    expect(Array.from(w.bias_hh)).toEqual([0, 0, 0, 0]);
    // weight_hh is orthogonal: W^T W = I (f32 accuracy).
    for (let a = 0; a < 4; a++) {
      for (let c = 0; c < 4; c++) {
        let s = 0;
        for (let r = 0; r < 4; r++) s += w.weight_hh[r * 4 + a] * w.weight_hh[r * 4 + c];
        expect(Math.abs(s - (a === c ? 1 : 0))).toBeLessThan(1e-5);
      }
    }
    // weight_ih is xavier uniform: |w| <= sqrt(6 / (3 + 4)).
    expect(Math.max(...Array.from(w.weight_ih, Math.abs))).toBeLessThanOrEqual(Math.sqrt(6 / 7));
  });

  test('gate counts: lstm 4H, gru 3H rows; bias false drops both biases', () => {
    for (const [type, g] of [['lstm', 4], ['gru', 3], ['rnn', 1]] as const) {
      const net = Network.fromJSON({ input_shape: [2, 3], layers: [{ type, input_size: 3, hidden_size: 5, bias: false }] });
      expect(net.parameters().map((p) => [p.name, p.param.value.shape])).toEqual([['layers.0.weight_ih', [g * 5, 3]], ['layers.0.weight_hh', [g * 5, 5]]]);
      expect(net.outputShape).toEqual([2, 5]);
    }
  });

  test("Loom's names and aliases", () => {
    for (const type of ['rnn', 'lstm', 'gru']) {
      const a = Network.fromJSON({ layers: [{ type, input_height: 3, output_height: 4, seq_len: 2 }] });
      expect(a.nodes[0].layer.config).toMatchObject({ type, input_size: 3, hidden_size: 4, seq_length: 2, bias: true });
      const b = Network.fromJSON({ layers: [{ type, d_model: 6, sequence_length: 3 }] });
      expect(b.nodes[0].layer.config).toMatchObject({ input_size: 6, hidden_size: 6, seq_length: 3 });
      const c = Network.fromJSON({ layers: [{ type, d_model: 6, input_size: 2, seq_length: 3, num_layers: 1, bidirectional: false, batch_first: true }] });
      expect(c.nodes[0].layer.config).toMatchObject({ input_size: 2, hidden_size: 6 });
      expect(Network.fromJSON({ layers: [{ type: type.toUpperCase(), input_size: 1, hidden_size: 1, seq_length: 1 }] }).nodes[0].layer.type).toBe(type);
    }
  });

  test("Loom's flat layout: dense 512 -> rnn (8 x 64) -> dense, and the sequence length inferred", () => {
    const loom = Network.fromJSON({ layers: [
      { type: 'dense', activation: 'leaky_relu', input_height: 24, output_height: 24 },
      { type: 'rnn', input_size: 4, hidden_size: 4, seq_length: 6 },
      { type: 'dense', activation: 'sigmoid', input_height: 24, output_height: 2 },
    ] });
    expect(loom.nodes[1].layer.inputShape).toEqual([24]);
    expect(loom.nodes[1].layer.outputShape).toEqual([6, 4]);
    expect(loom.outputShape).toEqual([2]);
    expect(Network.fromJSON({ input_shape: [12], layers: [rnn()] }).outputShape).toEqual([4, 4]);
    expect(Network.fromJSON({ input_shape: [7, 3], layers: [rnn()] }).outputShape).toEqual([7, 4]);
    // With seq_length, any shape of seq_length * input_size values is read as [seq, in].
    expect(Network.fromJSON({ input_shape: [2, 3, 2], layers: [rnn({ seq_length: 4 })] }).outputShape).toEqual([4, 4]);
    // A flat sample gives the same outputs as the same data shaped [seq, in].
    const a = Network.fromJSON({ input_shape: [15], layers: [rnn()] }, { seed: 3 });
    const b = Network.fromJSON({ input_shape: [5, 3], layers: [rnn()] }, { seed: 3 });
    const x = randomTensor([2, 15], new Prng(1), [-1, 1]);
    expect(bits(a.forward(x).data)).toEqual(bits(b.forward(x.reshape([2, 5, 3])).data));
  });

  test('validation errors name the layer and the field', () => {
    const cases: [Record<string, unknown>, string, string][] = [
      [{ type: 'rnn', hidden_size: 4 }, 'CONFIG_INVALID', 'input_size'],
      [{ type: 'lstm', input_size: 3 }, 'CONFIG_INVALID', 'hidden_size'],
      [{ type: 'gru', input_size: 0, hidden_size: 2 }, 'CONFIG_INVALID', 'input_size'],
      [{ type: 'gru', input_size: 3, hidden_size: 0 }, 'CONFIG_INVALID', 'hidden_size'],
      [{ type: 'lstm', input_size: 3, hidden_size: 2.5 }, 'CONFIG_INVALID', 'hidden_size'],
      [rnn({ seq_length: 0 }), 'CONFIG_INVALID', 'seq_length'],
      [rnn({ seq_length: -2 }), 'CONFIG_INVALID', 'seq_length'],
      [rnn({ input_height: 5 }), 'CONFIG_INVALID', 'input_height'],
      [rnn({ bias: 'yes' }), 'CONFIG_INVALID', 'bias'],
      [rnn({ nonlinearity: 'sigmoid' }), 'CONFIG_INVALID', 'nonlinearity'],
      [rnn({ num_layers: 2 }), 'UNSUPPORTED', 'num_layers'],
      [{ type: 'lstm', input_size: 3, hidden_size: 4, bidirectional: true }, 'UNSUPPORTED', 'bidirectional'],
      [{ type: 'gru', input_size: 3, hidden_size: 4, batch_first: false }, 'UNSUPPORTED', 'batch_first'],
      [{ type: 'lstm', input_size: 3, hidden_size: 4, proj_size: 2 }, 'UNSUPPORTED', 'proj_size'],
      // Shape rule: the previous dense gives [6].
      [rnn({ seq_length: 3 }), 'SHAPE_MISMATCH', 'seq_length'],
      [rnn({ input_size: 4, seq_length: 2 }), 'SHAPE_MISMATCH', 'input_size'],
      [rnn({ input_size: 4 }), 'SHAPE_MISMATCH', 'input_size'],
      [{ type: 'lstm', input_size: 5, hidden_size: 1 }, 'SHAPE_MISMATCH', 'input_size'],
    ];
    for (const [cfg, code, field] of cases) {
      const e = errorOf(() => Network.fromJSON({ layers: [{ type: 'dense', input_height: 2, output_height: 6 }, cfg] }));
      expect(e.code, JSON.stringify(cfg)).toBe(code);
      expect(e.message, JSON.stringify(cfg)).toContain('layers[1]');
      expect(e.message).toContain(`${cfg.type})`);
      expect(e.message).toMatch(new RegExp(`[.']${field}`));
    }
    // [seq, in] inputs: seq_length disagreeing with the steps, input_size with the features.
    const e1 = errorOf(() => Network.fromJSON({ input_shape: [5, 3], layers: [rnn({ seq_length: 4 })] }));
    expect([e1.code, e1.where]).toEqual(['SHAPE_MISMATCH', 'layers[0] (z0 y0 x0 l0, rnn).seq_length']);
    const e2 = errorOf(() => Network.fromJSON({ input_shape: [5, 2], layers: [rnn()] }));
    expect([e2.code, e2.where]).toEqual(['SHAPE_MISMATCH', 'layers[0] (z0 y0 x0 l0, rnn).input_size']);
    const e3 = errorOf(() => Network.fromJSON({ input_shape: [2, 3, 3], layers: [rnn()] }));
    expect([e3.code, e3.where]).toEqual(['SHAPE_MISMATCH', 'layers[0] (z0 y0 x0 l0, rnn).input_size']);
    // A first layer without seq_length cannot imply the input shape.
    const e4 = errorOf(() => Network.fromJSON({ layers: [rnn()] }));
    expect(e4.code).toBe('CONFIG_INVALID');
    expect(e4.message).toContain('input_shape');
  });

  test('the normalized config round-trips through the network JSON', () => {
    for (const cfg of [rnn({ nonlinearity: 'relu', bias: false }), { type: 'lstm', input_height: 3, output_height: 2, seq_length: 4 }, { type: 'gru', d_model: 3 }]) {
      const net = Network.fromJSON({ input_shape: [4, 3], layers: [cfg] });
      const again = Network.fromJSON(net.configJSON());
      expect(again.nodes[0].layer.config).toEqual(net.nodes[0].layer.config);
    }
  });
});

describe('rnn: forward vs float64', () => {
  const cases: [number, number, number, number, boolean, boolean][] = [
    // batch, seq, in, hidden, relu, bias
    [2, 5, 3, 4, false, true], [1, 1, 1, 1, false, true], [3, 7, 5, 3, true, true], [2, 4, 2, 6, false, false], [1, 9, 4, 1, true, false],
  ];
  for (const [B, S, inF, H, relu, bias] of cases) {
    test(`batch ${B} seq ${S} in ${inF} hidden ${H} ${relu ? 'relu' : 'tanh'} bias ${bias}`, () => {
      const net = Network.fromJSON({ input_shape: [S, inF], layers: [rnn({ input_size: inF, hidden_size: H, bias, nonlinearity: relu ? 'relu' : 'tanh' })] });
      randomizeParams(net, 4, [-0.8, 0.8]);
      const x = randomTensor([B, S, inF], new Prng(9), [-2, 2]);
      const w = weights(net);
      const ref = rnn64(x.data, B, S, inF, H, w.weight_ih, w.weight_hh, w.bias_ih ?? null, w.bias_hh ?? null, null, relu);
      expect(closeness(net.forward(x).data, ref, 1e-5, 1e-6)).toBeLessThanOrEqual(1);
    });
  }
});

describe('rnn: gradient check', () => {
  const cases: [number, number, number, boolean, boolean][] = [
    // seq, in, hidden, relu, bias
    [5, 3, 4, false, true], [1, 1, 1, false, true], [1, 4, 3, false, true], [6, 1, 1, false, false], [3, 7, 5, false, true],
    [4, 2, 3, true, true], [2, 5, 1, true, false],
  ];
  for (const [S, inF, H, relu, bias] of cases) {
    for (const seed of [1, 2, 3]) {
      test(`seq ${S} in ${inF} hidden ${H} ${relu ? 'relu' : 'tanh'} bias ${bias} seed ${seed}`, () => {
        const cfg = layerNet(rnn({ input_size: inF, hidden_size: H, bias, nonlinearity: relu ? 'relu' : 'tanh' }), [S, inF]);
        const r = gradcheck(cfg, { seed, batch: 1 + (seed % 3), randomizeParams: [-1, 1] });
        expect(r.ok, r.report()).toBe(true);
      });
    }
  }

  test('random shapes (all three types, flat and [seq, in] inputs)', () => {
    for (let seed = 1; seed <= 9; seed++) {
      const rng = new Prng(seed).fork('recurrent-shapes');
      const type = ['rnn', 'lstm', 'gru'][seed % 3];
      const S = 1 + rng.int(5), inF = 1 + rng.int(5), H = 1 + rng.int(5);
      const flat = rng.int(2) === 1;
      const cfg = layerNet({ type, input_size: inF, hidden_size: H, seq_length: S, bias: rng.int(4) > 0 }, flat ? [S * inF] : [S, inF]);
      const r = gradcheck(cfg, { seed, batch: 1 + rng.int(3), randomizeParams: [-1, 1], maxPerTensor: 24 });
      expect(r.ok, `${JSON.stringify(cfg)}\n${r.report()}`).toBe(true);
    }
  });
});

describe('recurrent: initial state', () => {
  for (const type of ['rnn', 'lstm', 'gru'] as const) {
    test(`${type}: a sequence split in two with the final state carried over gives the same bits`, () => {
      const B = 2, inF = 3, H = 4;
      const make = (S: number) => Network.fromJSON({ input_shape: [S, inF], layers: [{ type, input_size: inF, hidden_size: H }] }, { seed: 7 });
      const whole = make(7), first = make(3), second = make(4);
      for (const n of [whole, first, second]) randomizeParams(n, 5, [-0.9, 0.9]);
      const x = randomTensor([B, 7, inF], new Prng(2), [-2, 2]);
      const part = (from: number, to: number) => new Tensor([B, to - from, inF], Float32Array.from({ length: B * (to - from) * inF }, (_, i) => {
        const b = Math.floor(i / ((to - from) * inF)), r = i % ((to - from) * inF);
        return x.data[b * 7 * inF + from * inF + r];
      }));
      const y = whole.forward(x).data;
      const y1 = first.forward(part(0, 3)).data;
      const fin = recurrent(first).finalState()!;
      expect(fin.h.shape).toEqual([B, H]);
      expect(fin.c !== undefined).toBe(type === 'lstm');
      recurrent(second).setInitialState(fin.h, fin.c ?? null);
      const y2 = second.forward(part(3, 7)).data;
      for (let b = 0; b < B; b++) {
        expect(bits(y1.slice(b * 3 * H, (b + 1) * 3 * H))).toEqual(bits(y.slice(b * 7 * H, b * 7 * H + 3 * H)));
        expect(bits(y2.slice(b * 4 * H, (b + 1) * 4 * H))).toEqual(bits(y.slice(b * 7 * H + 3 * H, (b + 1) * 7 * H)));
      }
      // Clearing restores the zero state.
      recurrent(second).setInitialState(null);
      expect(recurrent(second).initialState()).toEqual({ h: null, c: null });
      const zero = make(4);
      randomizeParams(zero, 5, [-0.9, 0.9]);
      expect(bits(second.forward(part(3, 7)).data)).toEqual(bits(zero.forward(part(3, 7)).data));
    });

    test(`${type}: gradients w.r.t. the initial state match finite differences`, () => {
      const B = 2, S = 3, inF = 2, H = 3;
      const net = Network.fromJSON({ input_shape: [S, inF], layers: [{ type, input_size: inF, hidden_size: H }] }, { seed: 1 });
      randomizeParams(net, 3, [-1, 1]);
      const layer = recurrent(net);
      const x = randomTensor([B, S, inF], new Prng(4), [-1.5, 1.5]);
      const rw = randomTensor([B, S, H], new Prng(5), [-1, 1]);
      const h0 = randomTensor([B, H], new Prng(6), [-1, 1]);
      const c0 = type === 'lstm' ? randomTensor([B, H], new Prng(7), [-1, 1]) : null;
      layer.setInitialState(h0, c0);
      net.backward(net.forwardTape(x, { training: false, seed: 0 }), rw);
      const g = layer.initialStateGrad()!;
      expect(g.h.shape).toEqual([B, H]);
      const loss = (hh: Tensor, cc: Tensor | null): number => {
        layer.setInitialState(hh, cc);
        const y = net.forward(x).data;
        let s = 0;
        for (let i = 0; i < y.length; i++) s += y[i] * rw.data[i];
        return s;
      };
      const check = (which: 'h' | 'c', analytic: Float32Array) => {
        for (let i = 0; i < B * H; i++) {
          const base = which === 'h' ? h0 : c0!;
          const plus = base.clone(), minus = base.clone();
          plus.data[i] = Math.fround(base.data[i] + 1e-2);
          minus.data[i] = Math.fround(base.data[i] - 1e-2);
          const lp = which === 'h' ? loss(plus, c0) : loss(h0, plus);
          const lm = which === 'h' ? loss(minus, c0) : loss(h0, minus);
          const num = (lp - lm) / (plus.data[i] - minus.data[i]);
          expect(Math.abs(num - analytic[i]), `${which}0[${i}]`).toBeLessThanOrEqual(1e-3 + 1e-2 * Math.abs(num));
        }
      };
      check('h', g.h.data);
      if (type === 'lstm') check('c', g.c!.data);
      else expect(g.c).toBeUndefined();
    });
  }

  test('state validation: shape, cell, finiteness, batch (before any compute)', () => {
    const net = Network.fromJSON({ input_shape: [2, 3], layers: [{ type: 'gru', input_size: 3, hidden_size: 4 }] });
    const layer = recurrent(net);
    const at = 'layers[0] (z0 y0 x0 l0, gru).initial_state';
    let e = errorOf(() => layer.setInitialState(Tensor.zeros([2, 5])));
    expect([e.code, e.where]).toEqual(['SHAPE_MISMATCH', at]);
    expect(e.message).toContain('[batch, 4]');
    e = errorOf(() => layer.setInitialState(Tensor.zeros([4])));
    expect(e.code).toBe('SHAPE_MISMATCH');
    e = errorOf(() => layer.setInitialState(Tensor.zeros([2, 4]), Tensor.zeros([2, 4])));
    expect([e.code, e.where]).toEqual(['INPUT_INVALID', at]);
    e = errorOf(() => layer.setInitialState(Tensor.from([1, 4], [0, NaN, 0, 0])));
    expect(e.code).toBe('INPUT_INVALID');
    expect(layer.initialState()).toEqual({ h: null, c: null }); // failed calls change nothing
    layer.setInitialState(Tensor.zeros([3, 4]));
    e = errorOf(() => net.forward(Tensor.zeros([2, 2, 3])));
    expect([e.code, e.where]).toEqual(['SHAPE_MISMATCH', at]);
    expect(layer.finalState()).toBeNull();
    const lstm = recurrent(Network.fromJSON({ input_shape: [2, 3], layers: [{ type: 'lstm', input_size: 3, hidden_size: 4 }] }));
    e = errorOf(() => lstm.setInitialState(Tensor.zeros([2, 4]), Tensor.zeros([3, 4])));
    expect(e.code).toBe('SHAPE_MISMATCH');
    // c0 alone is fine (h0 zeros); subnormals are flushed on entry.
    lstm.setInitialState(null, Tensor.from([1, 4], [1e-40, -1e-40, 1, 2]));
    expect(Array.from(lstm.initialState().c!.data)).toEqual([0, -0, 1, 2]);
  });

  test('a given initial state matches the float64 reference (rnn)', () => {
    const B = 2, S = 4, inF = 3, H = 3;
    const net = Network.fromJSON({ input_shape: [S, inF], layers: [rnn({ hidden_size: H })] });
    randomizeParams(net, 8, [-0.7, 0.7]);
    const h0 = randomTensor([B, H], new Prng(3), [-1, 1]);
    recurrent(net).setInitialState(h0);
    const x = randomTensor([B, S, inF], new Prng(2), [-2, 2]);
    const w = weights(net);
    const ref = rnn64(x.data, B, S, inF, H, w.weight_ih, w.weight_hh, w.bias_ih, w.bias_hh, h0.data, false);
    expect(closeness(net.forward(x).data, ref, 1e-5, 1e-6)).toBeLessThanOrEqual(1);
  });
});

describe('recurrent: determinism', () => {
  for (const type of ['rnn', 'lstm', 'gru']) {
    test(`${type}: two runs, and a sample alone vs inside a batch, give identical bits`, () => {
      const cfg = { input_shape: [5, 3], layers: [{ type, input_size: 3, hidden_size: 4 }, { type: 'dense', input_height: 4, output_height: 2 }] };
      const x = randomTensor([5, 5, 3], new Prng(8), [-2, 2]);
      const dy = randomTensor([5, 5, 2], new Prng(9), [-1, 1]);
      const run = () => {
        const net = Network.fromJSON(cfg, { seed: 1 });
        randomizeParams(net, 1, [-1, 1]);
        const tape = net.forwardTape(x, { training: false, seed: 0 });
        const dx = net.backward(tape, dy);
        return { net, y: tape.outputs[1].data, dx: dx.data, grads: net.parameters().map((p) => p.param.grad.data.slice()) };
      };
      const a = run(), b = run();
      expect(bits(a.y)).toEqual(bits(b.y));
      expect(bits(a.dx)).toEqual(bits(b.dx));
      a.grads.forEach((g, i) => expect(bits(g)).toEqual(bits(b.grads[i])));
      const one = new Tensor([1, 5, 3], x.data.slice(30, 45));
      const tape = a.net.forwardTape(one, { training: false, seed: 0 });
      expect(bits(tape.outputs[1].data)).toEqual(bits(a.y.slice(20, 30)));
      const dx1 = a.net.backward(tape, new Tensor([1, 5, 2], dy.data.slice(20, 30)));
      expect(bits(dx1.data)).toEqual(bits(a.dx.slice(30, 45)));
    });
  }

  test('backward adds into the gradients', () => {
    const net = Network.fromJSON({ input_shape: [3, 2], layers: [{ type: 'lstm', input_size: 2, hidden_size: 3 }] });
    const x = randomTensor([2, 3, 2], new Prng(3), [-2, 2]);
    const dy = randomTensor([2, 3, 3], new Prng(4), [-1, 1]);
    net.backward(net.forwardTape(x, { training: false, seed: 0 }), dy);
    const once = net.parameters().map((p) => p.param.grad.data.slice());
    net.backward(net.forwardTape(x, { training: false, seed: 0 }), dy);
    net.parameters().forEach((p, i) => expect(Array.from(p.param.grad.data)).toEqual(Array.from(once[i], (v) => Math.fround(2 * v))));
  });
});
