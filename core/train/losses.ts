/**
 * Loss functions: value and gradient w.r.t. the network output, PyTorch's `reduction='mean'`.
 *
 * Canonical arithmetic (the WebGPU backend follows the same order): every elementary result
 * is rounded to f32 and flushed (|v| < 2^-126 -> signed zero) by core/math; sums start at +0
 * and add terms in ascending index order, one f32 rounding per addition.
 *
 * mse (n = number of elements):
 *   d_i = y_i - t_i;  S = sum over i ascending of d_i*d_i;  loss = S / f32(n)   (core/math div)
 *   grad_i = f32(2/n) * d_i        (2/n in float64, rounded to f32 once: torch's mse backward)
 *
 * cross_entropy (softmax over the last dim, C classes, R = size / C rows):
 *   per row r: m = max_j z_j;  e_j = exp(z_j - m);  s = sum over j ascending of e_j;
 *              lse = m + log(s)
 *     class index t:   loss_r = lse - z_t
 *     probabilities q: loss_r = sum over j ascending of q_j * (lse - z_j)
 *   loss = (sum over r ascending of loss_r) / f32(R)                (core/math div)
 *   grad_rj = (e_j / s - q_j) * f32(1/R)   (q = one-hot of t for class indices;
 *             e_j / s is core/math div; 1/R in float64, rounded to f32 once)
 */
import { fail } from '../errors.ts';
import { add, div, exp, f32, log, mul, sub } from '../math/index.ts';
import { Tensor, type TensorData, shapeEquals, shapeStr } from '../tensor.ts';

export const LOSSES = ['mse', 'cross_entropy'] as const;
export type LossName = (typeof LOSSES)[number];

export interface LossResult {
  /** The f32 loss value. */
  readonly loss: number;
  /** dLoss/dOutput, same shape as the output. */
  readonly grad: Tensor;
}

/** Class indices as a tensor (i32, i64, or integer-valued f32) or a bare Int32Array. */
export type LossTarget = Tensor<TensorData> | Int32Array;

// Keys are lowercased with '_' removed, so torch's class names (MSELoss, CrossEntropyLoss) work too.
const LOSS_ALIASES: Record<string, LossName> = {
  mse: 'mse',
  mseloss: 'mse',
  crossentropy: 'cross_entropy',
  crossentropyloss: 'cross_entropy',
};

/** Accepts `mse`, `cross_entropy` (and torch-style spellings such as `CrossEntropyLoss`). */
export function parseLossName(raw: unknown, where = 'loss'): LossName {
  if (typeof raw !== 'string') fail('CONFIG_INVALID', `expected a loss name (${LOSSES.join(' or ')}), got ${typeof raw}`, where);
  const name = LOSS_ALIASES[raw.toLowerCase().replace(/_/g, '')];
  if (!name) fail('CONFIG_INVALID', `unknown loss '${raw}'; expected one of ${LOSSES.join(', ')}`, where);
  return name;
}

export function computeLoss(name: LossName, output: Tensor, target: LossTarget): LossResult {
  return name === 'mse' ? mseLoss(output, target as Tensor<TensorData>) : crossEntropyLoss(output, target);
}

/** Mean squared error over all elements (torch.nn.functional.mse_loss). */
export function mseLoss(output: Tensor, target: Tensor<TensorData>): LossResult {
  checkTarget('mse', output.shape, target, 'target');
  const y = output.data;
  const t = target.data as Float32Array;
  const n = y.length;
  const g = new Float32Array(n);
  const scale = f32(2 / n);
  let acc = 0;
  for (let i = 0; i < n; i++) {
    const d = sub(y[i], t[i]);
    acc = add(acc, mul(d, d));
    g[i] = mul(scale, d);
  }
  return { loss: div(acc, f32(n)), grad: new Tensor(output.shape, g) };
}

/**
 * Softmax cross-entropy over the last dim (torch.nn.functional.cross_entropy with the class
 * dim last). Targets: class indices shaped like the output without its last dim, or
 * probabilities shaped like the output.
 */
