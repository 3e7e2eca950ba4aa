/**
 * The bits an operation produced, and their hash.
 *
 * An operation's output is an ordered list of named tensors. Its digest is the SHA-256 of
 * this byte string (docs/conformance.md, "What is hashed"):
 *
 *   "heddle-conformance/1\n"
 *   then per tensor, in order:  name "\t" dtype "\t" shape dims joined by "x" ("" for a scalar)
 *                               "\t" byte length "\n"   (ASCII)
 *                               the values, little-endian, row-major
 *
 * dtypes: f32, f64 (host-side scalars such as learning rates), i32, u8 (file bytes). Every
 * bit counts (signed zeros, infinities, the last mantissa bit) except NaN payloads: every
 * NaN is written as the canonical quiet NaN (0x7fc00000, 0x7ff8000000000000), because
 * docs/determinism.md does not promise NaN payloads or signs (they are not portable).
 */
import { Sha256 } from './sha256.ts';

export type DigestDType = 'f32' | 'f64' | 'i32' | 'u8';

export interface NamedArray {
  readonly name: string;
  readonly dtype: DigestDType;
  readonly shape: readonly number[];
  readonly data: Float32Array | Float64Array | Int32Array | Uint8Array;
}

const MAGIC = 'heddle-conformance/1\n';
const utf8 = new TextEncoder();

/** The little-endian bytes of one array (NaNs canonical). */
export function arrayBytes(a: NamedArray): Uint8Array {
  const d = a.data;
  if (a.dtype === 'u8') return d as Uint8Array;
  const width = a.dtype === 'f64' ? 8 : 4;
  const out = new Uint8Array(d.length * width);
  const view = new DataView(out.buffer);
  for (let i = 0; i < d.length; i++) {
    const v = d[i];
    if (a.dtype === 'f32') {
      if (v !== v) view.setUint32(4 * i, 0x7fc00000, true);
      else view.setFloat32(4 * i, v, true);
    } else if (a.dtype === 'f64') {
      if (v !== v) {
        view.setUint32(8 * i, 0, true);
        view.setUint32(8 * i + 4, 0x7ff80000, true);
      } else view.setFloat64(8 * i, v, true);
    } else view.setInt32(4 * i, v, true);
  }
  return out;
}

function checkArray(a: NamedArray): void {
  const n = a.shape.reduce((x, y) => x * y, 1);
  if (n !== a.data.length) throw new Error(`digest: '${a.name}' has shape [${a.shape.join(', ')}] but ${a.data.length} values`);
  if (/[\t\n]/.test(a.name)) throw new Error(`digest: name '${a.name}' holds a tab or newline`);
}

/** SHA-256 of the canonical encoding of the arrays, in order. */
export function digest(arrays: readonly NamedArray[]): string {
  const h = new Sha256();
  h.update(utf8.encode(MAGIC));
  for (const a of arrays) {
    checkArray(a);
    const bytes = arrayBytes(a);
    h.update(utf8.encode(`${a.name}\t${a.dtype}\t${a.shape.join('x')}\t${bytes.length}\n`));
    h.update(bytes);
  }
  return h.hex();
}

/** SHA-256 of one array alone (diagnostics: which tensor of an operation differs). */
export function digestOne(a: NamedArray): string {
  return digest([a]);
}
