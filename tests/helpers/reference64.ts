/**
 * Float64 reference formulas for the layer tests (plain JS doubles, Math.* allowed here:
 * these are the "true" values the f32 kernels are compared against), plus small test utils.
 */
import { HeddleError } from '../../core/errors.ts';

/** erf(x) = 2/sqrt(pi) * exp(-x^2) * sum_n 2^n x^(2n+1) / (1*3*...*(2n+1)): all terms positive, no cancellation. */
export function erf64(x: number): number {
  if (x === 0) return 0;
  const ax = Math.abs(x);
  if (ax > 6) return Math.sign(x);
  let term = ax;
  let sum = ax;
  for (let n = 1; n < 500; n++) {
    term *= (2 * ax * ax) / (2 * n + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * Math.exp(-ax * ax) * sum;
}

const SELU_SCALE = 1.0507009873554804934193349852946;
const SELU_ALPHA = 1.6732632423543772848170429916717;
const sig = (x: number): number => 1 / (1 + Math.exp(-x));
const softplus = (x: number): number => (x > 30 ? x : Math.log1p(Math.exp(x)));

/** Element-wise activation value and derivative in float64. */
export function act64(name: string, x: number): { y: number; d: number } {
  switch (name) {
    case 'linear':
      return { y: x, d: 1 };
    case 'relu':
      return { y: x > 0 ? x : 0, d: x > 0 ? 1 : 0 };
    case 'leaky_relu':
      return { y: x > 0 ? x : 0.01 * x, d: x > 0 ? 1 : 0.01 };
    case 'sigmoid': {
      const s = sig(x);
      return { y: s, d: s * (1 - s) };
    }
    case 'tanh': {
      const t = Math.tanh(x);
      return { y: t, d: 1 - t * t };
    }
    case 'silu': {
      const s = sig(x);
      return { y: x * s, d: s * (1 + x * (1 - s)) };
    }
    case 'gelu': {
      const cdf = 0.5 * (1 + erf64(x / Math.SQRT2));
      const pdf = Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
      return { y: x * cdf, d: cdf + x * pdf };
    }
    case 'mish': {
      const t = Math.tanh(softplus(x));
      return { y: x * t, d: t + x * sig(x) * (1 - t * t) };
    }
    case 'elu':
      return { y: x > 0 ? x : Math.expm1(x), d: x > 0 ? 1 : Math.exp(x) };
    case 'selu':
      return x > 0 ? { y: SELU_SCALE * x, d: SELU_SCALE } : { y: SELU_SCALE * SELU_ALPHA * Math.expm1(x), d: SELU_SCALE * SELU_ALPHA * Math.exp(x) };
    default:
      throw new Error(`no float64 reference for ${name}`);
  }
}

/** Softmax of each row of `rowLen` (mask false = excluded, output 0). */
export function softmax64(x: ArrayLike<number>, rowLen: number, mask: readonly boolean[] | null = null, temperature = 1): number[] {
  const out: number[] = new Array(x.length).fill(0);
  for (let o = 0; o < x.length; o += rowLen) {
    let m = -Infinity;
    for (let i = 0; i < rowLen; i++) if (!mask || mask[i]) m = Math.max(m, x[o + i] / temperature);
    let s = 0;
    for (let i = 0; i < rowLen; i++) if (!mask || mask[i]) s += Math.exp(x[o + i] / temperature - m);
    for (let i = 0; i < rowLen; i++) if (!mask || mask[i]) out[o + i] = Math.exp(x[o + i] / temperature - m) / s;
  }
  return out;
}

export function layerNorm64(x: ArrayLike<number>, n: number, eps: number, w: ArrayLike<number> | null, b: ArrayLike<number> | null): number[] {
  const out: number[] = [];
  for (let o = 0; o < x.length; o += n) {
    let mean = 0;
    for (let i = 0; i < n; i++) mean += x[o + i];
    mean /= n;
    let v = 0;
    for (let i = 0; i < n; i++) v += (x[o + i] - mean) ** 2;
    v /= n;
    const rs = 1 / Math.sqrt(v + eps);
    for (let i = 0; i < n; i++) out.push((x[o + i] - mean) * rs * (w ? w[i] : 1) + (b ? b[i] : 0));
  }
  return out;
}

export function rmsNorm64(x: ArrayLike<number>, n: number, eps: number, w: ArrayLike<number> | null): number[] {
  const out: number[] = [];
  for (let o = 0; o < x.length; o += n) {
    let ms = 0;
    for (let i = 0; i < n; i++) ms += x[o + i] ** 2;
    ms /= n;
    const r = 1 / Math.sqrt(ms + eps);
    for (let i = 0; i < n; i++) out.push(x[o + i] * r * (w ? w[i] : 1));
  }
  return out;
}

/** y[r, o] = sum_k W[o, k] x[r, k] + b[o], float64. */
export function linear64(x: ArrayLike<number>, inF: number, w: ArrayLike<number>, b: ArrayLike<number> | null, outF: number): number[] {
  const rows = x.length / inF;
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outF; o++) {
      let s = b ? b[o] : 0;
      for (let k = 0; k < inF; k++) s += w[o * inF + k] * x[r * inF + k];
      out.push(s);
    }
  }
  return out;
}

/** Largest |a - b| / (atol + rtol * |b|); <= 1 means within tolerance. */
export function closeness(a: ArrayLike<number>, b: ArrayLike<number>, rtol: number, atol: number): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const r = Math.abs(a[i] - b[i]) / (atol + rtol * Math.abs(b[i]));
    if (!(r <= worst)) worst = r; // NaN propagates as a failure
  }
  return worst;
}

/** Run fn and return the HeddleError it throws (throws if it does not throw one). */
export function errorOf(fn: () => unknown): HeddleError {
  try {
    fn();
  } catch (e) {
    if (e instanceof HeddleError) return e;
    throw e;
  }
  throw new Error('expected a HeddleError, but nothing was thrown');
}

/** The raw bits of a Float32Array, for bit-identity checks. */
export function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
}
