import { describe, expect, it } from 'vitest';
import { Prng } from '../prng.ts';
import { linearBackwardInput, linearBackwardParams, linearForward } from './linear.ts';

const MIN_NORMAL = 1.1754943508222875e-38;
/** Scalar reference for the documented canonical order: one f32 rounding + flush per step. */
function step(v: number): number {
  const r = Math.fround(v);
  return Math.abs(r) < MIN_NORMAL ? r * 0 : r;
}
function refForward(x: Float32Array, rows: number, k: number, w: Float32Array, b: Float32Array | null, o: number): Float32Array {
  const y = new Float32Array(rows * o);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < o; j++) {
      let a = 0;
      for (let i = 0; i < k; i++) a = step(a + step(w[j * k + i] * x[r * k + i]));
      y[r * o + j] = b ? step(a + b[j]) : a;
    }
  }
  return y;
}

function bits(a: Float32Array): number[] {
  return Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
}

function randomData(rng: Prng, n: number, tiny: boolean): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = rng.uniformRange(-1, 1);
    // Mix in values whose products land in the subnormal range (1e-20 * 1e-20 = 1e-40).
    a[i] = tiny && rng.uniform() < 0.3 ? Math.fround(u * 1e-20) : rng.uniform() < 0.05 ? 0 : u;
  }
  return a;
}

describe('linear kernel', () => {
  for (const tiny of [false, true]) {
    it(`forward matches the scalar canonical order (${tiny ? 'with' : 'without'} subnormal products)`, () => {
      const rng = new Prng(tiny ? 11 : 12);
      for (const [rows, k, o] of [[1, 1, 1], [1, 7, 5], [4, 9, 8], [5, 33, 13], [9, 16, 3], [32, 64, 12]]) {
        const x = randomData(rng, rows * k, tiny);
        const w = randomData(rng, o * k, tiny);
        const b = randomData(rng, o, tiny);
        expect(bits(linearForward(x, rows, k, w, b, o))).toEqual(bits(refForward(x, rows, k, w, b, o)));
        expect(bits(linearForward(x, rows, k, w, null, o))).toEqual(bits(refForward(x, rows, k, w, null, o)));
      }
    });
  }

  it('flushes a subnormal product (the sum starts at +0, so +0 + -0 gives +0)', () => {
    const y = linearForward(Float32Array.of(-1e-20), 1, 1, Float32Array.of(1e-20), null, 1);
    expect(Math.fround(-1e-40)).not.toBe(0); // would be a subnormal without the flush
    expect(Object.is(y[0], 0)).toBe(true);
  });

  it('backward matches the scalar canonical order', () => {
    const rng = new Prng(3);
    const [rows, k, o] = [5, 7, 6];
    const x = randomData(rng, rows * k, true);
    const w = randomData(rng, o * k, true);
    const dy = randomData(rng, rows * o, true);
    const dx = linearBackwardInput(dy, rows, o, w, k);
    const gw = new Float32Array(o * k).fill(0.5);
    const gb = new Float32Array(o).fill(0.25);
    linearBackwardParams(dy, x, rows, k, o, gw, gb);
    for (let r = 0; r < rows; r++) {
      for (let i = 0; i < k; i++) {
        let a = 0;
        for (let j = 0; j < o; j++) a = step(a + step(dy[r * o + j] * w[j * k + i]));
        expect(Object.is(dx[r * k + i], Math.fround(a))).toBe(true);
      }
    }
    for (let j = 0; j < o; j++) {
      for (let i = 0; i < k; i++) {
        let a = 0;
        for (let r = 0; r < rows; r++) a = step(a + step(dy[r * o + j] * x[r * k + i]));
        expect(Object.is(gw[j * k + i], step(0.5 + a))).toBe(true);
      }
      let bsum = 0;
      for (let r = 0; r < rows; r++) bsum = step(bsum + dy[r * o + j]);
      expect(Object.is(gb[j], step(0.25 + bsum))).toBe(true);
    }
  });
});
