/** parallel's filter (gated mixture of experts) and grid_scatter combine modes. */
import { describe, expect, test } from 'vitest';
import { softmaxRowsForward } from '../kernels/softmax.ts';
import { add, mul, sub } from '../math/index.ts';
import { Network } from '../network.ts';
import { Prng } from '../prng.ts';
import { Tensor } from '../tensor.ts';
import { gradcheck, randomTensor } from '../../tests/helpers/gradcheck.ts';
import { bits, closeness, errorOf } from '../../tests/helpers/reference64.ts';
import type { Layer, RunContext } from './layer.ts';

type Cfg = Record<string, unknown>;
const dense = (i: number, o: number, activation = 'linear') => ({ type: 'dense', input_height: i, output_height: o, activation });
const filter = (branches: unknown[], extra: Cfg = {}) => ({ type: 'parallel', branches, combine_mode: 'filter', ...extra });
const grid = (branches: unknown[], extra: Cfg = {}) => ({ type: 'parallel', branches, combine_mode: 'grid_scatter', ...extra });
const ctx0: RunContext = { training: false, rng: null };

function childOutputs(net: Network, x: Tensor, slot = 0): Map<string, Float32Array> {
  return new Map(net.nodes[slot].layer.children.map((c: { prefix: string; layer: Layer }) => [c.prefix, c.layer.forward(x, ctx0).y.data]));
}

