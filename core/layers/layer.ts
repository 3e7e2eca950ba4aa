import type { FieldReader, JsonObject } from '../fields.ts';
import type { InitSpec } from '../init.ts';
import type { Prng } from '../prng.ts';
import type { Tensor } from '../tensor.ts';

/** A per-sample shape: the batch dimension is never included. */
export type Shape = readonly number[];

/** A trainable tensor with its gradient accumulator (same shape). */
export interface Param {
  /** Name relative to its layer, PyTorch style: `weight`, `bias`, `q_proj.weight`. */
  readonly name: string;
  readonly value: Tensor;
  readonly grad: Tensor;
}

/** What a forward pass hands to the matching backward pass. */
export interface Forwarded {
  readonly y: Tensor;
  readonly saved: unknown;
}

export interface Backwarded {
  readonly dx: Tensor;
  /** Gradient for the skip input, only for layers with usesSkip. */
  readonly dskip?: Tensor;
}

export interface RunContext {
  /** True inside training steps (enables e.g. gumbel noise); forward for inference passes false. */
  readonly training: boolean;
  /** Noise source for stochastic layers; forked per layer from the step's seed. */
  readonly rng: Prng | null;
}

/**
 * A built layer: config + concrete per-sample input/output shapes + parameters.
 * `forward` never mutates `x`; `backward` adds (f32, canonical order) into each Param.grad
 * and returns the input gradient.
 */
export interface Layer {
  readonly type: string;
  /** The normalized config (canonical field names, defaults filled in). */
  readonly config: LayerConfig;
  readonly inputShape: Shape;
  readonly outputShape: Shape;
  /** Own parameters, in a fixed order. */
  readonly params: readonly Param[];
  /** Nested layers with their name prefix: `branches.0`, `layers.2`. */
  readonly children: readonly { readonly prefix: string; readonly layer: Layer }[];
  /** Residual-style layers also receive the input of the preceding layer (`skip`). */
  readonly usesSkip: boolean;
  forward(x: Tensor, ctx: RunContext, skip?: Tensor): Forwarded;
  backward(saved: unknown, dy: Tensor, ctx: RunContext): Backwarded;
  /**
   * Token-id input (added with embedding): true when the layer reads its input as integer ids.
   * Such a layer's forward may receive an i32 or i64 tensor (typed as Tensor, the data is then
   * an Int32Array / BigInt64Array) or an f32 one; Network accepts integer input tensors when its
   * first node has this flag. Absent means false.
   */
  readonly integerInput?: boolean;
  /**
   * KV cache (added with multi_head_attention): layers that keep state across forward calls for
   * incremental decoding implement both. Network.forward(x, { cache: true }) calls
   * setCacheMode(true) on every such layer (nested ones too) for the duration of that call;
   * Network.resetCache() calls resetCache().
   */
  setCacheMode?(on: boolean): void;
  resetCache?(): void;
}

/** A normalized layer config: JSON with canonical field names; `type` is canonical. */
export interface LayerConfig extends JsonObject {
  type: string;
}

export interface ParseContext {
  /** Parse a nested layer (parallel branch, sequential child). */
  parseChild(raw: unknown, where: string): LayerConfig;
}

export interface BuildContext {
  /** Full name prefix of this layer, e.g. `layers.3` or `layers.3.branches.1`. */
  readonly prefix: string;
  /** Human-readable location for errors, e.g. `layers[3] (z0 y0 x0 l3, dense)`. */
  readonly where: string;
  /** Shape of the input the preceding layer received (for residual); null for a first layer. */
  readonly skipShape: Shape | null;
  /** Create a parameter initialized from the network's seed forked by its full name. */
  param(name: string, shape: readonly number[], init: InitSpec): Param;
  /** Build a nested layer; `prefix` is relative (`branches.0`). */
  buildChild(cfg: LayerConfig, inputShape: Shape, prefix: string, where: string, skipShape?: Shape | null): Layer;
}

/** One layer type: parsing (with Loom's aliases), input-shape inference and building. */
export interface LayerKind {
  readonly type: string;
  readonly aliases: readonly string[];
  parse(f: FieldReader, ctx: ParseContext): LayerConfig;
  /** The per-sample input shape the config implies, when it implies one (first layer of a network). */
  inferInputShape(cfg: LayerConfig): Shape | null;
  build(cfg: LayerConfig, inputShape: Shape, ctx: BuildContext): Layer;
}
