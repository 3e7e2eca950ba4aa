/**
 * WGSL row softmax: the canonical arithmetic of softmaxRowsForward (kernels/softmax.ts), one
 * workgroup per row.
 *
 *   z[i] = x[i]                (or heddle_div(x[i], T) for a temperature, as the layer does)
 *   m    = max over unmasked i ascending (v > m replaces m, from -Inf): invocation 0, sequential
 *   e[i] = exp(z[i] - m)       every invocation, strided (independent element-wise values)
 *   s    = sum over unmasked i ascending of e[i], from +0: invocation 0, sequential
 *   y[i] = e[i] / s            (masked y[i] = +0), every invocation, strided
 *
 * e is written into y and read back by invocation 0 after a storage barrier; the sums are
 * sequential so their order is the CPU's. (s starts from a literal 0.0: its first addend is an
 * exponential, >= +0, so +0 + e0 has the same bits however a compiler folds it.)
 *
 * Below: the gumbel-noise variant of the row softmax, the row softmax backward, sparsemax and
 * 1.5-entmax forward and backward, and the segment softmax of the tree / mixture variants
 * (one workgroup per segment), each following kernels/softmax.ts step by step.
 */
import type { GpuCompileContext } from '../backend/webgpu/kernel.ts';
import type { GpuBuffer } from '../backend/webgpu/gpu.ts';
import type { Kernel, Run } from '../backend/webgpu/run.ts';
import { f32Lit, grid2d, packBits } from '../backend/webgpu/shader.ts';

/** Invocations per row. */
export const SOFTMAX_WG = 64;

export interface SoftmaxRowsSpec {
  readonly label: string;
  readonly rows: number;
  readonly rowLen: number;
  /** false = masked out (probability +0); length rowLen. */
  readonly mask?: readonly boolean[] | null;
  /** Divide the logits by this f32 value first. */
  readonly temperature?: number | null;
}

/** Binds x (read) and y (read_write), both rows x rowLen. */
export function softmaxRowsKernel(cc: GpuCompileContext, o: SoftmaxRowsSpec): Promise<Kernel> {
  return rowsKernel(cc, o, false);
}

/**
 * The gumbel training forward: z[i] = heddle_div(h_add(x[i], noise[i]), T), then the row
 * softmax (softmax.ts: z = div(add(x, G), T), G drawn on the host by the layer's own
 * gumbelSample calls). Binds x, noise (read) and y (read_write), all rows x rowLen.
 */
export function softmaxRowsNoiseKernel(cc: GpuCompileContext, o: SoftmaxRowsSpec & { readonly temperature: number }): Promise<Kernel> {
  return rowsKernel(cc, o, true);
}

function maskDecls(mask: readonly boolean[] | null): string {
  const words = mask ? packBits(mask) : [];
  return [
    mask ? `var<private> MASK: array<u32, ${words.length}> = array<u32, ${words.length}>(${words.map((w) => `${w}u`).join(', ')});` : '',
    mask ? 'fn keep(j: u32) -> bool { return ((MASK[j >> 5u] >> (j & 31u)) & 1u) != 0u; }' : 'fn keep(j: u32) -> bool { return true; }',
  ].join('\n');
}

