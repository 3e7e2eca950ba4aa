/**
 * The softmax variants beyond standard/temperature/masked/grid: hierarchical, gumbel,
 * sparsemax, entmax, adaptive, mixture. Forwards are compared with float64 references written
 * here (independent algorithms: bisection for sparsemax/entmax, path enumeration for the
 * trees), backwards with finite differences of those references and with gradcheck.
 */
import { describe, expect, test } from 'vitest';
import { softmaxRowsForward, sparsemaxRowsForward } from '../kernels/softmax.ts';
import { add, mul } from '../math/index.ts';
import { Network } from '../network.ts';
import { Prng } from '../prng.ts';
import { Tensor } from '../tensor.ts';
import { gradcheck, layerNet, randomTensor } from '../../tests/helpers/gradcheck.ts';
import { bits, closeness, errorOf, softmax64 } from '../../tests/helpers/reference64.ts';

type Cfg = Record<string, unknown>;
const net1 = (layer: Cfg, shape: number[], seed = 0) => Network.fromJSON(layerNet({ type: 'softmax', ...layer } as never, shape), { seed });

// ------------------------------------------------------------------ float64 references

/** Sparsemax by bisection on tau: sum max(x - tau, 0) = 1. */
function sparsemax64(x: ArrayLike<number>, n: number): number[] {
  const out: number[] = [];
  for (let o = 0; o < x.length; o += n) {
    const row = Array.from({ length: n }, (_, i) => x[o + i]);
    const m = Math.max(...row);
    let lo = m - 1, hi = m;
    for (let it = 0; it < 200; it++) {
      const mid = (lo + hi) / 2;
      const s = row.reduce((a, v) => a + Math.max(v - mid, 0), 0);
      if (s > 1) lo = mid;
      else hi = mid;
    }
    const tau = (lo + hi) / 2;
    out.push(...row.map((v) => Math.max(v - tau, 0)));
  }
  return out;
}

/** 1.5-entmax by bisection on tau: sum max(x/2 - tau, 0)^2 = 1. */
function entmax64(x: ArrayLike<number>, n: number): number[] {
  const out: number[] = [];
  for (let o = 0; o < x.length; o += n) {
    const row = Array.from({ length: n }, (_, i) => x[o + i] / 2);
    const m = Math.max(...row);
    let lo = m - 1, hi = m;
    for (let it = 0; it < 200; it++) {
      const mid = (lo + hi) / 2;
      const s = row.reduce((a, v) => a + Math.max(v - mid, 0) ** 2, 0);
      if (s > 1) lo = mid;
      else hi = mid;
    }
    const tau = (lo + hi) / 2;
    out.push(...row.map((v) => Math.max(v - tau, 0) ** 2));
  }
  return out;
}

