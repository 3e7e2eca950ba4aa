/**
 * Development tool (never imported by the engine): fits the polynomial coefficients used in
 * routines.ts, in float64, then rounds them to f32.
 *
 * Method: weighted least squares on Chebyshev-distributed points, iterated with Lawson's
 * reweighting so the weighted error tends to equioscillation (minimax). Then the
 * coefficients are rounded to f32 one at a time, lowest power first, refitting the
 * remaining ones after each rounding so later terms absorb the rounding of earlier ones.
 *
 *   bun core/math/fit.ts            prints every fit used by routines.ts
 */

export interface FitSpec {
  name: string;
  /** Function to approximate, in float64. */
  f: (t: number) => number;
  a: number;
  b: number;
  /** Powers of t in the basis (e.g. [0, 1, 2, 3] or [0, 2, 4] for even functions). */
  powers: number[];
  /** Error weight (e.g. 1/|f| for relative error). Defaults to 1. */
  weight?: (t: number) => number;
  /** Coefficients fixed in advance (by power), e.g. the leading 1 of exp. */
  fixed?: Record<number, number>;
  points?: number;
  /** Lawson iterations (default 60). */
  iters?: number;
}

export interface FitResult {
  coeffs: number[]; // f32 values, aligned with spec.powers
  bits: number[];
  maxErr: number; // max weighted error of the f32 coefficients, in float64 evaluation
}

/** Least squares via Householder QR: min ||A c - y||. A is m x n, row-major. */
function lstsq(A: number[][], y: number[]): number[] {
  const m = A.length;
  const n = A[0]!.length;
  const R = A.map((r) => r.slice());
  const q = y.slice();
  for (let k = 0; k < n; k++) {
    let norm = 0;
    for (let i = k; i < m; i++) norm += R[i]![k]! ** 2;
    norm = Math.sqrt(norm);
    if (norm === 0) continue;
    const alpha = R[k]![k]! > 0 ? -norm : norm;
    const v: number[] = new Array(m).fill(0);
    for (let i = k; i < m; i++) v[i] = R[i]![k]!;
    v[k]! -= alpha;
    let vv = 0;
    for (let i = k; i < m; i++) vv += v[i]! ** 2;
    if (vv === 0) continue;
    for (let j = k; j < n; j++) {
      let d = 0;
      for (let i = k; i < m; i++) d += v[i]! * R[i]![j]!;
      const s = (2 * d) / vv;
      for (let i = k; i < m; i++) R[i]![j]! -= s * v[i]!;
    }
    let d = 0;
    for (let i = k; i < m; i++) d += v[i]! * q[i]!;
    const s = (2 * d) / vv;
    for (let i = k; i < m; i++) q[i]! -= s * v[i]!;
  }
  const c = new Array(n).fill(0);
  for (let k = n - 1; k >= 0; k--) {
    let s = q[k]!;
    for (let j = k + 1; j < n; j++) s -= R[k]![j]! * c[j]!;
    c[k] = s / R[k]![k]!;
  }
  return c;
}

function points(a: number, b: number, n: number): number[] {
  const ts: number[] = [a, b];
  for (let i = 0; i < n; i++) ts.push((a + b) / 2 + ((b - a) / 2) * Math.cos((Math.PI * (i + 0.5)) / n));
  return ts;
}

