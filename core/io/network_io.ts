/**
 * Network files: a whole network (config + every weight) as safetensors or as one JSON
 * document. See docs/persistence.md for both layouts, the metadata keys and the weight
 * naming contract.
 *
 * Loading never half-mutates anything: a file is decoded and checked completely, the
 * network is built from the config, and only then are weights applied through
 * Network.setWeights, which is itself all-or-nothing. Loading onto an existing network
 * (loadWeights*) therefore leaves it untouched on any error.
 */
import { HeddleError, fail } from '../errors.ts';
import type { Json } from '../fields.ts';
import { Network } from '../network.ts';
import { type DType, Tensor, type TensorData, shapeStr } from '../tensor.ts';
import { base64Decode, base64Encode } from './base64.ts';
import {
  type DecodeSafetensorsOptions,
  bytesPerElement,
  compareNames,
  decodeSafetensors,
  encodeSafetensors,
  heddleDtype,
  readLittleEndian,
  safetensorsDtype,
  tensorBytes,
} from './safetensors.ts';
import { isJsonObject, parseStrictJson } from './strict_json.ts';

/** Version of Heddle's network file layout (both formats); bumped when weight naming or layout changes. */
export const NETWORK_FORMAT_VERSION = 1;
/** `__metadata__` key holding the canonical config JSON. */
export const META_CONFIG = 'heddle.config';
/** `__metadata__` key holding NETWORK_FORMAT_VERSION as a decimal string. */
export const META_FORMAT_VERSION = 'heddle.format_version';
/** JSON files carry `"format": "heddle-network"`. */
export const JSON_FORMAT_NAME = 'heddle-network';

export interface LoadNetworkOptions {
  /** Names the input in errors, usually its path. */
  source?: string;
  /** Network config (JSON text or object) to use instead of the one stored in the file. */
  config?: string | unknown;
  /** Cap on the safetensors header (default 100 MiB). */
  maxHeaderBytes?: number;
}

export interface LoadWeightsOptions {
  source?: string;
  maxHeaderBytes?: number;
  /** Require a tensor for every parameter of the network (default true). */
  complete?: boolean;
}

// ---------------------------------------------------------------- safetensors

/**
 * The network as safetensors bytes: every parameter under its full name, and in
 * `__metadata__` the canonical config (`heddle.config`), `heddle.format_version` and
 * `format: pt` (Hugging Face tools look for it). Deterministic bytes.
 */
export function saveNetworkSafetensors(net: Network): Uint8Array {
  return encodeSafetensors(net.getWeights(), {
    format: 'pt',
    [META_CONFIG]: JSON.stringify(net.configJSON()),
    [META_FORMAT_VERSION]: String(NETWORK_FORMAT_VERSION),
  });
}

/**
 * Build a network from safetensors bytes. The config comes from `heddle.config` unless
 * `opts.config` is given (e.g. for a plain PyTorch/HF file). Every parameter must be in the
 * file with its exact shape, dtype F32 and finite values; a tensor the network does not
 * have is an error too.
 */
export function loadNetworkSafetensors(bytes: Uint8Array, opts: LoadNetworkOptions = {}): Network {
  const source = opts.source ?? 'safetensors data';
  const { tensors, metadata } = decodeSafetensors(bytes, decodeOpts(opts, source));
  const metaWhere = `${source}: __metadata__`;
  const version = metadata[META_FORMAT_VERSION];
  if (version !== undefined) checkVersion(version, `${metaWhere} ${META_FORMAT_VERSION}`);
  let config: string | unknown = opts.config;
  if (config === undefined) {
    const text = metadata[META_CONFIG];
    if (text === undefined) {
      fail('FORMAT_INVALID', `has no '${META_CONFIG}' entry, so the file does not say which network it holds (not written by Heddle?); pass the network config as opts.config`, metaWhere);
    }
    if (version === undefined) fail('FORMAT_INVALID', `has '${META_CONFIG}' but no '${META_FORMAT_VERSION}'`, metaWhere);
    config = parseStrictJson(text, { where: `${metaWhere} ${META_CONFIG}` });
  }
  return buildWithWeights(config, tensors, source, opts.config === undefined ? `${source}: ${META_CONFIG}` : null);
}

/** Apply the weights in safetensors bytes to `net`. All-or-nothing; by default every parameter must be present. */
export function loadWeightsSafetensors(net: Network, bytes: Uint8Array, opts: LoadWeightsOptions = {}): void {
  const source = opts.source ?? 'safetensors data';
  const { tensors, metadata } = decodeSafetensors(bytes, decodeOpts(opts, source));
  const version = metadata[META_FORMAT_VERSION];
  if (version !== undefined) checkVersion(version, `${source}: __metadata__ ${META_FORMAT_VERSION}`);
  applyWeights(net, tensors, source, opts.complete ?? true);
}

