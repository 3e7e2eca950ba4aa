/**
 * Row softmax, the kernel behind the softmax layer and the softmax activation.
 *
 * Canonical arithmetic, per row of `rowLen` values (rows are independent; the WebGPU
 * backend must follow the same order). Positions with mask[i] === false are "masked":
 *   m    = max over unmasked i of x[i]            (exact: max does not round)
 *   e[i] = exp(x[i] - m)                          (every e[i] <= 1, so no overflow)
 *   s    = sum over unmasked i = 0..n-1 ascending of e[i], starting at +0
 *   y[i] = e[i] / s   (Heddle's deterministic div; masked y[i] = +0)
 * Backward, for dy:
 *   dot   = sum over unmasked i ascending of f32(dy[i] * y[i]), starting at +0
 *   dx[i] = f32(y[i] * f32(dy[i] - dot))          (masked dx[i] = +0)
 * Every result is rounded to f32 and flushed (math/index.ts). A row with no unmasked
 * position never reaches this kernel: the softmax layer rejects such masks at config time.
 */
import { add, div, exp, mul, sub } from '../math/index.ts';

export function softmaxRowsForward(x: Float32Array, rowLen: number, mask: readonly boolean[] | null = null): Float32Array {
  const y = new Float32Array(x.length);
  const e = new Float32Array(rowLen);
  for (let o = 0; o < x.length; o += rowLen) {
    let m = -Infinity;
    for (let i = 0; i < rowLen; i++) {
      if (mask && !mask[i]) continue;
      const v = x[o + i];
      if (v > m) m = v;
    }
    let s = 0;
    for (let i = 0; i < rowLen; i++) {
      if (mask && !mask[i]) continue;
      const ei = exp(sub(x[o + i], m));
      e[i] = ei;
      s = add(s, ei);
    }
    for (let i = 0; i < rowLen; i++) y[o + i] = mask && !mask[i] ? 0 : div(e[i], s);
  }
  return y;
}

export function softmaxRowsBackward(y: Float32Array, dy: Float32Array, rowLen: number, mask: readonly boolean[] | null = null): Float32Array {
  const dx = new Float32Array(y.length);
  for (let o = 0; o < y.length; o += rowLen) {
    let dot = 0;
    for (let i = 0; i < rowLen; i++) {
      if (mask && !mask[i]) continue;
      dot = add(dot, mul(dy[o + i], y[o + i]));
    }
    for (let i = 0; i < rowLen; i++) {
      if (mask && !mask[i]) continue;
      dx[o + i] = mul(y[o + i], sub(dy[o + i], dot));
    }
  }
  return dx;
}