/** Minimax-ish fit over the free powers, with `fixedVals` (power -> value) held constant. */
function fitFree(spec: FitSpec, free: number[], fixedVals: Map<number, number>): number[] {
  const iters = spec.iters ?? 60;
  const ts = points(spec.a, spec.b, spec.points ?? 1000);
  const w = spec.weight ?? (() => 1);
  // Scale t to [-1, 1]-ish so the monomial system is well conditioned.
  const sc = Math.max(Math.abs(spec.a), Math.abs(spec.b));
  const rows = ts.map((t) => free.map((p) => (t / sc) ** p));
  const fv = ts.map((t) => spec.f(t));
  const target = ts.map((t, k) => {
    let r = fv[k]!;
    for (const [p, c] of fixedVals) r -= c * t ** p;
    return r;
  });
  let lw = ts.map(() => 1);
  let best: number[] = [];
  let bestErr = Infinity;
  for (let it = 0; it < iters; it++) {
    const A = rows.map((r, i) => r.map((x) => x * w(ts[i]!) * Math.sqrt(lw[i]!)));
    const y = target.map((v, i) => v * w(ts[i]!) * Math.sqrt(lw[i]!));
    const cs = lstsq(A, y);
    const errs = ts.map((t, i) => {
      let s = 0;
      for (let j = 0; j < free.length; j++) s += cs[j]! * rows[i]![j]!;
      return Math.abs((s - target[i]!) * w(t));
    });
    const me = Math.max(...errs);
    if (me < bestErr) {
      bestErr = me;
      best = cs.map((c, j) => c / sc ** free[j]!);
    }
    const tot = errs.reduce((s, e, i) => s + lw[i]! * e, 0);
    lw = lw.map((l, i) => (l * errs[i]!) / tot);
  }
  return best;
}

export function fit(spec: FitSpec): FitResult {
  const fixed = new Map<number, number>();
  for (const [p, v] of Object.entries(spec.fixed ?? {})) fixed.set(Number(p), Math.fround(v));
  let free = spec.powers.filter((p) => !fixed.has(p));
  while (free.length > 0) {
    const cs = fitFree(spec, free, fixed);
    // Round the lowest free power, keep the rest for the next refit.
    fixed.set(free[0]!, Math.fround(cs[0]!));
    if (free.length === 1) break;
    free = free.slice(1);
  }
  const coeffs = spec.powers.map((p) => fixed.get(p)!);
  const w = spec.weight ?? (() => 1);
  let maxErr = 0;
  for (const t of points(spec.a, spec.b, 20000)) {
    let s = 0;
    for (let j = 0; j < spec.powers.length; j++) s += coeffs[j]! * t ** spec.powers[j]!;
    maxErr = Math.max(maxErr, Math.abs((s - spec.f(t)) * w(t)));
  }
  const f = new Float32Array(coeffs);
  return { coeffs, bits: Array.from(new Uint32Array(f.buffer)), maxErr };
}

export function show(spec: FitSpec): void {
  const r = fit(spec);
  console.log(`${spec.name}: [${spec.a}, ${spec.b}] powers ${spec.powers.join(',')} maxErr ${r.maxErr.toExponential(3)}`);
  console.log(`  bits: [${r.bits.map((b) => `0x${b.toString(16).padStart(8, '0')}`).join(', ')}]`);
  console.log(`  vals: [${r.coeffs.map((c) => c.toPrecision(9)).join(', ')}]`);
}

// ---------------------------------------------------------------- the fits used by routines.ts

