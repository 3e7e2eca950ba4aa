import { type GridPos, type NetworkConfig, configToJSON, parseNetworkConfig, posStr } from './config.ts';
import { fail } from './errors.ts';
import type { JsonObject } from './fields.ts';
import { type InitSpec, initialize } from './init.ts';
import { type BackendName, type BackendOptions, type BackendReport, BACKENDS, type NetworkBackend } from './backend/backend.ts';
import { markChanged } from './backend/versions.ts';
import { WebGpuBackend } from './backend/webgpu/backend.ts';
import type { BuildContext, Layer, LayerConfig, Param, RunContext, Shape } from './layers/layer.ts';
import { kindOf } from './layers/registry.ts';
import { addInto } from './kernels/linear.ts';
import { Prng } from './prng.ts';
import { Tensor, type TensorData, assertFinite, finiteFlushed, flushSubnormals, shapeEquals, shapeSize, shapeStr } from './tensor.ts';

/** One executable grid slot. */
export interface GridNode {
  /** Position in execution order: the `i` of `layers.{i}` weight names. */
  readonly index: number;
  readonly pos: GridPos;
  readonly layer: Layer;
  readonly disabled: boolean;
  /** Node whose output feeds this one; -1 is the network input. */
  readonly source: number;
  readonly remote: GridPos | null;
  readonly where: string;
}

export interface NamedParam {
  /** Full name: `layers.3.weight`, `layers.2.branches.0.bias`. */
  readonly name: string;
  readonly param: Param;
}

/** What a training forward pass keeps for the backward pass. */
export interface Tape {
  /** The network input: f32, or i32 / i64 token ids when the first layer reads ids (embedding). */
  readonly input: Tensor<TensorData>;
  readonly inputs: Tensor[];
  readonly outputs: Tensor[];
  readonly saved: unknown[];
  readonly ctx: RunContext[];
}

/** Options of Network.forward. */
export interface ForwardOptions {
  /**
   * Incremental decoding (KV cache): layers with a cache (multi_head_attention) treat the input
   * positions as the continuation of what they have cached, append them to the cache, and attend
   * over everything cached. Inference only. Network.resetCache() starts a new sequence.
   */
  cache?: boolean;
}

export interface BuildOptions {
  /** Seed for weight initialization (default 0). */
  seed?: number;
}

export interface LayerBlueprint {
  name: string;
  type: string;
  position?: GridPos;
  activation?: string;
  disabled?: boolean;
  remote_link?: GridPos;
  parameters: number;
  input_shape: number[];
  output_shape: number[];
  children?: LayerBlueprint[];
}

export interface Blueprint {
  id: string;
  grid: { depth: number; rows: number; cols: number; layers_per_cell: number };
  batch_size: number;
  input_shape: number[];
  output_shape: number[];
  total_parameters: number;
  layers: LayerBlueprint[];
}

/**
 * A network built from a config: grid nodes in reading order (z, y, x, l), each fed by the
 * preceding node or by a remote link to an earlier position. Disabled nodes pass their
 * input through. Residual-style layers also receive the input of the preceding node.
 *
 * Backward visits nodes in reverse execution order. When one output feeds several nodes,
 * its gradient is the f32 sum of their contributions, added in that reverse order.
 */
export class Network {
  readonly config: NetworkConfig;
  readonly nodes: readonly GridNode[];
  readonly inputShape: Shape;
  readonly outputShape: Shape;
  readonly seed: number;
  private readonly named: NamedParam[] = [];

