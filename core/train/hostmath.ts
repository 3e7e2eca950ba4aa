/**
 * Float64 host-side scalar math for the training loop (learning rates, bias corrections).
 *
 * These values never touch tensor data directly: the optimizer rounds them to f32 once
 * before they enter an f32 kernel. They still have to be the same bits on every runtime,
 * so only IEEE + - * / (correctly rounded everywhere) are used here: no Math.pow, exp, cos.
 */

const SPLIT = 134217729; // 2^27 + 1: Veltkamp splitting constant for float64

/** Exact product a*b as hi + lo (Dekker; no FMA needed). Valid for |a|, |b| < 2^996. */
function twoProd(a: number, b: number): [number, number] {
  const p = a * b;
  let t = SPLIT * a;
  const ah = t - (t - a);
  const al = a - ah;
  t = SPLIT * b;
  const bh = t - (t - b);
  const bl = b - bh;
  const err = ((ah * bh - p) + ah * bl + al * bh) + al * bl;
  return [p, err];
}

/** Double-double product (hi, lo) * (hi, lo), renormalized. */
function ddMul(ah: number, al: number, bh: number, bl: number): [number, number] {
  const [p, e] = twoProd(ah, bh);
  const lo = e + (ah * bl + al * bh);
  const hi = p + lo;
  return [hi, lo - (hi - p)];
}

/**
 * x^n for an integer n >= 0, by squaring in double-double arithmetic and one final
 * rounding, so the result is the correctly rounded float64 in all but pathological cases.
 * Stands in for Python's `x ** n` (C pow), which PyTorch uses for bias corrections.
 */
export function powInt(x: number, n: number): number {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`powInt exponent ${n}`);
  let rh = 1, rl = 0;
  let bh = x, bl = 0;
  let k = n;
  while (k > 0) {
    if (k % 2 === 1) [rh, rl] = ddMul(rh, rl, bh, bl);
    k = Math.floor(k / 2);
    if (k > 0) [bh, bl] = ddMul(bh, bl, bh, bl);
  }
  const r = rh + rl;
  // Out of the split's range (overflow/underflow): fall back to the plain product chain.
  if (!Number.isFinite(r)) {
    let p = 1;
    for (let i = 0; i < n && Number.isFinite(p); i++) p *= x;
    return p;
  }
  return r;
}

const PI = 3.141592653589793;
// Taylor coefficients 1/k!, computed by IEEE division at load time (same bits everywhere).
const INV_FACT: number[] = [1];
for (let k = 1; k <= 22; k++) INV_FACT.push(INV_FACT[k - 1] / k);

/** cos(x) for |x| <= pi/4 by its Taylor polynomial (Horner), error ~1 ulp. */
function cosSmall(x: number): number {
  const x2 = x * x;
  let s = 0;
  for (let k = 20; k >= 2; k -= 2) s = (k % 4 === 0 ? INV_FACT[k] : -INV_FACT[k]) + x2 * s;
  return 1 + x2 * s;
}

/** sin(x) for |x| <= pi/4 by its Taylor polynomial (Horner), error ~1 ulp. */
function sinSmall(x: number): number {
  const x2 = x * x;
  let s = 0;
  for (let k = 21; k >= 3; k -= 2) s = ((k - 1) % 4 === 0 ? INV_FACT[k] : -INV_FACT[k]) + x2 * s;
  return x + x * x2 * s;
}

/**
 * cos(pi * num / den) for integers num >= 0, den >= 1, in float64 with + - * / only.
 * The range reduction is exact because it works on the integer ratio: num mod 2*den,
 * then the symmetries cos(pi - a) = -cos(a) and cos(a) = sin(pi/2 - a). The remaining
 * angle (<= pi/4) goes through a Taylor polynomial. Accurate to about 1e-16.
 */
export function cosPiRatio(num: number, den: number): number {
  if (!Number.isSafeInteger(num) || !Number.isSafeInteger(den) || num < 0 || den < 1) {
    throw new RangeError(`cosPiRatio(${num}, ${den})`);
  }
  let r = num % (2 * den); // angle pi*r/den in [0, 2pi)
  if (r > den) r = 2 * den - r; // cos is even about pi: now in [0, pi]
  let sign = 1;
  if (2 * r > den) {
    r = den - r; // cos(pi - a) = -cos(a): now in [0, pi/2]
    sign = -1;
  }
  if (4 * r > den) {
    // a in (pi/4, pi/2]: cos(a) = sin(pi/2 - a), and pi/2 - a = pi*(den - 2r)/(2den)
    return sign * sinSmall((PI * (den - 2 * r)) / (2 * den));
  }
  return sign * cosSmall((PI * r) / den);
}
