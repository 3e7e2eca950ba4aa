/**
 * Optimizers with torch.optim's update rules, defaults and state names: sgd, adamw, rmsprop.
 *
 * Arithmetic rule: host-side scalars (lr, bias corrections, 1 - beta, ...) are computed in
 * float64 exactly as PyTorch's Python code computes them, then rounded to f32 once, as
 * torch does when a Python float meets an f32 tensor. Per-element updates then follow the
 * operation order of torch's single-tensor CPU path (the default for CPU tensors), each
 * elementary result rounded to f32 and flushed to zero below 2^-126 (core/math). torch's
 * vectorized CPU kernels fuse some multiply-adds and keep subnormals, so Heddle's result is
 * the unfused-rounding version of the same formula: equal, or within an ulp or two.
 * The exact per-element sequences are written next to each step function and in
 * docs/training.md.
 *
 * torch primitives used below, in f32 (a, b tensors; s an f32 scalar):
 *   a.add(b, alpha=s)        -> a + s*b
 *   a.addcmul(b, c, value=s) -> a + (s*b)*c
 *   a.addcdiv(b, c, value=s) -> a + (s*b)/c
 *   a.lerp(b, w)             -> |w| < 0.5 ? a + w*(b - a) : b - (b - a)*(1 - w)
 */
import { fail } from '../errors.ts';
import { markChanged } from '../backend/versions.ts';
import { describeJson } from '../fields.ts';
import { add, div, f32, mul, sqrt, sub } from '../math/index.ts';
import type { NamedParam } from '../network.ts';
import { Tensor, assertFinite, shapeEquals, shapeStr } from '../tensor.ts';
import { powInt } from './hostmath.ts';

export const OPTIMIZERS = ['sgd', 'adamw', 'rmsprop'] as const;
export type OptimizerName = (typeof OPTIMIZERS)[number];

/** torch.optim.SGD. */
export interface SgdSpec {
  type: 'sgd';
  lr: number;
  momentum: number;
  dampening: number;
  weight_decay: number;
  nesterov: boolean;
}

/** torch.optim.AdamW. */
export interface AdamWSpec {
  type: 'adamw';
  lr: number;
  betas: [number, number];
  eps: number;
  weight_decay: number;
  amsgrad: boolean;
}

/** torch.optim.RMSprop. */
export interface RmspropSpec {
  type: 'rmsprop';
  lr: number;
  alpha: number;
  eps: number;
  weight_decay: number;
  momentum: number;
  centered: boolean;
}

export type OptimizerSpec = SgdSpec | AdamWSpec | RmspropSpec;

/** A name (`"adamw"`: all defaults) or an object `{type, ...hyperparameters}`. */
export type OptimizerSpecInput = OptimizerName | string | ({ type: string } & Record<string, unknown>);

/** Optimizer state for save/load: torch's per-parameter state names, one shared step count. */
export interface OptimizerState {
  readonly type: OptimizerName;
  /** Steps taken so far (torch keeps one `step` per parameter; here they are all equal). */
  readonly step: number;
  /** `${parameterName}.${slot}`, e.g. `layers.0.weight.exp_avg`. Empty before the first step. */
  readonly tensors: Map<string, Tensor>;
}

export interface Optimizer {
  /** The normalized spec (every default filled in). */
  readonly spec: OptimizerSpec;
  /** The parameters it updates, in the network's parameters() order. */
  readonly params: readonly NamedParam[];
  /** Steps taken so far. */
  readonly steps: number;
  /** One update from the current grads. `lr` overrides spec.lr for this step (a schedule's value). */
  step(lr?: number): void;
  exportState(): OptimizerState;
  /** Replaces the state; all-or-nothing (names, shapes and values are checked first). */
  importState(state: OptimizerState): void;
  /** State slot names per parameter, in the order exportState lists them. */
  readonly slots: readonly string[];
}

