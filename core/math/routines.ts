/**
 * The one definition of Heddle's deterministic f32 routines, written in the math IR
 * (ir.ts). scripts/gen-math.ts turns this into core/math/generated.ts; wgsl.ts turns it
 * into WGSL. Algorithms, coefficient provenance and error bounds: docs/math.md.
 *
 * Polynomial coefficients are exact f32 bit patterns produced by core/math/fit.ts (float64
 * minimax fit, rounded to f32 lowest power first with refits); `bun core/math/fit.ts`
 * reprints them.
 */
import { type Fn, type Routine, routine, type V } from './ir.ts';

// ---------------------------------------------------------------- bit patterns and constants

const SIGN = 0x80000000;
const ABS = 0x7fffffff;
const INF_BITS = 0x7f800000;
const NAN_BITS = 0x7fc00000;
const MANT = 0x007fffff;
const ONE_BITS = 0x3f800000;
/** 1.5 * 2^23: adding it rounds an f32 in (-2^22, 2^22) to an integer (round half even). */
const MAGIC = 12582912;
const MAGIC_BITS = 0x4b400000;

const LOG2E = 0x3fb8aa3b; // 1.44269502
/** ln 2 split: HI has 16 significant bits so k * HI is exact for |k| < 2^8; LO = f32(ln2 - HI). */
const LN2_HI = 0x3f317200; // 0.693145752
const LN2_LO = 0x35bfbe8e; // 1.42860677e-6

// ---------------------------------------------------------------- small macros

/**
 * Horner: c[0] + t * (c[1] + t * (c[2] + ...)), coefficients as f32 bit patterns.
 * `normal`: the caller promises |t| is 0 or large enough that no product is subnormal.
 */
function horner(b: Fn, t: V, c: readonly number[], normal = false): V {
  let acc = b.c(c[c.length - 1]!);
  for (let i = c.length - 2; i >= 0; i--) {
    const p = acc.mul(t);
    acc = (normal ? p.normal() : p).add(b.c(c[i]!));
  }
  return acc;
}

interface Classified {
  u: V; // bits
  ax: V; // bits without sign
  nan: V;
  inf: V;
  zero: V;
  neg: V; // sign bit set
}
/** Class of an f32 by its bits: robust on adapters that assume no NaN/Inf in float compares. */
function classify(b: Fn, x: V): Classified {
  const u = x.bits();
  const ax = u.and(ABS);
  return {
    u,
    ax,
    nan: ax.gt(INF_BITS),
    inf: ax.eq(INF_BITS),
    zero: ax.eq(0), // inputs are already flushed, so subnormals arrive here as zeros
    neg: u.ge(SIGN),
  };
}

const nan = (b: Fn): V => b.c(NAN_BITS);

/** |m| with the sign of s (bit operation, exact). */
function withSignOf(m: V, s: V): V {
  return m.bits().and(ABS).or(s.bits().and(SIGN)).asF32Normal();
}

/**
 * Scale p (positive, normal, exponent field 126 or 127) by 2^k with integer exponent
 * arithmetic: exact, with results below 2^-126 flushed to +0 and above FLT_MAX to +Inf.
 * k is an i32 as u32 bits (two's complement).
 */
function scalePow2(b: Fn, p: V, k: V): V {
  const pb = p.bits();
  const e = pb.shr(23).add(k).asI32();
  const scaled = pb.add(k.shl(23)).asF32Normal();
  const under = e.le(0);
  const over = e.ge(255);
  return b.sel(under, b.f(0), b.sel(over, b.c(INF_BITS), scaled));
}

/**
 * Error-free sum (Knuth): s + e == a + b exactly; every step after the first is exact.
 * Callers use it only where operands are 0 or >= 2^-100, so e is never subnormal.
 */
function twoSum(a: V, b: V): [V, V] {
  const s = a.add(b);
  const bb = s.sub(a).exact();
  const e = a.sub(s.sub(bb).exact()).exact().add(b.sub(bb).exact()).exact();
  return [s, e];
}
/** Error-free sum when |a| >= |b| (Dekker); same caller promise as twoSum. */
function fastTwoSum(a: V, b: V): [V, V] {
  const s = a.add(b);
  return [s, b.sub(s.sub(a).exact()).exact()];
}

