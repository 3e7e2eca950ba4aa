/**
 * SHA-256 of the result bits of every math routine over a fixed sweep (sweep.ts, fixed seed).
 * Run directly it prints one JSON object; core/math/cross-runtime.test.ts runs it under
 * Node (in-process), Deno and Bun and requires identical hashes:
 *   node_modules/.bin/deno run --no-lock -A core/math/cross-runtime-hashes.ts [count]
 *   node_modules/.bin/bun core/math/cross-runtime-hashes.ts [count]
 * Uses only WebCrypto (crypto.subtle), which all three runtimes provide.
 */
import * as M from './index.ts';
import { binaryInputs, unaryInputs } from './sweep.ts';

export const HASH_COUNT = 250_000;

const UNARY: Record<string, (x: number) => number> = {
  f32: M.f32,
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
  sqrtFast: M.sqrtFast,
  rsqrtFast: M.rsqrtFast,
};
const BINARY: Record<string, (a: number, b: number) => number> = { div: M.div, divFast: M.divFast, add: M.add, sub: M.sub, mul: M.mul };

async function sha256Hex(bytes: ArrayBuffer): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(d, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** name -> SHA-256 hex of the f32 result bits (inputs included in the sweep's order). */
export async function mathHashes(count = HASH_COUNT): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [name, fn] of Object.entries(UNARY)) {
    // f32 has no sweep domain of its own: it reuses exp's inputs (every bit class is there);
    // the Fast forms use their generated twin's inputs, so equal hashes also mean equal bits.
    const xs = unaryInputs(name === 'f32' ? 'exp' : name.replace('Fast', ''), count);
    const res = new Float32Array(count);
    for (let i = 0; i < count; i++) res[i] = fn(xs[i]!);
    out[name] = await sha256Hex(res.buffer);
  }
  for (const [name, fn] of Object.entries(BINARY)) {
    const [a, b] = binaryInputs('div', count);
    const res = new Float32Array(count);
    for (let i = 0; i < count; i++) res[i] = fn(a[i]!, b[i]!);
    out[name] = await sha256Hex(res.buffer);
  }
  return out;
}

if ((import.meta as { main?: boolean }).main) {
  const g = globalThis as { Deno?: { args: string[] }; process?: { argv: string[] } };
  const args = g.Deno ? g.Deno.args : (g.process?.argv.slice(2) ?? []);
  const count = args[0] ? Number(args[0]) : HASH_COUNT;
  console.log(JSON.stringify(await mathHashes(count)));
}
