/**
 * The subset of the WebGPU API the backend uses, declared structurally so the core needs no
 * ambient WebGPU typings (TypeScript's DOM lib has none, Deno's and @webgpu/types' differ in
 * details). Any real implementation (a browser's or Deno's navigator.gpu, Dawn's `webgpu`
 * npm package on Node and Bun) provides these members; objects cross the boundary untyped
 * (`GpuEntry`) and are cast to these interfaces inside the backend only.
 */

/** What callers hand in: a `GPU` object (navigator.gpu or the `webgpu` package's create()). */
export interface GpuEntry {
  requestAdapter(options?: object): Promise<unknown>;
}

export interface GpuAdapterInfoLike {
  readonly vendor?: string;
  readonly architecture?: string;
  readonly device?: string;
  readonly description?: string;
  readonly isFallbackAdapter?: boolean;
}

export interface GpuAdapter {
  readonly info?: GpuAdapterInfoLike;
  readonly features: { has(name: string): boolean; forEach(cb: (v: string) => void): void };
  readonly limits: Record<string, number | undefined> & { readonly [k: string]: unknown };
  readonly isFallbackAdapter?: boolean;
  requestAdapterInfo?(): Promise<GpuAdapterInfoLike>;
  requestDevice(descriptor?: { requiredLimits?: Record<string, number>; requiredFeatures?: string[]; label?: string }): Promise<GpuDevice>;
}

export interface GpuBuffer {
  readonly size: number;
  mapAsync(mode: number, offset?: number, size?: number): Promise<void>;
  getMappedRange(offset?: number, size?: number): ArrayBuffer;
  unmap(): void;
  destroy(): void;
}

export interface GpuShaderModule {
  getCompilationInfo?(): Promise<{ readonly messages: readonly { readonly type: string; readonly message: string; readonly lineNum: number; readonly linePos: number }[] }>;
}

export type GpuBindGroupLayout = object;
export type GpuPipelineLayout = object;
export type GpuBindGroup = object;
export interface GpuComputePipeline {
  getBindGroupLayout(index: number): GpuBindGroupLayout;
}

export interface GpuComputePass {
  setPipeline(p: GpuComputePipeline): void;
  setBindGroup(index: number, group: GpuBindGroup): void;
  dispatchWorkgroups(x: number, y?: number, z?: number): void;
  end(): void;
}

export type GpuCommandBuffer = object;

export interface GpuCommandEncoder {
  beginComputePass(descriptor?: { label?: string }): GpuComputePass;
  copyBufferToBuffer(src: GpuBuffer, srcOffset: number, dst: GpuBuffer, dstOffset: number, size: number): void;
  clearBuffer(buffer: GpuBuffer, offset?: number, size?: number): void;
  finish(): GpuCommandBuffer;
}

export interface GpuQueue {
  writeBuffer(buffer: GpuBuffer, offset: number, data: ArrayBufferView | ArrayBuffer, dataOffset?: number, size?: number): void;
  submit(buffers: GpuCommandBuffer[]): void;
  onSubmittedWorkDone(): Promise<void>;
}

export interface GpuError {
  readonly message: string;
}

export interface GpuDevice {
  readonly limits: Record<string, number | undefined> & { readonly [k: string]: unknown };
  readonly queue: GpuQueue;
  readonly lost: Promise<{ readonly reason?: string; readonly message: string }>;
  createBuffer(descriptor: { size: number; usage: number; label?: string; mappedAtCreation?: boolean }): GpuBuffer;
  createShaderModule(descriptor: { code: string; label?: string }): GpuShaderModule;
  createBindGroupLayout(descriptor: { entries: { binding: number; visibility: number; buffer: { type: 'storage' | 'read-only-storage' | 'uniform' } }[]; label?: string }): GpuBindGroupLayout;
  createPipelineLayout(descriptor: { bindGroupLayouts: GpuBindGroupLayout[]; label?: string }): GpuPipelineLayout;
  createComputePipelineAsync(descriptor: { layout: GpuPipelineLayout; compute: { module: GpuShaderModule; entryPoint: string }; label?: string }): Promise<GpuComputePipeline>;
  createBindGroup(descriptor: { layout: GpuBindGroupLayout; entries: { binding: number; resource: { buffer: GpuBuffer; offset?: number; size?: number } }[]; label?: string }): GpuBindGroup;
  createCommandEncoder(descriptor?: { label?: string }): GpuCommandEncoder;
  pushErrorScope(filter: 'validation' | 'out-of-memory' | 'internal'): void;
  popErrorScope(): Promise<GpuError | null>;
  destroy(): void;
}

/** GPUBufferUsage flags (WebGPU spec values). */
export const BufferUsage = {
  MAP_READ: 0x0001,
  MAP_WRITE: 0x0002,
  COPY_SRC: 0x0004,
  COPY_DST: 0x0008,
  UNIFORM: 0x0040,
  STORAGE: 0x0080,
} as const;

/** GPUMapMode.READ. */
export const MAP_READ = 0x0001;
/** GPUShaderStage.COMPUTE. */
export const STAGE_COMPUTE = 0x4;
