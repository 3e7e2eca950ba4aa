/** GPU check cases: conv (gathered by buildCases in tests/webgpu/checks.ts). */
import { ACTIVATIONS } from '../../../core/layers/activations.ts';
import type { CheckCase, ValueKind } from '../checks.ts';

type Cfg = Record<string, unknown>;

const conv = (type: string, c: number, f: number, k: number | number[], extra: Cfg = {}): Cfg => ({ type, input_channels: c, filters: f, kernel_size: k, ...extra });
const dense = (i: number, o: number, activation = 'linear'): Cfg => ({ type: 'dense', input_height: i, output_height: o, activation });

export function convCases(quick: boolean, large: boolean): CheckCase[] {
  const cases: CheckCase[] = [];
  const add = (name: string, kernel: string, inputShape: number[], layers: Cfg[], o: { batches?: number[]; values?: ValueKind; scenario?: CheckCase['scenario']; train?: CheckCase['train'] } = {}): void => {
    const v = o.values ?? 'random';
    cases.push({ name, kernel, config: { input_shape: inputShape, layers }, batches: o.batches ?? [3, 1], inputs: v, weights: v, scenario: o.scenario, train: o.train });
  };

  // ---- forward: every type, strides / padding / dilation / output_padding, bias on and off ----
  // conv1d: every activation on a small shape (padding larger than the dilated reach: outputs
  // that see only padding are +0 + bias).
  for (const act of ACTIVATIONS) {
    add(`conv1d ${act} C3 L11 k3 s2 p3 d2`, `conv1d:${act}`, [3, 11], [conv('conv1d', 3, 4, 3, { stride: 2, padding: 3, dilation: 2, activation: act })], { batches: [2] });
  }
  for (const v of ['random', 'hard', 'tiny'] as const) {
    add(`conv1d ${v} values, no bias, k5 p2`, 'conv1d:linear', [2, 13], [conv('conv1d', 2, 5, 5, { padding: 2, bias: false })], { values: v });
    add(`conv2d ${v} values k[3,2] s[2,1] p[1,2] d[1,2] relu`, 'conv2d', [2, 7, 9], [conv('conv2d', 2, 3, [3, 2], { stride: [2, 1], padding: [1, 2], dilation: [1, 2], activation: 'relu' })], { values: v });
    add(`conv3d ${v} values k2 s[1,2,1] p1 tanh`, 'conv3d', [2, 4, 5, 3], [conv('conv3d', 2, 3, 2, { stride: [1, 2, 1], padding: 1, activation: 'tanh' })], { values: v, batches: [2] });
    add(`conv_transposed1d ${v} values k3 s2 p1 op1 silu`, 'conv_transposed1d', [3, 5], [conv('conv_transposed1d', 3, 2, 3, { stride: 2, padding: 1, output_padding: 1, activation: 'silu' })], { values: v });
    add(`conv_transposed2d ${v} values k[3,2] s[2,3] p[1,0] d[2,1] op[1,2] elu`, 'conv_transposed2d', [2, 4, 3], [conv('conv_transposed2d', 2, 3, [3, 2], { stride: [2, 3], padding: [1, 0], dilation: [2, 1], output_padding: [1, 2], activation: 'elu' })], { values: v });
    add(`conv_transposed3d ${v} values k2 s2 p[0,1,0] selu`, 'conv_transposed3d', [2, 2, 3, 2], [conv('conv_transposed3d', 2, 2, 2, { stride: 2, padding: [0, 1, 0], activation: 'selu' })], { values: v, batches: [2] });
  }
  // no bias, so the tiny sums are not absorbed by a bias (what an adapter keeping subnormals gets wrong)
  add('conv2d tiny values, no bias, k3 p1', 'conv2d', [2, 5, 6], [conv('conv2d', 2, 3, 3, { padding: 1, bias: false })], { values: 'tiny' });
  add('conv_transposed2d tiny values, no bias, k3 s2', 'conv_transposed2d', [2, 3, 4], [conv('conv_transposed2d', 2, 3, 3, { stride: 2, bias: false })], { values: 'tiny' });
  add('conv2d 1x1 kernel, padding 2 (border outputs = bias), no bias', 'conv2d', [3, 4, 5], [conv('conv2d', 3, 2, 1, { padding: 2, bias: false })]);
  add('conv2d softmax activation (rows of the last dim)', 'conv2d', [2, 5, 6], [conv('conv2d', 2, 3, 3, { padding: 1, activation: 'softmax' })]);
  add('conv_transposed2d stride 3 > kernel (unreached positions = bias)', 'conv_transposed2d', [2, 3, 3], [conv('conv_transposed2d', 2, 2, 2, { stride: 3, activation: 'gelu' })]);
  add('conv_transposed1d no bias, k1 s1 (a per-position matmul)', 'conv_transposed1d', [4, 7], [conv('conv_transposed1d', 4, 3, 1, { bias: false })]);
  add('conv3d 1-wide dims, dilation 2', 'conv3d', [1, 5, 1, 6], [conv('conv3d', 1, 2, [2, 1, 3], { dilation: [2, 1, 1], padding: [0, 0, 1], activation: 'leaky_relu' })]);
  // nested: in a sequential, after a flat dense (shape derived), followed by a dense
  add('sequential: conv2d relu, conv_transposed2d, dense', 'conv:nested', [2, 6, 6], [
    { type: 'sequential', layers: [conv('conv2d', 2, 3, 3, { activation: 'relu' }), conv('conv_transposed2d', 3, 2, 2, { stride: 2, padding: 1 })] },
    dense(2 * 6 * 6, 5, 'tanh'),
  ], { batches: [3, 1] });
  add('dense -> conv1d (flat input, length derived) -> dense', 'conv:nested', [10], [dense(10, 12, 'gelu'), conv('conv1d', 3, 2, 2, { activation: 'mish' }), dense(6, 4)], { batches: [4, 1] });
  add('residual around a same-shape conv1d', 'conv:nested', [2, 9], [conv('conv1d', 2, 2, 3, { padding: 1, activation: 'tanh' }), { type: 'residual' }], { values: 'hard' });

  // ---- backward (net.gradAsync vs forwardTape + backward): dL/dx, weight and bias grads ----
  const grad = { scenario: 'grad' as const };
  for (const v of ['random', 'hard', 'tiny'] as const) {
    add(`grad conv1d ${v} values k3 s2 p2 d2 linear`, 'grad:conv1d', [3, 11], [conv('conv1d', 3, 4, 3, { stride: 2, padding: 2, dilation: 2 })], { ...grad, values: v });
    add(`grad conv2d ${v} values k[3,2] s[2,1] p[1,2] d[1,2] relu`, 'grad:conv2d', [2, 7, 9], [conv('conv2d', 2, 3, [3, 2], { stride: [2, 1], padding: [1, 2], dilation: [1, 2], activation: 'relu' })], { ...grad, values: v });
    add(`grad conv3d ${v} values k2 s[1,2,1] p1 tanh`, 'grad:conv3d', [2, 3, 5, 3], [conv('conv3d', 2, 2, 2, { stride: [1, 2, 1], padding: 1, activation: 'tanh' })], { ...grad, values: v, batches: [2] });
    add(`grad conv_transposed1d ${v} values k3 s2 p1 op1`, 'grad:conv_transposed1d', [3, 5], [conv('conv_transposed1d', 3, 2, 3, { stride: 2, padding: 1, output_padding: 1 })], { ...grad, values: v });
    add(`grad conv_transposed2d ${v} values k[3,2] s[2,3] d[2,1] op[1,2] silu`, 'grad:conv_transposed2d', [2, 4, 3], [conv('conv_transposed2d', 2, 3, [3, 2], { stride: [2, 3], padding: [1, 0], dilation: [2, 1], output_padding: [1, 2], activation: 'silu' })], { ...grad, values: v });
    add(`grad conv_transposed3d ${v} values k2 s2 p[0,1,0]`, 'grad:conv_transposed3d', [2, 2, 3, 2], [conv('conv_transposed3d', 2, 2, 2, { stride: 2, padding: [0, 1, 0], bias: false })], { ...grad, values: v, batches: [2] });
  }
  // every activation's backward, on conv1d
  for (const act of ACTIVATIONS) {
    if (act === 'linear') continue;
    add(`grad conv1d ${act} p1`, `grad:conv1d`, [2, 7], [conv('conv1d', 2, 3, 3, { padding: 1, activation: act })], { ...grad, batches: [2] });
  }
  add('grad conv1d no bias, hard values, padding past the reach', 'grad:conv1d', [2, 6], [conv('conv1d', 2, 3, 2, { padding: 3, bias: false, activation: 'leaky_relu' })], { ...grad, values: 'hard' });
  add('grad conv2d -> dense in a sequential', 'grad:conv2d', [2, 5, 5], [{ type: 'sequential', layers: [conv('conv2d', 2, 3, 3, { padding: 1, activation: 'gelu' }), dense(75, 4, 'tanh')] }], { ...grad, batches: [3, 1] });

  // ---- training: conv2d -> dense, mse, sgd (trainAsync vs train) ----
  add('train conv2d -> dense, mse, sgd', 'train:conv2d', [2, 5, 5], [conv('conv2d', 2, 3, 3, { stride: 2, padding: 1, activation: 'relu' }), dense(27, 3)], {
    batches: [2], scenario: 'train', train: { loss: 'mse', optimizer: { type: 'sgd', lr: 0.05 }, epochs: 2, batchSize: 3, samples: 6, shuffle: false },
  });
  add('train conv1d -> dense, cross_entropy, adamw', 'train:conv1d', [2, 9], [conv('conv1d', 2, 3, 3, { padding: 1, activation: 'gelu' }), dense(27, 4)], {
    batches: [2], scenario: 'train', train: { loss: 'cross_entropy', optimizer: { type: 'adamw', lr: 0.01 }, epochs: 2, batchSize: 4, samples: 8, shuffle: false },
  });

  if (!quick) {
    add('conv2d 3->8 16x16 k3 p1 gelu', 'conv2d', [3, 16, 16], [conv('conv2d', 3, 8, 3, { padding: 1, activation: 'gelu' })], { batches: [2] });
    add('grad conv2d 3->4 12x12 k3 s1 p1', 'grad:conv2d', [3, 12, 12], [conv('conv2d', 3, 4, 3, { padding: 1 })], { ...grad, batches: [2] });
  }
  if (large) {
    add('large: conv2d 16->32 64x64 k3 p1 relu x8', 'large', [16, 64, 64], [conv('conv2d', 16, 32, 3, { padding: 1, activation: 'relu' })], { batches: [8] });
    add('large: conv_transposed2d 32->16 32x32 k4 s2 p1 x4', 'large', [32, 32, 32], [conv('conv_transposed2d', 32, 16, 4, { stride: 2, padding: 1 })], { batches: [4] });
    add('large: conv3d 4->8 16^3 k3 p1 x2', 'large', [4, 16, 16, 16], [conv('conv3d', 4, 8, 3, { padding: 1 })], { batches: [2] });
    add('large: grad conv2d 8->16 32x32 k3 p1 x8', 'large', [8, 32, 32], [conv('conv2d', 8, 16, 3, { padding: 1, activation: 'silu' })], { ...grad, batches: [8] });
  }
  return cases;
}