  constructor(config: NetworkConfig, opts: BuildOptions = {}) {
    this.config = config;
    this.seed = opts.seed ?? 0;
    const rng = new Prng(this.seed);
    const first = config.nodes[0];
    const inferred = config.input_shape ?? kindOf(first.layer).inferInputShape(first.layer);
    if (!inferred) {
      fail('CONFIG_INVALID', `the input shape cannot be inferred from a ${first.layer.type} layer; give "input_shape" (per-sample, e.g. [784])`, 'config.input_shape');
    }
    shapeSize(inferred, 'config.input_shape');
    this.inputShape = Object.freeze([...inferred]);
    const nodes: GridNode[] = [];
    const outShapes: Shape[] = [];
    const inShapes: Shape[] = [];
    config.nodes.forEach((nc, i) => {
      const where = `layers[${nc.jsonIndex}] (${posStr(nc.pos)}, ${nc.layer.type})`;
      let source = i - 1;
      if (nc.remote) source = config.nodes.findIndex((m) => posStr(m.pos) === posStr(nc.remote!));
      const inShape = source < 0 ? this.inputShape : outShapes[source];
      const skipShape = i > 0 ? inShapes[i - 1] : null;
      const layer = buildLayer(nc.layer, inShape, `layers.${i}`, where, skipShape, rng, this.named);
      if (nc.disabled && !shapeEquals(layer.inputShape, layer.outputShape)) {
        fail('SHAPE_MISMATCH', `is disabled (it passes its input through), but its output shape ${shapeStr(layer.outputShape)} differs from its input shape ${shapeStr(layer.inputShape)}`, where);
      }
      nodes.push({ index: i, pos: nc.pos, layer, disabled: nc.disabled, source, remote: nc.remote, where });
      inShapes.push(inShape);
      outShapes.push(layer.outputShape);
    });
    this.nodes = nodes;
    this.outputShape = outShapes[outShapes.length - 1];
  }

  static fromJSON(json: string | unknown, opts: BuildOptions = {}): Network {
    return new Network(parseNetworkConfig(json), opts);
  }

  /** Every parameter with its full name, in execution order (then declaration order). */
  parameters(): readonly NamedParam[] {
    return this.named;
  }

  parameterCount(): number {
    return this.named.reduce((n, p) => n + p.param.value.size, 0);
  }

  zeroGrad(): void {
    for (const { param } of this.named) param.grad.data.fill(0);
  }

  /**
   * Inference: input [batch, ...inputShape] -> output [batch, ...outputShape]. The input is f32,
   * or integer token ids (i32 / i64) when the first layer reads ids (embedding).
   * With `cache: true`, stateful layers (the KV cache of multi_head_attention) continue from what
   * they cached in earlier cached calls (see ForwardOptions and resetCache).
   */
  forward(input: Tensor<TensorData>, opts: ForwardOptions = {}): Tensor {
    if (!opts.cache) {
      const tape = this.forwardTape(input, { training: false, seed: 0 });
      return tape.outputs[tape.outputs.length - 1];
    }
    const stateful = this.statefulLayers();
    for (const l of stateful) l.setCacheMode!(true);
    try {
      const tape = this.forwardTape(input, { training: false, seed: 0 });
      return tape.outputs[tape.outputs.length - 1];
    } finally {
      for (const l of stateful) l.setCacheMode!(false);
    }
  }

  /** Empty every layer's cache (the KV caches of multi_head_attention): the next cached forward starts at position 0. */
  resetCache(): void {
    for (const l of this.statefulLayers()) l.resetCache!();
  }

  /** Layers with a cache (setCacheMode and resetCache), nested ones included, in execution order. */
  private statefulLayers(): Layer[] {
    const out: Layer[] = [];
    const visit = (l: Layer): void => {
      if (l.setCacheMode && l.resetCache) out.push(l);
      for (const c of l.children) visit(c.layer);
    };
    for (const n of this.nodes) visit(n.layer);
    return out;
  }

