import { describe, expect, test } from 'vitest';
import { Network } from '../network.ts';
import { Prng } from '../prng.ts';
import { Tensor } from '../tensor.ts';
import { gradcheck, layerNet, randomTensor, randomizeParams } from '../../tests/helpers/gradcheck.ts';
import { bits, closeness, errorOf, layerNorm64 } from '../../tests/helpers/reference64.ts';

const ln = (extra: Record<string, unknown> = {}) => ({ type: 'layer_norm', norm_size: 5, ...extra });

describe('layer_norm: config and shapes', () => {
  test('defaults, params and names', () => {
    const net = Network.fromJSON({ layers: [ln()] });
    expect(net.nodes[0].layer.config).toEqual({ type: 'layer_norm', norm_size: 5, epsilon: 1e-5, elementwise_affine: true });
    expect(net.inputShape).toEqual([5]);
    expect(net.parameters().map((p) => [p.name, p.param.value.shape])).toEqual([['layers.0.weight', [5]], ['layers.0.bias', [5]]]);
    expect(Array.from(net.parameters()[0].param.value.data)).toEqual([1, 1, 1, 1, 1]);
    expect(Array.from(net.parameters()[1].param.value.data)).toEqual([0, 0, 0, 0, 0]);
  });

  test('aliases: normalized_shape, size, eps; no affine -> no params', () => {
    for (const alias of ['normalized_shape', 'size']) {
      const net = Network.fromJSON({ layers: [{ type: 'layer_norm', [alias]: 4, eps: 1e-3, elementwise_affine: false }] });
      expect(net.nodes[0].layer.config).toEqual({ type: 'layer_norm', norm_size: 4, epsilon: 1e-3, elementwise_affine: false });
      expect(net.parameters()).toEqual([]);
    }
  });

  test('last dim, flattened sample, mismatch', () => {
    expect(Network.fromJSON({ input_shape: [3, 5], layers: [ln()] }).outputShape).toEqual([3, 5]);
    expect(Network.fromJSON({ input_shape: [3, 5], layers: [ln({ norm_size: 15 })] }).outputShape).toEqual([3, 5]);
    const e = errorOf(() => Network.fromJSON({ input_shape: [3, 5], layers: [ln({ norm_size: 3 })] }));
    expect(e.code).toBe('SHAPE_MISMATCH');
    expect(e.message).toMatch(/layers\[0\] \(.*layer_norm\)\.norm_size/);
  });

  test('validation errors name the layer and the field', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ type: 'layer_norm' }, 'norm_size'],
      [{ type: 'layer_norm', norm_size: 0 }, 'norm_size'],
      [{ type: 'layer_norm', norm_size: 2.5 }, 'norm_size'],
      [ln({ epsilon: 0 }), 'epsilon'],
      [ln({ eps: -1 }), 'eps'],
      [ln({ epsilon: 1e-50 }), 'epsilon'],
      [ln({ epsilon: 'small' }), 'epsilon'],
      [ln({ elementwise_affine: 1 }), 'elementwise_affine'],
      [ln({ epsilon: 1e-5, eps: 1e-6 }), 'eps'],
    ];
    for (const [cfg, field] of cases) {
      const e = errorOf(() => Network.fromJSON({ layers: [{ type: 'dense', input_height: 5, output_height: 5 }, cfg] }));
      expect(e.code, JSON.stringify(cfg)).toBe('CONFIG_INVALID');
      expect(e.message).toContain('layers[1]');
      expect(e.message).toContain('layer_norm');
      expect(e.message).toContain(field);
    }
  });
});

describe('layer_norm: forward vs float64', () => {
  for (const [shape, n, affine] of [[[7], 7, true], [[3, 4], 4, true], [[2, 3], 6, false], [[1], 1, true], [[4, 33], 33, true]] as [number[], number, boolean][]) {
    test(`${JSON.stringify(shape)} norm_size ${n} affine ${affine}`, () => {
      const net = Network.fromJSON({ input_shape: shape, layers: [ln({ norm_size: n, elementwise_affine: affine, epsilon: 1e-4 })] });
      randomizeParams(net, 2, [-2, 2]);
      const x = randomTensor([3, ...shape], new Prng(1), [-3, 5]);
      const y = net.forward(x);
      const p = net.parameters();
      const ref = layerNorm64(x.data, n, Math.fround(1e-4), affine ? p[0].param.value.data : null, affine ? p[1].param.value.data : null);
      expect(closeness(y.data, ref, 1e-5, 1e-6)).toBeLessThanOrEqual(1);
    });
  }

  test('a constant row gives bias (no NaN)', () => {
    const net = Network.fromJSON({ layers: [ln({ norm_size: 4 })] });
    const y = net.forward(Tensor.from([1, 4], [3, 3, 3, 3]));
    expect(Array.from(y.data)).toEqual([0, 0, 0, 0]);
  });
});

describe('layer_norm: gradient check', () => {
  for (const [shape, n, affine] of [[[5], 5, true], [[1], 1, true], [[2, 3], 3, true], [[2, 3], 6, true], [[3, 7], 7, false], [[9], 9, false]] as [number[], number, boolean][]) {
    for (const seed of [1, 2, 3]) {
      test(`${JSON.stringify(shape)} norm_size ${n} affine ${affine} seed ${seed}`, () => {
        const r = gradcheck(layerNet(ln({ norm_size: n, elementwise_affine: affine }), shape), { seed, batch: 2, randomizeParams: [-2, 2] });
        expect(r.ok, r.report()).toBe(true);
      });
    }
  }
});

describe('layer_norm: determinism', () => {
  test('two runs, and a sample alone vs inside a batch, give identical bits', () => {
    const cfg = { input_shape: [3, 6], layers: [ln({ norm_size: 6 })] };
    const x = randomTensor([4, 3, 6], new Prng(8), [-2, 2]);
    const run = () => {
      const net = Network.fromJSON(cfg, { seed: 1 });
      randomizeParams(net, 1, [-1, 1]);
      const tape = net.forwardTape(x, { training: false, seed: 0 });
      const dx = net.backward(tape, Tensor.from(x.shape, x.data.map((v) => Math.fround(v * 0.5))));
      return { net, y: tape.outputs[0].data, dx: dx.data, gw: net.parameters()[0].param.grad.data };
    };
    const a = run(), b = run();
    expect(bits(a.y)).toEqual(bits(b.y));
    expect(bits(a.dx)).toEqual(bits(b.dx));
    expect(bits(a.gw)).toEqual(bits(b.gw));
    const one = a.net.forward(new Tensor([1, 3, 6], x.data.slice(18, 36)));
    expect(bits(one.data)).toEqual(bits(a.y.slice(18, 36)));
  });

  test('backward adds into the gradients', () => {
    const net = Network.fromJSON({ layers: [ln({ norm_size: 4 })] });
    const x = randomTensor([2, 4], new Prng(3), [-2, 2]);
    const dy = randomTensor([2, 4], new Prng(4), [-1, 1]);
    net.backward(net.forwardTape(x, { training: false, seed: 0 }), dy);
    const once = net.parameters().map((p) => p.param.grad.data.slice());
    net.backward(net.forwardTape(x, { training: false, seed: 0 }), dy);
    net.parameters().forEach((p, i) => expect(Array.from(p.param.grad.data)).toEqual(Array.from(once[i], (v) => Math.fround(2 * v))));
  });
});
