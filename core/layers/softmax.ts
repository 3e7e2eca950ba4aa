/**
 * softmax — a probability distribution per row (Loom's Softmax layer, PyTorch softmax(dim=-1)),
 * with all ten of Loom's variants.
 *
 * Config:
 *   softmax_type   standard (default) | temperature | masked | grid | hierarchical | gumbel |
 *                  sparsemax (alias sparse) | entmax | adaptive | mixture
 *   temperature    > 0, default 1 (temperature and gumbel: y = softmax(x / temperature))
 *   mask           masked only: booleans, false = masked out (probability 0, gradient 0);
 *                  at least one true
 *   softmax_rows, softmax_cols   grid only: the sample is rows x cols values, each row of
 *                  `cols` gets its own softmax; rows * cols must equal the per-sample size
 *   hierarchy_levels   hierarchical only: group sizes [L0, L1, ..., L(d-1)], each >= 1
 *   gumbel_noise   gumbel only: true (default) adds Gumbel noise in training
 *   entmax_alpha   entmax only: 1.5 (default), or 1 (= standard) or 2 (= sparsemax);
 *                  other values are UNSUPPORTED (0 = unset, as Loom writes)
 *   adaptive_cutoffs   adaptive only: [c0, c1, ..., cK], strictly increasing, c0 >= 1; cK is
 *                  the number of classes
 *   mixture_components, mixture_weights   mixture only: K >= 1 components; weights (K values
 *                  >= 0, sum > 0) fix the mixture, without them each row carries its own
 *                  mixture logits
 * Without softmax_type, the variant is read off the fields present (mask -> masked,
 * softmax_rows/cols -> grid, temperature != 1 -> temperature, gumbel_noise: true -> gumbel,
 * hierarchy_levels -> hierarchical, entmax_alpha -> entmax, adaptive_cutoffs -> adaptive,
 * mixture_* -> mixture); fields of another variant than the named one are an error (Loom's
 * "unset" values are allowed: temperature 1, rows/cols 0, gumbel_noise false, entmax_alpha 0,
 * empty arrays).
 * No parameters.
 *
 * Rows and shapes:
 *   standard, temperature, gumbel, sparsemax, entmax: the last dim; output = input shape.
 *   masked: the last dim when it equals the mask length, else the whole sample when its size
 *     does (dense's rule). grid: softmax_cols. Output = input shape.
 *   hierarchical, adaptive: a row of `in` logits gives `out` probabilities (below); dense's
 *     feature rule on `in` ([..., in] -> [..., out], or a flattened sample -> [out]).
 *   mixture: the last dim L = K * n (fixed weights) or K + K * n (per-row mixture logits);
 *     [..., L] -> [..., n].
 *
 * Variants and canonical arithmetic (kernels/softmax.ts holds the row kernels; every step is
 * an f32 operation of core/math, flushed; "softmax" below always means the row kernel's
 * arithmetic: max subtracted, exp, sum ascending, e / s):
 *   temperature  z = x / T (deterministic div), then softmax; backward divides dx by T.
 *   gumbel       training with gumbel_noise and a noise stream (RunContext.rng):
 *                z[i] = (x[i] + G[i]) / T, G[i] = -log(-log(u)), u = (2k + 1) * 2^-24 with
 *                k = rng.nextU32() >>> 9, one draw per element in row-major order of the
 *                batch tensor (u lies in [2^-24, 1 - 2^-24], so G is finite); otherwise (inference,
 *                gumbel_noise false, no stream) z = x / T. Then softmax; dx = softmax dx / T.
 *   sparsemax, entmax   kernels/softmax.ts (sorted by value descending, ties by position).
 *   hierarchical  a tree with L0 children at the root, each of which has L1 children, ...
 *                The row holds one logit per tree node, level by level: level l has
 *                P_l = L0 * ... * Ll nodes, node g * Ll + i of level l being child i of node g
 *                of level l - 1; in = P_0 + ... + P_(d-1), out = P_(d-1) (the leaves).
 *                Every sibling group gets its own softmax (its conditional distribution) and a
 *                node's probability is its parent's times its conditional one, from the root
 *                down; the output is the leaves' probabilities (one distribution over the
 *                L0 * ... * L(d-1) paths). levels [n] is the standard softmax.
 *   adaptive     adaptive softmax (Grave et al. 2017; PyTorch's AdaptiveLogSoftmaxWithLoss
 *                without its projections): the head holds c0 shortlist classes and K = len - 1
 *                cluster tokens; cluster k (1..K) holds classes c(k-1) .. ck - 1. The row is
 *                [head (c0 + K logits), cluster 1's logits, ..., cluster K's logits], so
 *                in = cK + K and out = cK. P(class) = head(class) for the shortlist and
 *                head(token k) * cluster_k(class) for cluster k. This is the same two-level
 *                tree as hierarchical's (with leaves in the head).
 *   tree arithmetic (hierarchical, adaptive): sibling groups are processed parents first:
 *                cond = softmax(group logits); p[node] = p[parent] * cond[node] (cond at the
 *                root). Backward, groups in reverse order: dp[leaf] = dy; dcond[node] =
 *                dp[node] * p[parent] (dp[node] at the root); dx(group) = softmax backward of
 *                (cond, dcond); dp[parent] = sum over its children ascending of dp * cond.
 *   mixture      y[i] = sum over k ascending of pi[k] * softmax(x_k)[i], from +0, where x_k is
 *                component k's n logits. Fixed: pi[k] = w[k] / W, W = sum ascending of w.
 *                Per-row: pi = softmax(the row's first K logits). Backward: ds_k[i] = dy[i] *
 *                pi[k]; dpi[k] = sum over i ascending of dy[i] * s_k[i]; dx from the softmax
 *                backwards (pi's only for per-row logits).
 */
