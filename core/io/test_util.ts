/** Helpers shared by the persistence tests (not part of the library API). */
import { expect } from 'vitest';
import { HeddleError } from '../errors.ts';

/** Assert that `f` throws a HeddleError with `code` whose message contains every one of `parts`. */
export function expectError(f: () => unknown, code: string, ...parts: string[]): HeddleError {
  let caught: unknown;
  try {
    f();
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected a HeddleError').toBeInstanceOf(HeddleError);
  const err = caught as HeddleError;
  expect(err.code, err.message).toBe(code);
  for (const p of parts) expect(err.message).toContain(p);
  return err;
}

/** A safetensors file from raw parts: u64 LE header length, the header text as given, then the data bytes. */
export function rawSafetensors(header: string, data: ArrayLike<number> = []): Uint8Array {
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setUint32(0, h.length, true);
  out.set(h, 8);
  out.set(Array.from(data), 8 + h.length);
  return out;
}

export function hex(s: string): Uint8Array {
  const clean = s.replace(/\s+/g, '');
  const out = new Uint8Array(clean.length / 2);
  for (let k = 0; k < out.length; k++) out[k] = parseInt(clean.slice(2 * k, 2 * k + 2), 16);
  return out;
}

export function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}
