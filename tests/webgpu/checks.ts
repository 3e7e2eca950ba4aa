/**
 * GPU bit-equality checks, runtime-agnostic: the same cases run under vitest (Node, SwiftShader),
 * Deno (navigator.gpu on Mesa lavapipe), Bun, and on the NVIDIA device (scripts/webgpu-device.sh).
 *
 * Each case builds a network, gives it seeded weights and inputs (random, or "hard": values
 * whose products are subnormal, large magnitudes that overflow, signed zeros), runs the CPU
 * forward, then forwardAsync on the webgpu backend, and compares every output bit (NaN counts as
 * equal to NaN: payloads are not part of the contract).
 */
import type { WebGpuContext } from '../../core/backend/webgpu/device.ts';
import { GPU_KERNEL_OFF } from '../../core/backend/webgpu/kernels.ts';
import { ACTIVATIONS } from '../../core/layers/activations.ts';
import { Network } from '../../core/network.ts';
import { Prng } from '../../core/prng.ts';
import { Tensor } from '../../core/tensor.ts';
import { createOptimizer } from '../../core/train/optimizers.ts';
import { train, trainAsync } from '../../core/train/trainer.ts';
import { attentionCases } from './cases/attention.ts';
import { convCases } from './cases/conv.ts';
import { recurrentCases } from './cases/recurrent.ts';
import { softmaxCases } from './cases/softmax.ts';
import { recurrentStateChecks } from './cases/recurrent.ts';
import { tokensCases } from './cases/tokens.ts';
import { trainingCases } from './cases/training.ts';

/**
 * random: uniform; hard: a mix of zeros, tiny, huge and subnormal values; tiny: magnitudes
 * 2^-67 .. 2^-60, so products straddle 2^-126 and sums of them cross into and out of the
 * subnormal range (what an adapter that keeps subnormals gets wrong without explicit FTZ);
 * edge: magnitudes just above 2^-126, so sums and differences are subnormal.
 */
export type ValueKind = 'random' | 'hard' | 'tiny' | 'edge';
/** Network inputs may also be token ids (i32 in [0, 10)) for an embedding first layer. */
export type InputKind = ValueKind | 'ids';

export interface CheckCase {
  readonly name: string;
  /** The kernel this case is about (the match table's row). */
  readonly kernel: string;
  readonly config: Record<string, unknown>;
  /** Batch sizes to run (each compiles its own plan). */
  readonly batches: readonly number[];
  readonly inputs: InputKind;
  readonly weights: ValueKind;
  /** Fixed values for some parameters (by full name), instead of `weights`. */
  readonly fixed?: Readonly<Record<string, (shape: readonly number[]) => Float32Array>>;
  /** Extra steps between runs (weights changed, backend switched): see runCase. */
  /**
   * Extra steps between runs (weights changed, backend switched): see runCase.
   * grad: also compares net.gradAsync (forward with tape + backward on the GPU) with
   * forwardTape + backward on the CPU: dL/dx and every parameter gradient, for a seeded dL/dy.
   * train: trains a copy on the CPU (trainer.train) and this network with trainAsync on the GPU
   * (`train` options below), then compares step losses, weights and optimizer state.
   */
  readonly scenario?: 'switch' | 'setWeights' | 'optimizer' | 'fallback' | 'grad' | 'train' | 'cache';
  /** Layer types forced onto the CPU for this case (GPU_KERNEL_OFF): the CPU fallback inside a GPU pass. */
  readonly cpuTypes?: readonly string[];
  /** For scenario cache: successive forwardAsync(x, { cache: true }) calls against a CPU twin, both reset before call `resetAt`. */
  readonly cache?: { steps: number; resetAt: number };
  /** For scenario train: loss, optimizer, epochs, batch size, clipping, schedule (TrainOptions fields). */
  readonly train?: { loss?: 'mse' | 'cross_entropy'; optimizer?: unknown; epochs?: number; batchSize?: number; clipNorm?: number; schedule?: unknown; shuffle?: boolean; samples?: number };
}

export interface CheckResult {
  readonly name: string;
  readonly kernel: string;
  readonly values: number;
  readonly mismatches: number;
  /** The first differing element: index, CPU value, GPU value (with bits). */
  readonly first?: string;
  /** Layers that ran on the CPU inside the GPU pass. */
  readonly fallbacks: readonly string[];
  readonly ms: number;
  readonly error?: string;
}

const F = new Float32Array(1);
const U = new Uint32Array(F.buffer);
function bits(v: number): number {
  F[0] = v;
  return U[0];
}
function hex(v: number): string {
  return `0x${bits(v).toString(16).padStart(8, '0')}`;
}