// ---------------------------------------------------------------- exp

/** e^r ~ 1 + r + r^2 * P(r) on |r| <= 0.3466 (relative minimax, degree 6). */
const EXP_P = [0x3efffffe, 0x3e2aaa49, 0x3d2aac57, 0x3c091cc2, 0x3ab527b3];

/**
 * e^(x + xl) for x in [-103, 88.8] and |xl| tiny against x (callers guard the rest).
 * Cody-Waite: k = round(x / ln2), r = (x - k ln2_hi) + xl - k ln2_lo (the first
 * subtraction is exact), e^r by polynomial, then 2^k added to the exponent bits (exact;
 * below 2^-126 flushes to +0, above FLT_MAX gives +Inf).
 * `wide`: the caller guarantees x = 0 or |x| >= 2^-25 and no xl; then |r| >= 2^-29 whenever
 * r != 0 (checked over every f32 in [-104, 89]), so no product in the polynomial is subnormal.
 */
function expCore(b: Fn, x: V, xl?: V, wide = false): V {
  const [s, k] = expParts(b, x, xl, wide);
  return scalePow2(b, b.f(1).add(s), k);
}

/** e^(x + xl) = (1 + s) 2^k, unrounded sum and unapplied scale (see expCore). */
function expParts(b: Fn, x: V, xl?: V, wide = false): [V, V] {
  const t = x.mul(b.c(LOG2E)).add(MAGIC);
  const kf = t.sub(MAGIC).exact();
  const k = t.bits().sub(MAGIC_BITS);
  let r = x.sub(kf.mul(b.c(LN2_HI)).exact()).exact(); // |k| < 2^8, ln2_hi has 16 bits; Sterbenz
  if (xl) r = r.add(xl);
  r = r.sub(kf.mul(b.c(LN2_LO)).normal()).normal();
  const nf = (v: V): V => (wide ? v.normal() : v);
  // e^r = 1 + (r + r^2 q), q = (c2 + c3 r) + r^2 ((c4 + c5 r) + r^2 c6): Estrin's scheme, a
  // shorter dependency chain than Horner (the latency of each rounding is what costs in JS).
  const r2 = nf(r.mul(r));
  const c = (i: number): V => b.c(EXP_P[i]!);
  const lo = nf(r.mul(c(1))).add(c(0));
  const mid = nf(r.mul(c(3))).add(c(2));
  const q = lo.add(nf(r2.mul(mid.add(nf(r2.mul(c(4)))))));
  return [nf(r.add(nf(r2.mul(q)))), k];
}

const exp = routine('exp', 1, 'e^x. NaN -> NaN, x > 88.72 -> +Inf, results below 2^-126 -> +0.', (b, x) => {
  const c = classify(b, x);
  b.guard(c.nan, nan(b));
  b.guard(x.gt(88.75), b.c(INF_BITS));
  b.guard(x.lt(-88), 0);
  b.guard(x.abs().lt(2 ** -25), 1); // e^x rounds to 1 (and keeps the polynomial clear of subnormals)
  return expCore(b, x, undefined, true);
});

// ---------------------------------------------------------------- log

/** log1p(f) ~ f - f^2/2 + f^3 * P(f) on f in [-0.2929, 0.5] (relative minimax). */
const LOG_P = [0x3eaaaad9, 0xbe80016f, 0x3e4cb621, 0xbe2a0ff7, 0x3e135959, 0xbe0a083b, 0x3def7238, 0xbd64219c];

/** e*ln2 + log1p(f) for f in [-0.2929, 0.5] and an integer-valued f32 e. */
function logCore(b: Fn, f: V, ef: V): V {
  const t = f.mul(f);
  const hfsq = t.mul(0.5);
  const r = t.mul(f).mul(horner(b, f, LOG_P));
  const y = ef.mul(b.c(LN2_LO)).add(r.sub(hfsq)).add(f);
  return ef.mul(b.c(LN2_HI)).add(y);
}

