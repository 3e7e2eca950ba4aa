/**
 * softmax layer on the GPU, every variant, forward and training (the CPU reference is
 * softmax.ts with kernels/softmax.ts; the WGSL row kernels are kernels/softmax.wgsl.ts):
 *   standard, temperature, masked, grid, entmax alpha 1: the row softmax (one workgroup per
 *     row); temperature divides the logits by T first and dx by T after, as the layer does.
 *   gumbel: inference (and gumbel_noise false, or no noise stream) = temperature. Training
 *     with noise draws G on the host with the layer's own gumbelSample(ctx.rng) calls (one per
 *     element, row-major: the same stream as the CPU) and uploads it; z = (x + G) / T.
 *   sparsemax, entmax 1.5 (and entmax 2 = sparsemax): the sort-based kernels (shift, rank,
 *     scan), the CPU's scan step by step.
 *   hierarchical, adaptive: one dispatch per tree level (parents first; backward deepest
 *     first), one workgroup per (row, sibling group) running softmaxSegment's arithmetic
 *     (invocation 0 the max and the sums, the element-wise steps strided); then the leaves
 *     gathered.
 *   mixture: one workgroup per (row, segment) for pi and the component softmaxes, then
 *     y[i] = sum over k ascending of pi[k] * s_k[i]; backward one workgroup per (row, k),
 *     then pi's softmax backward per row.
 */
import type { GpuCompileContext, GpuLayerKernel, GpuTrainContext, LayerOp, TrainForwarded, TrainOp } from '../backend/webgpu/kernel.ts';
import type { GpuVal, Kernel, Run, Val } from '../backend/webgpu/run.ts';
import { grid2d } from '../backend/webgpu/shader.ts';
import {
  entmax15RowsBackwardKernel,
  entmax15RowsKernels,
  softmaxRowsBackwardKernel,
  softmaxRowsKernel,
  softmaxRowsNoiseKernel,
  sparsemaxRowsBackwardKernel,
  SOFTMAX_WG,
  sparsemaxRowsKernels,
  wgslGroupSoftmax,
  wgslGroupSoftmaxDecls,
} from '../kernels/softmax.wgsl.ts';
import { add, div, f32 } from '../math/index.ts';
import { Tensor } from '../tensor.ts';
import type { Layer, RunContext } from './layer.ts';
import { type SoftmaxConfig, gumbelSample } from './softmax.ts';

/** Invocations per workgroup of the per-(row, group) kernels. */
const SEG_WG = 64;

type Kind = 'plain' | 'sparsemax' | 'entmax' | 'tree' | 'mixture';

/** The variant actually computed (entmax 1 / 2 run as standard / sparsemax, as on the CPU). */
function kindOf(cfg: SoftmaxConfig): Kind {
  switch (cfg.softmax_type) {
    case 'sparsemax':
      return 'sparsemax';
    case 'entmax':
      return cfg.entmax_alpha === 1 ? 'plain' : cfg.entmax_alpha === 2 ? 'sparsemax' : 'entmax';
    case 'hierarchical':
    case 'adaptive':
      return 'tree';
    case 'mixture':
      return 'mixture';
    default:
      return 'plain';
  }
}

/**
 * One level of a tree (hierarchical, adaptive): `groups` sibling groups per row, group g at
 * row positions start(g) .. start(g) + len(g) - 1 with parent position parent(g) (none at the
 * root). As WGSL expressions of g (softmax.ts's hierarchyTree / adaptiveTree, level by level).
 */
interface TreeLevel {
  readonly groups: number;
  readonly root: boolean;
  /** WGSL: module-scope tables the expressions read. */
  readonly decls: string;
  readonly start: string;
  readonly len: string;
  readonly parent: string;
}

interface TreeShape {
  readonly levels: readonly TreeLevel[];
  readonly inLen: number;
  readonly out: number;
  /** leaf(k) = k < A ? k : k + B (the leaves' row positions). */
  readonly a: number;
  readonly b: number;
}

const F = new Float32Array(1);
const U = new Uint32Array(F.buffer);
function f32Bits(v: number): number {
  F[0] = v;
  return U[0];
}

function u32Table(name: string, v: readonly number[]): string {
  return `var<private> ${name}: array<u32, ${v.length}> = array<u32, ${v.length}>(${v.map((x) => `${x}u`).join(', ')});`;
}

