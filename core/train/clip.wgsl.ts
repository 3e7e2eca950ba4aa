/**
 * Global-norm gradient clipping on the GPU, in clip.ts's canonical order: one running f32 sum
 * S over every parameter in parameters() order, each parameter's elements ascending, from +0.
 * That single chain of additions is sequential by definition, so it runs in one invocation,
 * chunk after chunk (the sum carried in a small buffer from dispatch to dispatch); then
 * coef = max_norm / (sqrt(S) + 1e-6), and when coef < 1 every gradient is scaled by it.
 */
import type { ShaderSpec } from '../backend/webgpu/shader.ts';
import { f32Lit } from '../backend/webgpu/shader.ts';
import { f32 } from '../math/index.ts';

/**
 * Elements one invocation adds per dispatch. The running sum is sequential by definition, but
 * one invocation must not loop too long: llvmpipe (lavapipe) silently stops an invocation's
 * loops after about 65,535 iterations, and real GPUs have watchdogs. So a parameter of n
 * elements takes ceil(n / NORM_CHUNK) dispatches of the same kernel, each continuing the sum
 * where the previous one stopped.
 */
export const NORM_CHUNK = 16384;

/**
 * Continues s[0] += g[i]^2 over the next NORM_CHUNK elements, each step rounded and flushed.
 * s[1] holds the chunk index as an exact small integer (k < 2^24); it returns to +0 after the
 * parameter's last chunk. Binds g, s.
 */
export function normAccumulateShader(n: number, label: string): ShaderSpec {
  return {
    label,
    buffers: [{ name: 'g', access: 'read' }, { name: 's', access: 'read_write' }],
    consts: { N: n, CHUNK: NORM_CHUNK },
    workgroupSize: [1],
    body: `  let k = u32(s[1]);
  let start = k * CHUNK;
  let end = min(start + CHUNK, N);
  var acc = s[0];
  for (var i = start; i < end; i++) { acc = h_add(acc, h_mul(g[i], g[i])); }
  s[0] = acc;
  if (end >= N) { s[1] = h_zero(); } else { s[1] = f32(k + 1u); }`,
  };
}

/** c[0] = f32(max_norm) / (sqrt(s[0]) + f32(1e-6)); c[1] = sqrt(s[0]) (the norm). Binds s, c. */
export function clipCoefficientShader(maxNorm: number, label: string): ShaderSpec {
  return {
    label,
    buffers: [{ name: 's', access: 'read' }, { name: 'c', access: 'read_write' }],
    math: ['sqrt', 'div'],
    workgroupSize: [1],
    body: `  let total = heddle_sqrt(s[0]);
  c[0] = heddle_div(${f32Lit(f32(maxNorm))}, h_add(total, ${f32Lit(f32(1e-6))}));
  c[1] = total;`,
  };
}

/** g[i] = g[i] * c[0] when c[0] < 1 (else unchanged). Binds g, c. */
export function clipScaleShader(n: number, nx: number, wg: number, label: string): ShaderSpec {
  return {
    label,
    buffers: [{ name: 'g', access: 'read_write' }, { name: 'c', access: 'read' }],
    consts: { N: n, NX: nx },
    workgroupSize: [wg],
    body: `  let i = (wid.y * NX + wid.x) * ${wg}u + lid.x;
  if (i >= N) { return; }
  let coef = c[0];
  if (coef < 1.0) { g[i] = h_mul(g[i], coef); }`,
  };
}