/** log(1 + t) for t in [0, 1] without losing t's low bits to the rounding of 1 + t. */
function log1pUnit(b: Fn, t: V): V {
  const big = t.gt(0.5);
  // t in (0.5, 1]: 1 + t = 2 (1 + f) with f = (t - 1) / 2, exact.
  const f = b.sel(big, t.sub(1).mul(0.5), t);
  return logCore(b, f, b.sel(big, b.f(1), b.f(0)));
}

const log = routine('log', 1, 'Natural log. log(+-0) = -Inf, log(x < 0) = NaN, log(+Inf) = +Inf.', (b, x) => {
  const c = classify(b, x);
  b.guard(c.nan, nan(b));
  b.guard(c.zero, b.c(0xff800000));
  b.guard(c.neg, nan(b));
  b.guard(c.inf, x);
  // x = 2^e * m with m in [sqrt(1/2), sqrt(2)): subtracting the bits of sqrt(1/2) moves the
  // exponent boundary there.
  const e = c.u.sub(0x3f3504f3).asI32().shr(23);
  const m = c.u.sub(e.asU32().shl(23)).asF32Normal();
  return logCore(b, m.sub(1), e.toF32());
});

// ---------------------------------------------------------------- reciprocal, division, sqrt

/** The top 12 significant bits of a normal f32 (products of two such halves are exact). */
function hi12(v: V): V {
  return v.bits().and(0xfffff000).asF32Normal();
}

/** Relative minimax seeds for 1/m on [1, 2): quadratic (error 0.0101) and cubic (0.00173). */
const RECIP_SEED2 = [0x4007c20a, 0xbfba2ebc, 0x3ea57edc];
const RECIP_SEED3 = [0x403504fa, 0xc03c1e54, 0x3faa5f1c, 0xbe632978];

/**
 * 1/m for m in [1, 2). Values stay in [2^-60, 2], so nothing here can be subnormal (the
 * normal() / exact() promises).
 * - fast: quadratic seed, two Newton steps y += y (1 - m y): error 1e-8 before rounding,
 *   about 1 ulp after.
 * - precise: cubic seed, one Newton step (3e-6), then a last step whose residual 1 - m y is
 *   computed exactly from 12-bit halves (Dekker's product without FMA), so only the final
 *   addition rounds: within about 0.5 ulp (not always the nearest f32).
 */
function recipMant(b: Fn, m: V, precise: boolean): V {
  const seed = precise ? RECIP_SEED3 : RECIP_SEED2;
  let y = b.c(seed[seed.length - 1]!);
  for (let i = seed.length - 2; i >= 0; i--) y = y.mul(m).normal().add(b.c(seed[i]!));
  // 1 - m y is exact: m y is within a few percent of 1 (Sterbenz).
  for (let i = 0; i < (precise ? 1 : 2); i++) y = y.add(y.mul(b.f(1).sub(m.mul(y).normal()).exact()).normal()).normal();
  if (!precise) return y;
  const mh = hi12(m);
  const ml = m.sub(mh).exact();
  const yh = hi12(y);
  const yl = y.sub(yh).exact();
  // 1 - m y = (1 - mh yh) - mh yl - ml yh - ml yl: 12 x 12-bit products are exact, and so is
  // the first difference (Sterbenz).
  const e = b.f(1).sub(mh.mul(yh).exact()).exact()
    .sub(mh.mul(yl).exact()).normal()
    .sub(ml.mul(yh).exact()).normal()
    .sub(ml.mul(yl).exact()).normal();
  return y.add(y.mul(e).normal()).normal();
}

/**
 * 1/d for positive finite normal d: recipMant on the mantissa m, then times 2^(127 - E)
 * (E the exponent field), built from bits: 254 - E is in [0, 253], and the 0 case (d >= 2^127,
 * 1/d < 2^-127) gives +0 as FTZ would. The product is exact except below 2^-126, where it
 * rounds and flushes like any product.
 */
function recipPos(b: Fn, d: V, precise: boolean): V {
  const u = d.bits();
  const y = recipMant(b, u.and(MANT).or(ONE_BITS).asF32Normal(), precise); // in (0.5, 1]
  return y.mul(b.u(254).sub(u.shr(23)).shl(23).asF32Normal());
}

