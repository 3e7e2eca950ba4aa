/**
 * swiglu on the GPU (the CPU reference is core/layers/swiglu.ts).
 */
import type { GpuLayerKernel } from '../backend/webgpu/kernel.ts';

/** Registered in core/backend/webgpu/kernels.ts (empty: swiglu runs on the CPU). */
export const swigluGpuKernels: readonly GpuLayerKernel[] = [];
