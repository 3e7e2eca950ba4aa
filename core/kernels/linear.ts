/**
 * Row-wise linear map, the kernel behind dense and every projection.
 *
 * Canonical arithmetic (the WebGPU backend must follow the same order):
 *   y[r, o] = f32( acc + b[o] ),  acc = sum over k = 0..K-1 ascending of f32(W[o, k] * x[r, k]),
 *   with acc starting at +0 and every product and partial sum rounded to f32 and flushed
 *   (|v| < 2^-126 -> signed zero). Without a bias, y[r, o] = acc.
 *
 * Backward, for dy of shape [R, O]:
 *   dx[r, k] = sum over o = 0..O-1 ascending of f32(dy[r, o] * W[o, k])
 *   dW[o, k] += ( sum over r = 0..R-1 ascending of f32(dy[r, o] * x[r, k]) )   (one f32 add into the grad)
 *   db[o]    += ( sum over r ascending of dy[r, o] )
 */

const MIN_NORMAL = 1.1754943508222875e-38;
/** See linearForward: products at least this large keep every partial sum clear of the subnormal range. */
const NO_SUBNORMAL_PRODUCTS = 1.9721522630525295e-31; // 2^-102
const fround = Math.fround;
const abs = Math.abs;

/**
 * Four outputs per pass share each x load; rows run inside so the four weight rows stay cached.
 *
 * Fast path, proven exact: if every nonzero |w| * |x| in a block is >= 2^-102, every product
 * rounds to an f32 of exponent >= -102, i.e. a multiple of 2^-125, and so is every partial
 * sum (sums of multiples of 2^-125 stay multiples of it, and f32 rounding at magnitudes where
 * its spacing is coarser only lands on coarser multiples). A nonzero multiple of 2^-125 is
 * never subnormal, so the flush checks cannot fire and are skipped. Otherwise (tiny values,
 * or batches too small to amortize the weight scan) every step is checked.
 */
export function linearForward(x: Float32Array, rows: number, inF: number, w: Float32Array, bias: Float32Array | null, outF: number): Float32Array {
  const y = new Float32Array(rows * outF);
  const scan = rows >= 4;
  const minX = new Float64Array(rows);
  if (scan) for (let r = 0; r < rows; r++) minX[r] = minAbsNonzero(x, r * inF, r * inF + inF);
  let o = 0;
  for (; o + 4 <= outF; o += 4) {
    const w0 = o * inF, w1 = w0 + inF, w2 = w1 + inF, w3 = w2 + inF;
    const minW = scan ? minAbsNonzero(w, w0, w0 + 4 * inF) : 0;
    for (let r = 0; r < rows; r++) {
      const xo = r * inF;
      let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
      if (minW * minX[r] >= NO_SUBNORMAL_PRODUCTS) {
        for (let k = 0; k < inF; k++) {
          const xk = x[xo + k];
          a0 = fround(a0 + fround(w[w0 + k] * xk));
          a1 = fround(a1 + fround(w[w1 + k] * xk));
          a2 = fround(a2 + fround(w[w2 + k] * xk));
          a3 = fround(a3 + fround(w[w3 + k] * xk));
        }
      } else {
        for (let k = 0; k < inF; k++) {
          const xk = x[xo + k];
          let p0 = fround(w[w0 + k] * xk);
          let p1 = fround(w[w1 + k] * xk);
          let p2 = fround(w[w2 + k] * xk);
          let p3 = fround(w[w3 + k] * xk);
          if (abs(p0) < MIN_NORMAL) p0 *= 0;
          if (abs(p1) < MIN_NORMAL) p1 *= 0;
          if (abs(p2) < MIN_NORMAL) p2 *= 0;
          if (abs(p3) < MIN_NORMAL) p3 *= 0;
          a0 = fround(a0 + p0);
          a1 = fround(a1 + p1);
          a2 = fround(a2 + p2);
          a3 = fround(a3 + p3);
          if (abs(a0) < MIN_NORMAL) a0 *= 0;
          if (abs(a1) < MIN_NORMAL) a1 *= 0;
          if (abs(a2) < MIN_NORMAL) a2 *= 0;
          if (abs(a3) < MIN_NORMAL) a3 *= 0;
        }
      }
      const yo = r * outF + o;
      y[yo] = bias ? ftz(fround(a0 + bias[o])) : a0;
      y[yo + 1] = bias ? ftz(fround(a1 + bias[o + 1])) : a1;
      y[yo + 2] = bias ? ftz(fround(a2 + bias[o + 2])) : a2;
      y[yo + 3] = bias ? ftz(fround(a3 + bias[o + 3])) : a3;
    }
  }
  for (; o < outF; o++) {
    const wo = o * inF;
    for (let r = 0; r < rows; r++) {
      const xo = r * inF;
      let a = 0;
      for (let k = 0; k < inF; k++) {
        let p = fround(w[wo + k] * x[xo + k]);
        if (abs(p) < MIN_NORMAL) p *= 0;
        a = fround(a + p);
        if (abs(a) < MIN_NORMAL) a *= 0;
      }
      y[r * outF + o] = bias ? ftz(fround(a + bias[o])) : a;
    }
  }
  return y;
}

function minAbsNonzero(a: Float32Array, from: number, to: number): number {
  let m = Infinity;
  for (let i = from; i < to; i++) {
    const v = abs(a[i]);
    if (v !== 0 && v < m) m = v;
  }
  return m;
}

/** dx = dy · W, summing over o ascending. */
export function linearBackwardInput(dy: Float32Array, rows: number, outF: number, w: Float32Array, inF: number): Float32Array {
  const dx = new Float32Array(rows * inF);
  for (let r = 0; r < rows; r++) {
    const xo = r * inF;
    for (let o = 0; o < outF; o++) {
      const d = dy[r * outF + o];
      const wo = o * inF;
      for (let k = 0; k < inF; k++) {
        let p = fround(d * w[wo + k]);
        if (abs(p) < MIN_NORMAL) p *= 0;
        let s = fround(dx[xo + k] + p);
        if (abs(s) < MIN_NORMAL) s *= 0;
        dx[xo + k] = s;
      }
    }
  }
  return dx;
}

/** gradW += dyᵀ · x (rows ascending), gradB += column sums of dy (rows ascending). */
export function linearBackwardParams(
  dy: Float32Array, x: Float32Array, rows: number, inF: number, outF: number,
  gradW: Float32Array, gradB: Float32Array | null,
): void {
  const acc = new Float32Array(outF * inF);
  for (let r = 0; r < rows; r++) {
    const xo = r * inF;
    for (let o = 0; o < outF; o++) {
      const d = dy[r * outF + o];
      const ao = o * inF;
      for (let k = 0; k < inF; k++) {
        let p = fround(d * x[xo + k]);
        if (abs(p) < MIN_NORMAL) p *= 0;
        let s = fround(acc[ao + k] + p);
        if (abs(s) < MIN_NORMAL) s *= 0;
        acc[ao + k] = s;
      }
    }
  }
  addInto(gradW, acc);
  if (gradB) {
    const bacc = new Float32Array(outF);
    for (let r = 0; r < rows; r++) {
      for (let o = 0; o < outF; o++) bacc[o] = ftz(fround(bacc[o] + dy[r * outF + o]));
    }
    addInto(gradB, bacc);
  }
}

/** target[i] = f32(target[i] + src[i]), flushed. */
export function addInto(target: Float32Array, src: Float32Array): void {
  for (let i = 0; i < target.length; i++) target[i] = ftz(fround(target[i] + src[i]));
}

function ftz(v: number): number {
  return abs(v) < MIN_NORMAL ? v * 0 : v;
}
