/**
 * Element-wise activations (softmax works per row of `rowLen` values, the last dim).
 *
 * Canonical operation order, forward (x = pre-activation, y = output; every step is one
 * rounded + flushed f32 operation from math/index.ts, evaluated left to right as written):
 *   linear      y = x
 *   relu        y = x > 0 ? x : +0
 *   leaky_relu  y = x > 0 ? x : x * 0.01f                       (PyTorch's default slope)
 *   sigmoid     y = sigmoid(x)                                    (math/index.ts)
 *   tanh        y = tanh(x)                                       (math/index.ts)
 *   silu        y = x * sigmoid(x)                                (alias swish)
 *   gelu        y = (x * 0.5) * (1 + erf(x * SQRT1_2f))           (exact erf form, PyTorch's default)
 *   mish        y = x * tanh(softplus(x))
 *   elu         y = x > 0 ? x : exp(x) - 1                        (alpha = 1)
 *   selu        y = x > 0 ? x * SCALEf : (exp(x) - 1) * NEGf      (NEGf = ALPHAf * SCALEf, as PyTorch's elu kernel)
 *   softmax     per row: kernels/softmax.ts (max-subtracted, sum ascending, then e / s)
 * Backward (dy = upstream gradient, s = sigmoid(x), t = tanh(softplus(x))), PyTorch's formulas:
 *   linear      dx = dy
 *   relu        dx = x > 0 ? dy : +0
 *   leaky_relu  dx = x > 0 ? dy : dy * 0.01f
 *   sigmoid     dx = (dy * (1 - y)) * y
 *   tanh        dx = dy * (1 - y * y)
 *   silu        dx = (dy * s) * (1 + x * (1 - s))
 *   gelu        dx = dy * (cdf + x * pdf),  cdf = 0.5 * (1 + erf(x * SQRT1_2f)),
 *                                           pdf = BETAf * exp((x * x) * -0.5),  BETAf = f32(1/sqrt(2*pi))
 *   mish        dx = dy * (t + (x * s) * (1 - t * t))
 *   elu         dx = x > 0 ? dy : dy * exp(x)
 *   selu        dx = x > 0 ? dy * SCALEf : (dy * NEGf) * exp(x)
 *   softmax     kernels/softmax.ts
 * Derivatives at the kinks follow PyTorch: relu and leaky_relu take the x <= 0 branch at 0,
 * elu and selu too. The branch tests and pass-through values use the flushed x (and dy), so a
 * subnormal input behaves as the zero it flushes to, as on a flushing GPU.
 */
import type { FieldReader } from '../fields.ts';
import { fail } from '../errors.ts';
import { softmaxRowsBackward, softmaxRowsForward } from '../kernels/softmax.ts';
import { add, erf, exp, f32, mul, sigmoid, softplus, sub, tanh } from '../math/index.ts';

export const ACTIVATIONS = ['linear', 'relu', 'leaky_relu', 'sigmoid', 'tanh', 'silu', 'gelu', 'mish', 'elu', 'selu', 'softmax'] as const;
export type Activation = (typeof ACTIVATIONS)[number];

const ALIASES: Record<string, Activation> = { swish: 'silu', none: 'linear', identity: 'linear' };

export const LEAKY_SLOPE = f32(0.01);
export const SQRT1_2 = f32(Math.SQRT1_2);
/** 2/sqrt(pi) * sqrt(1/2) * 0.5 = 1/sqrt(2*pi), PyTorch's kBeta. */
export const GELU_BETA = f32(0.3989422804014327);
export const SELU_SCALE = f32(1.0507009873554804934193349852946);
export const SELU_ALPHA = f32(1.6732632423543772848170429916717);
export const SELU_NEG = mul(SELU_ALPHA, SELU_SCALE);

export function parseActivation(f: FieldReader, def: Activation): Activation {
  const found = f.lookup('activation');
  if (!found || found.value === null || found.value === '') return def;
  const v = found.value;
  if (typeof v !== 'string') fail('CONFIG_INVALID', `expected an activation name, got ${JSON.stringify(v)}`, f.at('activation'));
  const name = (ALIASES[v] ?? v) as Activation;
  if (!ACTIVATIONS.includes(name)) {
    fail('CONFIG_INVALID', `unknown activation '${v}'; expected one of ${ACTIVATIONS.join(', ')} (alias swish)`, f.at('activation'));
  }
  return name;
}

