/** GPU check cases: attention (gathered by buildCases in tests/webgpu/checks.ts). */
import type { CheckCase } from '../checks.ts';

/** The identity matrix n x n, flattened (a projection that passes its input through exactly). */
const identity = (n: number) => (): Float32Array => Float32Array.from({ length: n * n }, (_, i) => (i % (n + 1) === 0 ? 1 : 0));

const mha = (dModel: number, heads: number, o: Record<string, unknown> = {}): Record<string, unknown> => ({ type: 'multi_head_attention', d_model: dModel, num_heads: heads, ...o });

export function attentionCases(quick: boolean, large: boolean): CheckCase[] {
  const cases: CheckCase[] = [];
  const add = (c: CheckCase): void => {
    cases.push(c);
  };
  // KV cache: successive cached calls against the CPU's cache, growth past 16 positions, a reset
  add({ name: 'mha KV cache: causal GQA RoPE, 20 single-token calls, reset at 17', kernel: 'mha:cache', config: { input_shape: [1, 8], layers: [mha(8, 4, { num_kv_heads: 2, causal: true, rope_freq_base: 10000 })] }, batches: [2, 1], inputs: 'random', weights: 'random', scenario: 'cache', cache: { steps: 20, resetAt: 17 } });
  add({ name: 'mha KV cache: 3-token chunks, bias, not causal', kernel: 'mha:cache', config: { input_shape: [3, 8], layers: [mha(8, 2)] }, batches: [2], inputs: 'random', weights: 'random', scenario: 'cache', cache: { steps: 8, resetAt: 5 } });
  // forward: every feature, odd sizes, several batch sizes
  add({ name: 'mha 2 heads, bias', kernel: 'mha', config: { input_shape: [5, 8], layers: [mha(8, 2)] }, batches: [3, 1], inputs: 'random', weights: 'random' });
  add({ name: 'mha causal GQA 4/2 RoPE, head_dim 6 with d_model 10, no bias', kernel: 'mha:causal-gqa-rope', config: { input_shape: [7, 10], layers: [mha(10, 4, { num_kv_heads: 2, head_dim: 6, causal: true, rope_freq_base: 10000, bias: false })] }, batches: [2, 3], inputs: 'random', weights: 'random' });
  add({ name: 'mha GQA 3/1, causal, hard values', kernel: 'mha:hard', config: { input_shape: [4, 6], layers: [mha(6, 3, { num_kv_heads: 1, causal: true })] }, batches: [3], inputs: 'hard', weights: 'hard' });
  add({ name: 'mha RoPE theta 500, hard values', kernel: 'mha:hard', config: { input_shape: [5, 8], layers: [mha(8, 2, { rope_freq_base: 500 })] }, batches: [2], inputs: 'hard', weights: 'hard' });
  add({ name: 'mha tiny values', kernel: 'mha:tiny', config: { input_shape: [3, 8], layers: [mha(8, 2, { causal: true })] }, batches: [4], inputs: 'tiny', weights: 'tiny' });
  add({ name: 'mha tiny inputs, random weights, RoPE', kernel: 'mha:tiny', config: { input_shape: [4, 8], layers: [mha(8, 2, { rope_freq_base: 10000 })] }, batches: [2], inputs: 'tiny', weights: 'random' });
  add({ name: 'mha edge values', kernel: 'mha:edge', config: { input_shape: [3, 4], layers: [mha(4, 1)] }, batches: [3], inputs: 'edge', weights: 'random' });
  // v and o projections pass values through, so P * v lands around 2^-126 (flush decides)
  add({ name: 'mha edge values, identity v/o projections (P * v subnormal)', kernel: 'mha:edge', config: { input_shape: [5, 6], layers: [mha(6, 2, { causal: true, bias: false })] }, batches: [2], inputs: 'edge', weights: 'random', fixed: { 'layers.0.v_proj.weight': identity(6), 'layers.0.o_proj.weight': identity(6) } });
  add({ name: 'mha flat input, seq 1, 1 head', kernel: 'mha', config: { input_shape: [5], layers: [mha(5, 1)] }, batches: [4], inputs: 'random', weights: 'random' });
  add({ name: 'mha flat [seq * d_model], MQA 4/1 RoPE', kernel: 'mha', config: { input_shape: [24], layers: [mha(4, 4, { num_kv_heads: 1, head_dim: 2, rope_freq_base: 10000, causal: true })] }, batches: [2], inputs: 'random', weights: 'random' });
  add({ name: 'mha causal, 70 positions (rows wider than a workgroup)', kernel: 'mha:causal', config: { input_shape: [70, 4], layers: [mha(4, 2, { causal: true, rope_freq_base: 10000 })] }, batches: [quick ? 1 : 2], inputs: 'random', weights: 'random' });
  // the tiled projections (the dense cases cover linearKernel; slow to compile on SwiftShader)
  if (!quick) add({ name: 'mha projections tiled (32 rows, 32 wide)', kernel: 'mha', config: { input_shape: [16, 32], layers: [mha(32, 4, { num_kv_heads: 2 })] }, batches: [2], inputs: 'random', weights: 'random' });
  // nested
  add({ name: 'mha in a transformer block (residual, rms_norm, sequential)', kernel: 'mha:nested', config: { input_shape: [6, 8], layers: [{ type: 'sequential', layers: [{ type: 'rms_norm', norm_size: 8 }, mha(8, 2, { causal: true, rope_freq_base: 10000, num_kv_heads: 1, bias: false })] }, { type: 'residual' }, { type: 'layer_norm', norm_size: 8 }] }, batches: [2, 1], inputs: 'random', weights: 'random' });
  add({ name: 'mha branches of a parallel add', kernel: 'mha:nested', config: { input_shape: [4, 6], layers: [{ type: 'parallel', combine_mode: 'add', branches: [mha(6, 2), mha(6, 3, { causal: true })] }] }, batches: [2], inputs: 'random', weights: 'random' });
  // backward (dL/dx and every parameter gradient)
  add({ name: 'mha grad random', kernel: 'mha:grad', config: { input_shape: [5, 8], layers: [mha(8, 2)] }, batches: [3, 1], inputs: 'random', weights: 'random', scenario: 'grad' });
  add({ name: 'mha grad causal GQA 4/2 RoPE, no bias', kernel: 'mha:grad', config: { input_shape: [6, 10], layers: [mha(10, 4, { num_kv_heads: 2, head_dim: 4, causal: true, rope_freq_base: 10000, bias: false })] }, batches: [2], inputs: 'random', weights: 'random', scenario: 'grad' });
  add({ name: 'mha grad MQA 3/1 causal, bias', kernel: 'mha:grad', config: { input_shape: [4, 6], layers: [mha(6, 3, { num_kv_heads: 1, causal: true })] }, batches: [2], inputs: 'random', weights: 'random', scenario: 'grad' });
  add({ name: 'mha grad hard values, RoPE', kernel: 'mha:grad', config: { input_shape: [4, 8], layers: [mha(8, 2, { rope_freq_base: 10000, causal: true })] }, batches: [2], inputs: 'hard', weights: 'hard', scenario: 'grad' });
  add({ name: 'mha grad tiny values', kernel: 'mha:grad', config: { input_shape: [3, 8], layers: [mha(8, 2, { num_kv_heads: 1 })] }, batches: [2], inputs: 'tiny', weights: 'tiny', scenario: 'grad' });
  add({ name: 'mha grad in a residual block', kernel: 'mha:grad', config: { input_shape: [5, 8], layers: [mha(8, 2, { causal: true, rope_freq_base: 1000 }), { type: 'residual' }, { type: 'rms_norm', norm_size: 8 }] }, batches: [2], inputs: 'random', weights: 'random', scenario: 'grad' });
  // training
  add({ name: 'mha train (causal GQA RoPE block, adamw)', kernel: 'mha:train', config: { input_shape: [4, 8], layers: [mha(8, 4, { num_kv_heads: 2, causal: true, rope_freq_base: 10000 }), { type: 'residual' }, { type: 'dense', input_height: 8, output_height: 8, activation: 'linear' }] }, batches: [2], inputs: 'random', weights: 'random', scenario: 'train', train: { optimizer: { type: 'adamw', lr: 0.01 }, epochs: 2, batchSize: 3, samples: 6 } });
  if (large) {
    add({ name: 'large: mha 256 wide, 8/2 heads, causal RoPE, 128 positions x4', kernel: 'large', config: { input_shape: [128, 256], layers: [mha(256, 8, { num_kv_heads: 2, causal: true, rope_freq_base: 10000 })] }, batches: [4], inputs: 'random', weights: 'random' });
    // the backward's projections use the tiled gemm here
    add({ name: 'large: mha grad 128 wide, 4 heads, causal, 64 positions x2', kernel: 'large', config: { input_shape: [64, 128], layers: [mha(128, 4, { causal: true, rope_freq_base: 10000 })] }, batches: [2], inputs: 'random', weights: 'random', scenario: 'grad' });
  }
  return cases;
}
