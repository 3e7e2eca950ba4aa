/**
 * The conformance matrix on the WebGPU backend: Node and Bun (Dawn, the npm package `webgpu`,
 * on SwiftShader), Deno (its own WebGPU on Mesa's lavapipe, which keeps subnormals) and headless
 * Chromium (its own WebGPU on its bundled SwiftShader) run every vector through forwardAsync /
 * gradAsync / trainAsync and must give the goldens of node / cpu / ts bit for bit. Every column
 * must run: the setup installs the drivers, and a backend that finds no adapter FAILs its column
 * (shown by a runner whose GPU object has none). Vectors still pending FAIL everywhere, as in
 * tests/conformance-matrix.test.ts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CODE_DIRS, runMatrix } from '../conformance/host/matrix.ts';
import { repoRoot } from '../conformance/host/paths.ts';
import { formatText } from '../conformance/host/report.ts';
import { loadVectors, readGolden } from '../conformance/host/vectors.ts';

const root = repoRoot();
const copies: string[] = [];
afterAll(() => {
  for (const c of copies) fs.rmSync(c, { recursive: true, force: true });
});

function pendingVectors(): Set<string> {
  const golden = readGolden(root);
  return new Set(
    loadVectors(root)
      .filter(({ vector }) =>
        vector.ops.some((op, i) => {
          const g = golden.vectors[vector.id]?.ops[`${i}:${op.op}${op.op === 'roundtrip' ? `-${op.format}` : ''}`];
          return g?.error !== undefined && g.error !== op.expect_error;
        }),
      )
      .map(({ vector }) => vector.id),
  );
}

describe('conformance matrix, WebGPU', () => {
  it('node, bun (SwiftShader), deno (lavapipe) and chromium (SwiftShader) give the golden bits for every vector', async () => {
    const pending = pendingVectors();
    const m = await runMatrix({ root, backends: ['webgpu'], ways: ['ts'] });
    const text = formatText(m);
    expect(m.columns.map((c) => `${c.id}:${c.state}${c.reason ? ` (${c.reason})` : ''}`), text).toEqual(['node/webgpu/ts:ran', 'deno/webgpu/ts:ran', 'bun/webgpu/ts:ran', 'chromium/webgpu/ts:ran']);
    const adapter = Object.fromEntries(m.columns.map((c) => [c.runtime, c.adapter ?? '']));
    expect(adapter.node, text).toMatch(/SwiftShader/i);
    expect(adapter.bun, text).toMatch(/SwiftShader/i);
    expect(adapter.deno, text).toMatch(/llvmpipe|lavapipe/i);
    expect(adapter.chromium, text).toMatch(/swiftshader/i);
    expect(m.vectors.length).toBeGreaterThanOrEqual(60);
    expect(m.failures.filter((f) => !pending.has(f.vector)), text).toEqual([]);
    for (const id of pending) for (const c of m.columns) expect(m.cells[id][c.id].status, `${id} @ ${c.id}`).toBe('FAIL');
  }, 1_500_000);

  it('a runner that finds no adapter FAILs its whole column with BACKEND_UNAVAILABLE (not a skip)', async () => {
    const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'heddle-no-adapter-'));
    copies.push(copy);
    for (const dir of CODE_DIRS) fs.cpSync(path.join(root, dir), path.join(copy, dir), { recursive: true, filter: (src) => !src.endsWith('.test.ts') });
    const worker = path.join(copy, 'conformance/runner/worker.ts');
    const target = 'runRequest(req, { gpu })';
    const src = fs.readFileSync(worker, 'utf8');
    expect(src.split(target).length - 1, `'${target}' is not (exactly once) in conformance/runner/worker.ts any more; update this test`).toBe(1);
    fs.writeFileSync(worker, src.replace(target, 'runRequest(req, { gpu: async () => ({ requestAdapter: async () => null }) as never })'));
    const m = await runMatrix({ root, runtimes: ['bun'], backends: ['webgpu'], ways: ['ts'], vectors: ['layers/dense', 'networks/mlp'], sources: { bun: copy } });
    const text = formatText(m);
    const col = m.columns[0];
    expect(col.state, text).toBe('crashed');
    expect(col.reason).toMatch(/^the webgpu backend could not start on bun\/webgpu\/ts: BACKEND_UNAVAILABLE: .*found no adapter/);
    expect(col.counts).toEqual({ pass: 0, fail: m.vectors.length, skip: 0 });
    expect(m.ok).toBe(false);
    expect(text).toMatch(/every vector @ bun\/webgpu\/ts:\n +the webgpu backend could not start/);
  }, 300_000);
});
