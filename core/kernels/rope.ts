/**
 * Rotary position embedding (RoPE), Llama's rotate-half convention (Hugging Face
 * `apply_rotary_pos_emb`), applied per head to vectors of `headDim` D (even), half = D / 2.
 *
 * Inverse frequencies: a per-layer constant table, computed once on the host when the layer
 * is built (the WebGPU backend receives it as a buffer: WGSL has no f64):
 *   e[i]   = f32(2i / D)                  i = 0..half-1
 *   t[i]   = f32(f32(base) ^ e[i])
 *   inv[i] = f32(1 / t[i])
 * which is PyTorch's `1.0 / (base ** (torch.arange(0, D, 2).float() / D))` in float32, step
 * by step. Every step is computed in float64 with IEEE + - * / only (correctly rounded and
 * never contracted in every JS engine, so the table is the same bits everywhere), then
 * rounded to f32: the two divisions are therefore correctly rounded f32 divisions (float64
 * has more than 2 * 24 + 2 significand bits). `base ^ e` is `exp64(e * ln64(base))` below:
 * ln by the atanh series after an exact power-of-two range reduction, exp by a Taylor series
 * after an exact power-of-two range reduction, accurate to about 1e-15 relative before the
 * final rounding. No Math.pow / Math.exp / Math.log is involved.
 *
 * Angles and the rotation (f32, rounded and flushed, core/math):
 *   theta[p, i] = f32(p) * inv[i]                  (p = the token's absolute position)
 *   c = cos(theta[p, i]), s = sin(theta[p, i])     (Heddle's deterministic cos / sin)
 *   y[i]        = x[i] * c - x[half + i] * s
 *   y[half + i] = x[half + i] * c + x[i] * s
 * Backward (the transposed rotation), for dy:
 *   dx[i]        = dy[i] * c + dy[half + i] * s
 *   dx[half + i] = dy[half + i] * c - dy[i] * s
 */
import { add, cos, f32, mul, sin, sub } from '../math/index.ts';

const LN2_HI = 0.6931471803691238; // fdlibm's split of ln 2: k * LN2_HI is exact for |k| < 2^11
const LN2_LO = 1.9082149292705877e-10;
const LN2 = 0.6931471805599453;

/** ln(b) for a finite b > 0, float64, + - * / only. */
export function ln64(b: number): number {
  let m = b;
  let k = 0;
  while (m > 1.4142135623730951) { m /= 2; k++; }
  while (m < 0.7071067811865476) { m *= 2; k--; }
  // ln m = 2 atanh(z), z = (m - 1) / (m + 1), |z| <= 0.1716: sum z^(2n+1) / (2n+1).
  const z = (m - 1) / (m + 1);
  const z2 = z * z;
  let term = z;
  let sum = 0;
  for (let n = 0; n < 40; n++) {
    sum += term / (2 * n + 1);
    term *= z2;
    if (Math.abs(term) < 1e-22) break;
  }
  return k * LN2_HI + (k * LN2_LO + 2 * sum);
}

/** e^y for |y| < 700, float64, + - * / only. */
export function exp64(y: number): number {
  const k = Math.round(y / LN2);
  const r = y - k * LN2_HI - k * LN2_LO; // |r| <= ~0.35
  let term = 1;
  let sum = 1;
  for (let n = 1; n < 40; n++) {
    term = (term * r) / n;
    sum += term;
    if (Math.abs(term) < 1e-22) break;
  }
  let scale = 1;
  for (let i = 0; i < k; i++) scale *= 2;
  for (let i = 0; i > k; i--) scale /= 2;
  return sum * scale;
}

/** The inverse frequency table inv[i], i = 0..headDim/2-1 (see the header). */
export function ropeInvFreq(base: number, headDim: number): Float32Array {
  const half = headDim / 2;
  const b = Math.fround(base);
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    const e = Math.fround((2 * i) / headDim);
    const t = Math.fround(exp64(e * ln64(b)));
    inv[i] = f32(1 / t);
  }
  return inv;
}

/** cos / sin of theta[p, i] for positions 0..length-1, grown on demand (the values never change). */
export class RopeTable {
  readonly headDim: number;
  readonly half: number;
  readonly invFreq: Float32Array;
  private cosT = new Float32Array(0);
  private sinT = new Float32Array(0);
  private positions = 0;

  constructor(base: number, headDim: number) {
    this.headDim = headDim;
    this.half = headDim / 2;
    this.invFreq = ropeInvFreq(base, headDim);
  }

  /** Make positions 0..n-1 available. */
  ensure(n: number): void {
    if (n <= this.positions) return;
    const cap = Math.max(n, this.positions * 2, 16);
    const h = this.half;
    const c = new Float32Array(cap * h);
    const s = new Float32Array(cap * h);
    c.set(this.cosT);
    s.set(this.sinT);
    for (let p = this.positions; p < cap; p++) {
      const fp = Math.fround(p);
      for (let i = 0; i < h; i++) {
        const theta = mul(fp, this.invFreq[i]);
        c[p * h + i] = cos(theta);
        s[p * h + i] = sin(theta);
      }
    }
    this.cosT = c;
    this.sinT = s;
    this.positions = cap;
  }

  get cos(): Float32Array {
    return this.cosT;
  }

  get sin(): Float32Array {
    return this.sinT;
  }
}

/**
 * Rotate every head of `rows` token rows of width heads * headDim. Row r holds the token at
 * position `offset + (r % seq)` (rows are [batch, seq] flattened). Returns a new array.
 * `inverse` applies the backward (transposed) rotation.
 */
export function ropeApply(x: Float32Array, rows: number, seq: number, heads: number, table: RopeTable, offset: number, inverse: boolean): Float32Array {
  const D = table.headDim;
  const h2 = table.half;
  const width = heads * D;
  table.ensure(offset + seq);
  const C = table.cos;
  const S = table.sin;
  const y = new Float32Array(rows * width);
  for (let r = 0; r < rows; r++) {
    const tb = (offset + (r % seq)) * h2;
    for (let h = 0; h < heads; h++) {
      const o = r * width + h * D;
      for (let i = 0; i < h2; i++) {
        const c = C[tb + i];
        const s = S[tb + i];
        const a = x[o + i];
        const b = x[o + h2 + i];
        if (!inverse) {
          y[o + i] = sub(mul(a, c), mul(b, s));
          y[o + h2 + i] = add(mul(b, c), mul(a, s));
        } else {
          y[o + i] = add(mul(a, c), mul(b, s));
          y[o + h2 + i] = sub(mul(b, c), mul(a, s));
        }
      }
    }
  }
  return y;
}
