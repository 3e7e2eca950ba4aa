/**
 * Row softmax, the kernel behind the softmax layer and the softmax activation; below it the
 * segment softmax (for the tree and mixture variants), sparsemax and 1.5-entmax kernels.
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
import { add, div, exp, mul, sqrt, sub } from '../math/index.ts';

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

/*
 * ---------------------------------------------------------------------------------------
 * Segment softmax: the same arithmetic as softmaxRowsForward / softmaxRowsBackward (no mask)
 * on n values at an offset, for the variants built from several softmaxes of different
 * lengths (hierarchical, adaptive, mixture). For equal data the bits equal the row kernel's.
 * ---------------------------------------------------------------------------------------
 */

/** y[yo + i] = softmax(x[xo .. xo + n))[i]; `e` is scratch of length >= n. */
export function softmaxSegment(x: Float32Array, xo: number, y: Float32Array, yo: number, n: number, e: Float32Array): void {
  let m = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = x[xo + i];
    if (v > m) m = v;
  }
  let s = 0;
  for (let i = 0; i < n; i++) {
    const ei = exp(sub(x[xo + i], m));
    e[i] = ei;
    s = add(s, ei);
  }
  for (let i = 0; i < n; i++) y[yo + i] = div(e[i], s);
}

/** dx[dxo + i] = y[i] * (dy[i] - sum over j ascending of dy[j] * y[j]) on one segment of n values. */
export function softmaxSegmentBackward(y: Float32Array, yo: number, dy: Float32Array, dyo: number, dx: Float32Array, dxo: number, n: number): void {
  let dot = 0;
  for (let i = 0; i < n; i++) dot = add(dot, mul(dy[dyo + i], y[yo + i]));
  for (let i = 0; i < n; i++) dx[dxo + i] = mul(y[yo + i], sub(dy[dyo + i], dot));
}

/*
 * ---------------------------------------------------------------------------------------
 * Sort used by sparsemax and entmax: positions of z[o .. o + n) ordered by value descending;
 * equal values (including -0 and +0) keep ascending position order. The order is therefore
 * unique, whatever sorting algorithm produces it. Values are compared exactly (no rounding).
 * ---------------------------------------------------------------------------------------
 */
export function sortDescending(z: Float32Array, o: number, n: number): number[] {
  const idx = Array.from({ length: n }, (_, i) => i);
  idx.sort((a, b) => {
    const za = z[o + a], zb = z[o + b];
    if (za > zb) return -1;
    if (za < zb) return 1;
    return a - b;
  });
  return idx;
}

/*
 * ---------------------------------------------------------------------------------------
 * Sparsemax (Martins & Astudillo 2016), per row of n values. Canonical arithmetic:
 *   m    = max of x[i] (exact);  z[i] = x[i] - m    (sparsemax is shift-invariant; after the
 *          shift the largest z is 0, so the support is never empty)
 *   s    = z sorted by sortDescending;  c_k = c_{k-1} + s_k  (k = 1..n, c_0 = +0)
 *   K    = the largest k with  1 + k * s_k > c_k   (k = 1 always qualifies: 1 + 0 > 0)
 *   tau  = (c_K - 1) / K
 *   y[i] = z[i] - tau when that is > 0, else +0
 * Backward, with S = {i : y[i] > 0} (never empty):
 *   mean  = (sum over i in S ascending of dy[i]) / |S|
 *   dx[i] = dy[i] - mean for i in S, else +0
 * ---------------------------------------------------------------------------------------
 */
export function sparsemaxRowsForward(x: Float32Array, rowLen: number): Float32Array {
  const y = new Float32Array(x.length);
  const z = new Float32Array(rowLen);
  for (let o = 0; o < x.length; o += rowLen) {
    let m = -Infinity;
    for (let i = 0; i < rowLen; i++) if (x[o + i] > m) m = x[o + i];
    for (let i = 0; i < rowLen; i++) z[i] = sub(x[o + i], m);
    const order = sortDescending(z, 0, rowLen);
    let c = 0;
    let support = 1;
    let cK = 0;
    for (let k = 1; k <= rowLen; k++) {
      const sk = z[order[k - 1]];
      c = add(c, sk);
      if (add(1, mul(k, sk)) > c) {
        support = k;
        cK = c;
      }
    }
    const tau = div(sub(cK, 1), support);
    for (let i = 0; i < rowLen; i++) {
      const v = sub(z[i], tau);
      y[o + i] = v > 0 ? v : 0;
    }
  }
  return y;
}

