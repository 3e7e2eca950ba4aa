/**
 * WebGPU device acquisition and the per-device context (pipeline cache, the -0.0 barrier
 * buffer, error scopes, lost-device tracking).
 *
 * Where the `GPU` object comes from (docs/webgpu.md):
 *   - browsers and Deno: `navigator.gpu` (the default when no `gpu` is given);
 *   - Node and Bun: the npm package `webgpu` (Dawn), loaded by abi/node/webgpu.ts and passed
 *     in as `{ gpu }` (the core never imports it: it must bundle for browsers).
 * When no adapter can be had, acquireWebGpu throws HeddleError BACKEND_UNAVAILABLE saying why.
 */
import { HeddleError, fail } from '../../errors.ts';
import {
  BufferUsage,
  type GpuAdapter,
  type GpuAdapterInfoLike,
  type GpuBindGroupLayout,
  type GpuBuffer,
  type GpuComputePipeline,
  type GpuDevice,
  type GpuEntry,
  STAGE_COMPUTE,
} from './gpu.ts';

export interface WebGpuOptions {
  /** A `GPU` object: navigator.gpu, or `create()` of the `webgpu` npm package (abi/node/webgpu.ts). Default: globalThis.navigator.gpu. */
  gpu?: GpuEntry;
  /** Passed to requestAdapter. */
  powerPreference?: 'high-performance' | 'low-power';
  /** Passed to requestAdapter: ask for a software (fallback) adapter. */
  forceFallbackAdapter?: boolean;
}

/** What the backend runs on, and the device limits it asked for (and got). */
export interface AdapterReport {
  readonly backend: 'webgpu';
  /** Arithmetic mode: only the deterministic one exists so far. */
  readonly mode: 'deterministic';
  /** Where the GPU object came from. */
  readonly source: 'injected' | 'navigator.gpu';
  readonly vendor: string;
  readonly architecture: string;
  readonly device: string;
  readonly description: string;
  readonly isFallbackAdapter: boolean;
  /** The device limits the backend relies on, as granted. */
  readonly limits: Readonly<Record<string, number>>;
}

/** Limits requested at the adapter's maximum (large weights and activations). */
const RAISED_LIMITS = ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxStorageBuffersPerShaderStage', 'maxComputeWorkgroupStorageSize'] as const;
/** Limits reported (and checked by the kernels). */
const REPORTED_LIMITS = [
  ...RAISED_LIMITS,
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupsPerDimension',
  'maxBindGroups',
] as const;

export type BindingAccess = 'read' | 'read_write';

interface CompiledPipeline {
  readonly pipeline: GpuComputePipeline;
  readonly layout: GpuBindGroupLayout;
}

/** A WebGPU device with what every kernel shares. One context may serve several networks. */
export class WebGpuContext {
  readonly device: GpuDevice;
  readonly report: AdapterReport;
  /** A storage buffer holding one f32 -0.0: the run-time value of the contraction barrier (binding 0 of every kernel). */
  readonly nz: GpuBuffer;
  /** Why the device was lost, once it is. */
  lostReason: string | null = null;
  private destroyed = false;
  private readonly pipelines = new Map<string, Promise<CompiledPipeline>>();
  private readonly layouts = new Map<string, GpuBindGroupLayout>();
  private queueTail: Promise<unknown> = Promise.resolve();
  /** Keeps the GPU object (and with Dawn, its instance) alive as long as the device. */
  private readonly entry: unknown;

  constructor(device: GpuDevice, report: AdapterReport, entry: unknown) {
    this.device = device;
    this.report = report;
    this.entry = entry;
    device.lost.then((info) => {
      if (!this.destroyed) this.lostReason = `${info.reason ?? 'unknown'}: ${info.message || 'no message'}`;
    }, () => undefined);
    this.nz = device.createBuffer({ size: 4, usage: BufferUsage.STORAGE | BufferUsage.COPY_DST, label: 'heddle_nz' });
    device.queue.writeBuffer(this.nz, 0, new Uint32Array([0x80000000]));
  }

  /** A device limit (0 when the implementation does not report it). */
  limit(name: string): number {
    const v = this.device.limits[name];
    return typeof v === 'number' ? v : 0;
  }

  /** Throws BACKEND_UNAVAILABLE when the device is gone. */
  check(): void {
    if (this.destroyed) fail('BACKEND_UNAVAILABLE', 'the WebGPU context was released', 'backend webgpu');
    if (this.lostReason !== null) fail('BACKEND_UNAVAILABLE', `the GPU device was lost (${this.lostReason}); choose the backend again to get a new device`, 'backend webgpu');
  }

  /**
   * Runs `fn` after every earlier exclusive call on this device has finished: error scopes are
   * per device, so two networks sharing it must not interleave their recordings.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queueTail.then(fn, fn);
    this.queueTail = run.then(() => undefined, () => undefined);
    return run;
  }

  bindGroupLayout(access: readonly BindingAccess[]): GpuBindGroupLayout {
    const key = access.join(',');
    let l = this.layouts.get(key);
    if (!l) {
      l = this.device.createBindGroupLayout({
        label: `heddle ${key}`,
        entries: [
          { binding: 0, visibility: STAGE_COMPUTE, buffer: { type: 'read-only-storage' } },
          ...access.map((a, i) => ({ binding: i + 1, visibility: STAGE_COMPUTE, buffer: { type: a === 'read' ? ('read-only-storage' as const) : ('storage' as const) } })),
        ],
      });
      this.layouts.set(key, l);
    }
    return l;
  }

  /**
   * A compute pipeline for WGSL `code` (entry point `main`), cached by source text. Binding 0
   * is the barrier buffer; bindings 1.. have the given access. A shader that fails to compile
   * is an INTERNAL error carrying the compiler's messages (a bug in a kernel generator).
   */
  pipeline(code: string, access: readonly BindingAccess[], label: string): Promise<CompiledPipeline> {
    const key = `${access.join(',')}\n${code}`;
    let p = this.pipelines.get(key);
    if (!p) {
      p = this.compile(code, access, label);
      this.pipelines.set(key, p);
      p.catch(() => this.pipelines.delete(key));
    }
    return p;
  }

