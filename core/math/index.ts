/**
 * Heddle's deterministic f32 math: the public surface. Every function takes and returns JS
 * numbers holding f32 values, treats subnormal inputs as zeros, rounds its result to f32 and
 * flushes a result below 2^-126 in magnitude to a zero of the same sign (FTZ).
 *
 * f32 / add / sub / mul are the IR's primitives, hand-written here for speed. Everything else
 * is generated from the one definition in routines.ts (see docs/math.md); the same definition
 * produces the WGSL library (wgsl.ts).
 */

/** 2^-126, the smallest normal f32. */
export const MIN_NORMAL = 1.1754943508222875e-38;
const fround = Math.fround;

/** Flush a value below 2^-126 in magnitude to a zero of the same sign (NaN passes). */
export function ftz(x: number): number {
  return x < MIN_NORMAL && x > -MIN_NORMAL ? x * 0 : x;
}

// NaN results are the canonical quiet NaN (0x7fc00000): JavaScriptCore rewrites NaN payloads
// whenever a value passes through a JS number, so payloads cannot be part of the contract.

/** Round to f32, then flush subnormals to a zero of the same sign. */
export function f32(x: number): number {
  const r = fround(x);
  if (r < MIN_NORMAL && r > -MIN_NORMAL) return r * 0;
  return r === r ? r : NaN;
}

// Inputs are f32 values; flushing them first makes a subnormal input act as its zero.
export function add(a: number, b: number): number {
  if (a < MIN_NORMAL && a > -MIN_NORMAL) a *= 0;
  if (b < MIN_NORMAL && b > -MIN_NORMAL) b *= 0;
  const r = fround(a + b);
  if (r < MIN_NORMAL && r > -MIN_NORMAL) return r * 0;
  return r === r ? r : NaN;
}
export function sub(a: number, b: number): number {
  if (a < MIN_NORMAL && a > -MIN_NORMAL) a *= 0;
  if (b < MIN_NORMAL && b > -MIN_NORMAL) b *= 0;
  const r = fround(a - b);
  if (r < MIN_NORMAL && r > -MIN_NORMAL) return r * 0;
  return r === r ? r : NaN;
}
export function mul(a: number, b: number): number {
  if (a < MIN_NORMAL && a > -MIN_NORMAL) a *= 0;
  if (b < MIN_NORMAL && b > -MIN_NORMAL) b *= 0;
  const r = fround(a * b);
  if (r < MIN_NORMAL && r > -MIN_NORMAL) return r * 0;
  return r === r ? r : NaN;
}

export { exp, log, tanh, sigmoid, softplus, erf, erfc, gelu, sin, cos, sqrt, rsqrt, div } from './generated.ts';

/**
 * div, sqrt and rsqrt for CPU hot loops: bit-identical to the generated div / sqrt / rsqrt
 * (which are IEEE correctly rounded then flushed, so JS's own / and Math.sqrt give the same
 * bits; the tests compare them on every sweep and the cross-runtime hash covers both). The
 * WGSL library has only the generated forms: GPU division and sqrt are not correctly rounded.
 */
export function divFast(a: number, b: number): number {
  a = fround(a);
  b = fround(b);
  if (a < MIN_NORMAL && a > -MIN_NORMAL) a *= 0;
  if (b < MIN_NORMAL && b > -MIN_NORMAL) b *= 0;
  const r = fround(a / b);
  if (r < MIN_NORMAL && r > -MIN_NORMAL) return r * 0;
  return r === r ? r : NaN;
}
export function sqrtFast(x: number): number {
  x = fround(x);
  if (x < MIN_NORMAL && x > -MIN_NORMAL) return x * 0;
  const r = fround(Math.sqrt(x));
  return r === r ? r : NaN;
}
export function rsqrtFast(x: number): number {
  return divFast(1, sqrtFast(x));
}