import { fail } from '../errors.ts';
import type { FieldReader, Json } from '../fields.ts';
import { describeJson } from '../fields.ts';
import {
  entmax15RowsBackward,
  entmax15RowsForward,
  softmaxRowsBackward,
  softmaxRowsForward,
  softmaxSegment,
  softmaxSegmentBackward,
  sparsemaxRowsBackward,
  sparsemaxRowsForward,
} from '../kernels/softmax.ts';
import { add, div, f32, log, mul } from '../math/index.ts';
import type { Prng } from '../prng.ts';
import { Tensor, shapeSize, shapeStr } from '../tensor.ts';
import { featureView } from './dense.ts';
import type { BuildContext, Layer, LayerConfig, LayerKind, RunContext, Shape } from './layer.ts';

export const SOFTMAX_TYPES = ['standard', 'temperature', 'masked', 'grid', 'hierarchical', 'gumbel', 'sparsemax', 'entmax', 'adaptive', 'mixture'] as const;
export type SoftmaxType = (typeof SOFTMAX_TYPES)[number];
const TYPE_ALIASES: Record<string, SoftmaxType> = { sparse: 'sparsemax' };
/** entmax_alpha values with an exact algorithm here: 1 = softmax, 1.5 = sort-based 1.5-entmax, 2 = sparsemax. */
const ENTMAX_ALPHAS = [1, 1.5, 2];

export interface SoftmaxConfig extends LayerConfig {
  type: 'softmax';
  softmax_type: SoftmaxType;
  // Present only for their variant (see the header): temperature: number, mask: boolean[],
  // softmax_rows / softmax_cols: number, hierarchy_levels: number[], gumbel_noise: boolean,
  // entmax_alpha: number, adaptive_cutoffs: number[], mixture_components: number,
  // mixture_weights: number[]. Optional properties cannot satisfy the Json index type.
}

/** A field that belongs to some variants; the first is the one it implies without softmax_type. */
interface VariantField {
  name: string;
  variants: SoftmaxType[];
}