/** A value from one of the hard classes: zeros, products that land in the subnormal range, overflow. */
function hardValue(rng: Prng): number {
  const s = rng.int(2) ? 1 : -1;
  switch (rng.int(9)) {
    case 0:
      return 0;
    case 1:
      return -0;
    case 2:
      return s * 1e-20 * (1 + 9 * rng.uniform()); // products of two: ~1e-40, subnormal
    case 3:
      return s * 1.1754943508222875e-38 * (1 + 3 * rng.uniform()); // just above 2^-126
    case 4:
      return s * 1e-19 * (1 + rng.uniform()); // times 1e-19 .. 1e-20: ~1e-38, around 2^-126
    case 5:
      return s * 1e18 * (1 + 9 * rng.uniform()); // products of two: 1e36+, sums overflow
    case 6:
      return s * 1e-41; // subnormal: flushed on entry
    case 7:
      return s * 3e19 * (1 + rng.uniform()); // squares overflow (norms)
    default:
      return rng.uniformRange(-2, 2);
  }
}

function value(kind: ValueKind, rng: Prng, scale: number): number {
  switch (kind) {
    case 'hard':
      return hardValue(rng);
    case 'tiny':
      return (rng.int(2) ? 1 : -1) * 2 ** (-67 + rng.int(7)) * (1 + rng.uniform());
    case 'edge':
      return (rng.int(2) ? 1 : -1) * 2 ** -126 * (1 + rng.uniform());
    default:
      return Math.fround(rng.uniformRange(-3, 3) * scale);
  }
}

function values(n: number, kind: ValueKind, rng: Prng, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = value(kind, rng, scale);
  return out;
}

/** Seeded weights for every parameter (norm weights around 1 so outputs stay interesting). */
function setWeights(net: Network, kind: ValueKind, rng: Prng, fixed: CheckCase['fixed'] = {}): void {
  const w = new Map<string, Tensor>();
  for (const { name, param } of net.parameters()) {
    const fan = param.value.shape.length > 1 ? param.value.shape[param.value.shape.length - 1] : 1;
    const make = fixed[name];
    const data = make ? make(param.value.shape) : values(param.value.size, kind, rng.fork(name), kind === 'random' ? 1 / Math.sqrt(fan) : 1);
    w.set(name, new Tensor(param.value.shape, data));
  }
  net.setWeights(w);
}

/** Compares bit patterns; every NaN equals every NaN. */
export function compareBits(cpu: Float32Array, gpu: Float32Array): { mismatches: number; first?: string } {
  if (cpu.length !== gpu.length) return { mismatches: Math.max(cpu.length, gpu.length), first: `lengths ${cpu.length} vs ${gpu.length}` };
  const a = new Uint32Array(cpu.buffer, cpu.byteOffset, cpu.length);
  const b = new Uint32Array(gpu.buffer, gpu.byteOffset, gpu.length);
  let mismatches = 0;
  let first: string | undefined;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === b[i]) continue;
    if (cpu[i] !== cpu[i] && gpu[i] !== gpu[i]) continue;
    mismatches++;
    first ??= `[${i}] cpu ${cpu[i]} (${hex(cpu[i])}) gpu ${gpu[i]} (${hex(gpu[i])})`;
  }
  return { mismatches, first };
}

const dense = (i: number, o: number, activation = 'linear', bias = true): Record<string, unknown> => ({ type: 'dense', input_height: i, output_height: o, activation, bias });

