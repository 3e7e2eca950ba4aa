/** GPU check cases: swiglu, embedding, kmeans (gathered by buildCases in tests/webgpu/checks.ts). */
import type { CheckCase } from '../checks.ts';

const dense = (i: number, o: number, activation = 'linear', bias = true): Record<string, unknown> => ({ type: 'dense', input_height: i, output_height: o, activation, bias });
const swiglu = (d: number, n: number): Record<string, unknown> => ({ type: 'swiglu', input_height: d, output_height: n });
const embedding = (v: number, d: number): Record<string, unknown> => ({ type: 'embedding', vocab_size: v, embedding_dim: d });
const kmeans = (k: number, fields: Record<string, unknown> = {}): Record<string, unknown> => ({ type: 'kmeans', num_clusters: k, ...fields });

/**
 * A dense layer of zero weights and integer biases: its outputs are exact integers (f32 token
 * ids computed on the GPU), and its gradients are zero (the embedding's dx is +0), so training
 * leaves it as it is.
 */
function idsFromDense(inF: number, ids: readonly number[]): Record<string, (shape: readonly number[]) => Float32Array> {
  return {
    'layers.0.weight': () => new Float32Array(ids.length * inF),
    'layers.0.bias': () => Float32Array.from(ids),
  };
}

export function tokensCases(quick: boolean, large: boolean): CheckCase[] {
  const cases: CheckCase[] = [];
  const add = (c: CheckCase): void => {
    cases.push(c);
  };
  // swiglu: random, hard, tiny, odd sizes, flattened samples, the tiled linear variant, nested
  add({ name: 'swiglu 12->20 random', kernel: 'swiglu', config: { input_shape: [3, 12], layers: [swiglu(12, 20)] }, batches: [3, 1], inputs: 'random', weights: 'random' });
  add({ name: 'swiglu hard values', kernel: 'swiglu', config: { input_shape: [4, 9], layers: [swiglu(9, 14)] }, batches: [2], inputs: 'hard', weights: 'hard' });
  add({ name: 'swiglu tiny values', kernel: 'swiglu', config: { input_shape: [3, 10], layers: [swiglu(10, 12)] }, batches: [2], inputs: 'tiny', weights: 'tiny' });
  add({ name: 'swiglu edge inputs', kernel: 'swiglu', config: { input_shape: [2, 8], layers: [swiglu(8, 6)] }, batches: [2], inputs: 'edge', weights: 'random' });
  add({ name: 'swiglu 1->1 and flattened [2, 3] -> 6', kernel: 'swiglu', config: { input_shape: [2, 3], layers: [swiglu(6, 1)] }, batches: [4], inputs: 'random', weights: 'random' });
  add({ name: 'swiglu tiled linear (36 rows, 16->40)', kernel: 'swiglu', config: { input_shape: [3, 16], layers: [swiglu(16, 40)] }, batches: [12], inputs: 'random', weights: 'random' });
  add({ name: 'swiglu in sequential + residual', kernel: 'swiglu', config: { input_shape: [2, 8], layers: [{ type: 'sequential', layers: [{ type: 'rms_norm', norm_size: 8 }, swiglu(8, 16)] }, { type: 'residual' }] }, batches: [3], inputs: 'random', weights: 'random' });
  add({ name: 'swiglu grad', kernel: 'swiglu', config: { input_shape: [3, 7], layers: [swiglu(7, 11)] }, batches: [2, 1], inputs: 'random', weights: 'random', scenario: 'grad' });
  add({ name: 'swiglu grad hard values', kernel: 'swiglu', config: { input_shape: [2, 6], layers: [swiglu(6, 9)] }, batches: [3], inputs: 'hard', weights: 'hard', scenario: 'grad' });
  add({ name: 'swiglu grad tiny values', kernel: 'swiglu', config: { input_shape: [2, 6], layers: [swiglu(6, 9)] }, batches: [3], inputs: 'tiny', weights: 'tiny', scenario: 'grad' });
  add({ name: 'swiglu grad in residual', kernel: 'swiglu', config: { input_shape: [8], layers: [dense(8, 8, 'tanh'), swiglu(8, 12), { type: 'residual' }] }, batches: [3], inputs: 'random', weights: 'random', scenario: 'grad' });
  add({ name: 'swiglu train (mse, adamw)', kernel: 'swiglu', config: { input_shape: [8], layers: [swiglu(8, 12), dense(8, 3)] }, batches: [2], inputs: 'random', weights: 'random', scenario: 'train', train: { loss: 'mse', optimizer: { type: 'adamw', lr: 0.01 }, epochs: 2, batchSize: 4 } });
  // embedding: i32 ids (the network input), f32 ids computed on the GPU, nested, grads
  add({ name: 'embedding i32 ids 10x8', kernel: 'embedding', config: { input_shape: [5], layers: [embedding(10, 8)] }, batches: [3, 1], inputs: 'ids', weights: 'random' });
  add({ name: 'embedding i32 ids, 2-d [2, 3], then dense', kernel: 'embedding', config: { input_shape: [2, 3], layers: [embedding(13, 5), dense(5, 4, 'gelu')] }, batches: [2], inputs: 'ids', weights: 'hard' });
  add({ name: 'embedding width 1, vocab 10', kernel: 'embedding', config: { input_shape: [7], layers: [embedding(10, 1)] }, batches: [2], inputs: 'ids', weights: 'random' });
  add({ name: 'embedding f32 ids from a GPU layer', kernel: 'embedding', config: { input_shape: [4], layers: [dense(4, 6), embedding(9, 5), { type: 'rms_norm', norm_size: 5 }] }, batches: [3], inputs: 'random', weights: 'random', fixed: idsFromDense(4, [3, 0, 8, 3, 1, 0]) });
  add({ name: 'embedding grad (repeated ids)', kernel: 'embedding', config: { input_shape: [6], layers: [embedding(10, 4)] }, batches: [3, 1], inputs: 'ids', weights: 'random', scenario: 'grad' });
  add({ name: 'embedding grad then swiglu', kernel: 'embedding', config: { input_shape: [4], layers: [embedding(12, 6), swiglu(6, 8)] }, batches: [2], inputs: 'ids', weights: 'random', scenario: 'grad' });
  add({ name: 'embedding grad tiny dy (sums of tiny values)', kernel: 'embedding', config: { input_shape: [8], layers: [embedding(10, 3), dense(3, 3, 'linear', false)] }, batches: [4], inputs: 'ids', weights: 'tiny', scenario: 'grad' });
  add({ name: 'embedding train (f32 ids, then dense, cross_entropy)', kernel: 'embedding', config: { input_shape: [4], layers: [dense(4, 5), embedding(9, 6), dense(6, 4)] }, batches: [2], inputs: 'random', weights: 'random', fixed: idsFromDense(4, [3, 0, 8, 3, 1]), scenario: 'train', train: { loss: 'cross_entropy', optimizer: { type: 'sgd', lr: 0.1 }, epochs: 2, batchSize: 3 } });
  // kmeans: both output modes, temperatures, values, nesting, grads
  for (const mode of ['probabilities', 'features'] as const) {
    add({ name: `kmeans ${mode} random`, kernel: `kmeans:${mode}`, config: { input_shape: [3, 6], layers: [kmeans(5, { output_mode: mode })] }, batches: [3, 1], inputs: 'random', weights: 'random' });
    add({ name: `kmeans ${mode} hard values`, kernel: `kmeans:${mode}`, config: { input_shape: [2, 7], layers: [kmeans(4, { output_mode: mode })] }, batches: [3], inputs: 'hard', weights: 'hard' });
    add({ name: `kmeans ${mode} tiny values, T 1e-30`, kernel: `kmeans:${mode}`, config: { input_shape: [2, 5], layers: [kmeans(3, { output_mode: mode, kmeans_temperature: 1e-30 })] }, batches: [2], inputs: 'tiny', weights: 'tiny' });
    add({ name: `kmeans ${mode} edge values`, kernel: `kmeans:${mode}`, config: { input_shape: [4], layers: [kmeans(6, { output_mode: mode })] }, batches: [3], inputs: 'edge', weights: 'edge' });
    add({ name: `kmeans ${mode} grad`, kernel: `kmeans:${mode}`, config: { input_shape: [3, 5], layers: [kmeans(4, { output_mode: mode, kmeans_temperature: 0.7 })] }, batches: [2, 1], inputs: 'random', weights: 'random', scenario: 'grad' });
    add({ name: `kmeans ${mode} grad hard values`, kernel: `kmeans:${mode}`, config: { input_shape: [2, 4], layers: [kmeans(3, { output_mode: mode })] }, batches: [2], inputs: 'hard', weights: 'hard', scenario: 'grad' });
  }
  add({ name: 'kmeans K=1, flattened [2, 3] sample, input_height 6', kernel: 'kmeans:probabilities', config: { input_shape: [2, 3], layers: [kmeans(1, { input_height: 6 })] }, batches: [2], inputs: 'random', weights: 'random' });
  add({ name: 'kmeans in sequential after dense', kernel: 'kmeans:features', config: { input_shape: [6], layers: [{ type: 'sequential', layers: [dense(6, 6, 'tanh'), kmeans(7, { output_mode: 'features', kmeans_temperature: 2 })] }, { type: 'residual' }] }, batches: [3], inputs: 'random', weights: 'random' });
  add({ name: 'kmeans grad tiny values', kernel: 'kmeans:probabilities', config: { input_shape: [2, 5], layers: [kmeans(3, { kmeans_temperature: 1e-30 })] }, batches: [2], inputs: 'tiny', weights: 'tiny', scenario: 'grad' });
  if (large) {
    add({ name: 'large: swiglu 256->688 x128 rows', kernel: 'large', config: { input_shape: [256], layers: [swiglu(256, 688)] }, batches: [128], inputs: 'random', weights: 'random' });
    add({ name: 'large: swiglu grad 96->160 x64 rows', kernel: 'large', config: { input_shape: [96], layers: [swiglu(96, 160)] }, batches: [64], inputs: 'random', weights: 'random', scenario: 'grad' });
    add({ name: 'large: embedding 10x512 x(64x128)', kernel: 'large', config: { input_shape: [128], layers: [embedding(10, 512)] }, batches: [64], inputs: 'ids', weights: 'random' });
    add({ name: 'large: embedding grad 10x256 x(32x64)', kernel: 'large', config: { input_shape: [64], layers: [embedding(10, 256)] }, batches: [32], inputs: 'ids', weights: 'random', scenario: 'grad' });
    add({ name: 'large: kmeans features 64 clusters x 128 dims x512 rows', kernel: 'large', config: { input_shape: [128], layers: [kmeans(64, { output_mode: 'features' })] }, batches: [512], inputs: 'random', weights: 'random' });
    add({ name: 'large: kmeans grad 32 clusters x 64 dims x256 rows', kernel: 'large', config: { input_shape: [64], layers: [kmeans(32)] }, batches: [256], inputs: 'random', weights: 'random', scenario: 'grad' });
  }
  void quick;
  return cases;
}
