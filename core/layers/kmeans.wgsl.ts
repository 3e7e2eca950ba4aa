/**
 * kmeans on the GPU (the CPU reference is core/layers/kmeans.ts).
 */
import type { GpuLayerKernel } from '../backend/webgpu/kernel.ts';

/** Registered in core/backend/webgpu/kernels.ts (empty: kmeans runs on the CPU). */
export const kmeansGpuKernels: readonly GpuLayerKernel[] = [];