function treeShape(cfg: SoftmaxConfig): TreeShape {
  if (cfg.softmax_type === 'hierarchical') {
    const levels = cfg.hierarchy_levels as number[];
    const out: TreeLevel[] = [];
    let p = 1;
    let off = 0;
    let prevOff = 0;
    levels.forEach((l, d) => {
      const groups = p; // nodes of the level above (1 at the root)
      out.push({ groups, root: d === 0, decls: '', start: `(${off}u + g * ${l}u)`, len: `${l}u`, parent: `(${prevOff}u + g)` });
      p *= l;
      prevOff = off;
      off += p;
    });
    return { levels: out, inLen: off, out: p, a: 0, b: off - p };
  }
  const cut = cfg.adaptive_cutoffs as number[];
  const K = cut.length - 1;
  const c0 = cut[0];
  const head = c0 + K;
  const levels: TreeLevel[] = [{ groups: 1, root: true, decls: '', start: '0u', len: `${head}u`, parent: '0u' }];
  if (K > 0) {
    const starts = Array.from({ length: K }, (_, k) => head + cut[k] - c0);
    const lens = Array.from({ length: K }, (_, k) => cut[k + 1] - cut[k]);
    levels.push({ groups: K, root: false, decls: [u32Table('TSTART', starts), u32Table('TLEN', lens)].join('\n'), start: 'TSTART[g]', len: 'TLEN[g]', parent: `(${c0}u + g)` });
  }
  return { levels, inLen: cut[K] + K, out: cut[K], a: c0, b: K };
}

/** A kernel with one invocation per unit (grid2d over workgroups of SEG_WG); `u` is the unit index. */
function unitKernel(cc: GpuCompileContext, o: { label: string; units: number; buffers: readonly { name: string; access: 'read' | 'read_write' }[]; math?: readonly string[]; decls?: string; consts?: Record<string, number>; body: string }): Promise<Kernel> {
  const g = grid2d(Math.ceil(o.units / SEG_WG), cc.maxWorkgroups);
  return cc.kernel(
    {
      label: o.label,
      buffers: o.buffers,
      math: o.math,
      consts: { ...(o.consts ?? {}), UNITS: o.units, NX: g.x },
      decls: o.decls,
      workgroupSize: [SEG_WG],
      body: `  let u = (wid.y * NX + wid.x) * ${SEG_WG}u + lid.x;
  if (u >= UNITS) { return; }
${o.body}`,
    },
    [g.x, g.y],
  );
}

/** A kernel with one workgroup of SOFTMAX_WG invocations per unit; `u` is the unit index (uniform). */
function groupKernel(cc: GpuCompileContext, o: { label: string; units: number; buffers: readonly { name: string; access: 'read' | 'read_write' }[]; math?: readonly string[]; decls?: string; consts?: Record<string, number>; body: string }): Promise<Kernel> {
  const g = grid2d(o.units, cc.maxWorkgroups);
  return cc.kernel(
    {
      label: o.label,
      buffers: o.buffers,
      math: o.math,
      consts: { ...(o.consts ?? {}), UNITS: o.units, NX: g.x },
      decls: [wgslGroupSoftmaxDecls, o.decls ?? ''].join('\n'),
      workgroupSize: [SOFTMAX_WG],
      body: `  let u = wid.y * NX + wid.x;
  if (u >= UNITS) { return; }
${o.body}`,
    },
    [g.x, g.y],
  );
}

/** What a forward keeps for the backward (GPU values of the step's Run). */
interface Saved {
  readonly y?: GpuVal;
  readonly g?: GpuVal;
  readonly cond?: GpuVal;
  readonly p?: GpuVal;
  readonly pi?: GpuVal;
  readonly sm?: GpuVal;
}

interface Compiled {
  forward(run: Run, x: Val, ctx: RunContext | null): Promise<{ y: GpuVal; saved: Saved }>;
  /** Absent when compiled for inference only. */
  backward?(run: Run, saved: Saved, dy: Val): Promise<GpuVal>;
}

