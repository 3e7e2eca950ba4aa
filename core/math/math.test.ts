import { describe, expect, it } from 'vitest';
import { BOUNDS, measure, ROUTINE_NAMES } from './accuracy.ts';
import * as M from './index.ts';
import { binaryInputs, unaryInputs } from './sweep.ts';

const F = new Float32Array(1);
const U = new Uint32Array(F.buffer);
const bits = (v: number): number => {
  F[0] = v;
  return U[0]!;
};
const FLT_MAX = 3.4028234663852886e38;
const MIN = 2 ** -126;
const SUB = 1e-40; // a subnormal f32
const f = Math.fround;

type Row = [string, number[], number];
/** Exact expected results (bit-for-bit; every NaN must be the canonical 0x7fc00000). */
const EDGES: Row[] = [
  ['exp', [0], 1], ['exp', [-0], 1], ['exp', [SUB], 1], ['exp', [NaN], NaN], ['exp', [Infinity], Infinity],
  ['exp', [-Infinity], 0], ['exp', [89], Infinity], ['exp', [88.72283935546875], Infinity],
  ['exp', [88.72283172607422], f(Math.exp(88.72283172607422))], ['exp', [-104], 0], ['exp', [-87.5], 0],
  ['exp', [1], f(Math.E)], ['exp', [2 ** -30], 1],
  ['log', [0], -Infinity], ['log', [-0], -Infinity], ['log', [SUB], -Infinity], ['log', [-1], NaN], ['log', [-SUB], -Infinity],
  ['log', [1], 0], ['log', [Infinity], Infinity], ['log', [-Infinity], NaN], ['log', [NaN], NaN], ['log', [2], f(Math.LN2)],
  ['tanh', [0], 0], ['tanh', [-0], -0], ['tanh', [SUB], 0], ['tanh', [-SUB], -0], ['tanh', [10], 1], ['tanh', [-10], -1],
  ['tanh', [Infinity], 1], ['tanh', [-Infinity], -1], ['tanh', [NaN], NaN], ['tanh', [2 ** -20], 2 ** -20],
  ['sigmoid', [0], 0.5], ['sigmoid', [-0], 0.5], ['sigmoid', [Infinity], 1], ['sigmoid', [-Infinity], 0], ['sigmoid', [18], 1],
  ['sigmoid', [-100], 0], ['sigmoid', [-88.5], 0], ['sigmoid', [NaN], NaN],
  ['softplus', [0], f(Math.LN2)], ['softplus', [100], 100], ['softplus', [16], 16], ['softplus', [Infinity], Infinity],
  ['softplus', [-Infinity], 0], ['softplus', [-100], 0], ['softplus', [NaN], NaN],
  ['erf', [0], 0], ['erf', [-0], -0], ['erf', [SUB], 0], ['erf', [Infinity], 1], ['erf', [-Infinity], -1], ['erf', [5], 1],
  ['erf', [-4], -1], ['erf', [NaN], NaN],
  ['erfc', [0], 1], ['erfc', [Infinity], 0], ['erfc', [-Infinity], 2], ['erfc', [10], 0], ['erfc', [-10], 2], ['erfc', [NaN], NaN],
  ['gelu', [0], 0], ['gelu', [-0], -0], ['gelu', [Infinity], Infinity], ['gelu', [-Infinity], -0], ['gelu', [10], 10],
  ['gelu', [-20], -0], ['gelu', [NaN], NaN], ['gelu', [SUB], 0],
  ['sin', [0], 0], ['sin', [-0], -0], ['sin', [SUB], 0], ['sin', [-SUB], -0], ['sin', [Infinity], NaN], ['sin', [-Infinity], NaN],
  ['sin', [NaN], NaN], ['sin', [2 ** 18], NaN], ['sin', [196608.015625], NaN], ['sin', [2 ** -13], 2 ** -13],
  ['cos', [0], 1], ['cos', [-0], 1], ['cos', [Infinity], NaN], ['cos', [NaN], NaN], ['cos', [-(2 ** 18)], NaN],
  ['sqrt', [0], 0], ['sqrt', [-0], -0], ['sqrt', [-1], NaN], ['sqrt', [Infinity], Infinity], ['sqrt', [-Infinity], NaN],
  ['sqrt', [4], 2], ['sqrt', [SUB], 0], ['sqrt', [-SUB], -0], ['sqrt', [NaN], NaN], ['sqrt', [2], f(Math.SQRT2)],
  ['sqrt', [FLT_MAX], f(Math.sqrt(FLT_MAX))], ['sqrt', [MIN], 2 ** -63],
  ['rsqrt', [0], Infinity], ['rsqrt', [-0], -Infinity], ['rsqrt', [-1], NaN], ['rsqrt', [Infinity], 0], ['rsqrt', [4], 0.5],
  ['rsqrt', [NaN], NaN], ['rsqrt', [SUB], Infinity],
  ['div', [1, 0], Infinity], ['div', [-1, 0], -Infinity], ['div', [1, -0], -Infinity], ['div', [0, 0], NaN],
  ['div', [Infinity, Infinity], NaN], ['div', [Infinity, -2], -Infinity], ['div', [2, Infinity], 0], ['div', [-2, Infinity], -0],
  ['div', [1, 3], f(1 / 3)], ['div', [6, 3], 2], ['div', [MIN, 2], 0], ['div', [-MIN, 2], -0], ['div', [FLT_MAX, 0.5], Infinity],
  ['div', [SUB, 1], 0], ['div', [1, SUB], Infinity], ['div', [NaN, 1], NaN], ['div', [0, NaN], NaN], ['div', [0, 5], 0],
  // MIN (2 - 2^-23) / 2 is a tie on the subnormal grid; IEEE rounds it up to MIN, which FTZ keeps.
  ['div', [MIN * 1.9999999, 2], MIN], ['div', [MIN * 1.9999997, 2], 0], ['div', [MIN * (2 - 2 ** -23), 2 - 2 ** -23], MIN],
  ['div', [3 * MIN, 2], f(1.5 * MIN)],
  ['f32', [SUB], 0], ['f32', [-SUB], -0], ['f32', [1.1], f(1.1)], ['f32', [NaN], NaN], ['f32', [1e39], Infinity],
  ['add', [SUB, 0], 0], ['add', [MIN, SUB], MIN], ['add', [MIN * 1.5, -MIN], 0], ['add', [-MIN * 1.5, MIN], -0], ['add', [NaN, 1], NaN],
  ['sub', [MIN * 1.5, MIN], 0], ['sub', [1, 1], 0], ['sub', [Infinity, Infinity], NaN],
  ['mul', [1e-20, 1e-20], 0], ['mul', [-1e-20, 1e-20], -0], ['mul', [SUB, 1e30], 0], ['mul', [0, Infinity], NaN], ['mul', [FLT_MAX, 2], Infinity],
];

