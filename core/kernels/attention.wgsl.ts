/**
 * WGSL scaled dot-product attention: attentionForward / attentionBackward of
 * kernels/attention.ts, in their canonical order, for a batch of samples.
 *
 * Layouts: q, dO [batch, sq, H * Dh]; P, dS [batch, H, sq, sk]; k, v either per sample
 * [batch, sk, KV * Dh] (sk = sq, the plain forward) or from the KV cache, position-major
 * [positions, batch, KV * Dh] with the query offset `off` read from prm[0] (an f32 holding the
 * integer; sk = off + sq), so a module serves every cache length.
 *
 * Forward, one workgroup per (b, h, i) row:
 *   scores s[j] = (sum over d ascending of q * k, from +0) * scale, j < n(i), in parallel;
 *   invocation 0: m = max (v > m from -Inf), then z = sum of e[j] ascending from +0;
 *   e[j] = exp(s[j] - m) and P[j] = e[j] / z in parallel (masked P = +0);
 *   o[d] = sum over j < n(i) ascending of P[j] * v[j, d] from +0, in parallel over d.
 * Backward:
 *   dS row kernel (one workgroup per row): dP[j] = sum over d of dO * v, in parallel;
 *     invocation 0: dot2 = sum over j ascending of dP[j] * P[j]; dS[j] = (P * (dP - dot2)) * scale;
 *   dq[i, h, d]: sum over j < n(i) ascending of dS * k, one invocation per element;
 *   dk, dv[j, g, d]: one invocation per element, one sequential sum over (h of group g
 *     ascending, then i ascending with j < n(i)), masked pairs skipped as on the CPU.
 * Intermediate values pass through P / dS in storage (storageBarrier + workgroupBarrier
 * between the phases of a row).
 */
import type { GpuCompileContext } from '../backend/webgpu/kernel.ts';
import type { Kernel } from '../backend/webgpu/run.ts';
import { f32Lit, grid2d } from '../backend/webgpu/shader.ts';

/** Invocations per attention row. */
export const ATTN_WG = 64;
const MAP = 256;

export interface AttentionSpec {
  readonly label: string;
  readonly batch: number;
  /** Query positions per sample (sq). */
  readonly seq: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly causal: boolean;
  /** f32 score scale. */
  readonly scale: number;
  /** Keys and values come from the KV cache (position-major), offset in prm[0]. */
  readonly cached?: boolean;
}

function dimConsts(s: AttentionSpec): Record<string, number> {
  return { B: s.batch, S: s.seq, H: s.heads, DH: s.headDim, QW: s.heads * s.headDim, KW: s.kvHeads * s.headDim, GROUP: s.heads / s.kvHeads };
}

/** WGSL for off, sk, kv row start and the visible count n(i). */
function positions(s: AttentionSpec): string {
  return [
    s.cached ? 'fn kv_off() -> u32 { return u32(prm[0]); }' : 'fn kv_off() -> u32 { return 0u; }',
    s.cached ? 'fn kv_row(b: u32, j: u32) -> u32 { return (j * B + b) * KW; }' : 'fn kv_row(b: u32, j: u32) -> u32 { return (b * S + j) * KW; }',
    s.causal ? 'fn visible(i: u32, sk: u32, off: u32) -> u32 { return min(sk, off + i + 1u); }' : 'fn visible(i: u32, sk: u32, off: u32) -> u32 { return sk; }',
  ].join('\n');
}

/**
 * Binds q, k, v, (prm when cached), p, o (read_write). p is [B, H, S, sk] (the probabilities,
 * masked +0), o is [B, S, H * Dh].
 */
