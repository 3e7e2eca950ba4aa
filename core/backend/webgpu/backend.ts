/**
 * The WebGPU backend of one Network: compiled plans per batch size, resident weights, and
 * the forward pass (docs/webgpu.md).
 *
 * - Plans: each node's layer compiled to a LayerOp for one batch size (shapes baked into the
 *   WGSL); cached per batch size, pipelines cached per device by source text.
 * - Weights: each parameter a GPU kernel reads is uploaded once into its own buffer and stays
 *   there; before every forward, parameters whose change counter moved (setWeights, an
 *   optimizer step, markWeightsChanged: core/backend/versions.ts) are uploaded again.
 * - Forward: every dispatch recorded into one command encoder, the output read back once;
 *   a layer without a GPU kernel splits the pass (its input read back, its output uploaded).
 * - Errors: validation and out-of-memory error scopes around each pass; a lost device gives
 *   BACKEND_UNAVAILABLE.
 */
import { HeddleError, fail } from '../../errors.ts';
import type { Layer, Param, RunContext } from '../../layers/layer.ts';
import type { Network } from '../../network.ts';
import { Tensor, type TensorData } from '../../tensor.ts';
import type { BackendReport, LayerPlacement, NetworkBackend } from '../backend.ts';
import { changeCount } from '../versions.ts';
import { type WebGpuContext, type WebGpuOptions, acquireWebGpu } from './device.ts';
import { BufferUsage, type GpuBuffer } from './gpu.ts';
import type { GpuCompileContext, GpuTrainContext, LayerOp, TrainOp } from './kernel.ts';
import { gpuKernelFor } from './kernels.ts';
import { type Kernel, Run, type RunPools, type Val, createPools } from './run.ts';
import { type ShaderSpec, buildShader } from './shader.ts';
import { HostSync, OptimizerSession, type StepSettings, type TrainHost, type TrainPlan, cpuTrainOp, forwardBackward, hostLoss, stepContexts } from './train.ts';
import type { Optimizer } from '../../train/optimizers.ts';

const INFERENCE: RunContext = { training: false, rng: null };

interface Resident {
  readonly buffer: GpuBuffer;
  version: number;
}

interface Plan {
  readonly ops: (LayerOp | null)[];
}

/** Where each layer runs: GPU containers list their children; a CPU layer's children run with it. */
export function layerPlacements(net: Network): LayerPlacement[] {
  const out: LayerPlacement[] = [];
  const visit = (layer: Layer, name: string, parentTrainsOnCpu: boolean): void => {
    const k = gpuKernelFor(layer);
    if ('reason' in k) {
      out.push({ name, type: layer.type, device: 'cpu', reason: k.reason, training: 'cpu', trainingReason: k.reason });
      return;
    }
    const why = parentTrainsOnCpu
      ? 'its container trains on the CPU'
      : !k.kernel.compileTrain
        ? `no GPU backward for ${layer.type} yet`
        : (k.kernel.trainUnsupported?.(layer) ?? null);
    out.push({ name, type: layer.type, device: 'gpu', training: why ? 'cpu' : 'gpu', ...(why ? { trainingReason: why } : {}) });
    for (const c of layer.children) visit(c.layer, `${name}.${c.prefix}`, why !== null);
  };
  for (const n of net.nodes) if (!n.disabled) visit(n.layer, `layers.${n.index}`, false);
  return out;
}

/** A layer that runs on the CPU inside a GPU pass: its inputs come back to the host. */
function cpuOp(layer: Layer): LayerOp {
  return async (run, x, skip) => {
    const xt = await run.cpu(x);
    const st = skip ? await run.cpu(skip) : undefined;
    const r = layer.forward(xt as Tensor, INFERENCE, st as Tensor | undefined);
    return { kind: 'cpu', tensor: r.y };
  };
}

export class WebGpuBackend implements NetworkBackend, TrainHost {
  readonly name = 'webgpu' as const;
  private readonly plans = new Map<number, Promise<Plan>>();
  private readonly trainPlans = new Map<number, Promise<TrainPlan>>();
  /** Gradient buffers (training), one per parameter, resident like the weights. */
  private readonly grads = new Map<Param, GpuBuffer>();
  private readonly sync: HostSync = new HostSync(this);
  /** The optimizer state on the device during one training call (trainAsync). */
  private session: OptimizerSession | null = null;
  private readonly weights = new Map<Param, Resident>();
  private readonly pools: RunPools = createPools();
  private released = false;
  /** Parameter uploads so far (each parameter once, then once per change). */
  uploads = 0;

