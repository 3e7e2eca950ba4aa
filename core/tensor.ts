import { HeddleError, fail } from './errors.ts';

/** Element types a tensor can hold. f32 is the compute type; integer types carry ids and class labels. */
export type DType = 'f32' | 'i32' | 'i64';

export type TensorData = Float32Array | Int32Array | BigInt64Array;

/**
 * A dense row-major tensor. `shape` includes the batch dimension when there is one.
 * The data array is owned by the tensor unless documented otherwise; layers never
 * mutate their inputs.
 */
export class Tensor<D extends TensorData = Float32Array> {
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly data: D;

  constructor(shape: readonly number[], data: D, dtype?: DType) {
    const n = shapeSize(shape, 'tensor shape');
    if (data.length !== n) {
      fail('SHAPE_MISMATCH', `shape [${shape.join(', ')}] needs ${n} elements, data has ${data.length}`);
    }
    this.shape = Object.freeze([...shape]);
    this.data = data;
    this.dtype = dtype ?? dtypeOf(data);
  }

  get size(): number {
    return this.data.length;
  }

  static zeros(shape: readonly number[]): Tensor {
    return new Tensor(shape, new Float32Array(shapeSize(shape, 'tensor shape')));
  }

  static from(shape: readonly number[], values: ArrayLike<number>): Tensor {
    return new Tensor(shape, Float32Array.from(values));
  }

  clone(): Tensor<D> {
    return new Tensor(this.shape, this.data.slice() as D, this.dtype);
  }

  /** Same data viewed with another shape of the same size (no copy). */
  reshape(shape: readonly number[]): Tensor<D> {
    return new Tensor(shape, this.data, this.dtype);
  }
}

export function dtypeOf(data: TensorData): DType {
  if (data instanceof Float32Array) return 'f32';
  if (data instanceof Int32Array) return 'i32';
  if (data instanceof BigInt64Array) return 'i64';
  throw new HeddleError('INTERNAL', 'unknown typed array');
}

/** Product of dims; rejects negative, fractional and non-finite dims. */
export function shapeSize(shape: readonly number[], what = 'shape'): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) fail('SHAPE_MISMATCH', `${what} [${shape.join(', ')}] has an invalid dimension ${d}`);
    n *= d;
  }
  if (!Number.isSafeInteger(n)) fail('SHAPE_MISMATCH', `${what} [${shape.join(', ')}] is too large`);
  return n;
}

export function shapeEquals(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function shapeStr(s: readonly number[]): string {
  return `[${s.join(', ')}]`;
}

/**
 * Heddle's input rule (docs/determinism.md): inputs must be finite. A NaN or infinity in
 * an input tensor is rejected with its index, rather than propagated, because NaN payloads
 * and signs are not portable across backends and a NaN input is almost always a data bug.
 */
export function assertFinite(t: Tensor<TensorData>, what: string, code: 'INPUT_INVALID' | 'WEIGHTS_INVALID' = 'INPUT_INVALID'): void {
  if (!(t.data instanceof Float32Array)) return;
  const d = t.data;
  for (let i = 0; i < d.length; i++) {
    const v = d[i];
    if (v !== v || v === Infinity || v === -Infinity) {
      fail(code, `element ${i} is ${v}; ${code === 'INPUT_INVALID' ? 'inputs' : 'weights'} must be finite`, what);
    }
  }
}

const MIN_NORMAL = 1.1754943508222875e-38;

/**
 * The flush-to-zero rule at the boundary (docs/determinism.md): subnormal values in inputs,
 * targets and weights become zeros of the same sign when they enter the engine. A GPU that
 * flushes in hardware reads a subnormal operand as zero, so e.g. 1e-39 * 1e10 must be 0, not
 * 1e-29. Returns the same tensor when nothing needs flushing, else a flushed copy.
 */
export function flushSubnormals<T extends Tensor<TensorData>>(t: T): T {
  if (!(t.data instanceof Float32Array)) return t;
  const d = t.data;
  let i = 0;
  while (i < d.length && !(d[i] !== 0 && Math.abs(d[i]) < MIN_NORMAL)) i++;
  return i === d.length ? t : flushFrom(t, i);
}

/**
 * assertFinite and flushSubnormals in one pass over the data (the engine's per-call input
 * path: one pass instead of two matters at ~1k floats per call).
 */
export function finiteFlushed<T extends Tensor<TensorData>>(t: T, what: string): T {
  if (!(t.data instanceof Float32Array)) return t;
  const d = t.data;
  let firstSubnormal = -1;
  for (let i = 0; i < d.length; i++) {
    const a = Math.abs(d[i]);
    if (a < MIN_NORMAL) {
      if (a !== 0 && firstSubnormal < 0) firstSubnormal = i;
    } else if (!(a <= 3.4028234663852886e38)) {
      fail('INPUT_INVALID', `element ${i} is ${d[i]}; inputs must be finite`, what);
    }
  }
  return firstSubnormal < 0 ? t : flushFrom(t, firstSubnormal);
}

function flushFrom<T extends Tensor<TensorData>>(t: T, i: number): T {
  const d = t.data as Float32Array;
  const out = d.slice();
  for (; i < out.length; i++) if (Math.abs(out[i]) < MIN_NORMAL) out[i] *= 0;
  return new Tensor(t.shape, out, t.dtype) as T;
}