export function attentionForwardKernel(cc: GpuCompileContext, s: AttentionSpec): Promise<Kernel> {
  const rows = s.batch * s.heads * s.seq;
  const g = grid2d(rows, cc.maxWorkgroups);
  const body = `  let row = wid.y * NX + wid.x;
  if (row >= ROWS) { return; }
  let i = row % S;
  let bh = row / S;
  let h = bh % H;
  let b = bh / H;
  let gk = (h / GROUP) * DH;
  let off = kv_off();
  let sk = off + S;
  let n = visible(i, sk, off);
  let qo = (b * S + i) * QW + h * DH;
  let po = row * sk;
  for (var j = lid.x; j < n; j += WG) {
    let ko = kv_row(b, j) + gk;
    var dot = h_zero();
    for (var d = 0u; d < DH; d++) { dot = h_add(dot, h_mul(q[qo + d], k[ko + d])); }
    p[po + j] = h_mul(dot, ${f32Lit(s.scale)});
  }
  storageBarrier();
  workgroupBarrier();
  if (lid.x == 0u) {
    var m = h_neg_inf();
    for (var j = 0u; j < n; j++) {
      let sv = p[po + j];
      if (sv > m) { m = sv; }
    }
    sh_m = m;
  }
  workgroupBarrier();
  let m = sh_m;
  for (var j = lid.x; j < n; j += WG) { p[po + j] = heddle_exp(h_sub(p[po + j], m)); }
  storageBarrier();
  workgroupBarrier();
  if (lid.x == 0u) {
    var z = h_zero();
    for (var j = 0u; j < n; j++) { z = h_add(z, p[po + j]); }
    sh_z = z;
  }
  workgroupBarrier();
  let z = sh_z;
  for (var j = lid.x; j < sk; j += WG) {
    if (j < n) { p[po + j] = heddle_div(p[po + j], z); } else { p[po + j] = 0.0; }
  }
  storageBarrier();
  workgroupBarrier();
  for (var d = lid.x; d < DH; d += WG) {
    var acc = h_zero();
    for (var j = 0u; j < n; j++) { acc = h_add(acc, h_mul(p[po + j], v[kv_row(b, j) + gk + d])); }
    o[qo + d] = acc;
  }`;
  return cc.kernel(
    {
      label: s.label,
      buffers: [
        { name: 'q', access: 'read' }, { name: 'k', access: 'read' }, { name: 'v', access: 'read' },
        ...(s.cached ? [{ name: 'prm', access: 'read' as const }] : []),
        { name: 'p', access: 'read_write' }, { name: 'o', access: 'read_write' },
      ],
      math: ['exp', 'div'],
      consts: { ...dimConsts(s), ROWS: rows, NX: g.x, WG: ATTN_WG },
      decls: `var<workgroup> sh_m: f32;\nvar<workgroup> sh_z: f32;\n${positions(s)}`,
      workgroupSize: [ATTN_WG],
      body,
    },
    [g.x, g.y],
  );
}

/** dS from dO, v, P (plain layout, off 0). Binds dout, v, p, ds (read_write) [B, H, S, S]. */
export function attentionScoresGradKernel(cc: GpuCompileContext, s: AttentionSpec): Promise<Kernel> {
  const rows = s.batch * s.heads * s.seq;
  const g = grid2d(rows, cc.maxWorkgroups);
  const body = `  let row = wid.y * NX + wid.x;
  if (row >= ROWS) { return; }
  let i = row % S;
  let bh = row / S;
  let h = bh % H;
  let b = bh / H;
  let gk = (h / GROUP) * DH;
  let n = visible(i, S, 0u);
  let qo = (b * S + i) * QW + h * DH;
  let po = row * S;
  for (var j = lid.x; j < n; j += WG) {
    let vo = kv_row(b, j) + gk;
    var dp = h_zero();
    for (var d = 0u; d < DH; d++) { dp = h_add(dp, h_mul(dout[qo + d], v[vo + d])); }
    ds[po + j] = dp;
  }
  storageBarrier();
  workgroupBarrier();
  if (lid.x == 0u) {
    var dot2 = h_zero();
    for (var j = 0u; j < n; j++) { dot2 = h_add(dot2, h_mul(ds[po + j], p[po + j])); }
    sh_dot = dot2;
  }
  workgroupBarrier();
  let dot2 = sh_dot;
  for (var j = lid.x; j < S; j += WG) {
    if (j < n) { ds[po + j] = h_mul(h_mul(p[po + j], h_sub(ds[po + j], dot2)), ${f32Lit(s.scale)}); } else { ds[po + j] = 0.0; }
  }`;
  return cc.kernel(
    {
      label: s.label,
      buffers: [{ name: 'dout', access: 'read' }, { name: 'v', access: 'read' }, { name: 'p', access: 'read' }, { name: 'ds', access: 'read_write' }],
      consts: { ...dimConsts(s), ROWS: rows, NX: g.x, WG: ATTN_WG },
      decls: `var<workgroup> sh_dot: f32;\n${positions({ ...s, cached: false })}`,
      workgroupSize: [ATTN_WG],
      body,
    },
    [g.x, g.y],
  );
}

