/**
 * PLACEHOLDER (being replaced by the math work): the public surface of Heddle's
 * deterministic f32 math. Every function takes and returns JS numbers holding f32 values,
 * rounds its result to f32 and applies the flush-to-zero rule.
 */
const MIN_NORMAL = 1.1754943508222875e-38;

/** Round to f32, then flush subnormals to a zero of the same sign. */
export function f32(x: number): number {
  const r = Math.fround(x);
  return r > -MIN_NORMAL && r < MIN_NORMAL ? r * 0 : r;
}
export const add = (a: number, b: number): number => f32(a + b);
export const sub = (a: number, b: number): number => f32(a - b);
export const mul = (a: number, b: number): number => f32(a * b);
export const div = (a: number, b: number): number => f32(a / b);
export const sqrt = (a: number): number => f32(Math.sqrt(a));
export const rsqrt = (a: number): number => f32(1 / Math.sqrt(a));
export const exp = (a: number): number => f32(Math.exp(a));
export const log = (a: number): number => f32(Math.log(a));
export const tanh = (a: number): number => f32(Math.tanh(a));
export const sigmoid = (a: number): number => f32(1 / (1 + Math.exp(-a)));
export const softplus = (a: number): number => f32(Math.log1p(Math.exp(a)));
export const erf = (a: number): number => {
  // Abramowitz-Stegun placeholder
  const t = 1 / (1 + 0.3275911 * Math.abs(a));
  const y = 1 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-a * a);
  return f32(a < 0 ? -y : y);
};
export const sin = (a: number): number => f32(Math.sin(a));
export const cos = (a: number): number => f32(Math.cos(a));
