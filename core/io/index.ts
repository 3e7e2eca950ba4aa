/** Persistence: safetensors and Heddle's network files. Browser-safe (Uint8Array in, Uint8Array out). */
export {
  encodeSafetensors,
  decodeSafetensors,
  compareNames,
  DEFAULT_MAX_HEADER_BYTES,
  type DecodeSafetensorsOptions,
  type SafetensorsContents,
} from './safetensors.ts';
export {
  saveNetworkSafetensors,
  loadNetworkSafetensors,
  loadWeightsSafetensors,
  saveNetworkJSON,
  loadNetworkJSON,
  loadWeightsJSON,
  NETWORK_FORMAT_VERSION,
  META_CONFIG,
  META_FORMAT_VERSION,
  JSON_FORMAT_NAME,
  type LoadNetworkOptions,
  type LoadWeightsOptions,
} from './network_io.ts';
export { base64Encode, base64Decode } from './base64.ts';