function softmax64(v: number[]): number[] {
  const m = Math.max(...v);
  const e = v.map((a) => Math.exp(a - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((a) => a / s);
}

describe('parallel filter: config', () => {
  test('defaults, parameter names (gate last), blueprint', () => {
    const net = Network.fromJSON({ layers: [filter([dense(3, 2), dense(3, 2, 'tanh')])] });
    const layer = net.nodes[0].layer;
    expect(layer.config).toMatchObject({ combine_mode: 'filter', filter_softmax: 'standard', filter_temperature: 1 });
    expect(layer.config.filter_gate).toBeUndefined();
    expect(net.parameters().map((p) => [p.name, p.param.value.shape])).toEqual([
      ['layers.0.branches.0.weight', [2, 3]],
      ['layers.0.branches.0.bias', [2]],
      ['layers.0.branches.1.weight', [2, 3]],
      ['layers.0.branches.1.bias', [2]],
      ['layers.0.gate.weight', [2, 3]],
      ['layers.0.gate.bias', [2]],
    ]);
    expect(net.describe().layers[0].children!.map((c) => c.name)).toEqual(['layers.0.branches.0', 'layers.0.branches.1', 'layers.0.gate']);
  });

  test('a given gate of any type; nested names; default gate flattens a multi-dim sample', () => {
    const net = Network.fromJSON({
      input_shape: [2, 3],
      layers: [filter([dense(3, 4), { type: 'sequential', layers: [dense(3, 4, 'relu'), { type: 'layer_norm', norm_size: 4 }] }, { type: 'parallel', branches: [dense(3, 2), dense(3, 2)] }], {
        filter_gate: { type: 'sequential', layers: [{ type: 'linear', input_height: 6, output_height: 5, activation: 'gelu' }, dense(5, 3)] },
        filter_softmax: 'Sparse',
        filter_temperature: 0.5,
      })],
    });
    const cfg = net.nodes[0].layer.config;
    expect(cfg.filter_softmax).toBe('sparsemax');
    expect((cfg.filter_gate as Cfg).type).toBe('sequential');
    expect(net.outputShape).toEqual([2, 4]);
    expect(net.parameters().filter((p) => p.name.startsWith('layers.0.gate')).map((p) => p.name)).toEqual(['layers.0.gate.layers.0.weight', 'layers.0.gate.layers.0.bias', 'layers.0.gate.layers.1.weight', 'layers.0.gate.layers.1.bias']);
    const d = Network.fromJSON({ input_shape: [2, 3], layers: [filter([dense(3, 4), dense(3, 4)])] });
    expect(d.parameters().find((p) => p.name === 'layers.0.gate.weight')!.param.value.shape).toEqual([2, 6]);
    // the input shape can come from the gate
    expect(Network.fromJSON({ layers: [filter([{ type: 'softmax' }, { type: 'softmax' }], { filter_gate: dense(5, 2) })] }).inputShape).toEqual([5]);
  });

  test('errors name the layer, the field and the branch', () => {
    const cases: [unknown, string, RegExp][] = [
      [{ layers: [filter([dense(3, 2), dense(3, 2), dense(3, 3)])] }, 'SHAPE_MISMATCH', /parallel\)\.combine_mode: .*branches\[2\] gives \[3\]/],
      [{ layers: [filter([dense(3, 2), dense(3, 2)], { filter_gate: dense(3, 3) })] }, 'SHAPE_MISMATCH', /parallel\)\.filter_gate: the gate must give one logit per branch \(2 values/],
      [{ layers: [filter([dense(3, 2), dense(3, 2)], { filter_gate: dense(4, 2) })] }, 'SHAPE_MISMATCH', /parallel\)\.filter_gate \(dense\)\.input_height/],
      [{ layers: [filter([dense(3, 2), dense(3, 2)], { filter_gate: { type: 'dense', input_height: 3 } })] }, 'CONFIG_INVALID', /parallel\)\.filter_gate \(dense\)\.output_height/],
      [{ layers: [filter([dense(3, 2), dense(3, 2)], { filter_gate: 7 })] }, 'CONFIG_INVALID', /parallel\)\.filter_gate/],
      [{ layers: [filter([dense(3, 2), dense(3, 2)], { filter_gate: { type: 'nope' } })] }, 'CONFIG_INVALID', /parallel\)\.filter_gate\.type/],
      [{ layers: [filter([dense(3, 2), dense(3, 2)], { filter_softmax: 'gumbel' })] }, 'CONFIG_INVALID', /parallel\)\.filter_softmax: unknown gate softmax/],
      [{ layers: [filter([dense(3, 2), dense(3, 2)], { filter_softmax: 1 })] }, 'CONFIG_INVALID', /parallel\)\.filter_softmax/],
      [{ layers: [filter([dense(3, 2), dense(3, 2)], { filter_temperature: -1 })] }, 'CONFIG_INVALID', /parallel\)\.filter_temperature/],
      [{ layers: [{ type: 'parallel', branches: [dense(3, 2), dense(3, 2)], combine_mode: 'add', filter_gate: dense(3, 2) }] }, 'CONFIG_INVALID', /parallel\)\.filter_gate: applies to combine_mode 'filter' only/],
      [{ layers: [{ type: 'parallel', branches: [dense(3, 2)], filter_temperature: 2 }] }, 'CONFIG_INVALID', /parallel\)\.filter_temperature: applies to combine_mode 'filter'/],
      [{ layers: [dense(3, 3), filter([dense(3, 3), { type: 'residual' }])] }, 'CONFIG_INVALID', /parallel\)\.branches\[1\] \(residual\)/],
    ];
    for (const [cfg, code, re] of cases) {
      const e = errorOf(() => Network.fromJSON(cfg));
      expect(e.code, JSON.stringify(cfg)).toBe(code);
      expect(e.message, JSON.stringify(cfg)).toMatch(re);
    }
  });
});

