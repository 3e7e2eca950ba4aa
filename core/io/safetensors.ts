/**
 * safetensors reader and writer (https://github.com/huggingface/safetensors, format as of
 * 0.4): an 8-byte little-endian u64 header length N, N bytes of UTF-8 JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}`, then
 * the data buffer. Offsets are relative to the buffer; tensors are row-major,
 * little-endian, and must tile the buffer exactly (no overlap, no gap, no trailing bytes).
 *
 * Heddle reads and writes F32, I32 and I64. Other dtypes of the format (F16, BF16, F64,
 * integers of other widths, BOOL, F8...) are valid files Heddle cannot hold: they are
 * rejected as UNSUPPORTED, after the file's structure has been checked, rather than
 * converted, because a silent f64->f32 or f16 widening would make "load then save"
 * produce a different file. A dtype string that is not in the format is FORMAT_INVALID.
 *
 * Browser-safe: works on Uint8Array only.
 */
import { HeddleError, fail } from '../errors.ts';
import { type DType, Tensor, type TensorData, dtypeOf, shapeStr } from '../tensor.ts';
import { isJsonObject, parseStrictJson } from './strict_json.ts';

/** Default cap on the JSON header: 100 MiB, the order of the reference implementation's limit. */
export const DEFAULT_MAX_HEADER_BYTES = 100 * 1024 * 1024;

export const METADATA_KEY = '__metadata__';

export interface DecodeSafetensorsOptions {
  /** Largest header accepted, in bytes (default 100 MiB). Guards against absurd allocations. */
  maxHeaderBytes?: number;
  /** Names the input in errors, usually its file path (default `safetensors data`). */
  source?: string;
}

export interface SafetensorsContents {
  /** Tensors in name order (see compareNames). */
  tensors: Map<string, Tensor<TensorData>>;
  /** The `__metadata__` string map ({} when absent). */
  metadata: Record<string, string>;
}

/** Safetensors dtype names Heddle holds, and the tensor dtype each maps to. */
export const SAFETENSORS_DTYPES: Readonly<Record<string, DType>> = { F32: 'f32', I32: 'i32', I64: 'i64' };
const TO_SAFETENSORS: Record<DType, string> = { f32: 'F32', i32: 'I32', i64: 'I64' };

/**
 * Bits per element of every dtype the format defines. Known-but-unsupported dtypes are
 * still size-checked so that a corrupt file is reported as corrupt, not as unsupported.
 */
const DTYPE_BITS: Readonly<Record<string, number>> = {
  BOOL: 8, U8: 8, I8: 8, F8_E5M2: 8, F8_E4M3: 8, F8_E8M0: 8, F4: 4, F6_E2M3: 6, F6_E3M2: 6,
  I16: 16, U16: 16, F16: 16, BF16: 16, I32: 32, U32: 32, F32: 32, F64: 64, I64: 64, U64: 64,
};

export function safetensorsDtype(d: DType): string {
  return TO_SAFETENSORS[d];
}

/**
 * The Heddle dtype of a safetensors dtype name; UNSUPPORTED for a
 * dtype of the format Heddle does not hold, FORMAT_INVALID for a name not in the format.
 */
export function heddleDtype(name: string, where: string): DType {
  if (Object.prototype.hasOwnProperty.call(SAFETENSORS_DTYPES, name)) return SAFETENSORS_DTYPES[name];
  if (Object.prototype.hasOwnProperty.call(DTYPE_BITS, name)) {
    fail('UNSUPPORTED', `dtype ${name} is not supported; Heddle reads F32, I32 and I64 (convert the tensor, e.g. tensor.float() in PyTorch, before saving)`, where);
  }
  return fail('FORMAT_INVALID', `unknown dtype ${JSON.stringify(name)}; safetensors dtypes are ${Object.keys(DTYPE_BITS).join(', ')}`, where);
}

/**
 * Name order used by every Heddle writer: Unicode code point order, which is also the
 * byte order of the UTF-8 names (and Rust's / Python's string order). Plain `<` compares
 * UTF-16 code units, which disagrees for characters above U+FFFF.
 */