function rowsKernel(cc: GpuCompileContext, o: SoftmaxRowsSpec, noise: boolean): Promise<Kernel> {
  const g = grid2d(o.rows, cc.maxWorkgroups);
  const mask = o.mask ?? null;
  const t = o.temperature ?? null;
  const zAt = noise
    ? `fn z_at(i: u32) -> f32 { return heddle_div(h_add(x[i], noise[i]), ${f32Lit(t!)}); }`
    : t !== null ? `fn z_at(i: u32) -> f32 { return heddle_div(x[i], ${f32Lit(t)}); }` : 'fn z_at(i: u32) -> f32 { return x[i]; }';
  const decls = ['var<workgroup> sh_m: f32;', 'var<workgroup> sh_s: f32;', maskDecls(mask), zAt].join('\n');
  const body = `  let row = wid.y * NX + wid.x;
  if (row >= ROWS) { return; }
  let base = row * N;
  if (lid.x == 0u) {
    var m = h_neg_inf();
    for (var j = 0u; j < N; j++) {
      if (keep(j)) {
        let v = z_at(base + j);
        if (v > m) { m = v; }
      }
    }
    sh_m = m;
  }
  workgroupBarrier();
  let m = sh_m;
  for (var j = lid.x; j < N; j += WG) {
    if (keep(j)) { y[base + j] = heddle_exp(h_sub(z_at(base + j), m)); }
  }
  storageBarrier();
  workgroupBarrier();
  if (lid.x == 0u) {
    var s = 0.0;
    for (var j = 0u; j < N; j++) {
      if (keep(j)) { s = h_add(s, y[base + j]); }
    }
    sh_s = s;
  }
  workgroupBarrier();
  let s = sh_s;
  for (var j = lid.x; j < N; j += WG) {
    if (keep(j)) { y[base + j] = heddle_div(y[base + j], s); } else { y[base + j] = 0.0; }
  }`;
  return cc.kernel(
    {
      label: o.label,
      buffers: [{ name: 'x', access: 'read' }, ...(noise ? [{ name: 'noise', access: 'read' as const }] : []), { name: 'y', access: 'read_write' }],
      math: ['exp', 'div'],
      consts: { ROWS: o.rows, N: o.rowLen, NX: g.x, WG: SOFTMAX_WG },
      decls,
      workgroupSize: [SOFTMAX_WG],
      body,
    },
    [g.x, g.y],
  );
}

/** A quiet NaN made at run time (a NaN constant expression is a shader-creation error). */
const QNAN = 'fn h_nan() -> f32 { return bitcast<f32>(bitcast<u32>(heddle_nz) ^ 0xffc00000u); }';

export interface RowsBackwardSpec {
  readonly label: string;
  readonly rows: number;
  readonly rowLen: number;
  readonly mask?: readonly boolean[] | null;
  /** Divide dx by this f32 value afterwards (temperature, gumbel: softmax.ts's backward). */
  readonly temperature?: number | null;
}

/**
 * softmaxRowsBackward (kernels/softmax.ts), one workgroup per row: invocation 0 sums
 * dot = sum over unmasked i ascending of dy[i] * y[i] from +0; then every invocation writes
 * dx[i] = y[i] * (dy[i] - dot) (masked: +0), divided by T when a temperature is given.
 * Binds y, dy (read) and dx (read_write), all rows x rowLen.
 */
export function softmaxRowsBackwardKernel(cc: GpuCompileContext, o: RowsBackwardSpec): Promise<Kernel> {
  const g = grid2d(o.rows, cc.maxWorkgroups);
  const t = o.temperature ?? null;
  const fin = (v: string): string => (t !== null ? `heddle_div(${v}, ${f32Lit(t)})` : v);
  return cc.kernel(
    {
      label: o.label,
      buffers: [{ name: 'y', access: 'read' }, { name: 'dy', access: 'read' }, { name: 'dx', access: 'read_write' }],
      math: t !== null ? ['div'] : [],
      consts: { ROWS: o.rows, N: o.rowLen, NX: g.x, WG: SOFTMAX_WG },
      decls: ['var<workgroup> sh_dot: f32;', maskDecls(o.mask ?? null)].join('\n'),
      workgroupSize: [SOFTMAX_WG],
      body: `  let row = wid.y * NX + wid.x;
  if (row >= ROWS) { return; }
  let base = row * N;
  if (lid.x == 0u) {
    var dot = h_zero();
    for (var j = 0u; j < N; j++) {
      if (keep(j)) { dot = h_add(dot, h_mul(dy[base + j], y[base + j])); }
    }
    sh_dot = dot;
  }
  workgroupBarrier();
  let dot = sh_dot;
  for (var j = lid.x; j < N; j += WG) {
    if (keep(j)) { dx[base + j] = ${fin('h_mul(y[base + j], h_sub(dy[base + j], dot))')}; } else { dx[base + j] = 0.0; }
  }`,
    },
    [g.x, g.y],
  );
}

/*
 * Sparsemax and 1.5-entmax (kernels/softmax.ts), three dispatches:
 *   shift (one workgroup per row): invocation 0 finds m = max over i ascending (v > m from
 *          -Inf); every invocation writes z[i] = x[i] - m (entmax: (x[i] - m) * 0.5) into y
 *   rank  (one invocation per element): rank(i) = #{j : z[j] > z[i] or (z[j] == z[i] and
 *          j < i)} (sortDescending's order: value descending, ties by position; a
 *          permutation), srt[rank(i)] = z[i]: the row's values in the CPU's sorted order
 *   scan  (one workgroup per row): invocation 0 runs the CPU's loop over k = 1..n of the
 *          sorted values, step by step (same sums, same comparisons), giving tau; every
 *          invocation writes its outputs from z[i] - tau.
 * The rank pass compares values exactly (no rounding), as the CPU's comparator does. A row
 * holding NaN has no portable order on the CPU (its comparator is then inconsistent).
 * No invocation loops much more than n times: llvmpipe (lavapipe) silently ends every loop of
 * an invocation once it has run 65535 iterations in all, so an n^2 / 64 rank loop per
 * invocation went wrong there from n ~ 2000.
 */
