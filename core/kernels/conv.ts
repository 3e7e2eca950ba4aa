/**
 * N-d convolution kernels (N = 1, 2, 3), behind conv1d/2d/3d and conv_transposed1d/2d/3d.
 *
 * Every spatial shape is handled as 3-d [D, H, W]: 1-d uses [1, 1, L] and 2-d [1, H, W], with
 * kernel 1, stride 1, padding 0 and dilation 1 in the added dims (so they change no order).
 * Tensors are channels-first and row-major: [batch, channels, D, H, W].
 *
 * Geometry. A convolution relates a "wide" side (the conv input, or the transposed conv output)
 * and a "narrow" side (the conv output, or the transposed conv input). Narrow position q and
 * kernel offset k = (kd, kh, kw) touch the wide position
 *     t = q * stride - padding + k * dilation            (per dim)
 * and a pair whose t falls outside the wide side (in the zero padding) is skipped: it adds
 * nothing, not even a zero product. Kernel offsets are enumerated in row-major order
 * (kd, then kh, then kw, each ascending), written "k ascending" below.
 *
 * Canonical arithmetic (the WebGPU backend must follow the same orders). Every product and
 * every partial sum is rounded to f32 and flushed (|v| < 2^-126 -> zero of the same sign);
 * each sum starts at +0 and adds its terms in the order given.
 *
 *   conv forward, W [F, C, k...]:
 *     y[n, f, q] = f32( acc + b[f] ),  acc = sum over c = 0..C-1 ascending, then k ascending,
 *                  of W[f, c, k] * x[n, c, t(q, k)]                      (without bias: y = acc)
 *   conv backward:
 *     dx[n, c, t] = sum over f ascending, then k ascending, of W[f, c, k] * dy[n, f, q]
 *                   for the one q (if any) with t(q, k) = t
 *     dW[f, c, k] += ( sum over n ascending, then q ascending (row-major), of dy[n, f, q] * x[n, c, t(q, k)] )
 *     db[f]       += ( sum over n ascending, then q ascending, of dy[n, f, q] )
 *
 *   transposed forward, W [C, F, k...] (C = input channels, F = output channels):
 *     y[n, f, t] = f32( acc + b[f] ),  acc = sum over c ascending, then k ascending, of
 *                  W[c, f, k] * x[n, c, q] for the one q (if any) with t(q, k) = t
 *   transposed backward:
 *     dx[n, c, q] = sum over f ascending, then k ascending, of W[c, f, k] * dy[n, f, t(q, k)]
 *     dW[c, f, k] += ( sum over n ascending, then q ascending, of x[n, c, q] * dy[n, f, t(q, k)] )
 *     db[f]       += ( sum over n ascending, then t ascending, of dy[n, f, t] )
 *
 * The "+=" into a parameter gradient is one f32 add per element of the finished sum (as
 * kernels/linear.ts). Products are commutative in IEEE arithmetic, so operand order is free.
 *
 * So three loops serve both layer families:
 *   gather  (conv forward, transposed dx):  out[n, a, q] = sum_b sum_k w[a, b, k] * wide[n, b, t(q, k)]
 *   scatter (transposed forward, conv dx):  out[n, a, t] = sum_b sum_k w[b, a, k] * narrow[n, b, q]
 *   weightGrad (both):                      g[a, b, k]  += sum_n sum_q narrow[n, a, q] * wide[n, b, t(q, k)]
 * Each output's own accumulation order stays the canonical one; only the interleaving across
 * outputs differs: gather runs one dot product per output over a per-row table of taps (four
 * output channels at a time); scatter and weightGrad run over planes of positions with a
 * scalar weight in the inner loop.
 *
 * Fast path, proven exact (the argument of kernels/linear.ts): when every nonzero |a| * |b|
 * of the two operand tensors of one sample is at least 2^-102, every product and partial sum
 * is a multiple of 2^-125 and never subnormal, so the flush checks are skipped. Operands are
 * f32 values that are never subnormal (inputs and weights are flushed on entry).
 */

const MIN_NORMAL = 1.1754943508222875e-38;
const NO_SUBNORMAL_PRODUCTS = 1.9721522630525295e-31; // 2^-102
const fround = Math.fround;
const abs = Math.abs;