describe('parallel filter: forward', () => {
  test('y = sum_j softmax(gate(x))_j * branch_j(x): vs float64 and canonical order', () => {
    const net = Network.fromJSON({ input_shape: [2, 4], layers: [filter([dense(4, 3, 'tanh'), dense(4, 3, 'sigmoid'), dense(4, 3)])] }, { seed: 3 });
    const x = randomTensor([3, 2, 4], new Prng(1), [-2, 2]);
    const outs = childOutputs(net, x);
    const b = [0, 1, 2].map((j) => outs.get(`branches.${j}`)!);
    const gl = outs.get('gate')!; // [3, 3]: one logit per branch per sample
    const y = net.forward(x).data;
    const ref: number[] = [];
    const canon: number[] = [];
    const g32 = softmaxRowsForward(gl, 3);
    for (let s = 0; s < 3; s++) {
      const g = softmax64(Array.from(gl.subarray(s * 3, s * 3 + 3)));
      for (let i = 0; i < 6; i++) {
        ref.push(g[0] * b[0][s * 6 + i] + g[1] * b[1][s * 6 + i] + g[2] * b[2][s * 6 + i]);
        let acc = 0;
        for (let j = 0; j < 3; j++) acc = add(acc, mul(g32[s * 3 + j], b[j][s * 6 + i]));
        canon.push(acc);
      }
    }
    expect(closeness(y, ref, 1e-5, 1e-6)).toBeLessThanOrEqual(1);
    expect(bits(y)).toEqual(bits(Float32Array.from(canon)));
  });

  test('one branch: the gate weight is exactly 1, output = the branch', () => {
    const net = Network.fromJSON({ input_shape: [3], layers: [filter([dense(3, 2, 'tanh')])] }, { seed: 1 });
    const x = randomTensor([2, 3], new Prng(2), [-2, 2]);
    expect(bits(net.forward(x).data)).toEqual(bits(childOutputs(net, x).get('branches.0')!));
  });

  test('sparsemax gate can switch experts off exactly; temperature sharpens', () => {
    const net = Network.fromJSON({ input_shape: [1], layers: [filter([dense(1, 1), dense(1, 1)], { filter_gate: dense(1, 2), filter_softmax: 'sparsemax' })] });
    net.setWeights(new Map([
      ['layers.0.branches.0.weight', Tensor.from([1, 1], [1])],
      ['layers.0.branches.1.weight', Tensor.from([1, 1], [-1])],
      ['layers.0.gate.weight', Tensor.from([2, 1], [5, -5])],
      ['layers.0.gate.bias', Tensor.from([2], [0, 0])],
    ]));
    // gate logits (5, -5): sparsemax -> (1, 0): y = 1 * x
    expect(Array.from(net.forward(Tensor.from([1, 1], [1])).data)).toEqual([1]);
  });
});