  private async compile(code: string, access: readonly BindingAccess[], label: string): Promise<CompiledPipeline> {
    this.check();
    const d = this.device;
    d.pushErrorScope('validation');
    const module = d.createShaderModule({ code, label });
    const layout = this.bindGroupLayout(access);
    const pipelineLayout = d.createPipelineLayout({ bindGroupLayouts: [layout], label });
    let pipeline: GpuComputePipeline | null = null;
    let failure = '';
    try {
      pipeline = await d.createComputePipelineAsync({ layout: pipelineLayout, compute: { module, entryPoint: 'main' }, label });
    } catch (e) {
      failure = e instanceof Error ? e.message : String(e);
    }
    const err = await d.popErrorScope();
    if (!pipeline || err) {
      let messages = '';
      try {
        const info = await module.getCompilationInfo?.();
        messages = (info?.messages ?? []).filter((m) => m.type === 'error').map((m) => `line ${m.lineNum}:${m.linePos}: ${m.message}`).join('; ');
      } catch {
        // getCompilationInfo is optional
      }
      throw new HeddleError('INTERNAL', `the WGSL kernel '${label}' failed to compile on this adapter: ${messages || err?.message || failure || 'unknown error'}`, 'backend webgpu', code);
    }
    return { pipeline, layout };
  }

  /** Destroys the device: every buffer and pipeline made on it becomes invalid. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.pipelines.clear();
    this.layouts.clear();
    this.device.destroy();
    void this.entry;
  }

  get isDestroyed(): boolean {
    return this.destroyed;
  }
}

function unavailable(message: string): never {
  throw new HeddleError('BACKEND_UNAVAILABLE', message, 'backend webgpu');
}

function describeError(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Gets an adapter and a device. Throws BACKEND_UNAVAILABLE when there is no WebGPU
 * implementation, no adapter (no driver), or the device request fails.
 */
export async function acquireWebGpu(opts: WebGpuOptions = {}): Promise<WebGpuContext> {
  let entry = opts.gpu;
  let source: AdapterReport['source'] = 'injected';
  if (!entry) {
    const nav = (globalThis as { navigator?: { gpu?: GpuEntry } }).navigator;
    entry = nav?.gpu;
    source = 'navigator.gpu';
    if (!entry) {
      unavailable(
        'no WebGPU implementation: this runtime has no navigator.gpu. On Node.js and Bun pass { gpu } from ' +
          "abi/node/webgpu.ts (npm package 'webgpu'); in browsers WebGPU needs a secure context and a browser that enables it",
      );
    }
  }
  if (typeof (entry as GpuEntry).requestAdapter !== 'function') unavailable('the given gpu object has no requestAdapter(): pass navigator.gpu or the webgpu package\'s create([])');
  let adapter: GpuAdapter | null;
  try {
    const req: Record<string, unknown> = {};
    if (opts.powerPreference) req.powerPreference = opts.powerPreference;
    if (opts.forceFallbackAdapter) req.forceFallbackAdapter = true;
    adapter = (await entry.requestAdapter(req)) as GpuAdapter | null;
  } catch (e) {
    unavailable(`requestAdapter failed: ${describeError(e)}`);
  }
  if (!adapter) {
    unavailable(
      `${source === 'injected' ? 'the given GPU object' : 'navigator.gpu'} found no adapter: no usable GPU driver. On Linux the Vulkan loader ` +
        'needs an ICD: a GPU driver, Mesa lavapipe (Debian mesa-vulkan-drivers) or SwiftShader ' +
        '(VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json with Debian chromium installed)',
    );
  }
  let info: GpuAdapterInfoLike = adapter.info ?? {};
  if (!adapter.info && typeof adapter.requestAdapterInfo === 'function') {
    try {
      info = await adapter.requestAdapterInfo();
    } catch {
      info = {};
    }
  }
  const requiredLimits: Record<string, number> = {};
  for (const name of RAISED_LIMITS) {
    const v = adapter.limits[name];
    if (typeof v === 'number') requiredLimits[name] = v;
  }
  let device: GpuDevice;
  try {
    device = await adapter.requestDevice({ requiredLimits, label: 'heddle' });
  } catch (e) {
    unavailable(`the adapter '${info.description || info.vendor || 'unknown'}' refused a device: ${describeError(e)}`);
  }
  const limits: Record<string, number> = {};
  for (const name of REPORTED_LIMITS) {
    const v = device.limits[name];
    if (typeof v === 'number') limits[name] = v;
  }
  const report: AdapterReport = {
    backend: 'webgpu',
    mode: 'deterministic',
    source,
    vendor: String(info.vendor ?? ''),
    architecture: String(info.architecture ?? ''),
    device: String(info.device ?? ''),
    description: String(info.description ?? ''),
    isFallbackAdapter: Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter ?? false),
    limits,
  };
  return new WebGpuContext(device, report, entry);
}