export function sparsemaxRowsBackward(y: Float32Array, dy: Float32Array, rowLen: number): Float32Array {
  const dx = new Float32Array(y.length);
  for (let o = 0; o < y.length; o += rowLen) {
    let s = 0;
    let count = 0;
    for (let i = 0; i < rowLen; i++) {
      if (y[o + i] > 0) {
        s = add(s, dy[o + i]);
        count++;
      }
    }
    if (count === 0) continue;
    const mean = div(s, count);
    for (let i = 0; i < rowLen; i++) if (y[o + i] > 0) dx[o + i] = sub(dy[o + i], mean);
  }
  return dx;
}

/*
 * ---------------------------------------------------------------------------------------
 * 1.5-entmax (Peters, Niculae & Martins 2019), the exact sort-based algorithm, per row of n.
 * It solves y[i] = max(z[i] - tau, 0)^2 with sum y = 1, where z = x / 2 (alpha - 1 = 1/2).
 * Canonical arithmetic:
 *   m    = max of x[i] (exact);  z[i] = (x[i] - m) * 0.5
 *   s    = z sorted by sortDescending; for k = 1..n, from c1 = c2 = +0:
 *            c1 = c1 + s_k;  c2 = c2 + s_k * s_k
 *            mean = c1 / k;  meanSq = c2 / k
 *            ss = k * (meanSq - mean * mean)
 *            delta = (1 - ss) / k;  tau_k = mean - sqrt(max(delta, +0))
 *   K    = the number of k with tau_k <= s_k  (k = 1 always counts: tau_1 = -1 <= 0 = s_1)
 *   tau  = tau_K
 *   g[i] = z[i] - tau when that is > 0, else +0;  y[i] = g[i] * g[i]
 * Backward (g saved from the forward; g = sqrt(y) in exact arithmetic):
 *   gs    = sum over i ascending of g[i];  d = sum over i ascending of g[i] * dy[i]
 *   q     = d / gs
 *   dx[i] = g[i] * dy[i] - q * g[i]  for g[i] > 0, else +0
 * ---------------------------------------------------------------------------------------
 */
export function entmax15RowsForward(x: Float32Array, rowLen: number): { y: Float32Array; g: Float32Array } {
  const y = new Float32Array(x.length);
  const g = new Float32Array(x.length);
  const z = new Float32Array(rowLen);
  for (let o = 0; o < x.length; o += rowLen) {
    let m = -Infinity;
    for (let i = 0; i < rowLen; i++) if (x[o + i] > m) m = x[o + i];
    for (let i = 0; i < rowLen; i++) z[i] = mul(sub(x[o + i], m), 0.5);
    const order = sortDescending(z, 0, rowLen);
    let c1 = 0;
    let c2 = 0;
    let count = 0;
    const taus = new Float32Array(rowLen);
    for (let k = 1; k <= rowLen; k++) {
      const sk = z[order[k - 1]];
      c1 = add(c1, sk);
      c2 = add(c2, mul(sk, sk));
      const mean = div(c1, k);
      const meanSq = div(c2, k);
      const ss = mul(k, sub(meanSq, mul(mean, mean)));
      const delta = div(sub(1, ss), k);
      const tau = sub(mean, sqrt(delta > 0 ? delta : 0));
      taus[k - 1] = tau;
      if (tau <= sk) count++;
    }
    const tau = taus[count - 1];
    for (let i = 0; i < rowLen; i++) {
      const v = sub(z[i], tau);
      if (v > 0) {
        g[o + i] = v;
        y[o + i] = mul(v, v);
      }
    }
  }
  return { y, g };
}

export function entmax15RowsBackward(g: Float32Array, dy: Float32Array, rowLen: number): Float32Array {
  const dx = new Float32Array(g.length);
  for (let o = 0; o < g.length; o += rowLen) {
    let gs = 0;
    let d = 0;
    for (let i = 0; i < rowLen; i++) {
      gs = add(gs, g[o + i]);
      d = add(d, mul(g[o + i], dy[o + i]));
    }
    if (!(gs > 0)) continue;
    const q = div(d, gs);
    for (let i = 0; i < rowLen; i++) {
      const gi = g[o + i];
      if (gi > 0) dx[o + i] = sub(mul(gi, dy[o + i]), mul(q, gi));
    }
  }
  return dx;
}
