import { describe, expect, test } from 'vitest';
import { Network } from '../network.ts';
import { Prng } from '../prng.ts';
import { Tensor } from '../tensor.ts';
import { gradcheck, randomTensor } from '../../tests/helpers/gradcheck.ts';
import { bits, closeness, errorOf, linear64 } from '../../tests/helpers/reference64.ts';

const dense = (i: number, o: number, activation = 'linear') => ({ type: 'dense', input_height: i, output_height: o, activation });

describe('residual', () => {
  test('y = previous layer output + previous layer input, vs float64', () => {
    const net = Network.fromJSON({ layers: [dense(4, 4), { type: 'residual' }] }, { seed: 2 });
    expect(net.parameters().map((p) => p.name)).toEqual(['layers.0.weight', 'layers.0.bias']);
    const x = randomTensor([3, 4], new Prng(1), [-2, 2]);
    const [w, b] = net.parameters().map((p) => p.param.value.data);
    const ref = linear64(x.data, 4, w, b, 4).map((v, i) => v + x.data[i]);
    expect(closeness(net.forward(x).data, ref, 1e-5, 1e-6)).toBeLessThanOrEqual(1);
  });

  test('backward: dx = dskip = dy (exact copies)', () => {
    // residual right after a parameter-free layer whose input is the network input.
    const net = Network.fromJSON({ input_shape: [3], layers: [{ type: 'softmax', softmax_type: 'temperature', temperature: 1 }, { type: 'residual' }] });
    const layer = net.nodes[1].layer;
    const dy = Tensor.from([1, 3], [0.5, -1, 2]);
    const r = layer.backward(null, dy, { training: false, rng: null });
    expect(Array.from(r.dx.data)).toEqual([0.5, -1, 2]);
    expect(Array.from(r.dskip!.data)).toEqual([0.5, -1, 2]);
    expect(r.dx.data).not.toBe(dy.data);
  });

  for (const [shape, act] of [[[4], 'tanh'], [[1], 'linear'], [[3, 5], 'gelu'], [[7], 'sigmoid']] as [number[], string][]) {
    for (const seed of [1, 2, 3]) {
      test(`gradient check ${JSON.stringify(shape)} ${act} seed ${seed}`, () => {
        const n = shape[shape.length - 1];
        const cfg = { input_shape: shape, layers: [dense(n, n, act), { type: 'residual' }, dense(n, n, act), { type: 'residual' }] };
        const r = gradcheck(cfg, { seed, batch: 2 });
        expect(r.ok, r.report()).toBe(true);
      });
    }
  }

  test('residual first in the network is a config error naming it', () => {
    const e = errorOf(() => Network.fromJSON({ input_shape: [3], layers: [{ type: 'residual' }] }));
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.message).toContain('residual needs a preceding layer');
    expect(e.message).toContain('layers[0]');
  });

  test('shape mismatch names the layer', () => {
    const e = errorOf(() => Network.fromJSON({ layers: [dense(4, 3), { type: 'residual' }] }));
    expect(e.code).toBe('SHAPE_MISMATCH');
    expect(e.message).toMatch(/layers\[1\] \(.*residual\)/);
    expect(e.message).toContain('[4]');
    expect(e.message).toContain('[3]');
  });

  test('deterministic', () => {
    const x = randomTensor([2, 6], new Prng(9), [-1, 1]);
    const a = Network.fromJSON({ layers: [dense(6, 6, 'relu'), { type: 'residual' }] }, { seed: 5 }).forward(x);
    const b = Network.fromJSON({ layers: [dense(6, 6, 'relu'), { type: 'residual' }] }, { seed: 5 }).forward(x);
    expect(bits(a.data)).toEqual(bits(b.data));
  });
});
