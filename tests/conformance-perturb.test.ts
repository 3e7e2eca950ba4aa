/**
 * The matrix can fail. One runner (Bun) gets a modified copy of the core in which one step of
 * one kernel rounds the other way: the dense kernel's bias add for the first output of each
 * block of four (core/kernels/linear.ts, `fround(a0 + bias[o])`) returns the other f32
 * neighbour of the exact sum whenever that sum is not representable. Every result stays within
 * one ulp of the correct one, the kind of drift a 1e-3 tolerance never sees; the Bun column
 * must FAIL on vectors that use dense layers with biases while the Node column, running the
 * real core in the same matrix, passes them.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runMatrix } from '../conformance/host/matrix.ts';
import { repoRoot } from '../conformance/host/paths.ts';
import { formatText } from '../conformance/host/report.ts';

const root = repoRoot();
const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'heddle-perturbed-'));
afterAll(() => fs.rmSync(copy, { recursive: true, force: true }));

/** The code under test, copied: core/ and the in-process runners. */
function copyTree(): void {
  for (const dir of ['core', 'conformance/runner', 'conformance/browser']) {
    fs.cpSync(path.join(root, dir), path.join(copy, dir), { recursive: true, filter: (src) => !src.endsWith('.test.ts') });
  }
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

function perturb(): void {
  const file = path.join(copy, 'core/kernels/linear.ts');
  const src = fs.readFileSync(file, 'utf8');
  const hits = src.split(TARGET).length - 1;
  // If the kernel was rewritten, pick a new step to flip; the point is that one step changes.
  expect(hits, `the perturbation target '${TARGET}' is not (exactly once) in core/kernels/linear.ts any more; update this test`).toBe(1);
  fs.writeFileSync(file, src.replace(TARGET, 'flipRound(a0 + bias[o])') + FLIP);
}

describe('a perturbed kernel', () => {
  it('flipping the rounding of one step in one runtime makes that column FAIL', async () => {
    copyTree();
    perturb();
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
});