/** Round Q to nearest even after dropping its n low bits (sticky: a nonzero remainder below them). */
function roundBits(b: Fn, Q: V, n: V, sticky: V): V {
  const M = Q.shrV(n);
  const rem = Q.and(b.u(1).shlV(n).sub(1));
  const half = b.u(1).shlV(n.sub(1));
  const up = rem.gt(half).or(rem.eq(half).and(sticky.or(M.and(1).eq(1))));
  return M.add(b.sel(up, b.u(1), b.u(0)));
}

const div = routine(
  'div',
  2,
  'a / b, correctly rounded (IEEE division, then the FTZ rule). x/0 = +-Inf, 0/0 = Inf/Inf = NaN.',
  (b, a, d) => {
    const ca = classify(b, a);
    const cd = classify(b, d);
    const sign = ca.u.xor(cd.u).and(SIGN);
    b.guard(ca.nan.or(cd.nan), nan(b));
    b.guard(ca.zero.and(cd.zero).or(ca.inf.and(cd.inf)), nan(b));
    b.guard(ca.inf.or(cd.zero), sign.or(INF_BITS).asF32Normal());
    b.guard(ca.zero.or(cd.inf), sign.asF32Normal());
    // Both normal. A, B: 24-bit integer significands; ma, mb: the same scaled to [1, 2).
    const A = ca.ax.and(MANT).or(0x800000);
    const B = cd.ax.and(MANT).or(0x800000);
    const ma = ca.ax.and(MANT).or(ONE_BITS).asF32Normal();
    const y = recipMant(b, cd.ax.and(MANT).or(ONE_BITS).asF32Normal(), true);
    // Estimate Q = floor(A * 2^25 / B), in [2^24, 2^26), from the float quotient (error < 32).
    const q0 = ma.mul(y).mul(33554432).toI32().asU32();
    // Remainder A*2^25 - q0*B: its true value fits in i32, so wrapping u32 arithmetic is exact.
    const r0 = A.shl(25).sub(q0.mul(B)).asI32();
    // One float correction (dq = round(r0 / B)), then exact +-1 fix-ups.
    const dq = r0.shr(5).toF32().mul(y).mul(b.c(0x36800000)).add(MAGIC).sub(MAGIC).toI32(); // * 2^-18
    const Bi = B.asI32();
    let Q = q0.add(dq.asU32());
    let R = r0.sub(dq.mul(Bi));
    const low = R.lt(0);
    Q = b.sel(low, Q.sub(1), Q);
    R = b.sel(low, R.add(Bi), R);
    const high = R.ge(Bi);
    Q = b.sel(high, Q.add(1), Q);
    R = b.sel(high, R.sub(Bi), R);
    // a/b = Q * 2^(ea - eb - 25) (+ R/B). E: biased exponent of the result before rounding.
    const big = Q.ge(1 << 25);
    const E = ca.ax.shr(23).sub(cd.ax.shr(23)).asI32().add(126).add(b.sel(big, b.i(1), b.i(0)));
    const sub0 = E.eq(0); // [2^-127, 2^-126): rounded on the subnormal grid like IEEE, then flushed
    const n = b.sel(big, b.u(2), b.u(1)).add(b.sel(sub0, b.u(1), b.u(0)));
    const M = roundBits(b, Q, n, R.ne(0));
    const normal = E.sub(1).asU32().shl(23).add(M); // a carry out of M bumps the exponent, as it should
    const tiny = b.sel(sub0.and(M.eq(0x800000)), b.u(0x800000), b.u(0));
    const mag = b.sel(E.ge(255), b.u(INF_BITS), b.sel(E.le(0), tiny, normal));
    return mag.or(sign).asF32Normal();
  },
);

/** 1/sqrt(m) for m in [1, 4): bit-trick seed, three Newton steps (a few ulp). */
function rsqrtMant(b: Fn, m: V): V {
  let y = b.u(0x5f3759df).sub(m.bits().shr(1)).asF32Normal();
  const hm = m.mul(0.5);
  for (let i = 0; i < 3; i++) y = y.mul(b.f(1.5).sub(hm.mul(y).mul(y)));
  return y;
}