  private constructor(readonly net: Network, readonly ctx: WebGpuContext, private readonly ownsContext: boolean) {}

  /** Binds `net` to a device: `context` when given, else a new one from acquireWebGpu(opts). */
  static async create(net: Network, opts: WebGpuOptions & { context?: WebGpuContext } = {}): Promise<WebGpuBackend> {
    const ctx = opts.context ?? (await acquireWebGpu(opts));
    ctx.check();
    return new WebGpuBackend(net, ctx, !opts.context);
  }

  report(): BackendReport {
    const w = this.residentWeights();
    return { backend: 'webgpu', adapter: this.ctx.report, layers: layerPlacements(this.net), stats: { uploads: this.uploads, residentParams: w.count, residentBytes: w.bytes, plans: this.plans.size } };
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.plans.clear();
    this.trainPlans.clear();
    this.session?.destroy();
    this.session = null;
    if (this.ownsContext) {
      this.ctx.destroy();
      return;
    }
    for (const r of this.weights.values()) r.buffer.destroy();
    this.weights.clear();
    for (const b of this.grads.values()) b.destroy();
    this.grads.clear();
    this.pools.storage.destroy();
    this.pools.staging.destroy();
  }

  forward(input: Tensor<TensorData>): Promise<Tensor> {
    if (this.released) fail('BACKEND_UNAVAILABLE', 'this network released its webgpu backend; call useBackend again', 'backend webgpu');
    this.ctx.check();
    return this.ctx.exclusive(() => this.forwardNow(input));
  }

  private async forwardNow(input: Tensor<TensorData>): Promise<Tensor> {
    const plan = await this.plan(input.shape[0]);
    this.syncWeights();
    return this.pass('forward pass', async (run) => {
      const inputs: Val[] = [];
      const outputs: Val[] = [];
      const first: Val = { kind: 'cpu', tensor: input };
      for (const node of this.net.nodes) {
        const x = node.source < 0 ? first : outputs[node.source];
        inputs.push(x);
        const op = plan.ops[node.index];
        if (!op) {
          outputs.push(x);
          continue;
        }
        const skip = node.layer.usesSkip ? inputs[node.index - 1] : undefined;
        outputs.push(await op(run, x, skip));
      }
      return (await run.cpu(outputs[outputs.length - 1])) as Tensor;
    });
  }

  // ------------------------------------------------------------------ training (train.ts)

  /** Runs `fn` with a fresh Run inside validation / out-of-memory error scopes (one pass). */
  private async pass<T>(what: string, fn: (run: Run) => Promise<T>): Promise<T> {
    const device = this.ctx.device;
    const run = new Run(this.ctx, this.pools);
    device.pushErrorScope('out-of-memory');
    device.pushErrorScope('validation');
    let result: T | undefined;
    let failure: unknown = null;
    let ok = false;
    try {
      result = await fn(run);
      ok = true;
    } catch (e) {
      failure = e;
    }
    try {
      await run.finish();
    } catch (e) {
      failure ??= e;
      ok = false;
    }
    const validation = await device.popErrorScope().catch(() => null);
    const oom = await device.popErrorScope().catch(() => null);
    if (this.ctx.lostReason !== null) this.ctx.check();
    if (oom) throw new HeddleError('BACKEND_UNAVAILABLE', `the GPU ran out of memory during the ${what}: ${oom.message}`, 'backend webgpu');
    if (validation) throw new HeddleError('INTERNAL', `WebGPU rejected a command of the ${what}: ${validation.message}`, 'backend webgpu');
    if (!ok) throw failure;
    return result as T;
  }

  private live(): void {
    if (this.released) fail('BACKEND_UNAVAILABLE', 'this network released its webgpu backend; call useBackend again', 'backend webgpu');
    this.ctx.check();
  }

  weightBuffer(p: Param): GpuBuffer {
    const r = this.weights.get(p);
    if (r) return r.buffer;
    const b = this.compileContext('weights', 1).weight(p);
    this.syncWeights();
    return b;
  }

  gradBuffer(p: Param): GpuBuffer {
    let b = this.grads.get(p);
    if (!b) {
      const size = p.grad.size;
      this.compileContext('gradients', 1).need(size, 'a parameter gradient');
      b = this.ctx.device.createBuffer({ size: Math.max(4, size * 4), usage: BufferUsage.STORAGE | BufferUsage.COPY_DST | BufferUsage.COPY_SRC, label: 'gradient' });
      this.grads.set(p, b);
    }
    return b;
  }