const KEYS: Record<OptimizerName, readonly string[]> = {
  sgd: ['lr', 'momentum', 'dampening', 'weight_decay', 'nesterov'],
  adamw: ['lr', 'betas', 'eps', 'weight_decay', 'amsgrad'],
  rmsprop: ['lr', 'alpha', 'eps', 'weight_decay', 'momentum', 'centered'],
};

const TYPE_ALIASES: Record<string, OptimizerName> = { sgd: 'sgd', adamw: 'adamw', adam_w: 'adamw', rmsprop: 'rmsprop', rms_prop: 'rmsprop' };

/**
 * Parses and validates an optimizer spec, filling torch's defaults. Errors are
 * CONFIG_INVALID and name the field, e.g. `optimizer.betas[1]: must be in [0, 1), got 1`.
 */
export function parseOptimizerSpec(raw: unknown, where = 'optimizer'): OptimizerSpec {
  const obj: Record<string, unknown> =
    typeof raw === 'string' ? { type: raw } : raw !== null && typeof raw === 'object' && !Array.isArray(raw) ? (raw as Record<string, unknown>) : fail('CONFIG_INVALID', `expected an optimizer name or an object with a "type", got ${describeJson(raw)}`, where);
  const typeRaw = obj.type;
  if (typeof typeRaw !== 'string') fail('CONFIG_INVALID', `missing optimizer "type" (one of ${OPTIMIZERS.join(', ')})`, `${where}.type`);
  const type = TYPE_ALIASES[typeRaw.toLowerCase()];
  if (!type) fail('CONFIG_INVALID', `unknown optimizer '${typeRaw}'; expected one of ${OPTIMIZERS.join(', ')}`, `${where}.type`);
  const o: Record<string, unknown> = { ...obj };
  delete o.type;
  if ('learning_rate' in o) {
    if ('lr' in o && o.lr !== o.learning_rate) fail('CONFIG_INVALID', `'lr' and its alias 'learning_rate' disagree`, where);
    o.lr = o.learning_rate;
    delete o.learning_rate;
  }
  for (const k of Object.keys(o)) {
    if (o[k] !== undefined && !KEYS[type].includes(k)) fail('CONFIG_INVALID', `unknown ${type} option '${k}'; ${type} takes ${KEYS[type].join(', ')}`, `${where}.${k}`);
  }
  const num = (k: string, def: number, ok: (v: number) => boolean, rule: string): number => {
    const v = o[k];
    if (v === undefined || v === null) return def;
    if (typeof v !== 'number' || !Number.isFinite(v)) fail('CONFIG_INVALID', `expected a finite number, got ${describeJson(v)}`, `${where}.${k}`);
    if (!ok(v)) fail('CONFIG_INVALID', `${k === 'lr' ? 'learning rate' : k} must be ${rule}, got ${v}`, `${where}.${k}`);
    return v;
  };
  const bool = (k: string, def: boolean): boolean => {
    const v = o[k];
    if (v === undefined || v === null) return def;
    if (typeof v !== 'boolean') fail('CONFIG_INVALID', `expected true or false, got ${describeJson(v)}`, `${where}.${k}`);
    return v;
  };
  const nonNeg = (v: number): boolean => v >= 0;
  switch (type) {
    case 'sgd': {
      const spec: SgdSpec = {
        type,
        lr: num('lr', 1e-3, nonNeg, '>= 0'),
        momentum: num('momentum', 0, nonNeg, '>= 0'),
        dampening: num('dampening', 0, (v) => v >= 0 && v <= 1, 'in [0, 1]'),
        weight_decay: num('weight_decay', 0, nonNeg, '>= 0'),
        nesterov: bool('nesterov', false),
      };
      if (spec.nesterov && (spec.momentum <= 0 || spec.dampening !== 0)) {
        fail('CONFIG_INVALID', 'nesterov momentum requires momentum > 0 and dampening = 0', `${where}.nesterov`);
      }
      return spec;
    }
    case 'adamw': {
      let betas: [number, number] = [0.9, 0.999];
      const b = o.betas;
      if (b !== undefined && b !== null) {
        if (!Array.isArray(b) || b.length !== 2) fail('CONFIG_INVALID', `expected [beta1, beta2], got ${describeJson(b)}`, `${where}.betas`);
        b.forEach((v, i) => {
          if (typeof v !== 'number' || !Number.isFinite(v)) fail('CONFIG_INVALID', `expected a finite number, got ${describeJson(v)}`, `${where}.betas[${i}]`);
          if (v < 0 || v >= 1) fail('CONFIG_INVALID', `must be in [0, 1), got ${v}`, `${where}.betas[${i}]`);
        });
        betas = [b[0] as number, b[1] as number];
      }
      return {
        type,
        lr: num('lr', 1e-3, nonNeg, '>= 0'),
        betas,
        eps: num('eps', 1e-8, nonNeg, '>= 0'),
        weight_decay: num('weight_decay', 1e-2, nonNeg, '>= 0'),
        amsgrad: bool('amsgrad', false),
      };
    }
    case 'rmsprop':
      return {
        type,
        lr: num('lr', 1e-2, nonNeg, '>= 0'),
        alpha: num('alpha', 0.99, (v) => v >= 0 && v <= 1, 'in [0, 1]'),
        eps: num('eps', 1e-8, nonNeg, '>= 0'),
        weight_decay: num('weight_decay', 0, nonNeg, '>= 0'),
        momentum: num('momentum', 0, nonNeg, '>= 0'),
        centered: bool('centered', false),
      };
  }
}

