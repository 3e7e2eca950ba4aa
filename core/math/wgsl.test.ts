import { describe, expect, it } from 'vitest';
import * as M from './index.ts';
import { binaryInputs, unaryInputs } from './sweep.ts';
import { type EvalMode, WgslEvaluator } from './wgsl-eval.ts';
import { WGSL_ROUTINES, wgslMathLibrary } from './wgsl.ts';

const F = new Float32Array(1);
const U = new Uint32Array(F.buffer);
const bits = (v: number): number => {
  F[0] = v;
  return U[0]!;
};
const SRC = wgslMathLibrary();
const code = (src: string): string => src.replace(/\/\/[^\n]*/g, ''); // comments out

/** Routines whose WGSL (evaluated as a GPU might) differs from the generated TypeScript. */
function mismatches(src: string, mode: EvalMode, count: number): Record<string, number> {
  const ev = new WgslEvaluator(src, mode);
  ev.globals.set('heddle_nz', -0); // what the kernel reads from its buffer
  const out: Record<string, number> = {};
  for (const name of WGSL_ROUTINES) {
    let bad = 0;
    if (name === 'div') {
      const [a, b] = binaryInputs(name, count, 21);
      for (let i = 0; i < count; i++) if (bits(ev.call('heddle_div', a[i]!, b[i]!)) !== bits(M.div(a[i]!, b[i]!))) bad++;
    } else {
      const fn = (M as unknown as Record<string, (x: number) => number>)[name]!;
      for (const x of unaryInputs(name, count, 21)) if (bits(ev.call(`heddle_${name}`, x)) !== bits(fn(x))) bad++;
    }
    out[name] = bad;
  }
  return out;
}
const zeros = Object.fromEntries(WGSL_ROUTINES.map((n) => [n, 0]));

describe('WGSL library: structure', () => {
  it('emits every routine once, with balanced brackets', () => {
    for (const n of WGSL_ROUTINES) expect(SRC.match(new RegExp(`\\bfn heddle_${n}\\(`, 'g'))?.length, n).toBe(1);
    const c = code(SRC);
    for (const [o, cl] of [['(', ')'], ['{', '}']] as const) expect(c.split(o).length, o).toBe(c.split(cl).length);
    expect(SRC).toContain('var<private> heddle_nz: f32;');
  });

  it('calls no float builtin that differs between adapters, and never divides', () => {
    const c = code(SRC);
    const forbidden = /\b(exp|exp2|log|log2|pow|sqrt|inverseSqrt|sin|cos|tan|tanh|sinh|cosh|asin|acos|atan|atan2|fma|ldexp|frexp|modf|round|floor|ceil|trunc|fract|mix|smoothstep|step|sign|clamp|min|max|abs|saturate|quantizeToF16)\s*\(/;
    expect(c.match(forbidden)?.[0] ?? null).toBe(null);
    expect(c.includes('/')).toBe(false);
    // Inf / NaN literals are shader-creation errors: they must be built from heddle_nz.
    for (const m of c.matchAll(/bitcast<f32>\(0x([0-9a-f]+)u\)/g)) expect((Number.parseInt(m[1]!, 16) >>> 23) & 0xff, m[0]).not.toBe(0xff);
    expect(c).toContain('bitcast<f32>(bitcast<u32>(heddle_nz) ^ 0xffc00000u)'); // the NaN
  });

  it('puts every f32 product inside the contraction barrier (a * b) + heddle_nz', () => {
    let products = 0;
    for (const line of code(SRC).split('\n')) {
      if (!line.includes('*')) continue;
      if (/^\s*let t\d+: [ui]32 = \(\S+ \* \S+\);$/.test(line)) continue; // integer multiply
      expect(line, line).toMatch(/^\s*let t\d+: f32 = heddle_ftz\(\(\S+ \* \S+\) \+ heddle_nz\);$/);
      products++;
    }
    expect(products).toBeGreaterThan(100);
  });

  it('flushes every float result explicitly', () => {
    for (const line of code(SRC).split('\n')) {
      const m = /^\s*let t\d+: f32 = (.*);$/.exec(line);
      if (!m) continue;
      // + - * go through heddle_ftz; the rest are exact bit operations, conversions or calls.
      if (/[+\-*]/.test(m[1]!.replace(/heddle_ftz\(.*\)$/, ''))) expect.fail(`unflushed arithmetic: ${line}`);
    }
  });

  it('includes what a subset calls, and rejects unknown names', () => {
    const s = wgslMathLibrary(['rsqrt']);
    expect(s).toContain('fn heddle_div(');
    expect(s).toContain('fn heddle_sqrt(');
    expect(s).not.toContain('fn heddle_exp(');
    expect(() => wgslMathLibrary(['expm1'])).toThrow(/unknown math routine/);
    expect(wgslMathLibrary(['exp'], { declareNz: false })).not.toContain('var<private>');
  });
});

describe('WGSL library: evaluated as emitted, agrees with the TypeScript bits', () => {
  it('on an adapter that keeps subnormals and does not fuse', () => {
    expect(mismatches(SRC, { hwFlush: false, fuse: false }, 5000)).toEqual(zeros);
  });
  it('on an adapter that flushes subnormals and fuses every raw a*b+c (NVIDIA-like)', () => {
    expect(mismatches(SRC, { hwFlush: true, fuse: true }, 5000)).toEqual(zeros);
  });
  it('the adversaries are real: without the barrier or the explicit FTZ the bits change', () => {
    const noBarrier = SRC.replaceAll(') + heddle_nz)', '))');
    const fused = mismatches(noBarrier, { hwFlush: false, fuse: true }, 2000);
    expect(Object.values(fused).reduce((a, b) => a + b, 0)).toBeGreaterThan(50);
    const noFtz = SRC.replace(/fn heddle_ftz\(v: f32\) -> f32 \{[^}]*\}/, 'fn heddle_ftz(v: f32) -> f32 {\n  return v;\n}');
    const kept = mismatches(noFtz, { hwFlush: false, fuse: false }, 2000);
    expect(Object.values(kept).reduce((a, b) => a + b, 0)).toBeGreaterThan(50);
  });
});