async function build(layer: Layer, cc: GpuCompileContext, train: boolean): Promise<Compiled> {
  const cfg = layer.config as SoftmaxConfig;
  const kind = kindOf(cfg);
  const size = cc.batch * layer.inputShape.reduce((a, b) => a * b, 1);
  const last = layer.inputShape.length > 0 ? layer.inputShape[layer.inputShape.length - 1] : 1;
  const inShape = [cc.batch, ...layer.inputShape];
  const outShape = [cc.batch, ...layer.outputShape];
  const outSize = outShape.reduce((a, b) => a * b, 1);
  const label = `${cc.prefix} softmax ${cfg.softmax_type}`;
  cc.need(Math.max(size, outSize), `${cc.prefix} (softmax) activations`);
  switch (kind) {
    case 'plain':
      return buildPlain(cfg, cc, train, size, last, label, inShape, outShape);
    case 'sparsemax':
    case 'entmax':
      return buildSorted(kind, cc, train, size, last, label, inShape, outShape);
    case 'tree':
      return buildTree(cfg, cc, train, size, label, inShape, outShape);
    case 'mixture':
      return buildMixture(cfg, cc, train, size, last, label, inShape, outShape);
  }
}

async function buildPlain(cfg: SoftmaxConfig, cc: GpuCompileContext, train: boolean, size: number, last: number, label: string, inShape: number[], outShape: number[]): Promise<Compiled> {
  const mask = cfg.softmax_type === 'masked' ? (cfg.mask as boolean[]) : null;
  const rowLen = mask ? mask.length : cfg.softmax_type === 'grid' ? (cfg.softmax_cols as number) : last;
  const rows = size / rowLen;
  const temperature = cfg.softmax_type === 'temperature' || cfg.softmax_type === 'gumbel' ? f32(cfg.temperature as number) : null;
  const kernel = await softmaxRowsKernel(cc, { label: `${label} ${rows}x${rowLen}`, rows, rowLen, mask, temperature });
  const gumbel = train && cfg.softmax_type === 'gumbel' && cfg.gumbel_noise === true;
  const noisy = gumbel ? await softmaxRowsNoiseKernel(cc, { label: `${label} ${rows}x${rowLen} noise`, rows, rowLen, temperature: temperature! }) : null;
  const back = train ? await softmaxRowsBackwardKernel(cc, { label: `${label} backward ${rows}x${rowLen}`, rows, rowLen, mask, temperature }) : null;
  return {
    async forward(run, xv, ctx) {
      const x = run.gpu(xv);
      const y = run.output(outShape);
      if (noisy && ctx && ctx.training && ctx.rng) {
        // softmax.ts draws one sample per element of the batch tensor, row-major.
        const g = new Float32Array(size);
        for (let i = 0; i < size; i++) g[i] = gumbelSample(ctx.rng);
        const noise = run.gpu({ kind: 'cpu', tensor: new Tensor(inShape, g) });
        run.dispatch(noisy, [x.buffer, noise.buffer, y.buffer]);
      } else run.dispatch(kernel, [x.buffer, y.buffer]);
      return { y, saved: { y } };
    },
    backward: back
      ? async (run, saved, dyv) => {
          const dy = run.gpu(dyv);
          const dx = run.output(inShape);
          run.dispatch(back, [saved.y!.buffer, dy.buffer, dx.buffer]);
          return dx;
        }
      : undefined,
  };
}

async function buildSorted(kind: 'sparsemax' | 'entmax', cc: GpuCompileContext, train: boolean, size: number, rowLen: number, label: string, inShape: number[], outShape: number[]): Promise<Compiled> {
  const rows = size / rowLen;
  const spec = { label: `${label} ${rows}x${rowLen}`, rows, rowLen };
  const fwd = kind === 'sparsemax' ? await sparsemaxRowsKernels(cc, spec) : await entmax15RowsKernels(cc, spec);
  const bspec = { ...spec, label: `${label} backward ${rows}x${rowLen}` };
  const back = train ? (kind === 'sparsemax' ? await sparsemaxRowsBackwardKernel(cc, bspec) : await entmax15RowsBackwardKernel(cc, bspec)) : null;
  return {
    async forward(run, xv) {
      const x = run.gpu(xv);
      const y = run.output(outShape);
      if (kind === 'sparsemax') {
        fwd(run, x.buffer, y.buffer);
        return { y, saved: { y } };
      }
      const g = run.output(outShape);
      fwd(run, x.buffer, y.buffer, g.buffer);
      return { y, saved: { g } };
    },
    backward: back
      ? async (run, saved, dyv) => {
          const dy = run.gpu(dyv);
          const dx = run.output(inShape);
          run.dispatch(back, [(kind === 'sparsemax' ? saved.y! : saved.g!).buffer, dy.buffer, dx.buffer]);
          return dx;
        }
      : undefined,
  };
}

