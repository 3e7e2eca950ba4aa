/** The TypeScript client of the Heddle ABI (Node). */
export {
  Engine,
  RemoteNetwork,
  RemoteOptimizer,
  HeddleEngineError,
  ErrorCode,
  NetworkFormat,
  DType,
  bundledEnginePath,
  engineCommand,
  type HandleRef,
  type HelloInfo,
  type NetworkInfo,
  type SpawnOptions,
  type TrainOptions,
  type TrainProgress,
  type TrainResult,
} from './client.ts';
