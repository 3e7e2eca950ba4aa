import { describe, expect, test } from 'vitest';
import { Network } from '../network.ts';
import { Prng } from '../prng.ts';
import { Tensor } from '../tensor.ts';
import { gradcheck, randomTensor } from '../../tests/helpers/gradcheck.ts';
import { bits, closeness, errorOf } from '../../tests/helpers/reference64.ts';
import type { Layer } from './layer.ts';

const dense = (i: number, o: number, activation = 'linear') => ({ type: 'dense', input_height: i, output_height: o, activation });
const par = (branches: unknown[], combine_mode?: string) => ({ type: 'parallel', branches, ...(combine_mode ? { combine_mode } : {}) });
const ctx0 = { training: false, rng: null };

function branchOutputs(net: Network, x: Tensor): Float32Array[] {
  return net.nodes[0].layer.children.map((c) => c.layer.forward(x, ctx0).y.data);
}

describe('parallel: config and shapes', () => {
  test('defaults, aliases, param names', () => {
    const net = Network.fromJSON({ layers: [{ type: 'parallel', parallel_branches: [dense(3, 2), dense(3, 4)] }] });
    expect(net.nodes[0].layer.config.combine_mode).toBe('concat');
    expect(net.inputShape).toEqual([3]);
    expect(net.outputShape).toEqual([6]);
    expect(net.parameters().map((p) => p.name)).toEqual(['layers.0.branches.0.weight', 'layers.0.branches.0.bias', 'layers.0.branches.1.weight', 'layers.0.branches.1.bias']);
    for (const [alias, mode] of [['average', 'avg'], ['mean', 'avg'], ['mul', 'multiply'], ['ADD', 'add']]) {
      const n = Network.fromJSON({ layers: [{ type: 'parallel', branches: [dense(3, 2), dense(3, 2)], combine: alias }] });
      expect(n.nodes[0].layer.config.combine_mode).toBe(mode);
    }
  });

  test('nested names: layers.{i}.branches.{j}.layers.{k}.*', () => {
    const net = Network.fromJSON({ layers: [dense(2, 2), par([{ type: 'sequential', layers: [dense(2, 2), { type: 'residual' }, { type: 'rms_norm', norm_size: 2 }] }, { type: 'softmax' }])] });
    expect(net.parameters().map((p) => p.name)).toEqual(['layers.0.weight', 'layers.0.bias', 'layers.1.branches.0.layers.0.weight', 'layers.1.branches.0.layers.0.bias', 'layers.1.branches.0.layers.2.weight']);
    expect(net.describe().layers[1].children!.map((c) => c.name)).toEqual(['layers.1.branches.0', 'layers.1.branches.1']);
  });

  test('concat along the last dim when leading dims agree, else flat', () => {
    expect(Network.fromJSON({ input_shape: [2, 3], layers: [par([dense(3, 3), dense(3, 4)])] }).outputShape).toEqual([2, 7]);
    expect(Network.fromJSON({ input_shape: [2, 3], layers: [par([dense(3, 3), dense(6, 5)])] }).outputShape).toEqual([11]);
    expect(Network.fromJSON({ input_shape: [2, 3], layers: [par([dense(3, 3), { type: 'softmax' }])] }).outputShape).toEqual([2, 6]);
  });

  test('errors name the layer, the field and the branch', () => {
    const cases: [unknown, string, RegExp][] = [
      [{ layers: [par([dense(3, 2), dense(3, 4)], 'add')] }, 'SHAPE_MISMATCH', /layers\[0\] \(.*parallel\)\.combine_mode: .*branches\[1\] gives \[4\]/],
      [{ layers: [par([dense(3, 2), dense(3, 2), dense(3, 1)], 'multiply')] }, 'SHAPE_MISMATCH', /parallel\)\.combine_mode: .*branches\[2\] gives \[1\]/],
      [{ layers: [par([dense(3, 2), dense(3, 4)], 'filter')] }, 'SHAPE_MISMATCH', /parallel\)\.combine_mode: .*branches\[1\] gives \[4\]/],
      [{ layers: [par([dense(3, 2), dense(3, 2)], 'grid_scatter')] }, 'CONFIG_INVALID', /parallel\)\.grid_output_rows/],
      [{ layers: [{ type: 'parallel', branches: [dense(3, 2)], combine: 'max' }] }, 'CONFIG_INVALID', /parallel\)\.combine: unknown combine mode/],
      [{ layers: [{ type: 'parallel', branches: [dense(3, 2)], combine_mode: 7 }] }, 'CONFIG_INVALID', /parallel\)\.combine_mode/],
      [{ layers: [{ type: 'parallel' }] }, 'CONFIG_INVALID', /parallel\)\.branches/],
      [{ layers: [{ type: 'parallel', branches: [] }] }, 'CONFIG_INVALID', /parallel\)\.branches: needs at least one branch/],
      [{ layers: [dense(3, 3), par([dense(3, 3), { type: 'residual' }])] }, 'CONFIG_INVALID', /parallel\)\.branches\[1\] \(residual\).*residual needs a preceding layer/],
      [{ layers: [dense(3, 3), par([dense(3, 3), dense(4, 3)])] }, 'SHAPE_MISMATCH', /parallel\)\.branches\[1\] \(dense\)\.input_height/],
    ];
    for (const [cfg, code, re] of cases) {
      const e = errorOf(() => Network.fromJSON(cfg));
      expect(e.code, JSON.stringify(cfg)).toBe(code);
      expect(e.message).toMatch(re);
    }
  });
});

