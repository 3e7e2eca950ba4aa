/**
 * The contract between the WebGPU backend and a layer's GPU code (core/layers/<type>.wgsl.ts).
 *
 * A layer kernel compiles one built layer for one batch size into a LayerOp: an async function
 * that records the layer's dispatches into the pass (Run) and returns its output value. Shapes
 * are known at compile time and baked into the WGSL; pipelines are cached by source text, so
 * compiling the same layer shapes twice costs nothing on the GPU side.
 */
import type { Layer, Param } from '../../layers/layer.ts';
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
}

/** A parameter of a layer by name (`weight`, `bias`), or null. */
export function paramOf(layer: Layer, name: string): Param | null {
  return layer.params.find((p) => p.name === name) ?? null;
}
