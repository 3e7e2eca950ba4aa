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
import type { Tensor, TensorData } from '../../tensor.ts';
import type { BackendReport, LayerPlacement, NetworkBackend } from '../backend.ts';
import { changeCount } from '../versions.ts';
import { type WebGpuContext, type WebGpuOptions, acquireWebGpu } from './device.ts';
import { BufferUsage, type GpuBuffer } from './gpu.ts';
import type { GpuCompileContext, LayerOp } from './kernel.ts';
import { gpuKernelFor } from './kernels.ts';
import { type Kernel, Run, type RunPools, type Val, createPools } from './run.ts';
import { type ShaderSpec, buildShader } from './shader.ts';

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
  const visit = (layer: Layer, name: string): void => {
    const k = gpuKernelFor(layer);
    if ('reason' in k) {
      out.push({ name, type: layer.type, device: 'cpu', reason: k.reason });
      return;
    }
    out.push({ name, type: layer.type, device: 'gpu' });
    for (const c of layer.children) visit(c.layer, `${name}.${c.prefix}`);
  };
  for (const n of net.nodes) if (!n.disabled) visit(n.layer, `layers.${n.index}`);
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

export class WebGpuBackend implements NetworkBackend {
  readonly name = 'webgpu' as const;
  private readonly plans = new Map<number, Promise<Plan>>();
  private readonly weights = new Map<Param, Resident>();
  private readonly pools: RunPools = createPools();
  private released = false;
  /** Parameter uploads so far (each parameter once, then once per change). */
  uploads = 0;

  private constructor(private readonly net: Network, readonly ctx: WebGpuContext, private readonly ownsContext: boolean) {}

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
    if (this.ownsContext) {
      this.ctx.destroy();
      return;
    }
    for (const r of this.weights.values()) r.buffer.destroy();
    this.weights.clear();
    this.pools.storage.destroy();
    this.pools.staging.destroy();
  }

  forward(input: Tensor<TensorData>): Promise<Tensor> {
    if (this.released) fail('BACKEND_UNAVAILABLE', 'this network released its webgpu backend; call useBackend again', 'backend webgpu');
    this.ctx.check();
    return this.ctx.exclusive(() => this.forwardNow(input));
  }

  private async forwardNow(input: Tensor<TensorData>): Promise<Tensor> {
    const batch = input.shape[0];
    const plan = await this.plan(batch);
    this.syncWeights();
    const device = this.ctx.device;
    const run = new Run(this.ctx, this.pools);
    device.pushErrorScope('out-of-memory');
    device.pushErrorScope('validation');
    let result: Tensor | null = null;
    let failure: unknown = null;
    try {
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
      result = (await run.cpu(outputs[outputs.length - 1])) as Tensor;
    } catch (e) {
      failure = e;
    }
    try {
      await run.finish();
    } catch (e) {
      failure ??= e;
    }
    const validation = await device.popErrorScope().catch(() => null);
    const oom = await device.popErrorScope().catch(() => null);
    if (this.ctx.lostReason !== null) this.ctx.check();
    if (oom) throw new HeddleError('BACKEND_UNAVAILABLE', `the GPU ran out of memory during the forward pass: ${oom.message}`, 'backend webgpu');
    if (validation) throw new HeddleError('INTERNAL', `WebGPU rejected a command of the forward pass: ${validation.message}`, 'backend webgpu');
    if (failure) throw failure;
    return result!;
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
          const buffer = ctx.device.createBuffer({ size: Math.max(4, p.value.size * 4), usage: BufferUsage.STORAGE | BufferUsage.COPY_DST, label: `${prefix}.${p.name}` });
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
