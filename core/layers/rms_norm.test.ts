import { describe, expect, test } from 'vitest';
import { Network } from '../network.ts';
import { Prng } from '../prng.ts';
import { Tensor } from '../tensor.ts';
import { gradcheck, layerNet, randomTensor, randomizeParams } from '../../tests/helpers/gradcheck.ts';
import { bits, closeness, errorOf, rmsNorm64 } from '../../tests/helpers/reference64.ts';
import { RMS_NORM_DEFAULT_EPS } from './rms_norm.ts';

const rms = (extra: Record<string, unknown> = {}) => ({ type: 'rms_norm', norm_size: 5, ...extra });

describe('rms_norm: config and shapes', () => {
  test('defaults (eps = f32 machine epsilon, as nn.RMSNorm), weight only', () => {
    const net = Network.fromJSON({ layers: [rms()] });
    expect(RMS_NORM_DEFAULT_EPS).toBe(2 ** -23);
    expect(net.nodes[0].layer.config).toEqual({ type: 'rms_norm', norm_size: 5, epsilon: 2 ** -23, elementwise_affine: true });
    expect(net.parameters().map((p) => [p.name, p.param.value.shape])).toEqual([['layers.0.weight', [5]]]);
    expect(Array.from(net.parameters()[0].param.value.data)).toEqual([1, 1, 1, 1, 1]);
    expect(Network.fromJSON({ layers: [{ type: 'rmsnorm', size: 3, eps: 1e-6, elementwise_affine: false }] }).parameters()).toEqual([]);
  });

  test('shape rule: last dim, flattened, mismatch', () => {
    expect(Network.fromJSON({ input_shape: [2, 5], layers: [rms()] }).outputShape).toEqual([2, 5]);
    expect(Network.fromJSON({ input_shape: [2, 5], layers: [rms({ norm_size: 10 })] }).outputShape).toEqual([2, 5]);
    const e = errorOf(() => Network.fromJSON({ input_shape: [2, 5], layers: [rms({ norm_size: 2 })] }));
    expect(e.code).toBe('SHAPE_MISMATCH');
    expect(e.message).toMatch(/layers\[0\] \(.*rms_norm\)\.norm_size/);
  });

  test('validation errors name the layer and the field', () => {
    for (const [cfg, field] of [[{ type: 'rms_norm' }, 'norm_size'], [rms({ epsilon: 0 }), 'epsilon'], [rms({ epsilon: -1e-5 }), 'epsilon'], [rms({ norm_size: -3 }), 'norm_size']] as [Record<string, unknown>, string][]) {
      const e = errorOf(() => Network.fromJSON({ input_shape: [5], layers: [cfg] }));
      expect(e.code).toBe('CONFIG_INVALID');
      expect(e.message).toContain('layers[0]');
      expect(e.message).toContain('rms_norm');
      expect(e.message).toContain(`.${field}`);
    }
  });
});

describe('rms_norm: forward vs float64', () => {
  for (const [shape, n, affine, eps] of [[[8], 8, true, 1e-6], [[3, 5], 5, true, 1e-5], [[2, 3], 6, false, undefined], [[1], 1, true, undefined]] as [number[], number, boolean, number | undefined][]) {
    test(`${JSON.stringify(shape)} norm_size ${n}`, () => {
      const net = Network.fromJSON({ input_shape: shape, layers: [rms({ norm_size: n, elementwise_affine: affine, epsilon: eps })] });
      randomizeParams(net, 5, [-2, 2]);
      const x = randomTensor([3, ...shape], new Prng(6), [-4, 4]);
      const ref = rmsNorm64(x.data, n, Math.fround(eps ?? RMS_NORM_DEFAULT_EPS), affine ? net.parameters()[0].param.value.data : null);
      expect(closeness(net.forward(x).data, ref, 1e-5, 1e-6)).toBeLessThanOrEqual(1);
    });
  }

  test('an all-zero row stays zero', () => {
    expect(Array.from(Network.fromJSON({ layers: [rms({ norm_size: 3 })] }).forward(Tensor.zeros([1, 3])).data)).toEqual([0, 0, 0]);
  });
});

describe('rms_norm: gradient check', () => {
  for (const [shape, n, affine] of [[[5], 5, true], [[1], 1, true], [[2, 4], 4, true], [[2, 3], 6, true], [[3, 7], 7, false]] as [number[], number, boolean][]) {
    for (const seed of [1, 2, 3]) {
      test(`${JSON.stringify(shape)} norm_size ${n} affine ${affine} seed ${seed}`, () => {
        const r = gradcheck(layerNet(rms({ norm_size: n, elementwise_affine: affine, epsilon: 1e-5 }), shape), { seed, batch: 2, randomizeParams: [-2, 2] });
        expect(r.ok, r.report()).toBe(true);
      });
    }
  }
});

describe('rms_norm: determinism', () => {
  test('two runs give identical bits; a sample alone matches it inside a batch', () => {
    const x = randomTensor([3, 7], new Prng(2), [-3, 3]);
    const run = () => {
      const net = Network.fromJSON({ layers: [rms({ norm_size: 7 })] }, { seed: 4 });
      randomizeParams(net, 4, [-1, 1]);
      const tape = net.forwardTape(x, { training: false, seed: 0 });
      const dx = net.backward(tape, x);
      return { net, y: tape.outputs[0].data, dx: dx.data, gw: net.parameters()[0].param.grad.data };
    };
    const a = run(), b = run();
    expect(bits(a.y)).toEqual(bits(b.y));
    expect(bits(a.dx)).toEqual(bits(b.dx));
    expect(bits(a.gw)).toEqual(bits(b.gw));
    expect(bits(a.net.forward(new Tensor([1, 7], x.data.slice(7, 14))).data)).toEqual(bits(a.y.slice(7, 14)));
  });
});
