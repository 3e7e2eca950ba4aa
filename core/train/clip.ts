/**
 * Gradient clipping by global norm (torch.nn.utils.clip_grad_norm_, norm_type 2).
 *
 * Canonical arithmetic:
 *   S = sum of f32(g*g) over every parameter in parameters() order, each parameter's elements
 *       ascending, one running f32 sum starting at +0;   total = sqrt(S)   (core/math sqrt)
 *   coef = f32(max_norm) / (total + f32(1e-6))            (core/math div)
 *   if coef < 1: every g = f32(g * coef)                 (torch multiplies by clamp(coef, max=1))
 * Torch sums the per-parameter norms' squares instead (a norm of norms) and accumulates in
 * double on the CPU; the single f32 running sum is Heddle's canonical order.
 */
import { fail } from '../errors.ts';
import { add, div, f32, mul, sqrt } from '../math/index.ts';
import type { NamedParam } from '../network.ts';

/** Scales gradients in place when their global L2 norm exceeds `maxNorm`; returns that norm (f32). */
export function clipGradNorm(params: readonly NamedParam[], maxNorm: number): number {
  if (typeof maxNorm !== 'number' || !Number.isFinite(maxNorm) || maxNorm <= 0) {
    fail('CONFIG_INVALID', `max_norm must be a finite number > 0, got ${String(maxNorm)}`, 'clip_norm');
  }
  const total = gradNorm(params);
  const coef = div(f32(maxNorm), add(total, f32(1e-6)));
  if (coef < 1) {
    for (const { param } of params) {
      const g = param.grad.data;
      for (let i = 0; i < g.length; i++) g[i] = mul(g[i], coef);
    }
  }
  return total;
}

/** The global L2 norm of all gradients, in the canonical order above. */
export function gradNorm(params: readonly NamedParam[]): number {
  let s = 0;
  for (const { param } of params) {
    const g = param.grad.data;
    for (let i = 0; i < g.length; i++) s = add(s, mul(g[i], g[i]));
  }
  return sqrt(s);
}
