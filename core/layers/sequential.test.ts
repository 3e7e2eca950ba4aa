import { describe, expect, test } from 'vitest';
import { Network } from '../network.ts';
import { Prng } from '../prng.ts';
import { Tensor } from '../tensor.ts';
import { gradcheck, randomTensor, randomizeParams } from '../../tests/helpers/gradcheck.ts';
import { bits, errorOf } from '../../tests/helpers/reference64.ts';

const dense = (i: number, o: number, activation = 'linear') => ({ type: 'dense', input_height: i, output_height: o, activation });

/** Copy weights from `from` to `to`, pairing parameters in order. */
function copyWeights(from: Network, to: Network): void {
  const src = from.parameters();
  const dst = to.parameters();
  expect(dst.length).toBe(src.length);
  to.setWeights(new Map(dst.map((p, i) => [p.name, src[i].param.value])));
}

describe('sequential: config and shapes', () => {
  test('children run in order; params are layers.{j}.* under the prefix; input shape inferred', () => {
    const net = Network.fromJSON({ layers: [dense(3, 3), { type: 'sequential', layers: [dense(3, 5, 'relu'), { type: 'layer_norm', norm_size: 5 }, dense(5, 2)] }] });
    expect(net.outputShape).toEqual([2]);
    expect(net.parameters().map((p) => p.name)).toEqual([
      'layers.0.weight', 'layers.0.bias',
      'layers.1.layers.0.weight', 'layers.1.layers.0.bias',
      'layers.1.layers.1.weight', 'layers.1.layers.1.bias',
      'layers.1.layers.2.weight', 'layers.1.layers.2.bias',
    ]);
    const first = Network.fromJSON({ layers: [{ type: 'sequential', sequential_layers: [dense(6, 2)] }] });
    expect(first.inputShape).toEqual([6]);
    expect(first.nodes[0].layer.config).toEqual({ type: 'sequential', layers: [{ type: 'dense', input_height: 6, output_height: 2, activation: 'linear', bias: true }] });
    const bp = first.describe();
    expect(bp.layers[0].children!.map((c) => c.name)).toEqual(['layers.0.layers.0']);
  });

  test('canonical config round-trips', () => {
    const net = Network.fromJSON({ layers: [{ type: 'sequential', sequential_layers: [dense(4, 4, 'swish'), { type: 'residual' }] }] });
    const again = Network.fromJSON(net.configJSON());
    expect(again.configJSON()).toEqual(net.configJSON());
  });

  test('errors name the layer and the field', () => {
    const cases: [unknown, string, RegExp][] = [
      [{ layers: [dense(2, 2), { type: 'sequential' }] }, 'CONFIG_INVALID', /layers\[1\] \(.*sequential\)\.layers/],
      [{ layers: [dense(2, 2), { type: 'sequential', layers: [] }] }, 'CONFIG_INVALID', /layers\[1\] \(.*sequential\)\.layers/],
      [{ layers: [dense(2, 2), { type: 'sequential', layers: {} }] }, 'CONFIG_INVALID', /layers\[1\] \(.*sequential\)\.layers/],
      [{ layers: [dense(2, 2), { type: 'sequential', layers: [dense(2, 2), { type: 'dense', input_height: 2 }] }] }, 'CONFIG_INVALID', /layers\[1\] \(.*sequential\)\.layers\[1\] \(dense\)\.output_height/],
      [{ layers: [dense(2, 2), { type: 'sequential', layers: [dense(2, 3), dense(2, 2)] }] }, 'SHAPE_MISMATCH', /layers\[1\] \(.*sequential\)\.layers\[1\] \(dense\)\.input_height/],
      [{ layers: [dense(2, 2), { type: 'sequential', layers: [{ type: 'residual' }] }] }, 'CONFIG_INVALID', /sequential\)\.layers\[0\] \(residual\).*residual needs a preceding layer/],
      [{ layers: [dense(2, 2), { type: 'sequential', layers: [{ type: 'nope' }] }] }, 'CONFIG_INVALID', /sequential\)\.layers\[0\]\.type/],
    ];
    for (const [cfg, code, re] of cases) {
      const e = errorOf(() => Network.fromJSON(cfg));
      expect(e.code, JSON.stringify(cfg)).toBe(code);
      expect(e.message).toMatch(re);
    }
  });
});

describe('sequential: same bits as the flat network', () => {
  test('[dense, residual, layer_norm, dense] nested == flat, forward and backward', () => {
    const children = [dense(5, 5, 'gelu'), { type: 'residual' }, { type: 'layer_norm', norm_size: 5 }, dense(5, 3, 'tanh')];
    const flat = Network.fromJSON({ layers: [dense(5, 5), ...children] }, { seed: 3 });
    const nested = Network.fromJSON({ layers: [dense(5, 5), { type: 'sequential', layers: children }] }, { seed: 7 });
    randomizeParams(flat, 1, [-1, 1]);
    copyWeights(flat, nested);
    const x = randomTensor([3, 5], new Prng(2), [-2, 2]);
    const dy = randomTensor([3, 3], new Prng(3), [-1, 1]);
    const tf = flat.forwardTape(x, { training: false, seed: 0 });
    const tn = nested.forwardTape(x, { training: false, seed: 0 });
    expect(bits(tn.outputs[1].data)).toEqual(bits(tf.outputs[4].data));
    expect(bits(nested.backward(tn, dy).data)).toEqual(bits(flat.backward(tf, dy).data));
    nested.parameters().forEach((p, i) => expect(bits(p.param.grad.data)).toEqual(bits(flat.parameters()[i].param.grad.data)));
  });

  test('a residual child uses its preceding sibling input, not the sequential input', () => {
    const net = Network.fromJSON({ input_shape: [2], layers: [{ type: 'sequential', layers: [dense(2, 2), dense(2, 2), { type: 'residual' }] }] }, { seed: 1 });
    const x = Tensor.from([1, 2], [1, -2]);
    const seq = net.nodes[0].layer;
    const [d0, d1] = seq.children.map((c) => c.layer);
    const h0 = d0.forward(x, { training: false, rng: null }).y;
    const h1 = d1.forward(h0, { training: false, rng: null }).y;
    const expected = Float32Array.from(h1.data, (v, i) => Math.fround(v + h0.data[i]));
    expect(bits(net.forward(x).data)).toEqual(bits(expected));
  });
});

describe('sequential: gradient check', () => {
  const cases: [string, unknown[], number[]][] = [
    ['dense chain', [dense(3, 4, 'tanh'), dense(4, 2)], [3]],
    ['size 1', [dense(1, 1, 'sigmoid'), dense(1, 1)], [1]],
    ['residual inside', [dense(5, 5, 'silu'), { type: 'residual' }, { type: 'rms_norm', norm_size: 5, epsilon: 1e-5 }], [2, 5]],
    ['nested sequential', [{ type: 'sequential', layers: [dense(3, 3, 'elu'), { type: 'residual' }] }, { type: 'softmax' }], [3]],
    ['parallel inside', [{ type: 'parallel', branches: [dense(4, 2), dense(4, 3, 'mish')] }, dense(5, 2)], [4]],
  ];
  for (const [name, layers, shape] of cases) {
    for (const seed of [1, 2, 3]) {
      test(`${name} seed ${seed}`, () => {
        const r = gradcheck({ input_shape: shape, layers: [{ type: 'sequential', layers }] }, { seed, batch: 2 });
        expect(r.ok, r.report()).toBe(true);
      });
    }
  }
});
