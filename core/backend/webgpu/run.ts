/**
 * One forward pass on the GPU: values, buffer pooling, recording and read-back.
 *
 * A pass records every dispatch into one command encoder (one compute pass) and submits it
 * when a value must come back to the host: at the end (the output, read back once), or when
 * a layer without a GPU kernel runs on the CPU (its input is read back, its output uploaded).
 * Intermediate buffers come from a pool and return to it once the pass's work is done.
 */
import { fail } from '../../errors.ts';
import { Tensor, type TensorData, shapeSize, shapeStr } from '../../tensor.ts';
import type { WebGpuContext } from './device.ts';
import { BufferUsage, type GpuBindGroupLayout, type GpuBuffer, type GpuCommandEncoder, type GpuComputePass, type GpuComputePipeline, MAP_READ } from './gpu.ts';

/** A tensor in a GPU storage buffer (f32, row-major; shape includes the batch). */
export interface GpuVal {
  readonly kind: 'gpu';
  readonly shape: readonly number[];
  readonly buffer: GpuBuffer;
}

/** A tensor on the host (a CPU fallback's output, or the network input). */
export interface CpuVal {
  readonly kind: 'cpu';
  readonly tensor: Tensor<TensorData>;
}

export type Val = GpuVal | CpuVal;

export function valShape(v: Val): readonly number[] {
  return v.kind === 'gpu' ? v.shape : v.tensor.shape;
}

/** A compiled kernel with its dispatch size (fixed: shapes are baked in). */
export interface Kernel {
  readonly label: string;
  readonly pipeline: GpuComputePipeline;
  readonly layout: GpuBindGroupLayout;
  readonly workgroups: readonly [number, number, number];
  /** Number of storage buffers it binds after the barrier buffer. */
  readonly bindings: number;
}

/** Reusable buffers by exact byte size. */
export class BufferPool {
  private readonly free = new Map<number, GpuBuffer[]>();
  private readonly owned = new Set<GpuBuffer>();

  constructor(private readonly usage: number, private readonly label: string) {}

  take(ctx: WebGpuContext, bytes: number): GpuBuffer {
    const size = Math.max(4, Math.ceil(bytes / 4) * 4);
    const list = this.free.get(size);
    const b = list?.pop();
    if (b) return b;
    const max = ctx.limit('maxBufferSize');
    if (max && size > max) fail('UNSUPPORTED', `needs a GPU buffer of ${size} bytes; this adapter allows ${max} (maxBufferSize)`, 'backend webgpu');
    const nb = ctx.device.createBuffer({ size, usage: this.usage, label: this.label });
    this.owned.add(nb);
    return nb;
  }

  give(b: GpuBuffer): void {
    const list = this.free.get(b.size);
    if (list) list.push(b);
    else this.free.set(b.size, [b]);
  }

  destroy(): void {
    for (const b of this.owned) b.destroy();
    this.owned.clear();
    this.free.clear();
  }
}

export interface RunPools {
  readonly storage: BufferPool;
  readonly staging: BufferPool;
}

export function createPools(): RunPools {
  return {
    storage: new BufferPool(BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST, 'heddle activations'),
    staging: new BufferPool(BufferUsage.MAP_READ | BufferUsage.COPY_DST, 'heddle readback'),
  };
}

export class Run {
  private encoder: GpuCommandEncoder | null = null;
  private pass: GpuComputePass | null = null;
  private readonly temps: GpuBuffer[] = [];
  private readonly staged: GpuBuffer[] = [];
  /** Dispatches recorded so far (all submissions). */
  dispatches = 0;
  /** Command buffers submitted so far. */
  submissions = 0;

  constructor(readonly ctx: WebGpuContext, private readonly pools: RunPools) {}

  /** A pooled storage buffer for `elements` f32 values, returned to the pool when the pass ends. */
  alloc(elements: number): GpuBuffer {
    const max = this.ctx.limit('maxStorageBufferBindingSize');
    if (max && elements * 4 > max) fail('UNSUPPORTED', `needs a tensor of ${elements} f32 values (${elements * 4} bytes) in one GPU buffer; this adapter binds at most ${max} bytes (maxStorageBufferBindingSize)`, 'backend webgpu');
    const b = this.pools.storage.take(this.ctx, elements * 4);
    this.temps.push(b);
    return b;
  }

  /** A new GPU tensor of this shape (contents undefined until a kernel writes it). */
  output(shape: readonly number[]): GpuVal {
    return { kind: 'gpu', shape: [...shape], buffer: this.alloc(shapeSize(shape)) };
  }