export const softmaxKind: LayerKind = {
  type: 'softmax',
  aliases: [],
  parse(f: FieldReader): SoftmaxConfig {
    const explicit = f.lookup('softmax_type');
    let named: SoftmaxType | null = null;
    if (explicit && explicit.value !== null && explicit.value !== '') {
      const v = explicit.value;
      if (typeof v !== 'string') fail('CONFIG_INVALID', `expected a softmax type name, got ${describeJson(v)}`, f.at('softmax_type'));
      const t = v.toLowerCase();
      const canon = TYPE_ALIASES[t] ?? t;
      if (!(SOFTMAX_TYPES as readonly string[]).includes(canon)) {
        fail('CONFIG_INVALID', `unknown softmax type '${v}'; expected one of ${SOFTMAX_TYPES.join(', ')} (alias sparse)`, f.at('softmax_type'));
      }
      named = canon as SoftmaxType;
    }
    const temperature = f.num('temperature', { default: 1 });
    if (!(f32(temperature) > 0)) fail('CONFIG_INVALID', `must be > 0, got ${temperature}`, f.at('temperature'));
    const mask = parseMask(f);
    const rows = f.optInt('softmax_rows', { min: 1, zeroIsAbsent: true });
    const cols = f.optInt('softmax_cols', { min: 1, zeroIsAbsent: true });
    const levels = nonEmpty(f.intArray('hierarchy_levels', { min: 1 }));
    const gumbelNoise = f.bool('gumbel_noise', false);
    const gumbelNoiseGiven = f.lookup('gumbel_noise') !== undefined && f.lookup('gumbel_noise')!.value !== null;
    const alphaRaw = f.num('entmax_alpha', { default: 0 });
    const cutoffs = nonEmpty(f.intArray('adaptive_cutoffs', { min: 1 }));
    const components = f.optInt('mixture_components', { min: 1, zeroIsAbsent: true });
    const weights = parseWeights(f);

    // Which variants each present field belongs to; a field of another variant is an error.
    const present: VariantField[] = [];
    if (temperature !== 1) present.push({ name: 'temperature', variants: ['temperature', 'gumbel'] });
    if (mask) present.push({ name: 'mask', variants: ['masked'] });
    if (rows !== undefined) present.push({ name: 'softmax_rows', variants: ['grid'] });
    if (cols !== undefined) present.push({ name: 'softmax_cols', variants: ['grid'] });
    if (levels) present.push({ name: 'hierarchy_levels', variants: ['hierarchical'] });
    if (gumbelNoise) present.push({ name: 'gumbel_noise', variants: ['gumbel'] });
    if (alphaRaw !== 0) present.push({ name: 'entmax_alpha', variants: ['entmax'] });
    if (cutoffs) present.push({ name: 'adaptive_cutoffs', variants: ['adaptive'] });
    if (components !== undefined) present.push({ name: 'mixture_components', variants: ['mixture'] });
    if (weights) present.push({ name: 'mixture_weights', variants: ['mixture'] });
    let type: SoftmaxType;
    if (named) {
      type = named;
      const stray = present.find((p) => !p.variants.includes(type));
      if (stray) {
        const only = stray.variants.map((t) => `'${t}'`).join(' or ');
        fail('CONFIG_INVALID', `applies to softmax_type ${only} only, but softmax_type is '${named}'`, f.at(stray.name));
      }
    } else {
      let common: SoftmaxType[] = present.length ? present[0].variants : ['standard'];
      for (const p of present) common = common.filter((t) => p.variants.includes(t));
      if (common.length === 0) {
        fail('CONFIG_INVALID', `fields of several softmax variants are set (${present.map((p) => p.name).join(', ')}); name one with softmax_type`, f.at('softmax_type'));
      }
      type = common[0];
    }

    const cfg: SoftmaxConfig = { type: 'softmax', softmax_type: type };
    switch (type) {
      case 'temperature':
        cfg.temperature = temperature;
        break;
      case 'gumbel':
        cfg.temperature = temperature;
        cfg.gumbel_noise = gumbelNoiseGiven ? gumbelNoise : true;
        break;
      case 'masked':
        if (!mask) fail('CONFIG_INVALID', `softmax_type 'masked' needs a mask (an array of booleans, false = masked out)`, f.at('mask'));
        cfg.mask = mask;
        break;
      case 'grid':
        if (rows === undefined) fail('CONFIG_INVALID', `softmax_type 'grid' needs softmax_rows (an integer >= 1)`, f.at('softmax_rows'));
        if (cols === undefined) fail('CONFIG_INVALID', `softmax_type 'grid' needs softmax_cols (an integer >= 1)`, f.at('softmax_cols'));
        cfg.softmax_rows = rows;
        cfg.softmax_cols = cols;
        break;
      case 'hierarchical': {
        if (!levels) fail('CONFIG_INVALID', `softmax_type 'hierarchical' needs hierarchy_levels (a non-empty array of group sizes >= 1, e.g. [3, 3, 4])`, f.at('hierarchy_levels'));
        const { nodes } = hierarchySizes(levels);
        if (!Number.isSafeInteger(nodes) || nodes > 2 ** 31) fail('CONFIG_INVALID', `describes a tree of ${nodes} nodes, too many`, f.at('hierarchy_levels'));
        cfg.hierarchy_levels = levels;
        break;
      }
      case 'entmax': {
        const alpha = alphaRaw === 0 ? 1.5 : alphaRaw;
        if (alpha < 1) fail('CONFIG_INVALID', `must be >= 1 (1 is the softmax, 2 sparsemax), got ${alpha}`, f.at('entmax_alpha'));
        if (!ENTMAX_ALPHAS.includes(alpha)) {
          fail('UNSUPPORTED', `entmax_alpha ${alpha} is not supported; Heddle computes alpha 1.5 exactly (sort-based), 1 (= standard softmax) and 2 (= sparsemax)`, f.at('entmax_alpha'));
        }
        cfg.entmax_alpha = alpha;
        break;
      }
      case 'adaptive': {
        if (!cutoffs) fail('CONFIG_INVALID', `softmax_type 'adaptive' needs adaptive_cutoffs ([shortlist size, ..., number of classes], strictly increasing)`, f.at('adaptive_cutoffs'));
        for (let i = 1; i < cutoffs.length; i++) {
          if (!(cutoffs[i] > cutoffs[i - 1])) fail('CONFIG_INVALID', `must be greater than adaptive_cutoffs[${i - 1}] = ${cutoffs[i - 1]} (cutoffs are strictly increasing), got ${cutoffs[i]}`, `${f.at('adaptive_cutoffs')}[${i}]`);
        }
        cfg.adaptive_cutoffs = cutoffs;
        break;
      }
      case 'mixture': {
        if (components === undefined && !weights) {
          fail('CONFIG_INVALID', `softmax_type 'mixture' needs mixture_components (K >= 1) or mixture_weights (K weights)`, f.at('mixture_components'));
        }
        if (components !== undefined && weights && weights.length !== components) {
          fail('CONFIG_INVALID', `has ${weights.length} weights, but mixture_components is ${components}`, f.at('mixture_weights'));
        }
        cfg.mixture_components = components ?? weights!.length;
        if (weights) cfg.mixture_weights = weights;
        break;
      }
      default:
        break;
    }
    return cfg;
  },
  inferInputShape(c) {
    const cfg = c as SoftmaxConfig;
    if (cfg.softmax_type === 'masked') return [(cfg.mask as boolean[]).length];
    if (cfg.softmax_type === 'grid') return [(cfg.softmax_rows as number) * (cfg.softmax_cols as number)];
    if (cfg.softmax_type === 'hierarchical') return [hierarchySizes(cfg.hierarchy_levels as number[]).nodes];
    if (cfg.softmax_type === 'adaptive') {
      const cut = cfg.adaptive_cutoffs as number[];
      return [cut[cut.length - 1] + cut.length - 1];
    }
    return null;
  },
  build(c, inputShape, ctx) {
    return new SoftmaxLayer(c as SoftmaxConfig, inputShape, ctx);
  },
};

