import { describe, expect, test } from 'vitest';
import { Network } from '../network.ts';
import { Prng } from '../prng.ts';
import { Tensor } from '../tensor.ts';
import { gradcheck, randomTensor } from '../../tests/helpers/gradcheck.ts';
import { act64, bits, closeness, errorOf, softmax64 } from '../../tests/helpers/reference64.ts';
import { ACTIVATIONS, activationBackward, activationForward } from './activations.ts';

const ELEMENTWISE = ACTIVATIONS.filter((a) => a !== 'softmax');

function samples(seed: number, n: number, lo = -6, hi = 6): Float32Array {
  const rng = new Prng(seed);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = rng.uniformRange(lo, hi);
  // Fixed points that are easy to get wrong: zeros, tiny values, the kinks' neighbours.
  x.set([0, -0, 1e-30, -1e-30, 1e-3, -1e-3, 1, -1, 5.5, -5.5].slice(0, n));
  return x;
}

describe('activations: forward and derivative vs float64', () => {
  for (const act of ELEMENTWISE) {
    test(act, () => {
      const x = samples(11, 400);
      const y = activationForward(act, x, 1);
      const dy = new Float32Array(x.length).fill(1);
      const d = activationBackward(act, x, y, dy, 1);
      const y64 = Array.from(x, (v) => act64(act, v).y);
      const d64 = Array.from(x, (v) => act64(act, v).d);
      expect(closeness(y, y64, 1e-5, 1e-6)).toBeLessThanOrEqual(1);
      expect(closeness(d, d64, 1e-5, 1e-6)).toBeLessThanOrEqual(1);
    });
  }

  test('softmax rows sum to 1 and match float64', () => {
    const x = samples(3, 7 * 5, -20, 20);
    const y = activationForward('softmax', x, 5);
    expect(closeness(y, softmax64(x, 5), 1e-5, 1e-7)).toBeLessThanOrEqual(1);
    for (let r = 0; r < 7; r++) {
      let s = 0;
      for (let i = 0; i < 5; i++) s += y[r * 5 + i];
      expect(Math.abs(s - 1)).toBeLessThan(1e-6);
    }
  });

  test('large inputs stay finite', () => {
    const x = Float32Array.from([80, -80, 1e4, -1e4, 3e38, -3e38]);
    for (const act of ACTIVATIONS) {
      const y = activationForward(act, x, act === 'softmax' ? 2 : 1);
      const d = activationBackward(act, x, y, new Float32Array(x.length).fill(1), act === 'softmax' ? 2 : 1);
      for (const v of [...y, ...d]) expect(Number.isFinite(v), `${act}`).toBe(true);
    }
  });

  test('PyTorch conventions at the kinks and constants', () => {
    const x = Float32Array.from([0, -2]);
    const one = new Float32Array(2).fill(1);
    expect(Array.from(activationBackward('relu', x, activationForward('relu', x, 1), one, 1))).toEqual([0, 0]);
    expect(Array.from(activationBackward('leaky_relu', x, activationForward('leaky_relu', x, 1), one, 1))).toEqual([Math.fround(0.01), Math.fround(0.01)]);
    expect(activationForward('leaky_relu', x, 1)[1]).toBe(Math.fround(-0.02));
    // selu slope for x > 0 is PyTorch's scale rounded to f32.
    expect(activationForward('selu', Float32Array.from([1]), 1)[0]).toBe(Math.fround(1.0507009873554805));
    expect(Object.is(activationForward('relu', Float32Array.from([-0]), 1)[0], 0)).toBe(true);
  });

  test('results are flushed: no subnormal outputs', () => {
    const x = Float32Array.from([1e-39, -1e-39, 1e-37, -1e-37, -90, -100]);
    for (const act of ACTIVATIONS) {
      const y = activationForward(act, x, act === 'softmax' ? 6 : 1);
      for (const v of y) expect(v === 0 || Math.abs(v) >= 1.1754943508222875e-38, `${act} gave ${v}`).toBe(true);
    }
  });
});

describe('activations: gradient check through dense', () => {
  for (const act of ACTIVATIONS) {
    for (const [inF, outF, shape] of [[3, 5, [3]], [4, 1, [2, 4]], [1, 7, [1]], [6, 3, [2, 3]]] as [number, number, number[]][]) {
      for (const seed of [1, 2]) {
        test(`${act} dense ${inF}->${outF} input ${JSON.stringify(shape)} seed ${seed}`, () => {
          const cfg = { input_shape: shape, layers: [{ type: 'dense', input_height: inF, output_height: outF, activation: act }] };
          const r = gradcheck(cfg, { seed, batch: 3 });
          expect(r.ok, r.report()).toBe(true);
        });
      }
    }
  }
});

describe('activations: config', () => {
  test('swish is silu; unknown names are rejected naming the field', () => {
    const net = Network.fromJSON({ layers: [{ type: 'dense', input_height: 2, output_height: 2, activation: 'swish' }] });
    expect(net.nodes[0].layer.config.activation).toBe('silu');
    const e = errorOf(() => Network.fromJSON({ layers: [{ type: 'dense', input_height: 2, output_height: 2, activation: 'softsign' }] }));
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.message).toContain('layers[0]');
    expect(e.message).toContain('dense');
    expect(e.message).toContain('.activation');
  });

  test('deterministic: same input twice gives identical bits for every activation', () => {
    const x = randomTensor([4, 6], new Prng(5), [-4, 4]);
    for (const act of ACTIVATIONS) {
      const net = Network.fromJSON({ layers: [{ type: 'dense', input_height: 6, output_height: 6, activation: act }] }, { seed: 9 });
      const a = net.forward(x).data;
      const b = Network.fromJSON({ layers: [{ type: 'dense', input_height: 6, output_height: 6, activation: act }] }, { seed: 9 }).forward(new Tensor(x.shape, x.data.slice())).data;
      expect(bits(a)).toEqual(bits(b));
    }
  });
});