// ---------------------------------------------------------------- JSON

/**
 * The network as one JSON document (deterministic text, no whitespace):
 * `{"format":"heddle-network","version":1,"config":{...},"weights":{name:{"dtype":"F32","shape":[...],"data":"<base64>"}}}`
 * with weights sorted by name and data the little-endian bytes in standard base64.
 */
export function saveNetworkJSON(net: Network): string {
  const weights = net.getWeights();
  const parts = [...weights.keys()].sort(compareNames).map((name) => {
    const t = weights.get(name)!;
    return `${JSON.stringify(name)}:{"dtype":"${safetensorsDtype(t.dtype)}","shape":${JSON.stringify(t.shape)},"data":"${base64Encode(tensorBytes(t))}"}`;
  });
  return `{"format":"${JSON_FORMAT_NAME}","version":${NETWORK_FORMAT_VERSION},"config":${JSON.stringify(net.configJSON())},"weights":{${parts.join(',')}}}`;
}

/**
 * Build a network from a Heddle network JSON document: its text, its UTF-8 bytes, or an
 * already-parsed object (duplicate keys can only be detected in text). Bit-exact: the
 * weights are the stored bytes.
 */
export function loadNetworkJSON(input: string | Uint8Array | unknown, opts: { source?: string } = {}): Network {
  const source = opts.source ?? 'network JSON';
  const { config, tensors } = readNetworkJSON(input, source);
  return buildWithWeights(config, tensors, source, `${source}: config`);
}

/** Apply the weights of a Heddle network JSON document to `net` (its config is not used). All-or-nothing. */
export function loadWeightsJSON(net: Network, input: string | Uint8Array | unknown, opts: { source?: string; complete?: boolean } = {}): void {
  const source = opts.source ?? 'network JSON';
  const { tensors } = readNetworkJSON(input, source);
  applyWeights(net, tensors, source, opts.complete ?? true);
}

const JSON_TOP_KEYS = ['format', 'version', 'config', 'weights'];
const JSON_TENSOR_KEYS = ['dtype', 'shape', 'data'];

function readNetworkJSON(input: unknown, source: string): { config: Json; tensors: Map<string, Tensor<TensorData>> } {
  let doc: unknown = input;
  if (input instanceof Uint8Array) {
    try {
      doc = new TextDecoder('utf-8', { fatal: true }).decode(input);
    } catch {
      fail('FORMAT_INVALID', 'is not valid UTF-8 text', source);
    }
  }
  if (typeof doc === 'string') doc = parseStrictJson(doc, { where: source });
  if (!isJsonObject(doc)) fail('FORMAT_INVALID', `expected a JSON object {"format": "${JSON_FORMAT_NAME}", ...}`, source);
  if (doc.format !== JSON_FORMAT_NAME) {
    const hint = doc.format === undefined && 'layers' in doc ? '; this looks like a bare network config: build it with Network.fromJSON' : '';
    fail('FORMAT_INVALID', `"format" is ${JSON.stringify(doc.format) ?? 'missing'}, expected "${JSON_FORMAT_NAME}"${hint}`, `${source}: format`);
  }
  const v = doc.version;
  if (typeof v !== 'number' || !Number.isInteger(v)) fail('FORMAT_INVALID', `"version" must be an integer, got ${JSON.stringify(v) ?? 'nothing'}`, `${source}: version`);
  checkVersion(String(v), `${source}: version`);
  for (const k of Object.keys(doc)) {
    if (!JSON_TOP_KEYS.includes(k)) fail('FORMAT_INVALID', `unknown key ${JSON.stringify(k)}; a version ${NETWORK_FORMAT_VERSION} file has ${JSON_TOP_KEYS.join(', ')}`, source);
  }
  if (!isJsonObject(doc.config)) fail('FORMAT_INVALID', `"config" must be a network config object`, `${source}: config`);
  const w = doc.weights;
  if (!isJsonObject(w)) fail('FORMAT_INVALID', `"weights" must be an object of tensors`, `${source}: weights`);
  const tensors = new Map<string, Tensor<TensorData>>();
  for (const name of Object.keys(w).sort(compareNames)) {
    tensors.set(name, readJSONTensor(w[name], `${source}: tensor '${name}'`));
  }
  return { config: doc.config, tensors };
}

