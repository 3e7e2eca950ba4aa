/**
 * GPU check cases: training (gathered by buildCases in tests/webgpu/checks.ts). Backward of
 * dense (every activation), the norms, residual and sequential compared with the CPU's
 * (scenario grad), and whole training runs (scenario train) with every optimizer and option,
 * including layers that train on the CPU inside the GPU step.
 */
import { ACTIVATIONS } from '../../../core/layers/activations.ts';
import type { CheckCase } from '../checks.ts';

const dense = (i: number, o: number, activation = 'linear', bias = true): Record<string, unknown> => ({ type: 'dense', input_height: i, output_height: o, activation, bias });

export function trainingCases(quick: boolean, large: boolean): CheckCase[] {
  const cases: CheckCase[] = [];
  for (const act of ACTIVATIONS) {
    if (act === 'softmax') continue;
    cases.push({ name: `grad: dense ${act} 13->11`, kernel: `grad:dense`, config: { input_shape: [13], layers: [dense(13, 11, act)] }, batches: [3], inputs: 'random', weights: 'random', scenario: 'grad' });
  }
  cases.push({ name: 'grad: dense hard values', kernel: 'grad:dense', config: { input_shape: [2, 9], layers: [dense(9, 7, 'tanh')] }, batches: [3], inputs: 'hard', weights: 'hard', scenario: 'grad' });
  cases.push({ name: 'grad: dense tiny values, no bias', kernel: 'grad:dense', config: { input_shape: [12], layers: [dense(12, 10, 'linear', false)] }, batches: [4], inputs: 'tiny', weights: 'tiny', scenario: 'grad' });
  cases.push({ name: 'grad: dense softmax activation 9->12', kernel: 'grad:dense', config: { input_shape: [2, 9], layers: [dense(9, 12, 'softmax')] }, batches: [3], inputs: 'random', weights: 'random', scenario: 'grad' });
  cases.push({ name: 'grad: dense tiled (40 rows, 36->40)', kernel: 'grad:dense', config: { input_shape: [36], layers: [dense(36, 40, 'relu')] }, batches: [quick ? 33 : 40], inputs: 'random', weights: 'random', scenario: 'grad' });
  cases.push({ name: 'grad: mlp with residual and norms', kernel: 'grad:network', config: { input_shape: [10], layers: [dense(10, 10, 'gelu'), { type: 'residual' }, { type: 'layer_norm', norm_size: 10 }, dense(10, 6, 'silu'), { type: 'rms_norm', norm_size: 6 }, dense(6, 4)] }, batches: [3, 1], inputs: 'random', weights: 'random', scenario: 'grad' });
  cases.push({ name: 'grad: sequential with residual', kernel: 'grad:sequential', config: { input_shape: [8], layers: [{ type: 'sequential', layers: [dense(8, 8, 'tanh'), { type: 'residual' }, dense(8, 5)] }] }, batches: [2], inputs: 'random', weights: 'random', scenario: 'grad' });
  for (const affine of [true, false]) {
    cases.push({ name: `grad: layer_norm affine=${affine}`, kernel: 'grad:layer_norm', config: { input_shape: [3, 12], layers: [{ type: 'layer_norm', norm_size: 12, elementwise_affine: affine }] }, batches: [2], inputs: 'random', weights: 'random', scenario: 'grad' });
    cases.push({ name: `grad: rms_norm affine=${affine}`, kernel: 'grad:rms_norm', config: { input_shape: [3, 12], layers: [{ type: 'rms_norm', norm_size: 12, elementwise_affine: affine }] }, batches: [2], inputs: 'random', weights: 'random', scenario: 'grad' });
  }
  cases.push({ name: 'grad: norms on tiny values', kernel: 'grad:layer_norm', config: { input_shape: [16], layers: [{ type: 'layer_norm', norm_size: 16, epsilon: 1.1754943508222875e-38 }, { type: 'rms_norm', norm_size: 16, epsilon: 1.2e-38 }] }, batches: [3], inputs: 'tiny', weights: 'random', scenario: 'grad' });
  cases.push({ name: 'grad: a node whose output feeds two layers (remote link)', kernel: 'grad:network', config: { input_shape: [6], layers: [dense(6, 6, 'tanh'), dense(6, 6, 'relu'), { type: 'residual' }] }, batches: [2], inputs: 'random', weights: 'random', scenario: 'grad' });
  cases.push({ name: 'grad: a CPU layer between GPU layers (parallel filter, sparsemax gate)', kernel: 'grad:fallback', config: { input_shape: [6], layers: [dense(6, 5, 'tanh'), { type: 'parallel', combine_mode: 'filter', filter_softmax: 'sparsemax', branches: [dense(5, 4), dense(5, 4, 'relu')] }, dense(4, 3)] }, batches: [2], inputs: 'random', weights: 'random', scenario: 'grad' });

  const mlp = { input_shape: [7], layers: [dense(7, 9, 'tanh'), { type: 'layer_norm', norm_size: 9 }, dense(9, 9, 'gelu'), { type: 'residual' }, dense(9, 4)] };
  const train = (name: string, t: CheckCase['train'], config: Record<string, unknown> = mlp): CheckCase => ({ name: `train: ${name}`, kernel: 'train', config, batches: [], inputs: 'random', weights: 'random', scenario: 'train', train: t });
  cases.push(train('sgd', { optimizer: { type: 'sgd', lr: 0.1 } }));
  cases.push(train('sgd momentum nesterov weight decay', { optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true, weight_decay: 0.01 }, epochs: 3 }));
  cases.push(train('sgd momentum dampening', { optimizer: { type: 'sgd', lr: 0.05, momentum: 0.8, dampening: 0.3 } }));
  cases.push(train('adamw', { optimizer: { type: 'adamw', lr: 0.01 }, epochs: 3 }));
  cases.push(train('adamw amsgrad, no weight decay, cosine schedule per step', { optimizer: { type: 'adamw', lr: 0.02, amsgrad: true, weight_decay: 0 }, schedule: { type: 'cosine', T_max: 5, interval: 'step' } }));
  cases.push(train('rmsprop', { optimizer: { type: 'rmsprop', lr: 0.01 } }));
  cases.push(train('rmsprop centered momentum weight decay', { optimizer: { type: 'rmsprop', lr: 0.01, centered: true, momentum: 0.9, weight_decay: 0.001 } }));
  cases.push(train('clipping (every step clips)', { optimizer: { type: 'sgd', lr: 0.1 }, clipNorm: 0.05 }));
  cases.push(train('shuffle, partial last batch, step schedule', { optimizer: { type: 'adamw', lr: 0.01 }, shuffle: true, samples: 7, batchSize: 3, schedule: { type: 'step', step_size: 1, gamma: 0.5 } }));
  cases.push(train('cross_entropy', { loss: 'cross_entropy', optimizer: { type: 'adamw', lr: 0.01 } }));
  cases.push(train('a CPU layer inside the GPU step (parallel filter sparsemax)', { optimizer: { type: 'adamw', lr: 0.01 } }, { input_shape: [6], layers: [dense(6, 5, 'tanh'), { type: 'parallel', combine_mode: 'filter', filter_softmax: 'sparsemax', branches: [dense(5, 4), dense(5, 4, 'relu')] }, dense(4, 3)] }));
  cases.push({ ...train('embedding ids in, dense softmax, cross_entropy', { loss: 'cross_entropy', optimizer: { type: 'adamw', lr: 0.01 } }, { input_shape: [4], layers: [{ type: 'embedding', vocab_size: 10, embedding_dim: 6 }, dense(6, 5, 'softmax')] }), inputs: 'ids' });
  cases.push(train('hard values', { optimizer: { type: 'sgd', lr: 0.01 } }, { input_shape: [5], layers: [dense(5, 6, 'relu'), dense(6, 2)] }));
  // clipping a parameter longer than one norm chunk (16,384 elements): the sum continues across dispatches
  cases.push(train('clipping across norm chunks (a 130x130 weight)', { optimizer: { type: 'sgd', lr: 0.05 }, clipNorm: 0.5, samples: 4, batchSize: 2, epochs: 1 }, { input_shape: [130], layers: [dense(130, 130, 'tanh'), dense(130, 3)] }));
  if (large) {
    cases.push({ name: 'large: grad dense 512->256 x128 rows gelu', kernel: 'large', config: { input_shape: [512], layers: [dense(512, 256, 'gelu')] }, batches: [128], inputs: 'random', weights: 'random', scenario: 'grad' });
    cases.push(train('large: mlp 64-128-128-10 adamw', { optimizer: { type: 'adamw', lr: 0.001 }, samples: 64, batchSize: 32, loss: 'cross_entropy' }, { input_shape: [64], layers: [dense(64, 128, 'relu'), { type: 'layer_norm', norm_size: 128 }, dense(128, 128, 'silu'), dense(128, 10)] }));
  }
  return cases;
}
