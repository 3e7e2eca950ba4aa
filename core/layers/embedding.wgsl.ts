/**
 * embedding on the GPU (the CPU reference is core/layers/embedding.ts).
 */
import type { GpuLayerKernel } from '../backend/webgpu/kernel.ts';

/** Registered in core/backend/webgpu/kernels.ts (empty: embedding runs on the CPU). */
export const embeddingGpuKernels: readonly GpuLayerKernel[] = [];
