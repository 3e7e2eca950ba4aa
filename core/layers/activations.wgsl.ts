/**
 * WGSL of the element-wise activations (activations.ts holds the canonical order of each).
 * `heddle_act(x)` mirrors activationForward step for step: the same rounded, flushed
 * operations in the same order, with the math routines generated from the same definition
 * (heddle_sigmoid, heddle_erf, ...) and the constants' exact f32 bits. softmax is a row
 * operation: kernels/softmax.wgsl.ts.
 */
import { f32Lit } from '../backend/webgpu/shader.ts';
import { type Activation, GELU_BETA, LEAKY_SLOPE, SELU_NEG, SELU_SCALE, SQRT1_2 } from './activations.ts';

export interface ActivationWgsl {
  /** Defines `fn heddle_act(x: f32) -> f32`. */
  readonly decl: string;
  /** Math routines it calls. */
  readonly math: readonly string[];
}

/** x is a value read from a buffer: already rounded and flushed, so f32(x) is x. */
export function activationWgsl(act: Exclude<Activation, 'softmax'>): ActivationWgsl {
  const fn = (body: string): string => `fn heddle_act(x: f32) -> f32 {\n${body}\n}`;
  switch (act) {
    case 'linear':
      return { decl: fn('  return x;'), math: [] };
    case 'relu':
      return { decl: fn('  if (x > 0.0) { return x; }\n  return h_zero();'), math: [] };
    case 'leaky_relu':
      return { decl: fn(`  if (x > 0.0) { return x; }\n  return h_mul(x, ${f32Lit(LEAKY_SLOPE)});`), math: [] };
    case 'sigmoid':
      return { decl: fn('  return heddle_sigmoid(x);'), math: ['sigmoid'] };
    case 'tanh':
      return { decl: fn('  return heddle_tanh(x);'), math: ['tanh'] };
    case 'silu':
      return { decl: fn('  return h_mul(x, heddle_sigmoid(x));'), math: ['sigmoid'] };
    case 'gelu':
      return { decl: fn(`  return h_mul(h_mul(x, 0.5), h_add(1.0, heddle_erf(h_mul(x, ${f32Lit(SQRT1_2)}))));`), math: ['erf'] };
    case 'mish':
      return { decl: fn('  return h_mul(x, heddle_tanh(heddle_softplus(x)));'), math: ['tanh', 'softplus'] };
    case 'elu':
      return { decl: fn('  if (x > 0.0) { return x; }\n  return h_sub(heddle_exp(x), 1.0);'), math: ['exp'] };
    case 'selu':
      return { decl: fn(`  if (x > 0.0) { return h_mul(x, ${f32Lit(SELU_SCALE)}); }\n  return h_mul(h_sub(heddle_exp(x), 1.0), ${f32Lit(SELU_NEG)});`), math: ['exp'] };
  }
}

/**
 * `fn heddle_act_grad(pre: f32, post: f32, dy: f32) -> f32`: dL/dpre from dL/dpost, mirroring
 * activationBackward step for step (pre: the value before the activation, post: after it).
 */
export function activationGradWgsl(act: Exclude<Activation, 'softmax'>): ActivationWgsl {
  const fn = (body: string): string => `fn heddle_act_grad(pre: f32, post: f32, dy: f32) -> f32 {\n${body}\n}`;
  switch (act) {
    case 'linear':
      return { decl: fn('  return dy;'), math: [] };
    case 'relu':
      return { decl: fn('  if (pre > 0.0) { return dy; }\n  return h_zero();'), math: [] };
    case 'leaky_relu':
      return { decl: fn(`  if (pre > 0.0) { return dy; }\n  return h_mul(dy, ${f32Lit(LEAKY_SLOPE)});`), math: [] };
    case 'sigmoid':
      return { decl: fn('  return h_mul(h_mul(dy, h_sub(1.0, post)), post);'), math: [] };
    case 'tanh':
      return { decl: fn('  return h_mul(dy, h_sub(1.0, h_mul(post, post)));'), math: [] };
    case 'silu':
      return { decl: fn('  let s = heddle_sigmoid(pre);\n  return h_mul(h_mul(dy, s), h_add(1.0, h_mul(pre, h_sub(1.0, s))));'), math: ['sigmoid'] };
    case 'gelu':
      return {
        decl: fn(`  let cdf = h_mul(0.5, h_add(1.0, heddle_erf(h_mul(pre, ${f32Lit(SQRT1_2)}))));
  let pdf = h_mul(${f32Lit(GELU_BETA)}, heddle_exp(h_mul(h_mul(pre, pre), ${f32Lit(-0.5)})));
  return h_mul(dy, h_add(cdf, h_mul(pre, pdf)));`),
        math: ['erf', 'exp'],
      };
    case 'mish':
      return { decl: fn('  let t = heddle_tanh(heddle_softplus(pre));\n  let s = heddle_sigmoid(pre);\n  return h_mul(dy, h_add(t, h_mul(h_mul(pre, s), h_sub(1.0, h_mul(t, t)))));'), math: ['tanh', 'softplus', 'sigmoid'] };
    case 'elu':
      return { decl: fn('  if (pre > 0.0) { return dy; }\n  return h_mul(dy, heddle_exp(pre));'), math: ['exp'] };
    case 'selu':
      return { decl: fn(`  if (pre > 0.0) { return h_mul(dy, ${f32Lit(SELU_SCALE)}); }\n  return h_mul(h_mul(dy, ${f32Lit(SELU_NEG)}), heddle_exp(pre));`), math: ['exp'] };
  }
}