/** Every case, deterministic. `quick` keeps the sizes small (slow software adapters); `large` adds GPU-sized ones. */
export function buildCases(quick = false, large = false): CheckCase[] {
  const cases: CheckCase[] = [];
  const add = (c: CheckCase): void => {
    cases.push(c);
  };
  // dense: every activation, random values and hard values, shapes across tile edges.
  for (const act of ACTIVATIONS) {
    add({ name: `dense ${act} 37->70`, kernel: `dense:${act}`, config: { input_shape: [37], layers: [dense(37, 70, act)] }, batches: [5, 1], inputs: 'random', weights: 'random' });
    add({ name: `dense ${act} hard values`, kernel: `dense:${act}`, config: { input_shape: [3, 19], layers: [dense(19, 23, act)] }, batches: [4], inputs: 'hard', weights: 'hard' });
  }
  add({ name: 'dense 130->129 x67 rows (several tiles)', kernel: 'dense:linear', config: { input_shape: [130], layers: [dense(130, 129, 'gelu')] }, batches: [quick ? 3 : 67], inputs: 'random', weights: 'random' });
  add({ name: 'dense no bias, flattened [2,3,4] -> 9', kernel: 'dense:linear', config: { input_shape: [2, 3, 4], layers: [dense(24, 9, 'relu', false)] }, batches: [3], inputs: 'hard', weights: 'hard' });
  // short sums of signed zeros: an accumulator started from a literal 0.0 gives -0 where the CPU has +0 on lavapipe
  for (const k of [1, 2, 3, 4]) add({ name: `dense ${k}->5 no bias, hard values, 64 rows (zero signs)`, kernel: 'dense:linear', config: { input_shape: [k], layers: [dense(k, 5, 'linear', false)] }, batches: [quick ? 16 : 64], inputs: 'hard', weights: 'hard' });
  add({ name: 'dense 1->1', kernel: 'dense:linear', config: { input_shape: [1], layers: [dense(1, 1, 'tanh')] }, batches: [7], inputs: 'random', weights: 'random' });
  // subnormal territory: explicit FTZ decides these on adapters that keep subnormals (lavapipe)
  add({ name: 'dense tiny values (products straddle 2^-126)', kernel: 'dense:linear', config: { input_shape: [24], layers: [dense(24, 20, 'linear')] }, batches: [6], inputs: 'tiny', weights: 'tiny' });
  add({ name: 'dense tiny values, relu, no bias', kernel: 'dense:relu', config: { input_shape: [9], layers: [dense(9, 12, 'relu', false)] }, batches: [6], inputs: 'tiny', weights: 'tiny' });
  add({ name: 'dense edge values + edge bias', kernel: 'dense:linear', config: { input_shape: [3], layers: [dense(3, 16)] }, batches: [6], inputs: 'edge', weights: 'random', fixed: { 'layers.0.bias': (s) => values(s[0], 'edge', new Prng(7)) } });
  add({ name: 'residual edge values (differences are subnormal)', kernel: 'residual', config: { input_shape: [16], layers: [dense(16, 16, 'linear', false), { type: 'residual' }] }, batches: [4], inputs: 'edge', weights: 'random', fixed: { 'layers.0.weight': () => Float32Array.from({ length: 256 }, (_, i) => (i % 17 === 0 ? -0.875 : 0)) } });
  add({ name: 'rms_norm tiny values (squares subnormal)', kernel: 'rms_norm', config: { input_shape: [16], layers: [{ type: 'rms_norm', norm_size: 16, epsilon: 1.2e-38 }] }, batches: [6], inputs: 'tiny', weights: 'random' });
  add({ name: 'layer_norm tiny values, eps 2^-126', kernel: 'layer_norm', config: { input_shape: [16], layers: [{ type: 'layer_norm', norm_size: 16, epsilon: 1.1754943508222875e-38 }] }, batches: [6], inputs: 'tiny', weights: 'random' });
  add({ name: 'parallel add edge values (x - 0.875x)', kernel: 'parallel:add', config: { input_shape: [8], layers: [{ type: 'parallel', combine_mode: 'add', branches: [dense(8, 8, 'linear', false), dense(8, 8, 'linear', false)] }] }, batches: [3], inputs: 'edge', weights: 'random', fixed: { 'layers.0.branches.0.weight': () => Float32Array.from({ length: 64 }, (_, i) => (i % 9 === 0 ? 1 : 0)), 'layers.0.branches.1.weight': () => Float32Array.from({ length: 64 }, (_, i) => (i % 9 === 0 ? -0.875 : 0)) } });
  add({ name: 'parallel multiply tiny values', kernel: 'parallel:multiply', config: { input_shape: [8], layers: [{ type: 'parallel', combine_mode: 'multiply', branches: [dense(8, 8, 'linear', false), dense(8, 8, 'linear', false)] }] }, batches: [3], inputs: 'tiny', weights: 'random', fixed: { 'layers.0.branches.0.weight': () => Float32Array.from({ length: 64 }, (_, i) => (i % 9 === 0 ? 1 : 0)), 'layers.0.branches.1.weight': () => Float32Array.from({ length: 64 }, (_, i) => (i % 9 === 0 ? 0.75 : 0)) } });
  // the tiled linear variant (rows and outputs >= 32; kernels above use the direct one)
  add({ name: 'dense tiled: tiny values 40 rows, 24->40', kernel: 'dense:linear', config: { input_shape: [24], layers: [dense(24, 40, 'linear')] }, batches: [40], inputs: 'tiny', weights: 'tiny' });
  add({ name: 'dense tiled: hard values, relu, 33 rows, 19->70', kernel: 'dense:relu', config: { input_shape: [3, 19], layers: [dense(19, 70, 'relu', false)] }, batches: [11], inputs: 'hard', weights: 'hard' });
  // norms
  for (const affine of [true, false]) {
    add({ name: `layer_norm last dim affine=${affine}`, kernel: 'layer_norm', config: { input_shape: [4, 33], layers: [{ type: 'layer_norm', norm_size: 33, elementwise_affine: affine }] }, batches: [3], inputs: 'random', weights: 'random' });
    add({ name: `rms_norm last dim affine=${affine}`, kernel: 'rms_norm', config: { input_shape: [4, 33], layers: [{ type: 'rms_norm', norm_size: 33, elementwise_affine: affine }] }, batches: [3], inputs: 'random', weights: 'random' });
  }
  add({ name: 'layer_norm flattened, eps 1e-3', kernel: 'layer_norm', config: { input_shape: [3, 5], layers: [{ type: 'layer_norm', norm_size: 15, epsilon: 1e-3 }] }, batches: [2], inputs: 'random', weights: 'random' });
  add({ name: 'layer_norm hard values', kernel: 'layer_norm', config: { input_shape: [6, 20], layers: [{ type: 'layer_norm', norm_size: 20 }] }, batches: [3], inputs: 'hard', weights: 'hard' });
  add({ name: 'layer_norm 300 wide', kernel: 'layer_norm', config: { input_shape: [300], layers: [{ type: 'layer_norm', norm_size: 300 }] }, batches: [4], inputs: 'random', weights: 'random' });
  add({ name: 'rms_norm flattened, eps 1e-6', kernel: 'rms_norm', config: { input_shape: [3, 5], layers: [{ type: 'rms_norm', norm_size: 15, epsilon: 1e-6 }] }, batches: [2], inputs: 'random', weights: 'random' });
  add({ name: 'rms_norm hard values', kernel: 'rms_norm', config: { input_shape: [6, 20], layers: [{ type: 'rms_norm', norm_size: 20 }] }, batches: [3], inputs: 'hard', weights: 'hard' });
  // softmax variants
  const mask = Array.from({ length: 11 }, (_, i) => i % 3 !== 1);
  add({ name: 'softmax standard', kernel: 'softmax:standard', config: { input_shape: [5, 12], layers: [{ type: 'softmax' }] }, batches: [3], inputs: 'random', weights: 'random' });
  add({ name: 'softmax standard 300 wide', kernel: 'softmax:standard', config: { input_shape: [300], layers: [{ type: 'softmax' }] }, batches: [3], inputs: 'random', weights: 'random' });
  add({ name: 'softmax standard hard values', kernel: 'softmax:standard', config: { input_shape: [4, 9], layers: [{ type: 'softmax' }] }, batches: [3], inputs: 'hard', weights: 'random' });
  add({ name: 'softmax temperature 0.37', kernel: 'softmax:temperature', config: { input_shape: [5, 12], layers: [{ type: 'softmax', softmax_type: 'temperature', temperature: 0.37 }] }, batches: [2], inputs: 'random', weights: 'random' });
  add({ name: 'softmax masked', kernel: 'softmax:masked', config: { input_shape: [3, 11], layers: [{ type: 'softmax', mask }] }, batches: [2], inputs: 'random', weights: 'random' });
  add({ name: 'softmax masked, flattened sample', kernel: 'softmax:masked', config: { input_shape: [11], layers: [{ type: 'softmax', mask }] }, batches: [3], inputs: 'hard', weights: 'random' });
  add({ name: 'softmax grid 4x6', kernel: 'softmax:grid', config: { input_shape: [24], layers: [{ type: 'softmax', softmax_rows: 4, softmax_cols: 6 }] }, batches: [3], inputs: 'random', weights: 'random' });
  add({ name: 'softmax gumbel (inference)', kernel: 'softmax:gumbel', config: { input_shape: [10], layers: [{ type: 'softmax', softmax_type: 'gumbel', temperature: 2.5 }] }, batches: [3], inputs: 'random', weights: 'random' });
  add({ name: 'softmax entmax alpha 1', kernel: 'softmax:standard', config: { input_shape: [10], layers: [{ type: 'softmax', softmax_type: 'entmax', entmax_alpha: 1 }] }, batches: [2], inputs: 'random', weights: 'random' });
  add({ name: 'dense softmax activation 40 wide', kernel: 'dense:softmax', config: { input_shape: [17], layers: [dense(17, 40, 'softmax')] }, batches: [3], inputs: 'hard', weights: 'random' });
  // composition
  add({ name: 'residual after dense', kernel: 'residual', config: { input_shape: [16], layers: [dense(16, 16, 'tanh'), { type: 'residual' }] }, batches: [3], inputs: 'random', weights: 'random' });
  add({ name: 'residual hard values', kernel: 'residual', config: { input_shape: [16], layers: [dense(16, 16, 'linear'), { type: 'residual' }] }, batches: [3], inputs: 'hard', weights: 'hard' });
  add({
    name: 'sequential: dense, residual, layer_norm, dense',
    kernel: 'sequential',
    config: { input_shape: [12], layers: [{ type: 'sequential', layers: [dense(12, 12, 'silu'), { type: 'residual' }, { type: 'layer_norm', norm_size: 12 }, dense(12, 5, 'softmax')] }] },
    batches: [4, 1],
    inputs: 'random',
    weights: 'random',
  });
  for (const mode of ['add', 'avg', 'multiply']) {
    add({
      name: `parallel ${mode} (3 branches)`,
      kernel: `parallel:${mode}`,
      config: { input_shape: [10], layers: [{ type: 'parallel', combine_mode: mode, branches: [dense(10, 6, 'tanh'), dense(10, 6, 'gelu'), { type: 'sequential', layers: [dense(10, 6), { type: 'rms_norm', norm_size: 6 }] }] }] },
      batches: [3],
      inputs: 'random',
      weights: 'random',
    });
    add({ name: `parallel ${mode} (1 branch)`, kernel: `parallel:${mode}`, config: { input_shape: [7], layers: [{ type: 'parallel', combine_mode: mode, branches: [dense(7, 4, 'elu')] }] }, batches: [2], inputs: 'random', weights: 'random' });
  }
  add({ name: 'parallel add hard values', kernel: 'parallel:add', config: { input_shape: [10], layers: [{ type: 'parallel', combine_mode: 'add', branches: [dense(10, 6), dense(10, 6), dense(10, 6)] }] }, batches: [3], inputs: 'hard', weights: 'hard' });
  add({ name: 'parallel concat last dim', kernel: 'parallel:concat', config: { input_shape: [3, 8], layers: [{ type: 'parallel', combine_mode: 'concat', branches: [dense(8, 5, 'relu'), dense(8, 2), { type: 'layer_norm', norm_size: 8 }] }] }, batches: [2], inputs: 'random', weights: 'random' });
  add({ name: 'parallel concat flattened', kernel: 'parallel:concat', config: { input_shape: [2, 6], layers: [{ type: 'parallel', combine_mode: 'concat', branches: [dense(12, 5, 'relu'), { type: 'softmax' }] }] }, batches: [3], inputs: 'random', weights: 'random' });
  add({
    name: 'parallel grid_scatter',
    kernel: 'parallel:grid_scatter',
    config: { input_shape: [6], layers: [{ type: 'parallel', combine_mode: 'grid_scatter', grid_output_rows: 2, grid_output_cols: 2, grid_positions: [{ target_row: 1, target_col: 1 }, { target_row: 0, target_col: 0 }, { target_row: 1, target_col: 0 }], branches: [dense(6, 3), dense(6, 4, 'sigmoid'), dense(6, 2)] }] },
    batches: [2],
    inputs: 'random',
    weights: 'random',
  });
  add({ name: 'parallel filter (softmax gate, temperature 0.5)', kernel: 'parallel:filter', config: { input_shape: [8], layers: [{ type: 'parallel', combine_mode: 'filter', filter_temperature: 0.5, branches: [dense(8, 5, 'tanh'), dense(8, 5, 'silu'), dense(8, 5)] }] }, batches: [3], inputs: 'random', weights: 'random' });
  // a deeper stack, remote-free, batch sizes that recompile
  add({
    name: 'mlp: dense, layer_norm, dense gelu, rms_norm, dense, softmax',
    kernel: 'network',
    config: { input_shape: [20], layers: [dense(20, 48, 'relu'), { type: 'layer_norm', norm_size: 48 }, dense(48, 48, 'gelu'), { type: 'rms_norm', norm_size: 48 }, dense(48, 10), { type: 'softmax', temperature: 1.7 }] },
    batches: [9, 1, 9],
    inputs: 'random',
    weights: 'random',
  });
  // behaviour around the backend
  add({ name: 'CPU fallback inside a GPU pass (lstm and sparsemax forced onto the CPU)', kernel: 'fallback', config: { input_shape: [4, 6], layers: [dense(6, 6, 'tanh'), { type: 'lstm', input_size: 6, hidden_size: 5 }, dense(5, 7), { type: 'softmax', softmax_type: 'sparsemax' }, dense(7, 3, 'mish')] }, batches: [2], inputs: 'random', weights: 'random', scenario: 'fallback', cpuTypes: ['lstm', 'softmax'] });
  add({ name: 'token ids into a CPU embedding (forced), then GPU layers', kernel: 'fallback', config: { input_shape: [5], layers: [{ type: 'embedding', vocab_size: 10, embedding_dim: 8 }, dense(8, 8, 'gelu'), { type: 'rms_norm', norm_size: 8 }] }, batches: [3], inputs: 'ids', weights: 'random', scenario: 'fallback', cpuTypes: ['embedding'] });
  for (const gate of ['sparsemax', 'entmax']) {
    for (const t of [1, 0.5]) add({ name: `parallel filter, ${gate} gate, temperature ${t}`, kernel: 'parallel:filter', config: { input_shape: [7], layers: [{ type: 'parallel', combine_mode: 'filter', filter_softmax: gate, filter_temperature: t, branches: [dense(7, 4, 'tanh'), dense(7, 4), dense(7, 4, 'relu')] }] }, batches: [3, 1], inputs: 'random', weights: 'random' });
  }
  add({ name: 'switching backends keeps the bits', kernel: 'switch', config: { input_shape: [9], layers: [dense(9, 9, 'selu'), { type: 'residual' }, { type: 'rms_norm', norm_size: 9 }] }, batches: [3], inputs: 'random', weights: 'random', scenario: 'switch' });
  add({ name: 'setWeights re-uploads', kernel: 'weights', config: { input_shape: [9], layers: [dense(9, 7, 'sigmoid'), { type: 'layer_norm', norm_size: 7 }] }, batches: [3], inputs: 'random', weights: 'random', scenario: 'setWeights' });
  add({ name: 'optimizer step re-uploads', kernel: 'weights', config: { input_shape: [9], layers: [dense(9, 7, 'leaky_relu'), dense(7, 3)] }, batches: [3], inputs: 'random', weights: 'random', scenario: 'optimizer' });
  if (large) {
    add({ name: 'large: dense 1024->512 x128 rows gelu (tiled)', kernel: 'large', config: { input_shape: [1024], layers: [dense(1024, 512, 'gelu')] }, batches: [128], inputs: 'random', weights: 'random' });
    add({ name: 'large: dense 4096->64 x4 rows (direct, long sums)', kernel: 'large', config: { input_shape: [4096], layers: [dense(4096, 64, 'linear')] }, batches: [4], inputs: 'random', weights: 'random' });
    add({ name: 'large: layer_norm 4096 wide x16', kernel: 'large', config: { input_shape: [4096], layers: [{ type: 'layer_norm', norm_size: 4096 }] }, batches: [16], inputs: 'random', weights: 'random' });
    add({ name: 'large: rms_norm 4096 wide x16', kernel: 'large', config: { input_shape: [4096], layers: [{ type: 'rms_norm', norm_size: 4096 }] }, batches: [16], inputs: 'random', weights: 'random' });
    add({ name: 'large: softmax 5000 wide x8', kernel: 'large', config: { input_shape: [5000], layers: [{ type: 'softmax' }] }, batches: [8], inputs: 'random', weights: 'random' });
    add({ name: 'large: mlp 256-512-512-10 x256 rows', kernel: 'large', config: { input_shape: [256], layers: [dense(256, 512, 'relu'), { type: 'layer_norm', norm_size: 512 }, dense(512, 512, 'silu'), dense(512, 10), { type: 'softmax' }] }, batches: [256], inputs: 'random', weights: 'random' });
  }
  for (const group of [convCases, recurrentCases, attentionCases, tokensCases, softmaxCases, trainingCases]) for (const c of group(quick, large)) add(c);
  return cases;
}

