/**
 * The matrix can fail. One runner (Bun) gets a modified copy of the core in which one step of
 * one kernel rounds the other way: the dense kernel's bias add for the first output of each
 * block of four (core/kernels/linear.ts, `fround(a0 + bias[o])`) returns the other f32
 * neighbour of the exact sum whenever that sum is not representable. Every result stays within
 * one ulp of the correct one, the kind of drift a 1e-3 tolerance never sees; the Bun column
 * must FAIL on vectors that use dense layers with biases while the Node column, running the
 * real core in the same matrix, passes them.
 *
 * The same for the WebGPU backend: Deno's column runs a copy whose WGSL has no explicit flush to
 * zero (WGSL_ADVERSARY.noFlush in core/backend/webgpu/shader.ts). lavapipe keeps subnormals, so
 * the vectors whose GPU arithmetic produces them FAIL there, while node/webgpu/ts passes them.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CODE_DIRS, runMatrix } from '../conformance/host/matrix.ts';
import { repoRoot } from '../conformance/host/paths.ts';
import { formatText } from '../conformance/host/report.ts';

const root = repoRoot();
const copies: string[] = [];
afterAll(() => {
  for (const c of copies) fs.rmSync(c, { recursive: true, force: true });
});

/** The code under test, copied: core/ and the in-process runners. */
function copyTree(): string {
  const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'heddle-perturbed-'));
  copies.push(copy);
  for (const dir of CODE_DIRS) {
    fs.cpSync(path.join(root, dir), path.join(copy, dir), { recursive: true, filter: (src) => !src.endsWith('.test.ts') });
  }
  return copy;
}

/** Replaces `target`, which must occur exactly once in `file` of the copy. */
function edit(copy: string, file: string, target: string, replacement: string): void {
  const p = path.join(copy, file);
  const src = fs.readFileSync(p, 'utf8');
  // If the code was rewritten, pick a new step to break; the point is that one step changes.
  expect(src.split(target).length - 1, `the perturbation target '${target}' is not (exactly once) in ${file} any more; update this test`).toBe(1);
  fs.writeFileSync(p, src.replace(target, replacement));
}

const TARGET = 'fround(a0 + bias[o])';

/** Rounds x (a float64 sum of two f32 values) to the f32 on the other side of x from fround(x). */
const FLIP = `
function flipRound(x: number): number {
  const r = Math.fround(x);
  if (r === x || r === 0 || !Number.isFinite(r)) return r;
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  f[0] = r;
  if ((r > x) === (r > 0)) u[0] -= 1;
  else u[0] += 1;
  return f[0];
}
`;

function perturb(copy: string): void {
  edit(copy, 'core/kernels/linear.ts', TARGET, 'flipRound(a0 + bias[o])');
  fs.appendFileSync(path.join(copy, 'core/kernels/linear.ts'), FLIP);
}

describe('a perturbed kernel', () => {
  it('flipping the rounding of one step in one runtime makes that column FAIL', async () => {
    const copy = copyTree();
    perturb(copy);
    const vectors = ['layers/dense', 'networks/mlp', 'optimizers/adamw', 'layers/layer_norm'];
    const m = await runMatrix({ root, runtimes: ['node', 'bun'], backends: ['cpu'], ways: ['ts'], vectors, sources: { bun: copy } });
    const text = formatText(m);
    expect(m.ok, text).toBe(false);
    const bun = m.columns.find((c) => c.id === 'bun/cpu/ts')!;
    const node = m.columns.find((c) => c.id === 'node/cpu/ts')!;
    expect(node.counts, text).toEqual({ pass: m.vectors.length, fail: 0, skip: 0 });
    // Dense layers with four or more outputs and a nonzero bias go through the flipped step (it
    // changes a result only where the exact sum is not an f32, so these vectors have many such
    // sums); layers/dense (3 outputs) only uses the kernel's remainder loop, layer_norm no dense.
    for (const id of ['layers/dense-odd-sizes', 'networks/mlp', 'optimizers/adamw']) {
      expect(m.cells[id]['bun/cpu/ts'].status, `${id}\n${text}`).toBe('FAIL');
      expect(m.cells[id]['bun/cpu/ts'].reason).toMatch(/sha256 [0-9a-f]{12} != golden [0-9a-f]{12}; differing arrays: /);
    }
    expect(m.cells['networks/mlp']['bun/cpu/ts'].reason).toMatch(/^0:forward: sha256 .*differing arrays: output;/);
    for (const id of ['layers/dense', 'layers/layer_norm']) expect(m.cells[id]['bun/cpu/ts'].status, `${id}\n${text}`).toBe('pass');
    expect(bun.counts.fail).toBeGreaterThanOrEqual(3);
    expect(m.failures.every((f) => f.column === 'bun/cpu/ts')).toBe(true);
  }, 300_000);

  it('the WebGPU backend without its explicit flush FAILs on lavapipe (Deno keeps subnormals)', async () => {
    const copy = copyTree();
    edit(copy, 'core/backend/webgpu/shader.ts', 'noFlush: false,', 'noFlush: true,');
    const vectors = ['hard/subnormal-inputs', 'hard/subnormal-products', 'layers/dense', 'layers/layer_norm'];
    const m = await runMatrix({ root, runtimes: ['node', 'deno'], backends: ['webgpu'], ways: ['ts'], vectors, sources: { deno: copy } });
    const text = formatText(m);
    expect(m.columns.map((c) => `${c.id}:${c.state}`), text).toEqual(['node/webgpu/ts:ran', 'deno/webgpu/ts:ran']);
    expect(m.columns[0].counts, text).toEqual({ pass: m.vectors.length, fail: 0, skip: 0 });
    // Subnormal inputs (flushed on entry, but products and sums of normal values land below
    // 2^-126) and subnormal products: lavapipe keeps them without the explicit flush.
    for (const id of ['hard/subnormal-inputs', 'hard/subnormal-products']) {
      expect(m.cells[id]['deno/webgpu/ts'].status, `${id}\n${text}`).toBe('FAIL');
      expect(m.cells[id]['deno/webgpu/ts'].reason).toMatch(/^0:forward: sha256 [0-9a-f]{12} != golden [0-9a-f]{12}; differing arrays: output/);
    }
    for (const id of ['layers/dense', 'layers/layer_norm']) expect(m.cells[id]['deno/webgpu/ts'].status, `${id}\n${text}`).toBe('pass');
    expect(m.failures.every((f) => f.column === 'deno/webgpu/ts')).toBe(true);
  }, 600_000);
});