describe('math edge cases', () => {
  it.each(EDGES.map((r) => [`${r[0]}(${r[1].join(', ')})`, r] as const))('%s', (_label, [name, args, want]) => {
    const fn = (M as unknown as Record<string, (...a: number[]) => number>)[name]!;
    const got = fn(...args);
    if (Number.isNaN(want)) expect(bits(got).toString(16)).toBe('7fc00000');
    else expect(bits(got).toString(16)).toBe(bits(want).toString(16));
  });
});

describe('math accuracy (documented ulp bounds, docs/math.md)', () => {
  it.each(ROUTINE_NAMES)('%s', (name) => {
    const m = measure(name, 120_000, 3);
    expect(m.maxUlp, `${name}: ${m.maxUlp} ulp at ${m.at.join(', ')}`).toBeLessThanOrEqual(BOUNDS[name]!);
  });
});

const MINN = 1.1754943508222875e-38;
const ftzR = (v: number): number => (v > -MINN && v < MINN ? v * 0 : Number.isNaN(v) ? NaN : v);
const ftzIn = (v: number): number => ftzR(f(v));

describe('correct rounding', () => {
  it('div(a, b) is IEEE a/b rounded to f32, then FTZ', () => {
    const [a, b] = binaryInputs('div', 300_000, 11);
    let bad = 0;
    for (let i = 0; i < a.length; i++) {
      const want = ftzR(f(ftzIn(a[i]!) / ftzIn(b[i]!)));
      if (bits(M.div(a[i]!, b[i]!)) !== bits(want)) bad++;
    }
    expect(bad).toBe(0);
  });
  it('sqrt(x) is IEEE sqrt rounded to f32', () => {
    const xs = unaryInputs('sqrt', 300_000, 11);
    let bad = 0;
    for (const x of xs) if (bits(M.sqrt(x)) !== bits(ftzR(f(Math.sqrt(ftzIn(x)))))) bad++;
    expect(bad).toBe(0);
  });
});

describe('fast CPU forms are bit-identical to the generated ones', () => {
  it('divFast = div', () => {
    const [a, b] = binaryInputs('div', 300_000, 13);
    let bad = 0;
    for (let i = 0; i < a.length; i++) if (bits(M.divFast(a[i]!, b[i]!)) !== bits(M.div(a[i]!, b[i]!))) bad++;
    expect(bad).toBe(0);
  });
  it.each([['sqrtFast', 'sqrt'], ['rsqrtFast', 'rsqrt']] as const)('%s = %s', (fast, slow) => {
    let bad = 0;
    for (const x of unaryInputs(slow, 300_000, 13)) if (bits(M[fast](x)) !== bits(M[slow](x))) bad++;
    expect(bad).toBe(0);
  });
});

describe('symmetry (bit-exact)', () => {
  const odd = ['sin', 'tanh', 'erf'] as const;
  it.each(odd)('%s(-x) = -%s(x)', (name) => {
    const fn = M[name];
    for (const x of unaryInputs(name, 50_000, 5)) {
      const a = fn(-x), b = fn(x);
      if (!Number.isNaN(b)) expect(bits(a)).toBe(bits(-b));
    }
  });
  it('cos(-x) = cos(x)', () => {
    for (const x of unaryInputs('cos', 50_000, 5)) expect(bits(M.cos(-x))).toBe(bits(M.cos(x)));
  });
});
