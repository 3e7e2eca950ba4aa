/**
 * Dense 2048x2048 forward throughput (GFLOP/s), Heddle's bit-exact kernel next to a naive
 * f32 loop and a plain float64 loop (not bit-exact; shows the ceiling of unrounded JS), in
 * the same run. Not a test: figures vary with the machine and its load.
 *
 *   npm run build && node dist/bench-dense.js [--size 2048] [--seconds 2]
 */
import { linearForward } from '../core/kernels/linear.ts';
import { Prng } from '../core/prng.ts';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

const size = arg('size', 2048);
const seconds = arg('seconds', 2);

/** The obvious f32 loop: one output at a time, every step rounded, no blocking, no flush. */
function naiveF32(x: Float32Array, rows: number, k: number, w: Float32Array, b: Float32Array, o: number): Float32Array {
  const y = new Float32Array(rows * o);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < o; j++) {
      let acc = 0;
      for (let i = 0; i < k; i++) acc = Math.fround(acc + Math.fround(w[j * k + i] * x[r * k + i]));
      y[r * o + j] = Math.fround(acc + b[j]);
    }
  }
  return y;
}

/** Unrounded float64 accumulation: fast but not reproducible across backends. */
function plainF64(x: Float32Array, rows: number, k: number, w: Float32Array, b: Float32Array, o: number): Float32Array {
  const y = new Float32Array(rows * o);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < o; j++) {
      let acc = 0;
      for (let i = 0; i < k; i++) acc += w[j * k + i] * x[r * k + i];
      y[r * o + j] = acc + b[j];
    }
  }
  return y;
}

function measure(fn: () => void, flops: number): number {
  fn(); // warm-up (JIT)
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < seconds * 1000) {
    fn();
    n++;
    t = performance.now();
  }
  return (flops * n) / ((t - t0) / 1000) / 1e9;
}

const rng = new Prng(1);
const w = new Float32Array(size * size).map(() => rng.uniformRange(-0.05, 0.05));
const b = new Float32Array(size).map(() => rng.uniformRange(-0.05, 0.05));
console.log(`dense ${size}x${size} forward, ${seconds}s per cell, runtime ${typeof process !== 'undefined' ? process.version : 'unknown'}`);
console.log('batch | heddle bit-exact | naive f32 loop | plain f64 (not exact) | GFLOP/s');
for (const batch of [1, 32]) {
  const x = new Float32Array(batch * size).map(() => rng.uniformRange(-1, 1));
  const flops = 2 * batch * size * size;
  const h = measure(() => void linearForward(x, batch, size, w, b, size), flops);
  const nv = measure(() => void naiveF32(x, batch, size, w, b, size), flops);
  const pf = measure(() => void plainF64(x, batch, size, w, b, size), flops);
  // Same bits as the naive loop whenever no subnormal appears: a cheap self-check.
  const ref = naiveF32(x, batch, size, w, b, size);
  const same = linearForward(x, batch, size, w, b, size).every((v, i) => Object.is(v, ref[i]));
  console.log(`${String(batch).padStart(5)} | ${h.toFixed(2).padStart(16)} | ${nv.toFixed(2).padStart(14)} | ${pf.toFixed(2).padStart(21)} | ${same ? 'bits match naive' : 'BITS DIFFER'}`);
}