async function buildTree(cfg: SoftmaxConfig, cc: GpuCompileContext, train: boolean, size: number, label: string, inShape: number[], outShape: number[]): Promise<Compiled> {
  const t = treeShape(cfg);
  const N = t.inLen;
  const rows = size / N;
  const leafConsts = { N, OUT: t.out, LA: t.a, LB: t.b };
  const leaf = 'fn leaf(k: u32) -> u32 { if (k < LA) { return k; } return k + LB; }';
  // forward, level by level, one workgroup per (row, group): cond = softmaxSegment(group);
  // p = cond (root) or p[parent] * cond
  const fwd = await Promise.all(
    t.levels.map((lv, d) =>
      groupKernel(cc, {
        label: `${label} level ${d} ${rows}x${lv.groups}`,
        units: rows * lv.groups,
        buffers: [{ name: 'x', access: 'read' }, { name: 'cond', access: 'read_write' }, { name: 'p', access: 'read_write' }],
        math: ['exp', 'div'],
        decls: lv.decls,
        consts: { N, G: lv.groups },
        body: `  let r = u / G;
  let g = u - r * G;
  let o = r * N;
  let st = o + ${lv.start};
  let len = ${lv.len};
${lv.root ? '' : `  let pp = p[o + ${lv.parent}];`}
${wgslGroupSoftmax('x', 'st', 'cond', 'st', 'len', lv.root ? 'p[st + i] = v;' : 'p[st + i] = h_mul(pp, v);')}`,
      }),
    ),
  );
  const gather = await unitKernel(cc, {
    label: `${label} leaves ${rows}x${t.out}`,
    units: rows * t.out,
    buffers: [{ name: 'p', access: 'read' }, { name: 'y', access: 'read_write' }],
    decls: leaf,
    consts: leafConsts,
    body: `  let r = u / OUT;
  let k = u - r * OUT;
  y[u] = p[r * N + leaf(k)];`,
  });
  let back: { scatter: Kernel; levels: Kernel[] } | null = null;
  if (train) {
    const scatter = await unitKernel(cc, {
      label: `${label} backward leaves ${rows}x${t.out}`,
      units: rows * t.out,
      buffers: [{ name: 'dy', access: 'read' }, { name: 'dp', access: 'read_write' }],
      decls: leaf,
      consts: leafConsts,
      body: `  let r = u / OUT;
  let k = u - r * OUT;
  dp[r * N + leaf(k)] = dy[u];`,
    });
    // treeBackward, one workgroup per (row, group): dcond = dp (root) or dp * p[parent], with
    // dp[parent] = sum over the group ascending of dp * cond; then softmaxSegmentBackward(cond,
    // dcond). Invocation 0 forms the sums; the dot of the segment backward (sum of dcond * cond
    // ascending) in the same loop: the accumulators are independent, so their orders are the
    // CPU's. dx is element-wise, strided.
    const levels = await Promise.all(
      t.levels.map((lv, d) =>
        groupKernel(cc, {
          label: `${label} backward level ${d} ${rows}x${lv.groups}`,
          units: rows * lv.groups,
          buffers: [{ name: 'cond', access: 'read' }, { name: 'p', access: 'read' }, { name: 'dp', access: 'read_write' }, { name: 'dx', access: 'read_write' }],
          decls: lv.decls,
          consts: { N, G: lv.groups },
          body: `  let r = u / G;
  let g = u - r * G;
  let o = r * N;
  let st = o + ${lv.start};
  let len = ${lv.len};
${lv.root
    ? `  if (lid.x == 0u) {
    var dot = h_zero();
    for (var i = 0u; i < len; i++) { dot = h_add(dot, h_mul(dp[st + i], cond[st + i])); }
    sh_s = dot;
  }
  workgroupBarrier();
  let dot = sh_s;
  for (var i = lid.x; i < len; i += ${SOFTMAX_WG}u) { dx[st + i] = h_mul(cond[st + i], h_sub(dp[st + i], dot)); }`
    : `  let pp = p[o + ${lv.parent}];
  if (lid.x == 0u) {
    var acc = h_zero();
    var dot = h_zero();
    for (var i = 0u; i < len; i++) {
      let dc = h_mul(dp[st + i], pp);
      acc = h_add(acc, h_mul(dp[st + i], cond[st + i]));
      dot = h_add(dot, h_mul(dc, cond[st + i]));
    }
    dp[o + ${lv.parent}] = acc;
    sh_s = dot;
  }
  workgroupBarrier();
  let dot = sh_s;
  for (var i = lid.x; i < len; i += ${SOFTMAX_WG}u) { dx[st + i] = h_mul(cond[st + i], h_sub(h_mul(dp[st + i], pp), dot)); }`}`,
        }),
      ),
    );
    back = { scatter, levels };
  }
  return {
    async forward(run, xv) {
      const x = run.gpu(xv);
      const cond = run.output(inShape);
      const p = run.output(inShape);
      for (const k of fwd) run.dispatch(k, [x.buffer, cond.buffer, p.buffer]);
      const y = run.output(outShape);
      run.dispatch(gather, [p.buffer, y.buffer]);
      return { y, saved: { cond, p } };
    },
    backward: back
      ? async (run, saved, dyv) => {
          const dy = run.gpu(dyv);
          const dp = run.alloc(size);
          const dx = run.output(inShape);
          run.dispatch(back!.scatter, [dy.buffer, dp]);
          for (let d = back!.levels.length - 1; d >= 0; d--) run.dispatch(back!.levels[d], [saved.cond!.buffer, saved.p!.buffer, dp, dx.buffer]);
          return dx;
        }
      : undefined,
  };
}