function readJSONTensor(e: Json, where: string): Tensor<TensorData> {
  if (!isJsonObject(e)) fail('FORMAT_INVALID', 'entry must be an object {dtype, shape, data}', where);
  for (const k of Object.keys(e)) {
    if (!JSON_TENSOR_KEYS.includes(k)) fail('FORMAT_INVALID', `unknown key ${JSON.stringify(k)}; a tensor has ${JSON_TENSOR_KEYS.join(', ')}`, where);
  }
  if (typeof e.dtype !== 'string') fail('FORMAT_INVALID', `missing or non-string "dtype"`, where);
  const dtype: DType = heddleDtype(e.dtype, where);
  const shape = e.shape;
  if (!Array.isArray(shape) || !shape.every((d) => typeof d === 'number' && Number.isInteger(d) && d >= 0)) {
    fail('FORMAT_INVALID', `"shape" must be an array of non-negative integers, got ${JSON.stringify(shape) ?? 'nothing'}`, where);
  }
  const dims = shape as number[];
  const count = dims.reduce((n, d) => n * d, 1);
  const size = bytesPerElement(dtype);
  if (!Number.isSafeInteger(count * size)) fail('FORMAT_INVALID', `shape ${shapeStr(dims)} is too large`, where);
  if (typeof e.data !== 'string') fail('FORMAT_INVALID', `"data" must be a base64 string`, where);
  const bytes = base64Decode(e.data, `${where}.data`);
  if (bytes.length !== count * size) {
    fail('FORMAT_INVALID', `"data" holds ${bytes.length} bytes, but ${e.dtype} shape ${shapeStr(dims)} needs ${count * size}`, where);
  }
  return new Tensor(dims, readLittleEndian(dtype, bytes, count), dtype);
}

// ---------------------------------------------------------------- shared

function decodeOpts(opts: { maxHeaderBytes?: number }, source: string): DecodeSafetensorsOptions {
  return opts.maxHeaderBytes === undefined ? { source } : { source, maxHeaderBytes: opts.maxHeaderBytes };
}

function checkVersion(v: string, where: string): void {
  if (v === String(NETWORK_FORMAT_VERSION)) return;
  if (/^[1-9][0-9]*$/.test(v) && Number(v) > NETWORK_FORMAT_VERSION) {
    fail('UNSUPPORTED', `format version ${v} was written by a newer Heddle; this one reads version ${NETWORK_FORMAT_VERSION}`, where);
  }
  fail('FORMAT_INVALID', `format version ${JSON.stringify(v)} is not valid; expected ${NETWORK_FORMAT_VERSION}`, where);
}

/** `configWhere` relocates config errors into the file (null: the caller gave the config, keep its own paths). */
function buildWithWeights(config: unknown, tensors: Map<string, Tensor<TensorData>>, source: string, configWhere: string | null): Network {
  // Every weight is checked before the network is built, so a bad file fails fast and the
  // error names the tensor; the network itself is new, so nothing outside can see a half state.
  checkFinite(tensors, source);
  let net: Network;
  try {
    net = Network.fromJSON(config);
  } catch (e) {
    throw e instanceof HeddleError && configWhere !== null ? relocate(e, configWhere) : e;
  }
  net.setWeights(tensors as Map<string, Tensor>, { complete: true, source });
  return net;
}

function applyWeights(net: Network, tensors: Map<string, Tensor<TensorData>>, source: string, complete: boolean): void {
  checkFinite(tensors, source);
  net.setWeights(tensors as Map<string, Tensor>, { complete, source });
}

/** Weights must be finite (NaN/Inf are never portable); reported as WEIGHTS_INVALID with the tensor and element. */
function checkFinite(tensors: Map<string, Tensor<TensorData>>, source: string): void {
  for (const [name, t] of tensors) {
    const d = t.data;
    if (!(d instanceof Float32Array)) continue;
    for (let k = 0; k < d.length; k++) {
      const v = d[k];
      if (v !== v || v === Infinity || v === -Infinity) {
        fail('WEIGHTS_INVALID', `element ${k} is ${v}; weights must be finite`, `${source}: tensor '${name}'`);
      }
    }
  }
}

/**
 * The same error with its location moved under `prefix`, the config's place in the file:
 * `config.layers` -> `net.json: config.layers`, `layers[0] (...)` -> `net.json: config.layers[0] (...)`.
 */
function relocate(e: HeddleError, prefix: string): HeddleError {
  const raw = e.where && e.message.startsWith(`${e.where}: `) ? e.message.slice(e.where.length + 2) : e.message;
  const where = !e.where ? prefix : e.where.startsWith('config') ? prefix + e.where.slice('config'.length) : `${prefix}.${e.where}`;
  return new HeddleError(e.code, raw, where, e.detail);
}