export function crossEntropyLoss(output: Tensor, target: LossTarget): LossResult {
  // A bare Int32Array takes the output's leading shape when its length fits.
  const lead = output.shape.slice(0, -1);
  const tgt = target instanceof Int32Array ? new Tensor(lead.reduce((a, b) => a * b, 1) === target.length ? lead : [target.length], target) : target;
  const kind = checkTarget('cross_entropy', output.shape, tgt, 'target');
  const z = output.data;
  const classes = output.shape[output.shape.length - 1];
  const rows = z.length / classes;
  const g = new Float32Array(z.length);
  const e = new Float32Array(classes);
  const invRows = f32(1 / rows);
  const probs = kind === 'probabilities' ? (tgt.data as Float32Array) : null;
  let total = 0;
  for (let r = 0; r < rows; r++) {
    const o = r * classes;
    let m = z[o];
    for (let j = 1; j < classes; j++) if (z[o + j] > m) m = z[o + j];
    let s = 0;
    for (let j = 0; j < classes; j++) {
      e[j] = exp(sub(z[o + j], m));
      s = add(s, e[j]);
    }
    const lse = add(m, log(s));
    let rowLoss: number;
    if (probs) {
      rowLoss = 0;
      for (let j = 0; j < classes; j++) {
        rowLoss = add(rowLoss, mul(probs[o + j], sub(lse, z[o + j])));
        g[o + j] = mul(sub(div(e[j], s), probs[o + j]), invRows);
      }
    } else {
      const t = classAt(tgt, r);
      rowLoss = sub(lse, z[o + t]);
      for (let j = 0; j < classes; j++) {
        const p = div(e[j], s);
        g[o + j] = mul(j === t ? sub(p, 1) : p, invRows);
      }
    }
    total = add(total, rowLoss);
  }
  return { loss: div(total, f32(rows)), grad: new Tensor(output.shape, g) };
}

function classAt(t: Tensor<TensorData>, i: number): number {
  const v = t.data[i];
  return typeof v === 'bigint' ? Number(v) : v;
}

/**
 * Checks a target against an output shape (batch included) for a loss; returns how the
 * target is read. Errors name the first bad element, so a bad label is easy to find.
 */
export function checkTarget(loss: LossName, outputShape: readonly number[], target: Tensor<TensorData>, where: string): 'values' | 'indices' | 'probabilities' {
  if (loss === 'mse') {
    if (target.dtype !== 'f32') fail('INPUT_INVALID', `mse needs f32 targets, got ${target.dtype}`, where);
    if (!shapeEquals(target.shape, outputShape)) fail('SHAPE_MISMATCH', `mse targets have shape ${shapeStr(target.shape)}, the output has shape ${shapeStr(outputShape)}`, where);
    checkFinite(target.data as Float32Array, where);
    return 'values';
  }
  const classes = outputShape[outputShape.length - 1];
  const lead = outputShape.slice(0, -1);
  if (target.dtype === 'f32' && shapeEquals(target.shape, outputShape)) {
    checkFinite(target.data as Float32Array, where);
    return 'probabilities';
  }
  if (!shapeEquals(target.shape, lead)) {
    fail('SHAPE_MISMATCH', `cross_entropy targets have shape ${shapeStr(target.shape)}; expected class indices of shape ${shapeStr(lead)} or probabilities of shape ${shapeStr(outputShape)}`, where);
  }
  const d = target.data;
  for (let i = 0; i < d.length; i++) {
    const v = typeof d[i] === 'bigint' ? Number(d[i]) : (d[i] as number);
    if (!Number.isInteger(v) || v < 0 || v >= classes) {
      fail('INPUT_INVALID', `element ${i} is ${String(d[i])}; class indices must be integers in [0, ${classes})`, where);
    }
  }
  return 'indices';
}

function checkFinite(d: Float32Array, where: string): void {
  for (let i = 0; i < d.length; i++) {
    const v = d[i];
    if (v !== v || v === Infinity || v === -Infinity) fail('INPUT_INVALID', `element ${i} is ${v}; targets must be finite`, where);
  }
}
