/**
 * Making goldens. Only `heddle conformance --update-golden --reason "..."` writes
 * conformance/golden.json: it runs the node / cpu / ts cell (the Node runner, a separate
 * process) and records, per vector, the hash or error code of every op. A commit that changes
 * golden.json says why (docs/conformance.md, "When a golden may change").
 */
import type { VectorResult } from '../runner/execute.ts';
import { executeVector } from '../runner/execute.ts';
import { makeContext, runColumn } from './matrix.ts';
import { repoRoot } from './paths.ts';
import { type Golden, type GoldenOp, type GoldenVector, type LoadedVector, emptyGolden, loadVectors, readGolden, writeGolden } from './vectors.ts';

export function goldenEntry(r: VectorResult, fileSha256: string): GoldenVector {
  const ops: Record<string, GoldenOp> = {};
  for (const o of r.ops) {
    ops[o.key] = o.error ? { error: o.error } : { sha256: o.sha256, arrays: o.arrays };
  }
  return { vector_sha256: fileSha256, ops };
}

/** Goldens computed in this process (the tests compare them with golden.json). */
export function goldenInProcess(loaded: readonly LoadedVector[]): Record<string, GoldenVector> {
  const out: Record<string, GoldenVector> = {};
  for (const l of loaded) out[l.vector.id] = goldenEntry(executeVector(l.vector), l.fileSha256);
  return out;
}

export interface UpdateResult {
  golden: Golden;
  changed: string[];
  added: string[];
  removed: string[];
  /** Vectors whose ops raised errors they do not expect (pending implementations). */
  pending: string[];
}

/** Recomputes goldens with the node / cpu / ts cell and writes golden.json. */
export async function updateGolden(o: { reason: string; vectors?: readonly string[]; root?: string; write?: boolean }): Promise<UpdateResult> {
  const reason = o.reason.trim();
  if (!reason) throw new Error('--update-golden needs --reason "<why the goldens change>" (the commit message says it too)');
  const root = o.root ?? repoRoot();
  const loaded = loadVectors(root, o.vectors ?? []);
  if (!loaded.length) throw new Error(`no vectors match ${JSON.stringify(o.vectors ?? [])}`);
  const ctx = makeContext({ root });
  let report;
  try {
    report = await runColumn('node', 'cpu', 'ts', loaded.map((l) => l.vector), ctx);
  } finally {
    ctx.dispose();
  }
  const old = readGolden(root);
  const next: Golden = { ...emptyGolden(), produced_by: `node ${report.version} / cpu / ts`, reason, vectors: o.vectors?.length ? { ...old.vectors } : {} };
  const res: UpdateResult = { golden: next, changed: [], added: [], removed: [], pending: [] };
  for (const l of loaded) {
    const r = report.results.find((x) => x.id === l.vector.id);
    if (!r) throw new Error(`the node runner returned no result for ${l.vector.id}`);
    const entry = goldenEntry(r, l.fileSha256);
    next.vectors[l.vector.id] = entry;
    const prev = old.vectors[l.vector.id];
    if (!prev) res.added.push(l.vector.id);
    else if (JSON.stringify(prev) !== JSON.stringify(entry)) res.changed.push(l.vector.id);
    if (l.vector.ops.some((op, i) => r.ops[i]?.error && r.ops[i].error !== op.expect_error)) res.pending.push(l.vector.id);
  }
  if (!o.vectors?.length) for (const id of Object.keys(old.vectors)) if (!next.vectors[id]) res.removed.push(id);
  if (o.write !== false) writeGolden(root, next);
  return res;
}
