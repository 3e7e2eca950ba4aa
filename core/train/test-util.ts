// Shared helpers for the training tests (not exported from the package).
import type { NamedParam } from '../network.ts';
import { Tensor } from '../tensor.ts';

/** Parameters with given values and grads, named p0, p1, ... */
export function makeParams(values: number[][], grads: number[][]): NamedParam[] {
  return values.map((v, i) => ({
    name: `p${i}`,
    param: { name: `p${i}`, value: Tensor.from([v.length], v), grad: Tensor.from([v.length], grads[i]) },
  }));
}

export function bits(a: Float32Array): number[] {
  return Array.from(new Uint32Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength)));
}

/** Distance in units in the last place between two f32 values (as ordered integers). */
export function ulpDiff(a: number, b: number): number {
  const ord = (x: number): number => {
    const u = new Uint32Array(Float32Array.of(x).buffer)[0];
    return u & 0x80000000 ? -(u & 0x7fffffff) : u;
  };
  return Math.abs(ord(a) - ord(b));
}
