/**
 * conformance/golden.json is up to date with the engine: every vector's goldens, recomputed
 * here (the CPU backend on Node, in this process), equal the committed ones. When this fails
 * because a change to the core is meant to change results (or a layer that was pending has
 * landed), regenerate on purpose and say why in the commit:
 *   heddle conformance --update-golden --reason "..."
 */
import { describe, expect, it } from 'vitest';
import { goldenInProcess } from '../conformance/host/golden.ts';
import { repoRoot } from '../conformance/host/paths.ts';
import { loadVectors, readGolden } from '../conformance/host/vectors.ts';

describe('conformance goldens', () => {
  it('golden.json matches the goldens the engine produces now', () => {
    const root = repoRoot();
    const loaded = loadVectors(root);
    const golden = readGolden(root);
    const fresh = goldenInProcess(loaded);
    const stale: string[] = [];
    for (const l of loaded) {
      const id = l.vector.id;
      const g = golden.vectors[id];
      if (!g) {
        stale.push(`${id}: not in golden.json`);
        continue;
      }
      if (g.vector_sha256 !== l.fileSha256) stale.push(`${id}: the vector file changed`);
      for (const [key, op] of Object.entries(fresh[id].ops)) {
        const want = g.ops[key];
        const same = want && (op.error ? want.error === op.error && !want.sha256 : want.sha256 === op.sha256);
        if (!same) stale.push(`${id} ${key}: now ${op.error ?? op.sha256?.slice(0, 12)}, golden ${want ? want.error ?? want.sha256?.slice(0, 12) : '(none)'}`);
      }
      for (const key of Object.keys(g.ops)) if (!fresh[id].ops[key]) stale.push(`${id} ${key}: golden has an op the vector no longer has`);
    }
    for (const id of Object.keys(golden.vectors)) if (!loaded.some((l) => l.vector.id === id)) stale.push(`${id}: in golden.json but no vector file`);
    expect(stale, `stale goldens; if the change is intended: heddle conformance --update-golden --reason "..."`).toEqual([]);
    expect(golden.produced_by).toMatch(/^node .* \/ cpu \/ ts$/);
    expect(golden.reason.length).toBeGreaterThan(0);
  });
});
