/**
 * float64 references for measuring the f32 routines (tests and accuracy.ts only; the
 * engine never imports this). Math.exp etc. are fine here: a reference only needs to be
 * far more accurate than f32, not identical across engines.
 */

const MIN_NORMAL = 1.1754943508222875e-38;
/** Largest |x| sin and cos accept (routines.ts). */
export const TRIG_LIMIT = 196608;
/** Smallest magnitude that rounds to +Inf in f32: FLT_MAX + half an ulp. */
const OVERFLOW = 3.4028235677973366e38;

const F64 = new Float64Array(1);
const U64 = new Uint32Array(F64.buffer);

/** Spacing of f32 values in the binade of |x| (x finite, nonzero), down to 2^-149. */
export function f32Ulp(x: number): number {
  F64[0] = Math.abs(x);
  const e = ((U64[1]! >>> 20) & 0x7ff) - 1023;
  return 2 ** Math.max(e - 23, -149);
}

/**
 * Error of an f32 result against a float64 reference, in f32 ulps of the reference.
 * FTZ-aware: a zero result for a reference below 2^-126 counts as exact.
 */
export function ulpError(got: number, ref: number): number {
  if (Number.isNaN(ref) || Number.isNaN(got)) return Number.isNaN(ref) && Number.isNaN(got) ? 0 : Infinity;
  const aref = Math.abs(ref);
  if (got === 0 && aref < MIN_NORMAL) return 0;
  if (aref >= OVERFLOW) return got === (ref > 0 ? Infinity : -Infinity) ? 0 : Infinity;
  if (!Number.isFinite(got)) return Infinity;
  if (ref === 0) return got === 0 ? 0 : Infinity;
  return Math.abs(got - ref) / f32Ulp(ref);
}

// ---------------------------------------------------------------- erf / erfc in float64

const TWO_OVER_SQRT_PI = 1.1283791670955126;
const ONE_OVER_SQRT_PI = 0.5641895835477563;

/** erf for |x| <= 3 by the all-positive series e^{-x^2} sum 2^n x^{2n+1} / (2n+1)!!. */
function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (Math.abs(term) < 1e-18 * Math.abs(sum)) break;
  }
  return TWO_OVER_SQRT_PI * Math.exp(-x2) * sum;
}

/** erfc for x >= 2 by its continued fraction, evaluated backwards. */
function erfcCF(x: number): number {
  if (x > 27) return 0; // e^{-x^2} underflows float64
  // The fraction converges faster for larger x; these depths leave < 1e-16 relative error.
  let f = x;
  for (let k = x < 4 ? 300 : x < 10 ? 120 : 40; k >= 1; k--) f = x + k / 2 / f;
  return (Math.exp(-x * x) * ONE_OVER_SQRT_PI) / f;
}

export function erf64(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  if (a <= 2.5) return erfSeries(x);
  const r = 1 - erfcCF(a);
  return x < 0 ? -r : r;
}

export function erfc64(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 0) return 2 - erfc64(-x);
  if (x <= 2.5) return 1 - erfSeries(x);
  return erfcCF(x);
}

export const REFERENCE: Record<string, (...a: number[]) => number> = {
  exp: Math.exp,
  log: Math.log,
  tanh: Math.tanh,
  sigmoid: (x) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x))),
  softplus: (x) => (x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x))),
  erf: erf64,
  erfc: erfc64,
  // gelu(-Inf): the limit -0 (the formula would give -Inf * 0 = NaN); documented choice.
  gelu: (x) => (x === -Infinity ? -0 : x >= 0 ? 0.5 * x * (1 + erf64(x * Math.SQRT1_2)) : 0.5 * x * erfc64(-x * Math.SQRT1_2)),
  // sin/cos are defined for |x| <= TRIG_LIMIT and NaN beyond (documented domain).
  sin: (x) => (Math.abs(x) > TRIG_LIMIT ? NaN : Math.sin(x)),
  cos: (x) => (Math.abs(x) > TRIG_LIMIT ? NaN : Math.cos(x)),
  sqrt: Math.sqrt,
  rsqrt: (x) => 1 / Math.sqrt(x),
  div: (a, b) => a / b,
};
