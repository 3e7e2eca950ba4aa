/**
 * conv1d/2d/3d and conv_transposed1d/2d/3d on the GPU (the generators shared by the six
 * types; the CPU reference is core/kernels/conv.ts).
 */
import type { GpuLayerKernel } from '../backend/webgpu/kernel.ts';

/** Registered in core/backend/webgpu/kernels.ts. */
export const convGpuKernels: readonly GpuLayerKernel[] = [];