const sqrt = routine('sqrt', 1, 'Square root, correctly rounded. sqrt(-0) = -0, sqrt(x < 0) = NaN.', (b, x) => {
  const c = classify(b, x);
  b.guard(c.nan, nan(b));
  b.guard(c.zero, x);
  b.guard(c.neg, nan(b));
  b.guard(c.inf, x);
  const E = c.u.shr(23); // 1..254
  const odd = E.and(1).eq(1);
  // x = A2 * 2^(even) with A2 in [2^24, 2^26); m = A2 / 2^24 in [1, 4).
  const mant = c.u.and(MANT);
  const A2 = mant.or(0x800000).shlV(b.sel(odd, b.u(1), b.u(2)));
  const m = mant.or(b.sel(odd, b.u(ONE_BITS), b.u(0x40000000))).asF32Normal();
  const y = rsqrtMant(b, m);
  // Q = floor(sqrt(A2 * 2^24)) in [2^24, 2^25), estimated from m * y ~ sqrt(m).
  const q0 = m.mul(y).mul(16777216).toI32().asU32();
  const r0 = A2.shl(24).sub(q0.mul(q0)).asI32(); // exact: the true remainder fits in i32
  // dq = round(r0 / (2 q0)) ~ r0 * y * 2^-25.
  const dq = r0.shr(6).toF32().mul(y).mul(b.c(0x36000000)).add(MAGIC).sub(MAGIC).toI32(); // * 2^-19
  let Q = q0.asI32().add(dq);
  let R = r0.sub(q0.asI32().mul(2).add(dq).mul(dq));
  const low = R.lt(0);
  R = b.sel(low, R.add(Q.mul(2)).sub(1), R);
  Q = b.sel(low, Q.sub(1), Q);
  const high = R.gt(Q.mul(2));
  R = b.sel(high, R.sub(Q.mul(2)).sub(1), R);
  Q = b.sel(high, Q.add(1), Q);
  const M = roundBits(b, Q.asU32(), b.u(1), R.ne(0));
  // Exponent field of the result: (E + 127) / 2 for odd E, (E + 126) / 2 for even E.
  const F = E.add(126).add(E.and(1)).shr(1);
  return F.sub(1).shl(23).add(M).asF32Normal();
});

const rsqrt = routine(
  'rsqrt',
  1,
  '1 / sqrt(x) as div(1, sqrt(x)): two correctly rounded steps, under 1.5 ulp. rsqrt(+-0) = +-Inf.',
  (b, x) => b.call('div', b.f(1), b.call('sqrt', x)),
);

// ---------------------------------------------------------------- tanh, sigmoid, softplus

/** tanh(x) ~ x + x^3 * P(x^2) on [0, 0.55] (relative minimax). */
const TANH_P = [0xbeaaaaa5, 0x3e088678, 0xbd5c8f92, 0x3cac7660, 0xbbccac69];

const tanh = routine('tanh', 1, 'Hyperbolic tangent; |x| >= 9.125 gives exactly +-1.', (b, x) => {
  const c = classify(b, x);
  b.guard(c.nan, nan(b));
  const ax = x.abs();
  b.guard(ax.ge(9.125), withSignOf(b.f(1), x));
  b.guard(ax.lt(2 ** -12), x); // tanh x = x in f32; keeps the sign of -0
  b.when(ax.lt(Math.fround(0.55)), () => {
    const z = x.mul(x);
    return x.add(x.mul(z).mul(horner(b, z, TANH_P)));
  });
  // tanh|x| = 1 - 2 / (e^{2|x|} + 1): no cancellation for |x| >= 0.55.
  const e = expCore(b, ax.mul(2), undefined, true); // 2|x| >= 1.1
  const y = b.f(1).sub(recipPos(b, e.add(1), false).mul(2));
  return b.sel(x.lt(0), y.neg(), y);
});