/** Builds an optimizer over `params` (usually `net.parameters()`). State is created at the first step, as in torch. */
export function createOptimizer(spec: OptimizerSpecInput | OptimizerSpec, params: readonly NamedParam[]): Optimizer {
  return new TorchOptimizer(parseOptimizerSpec(spec), params);
}

/** The state slots of an optimizer with this spec, in exportState's order (also the WGSL step kernel's buffer names). */
export function slotNames(s: OptimizerSpec): string[] {
  switch (s.type) {
    case 'sgd':
      return s.momentum !== 0 ? ['momentum_buffer'] : [];
    case 'adamw':
      return s.amsgrad ? ['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq'] : ['exp_avg', 'exp_avg_sq'];
    case 'rmsprop':
      return ['square_avg', ...(s.momentum > 0 ? ['momentum_buffer'] : []), ...(s.centered ? ['grad_avg'] : [])];
  }
}

/** torch's lerp(a, b, w) in f32 (w already an f32 value). */
function lerp(a: number, b: number, w: number): number {
  return Math.abs(w) < 0.5 ? add(a, mul(w, sub(b, a))) : sub(b, mul(sub(b, a), sub(1, w)));
}

class TorchOptimizer implements Optimizer {
  readonly spec: OptimizerSpec;
  readonly params: readonly NamedParam[];
  readonly slots: readonly string[];
  private t = 0;
  /** state[param][slot]; null until the first step (or an import). */
  private state: Float32Array[][] | null = null;

  constructor(spec: OptimizerSpec, params: readonly NamedParam[]) {
    this.spec = spec;
    this.params = [...params];
    this.slots = slotNames(spec);
  }

  get steps(): number {
    return this.t;
  }

  step(lr: number = this.spec.lr): void {
    if (typeof lr !== 'number' || !Number.isFinite(lr) || lr < 0) fail('CONFIG_INVALID', `learning rate must be a finite number >= 0, got ${String(lr)}`, 'optimizer.lr');
    const first = this.state === null;
    const state = (this.state ??= this.params.map(({ param }) => this.slots.map(() => new Float32Array(param.value.size))));
    const s = this.spec;
    switch (s.type) {
      case 'sgd':
        sgdStep(s, this.params, state, lr, first);
        break;
      case 'adamw':
        adamwStep(s, this.params, state, lr, this.t + 1);
        break;
      case 'rmsprop':
        rmspropStep(s, this.params, state, lr);
        break;
    }
    // Backends holding copies of the weights (webgpu) upload them again before their next use.
    for (const { param } of this.params) markChanged(param.value);
    this.t++;
  }