  /** Forward that records what backward needs. `seed` drives stochastic layers in training. */
  forwardTape(rawInput: Tensor<TensorData>, opts: { training: boolean; seed: number }): Tape {
    this.checkInput(rawInput);
    // An integer tensor only reaches a first layer that reads ids (checkInput); layers see `Tensor`.
    const input = finiteFlushed(rawInput, 'input') as Tensor;
    const stepRng = opts.training ? new Prng(opts.seed) : null;
    const inputs: Tensor[] = [];
    const outputs: Tensor[] = [];
    const saved: unknown[] = [];
    const ctxs: RunContext[] = [];
    for (const node of this.nodes) {
      const x = node.source < 0 ? input : outputs[node.source];
      const ctx: RunContext = { training: opts.training, rng: stepRng ? stepRng.fork(`layers.${node.index}`) : null };
      inputs.push(x);
      ctxs.push(ctx);
      if (node.disabled) {
        outputs.push(x);
        saved.push(null);
        continue;
      }
      const skip = node.layer.usesSkip ? inputs[node.index - 1] : undefined;
      const r = node.layer.forward(x, ctx, skip);
      outputs.push(r.y);
      saved.push(r.saved);
    }
    return { input, inputs, outputs, saved, ctx: ctxs };
  }

  /** Backward from dL/d(output); adds into every Param.grad and returns dL/d(input). */
  backward(tape: Tape, dy: Tensor): Tensor {
    const last = this.nodes.length - 1;
    const expect = [tape.input.shape[0], ...this.outputShape];
    if (!shapeEquals(dy.shape, expect)) fail('SHAPE_MISMATCH', `grad_output has shape ${shapeStr(dy.shape)}, expected ${shapeStr(expect)}`, 'grad_output');
    // dL/dy enters the engine like any input: finite, subnormals flushed (docs/determinism.md).
    dy = finiteFlushed(dy, 'grad_output') as Tensor;
    const grads: (Tensor | null)[] = this.nodes.map(() => null);
    let gradInput: Tensor | null = null;
    const accumulate = (target: number, g: Tensor): void => {
      if (target < 0) gradInput = gradInput ? sum(gradInput, g) : g;
      else grads[target] = grads[target] ? sum(grads[target]!, g) : g;
    };
    grads[last] = dy;
    for (let i = last; i >= 0; i--) {
      const g = grads[i];
      if (!g) continue;
      const node = this.nodes[i];
      if (node.disabled) {
        accumulate(node.source, g);
        continue;
      }
      const r = node.layer.backward(tape.saved[i], g, tape.ctx[i]);
      accumulate(node.source, r.dx);
      if (r.dskip) accumulate(this.nodes[i - 1].source, r.dskip);
    }
    return gradInput ?? Tensor.zeros(tape.input.shape);
  }

  private checkInput(input: Tensor<TensorData>): void {
    if (input.dtype !== 'f32' && !this.acceptsIntegerInput()) fail('INPUT_INVALID', `expected f32 input, got ${input.dtype}`, 'input');
    const expect = this.inputShape;
    if (input.shape.length !== expect.length + 1 || !shapeEquals(input.shape.slice(1), expect)) {
      fail('SHAPE_MISMATCH', `input has shape ${shapeStr(input.shape)}, expected [batch, ${expect.join(', ')}]`, 'input');
    }
    if (input.shape[0] < 1) fail('SHAPE_MISMATCH', 'input batch is empty', 'input');
  }

  /** i32 / i64 inputs are token ids: accepted when the first node (not disabled) reads ids (embedding). */
  private acceptsIntegerInput(): boolean {
    const first = this.nodes[0];
    return !first.disabled && first.layer.integerInput === true;
  }

  // ---------------------------------------------------------------- backends (docs/webgpu.md)
  private backendImpl: NetworkBackend | null = null;

  /** The backend forwardAsync runs on: `cpu` (the default) or `webgpu`. */
  get backend(): BackendName {
    return this.backendImpl?.name ?? 'cpu';
  }

