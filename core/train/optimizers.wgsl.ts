/**
 * The optimizer step on the GPU: one element-wise kernel per parameter size, the per-element
 * sequences of optimizers.ts operation for operation (h_add / h_mul / heddle_div /
 * heddle_sqrt are the CPU's add / mul / div / sqrt). Hyperparameters that never change are
 * baked in as exact f32 constants; what changes per step (lr, bias corrections, the first-step
 * flag) arrives in a small `sc` buffer, computed on the host exactly as the CPU computes it,
 * so one compiled pipeline serves every step of a schedule.
 */
import type { ShaderSpec } from '../backend/webgpu/shader.ts';
import { f32Lit } from '../backend/webgpu/shader.ts';
import { f32 } from '../math/index.ts';
import { powInt } from './hostmath.ts';
import { type OptimizerSpec, slotNames } from './optimizers.ts';

/** Invocations per workgroup of the step kernel. */
export const OPT_WG = 256;

/**
 * torch's lerp(a, b, w) in f32 with w a constant (optimizers.ts lerp): the branch is chosen
 * on the host, as the CPU's test of |w| < 0.5 depends only on w.
 */
function lerpWgsl(a: string, b: string, w: number): string {
  return Math.abs(w) < 0.5 ? `h_add(${a}, h_mul(${f32Lit(w)}, h_sub(${b}, ${a})))` : `h_sub(${b}, h_mul(h_sub(${b}, ${a}), ${f32Lit(f32(1 - w))}))`;
}

/**
 * The step kernel for parameters of `n` elements. Binds p (read_write), g (read), then one
 * buffer per state slot (optimizer.slots order, read_write), then sc (read).
 */
export function optimizerStepShader(spec: OptimizerSpec, n: number, nx: number, label: string): ShaderSpec {
  const slots = slotNames(spec);
  const buffers = [
    { name: 'p', access: 'read_write' as const },
    { name: 'g', access: 'read' as const },
    ...slots.map((name) => ({ name, access: 'read_write' as const })),
    { name: 'sc', access: 'read' as const },
  ];
  let body: string;
  const math: string[] = [];
  switch (spec.type) {
    case 'sgd': {
      // sc = [f32(-lr), first step ? 1 : 0]
      const lines = ['  var gv = g[i];'];
      if (spec.weight_decay !== 0) lines.push(`  gv = h_add(gv, h_mul(${f32Lit(f32(spec.weight_decay))}, p[i]));`);
      if (spec.momentum !== 0) {
        lines.push(`  var b = h_add(h_mul(momentum_buffer[i], ${f32Lit(f32(spec.momentum))}), h_mul(${f32Lit(f32(1 - spec.dampening))}, gv));`);
        lines.push('  if (sc[1] != 0.0) { b = gv; }');
        lines.push('  momentum_buffer[i] = b;');
        lines.push(spec.nesterov ? `  gv = h_add(gv, h_mul(${f32Lit(f32(spec.momentum))}, b));` : '  gv = b;');
      }
      lines.push('  p[i] = h_add(p[i], h_mul(sc[0], gv));');
      body = lines.join('\n');
      break;
    }
    case 'adamw': {
      // sc = [f32(1 - lr*wd), f32(-(lr / bc1)), f32(sqrt(bc2))]
      const [beta1, beta2] = spec.betas;
      math.push('div', 'sqrt');
      const lines = ['  let gv = g[i];', '  var pv = p[i];'];
      if (spec.weight_decay !== 0) lines.push('  pv = h_mul(pv, sc[0]);');
      lines.push(`  let m = ${lerpWgsl('exp_avg[i]', 'gv', f32(1 - beta1))};`);
      lines.push('  exp_avg[i] = m;');
      lines.push(`  let v = h_add(h_mul(exp_avg_sq[i], ${f32Lit(f32(beta2))}), h_mul(h_mul(${f32Lit(f32(1 - beta2))}, gv), gv));`);
      lines.push('  exp_avg_sq[i] = v;');
      lines.push('  var vv = v;');
      if (spec.amsgrad) {
        lines.push('  var vm = max_exp_avg_sq[i];');
        lines.push('  if (!(vm >= vv)) { vm = vv; }');
        lines.push('  max_exp_avg_sq[i] = vm;');
        lines.push('  vv = vm;');
      }
      lines.push(`  let denom = h_add(heddle_div(heddle_sqrt(vv), sc[2]), ${f32Lit(f32(spec.eps))});`);
      lines.push('  p[i] = h_add(pv, heddle_div(h_mul(sc[1], m), denom));');
      body = lines.join('\n');
      break;
    }
    case 'rmsprop': {
      // sc = [f32(-lr)]
      math.push('div', 'sqrt');
      const w = f32(1 - spec.alpha);
      const lines = ['  var gv = g[i];'];
      if (spec.weight_decay !== 0) lines.push(`  gv = h_add(gv, h_mul(${f32Lit(f32(spec.weight_decay))}, p[i]));`);
      lines.push(`  let sq = h_add(h_mul(square_avg[i], ${f32Lit(f32(spec.alpha))}), h_mul(h_mul(${f32Lit(w)}, gv), gv));`);
      lines.push('  square_avg[i] = sq;');
      if (spec.centered) {
        lines.push(`  let ga = ${lerpWgsl('grad_avg[i]', 'gv', w)};`);
        lines.push('  grad_avg[i] = ga;');
        lines.push('  let varc = h_sub(sq, h_mul(ga, ga));');
        // max(0, varc) as the CPU writes it: varc > 0 ? varc : +0 (NaN and -0 give +0)
        lines.push('  var avg = heddle_sqrt(select(h_zero(), varc, varc > 0.0));');
      } else {
        lines.push('  var avg = heddle_sqrt(sq);');
      }
      lines.push(`  avg = h_add(avg, ${f32Lit(f32(spec.eps))});`);
      if (spec.momentum > 0) {
        lines.push(`  let b = h_add(h_mul(momentum_buffer[i], ${f32Lit(f32(spec.momentum))}), heddle_div(gv, avg));`);
        lines.push('  momentum_buffer[i] = b;');
        lines.push('  p[i] = h_add(p[i], h_mul(sc[0], b));');
      } else {
        lines.push('  p[i] = h_add(p[i], heddle_div(h_mul(sc[0], gv), avg));');
      }
      body = lines.join('\n');
      break;
    }
  }
  return {
    label,
    buffers,
    math,
    consts: { N: n, NX: nx },
    workgroupSize: [OPT_WG],
    body: `  let i = (wid.y * NX + wid.x) * ${OPT_WG}u + lid.x;
  if (i >= N) { return; }
${body}`,
  };
}

/**
 * The per-step scalars, computed as optimizers.ts computes them for step number `t` (from 1)
 * with learning rate `lr`; `first` is true on the optimizer's first step (sgd's buffer init).
 */
export function optimizerScalars(spec: OptimizerSpec, lr: number, t: number, first: boolean): Float32Array {
  switch (spec.type) {
    case 'sgd':
      return Float32Array.of(f32(-lr), first ? 1 : 0);
    case 'adamw': {
      const [beta1, beta2] = spec.betas;
      const bc1 = 1 - powInt(beta1, t);
      const bc2 = 1 - powInt(beta2, t);
      return Float32Array.of(f32(1 - lr * spec.weight_decay), f32(-(lr / bc1)), f32(Math.sqrt(bc2)));
    }
    case 'rmsprop':
      return Float32Array.of(f32(-lr));
  }
}