const sigmoid = routine('sigmoid', 1, '1 / (1 + e^-x); exactly 1 for x >= 17.33, +0 below about -87.3.', (b, x) => {
  const c = classify(b, x);
  b.guard(c.nan, nan(b));
  b.guard(x.gt(18), 1);
  b.guard(x.lt(-88), 0);
  b.guard(x.abs().lt(2 ** -25), 0.5); // 1/2 + x/4 rounds to 1/2
  // d = 1 + e rounds to a coarser grid than the result has when e > 1 (x < 0); put the
  // rounding error dl back to first order: 1/(d + dl) ~ y - y^2 dl.
  const e = expCore(b, x.neg(), undefined, true);
  const big = e.gt(1);
  const [d, dl] = fastTwoSum(b.sel(big, e, b.f(1)), b.sel(big, b.f(1), e));
  const y = recipPos(b, d, false);
  return y.sub(y.mul(y).mul(dl));
});

const softplus = routine('softplus', 1, 'log(1 + e^x) = max(x, 0) + log1p(e^-|x|); x >= 16 gives x.', (b, x) => {
  const c = classify(b, x);
  b.guard(c.nan, nan(b));
  b.guard(x.ge(16), x);
  b.guard(x.lt(-88), 0);
  const l = log1pUnit(b, expCore(b, x.abs().neg()));
  return b.sel(x.gt(0), x, b.f(0)).add(l);
});

// ---------------------------------------------------------------- erf, erfc, gelu

/** erf(x) - x ~ x * P(x^2) on [0, 1] (minimax relative to erf). */
const ERF_P = [0x3e0375d4, 0xbec0939f, 0x3de71673, 0xbcdbfb8d, 0x3ba9f912, 0xba51a8af, 0x38a3b8ff];
/**
 * erfc(z) e^{z^2} = erfcx(z) by pieces, t = 1/z: G1(t - 1.5) on z in [0.5, 1], G2(t - 0.75) on
 * [1, 2] (centred so Horner does not cancel), t H3(t^2) on [2, 9.3] (the asymptotic form,
 * cancellation-free). Relative minimax fits; H3 has a zero appended to share the Horner loop.
 */
const ERFC_G1 = [0x3f0a0e8b, 0x3e3a4aca, 0xbd8c9f03, 0x3cc6b4ad, 0xbbfb9a3a, 0x3aff40eb, 0xb94b85da, 0xb9a3e5e9, 0x3999b1db];
const ERFC_G2 = [0x3eb3c7ed, 0x3eaec7e6, 0xbe1e46d7, 0x3d4b0929, 0x3b11a49e, 0xbcb67e7e, 0x3cf13abf, 0xbc898472, 0xbd02e716];
const ERFC_H3 = [0x3f106eb7, 0xbe906a6c, 0x3ed7b181, 0xbf80a123, 0x40349604, 0xc0df41dd, 0x41396561, 0xc10fb539, 0];
const SQRT1_2 = 0x3f3504f3;
const SQRT2 = 0x3fb504f3;

/**
 * erf for |x| <= 1: x + x P(x^2). Scaled by 2^24 and back (both exact) so that x P does not
 * flush for tiny x (erf(x) ~ 1.128 x is normal even when 0.128 x is not).
 */
function erfPoly(b: Fn, x: V): V {
  const xs = x.mul(16777216);
  return xs.add(xs.mul(horner(b, x.mul(x), ERF_P))).mul(b.c(0x33800000)); // * 2^-24
}

/** The split hi + lo = -(v^2) * s (s = 1 or 1/2) with hi exact: v = vh + vl, vh = top 12 bits. */
function negSquare(b: Fn, v: V, half: boolean): [V, V] {
  const vh = hi12(v);
  const vl = v.sub(vh);
  let hi = vh.mul(vh).neg(); // 12 x 12 bits: exact
  let lo = vl.mul(v.add(vh)).neg(); // v^2 - vh^2 = vl (v + vh)
  if (half) {
    hi = hi.mul(0.5);
    lo = lo.mul(0.5);
  }
  return [hi, lo];
}

/**
 * erfc(z) = e^{hi + lo} erfcx(z) for z in [0.5, 9.3], given -z^2 = hi + lo and t ~ 1/z.
 * Returns [s, k, g] with e^{hi+lo} = (1 + s) 2^k and g = erfcx(z): the caller forms
 * (g + g s) 2^k, one rounding fewer than rounding 1 + s and then the product.
 */