describe('parallel filter: gradient check', () => {
  const cases: [string, unknown[], Cfg, number[]][] = [
    ['two dense experts', [dense(4, 3, 'tanh'), dense(4, 3, 'sigmoid')], {}, [4]],
    ['one expert', [dense(3, 2, 'silu')], {}, [3]],
    ['three experts, size 1', [dense(1, 1, 'tanh'), dense(1, 1), dense(1, 1, 'sigmoid')], {}, [1]],
    ['different types, 2-d input', [dense(3, 3, 'tanh'), { type: 'layer_norm', norm_size: 3 }, { type: 'sequential', layers: [dense(3, 3, 'elu'), { type: 'residual' }] }, { type: 'softmax' }], {}, [2, 3]],
    ['custom gate', [dense(4, 2, 'tanh'), dense(4, 2)], { filter_gate: { type: 'sequential', layers: [dense(4, 3, 'tanh'), dense(3, 2)] } }, [4]],
    ['temperature 0.5', [dense(3, 2, 'tanh'), dense(3, 2, 'sigmoid'), dense(3, 2)], { filter_temperature: 0.5 }, [3]],
    ['sparsemax gate', [dense(3, 2, 'tanh'), dense(3, 2, 'sigmoid'), dense(3, 2)], { filter_softmax: 'sparsemax' }, [3]],
    ['entmax gate, temperature 2', [dense(3, 2, 'tanh'), dense(3, 2, 'sigmoid'), dense(3, 2)], { filter_softmax: 'entmax', filter_temperature: 2 }, [3]],
    ['nested filter', [filter([dense(3, 2, 'tanh'), dense(3, 2)]), dense(3, 2)], {}, [3]],
  ];
  for (const [name, branches, extra, shape] of cases) {
    for (const seed of [1, 2, 3]) {
      test(`${name} seed ${seed}`, () => {
        const r = gradcheck({ input_shape: shape, layers: [filter(branches, extra)] }, { seed, batch: 2 });
        expect(r.ok, r.report()).toBe(true);
      });
    }
  }

  test('dx = branches in order, then the gate', () => {
    const net = Network.fromJSON({ input_shape: [3], layers: [filter([dense(3, 2, 'tanh'), dense(3, 2)])] }, { seed: 4 });
    const x = randomTensor([2, 3], new Prng(1), [-1, 1]);
    const dy = randomTensor([2, 2], new Prng(2), [-1, 1]);
    const dx = net.backward(net.forwardTape(x, { training: false, seed: 0 }), dy).data;
    // Recompute by hand with the layer's children.
    const kids = net.nodes[0].layer.children;
    const fw = kids.map((c) => c.layer.forward(x, ctx0));
    const g = softmaxRowsForward(fw[2].y.data, 2);
    const dys = [0, 1].map((j) => Float32Array.from(dy.data, (v, i) => mul(v, g[Math.floor(i / 2) * 2 + j])));
    const dg = new Float32Array(4);
    for (let s = 0; s < 2; s++) for (let j = 0; j < 2; j++) {
      let acc = 0;
      for (let i = 0; i < 2; i++) acc = add(acc, mul(dy.data[s * 2 + i], fw[j].y.data[s * 2 + i]));
      dg[s * 2 + j] = acc;
    }
    const dz = new Float32Array(4);
    for (let s = 0; s < 2; s++) {
      let dot = 0;
      for (let j = 0; j < 2; j++) dot = add(dot, mul(dg[s * 2 + j], g[s * 2 + j]));
      for (let j = 0; j < 2; j++) dz[s * 2 + j] = mul(g[s * 2 + j], sub(dg[s * 2 + j], dot));
    }
    const dx0 = kids[0].layer.backward(fw[0].saved, new Tensor(fw[0].y.shape, dys[0]), ctx0).dx.data;
    const dx1 = kids[1].layer.backward(fw[1].saved, new Tensor(fw[1].y.shape, dys[1]), ctx0).dx.data;
    const dxg = kids[2].layer.backward(fw[2].saved, new Tensor(fw[2].y.shape, dz), ctx0).dx.data;
    expect(bits(dx)).toEqual(bits(Float32Array.from(dx0, (v, i) => add(add(v, dx1[i]), dxg[i]))));
  });

  test('deterministic, including the gate gradient', () => {
    const cfg = { input_shape: [4], layers: [filter([dense(4, 3, 'tanh'), dense(4, 3, 'gelu')], { filter_softmax: 'entmax' })] };
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

describe('parallel grid_scatter', () => {
  test('config: defaults to reading order; positions normalized in branch order', () => {
    const n = Network.fromJSON({ input_shape: [3], layers: [grid([dense(3, 2), dense(3, 2), dense(3, 2), dense(3, 2)], { grid_output_rows: 2, grid_output_cols: 2 })] });
    const cfg = n.nodes[0].layer.config;
    expect(cfg.grid_output_layers).toBe(1);
    expect(cfg.grid_positions).toEqual([
      { branch_index: 0, target_row: 0, target_col: 0, target_layer: 0 },
      { branch_index: 1, target_row: 0, target_col: 1, target_layer: 0 },
      { branch_index: 2, target_row: 1, target_col: 0, target_layer: 0 },
      { branch_index: 3, target_row: 1, target_col: 1, target_layer: 0 },
    ]);
    expect(n.outputShape).toEqual([2, 2, 2]);
    const m = Network.fromJSON({ input_shape: [3], layers: [grid([dense(3, 2), dense(3, 2)], { grid_output_rows: 1, grid_output_cols: 1, grid_output_layers: 2, grid_positions: [{ branch_index: 1, target_row: 0, target_col: 0, target_layer: 0 }, { target_row: 0, target_col: 0, target_layer: 1, branch_index: 0 }] })] });
    expect(m.nodes[0].layer.config.grid_positions).toEqual([
      { branch_index: 0, target_row: 0, target_col: 0, target_layer: 1 },
      { branch_index: 1, target_row: 0, target_col: 0, target_layer: 0 },
    ]);
    expect(m.outputShape).toEqual([1, 1, 2, 2]);
  });

  test('layout: cells in reading order, each holding its branch; permuted positions', () => {
    const branches = [dense(3, 2, 'tanh'), dense(3, 2, 'sigmoid'), dense(3, 2), dense(3, 2, 'relu')];
    const positions = [[1, 1], [0, 0], [1, 0], [0, 1]].map(([r, c], j) => ({ branch_index: j, target_row: r, target_col: c }));
    const net = Network.fromJSON({ input_shape: [3], layers: [grid(branches, { grid_output_rows: 2, grid_output_cols: 2, grid_positions: positions })] }, { seed: 2 });
    expect(net.outputShape).toEqual([2, 2, 2]);
    const x = randomTensor([2, 3], new Prng(1), [-2, 2]);
    const outs = childOutputs(net, x);
    const y = net.forward(x).data;
    const cellOrder = [1, 3, 2, 0]; // branch in cell (0,0), (0,1), (1,0), (1,1)
    const expected: number[] = [];
    for (let s = 0; s < 2; s++) for (const j of cellOrder) expected.push(...outs.get(`branches.${j}`)!.subarray(s * 2, s * 2 + 2));
    expect(Array.from(y)).toEqual(expected);
  });

  test('branches of different types and sizes, empty cells take no space', () => {
    const branches = [dense(4, 3, 'tanh'), { type: 'softmax' }, { type: 'kmeans', num_clusters: 2 }];
    const positions = [{ target_row: 2, target_col: 1 }, { target_row: 0, target_col: 1 }, { target_row: 1, target_col: 0 }];
    const net = Network.fromJSON({ input_shape: [4], layers: [grid(branches, { grid_output_rows: 3, grid_output_cols: 2, grid_positions: positions })] }, { seed: 3 });
    expect(net.outputShape).toEqual([4 + 2 + 3]);
    const x = randomTensor([2, 4], new Prng(2), [-2, 2]);
    const outs = childOutputs(net, x);
    const y = net.forward(x).data;
    const expected: number[] = [];
    const seg = (j: number, len: number, s: number) => Array.from(outs.get(`branches.${j}`)!.subarray(s * len, (s + 1) * len));
    for (let s = 0; s < 2; s++) expected.push(...seg(1, 4, s), ...seg(2, 2, s), ...seg(0, 3, s));
    expect(Array.from(y)).toEqual(expected);
  });

  test('errors name the layer, the field and the branch', () => {
    const two = [dense(3, 2), dense(3, 2)];
    const pos = (e: Cfg[]) => ({ grid_output_rows: 2, grid_output_cols: 2, grid_positions: e });
    const cases: [Cfg, string, RegExp][] = [
      [{ grid_output_cols: 2 }, 'CONFIG_INVALID', /parallel\)\.grid_output_rows: combine_mode 'grid_scatter' needs/],
      [{ grid_output_rows: 2 }, 'CONFIG_INVALID', /parallel\)\.grid_output_cols/],
      [{ grid_output_rows: 1, grid_output_cols: 1 }, 'CONFIG_INVALID', /parallel\)\.grid_output_rows: the grid has 1 x 1 x 1 = 1 cells for 2 branches/],
      [{ grid_output_rows: -1, grid_output_cols: 2 }, 'CONFIG_INVALID', /parallel\)\.grid_output_rows/],
      [pos([{ target_row: 0, target_col: 0 }]), 'CONFIG_INVALID', /parallel\)\.grid_positions: has 1 entries for 2 branches/],
      [pos([{ target_row: 0, target_col: 0 }, { branch_index: 5, target_row: 0, target_col: 1 }]), 'CONFIG_INVALID', /parallel\)\.grid_positions\[1\]\.branch_index: branch 5 does not exist/],
      [pos([{ branch_index: 1, target_row: 0, target_col: 0 }, { branch_index: 1, target_row: 0, target_col: 1 }]), 'CONFIG_INVALID', /grid_positions\[1\]\.branch_index: branch 1 is already placed by grid_positions\[0\]/],
      [pos([{ target_row: 0, target_col: 0 }, { target_row: 2, target_col: 0 }]), 'CONFIG_INVALID', /grid_positions\[1\]\.target_row: branch 1: row 2 is outside the grid/],
      [pos([{ target_row: 0, target_col: 0 }, { target_row: 0, target_col: 7 }]), 'CONFIG_INVALID', /grid_positions\[1\]\.target_col: branch 1: col 7/],
      [pos([{ target_row: 0, target_col: 0 }, { target_row: 0, target_col: 1, target_layer: 1 }]), 'CONFIG_INVALID', /grid_positions\[1\]\.target_layer: branch 1: layer 1/],
      [pos([{ target_row: 1, target_col: 1 }, { target_row: 1, target_col: 1 }]), 'CONFIG_INVALID', /grid_positions\[1\]: branch 1: cell \(row 1, col 1, layer 0\) already holds branch 0/],
      [pos([{ target_row: 0, target_col: 0 }, { target_col: 1 }]), 'CONFIG_INVALID', /grid_positions\[1\]\.target_row: missing/],
      [pos([{ target_row: 0, target_col: 0 }, 3 as never]), 'CONFIG_INVALID', /grid_positions\[1\]: expected a JSON object/],
      [pos([{ target_row: 0, target_col: 0 }, { target_row: -1, target_col: 0 }]), 'CONFIG_INVALID', /grid_positions\[1\]\.target_row: must be >= 0/],
    ];
    for (const [extra, code, re] of cases) {
      const e = errorOf(() => Network.fromJSON({ input_shape: [3], layers: [grid(two, extra)] }));
      expect(e.code, JSON.stringify(extra)).toBe(code);
      expect(e.message, JSON.stringify(extra)).toMatch(re);
    }
    const stray = errorOf(() => Network.fromJSON({ input_shape: [3], layers: [{ type: 'parallel', branches: two, grid_output_rows: 2 }] }));
    expect(stray.message).toMatch(/parallel\)\.grid_output_rows: applies to combine_mode 'grid_scatter' only, but combine_mode is 'concat'/);
    // Loom's unset values (0, []) are fine on other modes.
    expect(() => Network.fromJSON({ input_shape: [3], layers: [{ type: 'parallel', branches: two, grid_output_rows: 0, grid_positions: [], filter_temperature: 0 }] })).not.toThrow();
  });

  const gcases: [string, unknown[], Cfg, number[]][] = [
    ['full 2x2', [dense(3, 2, 'tanh'), dense(3, 2, 'sigmoid'), dense(3, 2), dense(3, 2, 'gelu')], { grid_output_rows: 2, grid_output_cols: 2 }, [3]],
    ['sparse, mixed sizes', [dense(4, 3, 'tanh'), { type: 'softmax' }, { type: 'kmeans', num_clusters: 2 }], { grid_output_rows: 3, grid_output_cols: 2, grid_positions: [{ target_row: 2, target_col: 1 }, { target_row: 0, target_col: 1 }, { target_row: 1, target_col: 0 }] }, [4]],
    ['layers, 2-d branches', [{ type: 'layer_norm', norm_size: 3 }, dense(3, 3, 'tanh')], { grid_output_rows: 1, grid_output_cols: 1, grid_output_layers: 2, grid_positions: [{ target_row: 0, target_col: 0, target_layer: 1 }, { target_row: 0, target_col: 0, target_layer: 0 }] }, [2, 3]],
    ['single branch, size 1', [dense(1, 1, 'tanh')], { grid_output_rows: 1, grid_output_cols: 1 }, [1]],
  ];
  for (const [name, branches, extra, shape] of gcases) {
    for (const seed of [1, 2, 3]) {
      test(`gradient check ${name} seed ${seed}`, () => {
        const r = gradcheck({ input_shape: shape, layers: [grid(branches, extra)] }, { seed, batch: 2 });
        expect(r.ok, r.report()).toBe(true);
      });
    }
  }

  test('a following dense reads the grid (Loom hive: 4 experts -> merger)', () => {
    const cfg = {
      input_shape: [3],
      layers: [grid([dense(3, 2, 'tanh'), dense(3, 2), dense(3, 2, 'sigmoid'), dense(3, 2)], { grid_output_rows: 2, grid_output_cols: 2 }), dense(8, 3)],
    };
    expect(Network.fromJSON(cfg).outputShape).toEqual([3]);
    const r = gradcheck(cfg, { seed: 4, batch: 2 });
    expect(r.ok, r.report()).toBe(true);
  });
});