async function buildMixture(cfg: SoftmaxConfig, cc: GpuCompileContext, train: boolean, size: number, L: number, label: string, inShape: number[], outShape: number[]): Promise<Compiled> {
  const K = cfg.mixture_components as number;
  const weights = Array.isArray(cfg.mixture_weights) ? (cfg.mixture_weights as number[]) : null;
  const n = (weights ? L : L - K) / K;
  const base = weights ? 0 : K;
  const rows = size / L;
  // the fixed mixture, as the CPU layer's constructor: pi[k] = w[k] / (sum ascending of w)
  let piDecl = '';
  if (weights) {
    const w = weights.map((v) => f32(v));
    let total = 0;
    for (const v of w) total = add(total, v);
    const pi = w.map((v) => div(v, total));
    // as bit patterns: some compilers (naga) take no bitcast in a module-scope initializer
    piDecl = u32Table('PI', pi.map(f32Bits));
  }
  const consts = { K, NC: n, L, BASE: base };
  // segment 0: pi (softmax of the row's first K logits, or the fixed weights); segment 1 + k: component k
  const segs = await groupKernel(cc, {
    label: `${label} segments ${rows}x${K + 1}`,
    units: rows * (K + 1),
    buffers: [{ name: 'x', access: 'read' }, { name: 'pi', access: 'read_write' }, { name: 'sm', access: 'read_write' }],
    math: ['exp', 'div'],
    decls: piDecl,
    consts,
    body: `  let r = u / (K + 1u);
  let seg = u - r * (K + 1u);
  let o = r * L;
  if (seg == 0u) {
${weights ? `    for (var k = lid.x; k < K; k += ${SOFTMAX_WG}u) { pi[r * K + k] = bitcast<f32>(PI[k]); }` : wgslGroupSoftmax('x', 'o', 'pi', 'r * K', 'K')}
    return;
  }
  let k = seg - 1u;
${wgslGroupSoftmax('x', 'o + BASE + k * NC', 'sm', '(r * K + k) * NC', 'NC')}`,
  });
  const mix = await unitKernel(cc, {
    label: `${label} mix ${rows}x${n}`,
    units: rows * n,
    buffers: [{ name: 'pi', access: 'read' }, { name: 'sm', access: 'read' }, { name: 'y', access: 'read_write' }],
    consts,
    body: `  let r = u / NC;
  let i = u - r * NC;
  var acc = h_zero();
  for (var k = 0u; k < K; k++) { acc = h_add(acc, h_mul(pi[r * K + k], sm[(r * K + k) * NC + i])); }
  y[u] = acc;`,
  });
  let back: { comp: Kernel; pi: Kernel | null } | null = null;
  if (train) {
    // mixtureBackward, one (row, k): ds[i] = dy[i] * pi[k]; dpi[k] = sum over i ascending of
    // dy[i] * s_k[i]; then softmaxSegmentBackward(s_k, ds) (its dot in the same loop).
    const comp = await groupKernel(cc, {
      label: `${label} backward components ${rows}x${K}`,
      units: rows * K,
      buffers: [{ name: 'pi', access: 'read' }, { name: 'sm', access: 'read' }, { name: 'dy', access: 'read' }, { name: 'dpi', access: 'read_write' }, { name: 'dx', access: 'read_write' }],
      consts,
      body: `  let r = u / K;
  let k = u - r * K;
  let pk = pi[u];
  let so = u * NC;
  let dyo = r * NC;
  if (lid.x == 0u) {
    var acc = h_zero();
    var dot = h_zero();
    for (var i = 0u; i < NC; i++) {
      let d = dy[dyo + i];
      acc = h_add(acc, h_mul(d, sm[so + i]));
      dot = h_add(dot, h_mul(h_mul(d, pk), sm[so + i]));
    }
    dpi[u] = acc;
    sh_s = dot;
  }
  workgroupBarrier();
  let dot = sh_s;
  let xo = r * L + BASE + k * NC;
  for (var i = lid.x; i < NC; i += ${SOFTMAX_WG}u) { dx[xo + i] = h_mul(sm[so + i], h_sub(h_mul(dy[dyo + i], pk), dot)); }`,
    });
    const pi = weights
      ? null
      : await unitKernel(cc, {
          label: `${label} backward pi ${rows}x${K}`,
          units: rows,
          buffers: [{ name: 'pi', access: 'read' }, { name: 'dpi', access: 'read' }, { name: 'dx', access: 'read_write' }],
          consts,
          body: `  let o = u * K;
  var dot = h_zero();
  for (var k = 0u; k < K; k++) { dot = h_add(dot, h_mul(dpi[o + k], pi[o + k])); }
  for (var k = 0u; k < K; k++) { dx[u * L + k] = h_mul(pi[o + k], h_sub(dpi[o + k], dot)); }`,
        });
    back = { comp, pi };
  }
  return {
    async forward(run, xv) {
      const x = run.gpu(xv);
      const pi = run.output([rows, K]);
      const sm = run.output([rows, K, n]);
      run.dispatch(segs, [x.buffer, pi.buffer, sm.buffer]);
      const y = run.output(outShape);
      run.dispatch(mix, [pi.buffer, sm.buffer, y.buffer]);
      return { y, saved: { pi, sm } };
    },
    backward: back
      ? async (run, saved, dyv) => {
          const dy = run.gpu(dyv);
          const dpi = run.alloc(rows * K);
          const dx = run.output(inShape);
          run.dispatch(back!.comp, [saved.pi!.buffer, saved.sm!.buffer, dy.buffer, dpi, dx.buffer]);
          if (back!.pi) run.dispatch(back!.pi, [saved.pi!.buffer, dpi, dx.buffer]);
          return dx;
        }
      : undefined,
  };
}

export const softmaxGpu: GpuLayerKernel = {
  type: 'softmax',
  async compile(layer: Layer, cc: GpuCompileContext): Promise<LayerOp> {
    const c = await build(layer, cc, false);
    return async (run: Run, xv: Val): Promise<Val> => (await c.forward(run, xv, null)).y;
  },
  trainUnsupported(): string | null {
    return null;
  },
  async compileTrain(layer: Layer, cc: GpuTrainContext): Promise<TrainOp> {
    const c = await build(layer, cc, true);
    return {
      async forward(run: Run, x: Val, ctx: RunContext): Promise<TrainForwarded> {
        return c.forward(run, x, ctx);
      },
      async backward(run: Run, saved: unknown, dy: Val): Promise<{ dx: Val }> {
        return { dx: await c.backward!(run, saved as Saved, dy) };
      },
    };
  },
};
