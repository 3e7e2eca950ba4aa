/**
 * The contract between the WebGPU backend and a layer's GPU code (core/layers/<type>.wgsl.ts).
 *
 * A layer kernel compiles one built layer for one batch size into a LayerOp: an async function
 * that records the layer's dispatches into the pass (Run) and returns its output value. Shapes
 * are known at compile time and baked into the WGSL; pipelines are cached by source text, so
 * compiling the same layer shapes twice costs nothing on the GPU side.
 */
import type { Layer, Param, RunContext } from '../../layers/layer.ts';
import type { WebGpuContext } from './device.ts';
import type { GpuBuffer } from './gpu.ts';
import type { Kernel, Run, Val } from './run.ts';
import type { ShaderSpec } from './shader.ts';

/** Records a layer's forward: `x` (and `skip` for residual-style layers) to its output. */
export type LayerOp = (run: Run, x: Val, skip?: Val) => Promise<Val>;

export interface GpuCompileContext {
  readonly gpu: WebGpuContext;
  /** Samples per batch: the leading dim of every value this plan sees. */
  readonly batch: number;
  /** The layer's full parameter prefix (`layers.3`, `layers.2.branches.0`), for messages. */
  readonly prefix: string;
  /** Largest workgroup count per dispatch dimension. */
  readonly maxWorkgroups: number;
  /** Builds (or finds in the cache) the pipeline for a generated module. */
  kernel(spec: ShaderSpec, workgroups: readonly [number, number?, number?]): Promise<Kernel>;
  /** The parameter's resident GPU copy (uploaded once; re-uploaded when its weights change). */
  weight(p: Param): GpuBuffer;
  /** Compiles a nested layer (GPU kernel, or CPU fallback when it has none). */
  child(layer: Layer, prefix: string): Promise<LayerOp>;
  /** Fails with UNSUPPORTED when one buffer of `elements` f32 values exceeds the device limits. */
  need(elements: number, what: string): void;
}

export interface GpuLayerKernel {
  readonly type: string;
  /** Why this layer's config cannot run on the GPU (it then runs on the CPU), or null. */
  unsupported?(layer: Layer): string | null;
  compile(layer: Layer, cc: GpuCompileContext): Promise<LayerOp>;
  /**
   * Training on the GPU (forward that keeps what backward needs, then backward). Absent, or
   * `trainUnsupported` giving a reason: the layer trains on the CPU inside the GPU step (its
   * input and output gradient read back, its dx and parameter gradients uploaded).
   */
  compileTrain?(layer: Layer, cc: GpuTrainContext): Promise<TrainOp>;
  trainUnsupported?(layer: Layer): string | null;
}

/**
 * What a training forward hands to its backward. `saved` holds GPU values (they live until the
 * step's Run finishes) or anything else the layer needs.
 */
export interface TrainForwarded {
  readonly y: Val;
  readonly saved: unknown;
}

/**
 * A layer's training pair for one batch size. The arithmetic is the CPU layer's, bit for bit:
 *   - forward: the same output bits as LayerOp (usually the same kernels), plus saved values;
 *   - backward: returns dL/dx (and dL/dskip for usesSkip layers) as new values, and ADDS each
 *     parameter's gradient contribution into `cc.grad(p)` exactly as Layer.backward adds into
 *     Param.grad: the contribution is formed in the CPU's order (usually into a fresh +0
 *     accumulator), then grad[i] = h_add(grad[i], contribution[i]). The driver zeroes the
 *     gradient buffers (+0) before each step, as zeroGrad does.
 * A layer whose training forward is stochastic (gumbel noise, ...) reports trainUnsupported
 * unless it reproduces the CPU's noise from ctx.rng.
 */
export interface TrainOp {
  /** `ctx` is the CPU's RunContext for this layer (training: true; containers fork it per child as their CPU layer does). */
  forward(run: Run, x: Val, ctx: RunContext, skip?: Val): Promise<TrainForwarded>;
  backward(run: Run, saved: unknown, dy: Val, ctx: RunContext): Promise<{ dx: Val; dskip?: Val }>;
}

export interface GpuTrainContext extends GpuCompileContext {
  /** The parameter's gradient buffer (f32, the parameter's size), resident for the network's life on this backend. */
  grad(p: Param): GpuBuffer;
  /** Compiles a nested layer's training pair (GPU, or the CPU fallback). */
  childTrain(layer: Layer, prefix: string): Promise<TrainOp>;
}

/** A parameter of a layer by name (`weight`, `bias`), or null. */
export function paramOf(layer: Layer, name: string): Param | null {
  return layer.params.find((p) => p.name === name) ?? null;
}