function nonEmpty(a: number[] | undefined): number[] | undefined {
  return a && a.length > 0 ? a : undefined;
}

function parseMask(f: FieldReader): boolean[] | undefined {
  const arr = f.array('mask');
  if (!arr) return undefined;
  if (arr.length === 0) fail('CONFIG_INVALID', 'is empty; give one boolean per position of the last dim', f.at('mask'));
  const mask = arr.map((v: Json, i) => {
    if (typeof v !== 'boolean') fail('CONFIG_INVALID', `expected true or false, got ${describeJson(v)}`, `${f.at('mask')}[${i}]`);
    return v;
  });
  if (!mask.includes(true)) fail('CONFIG_INVALID', 'masks out every position; a softmax needs at least one unmasked (true) position', f.at('mask'));
  return mask;
}

function parseWeights(f: FieldReader): number[] | undefined {
  const arr = f.array('mixture_weights');
  if (!arr || arr.length === 0) return undefined;
  const w = arr.map((v: Json, i) => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) fail('CONFIG_INVALID', `expected a finite number >= 0, got ${describeJson(v)}`, `${f.at('mixture_weights')}[${i}]`);
    return v;
  });
  if (!w.some((v) => f32(v) > 0)) fail('CONFIG_INVALID', 'needs at least one weight > 0', f.at('mixture_weights'));
  return w;
}

