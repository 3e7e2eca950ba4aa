/**
 * Accuracy of the deterministic routines against float64 references, in f32 ulps.
 *
 *   node_modules/.bin/bun core/math/accuracy.ts [inputsPerRoutine]     (default 2,000,000)
 *
 * Prints a Markdown table (the one in docs/math.md). The vitest suite runs `measure` on a
 * smaller sweep and fails when a routine exceeds its documented bound (BOUNDS).
 */
import * as M from './index.ts';
import { REFERENCE, ulpError } from './reference.ts';
import { binaryInputs, unaryInputs } from './sweep.ts';

/** Documented worst-case error per routine, in ulps (docs/math.md). */
export const BOUNDS: Record<string, number> = {
  exp: 1,
  log: 1,
  tanh: 2,
  sigmoid: 2.5,
  softplus: 2,
  erf: 1.5,
  erfc: 4,
  gelu: 4.5,
  sin: 1,
  cos: 1,
  sqrt: 0.5,
  rsqrt: 1.5,
  div: 0.5,
};

export const UNARY: Record<string, (x: number) => number> = {
  exp: M.exp,
  log: M.log,
  tanh: M.tanh,
  sigmoid: M.sigmoid,
  softplus: M.softplus,
  erf: M.erf,
  erfc: M.erfc,
  gelu: M.gelu,
  sin: M.sin,
  cos: M.cos,
  sqrt: M.sqrt,
  rsqrt: M.rsqrt,
};

export interface Measured {
  name: string;
  count: number;
  maxUlp: number;
  /** Input(s) where maxUlp occurs. */
  at: number[];
  /** Results that are not the f32 nearest to the reference (after FTZ). */
  notNearest: number;
}

const MIN_NORMAL = 1.1754943508222875e-38;
function ftz(v: number): number {
  return v > -MIN_NORMAL && v < MIN_NORMAL ? v * 0 : v;
}
function flushIn(v: number): number {
  return ftz(Math.fround(v));
}

/** Measure one routine on explicit inputs (b only for div). */
export function measureInputs(name: string, a: Float32Array, b?: Float32Array): Measured {
  const ref = REFERENCE[name]!;
  let maxUlp = 0;
  let at: number[] = [];
  let notNearest = 0;
  const note = (err: number, got: number, r: number, args: number[]): void => {
    if (err > maxUlp || Number.isNaN(err)) {
      maxUlp = Number.isNaN(err) ? Infinity : err;
      at = args;
    }
    const nearest = ftz(Math.fround(r));
    if (!Object.is(got, nearest) && !(Number.isNaN(got) && Number.isNaN(nearest)) && !(got === 0 && nearest === 0)) notNearest++;
  };
  if (b) {
    for (let i = 0; i < a.length; i++) {
      const x = flushIn(a[i]!);
      const y = flushIn(b[i]!);
      const got = M.div(x, y);
      const r = ref(x, y);
      note(ulpError(got, r), got, r, [x, y]);
    }
  } else {
    const fn = UNARY[name]!;
    for (let i = 0; i < a.length; i++) {
      const x = flushIn(a[i]!);
      const got = fn(x);
      const r = ref(x);
      note(ulpError(got, r), got, r, [x]);
    }
  }
  return { name, count: a.length, maxUlp, at, notNearest };
}

/** Measure on the standard sweep (sweep.ts). */
export function measure(name: string, count: number, seed = 1): Measured {
  if (name === 'div') {
    const [a, b] = binaryInputs(name, count, seed);
    return measureInputs(name, a, b);
  }
  return measureInputs(name, unaryInputs(name, count, seed));
}

/** Every `stride`-th f32 bit pattern (all 2^32 / stride of them), in chunks. */
export function measureStrided(name: string, stride: number): Measured {
  let total: Measured = { name, count: 0, maxUlp: 0, at: [], notNearest: 0 };
  const chunk = 1 << 20;
  const xs = new Float32Array(chunk);
  const u = new Uint32Array(xs.buffer);
  for (let start = 0; start < 2 ** 32; start += stride * chunk) {
    let n = 0;
    for (let bits = start; n < chunk && bits < 2 ** 32 && bits < start + stride * chunk; bits += stride) u[n++] = bits;
    const m = measureInputs(name, xs.subarray(0, n));
    total = {
      name,
      count: total.count + m.count,
      maxUlp: Math.max(total.maxUlp, m.maxUlp),
      at: m.maxUlp > total.maxUlp ? m.at : total.at,
      notNearest: total.notNearest + m.notNearest,
    };
  }
  return total;
}

export const ROUTINE_NAMES = [...Object.keys(UNARY), 'div'];

function main(): void {
  const g = globalThis as { process?: { argv: string[] }; Deno?: { args: string[] } };
  const argv = g.Deno ? g.Deno.args : (g.process?.argv.slice(2) ?? []);
  const si = argv.indexOf('--stride');
  const stride = si >= 0 ? Number(argv[si + 1]) : 0;
  const rest = si >= 0 ? [...argv.slice(0, si), ...argv.slice(si + 2)] : argv;
  const count = Number(rest[0] ?? 2_000_000);
  const only = rest.slice(1);
  console.log(`| routine | inputs | max ulp | at | not nearest f32 | bound |`);
  console.log(`|---|---:|---:|---|---:|---:|`);
  for (const name of ROUTINE_NAMES) {
    if (only.length && !only.includes(name)) continue;
    let m = measure(name, count);
    if (stride && name !== 'div') {
      const s = measureStrided(name, stride);
      m = { name, count: m.count + s.count, maxUlp: Math.max(m.maxUlp, s.maxUlp), at: s.maxUlp > m.maxUlp ? s.at : m.at, notNearest: m.notNearest + s.notNearest };
    }
    const atS = m.at.map((v) => v.toPrecision(9)).join(', ');
    const pct = ((100 * m.notNearest) / m.count).toFixed(2);
    console.log(`| ${name} | ${m.count.toLocaleString('en-US')} | ${m.maxUlp.toFixed(2)} | ${atS} | ${pct}% | ${BOUNDS[name]} |`);
  }
}

if ((import.meta as { main?: boolean }).main) main();