export interface SortedRowsSpec {
  readonly label: string;
  readonly rows: number;
  readonly rowLen: number;
}

/** Records the forward: x (rows x rowLen) to y; entmax also writes g. Scratch comes from the Run. */
export type SortedRowsOp = (run: Run, x: GpuBuffer, y: GpuBuffer, g?: GpuBuffer) => void;

async function sortedKernels(cc: GpuCompileContext, o: SortedRowsSpec, entmax: boolean): Promise<SortedRowsOp> {
  const rows = grid2d(o.rows, cc.maxWorkgroups);
  const consts = { ROWS: o.rows, N: o.rowLen, NX: rows.x, WG: SOFTMAX_WG };
  const zExpr = entmax ? `h_mul(h_sub(x[base + j], m), ${f32Lit(0.5)})` : 'h_sub(x[base + j], m)';
  const shift = await cc.kernel(
    {
      label: `${o.label} shift`,
      buffers: [{ name: 'x', access: 'read' }, { name: 'y', access: 'read_write' }],
      consts,
      decls: 'var<workgroup> sh_m: f32;',
      workgroupSize: [SOFTMAX_WG],
      body: `  let row = wid.y * NX + wid.x;
  if (row >= ROWS) { return; }
  let base = row * N;
  if (lid.x == 0u) {
    var m = h_neg_inf();
    for (var j = 0u; j < N; j++) {
      let v = x[base + j];
      if (v > m) { m = v; }
    }
    sh_m = m;
  }
  workgroupBarrier();
  let m = sh_m;
  for (var j = lid.x; j < N; j += WG) { y[base + j] = ${zExpr}; }`,
    },
    [rows.x, rows.y],
  );
  const total = o.rows * o.rowLen;
  const elems = grid2d(Math.ceil(total / SOFTMAX_WG), cc.maxWorkgroups);
  const rank = await cc.kernel(
    {
      label: `${o.label} rank`,
      buffers: [{ name: 'y', access: 'read' }, { name: 'srt', access: 'read_write' }],
      consts: { TOTAL: total, N: o.rowLen, NX: elems.x },
      workgroupSize: [SOFTMAX_WG],
      body: `  let e = (wid.y * NX + wid.x) * ${SOFTMAX_WG}u + lid.x;
  if (e >= TOTAL) { return; }
  let base = (e / N) * N;
  let i = e - base;
  let zi = y[e];
  var r = 0u;
  for (var j = 0u; j < N; j++) {
    let zj = y[base + j];
    if (zj > zi || (zj == zi && j < i)) { r++; }
  }
  srt[base + r] = zi;`,
    },
    [elems.x, elems.y],
  );
  const scan = entmax
    ? `    var c1 = h_zero();
    var c2 = h_zero();
    var count = 0u;
    for (var k = 1u; k <= N; k++) {
      let sk = srt[base + k - 1u];
      let kf = f32(k);
      c1 = h_add(c1, sk);
      c2 = h_add(c2, h_mul(sk, sk));
      let mean = heddle_div(c1, kf);
      let meanSq = heddle_div(c2, kf);
      let ss = h_mul(kf, h_sub(meanSq, h_mul(mean, mean)));
      let delta = heddle_div(h_sub(1.0, ss), kf);
      var dpos = h_zero();
      if (delta > 0.0) { dpos = delta; }
      let tk = h_sub(mean, heddle_sqrt(dpos));
      srt[base + k - 1u] = tk;
      if (tk <= sk) { count++; }
    }
    var tau = h_nan();
    if (count > 0u) { tau = srt[base + count - 1u]; }
    sh_tau = tau;`
    : `    var c = h_zero();
    var support = 1u;
    var cK = h_zero();
    for (var k = 1u; k <= N; k++) {
      let sk = srt[base + k - 1u];
      c = h_add(c, sk);
      if (h_add(1.0, h_mul(f32(k), sk)) > c) {
        support = k;
        cK = c;
      }
    }
    sh_tau = heddle_div(h_sub(cK, 1.0), f32(support));`;
  const out = entmax
    ? `    if (v > 0.0) {
      gs[base + j] = v;
      y[base + j] = h_mul(v, v);
    } else {
      gs[base + j] = 0.0;
      y[base + j] = 0.0;
    }`
    : '    if (v > 0.0) { y[base + j] = v; } else { y[base + j] = 0.0; }';
  const fin = await cc.kernel(
    {
      label: `${o.label} scan`,
      buffers: [{ name: 'y', access: 'read_write' }, ...(entmax ? [{ name: 'gs', access: 'read_write' as const }] : []), { name: 'srt', access: 'read_write' }],
      math: entmax ? ['div', 'sqrt'] : ['div'],
      consts,
      decls: ['var<workgroup> sh_tau: f32;', QNAN].join('\n'),
      workgroupSize: [SOFTMAX_WG],
      body: `  let row = wid.y * NX + wid.x;
  if (row >= ROWS) { return; }
  let base = row * N;
  if (lid.x == 0u) {
${scan}
  }
  workgroupBarrier();
  let tau = sh_tau;
  for (var j = lid.x; j < N; j += WG) {
    let v = h_sub(y[base + j], tau);
${out}
  }`,
    },
    [rows.x, rows.y],
  );
  return (run, x, y, g) => {
    const srt = run.alloc(total);
    run.dispatch(shift, [x, y]);
    run.dispatch(rank, [y, srt]);
    run.dispatch(fin, entmax ? [y, g!, srt] : [y, srt]);
  };
}

