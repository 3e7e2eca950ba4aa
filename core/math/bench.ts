/**
 * Micro-benchmark of the deterministic routines (not a test):
 *   npx esbuild core/math/bench.ts --bundle --format=esm --platform=neutral | node --input-type=module
 *   node_modules/.bin/deno run core/math/bench.ts        node_modules/.bin/bun core/math/bench.ts
 * Functions are timed in interleaved short rounds and the best round counts, so a busy
 * machine (other processes taking the CPU) distorts the numbers less.
 */
import * as M from './index.ts';

const N = 1 << 13;
const ROUNDS = 600;
const xs = new Float32Array(N);
for (let i = 0; i < N; i++) xs[i] = Math.fround(-8 + (16 * i) / N);
const pos = new Float32Array(N);
for (let i = 0; i < N; i++) pos[i] = Math.fround(0.001 + (100 * i) / N);

const cases: [string, (x: number) => number, Float32Array][] = [
  ['f32', M.f32, xs],
  ['exp', M.exp, xs],
  ['tanh', M.tanh, xs],
  ['sigmoid', M.sigmoid, xs],
  ['softplus', M.softplus, xs],
  ['gelu', M.gelu, xs],
  ['erf', M.erf, xs],
  ['log', M.log, pos],
  ['sin', M.sin, xs],
  ['cos', M.cos, xs],
  ['sqrt', M.sqrt, pos],
  ['rsqrt', M.rsqrt, pos],
  ['div 1/x', (x) => M.div(1, x), pos],
  ['divFast', (x) => M.divFast(1, x), pos],
  ['Math.exp', (x) => Math.fround(Math.exp(x)), xs],
  ['Math.tanh', (x) => Math.fround(Math.tanh(x)), xs],
];

// One separately compiled loop per case keeps each call site monomorphic (inlinable), as in
// a real activation loop.
type Loop = (f: (x: number) => number, input: Float32Array, out: Float32Array) => void;
const loops = cases.map(() => new Function('f', 'input', 'out', 'for (let i = 0; i < input.length; i++) out[i] = f(input[i]);') as Loop);
const best = cases.map(() => Infinity);
const out = new Float32Array(N);
for (let round = 0; round < ROUNDS; round++) {
  for (let c = 0; c < cases.length; c++) {
    const [, f, input] = cases[c]!;
    const t0 = performance.now();
    loops[c]!(f, input, out);
    best[c] = Math.min(best[c]!, performance.now() - t0);
  }
}
for (let c = 0; c < cases.length; c++) {
  const ms = best[c]!;
  console.log(`${cases[c]![0].padEnd(10)} ${((N / ms) * 1e-3).toFixed(1).padStart(6)} M calls/s  (${((ms * 1e6) / N).toFixed(1)} ns/call)`);
}
