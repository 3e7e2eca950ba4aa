/**
 * WGSL back-end of the math IR: the same routines as core/math/generated.ts, as WGSL text.
 *
 * Contract for the kernel author (docs/math.md, "Using the WGSL library"):
 * - Paste `wgslMathLibrary()` (or a subset by name) into the shader module once.
 * - The library declares `var<private> heddle_nz: f32;`. Before calling any `heddle_*`
 *   function, the entry point must set it from a buffer holding -0.0 (bits 0x80000000), e.g.
 *     @group(0) @binding(N) var<storage, read> heddle_nz_buf: array<f32>;   // [-0.0]
 *     ... heddle_nz = heddle_nz_buf[0];
 *   The value must come from memory at run time: every product is written `(a * b) + heddle_nz`,
 *   which the compiler cannot fold, so a product is rounded on its own before anything is
 *   added to it (no FMA contraction, which NVIDIA applies even across statements).
 * - Call `heddle_exp(x)` etc. Every routine flushes subnormal inputs and results itself (integer
 *   bit tests, so the answer does not depend on whether the adapter flushes), classifies NaN/Inf
 *   by bits (no float compare that a fast-math compiler may fold), and uses no WGSL exp / log /
 *   pow / sin / cos / tanh / sqrt / inverseSqrt / float division.
 */
import { bitsToF32, type Fn, type Routine, type Stmt, type Ty, type V } from './ir.ts';
import { ROUTINES } from './routines.ts';

export const WGSL_PREFIX = 'heddle_';
export const WGSL_NZ = 'heddle_nz';

function f32Lit(bits: number): string {
  const x = bitsToF32(bits);
  if (!Number.isFinite(x) || x === 0) {
    // Inf / NaN literals are shader-creation errors in WGSL, and a literal zero lets the
    // compiler fold arithmetic on it without regard to the sign of zero (NVIDIA turned
    // `0.0 * a + heddle_nz` into heddle_nz = -0, where IEEE gives +0). So these come from
    // heddle_nz (-0.0) at run time.
    if (bits === 0x80000000) return WGSL_NZ;
    return `bitcast<f32>(bitcast<u32>(${WGSL_NZ}) ^ 0x${((0x80000000 ^ bits) >>> 0).toString(16)}u)`;
  }
  if (Number.isInteger(x) && Math.abs(x) <= 16777216 && !Object.is(x, -0)) return x < 0 ? `(${x}.0f)` : `${x}.0f`;
  return `bitcast<f32>(0x${bits.toString(16).padStart(8, '0')}u)`;
}

function lit(v: V): string {
  switch (v.ty) {
    case 'f32': return f32Lit(v.k);
    case 'u32': return v.k < 256 ? `${v.k}u` : `0x${v.k.toString(16)}u`;
    case 'i32': return v.k < 0 ? `(${v.k}i)` : `${v.k}i`;
    case 'bool': return v.k ? 'true' : 'false';
  }
}

const wty = (t: Ty): string => t;

