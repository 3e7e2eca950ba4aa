/**
 * Heddle core: the deterministic neural virtual machine's engine. Browser-safe: no
 * runtime-specific imports below this directory.
 */
export { HeddleError, type ErrorCode } from './errors.ts';
export { Tensor, type DType, shapeSize, shapeEquals } from './tensor.ts';
export { Prng } from './prng.ts';
export * as math from './math/index.ts';
export { type InitSpec, initialize } from './init.ts';
export { parseNetworkConfig, configToJSON, type NetworkConfig, type GridPos } from './config.ts';
export { Network, type Blueprint, type LayerBlueprint, type Tape, type NamedParam } from './network.ts';
export type { Layer, LayerKind, LayerConfig, Param, Shape } from './layers/layer.ts';
export { layerKinds, findKind } from './layers/registry.ts';
export { ACTIVATIONS, type Activation } from './layers/activations.ts';
export * from './train/index.ts';
export * from './io/index.ts';
export { BACKENDS, type BackendName, type BackendOptions, type BackendReport, type LayerPlacement } from './backend/backend.ts';
export { acquireWebGpu, WebGpuContext, GPU_LAYER_TYPES, type AdapterReport, type WebGpuOptions, type GpuEntry } from './backend/webgpu/index.ts';