export type Dims3 = readonly [number, number, number];

export interface ConvGeometry {
  /** Spatial [D, H, W] of the wide side: conv input, transposed conv output. */
  readonly wide: Dims3;
  /** Spatial [D, H, W] of the narrow side: conv output, transposed conv input. */
  readonly narrow: Dims3;
  readonly kernel: Dims3;
  readonly stride: Dims3;
  readonly padding: Dims3;
  readonly dilation: Dims3;
}

/** Conv output size of one dim: floor((in + 2p - d(k-1) - 1) / s) + 1 (may be < 1: invalid). */
export function convOutSize(input: number, k: number, s: number, p: number, d: number): number {
  return Math.floor((input + 2 * p - d * (k - 1) - 1) / s) + 1;
}

/** Transposed conv output size of one dim: (in - 1) s - 2p + d(k-1) + output_padding + 1. */
export function convTransposedOutSize(input: number, k: number, s: number, p: number, d: number, op: number): number {
  return (input - 1) * s - 2 * p + d * (k - 1) + op + 1;
}

/** Per dim and kernel offset: the narrow range [lo, hi) whose wide position is inside, and t - q*s. */
interface DimTaps {
  lo: Int32Array;
  hi: Int32Array;
  off: Int32Array;
}

function dimTaps(wide: number, narrow: number, k: number, s: number, p: number, d: number): DimTaps {
  const lo = new Int32Array(k), hi = new Int32Array(k), off = new Int32Array(k);
  for (let j = 0; j < k; j++) {
    const o = j * d - p; // t = q*s + o, need 0 <= t <= wide - 1
    off[j] = o;
    lo[j] = Math.max(0, Math.ceil(-o / s));
    hi[j] = Math.min(narrow, Math.floor((wide - 1 - o) / s) + 1);
    if (hi[j] < lo[j]) hi[j] = lo[j];
  }
  return { lo, hi, off };
}

function taps(g: ConvGeometry): [DimTaps, DimTaps, DimTaps] {
  return [0, 1, 2].map((i) => dimTaps(g.wide[i], g.narrow[i], g.kernel[i], g.stride[i], g.padding[i], g.dilation[i])) as [DimTaps, DimTaps, DimTaps];
}

const prod = (d: Dims3): number => d[0] * d[1] * d[2];

function minAbsNonzero(a: Float32Array, from: number, to: number): number {
  let m = Infinity;
  for (let i = from; i < to; i++) {
    const v = abs(a[i]);
    if (v !== 0 && v < m) m = v;
  }
  return m;
}

/** min nonzero |value| of each sample's block of `per` values. */
function sampleMins(a: Float32Array, batch: number, per: number): Float64Array {
  const m = new Float64Array(batch);
  for (let n = 0; n < batch; n++) m[n] = minAbsNonzero(a, n * per, n * per + per);
  return m;
}

/**
 * out[n, a, q] = sum over b ascending, k ascending of w[(a*inCh + b)*K + k] * wide[n, b, t(q, k)],
 * then + bias[a] when given. wide: [batch, inCh, ...g.wide]; out: [batch, outCh, ...g.narrow].
 *
 * Per output row (qd, qh), a table lists the taps (b, k) whose d and h offsets are inside, in
 * the canonical order, with their input and weight offsets. Each output of the row whose w taps
 * are all inside is then one dot product over that table, four output channels per pass sharing
 * each input load (as kernels/linear.ts); the few outputs near the w edges skip the table's
 * entries whose w position falls outside and check every step.
 */