export function compareNames(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let k = 0; k < n; k++) {
    let x = a.charCodeAt(k);
    let y = b.charCodeAt(k);
    if (x === y) continue;
    // Move surrogates (D800-DFFF) above E000-FFFF so they sort as the code points they encode.
    if (x >= 0xd800) x += x <= 0xdfff ? 0x2000 : -0x800;
    if (y >= 0xd800) y += y <= 0xdfff ? 0x2000 : -0x800;
    return x - y;
  }
  return a.length - b.length;
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function bytesPerElement(d: DType): number {
  return d === 'i64' ? 8 : 4;
}

/** Write `data` as little-endian bytes into `out` at `offset`. */
export function writeLittleEndian(data: TensorData, out: Uint8Array, offset: number, littleEndianHost = LITTLE_ENDIAN_HOST): void {
  if (littleEndianHost) {
    // A byte copy keeps every bit, NaN payloads included.
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), offset);
    return;
  }
  const view = new DataView(out.buffer, out.byteOffset + offset, data.byteLength);
  if (data instanceof Float32Array) {
    const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
    for (let k = 0; k < bits.length; k++) view.setUint32(4 * k, bits[k], true);
  } else if (data instanceof Int32Array) {
    for (let k = 0; k < data.length; k++) view.setInt32(4 * k, data[k], true);
  } else {
    for (let k = 0; k < data.length; k++) view.setBigInt64(8 * k, data[k], true);
  }
}

/** Copy `count` little-endian elements from `src` (any alignment) into a fresh, aligned typed array. */
export function readLittleEndian(dtype: DType, src: Uint8Array, count: number, littleEndianHost = LITTLE_ENDIAN_HOST): TensorData {
  const out: TensorData = dtype === 'f32' ? new Float32Array(count) : dtype === 'i32' ? new Int32Array(count) : new BigInt64Array(count);
  if (littleEndianHost) {
    new Uint8Array(out.buffer).set(src.subarray(0, out.byteLength));
    return out;
  }
  const view = new DataView(src.buffer, src.byteOffset, out.byteLength);
  if (out instanceof Float32Array) {
    const bits = new Uint32Array(out.buffer);
    for (let k = 0; k < count; k++) bits[k] = view.getUint32(4 * k, true);
  } else if (out instanceof Int32Array) {
    for (let k = 0; k < count; k++) out[k] = view.getInt32(4 * k, true);
  } else {
    for (let k = 0; k < count; k++) out[k] = view.getBigInt64(8 * k, true);
  }
  return out;
}

/**
 * Encode tensors as safetensors bytes. Deterministic: the same tensors and metadata give
 * the same bytes on every runtime. Layout: `__metadata__` first (omitted when empty) with
 * its keys sorted, then tensors sorted by name (compareNames), each entry's fields in the
 * format's order (dtype, shape, data_offsets), compact JSON, header padded with spaces to
 * a multiple of 8 so the data buffer starts 8-aligned; data in the same name order. For
 * single-dtype files with at most one metadata key this is byte for byte what the
 * reference (Rust/Python) writer produces.
 */
export function encodeSafetensors(tensors: ReadonlyMap<string, Tensor<TensorData>>, metadata?: Readonly<Record<string, string>>): Uint8Array {
  const names = [...tensors.keys()].sort(compareNames);
  let header = '{';
  const metaKeys = metadata ? Object.keys(metadata).sort(compareNames) : [];
  if (metaKeys.length) {
    header += `${JSON.stringify(METADATA_KEY)}:{`;
    metaKeys.forEach((k, idx) => {
      const v = metadata![k];
      if (typeof v !== 'string') fail('INPUT_INVALID', `metadata value must be a string, got ${typeof v}`, `safetensors metadata '${k}'`);
      header += `${idx ? ',' : ''}${JSON.stringify(k)}:${JSON.stringify(v)}`;
    });
    header += '}';
  }
  let offset = 0;
  const placed: { data: TensorData; begin: number }[] = [];
  names.forEach((name, idx) => {
    if (name === METADATA_KEY) fail('INPUT_INVALID', `'${METADATA_KEY}' is reserved for metadata and cannot name a tensor`, 'safetensors tensors');
    const t = tensors.get(name)!;
    const dtype = dtypeOf(t.data);
    const begin = offset;
    offset += t.data.byteLength;
    placed.push({ data: t.data, begin });
    const sep = idx || metaKeys.length ? ',' : '';
    header += `${sep}${JSON.stringify(name)}:{"dtype":"${TO_SAFETENSORS[dtype]}","shape":${JSON.stringify(t.shape)},"data_offsets":[${begin},${offset}]}`;
  });
  header += '}';
  let headerBytes = new TextEncoder().encode(header);
  const padded = Math.ceil(headerBytes.length / 8) * 8;
  if (padded !== headerBytes.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(headerBytes);
    headerBytes = p;
  }
  const out = new Uint8Array(8 + padded + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, padded % 0x1_0000_0000, true);
  view.setUint32(4, Math.floor(padded / 0x1_0000_0000), true);
  out.set(headerBytes, 8);
  for (const { data, begin } of placed) writeLittleEndian(data, out, 8 + padded + begin);
  return out;
}