describe('parallel: forward', () => {
  const x = randomTensor([3, 2, 4], new Prng(4), [-2, 2]);
  const branches = [dense(4, 3, 'tanh'), dense(4, 3, 'sigmoid'), dense(4, 3)];

  test('concat last dim interleaves rows; flat concat appends samples', () => {
    const net = Network.fromJSON({ input_shape: [2, 4], layers: [par([dense(4, 1), dense(4, 2)])] }, { seed: 1 });
    const [a, b] = branchOutputs(net, x);
    const y = net.forward(x).data;
    const expected: number[] = [];
    for (let r = 0; r < 6; r++) expected.push(a[r], b[2 * r], b[2 * r + 1]);
    expect(Array.from(y)).toEqual(expected);
    const flat = Network.fromJSON({ input_shape: [2, 4], layers: [par([dense(4, 1), dense(8, 2)])] }, { seed: 1 });
    const [c, d] = branchOutputs(flat, x);
    const expFlat: number[] = [];
    for (let s = 0; s < 3; s++) expFlat.push(c[2 * s], c[2 * s + 1], d[2 * s], d[2 * s + 1]);
    expect(Array.from(flat.forward(x).data)).toEqual(expFlat);
  });

  for (const mode of ['add', 'avg', 'multiply']) {
    test(`${mode}: vs float64 and exact canonical order`, () => {
      const net = Network.fromJSON({ input_shape: [2, 4], layers: [par(branches, mode)] }, { seed: 2 });
      const outs = branchOutputs(net, x);
      const y = net.forward(x).data;
      const ref = Array.from(y, (_, i) => {
        const v = outs.map((o) => o[i]);
        if (mode === 'multiply') return v[0] * v[1] * v[2];
        const s = v[0] + v[1] + v[2];
        return mode === 'avg' ? s / 3 : s;
      });
      expect(closeness(y, ref, 1e-6, 1e-7)).toBeLessThanOrEqual(1);
      const f = Math.fround;
      const canon = Array.from(y, (_, i) => {
        const [a, b, c] = outs.map((o) => o[i]);
        if (mode === 'multiply') return f(f(a * b) * c);
        const s = f(f(a + b) + c);
        return mode === 'avg' ? f(s / 3) : s;
      });
      expect(bits(y)).toEqual(bits(Float32Array.from(canon)));
    });
  }
});

describe('parallel: backward', () => {
  test('dx is the f32 sum of branch input gradients in branch order', () => {
    const net = Network.fromJSON({ input_shape: [5], layers: [par([dense(5, 2, 'gelu'), dense(5, 2, 'selu'), dense(5, 2, 'elu')], 'add')] }, { seed: 6 });
    const x = randomTensor([2, 5], new Prng(1), [-2, 2]);
    const dy = randomTensor([2, 2], new Prng(2), [-1, 1]);
    const dx = net.backward(net.forwardTape(x, { training: false, seed: 0 }), dy).data;
    const per = net.nodes[0].layer.children.map(({ layer }: { layer: Layer }) => layer.backward(layer.forward(x, ctx0).saved, dy, ctx0).dx.data);
    const f = Math.fround;
    expect(bits(dx)).toEqual(bits(Float32Array.from(per[0], (v, i) => f(f(v + per[1][i]) + per[2][i]))));
  });

  const cases: [string, unknown[], number[]][] = [
    ['two branches', [dense(4, 3, 'tanh'), dense(4, 3, 'gelu')], [4]],
    ['one branch', [dense(3, 2, 'silu')], [3]],
    ['three branches, size 1', [dense(1, 1, 'sigmoid'), dense(1, 1, 'tanh'), dense(1, 1)], [1]],
    ['2-d input', [dense(3, 3, 'mish'), { type: 'layer_norm', norm_size: 3 }, { type: 'softmax' }], [2, 3]],
    ['nested', [{ type: 'sequential', layers: [dense(4, 4, 'elu'), { type: 'residual' }] }, { type: 'parallel', branches: [dense(4, 4), dense(4, 4, 'tanh')], combine_mode: 'multiply' }], [4]],
  ];
  for (const mode of ['concat', 'add', 'avg', 'multiply']) {
    for (const [name, branches, shape] of cases) {
      for (const seed of [1, 2]) {
        test(`gradient check ${mode}: ${name} seed ${seed}`, () => {
          const r = gradcheck({ input_shape: shape, layers: [par(branches, mode)] }, { seed, batch: 2 });
          expect(r.ok, r.report()).toBe(true);
        });
      }
    }
  }

  test('gradient check: flat concat of different ranks', () => {
    for (const seed of [1, 2, 3]) {
      const r = gradcheck({ input_shape: [2, 3], layers: [par([dense(3, 2, 'tanh'), dense(6, 3, 'relu'), { type: 'rms_norm', norm_size: 6 }])] }, { seed, batch: 2 });
      expect(r.ok, r.report()).toBe(true);
    }
  });

  test('deterministic', () => {
    const cfg = { input_shape: [4], layers: [par([dense(4, 3, 'tanh'), dense(4, 3, 'gelu')], 'multiply')] };
    const x = randomTensor([3, 4], new Prng(8), [-2, 2]);
    const dy = randomTensor([3, 3], new Prng(9), [-1, 1]);
    const run = () => {
      const net = Network.fromJSON(cfg, { seed: 5 });
      const t = net.forwardTape(x, { training: false, seed: 0 });
      return [t.outputs[0].data, net.backward(t, dy).data, ...net.parameters().map((p) => p.param.grad.data)];
    };
    const a = run(), b = run();
    a.forEach((v, i) => expect(bits(v)).toEqual(bits(b[i])));
  });
});