  exportState(): OptimizerState {
    const tensors = new Map<string, Tensor>();
    if (this.state) {
      this.params.forEach(({ name, param }, k) => {
        this.slots.forEach((slot, j) => tensors.set(`${name}.${slot}`, new Tensor(param.value.shape, this.state![k][j].slice())));
      });
    }
    return { type: this.spec.type, step: this.t, tensors };
  }

  importState(st: OptimizerState): void {
    const where = 'optimizer state';
    if (st.type !== this.spec.type) fail('WEIGHTS_INVALID', `state is for optimizer '${st.type}', this optimizer is '${this.spec.type}'`, where);
    if (!Number.isSafeInteger(st.step) || st.step < 0) fail('WEIGHTS_INVALID', `step must be an integer >= 0, got ${String(st.step)}`, where);
    const expected = st.step === 0 ? [] : this.params.flatMap(({ name }) => this.slots.map((slot) => `${name}.${slot}`));
    for (const name of st.tensors.keys()) {
      if (!expected.includes(name)) fail('WEIGHTS_INVALID', `unexpected state tensor '${name}' (${st.step === 0 ? 'a state at step 0 has no tensors' : `this ${this.spec.type} keeps ${this.slots.join(', ') || 'no state'} per parameter`})`, where);
    }
    const missing = expected.filter((n) => !st.tensors.has(n));
    if (missing.length) fail('WEIGHTS_INVALID', `missing ${missing.length} state tensor(s): ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''}`, where);
    for (const { name, param } of this.params) {
      for (const slot of st.step === 0 ? [] : this.slots) {
        const t = st.tensors.get(`${name}.${slot}`)!;
        if (t.dtype !== 'f32') fail('WEIGHTS_INVALID', `tensor '${name}.${slot}' has dtype ${t.dtype}, expected f32`, where);
        if (!shapeEquals(t.shape, param.value.shape)) fail('WEIGHTS_INVALID', `tensor '${name}.${slot}' has shape ${shapeStr(t.shape)}, the parameter has ${shapeStr(param.value.shape)}`, where);
        assertFinite(t, `${where}: ${name}.${slot}`);
      }
    }
    this.t = st.step;
    this.state = st.step === 0 ? null : this.params.map(({ name }) => this.slots.map((slot) => (st.tensors.get(`${name}.${slot}`)!.data as Float32Array).slice()));
  }
}

/**
 * torch.optim.SGD (_single_tensor_sgd), per element:
 *   g = grad;  if wd != 0: g = g + f32(wd)*p
 *   if momentum != 0:
 *     first step: buf = g;  else: buf = buf*f32(momentum) + f32(1 - dampening)*g
 *     g = nesterov ? g + f32(momentum)*buf : buf
 *   p = p + f32(-lr)*g
 */
function sgdStep(s: SgdSpec, params: readonly NamedParam[], state: Float32Array[][], lr: number, first: boolean): void {
  const wd = f32(s.weight_decay);
  const mom = f32(s.momentum);
  const damp = f32(1 - s.dampening);
  const nlr = f32(-lr);
  params.forEach(({ param }, k) => {
    const p = param.value.data;
    const grad = param.grad.data;
    const buf = s.momentum !== 0 ? state[k][0] : null;
    for (let i = 0; i < p.length; i++) {
      let g = grad[i];
      if (s.weight_decay !== 0) g = add(g, mul(wd, p[i]));
      if (buf) {
        const b = first ? g : add(mul(buf[i], mom), mul(damp, g));
        buf[i] = b;
        g = s.nesterov ? add(g, mul(mom, b)) : b;
      }
      p[i] = add(p[i], mul(nlr, g));
    }
  });
}

