/**
 * Compute backends of a Network: `cpu` (the reference, always there) and `webgpu`.
 * Network.useBackend selects one; Network.forwardAsync runs on it (docs/webgpu.md).
 */
import type { Tensor, TensorData } from '../tensor.ts';
import type { AdapterReport, WebGpuContext, WebGpuOptions } from './webgpu/device.ts';
import type { StepSettings } from './webgpu/train.ts';
import type { Optimizer } from '../train/optimizers.ts';

export const BACKENDS = ['cpu', 'webgpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

/** Where one layer runs on the selected backend. */
export interface LayerPlacement {
  /** Full name prefix: `layers.3`, `layers.2.branches.0`. */
  readonly name: string;
  readonly type: string;
  readonly device: 'gpu' | 'cpu';
  /** Why a layer runs on the CPU under the webgpu backend. */
  readonly reason?: string;
  /** Where its training (backward and the forward that feeds it) runs: gpu, or cpu inside the GPU step. */
  readonly training: 'gpu' | 'cpu';
  /** Why a layer trains on the CPU. */
  readonly trainingReason?: string;
}

export interface BackendReport {
  readonly backend: BackendName;
  /** webgpu: the adapter and the device limits in use. */
  readonly adapter?: AdapterReport;
  /** webgpu: every layer (nested ones inside GPU containers too) and where it runs. */
  readonly layers?: readonly LayerPlacement[];
  /** webgpu: resident weights and uploads so far (each parameter once, then once per change). */
  readonly stats?: { readonly uploads: number; readonly residentParams: number; readonly residentBytes: number; readonly plans: number };
}

export interface BackendOptions extends WebGpuOptions {
  /**
   * webgpu: run on this already-acquired context (acquireWebGpu) instead of acquiring a device;
   * several networks may share one. The network does not destroy a context it was given.
   */
  context?: WebGpuContext;
}

/** A network's binding to a non-CPU backend. */
export interface NetworkBackend {
  readonly name: BackendName;
  report(): BackendReport;
  /** Inference on a checked, flushed input [batch, ...inputShape]. */
  forward(input: Tensor<TensorData>): Promise<Tensor>;
  /**
   * Forward with tape then backward from dL/dy (training: false, as the conformance grad op):
   * returns dL/dx and ADDS every parameter's gradient into Param.grad on the host, the same
   * bits as Network.forwardTape + Network.backward.
   */
  grad(input: Tensor<TensorData>, dy: Tensor): Promise<Tensor>;
  /** One training step (trainAsync); the host copies are updated by finishTraining. */
  trainStep?(input: Tensor<TensorData>, s: StepSettings): Promise<number>;
  /** Weights, gradients and the optimizer's state back into the host objects. */
  finishTraining?(optimizer: Optimizer): Promise<void>;
  /** A training call failed: host objects keep their values; device copies are refreshed. */
  abortTraining?(): void;
  /** Frees device memory (weights, buffers, plans); destroys the device if the backend acquired it. */
  release(): void;
}