  trainContext(prefix: string, batch: number): GpuTrainContext {
    return {
      ...this.compileContext(prefix, batch),
      grad: (p: Param) => this.gradBuffer(p),
      childTrain: (layer: Layer, childPrefix: string) => this.compileTrainLayer(layer, `${prefix}.${childPrefix}`, batch),
    };
  }

  private trainPlan(batch: number): Promise<TrainPlan> {
    let p = this.trainPlans.get(batch);
    if (!p) {
      p = (async () => {
        const ops: (TrainOp | null)[] = [];
        for (const node of this.net.nodes) ops.push(node.disabled ? null : await this.compileTrainLayer(node.layer, `layers.${node.index}`, batch));
        return { batch, ops, sums: new Map() };
      })();
      this.trainPlans.set(batch, p);
      p.catch(() => this.trainPlans.delete(batch));
    }
    return p;
  }

  private compileTrainLayer(layer: Layer, prefix: string, batch: number): Promise<TrainOp> {
    const k = gpuKernelFor(layer);
    if ('kernel' in k && k.kernel.compileTrain && !(k.kernel.trainUnsupported?.(layer))) return k.kernel.compileTrain(layer, this.trainContext(prefix, batch));
    return Promise.resolve(cpuTrainOp(layer, this, this.sync));
  }

  /** Every parameter resident (value and gradient buffers), host changes uploaded. */
  private residentAll(): void {
    for (const { param } of this.net.parameters()) {
      this.weightBuffer(param);
      this.gradBuffer(param);
    }
    this.syncWeights();
  }

  /** forwardTape + backward (training: false) on the GPU; gradients added into Param.grad. */
  grad(input: Tensor<TensorData>, dy: Tensor): Promise<Tensor> {
    this.live();
    return this.ctx.exclusive(async () => {
      const plan = await this.trainPlan(input.shape[0]);
      const named = this.net.parameters();
      const before = named.map(({ param }) => param.grad.data.slice());
      try {
        return await this.pass('backward pass', async (run) => {
          this.residentAll();
          for (const { param } of named) run.write(this.gradBuffer(param), param.grad.data);
          const ctxs = stepContexts(this.net, false, 0);
          const dx = await forwardBackward(run, this, plan, input, ctxs, async () => ({ kind: 'cpu', tensor: dy }));
          const dxHost = await run.cpu(dx);
          const grads = await run.cpuMany(named.map(({ param }) => ({ kind: 'gpu' as const, shape: param.grad.shape, buffer: this.gradBuffer(param) })));
          named.forEach(({ param }, i) => param.grad.data.set(grads[i]));
          return dxHost as Tensor;
        });
      } catch (e) {
        named.forEach(({ param }, i) => param.grad.data.set(before[i]));
        throw e;
      }
    });
  }

  /**
   * One training step on the GPU (trainer.ts trainAsync): zeroed gradients, forward with
   * tape, the loss on the host, backward, clipping, the optimizer update. Returns the loss.
   * The host copies are brought up to date by finishTraining.
   */
  trainStep(input: Tensor<TensorData>, s: StepSettings): Promise<number> {
    this.live();
    return this.ctx.exclusive(async () => {
      const plan = await this.trainPlan(input.shape[0]);
      return this.pass('training step', async (run) => {
        this.residentAll();
        if (!this.session || this.session.optimizer !== s.optimizer) {
          this.session?.destroy();
          this.session = new OptimizerSession(s.optimizer, this);
        }
        const named = this.net.parameters();
        for (const { param } of named) run.clear(this.gradBuffer(param));
        let loss = 0;
        await forwardBackward(run, this, plan, input, stepContexts(this.net, true, s.seed), async (out) => {
          const r = await hostLoss(run, out, s);
          loss = r.loss;
          return r.grad;
        });
        await this.session.record(run, s.lr, s.clipNorm);
        for (const { param } of named) this.sync.gpuNewer.add(param);
        return loss;
      });
    });
  }