/**
 * The checks' power: the cases rerun with one determinism rule switched off in the generated
 * WGSL (WGSL_ADVERSARY). Without the barrier, an adapter that fuses a*b + c (NVIDIA) must show
 * mismatches; without the explicit flush, an adapter that keeps subnormals (lavapipe) must.
 * Adapters that do neither show 0 for that rule, which is expected.
 */
export async function runAdversary(ctx: WebGpuContext, adversary: { noBarrier: boolean; noFlush: boolean }, opts: { quick?: boolean; large?: boolean } = {}): Promise<{ cases: number; values: number; mismatches: number; casesWithMismatches: string[] }> {
  const { WGSL_ADVERSARY } = await import('../../core/backend/webgpu/shader.ts');
  const picked = buildCases(opts.quick, opts.large).filter((c) => !c.scenario && c.kernel !== 'switch');
  let values = 0;
  let mismatches = 0;
  const bad: string[] = [];
  Object.assign(WGSL_ADVERSARY, adversary);
  try {
    for (const c of picked) {
      const r = await runCase(ctx, c);
      values += r.values;
      mismatches += r.mismatches;
      if (r.mismatches > 0) bad.push(r.name);
    }
  } finally {
    Object.assign(WGSL_ADVERSARY, { noBarrier: false, noFlush: false });
  }
  return { cases: picked.length, values, mismatches, casesWithMismatches: bad };
}