/**
 * sparsemaxRowsForward: c = c + s_k; K = the last k with 1 + k * s_k > c (c_K kept);
 * tau = (c_K - 1) / K; y[i] = z[i] - tau when > 0, else +0.
 */
export function sparsemaxRowsKernels(cc: GpuCompileContext, o: SortedRowsSpec): Promise<SortedRowsOp> {
  return sortedKernels(cc, o, false);
}

/**
 * entmax15RowsForward: for k = 1..n, c1 += s_k, c2 += s_k * s_k, mean = c1 / k,
 * meanSq = c2 / k, ss = k * (meanSq - mean * mean), delta = (1 - ss) / k,
 * tau_k = mean - sqrt(max(delta, +0)); count the k with tau_k <= s_k; tau = tau_count
 * (the taus are kept in srt in place of the sorted values already read). Then
 * g[i] = z[i] - tau when > 0 (else +0), y[i] = g[i] * g[i] (else +0). The op needs g.
 */
export function entmax15RowsKernels(cc: GpuCompileContext, o: SortedRowsSpec): Promise<SortedRowsOp> {
  return sortedKernels(cc, o, true);
}

/**
 * sparsemaxRowsBackward: S = {i : y[i] > 0}; s = sum over S ascending of dy (from +0);
 * mean = s / |S|; dx[i] = dy[i] - mean on S, else +0 (an empty S leaves the row +0).
 * Binds y, dy (read) and dx (read_write).
 */
export function sparsemaxRowsBackwardKernel(cc: GpuCompileContext, o: SortedRowsSpec): Promise<Kernel> {
  const g = grid2d(o.rows, cc.maxWorkgroups);
  return cc.kernel(
    {
      label: o.label,
      buffers: [{ name: 'y', access: 'read' }, { name: 'dy', access: 'read' }, { name: 'dx', access: 'read_write' }],
      math: ['div'],
      consts: { ROWS: o.rows, N: o.rowLen, NX: g.x, WG: SOFTMAX_WG },
      decls: ['var<workgroup> sh_mean: f32;', 'var<workgroup> sh_count: u32;'].join('\n'),
      workgroupSize: [SOFTMAX_WG],
      body: `  let row = wid.y * NX + wid.x;
  if (row >= ROWS) { return; }
  let base = row * N;
  if (lid.x == 0u) {
    var s = h_zero();
    var count = 0u;
    for (var j = 0u; j < N; j++) {
      if (y[base + j] > 0.0) {
        s = h_add(s, dy[base + j]);
        count++;
      }
    }
    sh_count = count;
    if (count > 0u) { sh_mean = heddle_div(s, f32(count)); }
  }
  workgroupBarrier();
  let count = sh_count;
  let mean = sh_mean;
  for (var j = lid.x; j < N; j += WG) {
    if (count > 0u && y[base + j] > 0.0) { dx[base + j] = h_sub(dy[base + j], mean); } else { dx[base + j] = 0.0; }
  }`,
    },
    [g.x, g.y],
  );
}