interface Entry {
  name: string;
  where: string;
  dtypeName: string;
  shape: number[];
  count: number;
  begin: number;
  end: number;
}

/**
 * Decode safetensors bytes. Every check that fails throws a HeddleError whose `where`
 * names the source and the tensor (`model.safetensors: tensor 'layers.0.weight'`) or the
 * header. Tensor data is copied into fresh, aligned typed arrays, so `bytes` may sit at any
 * offset and may be reused afterwards.
 */
export function decodeSafetensors(bytes: Uint8Array, opts: DecodeSafetensorsOptions = {}): SafetensorsContents {
  const source = opts.source ?? 'safetensors data';
  const maxHeader = opts.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  const at = `${source}: header`;
  if (!(bytes instanceof Uint8Array)) fail('INPUT_INVALID', 'expected the file contents as a Uint8Array', source);
  if (bytes.length < 8) {
    fail('FORMAT_INVALID', `file is ${bytes.length} bytes; a safetensors file starts with an 8-byte header length`, at);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // u64 as a double: exact below 2^53, and anything larger is far beyond the cap anyway.
  const headerLen = view.getUint32(4, true) * 0x1_0000_0000 + view.getUint32(0, true);
  if (headerLen > maxHeader) {
    fail('FORMAT_INVALID', `header length ${headerLen} exceeds the limit of ${maxHeader} bytes (a corrupt or non-safetensors file?)`, at);
  }
  if (8 + headerLen > bytes.length) {
    fail('FORMAT_INVALID', `header length ${headerLen} runs past the end of the file (${bytes.length} bytes; truncated?)`, at);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes.subarray(8, 8 + headerLen));
  } catch {
    return fail('FORMAT_INVALID', 'header is not valid UTF-8', at);
  }
  const header = parseStrictJson(text, { where: at, maxDepth: 64 });
  if (!isJsonObject(header)) {
    fail('FORMAT_INVALID', `header must be a JSON object, got ${Array.isArray(header) ? 'an array' : header === null ? 'null' : typeof header}`, at);
  }

  const metadata: [string, string][] = [];
  const rawMeta = header[METADATA_KEY];
  if (rawMeta !== undefined && rawMeta !== null) {
    const mw = `${source}: ${METADATA_KEY}`;
    if (!isJsonObject(rawMeta)) fail('FORMAT_INVALID', `must be an object of strings, got ${describe(rawMeta)}`, mw);
    for (const k of Object.keys(rawMeta)) {
      const v = rawMeta[k];
      if (typeof v !== 'string') fail('FORMAT_INVALID', `value of '${k}' must be a string, got ${describe(v)}`, mw);
      metadata.push([k, v]);
    }
  }

  const bufferLen = bytes.length - 8 - headerLen;
  const entries: Entry[] = [];
  let unsupported: { dtype: string; where: string } | null = null;
  for (const name of Object.keys(header)) {
    if (name === METADATA_KEY) continue;
    const where = `${source}: tensor '${name}'`;
    const info = header[name];
    if (!isJsonObject(info)) fail('FORMAT_INVALID', `entry must be an object {dtype, shape, data_offsets}, got ${describe(info)}`, where);
    const dt = info.dtype;
    if (typeof dt !== 'string') fail('FORMAT_INVALID', `missing or non-string 'dtype' (got ${describe(dt)})`, where);
    const bits = Object.prototype.hasOwnProperty.call(DTYPE_BITS, dt) ? DTYPE_BITS[dt] : undefined;
    if (bits === undefined) heddleDtype(dt, where); // throws FORMAT_INVALID for an unknown name
    const shape = info.shape;
    if (!Array.isArray(shape) || !shape.every((d) => typeof d === 'number' && Number.isInteger(d) && d >= 0)) {
      fail('FORMAT_INVALID', `'shape' must be an array of non-negative integers, got ${JSON.stringify(shape) ?? 'nothing'}`, where);
    }
    const dims = shape as number[];
    let count = 1;
    for (const d of dims) count *= d;
    if (!Number.isSafeInteger(count * bits!)) fail('FORMAT_INVALID', `shape ${shapeStr(dims)} is too large`, where);
    const offs = info.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => typeof o === 'number' && Number.isInteger(o) && o >= 0)) {
      fail('FORMAT_INVALID', `'data_offsets' must be [begin, end] with non-negative integers, got ${JSON.stringify(offs) ?? 'nothing'}`, where);
    }
    const [begin, end] = offs as number[];
    if (begin > end) fail('FORMAT_INVALID', `data_offsets [${begin}, ${end}]: begin is after end`, where);
    if (end > bufferLen) {
      fail('FORMAT_INVALID', `data_offsets [${begin}, ${end}] run past the end of the data buffer (${bufferLen} bytes; truncated file?)`, where);
    }
    if ((count * bits!) % 8 !== 0) fail('FORMAT_INVALID', `${count} elements of ${dt} do not fill whole bytes`, where);
    const need = (count * bits!) / 8;
    if (end - begin !== need) {
      fail('FORMAT_INVALID', `data_offsets [${begin}, ${end}] hold ${end - begin} bytes, but ${dt} shape ${shapeStr(dims)} needs ${need}`, where);
    }
    if (!unsupported && !Object.prototype.hasOwnProperty.call(SAFETENSORS_DTYPES, dt)) unsupported = { dtype: dt, where };
    entries.push({ name, where, dtypeName: dt, shape: dims, count, begin, end });
  }

  // The tensors must tile the buffer: sorted by offsets, each starts where the previous ended.
  const byOffset = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end || compareNames(a.name, b.name));
  let cursor = 0;
  let prev: Entry | null = null;
  for (const e of byOffset) {
    if (e.begin < cursor) {
      fail('FORMAT_INVALID', `data_offsets [${e.begin}, ${e.end}] overlap tensor '${prev!.name}' [${prev!.begin}, ${prev!.end}]`, e.where);
    }
    if (e.begin > cursor) {
      fail('FORMAT_INVALID', `bytes [${cursor}, ${e.begin}) of the data buffer before this tensor belong to no tensor`, e.where);
    }
    cursor = e.end;
    prev = e;
  }
  if (cursor !== bufferLen) {
    fail('FORMAT_INVALID', `the last ${bufferLen - cursor} bytes of the data buffer (from offset ${cursor}) belong to no tensor`, `${source}: data`);
  }
  if (unsupported) heddleDtype(unsupported.dtype, unsupported.where);

  const base = 8 + headerLen;
  const tensors = new Map<string, Tensor<TensorData>>();
  for (const e of [...entries].sort((a, b) => compareNames(a.name, b.name))) {
    const dtype = SAFETENSORS_DTYPES[e.dtypeName];
    const data = readLittleEndian(dtype, bytes.subarray(base + e.begin, base + e.end), e.count);
    try {
      tensors.set(e.name, new Tensor(e.shape, data, dtype));
    } catch (err) {
      // Tensor re-checks the shape; surface that as a file error with the tensor's name.
      if (err instanceof HeddleError) fail('FORMAT_INVALID', err.message, e.where);
      throw err;
    }
  }
  metadata.sort((a, b) => compareNames(a[0], b[0]));
  return { tensors, metadata: Object.fromEntries(metadata) };
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** Little-endian bytes of one tensor's data (a copy). */
export function tensorBytes(t: Tensor<TensorData>): Uint8Array {
  const out = new Uint8Array(t.data.byteLength);
  writeLittleEndian(t.data, out, 0);
  return out;
}