  /** The value on the GPU: uploaded when it is on the host (f32 only). */
  gpu(v: Val): GpuVal {
    if (v.kind === 'gpu') return v;
    const t = v.tensor;
    if (!(t.data instanceof Float32Array)) fail('INTERNAL', `a GPU kernel received a ${t.dtype} tensor ${shapeStr(t.shape)}; only f32 tensors go to the GPU`, 'backend webgpu');
    const buf = this.alloc(t.size);
    if (t.size > 0) this.ctx.device.queue.writeBuffer(buf, 0, t.data);
    return { kind: 'gpu', shape: t.shape, buffer: buf };
  }

  private enc(): GpuCommandEncoder {
    if (!this.encoder) this.encoder = this.ctx.device.createCommandEncoder({ label: 'heddle forward' });
    return this.encoder;
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }

  dispatch(k: Kernel, buffers: readonly GpuBuffer[]): void {
    if (buffers.length !== k.bindings) fail('INTERNAL', `kernel ${k.label} binds ${k.bindings} buffers, got ${buffers.length}`, 'backend webgpu');
    const group = this.ctx.device.createBindGroup({
      layout: k.layout,
      label: k.label,
      entries: [{ binding: 0, resource: { buffer: this.ctx.nz } }, ...buffers.map((b, i) => ({ binding: i + 1, resource: { buffer: b } }))],
    });
    if (!this.pass) this.pass = this.enc().beginComputePass({ label: 'heddle' });
    this.pass.setPipeline(k.pipeline);
    this.pass.setBindGroup(0, group);
    this.pass.dispatchWorkgroups(k.workgroups[0], k.workgroups[1], k.workgroups[2]);
    this.dispatches++;
  }

  /** Copies `bytes` bytes between buffers (ends the current compute pass). */
  copy(src: GpuBuffer, srcOffset: number, dst: GpuBuffer, dstOffset: number, bytes: number): void {
    this.endPass();
    this.enc().copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
  }

  /** Fills a buffer with +0.0 (zero bits), in recording order. */
  clear(buffer: GpuBuffer, bytes = buffer.size): void {
    this.endPass();
    this.enc().clearBuffer(buffer, 0, bytes);
  }

  /** Uploads host values into an existing buffer, after everything recorded so far has run. */
  write(buffer: GpuBuffer, data: Float32Array | Uint32Array): void {
    // queue.writeBuffer is ordered before command buffers submitted later: submit what was
    // recorded first, so commands recorded earlier do not see the new contents.
    this.submit();
    if (data.length > 0) this.ctx.device.queue.writeBuffer(buffer, 0, data);
  }

  /** Several values on the host with one submission (read-backs of many buffers at once). */
  async cpuMany(vals: readonly GpuVal[]): Promise<Float32Array[]> {
    const stagings: GpuBuffer[] = [];
    for (const v of vals) {
      const bytes = shapeSize(v.shape) * 4;
      const staging = this.pools.staging.take(this.ctx, bytes);
      this.staged.push(staging);
      stagings.push(staging);
      if (bytes > 0) this.copy(v.buffer, 0, staging, 0, bytes);
    }
    this.submit();
    try {
      await Promise.all(stagings.map((b) => b.mapAsync(MAP_READ, 0, b.size)));
    } catch (e) {
      this.ctx.check();
      throw e;
    }
    return vals.map((v, i) => {
      const n = shapeSize(v.shape);
      const out = new Float32Array(n);
      out.set(new Float32Array(stagings[i].getMappedRange(0, stagings[i].size), 0, n));
      stagings[i].unmap();
      return out;
    });
  }

  private submit(): void {
    this.endPass();
    if (this.encoder) {
      this.ctx.device.queue.submit([this.encoder.finish()]);
      this.encoder = null;
      this.submissions++;
    }
  }

  /** The value on the host: submits what was recorded and reads the buffer back. */
  async cpu(v: Val): Promise<Tensor<TensorData>> {
    if (v.kind === 'cpu') return v.tensor;
    const n = shapeSize(v.shape);
    const bytes = n * 4;
    if (bytes === 0) {
      this.submit();
      return new Tensor(v.shape, new Float32Array(0));
    }
    const staging = this.pools.staging.take(this.ctx, bytes);
    this.staged.push(staging);
    this.copy(v.buffer, 0, staging, 0, bytes);
    this.submit();
    try {
      await staging.mapAsync(MAP_READ, 0, staging.size);
    } catch (e) {
      this.ctx.check();
      throw e;
    }
    const out = new Float32Array(n);
    out.set(new Float32Array(staging.getMappedRange(0, staging.size), 0, n));
    staging.unmap();
    return new Tensor(v.shape, out);
  }

  /** Submits what is left, waits for the device, and returns every buffer to its pool. */
  async finish(): Promise<void> {
    this.submit();
    if (this.submissions > 0) await this.ctx.device.queue.onSubmittedWorkDone();
    for (const b of this.temps) this.pools.storage.give(b);
    for (const b of this.staged) this.pools.staging.give(b);
    this.temps.length = 0;
    this.staged.length = 0;
  }
}