function now(): number {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}

/** Runs one case on the given context (the network uses it, does not own it). */
export async function runCase(ctx: WebGpuContext, c: CheckCase, seed = 1): Promise<CheckResult> {
  const t0 = now();
  const rng = new Prng(seed).fork(c.name);
  for (const t of c.cpuTypes ?? []) GPU_KERNEL_OFF.add(t);
  const net = Network.fromJSON(c.config, { seed });
  const fallbacks: string[] = [];
  let valuesCompared = 0;
  let mismatches = 0;
  let first: string | undefined;
  const check = (cpu: Tensor, gpu: Tensor, what: string): void => {
    const r = compareBits(cpu.data, gpu.data);
    valuesCompared += cpu.size;
    mismatches += r.mismatches;
    if (r.first && !first) first = `${what}: ${r.first}`;
    if (cpu.shape.join() !== gpu.shape.join()) {
      mismatches++;
      first ??= `${what}: shape ${cpu.shape.join('x')} vs ${gpu.shape.join('x')}`;
    }
  };
  try {
    setWeights(net, c.weights, rng.fork('weights'), c.fixed);
    const report = await net.useBackend('webgpu', { context: ctx });
    for (const l of report.layers ?? []) if (l.device === 'cpu') fallbacks.push(`${l.name} ${l.type}`);
    for (const [k, batch] of c.batches.entries()) {
      const n = batch * net.inputShape.reduce((a, b) => a * b, 1);
      const xr = rng.fork(`input.${k}`);
      const shape = [batch, ...net.inputShape];
      const x = c.inputs === 'ids' ? new Tensor(shape, Int32Array.from({ length: n }, () => xr.int(10))) : new Tensor(shape, values(n, c.inputs, xr));
      const cpu = net.forward(x);
      const gpu = await net.forwardAsync(x);
      check(cpu, gpu, `batch ${batch}`);
      if (c.scenario === 'cache') {
        const twin = Network.fromJSON(c.config, { seed });
        twin.setWeights(net.getWeights());
        net.resetCache();
        for (let t = 0; t < (c.cache?.steps ?? 6); t++) {
          if (t === (c.cache?.resetAt ?? 4)) {
            twin.resetCache();
            net.resetCache();
          }
          const xt = new Tensor(shape, values(n, c.inputs === 'ids' ? 'random' : c.inputs, xr.fork(`cache.${t}`)));
          check(twin.forward(xt, { cache: true }), await net.forwardAsync(xt, { cache: true }), `batch ${batch} cached call ${t}`);
        }
        net.resetCache();
      }
      if (c.scenario === 'grad') {
        const dy = new Tensor(cpu.shape, values(cpu.size, c.inputs === 'ids' ? 'random' : c.inputs, xr.fork('dy')));
        net.zeroGrad();
        const tape = net.forwardTape(x, { training: false, seed: 0 });
        const dxCpu = net.backward(tape, dy);
        const gradsCpu = net.parameters().map(({ name, param }) => ({ name, g: param.grad.clone() }));
        net.zeroGrad();
        const dxGpu = await net.gradAsync(x, dy);
        if (x.dtype === 'f32') check(dxCpu, dxGpu, `batch ${batch} dL/dx`);
        net.parameters().forEach(({ param }, j) => check(gradsCpu[j].g, param.grad, `batch ${batch} ${gradsCpu[j].name}.grad`));
      }
      if (c.scenario === 'switch') {
        await net.useBackend('cpu');
        check(cpu, await net.forwardAsync(x), 'after switching to cpu');
        await net.useBackend('webgpu', { context: ctx });
        check(cpu, await net.forwardAsync(x), 'after switching back to webgpu');
        check(cpu, await net.forwardAsync(x), 'second forward');
      }
      if (c.scenario === 'setWeights' || c.scenario === 'optimizer') {
        const uploads = (): number => net.backendReport().stats!.uploads;
        const before = uploads();
        await net.forwardAsync(x);
        if (uploads() !== before) {
          mismatches++;
          first ??= `weights uploaded again without a change (${before} -> ${uploads()})`;
        }
        if (c.scenario === 'setWeights') setWeights(net, 'random', rng.fork('weights2'));
        else {
          for (const { param } of net.parameters()) param.grad.data.fill(0.25);
          createOptimizer({ type: 'adamw', lr: 0.01 }, net.parameters()).step();
        }
        const cpu2 = net.forward(x);
        if (compareBits(cpu.data, cpu2.data).mismatches === 0) {
          mismatches++;
          first ??= 'the weight change did not change the CPU output (bad test)';
        }
        check(cpu2, await net.forwardAsync(x), 'after the weight change');
        if (uploads() !== before + net.parameters().length) {
          mismatches++;
          first ??= `expected ${net.parameters().length} uploads after the change, got ${uploads() - before}`;
        }
      }
    }
    if (c.scenario === 'train') {
      const r = await compareTraining(net, c, rng.fork('train'));
      valuesCompared += r.values;
      mismatches += r.mismatches;
      first ??= r.first;
    }
    if (c.scenario === 'fallback' && fallbacks.length === 0) {
      mismatches++;
      first ??= 'expected CPU fallbacks';
    }
    return { name: c.name, kernel: c.kernel, values: valuesCompared, mismatches, first, fallbacks, ms: Math.round(now() - t0) };
  } catch (e) {
    const msg = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    return { name: c.name, kernel: c.kernel, values: valuesCompared, mismatches: mismatches + 1, first, fallbacks, ms: Math.round(now() - t0), error: msg };
  } finally {
    net.releaseBackend();
    for (const t of c.cpuTypes ?? []) GPU_KERNEL_OFF.delete(t);
  }
}

