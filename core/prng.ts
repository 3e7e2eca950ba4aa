import { fail } from './errors.ts';
import { cos, log, mul, sqrt, sub } from './math/index.ts';

/**
 * Heddle's PRNG: xoshiro128** (Blackman & Vigna), 32-bit state words, seeded by running
 * SplitMix32 over the seed. Only 32-bit integer operations (Math.imul, shifts, xor) are
 * used, so every JS engine and a WGSL port produce the same stream.
 *
 * - `seed` is an integer in [0, 2^53); its low and high 32-bit halves both feed SplitMix32.
 * - `nextU32()` is the raw output.
 * - `uniform()` is (nextU32() >>> 8) * 2^-24: 24 random bits, exactly representable in f32, in [0, 1).
 * - `normal()` is Box-Muller on two uniforms, using Heddle's deterministic f32 log/sqrt/sin/cos,
 *   so it is bit-identical on every runtime (it returns one value per call; the second is discarded
 *   to keep the stream position simple to reason about).
 * - `fork(label)` derives an independent generator from this one's seed and a string label
 *   (FNV-1a of the label mixed into the seed), without advancing this generator.
 */
export class Prng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;
  readonly seed: number;

  constructor(seed: number) {
    if (!Number.isSafeInteger(seed) || seed < 0) fail('CONFIG_INVALID', `seed must be an integer in [0, 2^53), got ${seed}`, 'seed');
    this.seed = seed;
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 4294967296) >>> 0;
    let sm = (lo ^ Math.imul(hi, 0x9e3779b9)) >>> 0;
    const next = (): number => {
      sm = (sm + 0x9e3779b9) >>> 0;
      let z = sm;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1; // all-zero state is a fixed point
  }

  /** A generator at an explicit xoshiro128** state (tests against the published algorithm). */
  static fromState(s0: number, s1: number, s2: number, s3: number): Prng {
    const r = new Prng(0);
    r.s0 = s0 >>> 0;
    r.s1 = s1 >>> 0;
    r.s2 = s2 >>> 0;
    r.s3 = s3 >>> 0;
    return r;
  }

  nextU32(): number {
    const s0 = this.s0, s1 = this.s1, s2 = this.s2, s3 = this.s3;
    const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = (s1 << 9) >>> 0;
    let n2 = (s2 ^ s0) >>> 0;
    let n3 = (s3 ^ s1) >>> 0;
    const n1 = (s1 ^ n2) >>> 0;
    const n0 = (s0 ^ n3) >>> 0;
    n2 = (n2 ^ t) >>> 0;
    n3 = rotl(n3, 11);
    this.s0 = n0;
    this.s1 = n1;
    this.s2 = n2;
    this.s3 = n3;
    return r;
  }

  /** Uniform in [0, 1), 24 random bits, exact in f32. */
  uniform(): number {
    return (this.nextU32() >>> 8) * 5.9604644775390625e-8;
  }

  /** Uniform in [lo, hi): lo + u*(hi-lo), every step rounded to f32. */
  uniformRange(lo: number, hi: number): number {
    const lo32 = Math.fround(lo);
    const span = sub(Math.fround(hi), lo32);
    return Math.fround(lo32 + mul(this.uniform(), span));
  }

  /** Integer in [0, n) by rejection sampling (no modulo bias). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 4294967296) fail('INTERNAL', `Prng.int bound ${n}`);
    const limit = 4294967296 - (4294967296 % n);
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % n;
    }
  }

  /** Standard normal via Box-Muller with Heddle's deterministic f32 routines. */
  normal(): number {
    // u1 in (0, 1]: avoids log(0).
    const u1 = Math.fround(1 - this.uniform());
    const u2 = this.uniform();
    const radius = sqrt(mul(-2, log(u1)));
    const angle = mul(6.2831854820251465, u2); // f32(2*pi)
    return mul(radius, cos(angle));
  }

  /** Fisher-Yates shuffle of 0..n-1 (canonical: i from n-1 down to 1, j = int(i+1)). */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }

  /** An independent generator for a named purpose, e.g. `fork('layers.3.weight')`. */
  fork(label: string): Prng {
    let h = 0x811c9dc5;
    for (let i = 0; i < label.length; i++) {
      h = Math.imul(h ^ label.charCodeAt(i), 0x01000193) >>> 0;
    }
    const lo = (this.seed >>> 0) ^ h;
    const hi = Math.floor(this.seed / 4294967296) ^ Math.imul(h, 0x9e3779b9);
    return new Prng(((hi >>> 0) & 0x1fffff) * 4294967296 + (lo >>> 0));
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

