/**
 * Tensors on the wire: reading a request's Tensor table into a core Tensor (a view of the
 * frame's bytes when aligned, a copy otherwise) with precise errors, and writing core
 * tensors into a response with their data 16-byte aligned.
 */
import type { Builder, Offset } from 'flatbuffers';
import { Tensor, type TensorData } from '../../core/tensor.ts';
import { EngineError } from './errors.ts';
import { DType } from './generated/fb/heddle/abi/dtype.ts';
import { ErrorCode } from './generated/fb/heddle/abi/error-code.ts';
import { Tensor as FbTensor } from './generated/fb/heddle/abi/tensor.ts';

export type CoreDType = 'f32' | 'i32' | 'i64';

const TO_CORE: Partial<Record<DType, CoreDType>> = { [DType.F32]: 'f32', [DType.I32]: 'i32', [DType.I64]: 'i64' };
const TO_WIRE: Record<CoreDType, DType> = { f32: DType.F32, i32: DType.I32, i64: DType.I64 };
const ELEM: Record<CoreDType, number> = { f32: 4, i32: 4, i64: 8 };

/** Most dimensions a tensor may have. */
export const MAX_RANK = 32;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function dtypeName(d: number): string {
  return DType[d as DType] ?? `${d} (not a DType)`;
}

/** Reads a shape vector (int64 dims) as numbers; TENSOR_INVALID for negative dims. */
export function readShape(n: number, dim: (i: number) => bigint | null, what: string): number[] {
  if (n > MAX_RANK) throw new EngineError(ErrorCode.TENSOR_INVALID, `has ${n} dimensions; at most ${MAX_RANK} are supported`, what);
  const shape: number[] = [];
  for (let i = 0; i < n; i++) {
    const d = dim(i) ?? 0n;
    if (d < 0n) throw new EngineError(ErrorCode.TENSOR_INVALID, `dimension ${i} is ${d}; dimensions must be >= 0`, what);
    if (d > BigInt(Number.MAX_SAFE_INTEGER)) throw new EngineError(ErrorCode.RESOURCE_LIMIT, `dimension ${i} is ${d}, too large to allocate`, what);
    shape.push(Number(d));
  }
  return shape;
}

export interface ReadTensorOptions {
  /** Dtypes this argument takes. */
  dtypes: readonly CoreDType[];
  /** Bytes one tensor may take; larger shapes are RESOURCE_LIMIT. */
  maxBytes: number;
  /** Copy the data even when a view would do (the tensor outlives the frame). */
  copy?: boolean;
}

/** A request tensor as a core Tensor, after checking dtype, shape and byte length. */
export function readTensor(t: FbTensor, what: string, o: ReadTensorOptions): Tensor<TensorData> {
  const wire = t.dtype();
  const dtype = TO_CORE[wire];
  if (!dtype || !o.dtypes.includes(dtype)) {
    const takes = o.dtypes.map((d) => DType[TO_WIRE[d]]).join(' or ');
    throw new EngineError(ErrorCode.DTYPE_INVALID, `has dtype ${dtypeName(wire)}; this argument takes ${takes}`, what);
  }
  const shape = readShape(t.shapeLength(), (i) => t.shape(i), what);
  let count = 1n;
  for (const d of shape) count *= BigInt(d);
  const size = ELEM[dtype];
  const bytes = count * BigInt(size);
  const have = t.dataLength();
  if (bytes > BigInt(o.maxBytes)) {
    throw new EngineError(
      ErrorCode.RESOURCE_LIMIT,
      `shape [${shape.join(', ')}] of ${dtypeName(wire)} needs ${bytes} bytes; the engine takes tensors of at most ${o.maxBytes} bytes`,
      what,
    );
  }
  if (BigInt(have) !== bytes) {
    throw new EngineError(
      ErrorCode.TENSOR_INVALID,
      `shape [${shape.join(', ')}] of ${dtypeName(wire)} needs ${bytes} bytes of data, the tensor has ${have}`,
      what,
    );
  }
  const n = Number(count);
  const raw = t.dataArray() ?? new Uint8Array(0);
  let buffer = raw.buffer;
  let offset = raw.byteOffset;
  if (o.copy || offset % size !== 0 || !LITTLE_ENDIAN) {
    const c = new Uint8Array(raw.length);
    c.set(raw);
    if (!LITTLE_ENDIAN) swapInPlace(c, size);
    buffer = c.buffer;
    offset = 0;
  }
  const data: TensorData =
    dtype === 'f32' ? new Float32Array(buffer, offset, n) : dtype === 'i32' ? new Int32Array(buffer, offset, n) : new BigInt64Array(buffer, offset, n);
  return new Tensor(shape, data, dtype);
}

function swapInPlace(b: Uint8Array, size: number): void {
  for (let i = 0; i < b.length; i += size) b.subarray(i, i + size).reverse();
}

/** Adds a byte vector aligned to `align` with one bulk copy (flatc's TS helper copies byte by byte). */
export function addBytes(b: Builder, bytes: Uint8Array, align = 16): Offset {
  b.startVector(1, bytes.length, align);
  // Builder keeps its write position private; 2.0.7's createString moves it the same way.
  const internal = b as unknown as { space: number };
  internal.space -= bytes.length;
  const bb = b.dataBuffer();
  bb.setPosition(internal.space);
  bb.bytes().set(bytes, internal.space);
  return b.endVector();
}

export function addShape(b: Builder, shape: readonly number[]): Offset {
  b.startVector(8, shape.length, 8);
  for (let i = shape.length - 1; i >= 0; i--) b.addInt64(BigInt(shape[i]));
  return b.endVector();
}

function dataBytes(t: Tensor<TensorData>): Uint8Array {
  const d = t.data;
  const view = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  if (LITTLE_ENDIAN) return view;
  const c = view.slice();
  swapInPlace(c, d.BYTES_PER_ELEMENT);
  return c;
}

/** Writes a core tensor as a Tensor table. */
export function addTensor(b: Builder, t: Tensor<TensorData>): Offset {
  const data = addBytes(b, dataBytes(t), 16);
  const shape = addShape(b, t.shape);
  FbTensor.startTensor(b);
  FbTensor.addShape(b, shape);
  FbTensor.addDtype(b, TO_WIRE[t.dtype as CoreDType]);
  FbTensor.addData(b, data);
  return FbTensor.endTensor(b);
}