/** erfc(z) * e^{z^2}, computed in float64 (continued fraction / series; see reference.ts). */
async function fits(): Promise<FitSpec[]> {
  const { erf64, erfc64 } = await import('./reference.ts');
  const erfcx = (z: number): number => erfc64(z) * Math.exp(z * z);
  const range = (n: number, from = 0, step = 1): number[] => Array.from({ length: n }, (_, i) => from + i * step);
  const EPS = 1e-6; // keep relative weights finite at 0
  return [
    { name: 'RECIP_SEED2 (1/m on [1, 2])', f: (m) => 1 / m, a: 1, b: 2, powers: range(3), weight: (m) => m, iters: 200 },
    { name: 'RECIP_SEED3 (1/m on [1, 2])', f: (m) => 1 / m, a: 1, b: 2, powers: range(4), weight: (m) => m, iters: 200 },
    { name: 'EXP_P', f: Math.exp, a: -0.3466, b: 0.3466, powers: range(7), fixed: { 0: 1, 1: 1 }, weight: (t) => 1 / Math.exp(t) },
    { name: 'LOG_P', f: Math.log1p, a: -0.2929, b: 0.5, powers: [1, 2, ...range(8, 3)], fixed: { 1: 1, 2: -0.5 }, weight: (t) => 1 / Math.max(Math.abs(Math.log1p(t)), EPS) },
    { name: 'TANH_P', f: Math.tanh, a: EPS, b: 0.55, powers: [1, ...range(5, 3, 2)], fixed: { 1: 1 }, weight: (t) => 1 / Math.tanh(t) },
    { name: 'ERF_P (erf(x) - x)', f: (t) => erf64(t) - t, a: EPS, b: 1, powers: range(7, 1, 2), weight: (t) => 1 / erf64(t) },
    // G(t) in u = t - c (centred, so Horner does not cancel): c = 1.5, 0.75, 0.25.
    { name: 'ERFC_G1 (z in [0.5, 1], u = 1/z - 1.5)', f: (u) => erfcx(1 / (u + 1.5)), a: -0.5, b: 0.5, powers: range(9), weight: (u) => 1 / erfcx(1 / (u + 1.5)) },
    { name: 'ERFC_G2 (z in [1, 2], u = 1/z - 0.75)', f: (u) => erfcx(1 / (u + 0.75)), a: -0.25, b: 0.25, powers: range(9), weight: (u) => 1 / erfcx(1 / (u + 0.75)) },
    // z in [2, 9.3]: erfcx(z) = t H(t^2), t = 1/z, H smooth and cancellation-free (~ 1/sqrt(pi) (1 - s/2 ...)).
    { name: 'ERFC_H3 (z in [2, 9.3], s = 1/z^2)', f: (s) => erfcx(1 / Math.sqrt(s)) / Math.sqrt(s), a: 1 / 9.3 ** 2, b: 0.25, powers: range(8), weight: (s) => Math.sqrt(s) / erfcx(1 / Math.sqrt(s)) },
    { name: 'SIN_P', f: Math.sin, a: EPS, b: Math.PI / 4 + 1e-3, powers: [1, ...range(3, 3, 2)], fixed: { 1: 1 }, weight: (t) => 1 / Math.sin(t) },
    { name: 'COS_P', f: Math.cos, a: 0, b: Math.PI / 4 + 1e-3, powers: [0, 2, ...range(3, 4, 2)], fixed: { 0: 1, 2: -0.5 }, weight: (t) => 1 / Math.cos(t) },
  ];
}

/**
 * pi/2 split for sin/cos: six chunks of at most 7 significant bits at fixed positions
 * (2^0..2^-6, 2^-7..2^-13, ...), exact from 100 digits of pi in integer arithmetic, then the
 * rest rounded to f32. Returns the f32 bit patterns (PIO2_C then PIO2_D in routines.ts).
 */
export function pio2Chunks(): number[] {
  let num = 31415926535897932384626433832795028841971693993751058209749445923078164062862089986280348253421170679n;
  let den = 2n * 10n ** 100n; // remainder = num / den, starting at pi/2
  const out: number[] = [];
  for (let i = 1; i <= 6; i++) {
    const sh = BigInt(7 * i - 1);
    const q = (num << sh) / den; // floor
    out.push(Number(q) / 2 ** Number(sh));
    num = (num << sh) - q * den;
    den <<= sh;
  }
  out.push(Math.fround(Number(num) / Number(den)));
  return Array.from(new Uint32Array(new Float32Array(out).buffer));
}

if ((import.meta as { main?: boolean }).main) {
  const only = ((globalThis as { process?: { argv: string[] } }).process?.argv ?? []).slice(2);
  for (const s of await fits()) if (!only.length || only.some((o) => s.name.startsWith(o))) show(s);
  if (!only.length || only.includes('PIO2')) console.log(`PIO2 chunks: [${pio2Chunks().map((b) => `0x${b.toString(16)}`).join(', ')}]`);
}