  /**
   * Selects the backend of forwardAsync. `webgpu` acquires a device (from `opts.gpu`, else
   * navigator.gpu; or runs on `opts.context`) and fails with BACKEND_UNAVAILABLE when there is
   * none; the previous backend is released only once the new one is ready. Results are the same
   * bits on every backend.
   */
  async useBackend(name: BackendName, opts: BackendOptions = {}): Promise<BackendReport> {
    if (!(BACKENDS as readonly string[]).includes(name)) fail('CONFIG_INVALID', `unknown backend '${String(name)}'; expected one of ${BACKENDS.join(', ')}`, 'backend');
    if (name === 'cpu') {
      this.releaseBackend();
      return { backend: 'cpu' };
    }
    const next = await WebGpuBackend.create(this, opts);
    this.releaseBackend();
    this.backendImpl = next;
    return next.report();
  }

  /** The selected backend's report (adapter, where each layer runs). */
  backendReport(): BackendReport {
    return this.backendImpl ? this.backendImpl.report() : { backend: 'cpu' };
  }

  /** Frees the backend's device memory and returns to the CPU backend. */
  releaseBackend(): void {
    const b = this.backendImpl;
    this.backendImpl = null;
    b?.release();
  }

  /**
   * Inference on the selected backend: the same contract and the same bits as forward().
   * On the CPU backend it is forward() itself.
   */
  async forwardAsync(input: Tensor<TensorData>, opts: ForwardOptions = {}): Promise<Tensor> {
    const backend = this.backendImpl;
    if (!backend) return this.forward(input, opts);
    this.checkInput(input);
    const x = finiteFlushed(input, 'input');
    if (!opts.cache) return backend.forward(x);
    const stateful = this.statefulLayers();
    for (const l of stateful) l.setCacheMode!(true);
    try {
      return await backend.forward(x);
    } finally {
      for (const l of stateful) l.setCacheMode!(false);
    }
  }

  /**
   * Forward with tape, then backward from dL/d(output) = `dy`, on the selected backend: returns
   * dL/d(input) and adds every parameter's gradient into its Param.grad (call zeroGrad first
   * for fresh gradients). The same bits as forwardTape(x, { training: false }) + backward on
   * every backend. Integer (token id) inputs get a zero dL/d(input), as on the CPU.
   */
  async gradAsync(input: Tensor<TensorData>, dy: Tensor): Promise<Tensor> {
    const backend = this.backendImpl;
    if (!backend) return this.backward(this.forwardTape(input, { training: false, seed: 0 }), dy);
    this.checkInput(input);
    const x = finiteFlushed(input, 'input');
    const expect = [x.shape[0], ...this.outputShape];
    if (!(dy instanceof Tensor) || dy.dtype !== 'f32') fail('INPUT_INVALID', 'expected an f32 tensor', 'grad_output');
    if (!shapeEquals(dy.shape, expect)) fail('SHAPE_MISMATCH', `grad_output has shape ${shapeStr(dy.shape)}, expected ${shapeStr(expect)}`, 'grad_output');
    return backend.grad(x, finiteFlushed(dy, 'grad_output') as Tensor);
  }

  /** The selected non-CPU backend, for the training loop (core/train/trainer.ts). */
  get backendBinding(): NetworkBackend | null {
    return this.backendImpl;
  }

  /**
   * Tells backends holding copies of the weights that parameter values were written directly
   * (`param.value.data`); setWeights and the optimizers do this themselves.
   */
  markWeightsChanged(): void {
    for (const { param } of this.named) markChanged(param.value);
  }

  /** All weights by full name (copies). */
  getWeights(): Map<string, Tensor> {
    return new Map(this.named.map(({ name, param }) => [name, param.value.clone()]));
  }