/**
 * Trains a copy of `net` on the CPU (train) and `net` itself on its GPU backend (trainAsync),
 * from the same weights, data and options; compares every step loss, the final weights and the
 * optimizer state bit for bit.
 */
async function compareTraining(net: Network, c: CheckCase, rng: Prng): Promise<{ values: number; mismatches: number; first?: string }> {
  const t = c.train ?? {};
  const n = t.samples ?? 6;
  const loss = t.loss ?? 'mse';
  const xShape = [n, ...net.inputShape];
  const nx = xShape.reduce((a, b) => a * b, 1);
  const xr = rng.fork('x');
  // token ids (embedding first) travel as f32 values in training data, as the trainer takes f32 inputs
  const inputs = new Tensor(xShape, c.inputs === 'ids' ? Float32Array.from({ length: nx }, () => xr.int(10)) : values(nx, c.inputs, xr));
  const outShape = [n, ...net.outputShape];
  const classes = outShape[outShape.length - 1];
  const targets = loss === 'cross_entropy'
    ? new Tensor(outShape.slice(0, -1), Int32Array.from({ length: outShape.slice(0, -1).reduce((a, b) => a * b, 1) }, () => rng.int(classes)))
    : new Tensor(outShape, values(outShape.reduce((a, b) => a * b, 1), 'random', rng.fork('y')));
  const opts = { epochs: t.epochs ?? 2, batchSize: t.batchSize ?? 4, loss, optimizer: (t.optimizer ?? { type: 'sgd', lr: 0.05 }) as never, clipNorm: t.clipNorm, schedule: t.schedule as never, shuffle: t.shuffle ?? false, seed: 11 };
  const twin = Network.fromJSON(c.config, { seed: 1 });
  twin.setWeights(net.getWeights());
  const lossesCpu: number[] = [];
  const lossesGpu: number[] = [];
  const rc = train(twin, { inputs, targets }, { ...opts, onProgress: (p) => lossesCpu.push(p.loss) });
  const rg = await trainAsync(net, { inputs, targets }, { ...opts, onProgress: (p) => lossesGpu.push(p.loss) });
  let compared = 0;
  let mismatches = 0;
  let first: string | undefined;
  const cmp = (a: Float32Array, b: Float32Array, what: string): void => {
    const r = compareBits(a, b);
    compared += a.length;
    mismatches += r.mismatches;
    if (r.first) first ??= `${what}: ${r.first}`;
  };
  cmp(Float32Array.from(lossesCpu), Float32Array.from(lossesGpu), 'step losses');
  cmp(Float32Array.from(rc.epochLosses), Float32Array.from(rg.epochLosses), 'epoch losses');
  const wc = twin.getWeights();
  for (const [name, w] of net.getWeights()) cmp(wc.get(name)!.data as Float32Array, w.data as Float32Array, name);
  const sc = rc.optimizer.exportState();
  const sg = rg.optimizer.exportState();
  if (sc.step !== sg.step) {
    mismatches++;
    first ??= `optimizer steps ${sc.step} vs ${sg.step}`;
  }
  for (const [name, tc] of sc.tensors) {
    const tg = sg.tensors.get(name);
    if (!tg) {
      mismatches++;
      first ??= `optimizer state ${name} missing after trainAsync`;
      continue;
    }
    cmp(tc.data as Float32Array, tg.data as Float32Array, `optimizer ${name}`);
  }
  // the CPU forward after GPU training sees the trained weights (read back)
  const x1 = new Tensor([1, ...net.inputShape], inputs.data.slice(0, inputs.size / n) as Float32Array);
  cmp(twin.forward(x1).data as Float32Array, (await net.forwardAsync(x1)).data as Float32Array, 'forward after training');
  return { values: compared, mismatches, first };
}