/** Node counts per level (P_l = L0 * ... * Ll) and in total. */
function hierarchySizes(levels: readonly number[]): { perLevel: number[]; nodes: number } {
  const perLevel: number[] = [];
  let p = 1;
  for (const l of levels) {
    p *= l;
    perLevel.push(p);
  }
  return { perLevel, nodes: perLevel.reduce((a, b) => a + b, 0) };
}

/**
 * A tree of sibling groups over the logits of one row (hierarchical, adaptive). Groups are in
 * topological order (a parent's group comes before its children's); every node is either an
 * output leaf or the parent of exactly one later group.
 */
interface Tree {
  /** Group g covers row positions start[g] .. start[g] + len[g] - 1; parent[g] is a position or -1. */
  start: Int32Array;
  len: Int32Array;
  parent: Int32Array;
  /** Output o reads the probability of row position leaf[o]. */
  leaf: Int32Array;
  inLen: number;
  maxGroup: number;
}

function hierarchyTree(levels: readonly number[]): Tree {
  const { perLevel, nodes } = hierarchySizes(levels);
  const start: number[] = [];
  const len: number[] = [];
  const parent: number[] = [];
  let off = 0;
  let prevOff = -1;
  levels.forEach((l, d) => {
    const groups = d === 0 ? 1 : perLevel[d - 1];
    for (let g = 0; g < groups; g++) {
      start.push(off + g * l);
      len.push(l);
      parent.push(d === 0 ? -1 : prevOff + g);
    }
    prevOff = off;
    off += perLevel[d];
  });
  const leaves = perLevel[perLevel.length - 1];
  const leaf = Int32Array.from({ length: leaves }, (_, o) => nodes - leaves + o);
  return { start: Int32Array.from(start), len: Int32Array.from(len), parent: Int32Array.from(parent), leaf, inLen: nodes, maxGroup: Math.max(...levels) };
}

function adaptiveTree(cut: readonly number[]): Tree {
  const K = cut.length - 1;
  const c0 = cut[0];
  const head = c0 + K;
  const start = [0];
  const len = [head];
  const parent = [-1];
  const leaf: number[] = [];
  for (let w = 0; w < c0; w++) leaf.push(w);
  for (let k = 1; k <= K; k++) {
    const s = head + cut[k - 1] - c0;
    start.push(s);
    len.push(cut[k] - cut[k - 1]);
    parent.push(c0 + k - 1);
    for (let i = 0; i < cut[k] - cut[k - 1]; i++) leaf.push(s + i);
  }
  return { start: Int32Array.from(start), len: Int32Array.from(len), parent: Int32Array.from(parent), leaf: Int32Array.from(leaf), inLen: cut[K] + K, maxGroup: Math.max(...len) };
}

interface RowsSaved {
  y: Float32Array;
}
interface EntmaxSaved {
  g: Float32Array;
}
interface TreeSaved {
  cond: Float32Array;
  p: Float32Array;
}
interface MixtureSaved {
  pi: Float32Array;
  s: Float32Array;
}