export function convGather(
  wide: Float32Array, batch: number, inCh: number, w: Float32Array, outCh: number, bias: Float32Array | null, g: ConvGeometry,
): Float32Array {
  const wideP = prod(g.wide), narP = prod(g.narrow), K = prod(g.kernel);
  const [WD, WH, WW] = g.wide, [ND, NH, NW] = g.narrow, [KD, KH, KW] = g.kernel;
  const [sd, sh, sw] = g.stride, [pd, ph, pw] = g.padding, [dd, dh, dw] = g.dilation;
  const tw = taps(g)[2];
  // Outputs qw in [wLo, wHi) have every w tap inside (lo and hi fall as the offset grows).
  const wLo = tw.lo[0], wHi = Math.max(tw.lo[0], tw.hi[KW - 1]);
  const xOff = new Int32Array(inCh * K), wOff = new Int32Array(inCh * K), kwOf = new Int32Array(inCh * K);
  const out = new Float32Array(batch * outCh * narP);
  const minW = minAbsNonzero(w, 0, w.length);
  const minX = sampleMins(wide, batch, inCh * wideP);
  const fastN = new Uint8Array(batch);
  for (let n = 0; n < batch; n++) fastN[n] = minW * minX[n] >= NO_SUBNORMAL_PRODUCTS ? 1 : 0;
  for (let qd = 0; qd < ND; qd++) {
    for (let qh = 0; qh < NH; qh++) {
      // The row's tap table, relative to the input position of (qd, qh, qw) with kd = kh = kw = 0.
      const id0 = qd * sd - pd, ih0 = qh * sh - ph;
      let T = 0;
      for (let b = 0; b < inCh; b++) {
        for (let kd = 0; kd < KD; kd++) {
          const id = id0 + kd * dd;
          if (id < 0 || id >= WD) continue;
          for (let kh = 0; kh < KH; kh++) {
            const ih = ih0 + kh * dh;
            if (ih < 0 || ih >= WH) continue;
            for (let kw = 0; kw < KW; kw++) {
              xOff[T] = b * wideP + (kd * dd * WH + kh * dh) * WW + kw * dw;
              wOff[T] = b * K + (kd * KH + kh) * KW + kw;
              kwOf[T] = kw;
              T++;
            }
          }
        }
      }
      const row = (qd * NH + qh) * NW;
      const full = T === inCh * K; // every d and h tap inside: wOff[t] = t
      for (let n = 0; n < batch; n++) {
        const fast = fastN[n] === 1;
        const xn = n * inCh * wideP;
        const rowBase = xn + (id0 * WH + ih0) * WW - pw;
        for (let a = 0; a < outCh; a += 4) {
          const m = Math.min(4, outCh - a);
          const w0 = a * inCh * K, w1 = w0 + inCh * K, w2 = w1 + inCh * K, w3 = w2 + inCh * K;
          const ob = (n * outCh + a) * narP + row;
          for (let qw = 0; qw < NW; qw++) {
            const o = ob + qw;
            const base = rowBase + qw * sw;
            if (qw < wLo || qw >= wHi) {
              // Near a w edge: the row's taps whose w position is inside, every step checked.
              const iw0 = qw * sw - pw;
              for (let j = 0; j < m; j++) {
                const wj = (a + j) * inCh * K;
                let acc = 0;
                for (let t = 0; t < T; t++) {
                  const iw = iw0 + kwOf[t] * dw;
                  if (iw < 0 || iw >= WW) continue;
                  let p = fround(w[wj + wOff[t]] * wide[base + xOff[t]]);
                  if (abs(p) < MIN_NORMAL) p *= 0;
                  acc = fround(acc + p);
                  if (abs(acc) < MIN_NORMAL) acc *= 0;
                }
                out[o + j * narP] = acc;
              }
              continue;
            }
            if (m === 4) {
              let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
              if (fast && full) {
                for (let t = 0; t < T; t++) {
                  const xv = wide[base + xOff[t]];
                  a0 = fround(a0 + fround(w[w0 + t] * xv));
                  a1 = fround(a1 + fround(w[w1 + t] * xv));
                  a2 = fround(a2 + fround(w[w2 + t] * xv));
                  a3 = fround(a3 + fround(w[w3 + t] * xv));
                }
              } else if (fast) {
                for (let t = 0; t < T; t++) {
                  const xv = wide[base + xOff[t]];
                  const wt = wOff[t];
                  a0 = fround(a0 + fround(w[w0 + wt] * xv));
                  a1 = fround(a1 + fround(w[w1 + wt] * xv));
                  a2 = fround(a2 + fround(w[w2 + wt] * xv));
                  a3 = fround(a3 + fround(w[w3 + wt] * xv));
                }
              } else {
                for (let t = 0; t < T; t++) {
                  const xv = wide[base + xOff[t]];
                  const wt = wOff[t];
                  let p0 = fround(w[w0 + wt] * xv);
                  let p1 = fround(w[w1 + wt] * xv);
                  let p2 = fround(w[w2 + wt] * xv);
                  let p3 = fround(w[w3 + wt] * xv);
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
              out[o] = a0;
              out[o + narP] = a1;
              out[o + 2 * narP] = a2;
              out[o + 3 * narP] = a3;
            } else {
              for (let j = 0; j < m; j++) {
                const wj = (a + j) * inCh * K;
                let acc = 0;
                for (let t = 0; t < T; t++) {
                  let p = fround(w[wj + wOff[t]] * wide[base + xOff[t]]);
                  if (abs(p) < MIN_NORMAL) p *= 0;
                  acc = fround(acc + p);
                  if (abs(acc) < MIN_NORMAL) acc *= 0;
                }
                out[o + j * narP] = acc;
              }
            }
          }
        }
      }
    }
  }
  if (bias) addBias(out, batch, outCh, narP, bias);
  return out;
}

/**
 * out[n, a, t] = sum over b ascending, k ascending of w[(b*outCh + a)*K + k] * narrow[n, b, q]
 * (the one q with t(q, k) = t). narrow: [batch, inCh, ...g.narrow]; out: [batch, outCh, ...g.wide].
 * Wide positions no pair reaches stay +0.
 */
export function convScatter(narrow: Float32Array, batch: number, inCh: number, w: Float32Array, outCh: number, g: ConvGeometry): Float32Array {
  const wideP = prod(g.wide), narP = prod(g.narrow), K = prod(g.kernel);
  const [, WH, WW] = g.wide, [, NH, NW] = g.narrow, [KD, KH, KW] = g.kernel;
  const [sd, sh, sw] = g.stride;
  const [td, th, tw] = taps(g);
  const out = new Float32Array(batch * outCh * wideP);
  const minW = minAbsNonzero(w, 0, w.length);
  const minX = sampleMins(narrow, batch, inCh * narP);
  for (let n = 0; n < batch; n++) {
    const fast = minW * minX[n] >= NO_SUBNORMAL_PRODUCTS;
    for (let a = 0; a < outCh; a++) {
      const ob = (n * outCh + a) * wideP;
      for (let b = 0; b < inCh; b++) {
        const xb = (n * inCh + b) * narP;
        const wb = (b * outCh + a) * K;
        for (let kd = 0; kd < KD; kd++) {
          const dlo = td.lo[kd], dhi = td.hi[kd], doff = td.off[kd];
          for (let kh = 0; kh < KH; kh++) {
            const hlo = th.lo[kh], hhi = th.hi[kh], hoff = th.off[kh];
            for (let kw = 0; kw < KW; kw++) {
              const wlo = tw.lo[kw], whi = tw.hi[kw], woff = tw.off[kw];
              const wv = w[wb + (kd * KH + kh) * KW + kw];
              for (let qd = dlo; qd < dhi; qd++) {
                const id = qd * sd + doff;
                for (let qh = hlo; qh < hhi; qh++) {
                  const ih = qh * sh + hoff;
                  let xi = xb + (qd * NH + qh) * NW + wlo;
                  let yi = ob + (id * WH + ih) * WW + wlo * sw + woff;
                  const end = xi + (whi - wlo);
                  if (fast) {
                    for (; xi < end; xi++, yi += sw) out[yi] += fround(wv * narrow[xi]);
                  } else {
                    for (; xi < end; xi++, yi += sw) {
                      let p = fround(wv * narrow[xi]);
                      if (abs(p) < MIN_NORMAL) p *= 0;
                      let s = fround(out[yi] + p);
                      if (abs(s) < MIN_NORMAL) s *= 0;
                      out[yi] = s;
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
  }
  return out;
}

/**
 * gradW[(a*wideCh + b)*K + k] += sum over n ascending, q ascending (row-major) of
 * narrow[n, a, q] * wide[n, b, t(q, k)]: the finished sum is added with one f32 add.
 */
export function convWeightGrad(
  narrow: Float32Array, narrowCh: number, wide: Float32Array, wideCh: number, batch: number, g: ConvGeometry, gradW: Float32Array,
): void {
  const wideP = prod(g.wide), narP = prod(g.narrow), K = prod(g.kernel);
  const [, WH, WW] = g.wide, [, NH, NW] = g.narrow, [KD, KH, KW] = g.kernel;
  const [sd, sh, sw] = g.stride;
  const [td, th, tw] = taps(g);
  const acc = new Float32Array(narrowCh * wideCh * K);
  const minA = sampleMins(narrow, batch, narrowCh * narP);
  const minB = sampleMins(wide, batch, wideCh * wideP);
  const fast = new Uint8Array(batch);
  for (let n = 0; n < batch; n++) fast[n] = minA[n] * minB[n] >= NO_SUBNORMAL_PRODUCTS ? 1 : 0;
  for (let a = 0; a < narrowCh; a++) {
    for (let b = 0; b < wideCh; b++) {
      for (let kd = 0; kd < KD; kd++) {
        const dlo = td.lo[kd], dhi = td.hi[kd], doff = td.off[kd];
        for (let kh = 0; kh < KH; kh++) {
          const hlo = th.lo[kh], hhi = th.hi[kh], hoff = th.off[kh];
          for (let kw = 0; kw < KW; kw++) {
            const wlo = tw.lo[kw], whi = tw.hi[kw], woff = tw.off[kw];
            let s = 0;
            for (let n = 0; n < batch; n++) {
              const ab = (n * narrowCh + a) * narP;
              const bb = (n * wideCh + b) * wideP;
              const quick = fast[n] === 1;
              for (let qd = dlo; qd < dhi; qd++) {
                const id = qd * sd + doff;
                for (let qh = hlo; qh < hhi; qh++) {
                  const ih = qh * sh + hoff;
                  let ai = ab + (qd * NH + qh) * NW + wlo;
                  let bi = bb + (id * WH + ih) * WW + wlo * sw + woff;
                  const end = ai + (whi - wlo);
                  if (quick) {
                    for (; ai < end; ai++, bi += sw) s = fround(s + fround(narrow[ai] * wide[bi]));
                  } else {
                    for (; ai < end; ai++, bi += sw) {
                      let p = fround(narrow[ai] * wide[bi]);
                      if (abs(p) < MIN_NORMAL) p *= 0;
                      s = fround(s + p);
                      if (abs(s) < MIN_NORMAL) s *= 0;
                    }
                  }
                }
              }
            }
            acc[(a * wideCh + b) * K + (kd * KH + kh) * KW + kw] = s;
          }
        }
      }
    }
  }
  addInto(gradW, acc);
}

/** gradB[c] += sum over n ascending, then positions ascending, of dy[n, c, p] (one f32 add). */
export function channelSumsInto(dy: Float32Array, batch: number, ch: number, per: number, gradB: Float32Array): void {
  const acc = new Float32Array(ch);
  for (let c = 0; c < ch; c++) {
    let s = 0;
    for (let n = 0; n < batch; n++) {
      const o = (n * ch + c) * per;
      for (let i = 0; i < per; i++) s = ftz(fround(s + dy[o + i]));
    }
    acc[c] = s;
  }
  addInto(gradB, acc);
}

/** y[n, c, p] = f32(y[n, c, p] + bias[c]), flushed. */
export function addBias(y: Float32Array, batch: number, ch: number, per: number, bias: Float32Array): void {
  for (let n = 0; n < batch; n++) {
    for (let c = 0; c < ch; c++) {
      const bv = bias[c];
      const o = (n * ch + c) * per;
      for (let i = o; i < o + per; i++) y[i] = ftz(fround(y[i] + bv));
    }
  }
}

function addInto(target: Float32Array, src: Float32Array): void {
  for (let i = 0; i < target.length; i++) target[i] = ftz(fround(target[i] + src[i]));
}

function ftz(v: number): number {
  return abs(v) < MIN_NORMAL ? v * 0 : v;
}