  /** After the last step: weights, gradients and optimizer state back into the host objects. */
  finishTraining(optimizer: Optimizer): Promise<void> {
    this.live();
    return this.ctx.exclusive(() =>
      this.pass('read-back after training', async (run) => {
        const named = this.net.parameters();
        const session = this.session;
        const state = session && session.optimizer === optimizer ? session.stateVals() : [];
        const vals = [
          ...named.map(({ param }) => ({ kind: 'gpu' as const, shape: param.value.shape, buffer: this.weightBuffer(param) })),
          ...named.map(({ param }) => ({ kind: 'gpu' as const, shape: param.grad.shape, buffer: this.gradBuffer(param) })),
          ...state.map((s) => s.val),
        ];
        const host = await run.cpuMany(vals);
        if (session && session.optimizer === optimizer) {
          const tensors = new Map<string, Tensor>();
          state.forEach((st, i) => tensors.set(st.name, new Tensor(st.val.shape, host[2 * named.length + i])));
          optimizer.importState({ type: optimizer.spec.type, step: session.t, tensors });
        }
        named.forEach(({ param }, i) => {
          param.value.data.set(host[i]);
          param.grad.data.set(host[named.length + i]);
        });
        this.sync.gpuNewer.clear();
        this.sync.commit();
        this.session?.destroy();
        this.session = null;
      }),
    );
  }

  /** A training call failed: the host keeps its values; the GPU copies are uploaded again before their next use. */
  abortTraining(): void {
    this.sync.restore();
    for (const { param } of this.net.parameters()) {
      const r = this.weights.get(param);
      if (r) r.version = -1;
    }
    this.session?.destroy();
    this.session = null;
  }

  private plan(batch: number): Promise<Plan> {
    let p = this.plans.get(batch);
    if (!p) {
      p = this.compile(batch);
      this.plans.set(batch, p);
      p.catch(() => this.plans.delete(batch));
    }
    return p;
  }

  private async compile(batch: number): Promise<Plan> {
    const ops: (LayerOp | null)[] = [];
    for (const node of this.net.nodes) ops.push(node.disabled ? null : await this.compileLayer(node.layer, `layers.${node.index}`, batch));
    return { ops };
  }

  private compileLayer(layer: Layer, prefix: string, batch: number): Promise<LayerOp> {
    const k = gpuKernelFor(layer);
    if ('reason' in k) return Promise.resolve(cpuOp(layer));
    return k.kernel.compile(layer, this.compileContext(prefix, batch));
  }

  private compileContext(prefix: string, batch: number): GpuCompileContext {
    const ctx = this.ctx;
    const maxWorkgroups = ctx.limit('maxComputeWorkgroupsPerDimension') || 65535;
    const need = (elements: number, what: string): void => {
      const bytes = elements * 4;
      const bind = ctx.limit('maxStorageBufferBindingSize');
      const buf = ctx.limit('maxBufferSize');
      if ((bind && bytes > bind) || (buf && bytes > buf)) {
        fail('UNSUPPORTED', `${what} needs ${bytes} bytes in one GPU buffer; this adapter allows ${Math.min(bind || Infinity, buf || Infinity)} (maxStorageBufferBindingSize / maxBufferSize); use the cpu backend or a smaller batch`, prefix);
      }
    };
    return {
      gpu: ctx,
      batch,
      prefix,
      maxWorkgroups,
      need,
      kernel: async (spec: ShaderSpec, wg: readonly [number, number?, number?]): Promise<Kernel> => {
        const code = buildShader(spec);
        const access = spec.buffers.map((b) => b.access);
        const { pipeline, layout } = await ctx.pipeline(code, access, spec.label);
        return { label: spec.label, pipeline, layout, workgroups: [wg[0], wg[1] ?? 1, wg[2] ?? 1], bindings: access.length };
      },
      weight: (p: Param): GpuBuffer => {
        let r = this.weights.get(p);
        if (!r) {
          need(p.value.size, `parameter ${prefix}.${p.name}`);
          const buffer = ctx.device.createBuffer({ size: Math.max(4, p.value.size * 4), usage: BufferUsage.STORAGE | BufferUsage.COPY_DST | BufferUsage.COPY_SRC, label: `${prefix}.${p.name}` });
          r = { buffer, version: -1 };
          this.weights.set(p, r);
        }
        return r.buffer;
      },
      child: (layer: Layer, childPrefix: string): Promise<LayerOp> => this.compileLayer(layer, `${prefix}.${childPrefix}`, batch),
    };
  }

  /** Uploads every resident parameter whose values changed since its last upload. */
  private syncWeights(): void {
    for (const [p, r] of this.weights) {
      const v = changeCount(p.value);
      if (v === r.version) continue;
      if (p.value.size > 0) this.ctx.device.queue.writeBuffer(r.buffer, 0, p.value.data);
      r.version = v;
      this.uploads++;
    }
  }

  /** Resident parameter count and bytes (for tests and reports). */
  residentWeights(): { count: number; bytes: number } {
    let bytes = 0;
    for (const r of this.weights.values()) bytes += r.buffer.size;
    return { count: this.weights.size, bytes };
  }
}