/**
 * torch.optim.AdamW (_single_tensor_adam with decoupled weight decay). Host, float64, t = step
 * number from 1: bc1 = 1 - beta1^t, bc2 = 1 - beta2^t, step_size = lr / bc1, bc2_sqrt = sqrt(bc2)
 * (beta^t correctly rounded: see hostmath.powInt). Per element:
 *   if wd != 0: p = p * f32(1 - lr*wd)
 *   m = lerp(m, g, f32(1 - beta1))
 *   v = v*f32(beta2) + (f32(1 - beta2)*g)*g
 *   amsgrad: vmax = max(vmax, v), and vmax replaces v below
 *   denom = sqrt(v) / f32(bc2_sqrt) + f32(eps)
 *   p = p + (f32(-step_size)*m) / denom
 */
function adamwStep(s: AdamWSpec, params: readonly NamedParam[], state: Float32Array[][], lr: number, t: number): void {
  const [beta1, beta2] = s.betas;
  const bc1 = 1 - powInt(beta1, t);
  const bc2 = 1 - powInt(beta2, t);
  const decay = f32(1 - lr * s.weight_decay);
  const w1 = f32(1 - beta1);
  const b2 = f32(beta2);
  const w2 = f32(1 - beta2);
  const bc2s = f32(Math.sqrt(bc2));
  const eps = f32(s.eps);
  const nstep = f32(-(lr / bc1));
  params.forEach(({ param }, k) => {
    const p = param.value.data;
    const grad = param.grad.data;
    const [m, v, vmax] = state[k];
    for (let i = 0; i < p.length; i++) {
      const g = grad[i];
      if (s.weight_decay !== 0) p[i] = mul(p[i], decay);
      m[i] = lerp(m[i], g, w1);
      v[i] = add(mul(v[i], b2), mul(mul(w2, g), g));
      let vv = v[i];
      if (vmax) {
        if (!(vmax[i] >= vv)) vmax[i] = vv;
        vv = vmax[i];
      }
      const denom = add(div(sqrt(vv), bc2s), eps);
      p[i] = add(p[i], div(mul(nstep, m[i]), denom));
    }
  });
}

/**
 * torch.optim.RMSprop (_single_tensor_rmsprop), per element:
 *   g = grad;  if wd != 0: g = g + f32(wd)*p
 *   sq = sq*f32(alpha) + (f32(1 - alpha)*g)*g
 *   centered: ga = lerp(ga, g, f32(1 - alpha));  avg = sqrt(max(0, sq - ga*ga))
 *   else:     avg = sqrt(sq)
 *   avg = avg + f32(eps)
 *   momentum > 0: buf = buf*f32(momentum) + g/avg  (buf starts at 0);  p = p + f32(-lr)*buf
 *   else:         p = p + (f32(-lr)*g)/avg
 * The max(0, .) is Heddle's: rounding can make sq - ga*ga slightly negative, where torch
 * would produce NaN.
 */
function rmspropStep(s: RmspropSpec, params: readonly NamedParam[], state: Float32Array[][], lr: number): void {
  const wd = f32(s.weight_decay);
  const alpha = f32(s.alpha);
  const w = f32(1 - s.alpha);
  const eps = f32(s.eps);
  const mom = f32(s.momentum);
  const nlr = f32(-lr);
  params.forEach(({ param }, k) => {
    const p = param.value.data;
    const grad = param.grad.data;
    const slots = state[k];
    const sq = slots[0];
    const buf = s.momentum > 0 ? slots[1] : null;
    const ga = s.centered ? slots[slots.length - 1] : null;
    for (let i = 0; i < p.length; i++) {
      let g = grad[i];
      if (s.weight_decay !== 0) g = add(g, mul(wd, p[i]));
      sq[i] = add(mul(sq[i], alpha), mul(mul(w, g), g));
      let avg: number;
      if (ga) {
        ga[i] = lerp(ga[i], g, w);
        const varc = sub(sq[i], mul(ga[i], ga[i]));
        avg = sqrt(varc > 0 ? varc : 0);
      } else {
        avg = sqrt(sq[i]);
      }
      avg = add(avg, eps);
      if (buf) {
        buf[i] = add(mul(buf[i], mom), div(g, avg));
        p[i] = add(p[i], mul(nlr, buf[i]));
      } else {
        p[i] = add(p[i], div(mul(nlr, g), avg));
      }
    }
  });
}