export function activationForward(act: Activation, pre: Float32Array, rowLen: number): Float32Array {
  const n = pre.length;
  const out = new Float32Array(n);
  switch (act) {
    case 'linear':
      for (let i = 0; i < n; i++) out[i] = f32(pre[i]);
      return out;
    case 'relu':
      for (let i = 0; i < n; i++) {
        const x = f32(pre[i]);
        out[i] = x > 0 ? x : 0;
      }
      return out;
    case 'leaky_relu':
      for (let i = 0; i < n; i++) {
        const x = f32(pre[i]);
        out[i] = x > 0 ? x : mul(x, LEAKY_SLOPE);
      }
      return out;
    case 'sigmoid':
      for (let i = 0; i < n; i++) out[i] = sigmoid(pre[i]);
      return out;
    case 'tanh':
      for (let i = 0; i < n; i++) out[i] = tanh(pre[i]);
      return out;
    case 'silu':
      for (let i = 0; i < n; i++) out[i] = mul(pre[i], sigmoid(pre[i]));
      return out;
    case 'gelu':
      for (let i = 0; i < n; i++) {
        const x = pre[i];
        out[i] = mul(mul(x, 0.5), add(1, erf(mul(x, SQRT1_2))));
      }
      return out;
    case 'mish':
      for (let i = 0; i < n; i++) out[i] = mul(pre[i], tanh(softplus(pre[i])));
      return out;
    case 'elu':
      for (let i = 0; i < n; i++) {
        const x = f32(pre[i]);
        out[i] = x > 0 ? x : sub(exp(x), 1);
      }
      return out;
    case 'selu':
      for (let i = 0; i < n; i++) {
        const x = f32(pre[i]);
        out[i] = x > 0 ? mul(x, SELU_SCALE) : mul(sub(exp(x), 1), SELU_NEG);
      }
      return out;
    case 'softmax':
      checkRowLen(n, rowLen);
      return softmaxRowsForward(pre, rowLen);
  }
}

export function activationBackward(act: Activation, pre: Float32Array, post: Float32Array, dy: Float32Array, rowLen: number): Float32Array {
  const n = pre.length;
  const out = new Float32Array(n);
  switch (act) {
    case 'linear':
      for (let i = 0; i < n; i++) out[i] = f32(dy[i]);
      return out;
    case 'relu':
      for (let i = 0; i < n; i++) out[i] = f32(pre[i]) > 0 ? f32(dy[i]) : 0;
      return out;
    case 'leaky_relu':
      for (let i = 0; i < n; i++) out[i] = f32(pre[i]) > 0 ? f32(dy[i]) : mul(dy[i], LEAKY_SLOPE);
      return out;
    case 'sigmoid':
      for (let i = 0; i < n; i++) out[i] = mul(mul(dy[i], sub(1, post[i])), post[i]);
      return out;
    case 'tanh':
      for (let i = 0; i < n; i++) out[i] = mul(dy[i], sub(1, mul(post[i], post[i])));
      return out;
    case 'silu':
      for (let i = 0; i < n; i++) {
        const x = pre[i];
        const s = sigmoid(x);
        out[i] = mul(mul(dy[i], s), add(1, mul(x, sub(1, s))));
      }
      return out;
    case 'gelu':
      for (let i = 0; i < n; i++) {
        const x = pre[i];
        const cdf = mul(0.5, add(1, erf(mul(x, SQRT1_2))));
        const pdf = mul(GELU_BETA, exp(mul(mul(x, x), -0.5)));
        out[i] = mul(dy[i], add(cdf, mul(x, pdf)));
      }
      return out;
    case 'mish':
      for (let i = 0; i < n; i++) {
        const x = pre[i];
        const t = tanh(softplus(x));
        const s = sigmoid(x);
        out[i] = mul(dy[i], add(t, mul(mul(x, s), sub(1, mul(t, t)))));
      }
      return out;
    case 'elu':
      for (let i = 0; i < n; i++) out[i] = f32(pre[i]) > 0 ? f32(dy[i]) : mul(dy[i], exp(pre[i]));
      return out;
    case 'selu':
      for (let i = 0; i < n; i++) out[i] = f32(pre[i]) > 0 ? mul(dy[i], SELU_SCALE) : mul(mul(dy[i], SELU_NEG), exp(pre[i]));
      return out;
    case 'softmax':
      checkRowLen(n, rowLen);
      return softmaxRowsBackward(post, dy, rowLen);
  }
}

function checkRowLen(n: number, rowLen: number): void {
  if (!Number.isInteger(rowLen) || rowLen < 1 || n % rowLen !== 0) fail('INTERNAL', `softmax row length ${rowLen} does not divide ${n} values`);
}