/** Gumbel noise G = -log(-log(u)), u = (2k + 1) * 2^-24, k = 23 random bits. */
export function gumbelSample(rng: Prng): number {
  const k = rng.nextU32() >>> 9;
  const u = (2 * k + 1) * 5.9604644775390625e-8;
  return -log(-log(u));
}

class SoftmaxLayer implements Layer {
  readonly type = 'softmax';
  readonly config: SoftmaxConfig;
  readonly inputShape: Shape;
  readonly outputShape: Shape;
  readonly params = [];
  readonly children = [];
  readonly usesSkip = false;
  /** The variant actually computed (entmax 1 / 2 run as standard / sparsemax). */
  private readonly kind: SoftmaxType;
  /** Input values per row (and output values per row for the shape-changing variants). */
  private readonly rowLen: number;
  private readonly outLen: number;
  private readonly mask: readonly boolean[] | null;
  private readonly temperature: number | null;
  private readonly tree: Tree | null = null;
  /** mixture: components, values per component, fixed weights (null: per-row logits). */
  private readonly mixK: number = 0;
  private readonly mixN: number = 0;
  private readonly mixPi: Float32Array | null = null;

  constructor(cfg: SoftmaxConfig, inputShape: Shape, ctx: BuildContext) {
    this.config = cfg;
    this.inputShape = inputShape;
    this.mask = cfg.softmax_type === 'masked' ? (cfg.mask as boolean[]) : null;
    this.temperature = cfg.softmax_type === 'temperature' || cfg.softmax_type === 'gumbel' ? f32(cfg.temperature as number) : null;
    let kind: SoftmaxType = cfg.softmax_type;
    if (kind === 'entmax' && cfg.entmax_alpha === 1) kind = 'standard';
    if (kind === 'entmax' && cfg.entmax_alpha === 2) kind = 'sparsemax';
    this.kind = kind;
    const size = shapeSize(inputShape);
    const last = inputShape.length > 0 ? inputShape[inputShape.length - 1] : 1;
    let outputShape: Shape = inputShape;
    switch (cfg.softmax_type) {
      case 'masked':
        featureView(inputShape, this.mask!.length, ctx.where, 'mask');
        this.rowLen = this.mask!.length;
        break;
      case 'grid': {
        const rows = cfg.softmax_rows as number, cols = cfg.softmax_cols as number;
        if (rows * cols !== size) {
          fail('SHAPE_MISMATCH', `softmax_rows x softmax_cols = ${rows} x ${cols} = ${rows * cols}, but the per-sample input ${shapeStr(inputShape)} has ${size} values`, `${ctx.where}.softmax_rows`);
        }
        this.rowLen = cols;
        break;
      }
      case 'hierarchical':
      case 'adaptive': {
        const field = cfg.softmax_type === 'hierarchical' ? 'hierarchy_levels' : 'adaptive_cutoffs';
        const tree = cfg.softmax_type === 'hierarchical' ? hierarchyTree(cfg.hierarchy_levels as number[]) : adaptiveTree(cfg.adaptive_cutoffs as number[]);
        const what = cfg.softmax_type === 'hierarchical' ? 'one logit per tree node' : 'head logits, then each cluster\'s';
        if (!(inputShape.length > 0 && last === tree.inLen) && size !== tree.inLen) {
          fail('SHAPE_MISMATCH', `reads ${tree.inLen} logits per row (${what}), but its input has per-sample shape ${shapeStr(inputShape)} (${size} values)`, `${ctx.where}.${field}`);
        }
        const { lead } = featureView(inputShape, tree.inLen, ctx.where, field);
        this.tree = tree;
        this.rowLen = tree.inLen;
        outputShape = [...lead, tree.leaf.length];
        break;
      }
      case 'mixture': {
        const K = cfg.mixture_components as number;
        const fixed = Array.isArray(cfg.mixture_weights);
        const body = fixed ? last : last - K;
        if (!(body >= K && body % K === 0)) {
          const need = fixed ? `K * n = ${K} * n values (K components of n logits)` : `K + K * n = ${K} + ${K} * n values (K mixture logits, then K components of n logits)`;
          fail('SHAPE_MISMATCH', `mixes ${K} components, so the last dim must hold ${need} with n >= 1, but the per-sample input is ${shapeStr(inputShape)}`, `${ctx.where}.${fixed ? 'mixture_weights' : 'mixture_components'}`);
        }
        this.mixK = K;
        this.mixN = body / K;
        if (fixed) {
          const w = (cfg.mixture_weights as number[]).map((v) => f32(v));
          let total = 0;
          for (const v of w) total = add(total, v);
          this.mixPi = Float32Array.from(w, (v) => div(v, total));
        }
        this.rowLen = last;
        outputShape = [...inputShape.slice(0, -1), this.mixN];
        break;
      }
      default:
        this.rowLen = last;
    }
    this.outLen = cfg.softmax_type === 'mixture' ? this.mixN : this.tree ? this.tree.leaf.length : this.rowLen;
    this.outputShape = outputShape;
  }

