/**
 * The GPU kernel of each layer type that has one (the generators sit next to their layers,
 * core/layers/<type>.wgsl.ts). A type missing here, or a config whose kernel reports it
 * unsupported, runs on the CPU with its data moved (docs/webgpu.md lists them).
 */
import { convGpuKernels } from '../../layers/conv.wgsl.ts';
import { denseGpu } from '../../layers/dense.wgsl.ts';
import { embeddingGpuKernels } from '../../layers/embedding.wgsl.ts';
import { kmeansGpuKernels } from '../../layers/kmeans.wgsl.ts';
import { layerNormGpu } from '../../layers/layer_norm.wgsl.ts';
import { multiHeadAttentionGpuKernels } from '../../layers/multi_head_attention.wgsl.ts';
import { parallelGpu } from '../../layers/parallel.wgsl.ts';
import { recurrentGpuKernels } from '../../layers/recurrent.wgsl.ts';
import { residualGpu } from '../../layers/residual.wgsl.ts';
import { rmsNormGpu } from '../../layers/rms_norm.wgsl.ts';
import { sequentialGpu } from '../../layers/sequential.wgsl.ts';
import { softmaxGpu } from '../../layers/softmax.wgsl.ts';
import { swigluGpuKernels } from '../../layers/swiglu.wgsl.ts';
import type { Layer } from '../../layers/layer.ts';
import type { GpuLayerKernel } from './kernel.ts';

const KERNELS: readonly GpuLayerKernel[] = [
  denseGpu, layerNormGpu, rmsNormGpu, softmaxGpu, residualGpu, sequentialGpu, parallelGpu,
  ...convGpuKernels, ...recurrentGpuKernels, ...multiHeadAttentionGpuKernels,
  ...swigluGpuKernels, ...embeddingGpuKernels, ...kmeansGpuKernels,
];
const BY_TYPE = new Map(KERNELS.map((k) => [k.type, k]));

/** Layer types with a GPU forward (some configs may still fall back: see gpuKernelFor). */
export const GPU_LAYER_TYPES: readonly string[] = KERNELS.map((k) => k.type);

/**
 * Test-only: layer types forced onto the CPU, so the checks can exercise the CPU fallback
 * inside a GPU pass now that every type has a kernel. Never set it elsewhere.
 */
export const GPU_KERNEL_OFF = new Set<string>();

/** The layer's GPU kernel, or the reason it runs on the CPU. */
export function gpuKernelFor(layer: Layer): { kernel: GpuLayerKernel } | { reason: string } {
  if (GPU_KERNEL_OFF.has(layer.type)) return { reason: `${layer.type} forced onto the CPU (test switch GPU_KERNEL_OFF)` };
  const kernel = BY_TYPE.get(layer.type);
  if (!kernel) return { reason: `no GPU kernel for ${layer.type} yet` };
  const why = kernel.unsupported?.(layer) ?? null;
  return why ? { reason: why } : { kernel };
}
