/**
 * multi_head_attention on the GPU (the CPU reference is core/layers/multi_head_attention.ts).
 */
import type { GpuLayerKernel } from '../backend/webgpu/kernel.ts';

/** Registered in core/backend/webgpu/kernels.ts (empty: multi_head_attention runs on the CPU). */
export const multiHeadAttentionGpuKernels: readonly GpuLayerKernel[] = [];