function erfcParts(b: Fn, hi: V, lo: V, t: V): [V, V, V] {
  const p1 = t.gt(1);
  const p2 = t.gt(0.5);
  const pick = (g1: number, g2: number, g3: number): V => b.sel(p1, b.c(g1), b.sel(p2, b.c(g2), b.c(g3)));
  const v = b.sel(p2, t.sub(b.sel(p1, b.f(1.5), b.f(0.75))), t.mul(t));
  let g = pick(ERFC_G1[8]!, ERFC_G2[8]!, ERFC_H3[8]!);
  for (let i = 7; i >= 0; i--) g = g.mul(v).add(pick(ERFC_G1[i]!, ERFC_G2[i]!, ERFC_H3[i]!));
  const [s1, k] = expParts(b, hi, lo);
  return [s1, k, b.sel(p2, g, t.mul(g))];
}

/** m (1 + s) 2^k for positive normal m (scale exact; below 2^-126 flushes to +0). */
function timesExp(b: Fn, m: V, s: V, k: V): V {
  return scalePow2(b, m.add(m.mul(s)), k);
}

/** erfc(z) for z in [0.5, 9.3]. */
function erfcPos(b: Fn, z: V): V {
  const [hi, lo] = negSquare(b, z, false);
  const [s1, k, g] = erfcParts(b, hi, lo, recipPos(b, z, true));
  return timesExp(b, g, s1, k);
}

const erf = routine('erf', 1, 'Error function; |x| >= 3.92 gives exactly +-1.', (b, x) => {
  const c = classify(b, x);
  b.guard(c.nan, nan(b));
  const ax = x.abs();
  b.guard(ax.ge(4), withSignOf(b.f(1), x));
  b.when(ax.lt(1), () => erfPoly(b, x));
  return withSignOf(b.f(1).sub(erfcPos(b, ax)), x);
});

const erfc = routine('erfc', 1, '1 - erf(x) with relative accuracy for large x; +0 for x >= 9.2 (FTZ).', (b, x) => {
  const c = classify(b, x);
  b.guard(c.nan, nan(b));
  b.guard(x.ge(9.25), 0);
  b.guard(x.le(-4), 2);
  const ax = x.abs();
  b.when(ax.lt(0.5), () => b.f(1).sub(erfPoly(b, x)));
  const r = erfcPos(b, ax);
  return b.sel(x.lt(0), b.f(2).sub(r), r);
});

const gelu = routine(
  'gelu',
  1,
  'x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), accurate in ulps for negative x too (erfc form); gelu(-Inf) = -0.',
  (b, x) => {
    const c = classify(b, x);
    b.guard(c.nan, nan(b));
    b.guard(x.ge(6), x);
    b.guard(x.lt(-13.5), b.c(SIGN));
    const hx = x.mul(0.5);
    const z = x.mul(b.c(SQRT1_2));
    b.when(z.abs().lt(1).and(z.gt(-0.5)), () => hx.mul(b.f(1).add(erfPoly(b, z))));
    b.when(z.ge(1), () => hx.mul(b.f(2).sub(erfcPos(b, z))));
    // x <= -sqrt(1/2): 0.5 x erfc(|x| / sqrt 2), with -x^2/2 split exactly from x itself.
    const ax = x.abs();
    const [hi, lo] = negSquare(b, ax, true);
    const [s1, k, g] = erfcParts(b, hi, lo, recipPos(b, ax, true).mul(b.c(SQRT2)));
    // 0.5|x| g is applied before 2^k (erfc alone may be subnormal where gelu is not), and the
    // sign goes on last, by bits, so an underflow gives -0.
    return timesExp(b, hx.abs().mul(g), s1, k).neg();
  },
);

// ---------------------------------------------------------------- sin, cos

const TWO_OVER_PI = 0x3f22f983;
/**
 * pi/2 = C1 + C2 + C3 + D1 + D2 + D3 + D4: six chunks of at most 7 significant bits (so
 * k * chunk is exact for |k| < 2^17) and a full-precision tail (total error ~2e-21);
 * computed exactly by fit.ts pio2Chunks().
 */