export async function runChecks(ctx: WebGpuContext, opts: { quick?: boolean; large?: boolean; filter?: string; log?: (line: string) => void } = {}): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  for (const c of buildCases(opts.quick, opts.large)) {
    if (opts.filter && !c.name.includes(opts.filter) && !c.kernel.includes(opts.filter)) continue;
    const r = await runCase(ctx, c);
    out.push(r);
    opts.log?.(`${r.mismatches === 0 ? 'ok  ' : 'FAIL'} ${r.name} (${r.values} values, ${r.ms} ms)${r.first ? ` ${r.first}` : ''}${r.error ? ` ${r.error}` : ''}`);
  }
  // recurrent initial and final states (setInitialState, finalState, initialStateGrad): their own harness
  if (!opts.filter || 'recurrent state'.includes(opts.filter) || opts.filter === 'state') {
    const t0 = now();
    const st = await recurrentStateChecks(ctx);
    const r: CheckResult = { name: 'recurrent initial/final states and their gradients', kernel: 'recurrent:state', values: st.values, mismatches: st.ok ? st.mismatches : Math.max(1, st.mismatches), fallbacks: [], ms: Math.round(now() - t0) };
    out.push(r);
    opts.log?.(`${r.mismatches === 0 ? 'ok  ' : 'FAIL'} ${r.name} (${r.values} values, ${r.ms} ms)`);
  }
  return out;
}

/** Per-kernel match table (Markdown). */
export function matchTable(results: readonly CheckResult[]): string {
  const rows = new Map<string, { cases: number; ok: number; values: number; mismatches: number }>();
  for (const r of results) {
    const row = rows.get(r.kernel) ?? { cases: 0, ok: 0, values: 0, mismatches: 0 };
    row.cases++;
    if (r.mismatches === 0 && !r.error) row.ok++;
    row.values += r.values;
    row.mismatches += r.mismatches;
    rows.set(r.kernel, row);
  }
  const lines = ['| kernel | cases | bit-identical | values compared | mismatches |', '|---|---|---|---|---|'];
  for (const [k, r] of rows) lines.push(`| ${k} | ${r.cases} | ${r.ok === r.cases ? 'yes' : `NO (${r.ok}/${r.cases})`} | ${r.values} | ${r.mismatches} |`);
  return lines.join('\n');
}