  forward(x: Tensor, ctx: RunContext) {
    const outShape = [x.shape[0], ...this.outputShape];
    switch (this.kind) {
      case 'sparsemax': {
        const y = sparsemaxRowsForward(x.data, this.rowLen);
        return { y: new Tensor(outShape, y), saved: { y } as RowsSaved };
      }
      case 'entmax': {
        const { y, g } = entmax15RowsForward(x.data, this.rowLen);
        return { y: new Tensor(outShape, y), saved: { g } as EntmaxSaved };
      }
      case 'hierarchical':
      case 'adaptive':
        return this.treeForward(x, outShape);
      case 'mixture':
        return this.mixtureForward(x, outShape);
      default: {
        let z = x.data;
        const t = this.temperature;
        if (t !== null) {
          const noise = this.kind === 'gumbel' && ctx.training && this.config.gumbel_noise === true && ctx.rng ? ctx.rng : null;
          z = new Float32Array(x.size);
          for (let i = 0; i < z.length; i++) z[i] = div(noise ? add(x.data[i], gumbelSample(noise)) : x.data[i], t);
        }
        const y = softmaxRowsForward(z, this.rowLen, this.mask);
        return { y: new Tensor(outShape, y), saved: { y } as RowsSaved };
      }
    }
  }

  backward(s: unknown, dy: Tensor) {
    const inShape = [dy.shape[0], ...this.inputShape];
    switch (this.kind) {
      case 'sparsemax':
        return { dx: new Tensor(inShape, sparsemaxRowsBackward((s as RowsSaved).y, dy.data, this.rowLen)) };
      case 'entmax':
        return { dx: new Tensor(inShape, entmax15RowsBackward((s as EntmaxSaved).g, dy.data, this.rowLen)) };
      case 'hierarchical':
      case 'adaptive':
        return { dx: new Tensor(inShape, this.treeBackward(s as TreeSaved, dy.data)) };
      case 'mixture':
        return { dx: new Tensor(inShape, this.mixtureBackward(s as MixtureSaved, dy.data)) };
      default: {
        const dx = softmaxRowsBackward((s as RowsSaved).y, dy.data, this.rowLen, this.mask);
        const t = this.temperature;
        if (t !== null) for (let i = 0; i < dx.length; i++) dx[i] = div(dx[i], t);
        return { dx: new Tensor(inShape, dx) };
      }
    }
  }