/**
 * entmax15RowsBackward: gs = sum over i ascending of g[i], d = sum of g[i] * dy[i] (both from
 * +0, one loop); when gs > 0: q = d / gs, dx[i] = g[i] * dy[i] - q * g[i] for g[i] > 0;
 * everything else +0. Binds g, dy (read) and dx (read_write).
 */
export function entmax15RowsBackwardKernel(cc: GpuCompileContext, o: SortedRowsSpec): Promise<Kernel> {
  const g = grid2d(o.rows, cc.maxWorkgroups);
  return cc.kernel(
    {
      label: o.label,
      buffers: [{ name: 'gs', access: 'read' }, { name: 'dy', access: 'read' }, { name: 'dx', access: 'read_write' }],
      math: ['div'],
      consts: { ROWS: o.rows, N: o.rowLen, NX: g.x, WG: SOFTMAX_WG },
      decls: ['var<workgroup> sh_q: f32;', 'var<workgroup> sh_ok: u32;'].join('\n'),
      workgroupSize: [SOFTMAX_WG],
      body: `  let row = wid.y * NX + wid.x;
  if (row >= ROWS) { return; }
  let base = row * N;
  if (lid.x == 0u) {
    var sg = h_zero();
    var d = h_zero();
    for (var j = 0u; j < N; j++) {
      sg = h_add(sg, gs[base + j]);
      d = h_add(d, h_mul(gs[base + j], dy[base + j]));
    }
    sh_ok = select(0u, 1u, sg > 0.0);
    if (sg > 0.0) { sh_q = heddle_div(d, sg); }
  }
  workgroupBarrier();
  let ok = sh_ok;
  let q = sh_q;
  for (var j = lid.x; j < N; j += WG) {
    let gi = gs[base + j];
    if (ok != 0u && gi > 0.0) { dx[base + j] = h_sub(h_mul(gi, dy[base + j]), h_mul(q, gi)); } else { dx[base + j] = 0.0; }
  }`,
    },
    [g.x, g.y],
  );
}

/**
 * WGSL statements of softmaxSegment (kernels/softmax.ts) for one workgroup of SOFTMAX_WG
 * invocations (in uniform control flow: every expression below is the same across the
 * workgroup): cond = softmax(src[xo .. xo + n)) into dst[yo ..]. Invocation 0 finds the max
 * (v > m from -Inf) and sums the exponentials ascending from +0; the exponentials and the
 * divisions are element-wise, strided over the invocations. `each(i, v)` is WGSL run for
 * every i with its final value v (after dst[yo + i] = v), e.g. p = p[parent] * v.
 * Needs the workgroup variables sh_m, sh_s (wgslGroupSoftmaxDecls) and the routines exp, div.
 */
export function wgslGroupSoftmax(src: string, xo: string, dst: string, yo: string, n: string, each = ''): string {
  return `  if (lid.x == 0u) {
    var m = h_neg_inf();
    for (var i = 0u; i < ${n}; i++) {
      let v = ${src}[${xo} + i];
      if (v > m) { m = v; }
    }
    sh_m = m;
  }
  workgroupBarrier();
  let gm = sh_m;
  for (var i = lid.x; i < ${n}; i += ${SOFTMAX_WG}u) { ${dst}[${yo} + i] = heddle_exp(h_sub(${src}[${xo} + i], gm)); }
  storageBarrier();
  workgroupBarrier();
  if (lid.x == 0u) {
    var s = h_zero();
    for (var i = 0u; i < ${n}; i++) { s = h_add(s, ${dst}[${yo} + i]); }
    sh_s = s;
  }
  workgroupBarrier();
  let gsum = sh_s;
  for (var i = lid.x; i < ${n}; i += ${SOFTMAX_WG}u) {
    let v = heddle_div(${dst}[${yo} + i], gsum);
    ${dst}[${yo} + i] = v;
    ${each}
  }`;
}

export const wgslGroupSoftmaxDecls = 'var<workgroup> sh_m: f32;\nvar<workgroup> sh_s: f32;';