function emitFn(fn: Fn): string {
  const ref = (v: V): string => {
    if (v.op === 'const') return lit(v);
    if (v.op === 'param') return `a${fn.params.indexOf(v)}`;
    return `t${v.id}`;
  };
  const expr = (v: V): string => {
    const [a, b, c] = v.args.map(ref);
    switch (v.op) {
      case 'fadd': return `heddle_ftz(${a} + ${b})`;
      case 'fsub': return `heddle_ftz(${a} - ${b})`;
      // The contraction barrier: the product is consumed by an addition of a run-time -0.0.
      case 'fmul': return `heddle_ftz((${a} * ${b}) + ${WGSL_NZ})`;
      case 'fneg': return `bitcast<f32>(bitcast<u32>(${a}) ^ 0x80000000u)`;
      case 'fabs': return `bitcast<f32>(bitcast<u32>(${a}) & 0x7fffffffu)`;
      case 'flt': case 'ilt': return `(${a} < ${b})`;
      case 'fle': case 'ile': return `(${a} <= ${b})`;
      case 'fgt': case 'igt': return `(${a} > ${b})`;
      case 'fge': case 'ige': return `(${a} >= ${b})`;
      case 'feq': case 'ieq': return `(${a} == ${b})`;
      case 'fne': case 'ine': return `(${a} != ${b})`;
      case 'iadd': return `(${a} + ${b})`;
      case 'isub': return `(${a} - ${b})`;
      case 'imul': return `(${a} * ${b})`;
      case 'iand': return `(${a} & ${b})`;
      case 'ior': return `(${a} | ${b})`;
      case 'ixor': return `(${a} ^ ${b})`;
      case 'ishl': return `(${a} << ${b})`;
      case 'ishr': return `(${a} >> ${b})`; // logical on u32, arithmetic on i32, as in the IR
      case 'band': return `(${a} && ${b})`;
      case 'bor': return `(${a} || ${b})`;
      case 'bnot': return `(!${a})`;
      case 'select': return `select(${c}, ${b}, ${a})`;
      case 'bits': return `bitcast<u32>(${a})`;
      case 'fromBits': return `heddle_ftz_bits(${a})`;
      case 'fromBitsNormal': return `bitcast<f32>(${a})`;
      case 'u2i': return `bitcast<i32>(${a})`;
      case 'i2u': return `bitcast<u32>(${a})`;
      case 'i2f': return `f32(${a})`;
      case 'f2i': return `i32(${a})`;
      case 'call': return `${WGSL_PREFIX}${v.callee}(${v.args.map(ref).join(', ')})`;
      default:
        throw new Error(`cannot emit ${v.op} to WGSL`);
    }
  };
  const lines: string[] = [];
  for (let i = 0; i < fn.params.length; i++) lines.push(`let a${i}: f32 = heddle_ftz(p${i});`);
  const emit = (list: readonly Stmt[], pad: string): void => {
    for (const s of list) {
      if (s.kind === 'guard') {
        lines.push(`${pad}if (${ref(s.cond)}) { return ${ref(s.value)}; }`);
      } else if (s.kind === 'when') {
        lines.push(`${pad}if (${ref(s.cond)}) {`);
        emit(s.body, `${pad}  `);
        lines.push(`${pad}  return ${ref(s.value)};`, `${pad}}`);
      } else {
        lines.push(`${pad}let t${s.v.id}: ${wty(s.v.ty)} = ${expr(s.v)};`);
      }
    }
  };
  emit(fn.live(), '');
  lines.push(`return ${ref(fn.result!)};`);
  const sig = fn.params.map((_, i) => `p${i}: f32`).join(', ');
  const doc = fn.doc ? `// ${fn.doc}\n` : '';
  return `${doc}fn ${WGSL_PREFIX}${fn.name}(${sig}) -> f32 {\n${lines.map((l) => `  ${l}`).join('\n')}\n}\n`;
}

const HELPERS = `// Flush-to-zero by bits: a value whose exponent field is 0 becomes a zero of the same sign.
fn heddle_ftz(v: f32) -> f32 {
  let b = bitcast<u32>(v);
  return bitcast<f32>(select(b, b & 0x80000000u, (b & 0x7f800000u) == 0u));
}
fn heddle_ftz_bits(b: u32) -> f32 {
  return bitcast<f32>(select(b, b & 0x80000000u, (b & 0x7f800000u) == 0u));
}
`;

export interface WgslLibraryOptions {
  /** Emit the `var<private> heddle_nz: f32;` declaration (default true). */
  declareNz?: boolean;
}

/** Names of every routine in the library (`heddle_` + name in WGSL). */
export const WGSL_ROUTINES: readonly string[] = ROUTINES.map((r) => r.name);

/**
 * WGSL source for the named routines (default: all) and everything they call. Functions
 * are `heddle_<name>(x: f32) -> f32` (`heddle_div(a: f32, b: f32)`); see the file comment
 * for what the kernel must provide.
 */
export function wgslMathLibrary(names?: readonly string[], options: WgslLibraryOptions = {}): string {
  const byName = new Map(ROUTINES.map((r) => [r.name, r]));
  const want = new Set<string>();
  const add = (n: string): void => {
    const r = byName.get(n);
    if (!r) throw new Error(`unknown math routine '${n}'; known: ${[...byName.keys()].join(', ')}`);
    if (want.has(n)) return;
    want.add(n);
    for (const c of r.fn.calls) add(c);
  };
  for (const n of names ?? byName.keys()) add(n);
  const parts = [
    '// Heddle deterministic f32 math, GENERATED from core/math/routines.ts by wgslMathLibrary().',
    `// Before calling heddle_* functions, set ${WGSL_NZ} = -0.0 read from a buffer at run time.`,
  ];
  if (options.declareNz ?? true) parts.push(`var<private> ${WGSL_NZ}: f32;`);
  parts.push('', HELPERS);
  for (const r of ROUTINES as readonly Routine[]) if (want.has(r.name)) parts.push(emitFn(r.fn));
  return parts.join('\n');
}
