/**
 * WGSL generation helpers shared by every kernel (the per-layer generators live next to
 * their layers, core/layers/<type>.wgsl.ts).
 *
 * Every generated module has the same frame:
 *   - binding 0: `heddle_nz_buf`, one f32 -0.0; `main` first copies it into the private
 *     `heddle_nz` (declared by the math library). That run-time value is the contraction
 *     barrier: a product is always written `(a * b) + heddle_nz`, which the compiler cannot
 *     fold, so it is rounded on its own before anything is added to it (NVIDIA compilers
 *     otherwise fuse a*b + c into an FMA, even across statements);
 *   - the math routines (exp, div, rsqrt, ...) generated from core/math/routines.ts by
 *     wgslMathLibrary(), never WGSL's builtins (they differ between adapters);
 *   - h_add / h_sub / h_mul: one rounded f32 operation, then an explicit flush to zero by
 *     bits (heddle_ftz), so subnormal results become signed zeros on every adapter, whether
 *     it flushes in hardware (SwiftShader, NVIDIA) or not (lavapipe);
 *   - shapes and tile sizes as `const` values: a module is specific to its shapes.
 */
import { WGSL_NZ, wgslMathLibrary } from '../../math/wgsl.ts';
import type { BindingAccess } from './device.ts';

export interface ShaderBinding {
  readonly name: string;
  readonly access: BindingAccess;
}

export interface ShaderSpec {
  /** Shown in errors and debug labels. */
  readonly label: string;
  /** Storage buffers, bound at 1, 2, ... in this order (binding 0 is the barrier buffer). Element type f32. */
  readonly buffers: readonly ShaderBinding[];
  /** Math routines the body calls (heddle_<name>), e.g. ['exp', 'div']. */
  readonly math?: readonly string[];
  /** u32 constants baked into the module: `const NAME: u32 = value;`. */
  readonly consts?: Readonly<Record<string, number>>;
  /** Module-scope declarations: helper functions, workgroup variables, constant tables. */
  readonly decls?: string;
  readonly workgroupSize: readonly [number, number?, number?];
  /** Statements of `main`; in scope: gid, lid, wid (vec3<u32>) and li (local index). */
  readonly body: string;
}

/**
 * Test-only switches that break the determinism rules on purpose, so a test can show that
 * its checks would catch the difference (the adversary runs of tests/webgpu). Never set them
 * elsewhere; generated sources differ, so pipelines compiled with them are cached apart.
 */
export const WGSL_ADVERSARY = {
  /** h_mul without the contraction barrier: a*b + c may then be fused into an FMA. */
  noBarrier: false,
  /** h_add / h_sub / h_mul without the explicit flush: subnormals survive on lavapipe. */
  noFlush: false,
};

const PRELUDE = `// One rounded f32 operation each, flushed to zero by bits (docs/determinism.md).
fn h_add(a: f32, b: f32) -> f32 { return heddle_ftz(a + b); }
fn h_sub(a: f32, b: f32) -> f32 { return heddle_ftz(a - b); }
// The product passes the contraction barrier before anything can be added to it.
fn h_mul(a: f32, b: f32) -> f32 { return heddle_ftz((a * b) + ${WGSL_NZ}); }
// +0, made at run time: an accumulator started from a literal 0.0 lets a compiler fold
// 0.0 + p into p (Mesa does once a loop is unrolled), which turns +0 + -0 = +0 into -0.
fn h_zero() -> f32 { return bitcast<f32>(bitcast<u32>(${WGSL_NZ}) ^ 0x80000000u); }
// -Inf and +Inf, made at run time (an infinite constant expression is a shader-creation error).
fn h_neg_inf() -> f32 { return bitcast<f32>(bitcast<u32>(${WGSL_NZ}) ^ 0x7f800000u); }
fn h_pos_inf() -> f32 { return bitcast<f32>(bitcast<u32>(${WGSL_NZ}) ^ 0xff800000u); }
`;

/** The WGSL source of a kernel. */
export function buildShader(spec: ShaderSpec): string {
  const lines: string[] = [`// Heddle kernel: ${spec.label}`];
  lines.push(wgslMathLibrary(spec.math ?? []));
  let prelude = PRELUDE;
  if (WGSL_ADVERSARY.noBarrier) prelude = prelude.replace(`(a * b) + ${WGSL_NZ}`, '(a * b)');
  if (WGSL_ADVERSARY.noFlush) prelude = prelude.replace(/heddle_ftz\(([^;]*)\); \}/g, '$1; }');
  lines.push(prelude);
  lines.push(`@group(0) @binding(0) var<storage, read> heddle_nz_buf: array<f32>;`);
  spec.buffers.forEach((b, i) => {
    lines.push(`@group(0) @binding(${i + 1}) var<storage, ${b.access}> ${b.name}: array<f32>;`);
  });
  for (const [name, v] of Object.entries(spec.consts ?? {})) lines.push(`const ${name}: u32 = ${u32Lit(v)};`);
  if (spec.decls) lines.push(spec.decls);
  const [x, y = 1, z = 1] = spec.workgroupSize;
  lines.push(
    `@compute @workgroup_size(${x}, ${y}, ${z})`,
    'fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,',
    '        @builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {',
    `  ${WGSL_NZ} = heddle_nz_buf[0];`,
    spec.body,
    '}',
  );
  return lines.join('\n');
}

const F = new Float32Array(1);
const U = new Uint32Array(F.buffer);

/** An exact WGSL f32 expression for the f32 value nearest `v` (finite). */
export function f32Lit(v: number): string {
  F[0] = v;
  const bits = U[0];
  const x = F[0];
  if (!Number.isFinite(x)) throw new Error(`f32Lit: ${v} is not finite`);
  if (Number.isInteger(x) && Math.abs(x) <= 16777216 && !Object.is(x, -0)) return x < 0 ? `(${x}.0)` : `${x}.0`;
  return `bitcast<f32>(0x${bits.toString(16).padStart(8, '0')}u)`;
}

export function u32Lit(v: number): string {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`u32Lit: ${v} is not a u32`);
  return `${v}u`;
}

/**
 * Workgroup counts for `units` workgroups when one dimension holds at most `maxPerDim`:
 * [x, y] with x * y >= units. The kernel's flat workgroup index is `wid.y * x + wid.x`
 * (bake `x` as a constant) and must skip indices >= units.
 */
export function grid2d(units: number, maxPerDim: number): { x: number; y: number } {
  const n = Math.max(1, units);
  const x = Math.min(n, maxPerDim);
  return { x, y: Math.ceil(n / x) };
}

/** Packs booleans into u32 words, bit i of word i >> 5. */
export function packBits(bits: readonly boolean[]): number[] {
  const words = new Array<number>(Math.max(1, Math.ceil(bits.length / 32))).fill(0);
  bits.forEach((b, i) => {
    if (b) words[i >>> 5] = (words[i >>> 5] | (1 << (i & 31))) >>> 0;
  });
  return words;
}
