/**
 * rnn, lstm and gru on the GPU (the CPU reference is core/kernels/recurrent.ts).
 */
import type { GpuLayerKernel } from '../backend/webgpu/kernel.ts';

/** Registered in core/backend/webgpu/kernels.ts. */
export const recurrentGpuKernels: readonly GpuLayerKernel[] = [];