function softmaxOf(v: number[]): number[] {
  const m = Math.max(...v);
  const e = v.map((a) => Math.exp(a - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((a) => a / s);
}

/** Hierarchical: enumerate every leaf path (a0, ..., a(d-1)) and multiply its conditionals. */
function hierarchical64(x: ArrayLike<number>, levels: number[]): number[] {
  const counts: number[] = [];
  let p = 1;
  for (const l of levels) counts.push((p *= l));
  const inLen = counts.reduce((a, b) => a + b, 0);
  const leaves = counts[counts.length - 1];
  const out: number[] = [];
  for (let o = 0; o < x.length; o += inLen) {
    for (let leaf = 0; leaf < leaves; leaf++) {
      // digits of the leaf in mixed radix (levels), most significant first
      const digits: number[] = [];
      let rest = leaf;
      for (let d = levels.length - 1; d >= 0; d--) {
        digits[d] = rest % levels[d];
        rest = Math.floor(rest / levels[d]);
      }
      let prob = 1;
      let levelOff = 0;
      let group = 0; // index of the parent node within its level
      for (let d = 0; d < levels.length; d++) {
        const start = o + levelOff + group * levels[d];
        const sib = Array.from({ length: levels[d] }, (_, i) => x[start + i]);
        prob *= softmaxOf(sib)[digits[d]];
        group = group * levels[d] + digits[d];
        levelOff += counts[d];
      }
      out.push(prob);
    }
  }
  return out;
}

function adaptive64(x: ArrayLike<number>, cut: number[]): number[] {
  const K = cut.length - 1, c0 = cut[0], n = cut[K];
  const inLen = n + K;
  const out: number[] = [];
  for (let o = 0; o < x.length; o += inLen) {
    const head = softmaxOf(Array.from({ length: c0 + K }, (_, i) => x[o + i]));
    for (let w = 0; w < c0; w++) out.push(head[w]);
    let off = o + c0 + K;
    for (let k = 1; k <= K; k++) {
      const sz = cut[k] - cut[k - 1];
      const tail = softmaxOf(Array.from({ length: sz }, (_, i) => x[off + i]));
      for (let i = 0; i < sz; i++) out.push(head[c0 + k - 1] * tail[i]);
      off += sz;
    }
  }
  return out;
}

function mixture64(x: ArrayLike<number>, L: number, K: number, weights: number[] | null): number[] {
  const base = weights ? 0 : K;
  const n = (L - base) / K;
  const out: number[] = [];
  for (let o = 0; o < x.length; o += L) {
    const pi = weights ? weights.map((w) => w / weights.reduce((a, b) => a + b, 0)) : softmaxOf(Array.from({ length: K }, (_, i) => x[o + i]));
    const comps = Array.from({ length: K }, (_, k) => softmaxOf(Array.from({ length: n }, (_, i) => x[o + base + k * n + i])));
    for (let i = 0; i < n; i++) out.push(comps.reduce((a, s, k) => a + pi[k] * s[i], 0));
  }
  return out;
}

/** d(sum r * ref(x))/dx by central differences of the float64 reference. */
function refGrad(ref: (x: number[]) => number[], x: ArrayLike<number>, r: ArrayLike<number>, h = 1e-6): number[] {
  const base = Array.from(x);
  const L = (v: number[]) => ref(v).reduce((a, y, i) => a + r[i] * y, 0);
  return base.map((v, i) => {
    const p = base.slice(), m = base.slice();
    p[i] = v + h;
    m[i] = v - h;
    return (L(p) - L(m)) / (2 * h);
  });
}

/** Forward and backward of a network (inference) for input x and output gradient r. */
function fwdBwd(net: Network, x: Tensor, r: Tensor, training = false, seed = 0): { y: Float32Array; dx: Float32Array } {
  const tape = net.forwardTape(x, { training, seed });
  const y = tape.outputs[tape.outputs.length - 1].data;
  const dx = net.backward(tape, r).data;
  return { y, dx };
}

// ------------------------------------------------------------------ config

describe('softmax variants: config', () => {
  const cfg = (l: Cfg, shape = [4]) => net1(l, shape).nodes[0].layer.config;

  test('normalized configs, aliases, variants read off the fields', () => {
    expect(cfg({ softmax_type: 'gumbel' })).toEqual({ type: 'softmax', softmax_type: 'gumbel', temperature: 1, gumbel_noise: true });
    expect(cfg({ gumbel_noise: true, temperature: 0.5 })).toEqual({ type: 'softmax', softmax_type: 'gumbel', temperature: 0.5, gumbel_noise: true });
    expect(cfg({ softmax_type: 'Gumbel', gumbel_noise: false })).toEqual({ type: 'softmax', softmax_type: 'gumbel', temperature: 1, gumbel_noise: false });
    expect(cfg({ softmax_type: 'sparse' })).toEqual({ type: 'softmax', softmax_type: 'sparsemax' });
    expect(cfg({ softmax_type: 'SPARSEMAX' })).toEqual({ type: 'softmax', softmax_type: 'sparsemax' });
    expect(cfg({ entmax_alpha: 1.5 })).toEqual({ type: 'softmax', softmax_type: 'entmax', entmax_alpha: 1.5 });
    expect(cfg({ softmax_type: 'entmax', entmax_alpha: 0 })).toEqual({ type: 'softmax', softmax_type: 'entmax', entmax_alpha: 1.5 });
    expect(cfg({ hierarchy_levels: [2, 3] }, [8])).toEqual({ type: 'softmax', softmax_type: 'hierarchical', hierarchy_levels: [2, 3] });
    expect(cfg({ adaptive_cutoffs: [2, 5] }, [6])).toEqual({ type: 'softmax', softmax_type: 'adaptive', adaptive_cutoffs: [2, 5] });
    expect(cfg({ mixture_weights: [1, 2] }, [6])).toEqual({ type: 'softmax', softmax_type: 'mixture', mixture_components: 2, mixture_weights: [1, 2] });
    expect(cfg({ mixture_components: 2 }, [6])).toEqual({ type: 'softmax', softmax_type: 'mixture', mixture_components: 2 });
    // Loom's unset values are neutral on any variant.
    expect(cfg({ softmax_type: 'standard', gumbel_noise: false, entmax_alpha: 0, hierarchy_levels: [], mixture_components: 0 })).toEqual({ type: 'softmax', softmax_type: 'standard' });
  });

  test('input and output shapes', () => {
    const h = Network.fromJSON({ layers: [{ type: 'softmax', hierarchy_levels: [3, 3, 4] }] });
    expect(h.inputShape).toEqual([3 + 9 + 36]);
    expect(h.outputShape).toEqual([36]);
    const a = Network.fromJSON({ layers: [{ type: 'softmax', adaptive_cutoffs: [4, 10, 30] }] });
    expect(a.inputShape).toEqual([32]);
    expect(a.outputShape).toEqual([30]);
    expect(net1({ hierarchy_levels: [2, 3] }, [5, 8]).outputShape).toEqual([5, 6]);
    expect(net1({ hierarchy_levels: [2, 3] }, [2, 4]).outputShape).toEqual([6]); // flattened sample
    expect(net1({ mixture_weights: [1, 1, 1] }, [2, 12]).outputShape).toEqual([2, 4]);
    expect(net1({ mixture_components: 3 }, [2, 12]).outputShape).toEqual([2, 3]);
    for (const t of ['gumbel', 'sparsemax', 'entmax']) expect(net1({ softmax_type: t }, [3, 5]).outputShape).toEqual([3, 5]);
  });

  test('validation errors name the layer and the field', () => {
    const cases: [Cfg, number[], string, string][] = [
      [{ softmax_type: 'hierarchical' }, [4], 'CONFIG_INVALID', 'hierarchy_levels'],
      [{ hierarchy_levels: [2, 0] }, [4], 'CONFIG_INVALID', 'hierarchy_levels[1]'],
      [{ hierarchy_levels: 'x' }, [4], 'CONFIG_INVALID', 'hierarchy_levels'],
      [{ hierarchy_levels: [2, 3] }, [5], 'SHAPE_MISMATCH', 'hierarchy_levels'],
      [{ softmax_type: 'standard', hierarchy_levels: [2] }, [2], 'CONFIG_INVALID', 'hierarchy_levels'],
      [{ hierarchy_levels: [4096, 4096, 4096] }, [4], 'CONFIG_INVALID', 'hierarchy_levels'],
      [{ gumbel_noise: 'yes' }, [4], 'CONFIG_INVALID', 'gumbel_noise'],
      [{ softmax_type: 'gumbel', temperature: 0 }, [4], 'CONFIG_INVALID', 'temperature'],
      [{ softmax_type: 'sparsemax', temperature: 2 }, [4], 'CONFIG_INVALID', 'temperature'],
      [{ softmax_type: 'masked', mask: [true, true, true, true], gumbel_noise: true }, [4], 'CONFIG_INVALID', 'gumbel_noise'],
      [{ entmax_alpha: 1.7 }, [4], 'UNSUPPORTED', 'entmax_alpha'],
      [{ softmax_type: 'entmax', entmax_alpha: 0.5 }, [4], 'CONFIG_INVALID', 'entmax_alpha'],
      [{ softmax_type: 'entmax', entmax_alpha: 'big' }, [4], 'CONFIG_INVALID', 'entmax_alpha'],
      [{ softmax_type: 'sparsemax', entmax_alpha: 1.5 }, [4], 'CONFIG_INVALID', 'entmax_alpha'],
      [{ softmax_type: 'adaptive' }, [4], 'CONFIG_INVALID', 'adaptive_cutoffs'],
      [{ adaptive_cutoffs: [3, 3] }, [4], 'CONFIG_INVALID', 'adaptive_cutoffs[1]'],
      [{ adaptive_cutoffs: [0, 3] }, [4], 'CONFIG_INVALID', 'adaptive_cutoffs[0]'],
      [{ adaptive_cutoffs: [2, 4] }, [4], 'SHAPE_MISMATCH', 'adaptive_cutoffs'],
      [{ softmax_type: 'mixture' }, [4], 'CONFIG_INVALID', 'mixture_components'],
      [{ mixture_weights: [1, -1] }, [4], 'CONFIG_INVALID', 'mixture_weights[1]'],
      [{ mixture_weights: [1, 'a'] }, [4], 'CONFIG_INVALID', 'mixture_weights[1]'],
      [{ mixture_weights: [0, 0] }, [4], 'CONFIG_INVALID', 'mixture_weights'],
      [{ mixture_components: 3, mixture_weights: [1, 1] }, [4], 'CONFIG_INVALID', 'mixture_weights'],
      [{ mixture_components: 3 }, [4], 'SHAPE_MISMATCH', 'mixture_components'],
      [{ mixture_components: 2 }, [7], 'SHAPE_MISMATCH', 'mixture_components'],
      [{ mixture_weights: [1, 1] }, [5], 'SHAPE_MISMATCH', 'mixture_weights'],
      [{ mixture_components: -2 }, [4], 'CONFIG_INVALID', 'mixture_components'],
      [{ mixture_components: 2, temperature: 2 }, [6], 'CONFIG_INVALID', 'softmax_type'],
      [{ hierarchy_levels: [2], adaptive_cutoffs: [2] }, [2], 'CONFIG_INVALID', 'softmax_type'],
    ];
    for (const [extra, shape, code, field] of cases) {
      const e = errorOf(() => net1(extra, shape));
      expect(e.code, JSON.stringify(extra)).toBe(code);
      expect(e.message, JSON.stringify(extra)).toContain('layers[0]');
      expect(e.message).toContain('softmax');
      expect(e.message, JSON.stringify(extra)).toContain(`.${field}:`);
    }
  });
});

// ------------------------------------------------------------------ forward vs float64, backward vs reference derivatives

interface RefCase {
  name: string;
  layer: Cfg;
  shape: number[];
  ref: (x: number[]) => number[];
  range?: [number, number];
}

const refCases: RefCase[] = [
  { name: 'sparsemax', layer: { softmax_type: 'sparsemax' }, shape: [3, 7], ref: (x) => sparsemax64(x, 7) },
  { name: 'sparsemax size 1', layer: { softmax_type: 'sparse' }, shape: [1], ref: (x) => sparsemax64(x, 1) },
  { name: 'sparsemax wide', layer: { softmax_type: 'sparsemax' }, shape: [33], ref: (x) => sparsemax64(x, 33), range: [-1, 1] },
  { name: 'entmax', layer: { softmax_type: 'entmax' }, shape: [3, 7], ref: (x) => entmax64(x, 7) },
  { name: 'entmax size 1', layer: { softmax_type: 'entmax' }, shape: [1], ref: (x) => entmax64(x, 1) },
  { name: 'entmax wide', layer: { entmax_alpha: 1.5 }, shape: [33], ref: (x) => entmax64(x, 33) },
  { name: 'entmax alpha 2', layer: { entmax_alpha: 2 }, shape: [5], ref: (x) => sparsemax64(x, 5) },
  { name: 'entmax alpha 1', layer: { entmax_alpha: 1 }, shape: [5], ref: (x) => softmax64(x, 5) },
  { name: 'gumbel at inference', layer: { softmax_type: 'gumbel', temperature: 0.7 }, shape: [2, 5], ref: (x) => softmax64(x, 5, null, Math.fround(0.7)) },
  { name: 'hierarchical [3]', layer: { hierarchy_levels: [3] }, shape: [3], ref: (x) => hierarchical64(x, [3]) },
  { name: 'hierarchical [2, 3]', layer: { hierarchy_levels: [2, 3] }, shape: [8], ref: (x) => hierarchical64(x, [2, 3]) },
  { name: 'hierarchical [3, 1, 2] rows', layer: { hierarchy_levels: [3, 1, 2] }, shape: [2, 12], ref: (x) => hierarchical64(x, [3, 1, 2]) },
  { name: 'hierarchical [2, 2, 3]', layer: { hierarchy_levels: [2, 2, 3] }, shape: [18], ref: (x) => hierarchical64(x, [2, 2, 3]) },
  { name: 'hierarchical [1]', layer: { hierarchy_levels: [1] }, shape: [1], ref: (x) => hierarchical64(x, [1]) },
  { name: 'hierarchical flattened', layer: { hierarchy_levels: [2, 3] }, shape: [2, 4], ref: (x) => hierarchical64(x, [2, 3]) },
  { name: 'adaptive [2, 5]', layer: { adaptive_cutoffs: [2, 5] }, shape: [6], ref: (x) => adaptive64(x, [2, 5]) },
  { name: 'adaptive [1, 2, 5] rows', layer: { adaptive_cutoffs: [1, 2, 5] }, shape: [3, 7], ref: (x) => adaptive64(x, [1, 2, 5]) },
  { name: 'adaptive [3] (no clusters)', layer: { adaptive_cutoffs: [3] }, shape: [3], ref: (x) => adaptive64(x, [3]) },
  { name: 'adaptive [1, 4, 5, 9]', layer: { adaptive_cutoffs: [1, 4, 5, 9] }, shape: [12], ref: (x) => adaptive64(x, [1, 4, 5, 9]) },
  { name: 'mixture fixed [1, 3]', layer: { mixture_weights: [1, 3] }, shape: [2, 6], ref: (x) => mixture64(x, 6, 2, [1, 3]) },
  { name: 'mixture fixed K=1', layer: { mixture_weights: [2] }, shape: [5], ref: (x) => mixture64(x, 5, 1, [2]) },
  { name: 'mixture fixed n=1', layer: { mixture_weights: [0.5, 0, 1] }, shape: [3], ref: (x) => mixture64(x, 3, 3, [0.5, 0, 1]) },
  { name: 'mixture per-row K=2', layer: { mixture_components: 2 }, shape: [2, 8], ref: (x) => mixture64(x, 8, 2, null) },
  { name: 'mixture per-row K=1', layer: { mixture_components: 1 }, shape: [2], ref: (x) => mixture64(x, 2, 1, null) },
  { name: 'mixture per-row K=3', layer: { softmax_type: 'mixture', mixture_components: 3 }, shape: [9], ref: (x) => mixture64(x, 9, 3, null) },
];

describe('softmax variants: forward vs float64, backward vs the reference derivative', () => {
  for (const c of refCases) {
    for (const seed of [1, 2]) {
      test(`${c.name} seed ${seed}`, () => {
        const net = net1(c.layer, c.shape);
        const x = randomTensor([3, ...c.shape], new Prng(seed).fork('x'), c.range ?? [-3, 3]);
        const r = randomTensor([3, ...net.outputShape], new Prng(seed).fork('r'), [-1, 1]);
        const { y, dx } = fwdBwd(net, x, r);
        const ref = c.ref(Array.from(x.data, (v) => v));
        expect(closeness(y, ref, 1e-5, 1e-6), c.name).toBeLessThanOrEqual(1);
        const g = refGrad(c.ref, x.data, r.data);
        expect(closeness(dx, g, 1e-3, 1e-4), `${c.name}: dx ${Array.from(dx)} vs ${g}`).toBeLessThanOrEqual(1);
      });
    }
  }
});

// ------------------------------------------------------------------ gradient checks

describe('softmax variants: gradient check', () => {
  const variants: [string, Cfg, number[]][] = [
    ['sparsemax', { softmax_type: 'sparsemax' }, [5]],
    ['sparsemax size 1', { softmax_type: 'sparsemax' }, [1]],
    ['sparsemax 2-d', { softmax_type: 'sparsemax' }, [2, 7]],
    ['entmax', { softmax_type: 'entmax' }, [5]],
    ['entmax size 1', { softmax_type: 'entmax' }, [1]],
    ['entmax 2-d', { softmax_type: 'entmax' }, [3, 3]],
    ['gumbel (inference)', { softmax_type: 'gumbel', temperature: 1.3 }, [3, 5]],
    ['hierarchical [2,3]', { hierarchy_levels: [2, 3] }, [8]],
    ['hierarchical [3,1,2] rows', { hierarchy_levels: [3, 1, 2] }, [3, 12]],
    ['hierarchical [1,1]', { hierarchy_levels: [1, 1] }, [2]],
    ['hierarchical [2,2,3]', { hierarchy_levels: [2, 2, 3] }, [18]],
    ['adaptive [2,5]', { adaptive_cutoffs: [2, 5] }, [6]],
    ['adaptive [1,2,5] rows', { adaptive_cutoffs: [1, 2, 5] }, [2, 7]],
    ['adaptive [1]', { adaptive_cutoffs: [1] }, [1]],
    ['adaptive [3,4,7,8]', { adaptive_cutoffs: [3, 4, 7, 8] }, [11]],
    ['mixture fixed', { mixture_weights: [1, 3] }, [2, 6]],
    ['mixture fixed n=1', { mixture_weights: [1, 1, 2] }, [3]],
    ['mixture per-row', { mixture_components: 2 }, [8]],
    ['mixture per-row K=1', { mixture_components: 1 }, [3, 2]],
    ['mixture per-row K=3', { mixture_components: 3 }, [15]],
  ];
  for (const [name, extra, shape] of variants) {
    for (const seed of [1, 2, 3]) {
      test(`${name} ${JSON.stringify(shape)} seed ${seed}`, () => {
        const r = gradcheck(layerNet({ type: 'softmax', ...extra } as never, shape), { seed, batch: 2 });
        expect(r.ok, r.report()).toBe(true);
      });
    }
  }

  test('random shapes and trees', () => {
    for (let seed = 1; seed <= 8; seed++) {
      const rng = new Prng(seed).fork('shapes');
      const lead = rng.int(2) ? [1 + rng.int(3)] : [];
      const depth = 1 + rng.int(3);
      const levels = Array.from({ length: depth }, () => 1 + rng.int(3));
      const nodes = levels.reduce((acc, _, d) => acc + levels.slice(0, d + 1).reduce((a, b) => a * b, 1), 0);
      const cut: number[] = [1 + rng.int(3)];
      for (let k = 0; k < rng.int(3); k++) cut.push(cut[cut.length - 1] + 1 + rng.int(3));
      const K = 1 + rng.int(3), n = 1 + rng.int(4);
      const cases: [Cfg, number[]][] = [
        [{ hierarchy_levels: levels }, [...lead, nodes]],
        [{ adaptive_cutoffs: cut }, [...lead, cut[cut.length - 1] + cut.length - 1]],
        [{ mixture_components: K }, [...lead, K + K * n]],
        [{ mixture_weights: Array.from({ length: K }, () => 0.1 + rng.uniform()) }, [...lead, K * n]],
        [{ softmax_type: 'sparsemax' }, [...lead, n + rng.int(5)]],
        [{ softmax_type: 'entmax' }, [...lead, n + rng.int(5)]],
      ];
      for (const [extra, shape] of cases) {
        const r = gradcheck(layerNet({ type: 'softmax', ...extra } as never, shape), { seed, batch: 1 + rng.int(3), maxPerTensor: 24 });
        expect(r.ok, `${JSON.stringify(extra)} ${JSON.stringify(shape)}\n${r.report()}`).toBe(true);
      }
    }
  });
});

// ------------------------------------------------------------------ canonical order, sort and tie rules

describe('softmax variants: canonical arithmetic', () => {
  test('hierarchical = root softmax times group softmax, bit for bit', () => {
    const x = randomTensor([2, 8], new Prng(5), [-4, 4]);
    const y = net1({ hierarchy_levels: [2, 3] }, [8]).forward(x).data;
    for (let r = 0; r < 2; r++) {
      const root = softmaxRowsForward(x.data.slice(r * 8, r * 8 + 2), 2);
      const leaves = softmaxRowsForward(x.data.slice(r * 8 + 2, r * 8 + 8), 3);
      for (let a = 0; a < 2; a++) for (let b = 0; b < 3; b++) expect(bits(y.subarray(r * 6 + a * 3 + b, r * 6 + a * 3 + b + 1))).toEqual(bits(Float32Array.of(mul(root[a], leaves[a * 3 + b]))));
    }
  });

  test('hierarchical [n] and adaptive [n] are the standard softmax, bit for bit', () => {
    const x = randomTensor([3, 5], new Prng(6), [-9, 9]);
    const std = net1({}, [5]).forward(x).data;
    expect(bits(net1({ hierarchy_levels: [5] }, [5]).forward(x).data)).toEqual(bits(std));
    expect(bits(net1({ adaptive_cutoffs: [5] }, [5]).forward(x).data)).toEqual(bits(std));
    expect(bits(net1({ mixture_weights: [3] }, [5]).forward(x).data)).toEqual(bits(std)); // pi = 1 exactly
  });

  test('mixture: sum over components ascending from +0', () => {
    const x = randomTensor([1, 6], new Prng(7), [-3, 3]);
    const y = net1({ mixture_weights: [1, 3] }, [6]).forward(x).data;
    const s0 = softmaxRowsForward(x.data.slice(0, 3), 3), s1 = softmaxRowsForward(x.data.slice(3, 6), 3);
    const expected = Float32Array.from({ length: 3 }, (_, i) => add(add(0, mul(0.25, s0[i])), mul(0.75, s1[i])));
    expect(bits(y)).toEqual(bits(expected));
  });

  test('sparsemax and entmax are permutation-equivariant, bit for bit (ties included)', () => {
    const rng = new Prng(8);
    for (const t of ['sparsemax', 'entmax']) {
      const net = net1({ softmax_type: t }, [9]);
      for (let trial = 0; trial < 5; trial++) {
        const vals = Array.from({ length: 9 }, () => Math.fround(Math.round(rng.uniformRange(-4, 4) * 2) / 2)); // many ties
        const perm = Array.from(rng.permutation(9));
        const y = net.forward(Tensor.from([1, 9], vals)).data;
        const yp = net.forward(Tensor.from([1, 9], perm.map((p) => vals[p]))).data;
        expect(bits(yp)).toEqual(bits(Float32Array.from(perm, (p) => y[p])));
      }
    }
  });

  test('sparsemax: exact zeros, ties share equally, huge logits stay finite', () => {
    const net = net1({ softmax_type: 'sparsemax' }, [4]);
    expect(Array.from(net.forward(Tensor.from([1, 4], [1, 1, 1, 1])).data)).toEqual([0.25, 0.25, 0.25, 0.25]);
    expect(Array.from(net.forward(Tensor.from([1, 4], [3, 0, 0, 0])).data)).toEqual([1, 0, 0, 0]);
    const y = net.forward(Tensor.from([1, 4], [0.2, 0, -5, 0.2])).data;
    expect(closeness(y, [0.4, 0.2, 0, 0.4], 1e-6, 1e-7)).toBeLessThanOrEqual(1);
    expect(Object.is(y[2], 0)).toBe(true);
    expect(Array.from(net.forward(Tensor.from([1, 4], [1e30, 1e30, -1e30, 3e38])).data)).toEqual([0, 0, 0, 1]);
    expect(Array.from(net.forward(Tensor.from([1, 4], [3e38, 3e38, -3e38, 0])).data)).toEqual([0.5, 0.5, 0, 0]);
  });

  test('entmax alpha 1 and 2 are the softmax and sparsemax, bit for bit', () => {
    const x = randomTensor([4, 6], new Prng(9), [-3, 3]);
    const r = randomTensor([4, 6], new Prng(10), [-1, 1]);
    const a1 = fwdBwd(net1({ entmax_alpha: 1 }, [6]), x, r), std = fwdBwd(net1({}, [6]), x, r);
    expect(bits(a1.y)).toEqual(bits(std.y));
    expect(bits(a1.dx)).toEqual(bits(std.dx));
    const a2 = fwdBwd(net1({ entmax_alpha: 2 }, [6]), x, r), sp = fwdBwd(net1({ softmax_type: 'sparsemax' }, [6]), x, r);
    expect(bits(a2.y)).toEqual(bits(sp.y));
    expect(bits(a2.dx)).toEqual(bits(sp.dx));
    expect(bits(sp.y)).toEqual(bits(sparsemaxRowsForward(x.data, 6)));
  });

  test('entmax: sparse output summing to ~1; outside the support the gradient is exactly 0', () => {
    const net = net1({ softmax_type: 'entmax' }, [5]);
    const x = Tensor.from([1, 5], [3, 2.5, -4, 0, -9]);
    const { y, dx } = fwdBwd(net, x, Tensor.from([1, 5], [1, -2, 3, 4, 5]));
    expect(y[2]).toBe(0);
    expect(y[4]).toBe(0);
    expect(Math.abs(y.reduce((a, b) => a + b, 0) - 1)).toBeLessThan(1e-6);
    expect(Object.is(dx[2], 0) && Object.is(dx[4], 0)).toBe(true);
  });
});

// ------------------------------------------------------------------ gumbel: seeded noise, training only

/** The noise the engine must draw for a one-layer network at step seed `seed`, in float64. */
function gumbel64(seed: number, count: number): number[] {
  const rng = new Prng(seed).fork('layers.0');
  return Array.from({ length: count }, () => {
    const u = (2 * (rng.nextU32() >>> 9) + 1) * 2 ** -24;
    return -Math.log(-Math.log(u));
  });
}

describe('softmax: gumbel', () => {
  const x = randomTensor([3, 6], new Prng(11), [-2, 2]);
  const cfg = { softmax_type: 'gumbel', temperature: 0.8 };

  test('training: softmax((x + G) / T) with G from the step seed, vs float64', () => {
    const net = net1(cfg, [6]);
    const y = net.forwardTape(x, { training: true, seed: 42 }).outputs[0].data;
    const g = gumbel64(42, x.size);
    const ref = softmax64(Array.from(x.data, (v, i) => v + g[i]), 6, null, Math.fround(0.8));
    expect(closeness(y, ref, 1e-4, 1e-6)).toBeLessThanOrEqual(1);
  });

  test('same seed -> same bits; another step seed -> other noise; inference -> no noise', () => {
    const net = net1(cfg, [6]);
    const a = net.forwardTape(x, { training: true, seed: 7 }).outputs[0].data;
    const b = net1(cfg, [6]).forwardTape(x, { training: true, seed: 7 }).outputs[0].data;
    const c = net.forwardTape(x, { training: true, seed: 8 }).outputs[0].data;
    expect(bits(a)).toEqual(bits(b));
    expect(bits(a)).not.toEqual(bits(c));
    const inference = net.forward(x).data;
    const temperature = net1({ softmax_type: 'temperature', temperature: 0.8 }, [6]).forward(x).data;
    expect(bits(inference)).toEqual(bits(temperature));
    expect(bits(net.forwardTape(x, { training: false, seed: 7 }).outputs[0].data)).toEqual(bits(temperature));
    // gumbel_noise: false -> no noise even in training
    const off = net1({ ...cfg, gumbel_noise: false }, [6]).forwardTape(x, { training: true, seed: 7 }).outputs[0].data;
    expect(bits(off)).toEqual(bits(temperature));
  });

  test('noise is drawn per element in row-major order of the batch', () => {
    // Batch 3 in one call = the same noise sequence as the float64 replica, sample by sample.
    const net = net1({ softmax_type: 'gumbel' }, [2]);
    const xs = Tensor.from([3, 2], [0, 0, 0, 0, 0, 0]);
    const y = net.forwardTape(xs, { training: true, seed: 3 }).outputs[0].data;
    const g = gumbel64(3, 6);
    for (let s = 0; s < 3; s++) {
      const p0 = 1 / (1 + Math.exp(g[2 * s + 1] - g[2 * s]));
      expect(Math.abs(y[2 * s] - p0)).toBeLessThan(1e-5);
    }
  });

  test('training gradient: finite differences with the noise fixed by the seed', () => {
    for (const [shape, T] of [[[5], 0.5], [[1], 1], [[2, 3], 2]] as [number[], number][]) {
      for (const seed of [1, 2, 3]) {
        const net = net1({ softmax_type: 'gumbel', temperature: T }, shape);
        const xs = randomTensor([2, ...shape], new Prng(seed), [-2, 2]);
        const r = randomTensor([2, ...shape], new Prng(seed + 100), [-1, 1]);
        const { dx } = fwdBwd(net, xs, r, true, seed);
        const loss = (v: Float32Array) => {
          const y = net.forwardTape(new Tensor(xs.shape, v), { training: true, seed }).outputs[0].data;
          return y.reduce((a, b, i) => a + b * r.data[i], 0);
        };
        for (let i = 0; i < xs.size; i++) {
          const h = 1e-2;
          const p = xs.data.slice(), m = xs.data.slice();
          p[i] = Math.fround(p[i] + h);
          m[i] = Math.fround(m[i] - h);
          const num = (loss(p) - loss(m)) / (p[i] - m[i]);
          expect(Math.abs(num - dx[i]), `shape ${shape} seed ${seed} [${i}]`).toBeLessThanOrEqual(1e-3 + 1e-2 * Math.abs(num));
        }
      }
    }
  });

  test('a gumbel layer inside a sequential draws from its own forked stream', () => {
    const seqNet = Network.fromJSON({ input_shape: [6], layers: [{ type: 'sequential', layers: [{ type: 'softmax', ...cfg }] }] });
    const flat = net1(cfg, [6]);
    const a = seqNet.forwardTape(x, { training: true, seed: 5 }).outputs[0].data;
    const b = flat.forwardTape(x, { training: true, seed: 5 }).outputs[0].data;
    expect(bits(a)).not.toEqual(bits(b)); // forked by layers.0 again: another stream
    expect(bits(a)).toEqual(bits(seqNet.forwardTape(x, { training: true, seed: 5 }).outputs[0].data));
  });
});

describe('softmax variants: determinism', () => {
  test('two builds and runs give identical bits for every variant', () => {
    const cases: [Cfg, number[]][] = [
      [{ softmax_type: 'sparsemax' }, [7]],
      [{ softmax_type: 'entmax' }, [7]],
      [{ hierarchy_levels: [2, 3] }, [8]],
      [{ adaptive_cutoffs: [2, 5] }, [6]],
      [{ mixture_components: 2 }, [8]],
      [{ mixture_weights: [1, 2] }, [8]],
      [{ softmax_type: 'gumbel', temperature: 0.5 }, [7]],
    ];
    for (const [extra, shape] of cases) {
      const x = randomTensor([4, ...shape], new Prng(12), [-5, 5]);
      const run = () => {
        const net = net1(extra, shape);
        const r = randomTensor([4, ...net.outputShape], new Prng(13), [-1, 1]);
        return fwdBwd(net, x, r, true, 99);
      };
      const a = run(), b = run();
      expect(bits(a.y)).toEqual(bits(b.y));
      expect(bits(a.dx)).toEqual(bits(b.dx));
    }
  });
});

describe('softmax variants: saved config round trip', () => {
  test('the canonical config re-parses to itself and computes the same bits', () => {
    const cases: [Cfg, number[]][] = [
      [{ softmax_type: 'sparse' }, [5]],
      [{ entmax_alpha: 2 }, [5]],
      [{ gumbel_noise: true, temperature: 0.5 }, [5]],
      [{ hierarchy_levels: [2, 2] }, [6]],
      [{ adaptive_cutoffs: [1, 3] }, [4]],
      [{ mixture_weights: [1, 2] }, [6]],
      [{ mixture_components: 2 }, [6]],
    ];
    for (const [extra, shape] of cases) {
      const a = net1(extra, shape);
      const b = Network.fromJSON(a.configJSON());
      expect(b.configJSON()).toEqual(a.configJSON());
      const x = randomTensor([2, ...shape], new Prng(1), [-2, 2]);
      expect(bits(b.forwardTape(x, { training: true, seed: 3 }).outputs[0].data)).toEqual(bits(a.forwardTape(x, { training: true, seed: 3 }).outputs[0].data));
    }
  });
});

