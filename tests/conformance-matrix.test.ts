/**
 * The CPU matrix on every runtime: Node, Deno, Bun and headless Chromium, each running the core
 * in its own process through the TypeScript API, agree with the goldens bit for bit on every
 * vector whose layers exist. Vectors still pending (their golden run failed with an error they
 * do not expect, e.g. UNSUPPORTED) FAIL in every column: never a silent pass.
 */
import { describe, expect, it } from 'vitest';
import { runMatrix } from '../conformance/host/matrix.ts';
import { repoRoot } from '../conformance/host/paths.ts';
import { formatText } from '../conformance/host/report.ts';
import { loadVectors, readGolden } from '../conformance/host/vectors.ts';

describe('conformance matrix, CPU', () => {
  it('node, deno, bun and chromium pass every implemented vector; pending vectors FAIL everywhere', async () => {
    const root = repoRoot();
    const golden = readGolden(root);
    const pending = new Set(
      loadVectors(root)
        .filter(({ vector }) => vector.ops.some((op, i) => {
          const g = golden.vectors[vector.id]?.ops[`${i}:${op.op}${op.op === 'roundtrip' ? `-${op.format}` : ''}`];
          return g?.error !== undefined && g.error !== op.expect_error;
        }))
        .map(({ vector }) => vector.id),
    );
    const m = await runMatrix({ root, backends: ['cpu'], ways: ['ts'] });
    const text = formatText(m);
    expect(m.columns.map((c) => `${c.id}:${c.state}`), text).toEqual(['node/cpu/ts:ran', 'deno/cpu/ts:ran', 'bun/cpu/ts:ran', 'chromium/cpu/ts:ran']);
    expect(m.vectors.length).toBeGreaterThanOrEqual(60);
    const unexpected = m.failures.filter((f) => !pending.has(f.vector));
    expect(unexpected, text).toEqual([]);
    for (const id of pending) {
      for (const c of m.columns) expect(m.cells[id][c.id].status, `${id} @ ${c.id}`).toBe('FAIL');
    }
    expect(m.vectors.length - pending.size).toBeGreaterThanOrEqual(60);
  }, 600_000);
});