describe('parallel filter / grid_scatter: saved config round trip', () => {
  test('the canonical config re-parses to itself and computes the same bits', () => {
    const cases: unknown[] = [
      { input_shape: [3], layers: [filter([dense(3, 2), dense(3, 2, 'tanh')])] },
      { input_shape: [3], layers: [filter([dense(3, 2), dense(3, 2, 'tanh')], { filter_gate: { type: 'linear', in_features: 3, out_features: 2 }, filter_softmax: 'sparse', filter_temperature: 0.5 })] },
      { input_shape: [3], layers: [grid([dense(3, 2), dense(3, 1)], { grid_output_rows: 2, grid_output_cols: 2, grid_positions: [{ target_row: 1, target_col: 1 }, { target_row: 0, target_col: 1 }] })] },
    ];
    for (const cfg of cases) {
      const a = Network.fromJSON(cfg, { seed: 3 });
      const b = Network.fromJSON(a.configJSON(), { seed: 3 });
      expect(b.configJSON()).toEqual(a.configJSON());
      const x = randomTensor([2, 3], new Prng(1), [-2, 2]);
      expect(bits(b.forward(x).data)).toEqual(bits(a.forward(x).data));
    }
  });
});

describe('parallel filter / grid_scatter: random shapes', () => {
  test('gradient check over seeded random shapes, branch counts and gate kinds', () => {
    for (let seed = 1; seed <= 8; seed++) {
      const rng = new Prng(seed).fork('modes');
      const rank = 1 + rng.int(2);
      const shape = Array.from({ length: rank }, () => 1 + rng.int(4));
      const d = shape[shape.length - 1];
      const n = 1 + rng.int(3);
      const out = 1 + rng.int(4);
      const acts = ['tanh', 'sigmoid', 'linear', 'gelu'];
      const same = Array.from({ length: n }, (_, j) => dense(d, out, acts[(j + seed) % 4]));
      const softmaxKind = ['standard', 'sparsemax', 'entmax'][rng.int(3)];
      const f = filter(same, { filter_softmax: softmaxKind, filter_temperature: 0.5 + rng.uniform() });
      const sizes = Array.from({ length: n }, (_, j) => dense(d, 1 + rng.int(4), acts[j % 4]));
      const g = grid(sizes, { grid_output_rows: n, grid_output_cols: 2, grid_positions: sizes.map((_, j) => ({ target_row: n - 1 - j, target_col: j % 2 })) });
      for (const layer of [f, g]) {
        const cfg = { input_shape: shape, layers: [layer] };
        const r = gradcheck(cfg, { seed, batch: 1 + rng.int(3), maxPerTensor: 24 });
        expect(r.ok, `${JSON.stringify(cfg)}\n${r.report()}`).toBe(true);
      }
    }
  });
});