/** dq [B, S, H * Dh] = dS k. Binds ds, k, dq (read_write). */
export function attentionDqKernel(cc: GpuCompileContext, s: AttentionSpec): Promise<Kernel> {
  const n = s.batch * s.seq * s.heads * s.headDim;
  const g = grid2d(Math.ceil(n / MAP), cc.maxWorkgroups);
  return cc.kernel(
    {
      label: s.label,
      buffers: [{ name: 'ds', access: 'read' }, { name: 'k', access: 'read' }, { name: 'dq', access: 'read_write' }],
      consts: { ...dimConsts(s), N: n, NX: g.x },
      decls: positions({ ...s, cached: false }),
      workgroupSize: [MAP],
      body: `  let idx = (wid.y * NX + wid.x) * ${MAP}u + lid.x;
  if (idx >= N) { return; }
  let d = idx % DH;
  let h = (idx / DH) % H;
  let bi = idx / QW;
  let i = bi % S;
  let b = bi / S;
  let gk = (h / GROUP) * DH + d;
  let po = ((b * H + h) * S + i) * S;
  let n = visible(i, S, 0u);
  var acc = h_zero();
  for (var j = 0u; j < n; j++) { acc = h_add(acc, h_mul(ds[po + j], k[kv_row(b, j) + gk])); }
  dq[idx] = acc;`,
    },
    [g.x, g.y],
  );
}

/**
 * dk, dv [B, S, KV * Dh]: dk = sum dS q, dv = sum P dO over (h of the group ascending, i
 * ascending, j < n(i)). Binds ds, q, p, dout, dk, dv (read_write).
 */
export function attentionDkvKernel(cc: GpuCompileContext, s: AttentionSpec): Promise<Kernel> {
  const n = s.batch * s.seq * s.kvHeads * s.headDim;
  const g = grid2d(Math.ceil(n / MAP), cc.maxWorkgroups);
  // Causal (off 0): j < n(i) = min(S, i + 1) exactly when i >= j.
  const first = s.causal ? 'j' : '0u';
  return cc.kernel(
    {
      label: s.label,
      buffers: [
        { name: 'ds', access: 'read' }, { name: 'q', access: 'read' }, { name: 'p', access: 'read' }, { name: 'dout', access: 'read' },
        { name: 'dk', access: 'read_write' }, { name: 'dv', access: 'read_write' },
      ],
      consts: { ...dimConsts(s), N: n, NX: g.x },
      workgroupSize: [MAP],
      body: `  let idx = (wid.y * NX + wid.x) * ${MAP}u + lid.x;
  if (idx >= N) { return; }
  let c = idx % KW;
  let bj = idx / KW;
  let j = bj % S;
  let b = bj / S;
  let gi = c / DH;
  let d = c % DH;
  var ak = h_zero();
  var av = h_zero();
  for (var hh = 0u; hh < GROUP; hh++) {
    let h = gi * GROUP + hh;
    for (var i = ${first}; i < S; i++) {
      let pi = ((b * H + h) * S + i) * S + j;
      let qi = (b * S + i) * QW + h * DH + d;
      ak = h_add(ak, h_mul(ds[pi], q[qi]));
      av = h_add(av, h_mul(p[pi], dout[qi]));
    }
  }
  dk[idx] = ak;
  dv[idx] = av;`,
    },
    [g.x, g.y],
  );
}
