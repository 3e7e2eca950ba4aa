/** The WebGPU backend: device acquisition, the adapter report, and the kernel registry. */
export { acquireWebGpu, WebGpuContext, type AdapterReport, type WebGpuOptions } from './device.ts';
export type { GpuEntry } from './gpu.ts';
export { WebGpuBackend, layerPlacements } from './backend.ts';
export { GPU_LAYER_TYPES } from './kernels.ts';