  /**
   * Replace weights by full name. All-or-nothing: every name must exist, every shape must
   * match and values must be finite, or nothing changes. With `complete`, every parameter must be given.
   */
  setWeights(weights: ReadonlyMap<string, Tensor>, opts: { complete?: boolean; source?: string } = {}): void {
    const where = opts.source ?? 'weights';
    const byName = new Map(this.named.map((p) => [p.name, p.param]));
    for (const [name, t] of weights) {
      const p = byName.get(name);
      if (!p) fail('WEIGHTS_INVALID', `tensor '${name}' does not belong to this network (it has ${this.named.length} parameters, e.g. ${this.named.slice(0, 3).map((n) => n.name).join(', ')})`, where);
      if (!shapeEquals(p.value.shape, t.shape)) fail('WEIGHTS_INVALID', `tensor '${name}' has shape ${shapeStr(t.shape)}, the network needs ${shapeStr(p.value.shape)}`, where);
      if (t.dtype !== 'f32') fail('WEIGHTS_INVALID', `tensor '${name}' has dtype ${t.dtype}, expected f32`, where);
      assertFinite(t, `${where}: ${name}`, 'WEIGHTS_INVALID');
    }
    if (opts.complete) {
      const missing = this.named.filter((p) => !weights.has(p.name)).map((p) => p.name);
      if (missing.length) fail('WEIGHTS_INVALID', `missing ${missing.length} tensor(s): ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''}`, where);
    }
    for (const [name, t] of weights) {
      const p = byName.get(name)!;
      p.value.data.set(flushSubnormals(t).data as Float32Array);
      markChanged(p.value);
    }
  }

  /** Heddle's canonical config JSON (what persistence stores). */
  configJSON(): JsonObject {
    return configToJSON(this.config);
  }

  describe(): Blueprint {
    const bp = (layer: Layer, name: string): LayerBlueprint => {
      const own = layer.params.reduce((n, p) => n + p.value.size, 0);
      const children = layer.children.map((c) => bp(c.layer, `${name}.${c.prefix}`));
      const out: LayerBlueprint = {
        name,
        type: layer.type,
        parameters: own + children.reduce((n, c) => n + c.parameters, 0),
        input_shape: [...layer.inputShape],
        output_shape: [...layer.outputShape],
      };
      if (typeof layer.config.activation === 'string') out.activation = layer.config.activation;
      if (children.length) out.children = children;
      return out;
    };
    const layers = this.nodes.map((n) => {
      const b = bp(n.layer, `layers.${n.index}`);
      const withPos: LayerBlueprint = { ...b, position: n.pos };
      if (n.disabled) withPos.disabled = true;
      if (n.remote) withPos.remote_link = n.remote;
      return withPos;
    });
    return {
      id: this.config.id,
      grid: { depth: this.config.depth, rows: this.config.rows, cols: this.config.cols, layers_per_cell: this.config.layers_per_cell },
      batch_size: this.config.batch_size,
      input_shape: [...this.inputShape],
      output_shape: [...this.outputShape],
      total_parameters: this.parameterCount(),
      layers,
    };
  }
}

function sum(a: Tensor, b: Tensor): Tensor {
  const out = a.clone();
  addInto(out.data, b.data);
  return out;
}

/** Build a layer (and, recursively, its children) with parameters registered under `prefix`. */
function buildLayer(cfg: LayerConfig, inputShape: Shape, prefix: string, where: string, skipShape: Shape | null, rng: Prng, named: NamedParam[]): Layer {
  const ctx: BuildContext & { skipShape: Shape | null } = {
    prefix,
    where,
    skipShape,
    param(name: string, shape: readonly number[], init: InitSpec): Param {
      const full = `${prefix}.${name}`;
      const value = new Tensor(shape, initialize(init, shape, rng.fork(full)));
      const p: Param = { name, value, grad: Tensor.zeros(shape) };
      named.push({ name: full, param: p });
      return p;
    },
    buildChild(child: LayerConfig, childInput: Shape, childPrefix: string, childWhere: string, childSkip: Shape | null = null): Layer {
      return buildLayer(child, childInput, `${prefix}.${childPrefix}`, childWhere, childSkip, rng, named);
    },
  };
  return kindOf(cfg).build(cfg, inputShape, ctx);
}
