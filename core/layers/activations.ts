import type { FieldReader } from '../fields.ts';
import { fail } from '../errors.ts';
import { f32, mul, sigmoid, tanh } from '../math/index.ts';

/**
 * Element-wise activations (softmax works per row of `rowLen`). PARTIAL: the full set is
 * being completed; names and signatures are fixed.
 */
export const ACTIVATIONS = ['linear', 'relu', 'leaky_relu', 'sigmoid', 'tanh', 'silu', 'gelu', 'mish', 'elu', 'selu', 'softmax'] as const;
export type Activation = (typeof ACTIVATIONS)[number];

const ALIASES: Record<string, Activation> = { swish: 'silu', none: 'linear', identity: 'linear' };

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
  void rowLen;
  const out = new Float32Array(pre.length);
  switch (act) {
    case 'linear':
      out.set(pre);
      return out;
    case 'relu':
      for (let i = 0; i < pre.length; i++) out[i] = pre[i] > 0 ? pre[i] : 0;
      return out;
    case 'sigmoid':
      for (let i = 0; i < pre.length; i++) out[i] = sigmoid(pre[i]);
      return out;
    case 'tanh':
      for (let i = 0; i < pre.length; i++) out[i] = tanh(pre[i]);
      return out;
    default:
      return fail('UNSUPPORTED', `activation ${act} not yet implemented`);
  }
}

export function activationBackward(act: Activation, pre: Float32Array, post: Float32Array, dy: Float32Array, rowLen: number): Float32Array {
  void rowLen;
  const out = new Float32Array(pre.length);
  switch (act) {
    case 'linear':
      out.set(dy);
      return out;
    case 'relu':
      for (let i = 0; i < pre.length; i++) out[i] = pre[i] > 0 ? dy[i] : 0;
      return out;
    case 'sigmoid':
      for (let i = 0; i < pre.length; i++) out[i] = mul(dy[i], mul(post[i], f32(1 - post[i])));
      return out;
    case 'tanh':
      for (let i = 0; i < pre.length; i++) out[i] = mul(dy[i], f32(1 - mul(post[i], post[i])));
      return out;
    default:
      return fail('UNSUPPORTED', `activation ${act} not yet implemented`);
  }
}
