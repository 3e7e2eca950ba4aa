/**
 * The wrapper columns of the conformance matrix: the C, Python and C# conformance clients
 * (conformance/wrappers/<lang>/run, docs/conformance.md "Wrapper way in") run every vector
 * through the engine process on Node, Deno and Bun, and agree with the goldens bit for bit,
 * as the TypeScript columns do. One test per way in; a way whose client is missing FAILs (the
 * wrappers are expected to ship their clients), saying which file is missing. Vectors still
 * pending (their golden run failed with an error they do not expect) FAIL in every column, as
 * in tests/conformance-matrix.test.ts.
 *
 * On the webgpu backend the wrappers have one column each, on Node (the client selects webgpu
 * in the engine before any vector; the engine runs Dawn on SwiftShader, from the environment
 * the host gives it): the same vectors, the same goldens. An engine that refuses the backend
 * FAILs the column with its message.
 *
 * Needs `npm run build` (dist/heddle-engine.mjs; `npm test` builds first).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runMatrix } from '../conformance/host/matrix.ts';
import { repoRoot } from '../conformance/host/paths.ts';
import { formatText } from '../conformance/host/report.ts';
import { loadVectors, readGolden } from '../conformance/host/vectors.ts';
import type { WayId } from '../conformance/host/ways.ts';

const RUNTIMES = ['node', 'deno', 'bun'] as const;
const WRAPPERS: { way: Exclude<WayId, 'ts'>; label: string }[] = [
  { way: 'c', label: 'C (libheddle)' },
  { way: 'python', label: 'Python' },
  { way: 'csharp', label: 'C#' },
];

function pendingVectors(root: string): Set<string> {
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

describe('conformance matrix, wrapper ways in (CPU, engine on node/deno/bun)', () => {
  for (const { way, label } of WRAPPERS) {
    it(`${way}: the ${label} client passes every implemented vector`, async () => {
      const root = repoRoot();
      const client = path.join(root, 'conformance', 'wrappers', way, 'run');
      expect(fs.existsSync(client), `the ${label} conformance client ${path.relative(root, client)} is missing: the ${way} column cannot run`).toBe(true);
      const pending = pendingVectors(root);
      const m = await runMatrix({ root, runtimes: [...RUNTIMES], backends: ['cpu'], ways: [way], timeoutMs: 540_000 });
      const text = formatText(m);
      expect(
        m.columns.map((c) => `${c.id}:${c.state}${c.reason ? ` (${c.reason})` : ''}`),
        text,
      ).toEqual(RUNTIMES.map((r) => `${r}/cpu/${way}:ran`));
      expect(m.vectors.length).toBeGreaterThanOrEqual(60);
      expect(m.failures.filter((f) => !pending.has(f.vector)), text).toEqual([]);
      for (const id of pending) {
        for (const c of m.columns) expect(m.cells[id][c.id].status, `${id} @ ${c.id}`).toBe('FAIL');
      }
    }, 600_000);
  }
});

describe('conformance matrix, wrapper ways in on WebGPU (engine on node, Dawn on SwiftShader)', () => {
  for (const { way, label } of WRAPPERS) {
    it(`${way}: the ${label} client passes every implemented vector on node/webgpu/${way}`, async () => {
      const root = repoRoot();
      const pending = pendingVectors(root);
      const m = await runMatrix({ root, runtimes: ['node'], backends: ['webgpu'], ways: [way] });
      const text = formatText(m);
      expect(m.columns.map((c) => `${c.id}:${c.state}${c.reason ? ` (${c.reason})` : ''}`), text).toEqual([`node/webgpu/${way}:ran`]);
      expect(m.failures.filter((f) => !pending.has(f.vector)), text).toEqual([]);
    }, 900_000);
  }
});