  private treeForward(x: Tensor, outShape: number[]) {
    const tree = this.tree!;
    const n = tree.inLen, out = tree.leaf.length;
    const rows = x.size / n;
    const cond = new Float32Array(x.size);
    const p = new Float32Array(x.size);
    const y = new Float32Array(rows * out);
    const e = new Float32Array(tree.maxGroup);
    for (let r = 0; r < rows; r++) {
      const o = r * n;
      for (let g = 0; g < tree.start.length; g++) {
        const st = o + tree.start[g], len = tree.len[g], par = tree.parent[g];
        softmaxSegment(x.data, st, cond, st, len, e);
        if (par < 0) for (let i = 0; i < len; i++) p[st + i] = cond[st + i];
        else {
          const pp = p[o + par];
          for (let i = 0; i < len; i++) p[st + i] = mul(pp, cond[st + i]);
        }
      }
      for (let k = 0; k < out; k++) y[r * out + k] = p[o + tree.leaf[k]];
    }
    const saved: TreeSaved = { cond, p };
    return { y: new Tensor(outShape, y), saved };
  }

  private treeBackward(s: TreeSaved, dy: Float32Array): Float32Array {
    const tree = this.tree!;
    const { cond, p } = s;
    const n = tree.inLen, out = tree.leaf.length;
    const rows = cond.length / n;
    const dx = new Float32Array(cond.length);
    const dp = new Float32Array(n);
    const dcond = new Float32Array(tree.maxGroup);
    for (let r = 0; r < rows; r++) {
      const o = r * n;
      dp.fill(0);
      for (let k = 0; k < out; k++) dp[tree.leaf[k]] = dy[r * out + k];
      for (let g = tree.start.length - 1; g >= 0; g--) {
        const st = tree.start[g], len = tree.len[g], par = tree.parent[g];
        if (par < 0) for (let i = 0; i < len; i++) dcond[i] = dp[st + i];
        else {
          const pp = p[o + par];
          let acc = 0;
          for (let i = 0; i < len; i++) {
            dcond[i] = mul(dp[st + i], pp);
            acc = add(acc, mul(dp[st + i], cond[o + st + i]));
          }
          dp[par] = acc;
        }
        softmaxSegmentBackward(cond, o + st, dcond, 0, dx, o + st, len);
      }
    }
    return dx;
  }

  private mixtureForward(x: Tensor, outShape: number[]) {
    const K = this.mixK, n = this.mixN, L = this.rowLen;
    const rows = x.size / L;
    const fixed = this.mixPi;
    const base = fixed ? 0 : K;
    const pi = new Float32Array(rows * K);
    const sm = new Float32Array(rows * K * n);
    const y = new Float32Array(rows * n);
    const e = new Float32Array(Math.max(K, n));
    for (let r = 0; r < rows; r++) {
      const o = r * L;
      if (fixed) pi.set(fixed, r * K);
      else softmaxSegment(x.data, o, pi, r * K, K, e);
      for (let k = 0; k < K; k++) softmaxSegment(x.data, o + base + k * n, sm, (r * K + k) * n, n, e);
      for (let i = 0; i < n; i++) {
        let acc = 0;
        for (let k = 0; k < K; k++) acc = add(acc, mul(pi[r * K + k], sm[(r * K + k) * n + i]));
        y[r * n + i] = acc;
      }
    }
    const saved: MixtureSaved = { pi, s: sm };
    return { y: new Tensor(outShape, y), saved };
  }

  private mixtureBackward(s: MixtureSaved, dy: Float32Array): Float32Array {
    const K = this.mixK, n = this.mixN, L = this.rowLen;
    const { pi, s: sm } = s;
    const rows = pi.length / K;
    const fixed = this.mixPi;
    const base = fixed ? 0 : K;
    const dx = new Float32Array(rows * L);
    const ds = new Float32Array(n);
    const dpi = new Float32Array(K);
    for (let r = 0; r < rows; r++) {
      const o = r * L;
      for (let k = 0; k < K; k++) {
        const pk = pi[r * K + k];
        const so = (r * K + k) * n;
        let acc = 0;
        for (let i = 0; i < n; i++) {
          const d = dy[r * n + i];
          ds[i] = mul(d, pk);
          acc = add(acc, mul(d, sm[so + i]));
        }
        dpi[k] = acc;
        softmaxSegmentBackward(sm, so, ds, 0, dx, o + base + k * n, n);
      }
      if (!fixed) softmaxSegmentBackward(pi, r * K, dpi, 0, dx, o, K);
    }
    return dx;
  }
}