const PIO2_C = [0x3fc80000, 0x3c060000, 0x38f60000];
const PIO2_D = [0x34a80000, 0x30880000, 0x2c200000, 0x2aa308d3];
/** Inputs beyond this (|k| >= 2^17 would break the exact chunk products) give NaN. */
const TRIG_LIMIT = 196608;
/** sin(r) ~ r + r^3 P(r^2), cos(r) ~ 1 - r^2/2 + r^4 Q(r^2) on |r| <= pi/4 (relative minimax). */
const SIN_P = [0xbe2aaaa3, 0x3c0883ba, 0xb94ca8f2];
const COS_P = [0x3d2aaaa5, 0xbab60614, 0x37ccf406];

/**
 * Shared body of sin and cos for 2^-12 <= |x| <= TRIG_LIMIT: x = k pi/2 + r, with r
 * carried as rh + rl (double-f32) so that r keeps full relative precision even when x is
 * within 2^-28 of a multiple of pi/2. Returns the value for the quadrant.
 */
function trig(b: Fn, x: V, cosine: boolean): V {
  const t = x.mul(b.c(TWO_OVER_PI)).add(MAGIC);
  const kf = t.sub(MAGIC).exact();
  const n = t.bits().sub(MAGIC_BITS).and(3);
  // x - k (C1 + C2 + C3): each product and each subtraction is exact.
  let s = x;
  for (const ck of PIO2_C) s = s.sub(kf.mul(b.c(ck)).exact()).exact();
  // k (D1 + D2 + D3 + D4) as th + tl, then r = s - th - tl as rh + rl.
  const [th1, e1] = fastTwoSum(kf.mul(b.c(PIO2_D[0]!)).exact(), kf.mul(b.c(PIO2_D[1]!)).exact());
  const [th, e2] = fastTwoSum(th1, kf.mul(b.c(PIO2_D[2]!)).exact());
  const tl = e1.add(e2).add(kf.mul(b.c(PIO2_D[3]!)));
  const [rh, e3] = twoSum(s, th.neg());
  const rl = e3.sub(tl);
  const z = rh.mul(rh);
  const hz = z.mul(0.5);
  // sin(rh + rl) ~ sin rh + rl cos rh
  const sinr = rh.add(rl.sub(rl.mul(hz)).add(rh.mul(z).mul(horner(b, z, SIN_P))));
  // cos(rh + rl) ~ cos rh - rl sin rh; w = 1 - hz with its rounding error put back.
  const w = b.f(1).sub(hz);
  const cosr = w.add(b.f(1).sub(w).sub(hz).add(z.mul(z).mul(horner(b, z, COS_P)).sub(rh.mul(rl))));
  const swap = n.and(1).eq(1);
  const v = cosine ? b.sel(swap, sinr, cosr) : b.sel(swap, cosr, sinr);
  const neg = (cosine ? n.add(1) : n).and(2).eq(2);
  return b.sel(neg, v.neg(), v);
}

const sin = routine('sin', 1, `Sine for |x| <= ${TRIG_LIMIT} (1.5 * 2^17); NaN beyond, and for +-Inf.`, (b, x) => {
  const c = classify(b, x);
  const ax = x.abs();
  b.guard(c.nan.or(ax.gt(TRIG_LIMIT)), nan(b));
  b.guard(ax.lt(2 ** -12), x); // sin x = x in f32 (keeps the sign of -0)
  return trig(b, x, false);
});

const cos = routine('cos', 1, `Cosine for |x| <= ${TRIG_LIMIT} (1.5 * 2^17); NaN beyond, and for +-Inf.`, (b, x) => {
  const c = classify(b, x);
  const ax = x.abs();
  b.guard(c.nan.or(ax.gt(TRIG_LIMIT)), nan(b));
  b.guard(ax.lt(2 ** -12), 1);
  return trig(b, x, true);
});

/** Every routine, in emission order (callees may come later: both back-ends hoist). */
export const ROUTINES: readonly Routine[] = [exp, log, tanh, sigmoid, softplus, erf, erfc, gelu, sin, cos, sqrt, rsqrt, div];

