/**
 * The conformance matrix: every vector on every cell (runtime x backend x way in) this machine
 * can run, each op's hash compared with the golden made by node / cpu / ts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type RunReport, type VectorResult, adapterLabel } from '../runner/execute.ts';
import type { Vector } from '../runner/spec.ts';
import { opKey } from '../runner/spec.ts';
import { repoRoot } from './paths.ts';
import { RUNTIMES, RUNTIME_IDS, type RunContext, type RuntimeId } from './runtimes.ts';
import { type Golden, type GoldenVector, type LoadedVector, loadVectors, readGolden } from './vectors.ts';
import { WAYS, WAY_IDS, type WayId } from './ways.ts';

export const BACKENDS: readonly string[] = ['cpu', 'webgpu'];

export interface MatrixOptions {
  runtimes?: readonly RuntimeId[];
  backends?: readonly string[];
  ways?: readonly WayId[];
  /** Vector id prefixes; all vectors when empty. */
  vectors?: readonly string[];
  /** Repository root (node_modules, vectors, golden). */
  root?: string;
  /** Where the code under test lives (core/, conformance/runner, conformance/browser); default root. Snapshotted at the start of the run. */
  source?: string;
  /** Per-runtime override of `source` (the tests run one runtime on a perturbed copy of the core). */
  sources?: Partial<Record<RuntimeId, string>>;
  /** Golden to compare with; default conformance/golden.json. */
  golden?: Golden;
  /** Columns run at once (default 2). */
  jobs?: number;
  /** Per column (default 180 s for cpu, 600 s for webgpu: SwiftShader and lavapipe compile every kernel on the CPU). */
  timeoutMs?: number;
  /** Progress: called when a column finishes. */
  onColumn?: (c: ColumnResult) => void;
}

export type CellStatus = 'pass' | 'FAIL' | 'skip';

export interface CellResult {
  status: CellStatus;
  reason?: string;
  ms?: number;
}

export interface ColumnResult {
  id: string;
  runtime: RuntimeId;
  backend: string;
  via: WayId;
  /**
   * ran; skipped (a prerequisite is not installed here: reason); crashed (no results: the
   * runner failed, or the backend found no adapter although its prerequisites are installed;
   * every cell FAILs).
   */
  state: 'ran' | 'skipped' | 'crashed';
  reason?: string;
  /** Runtime version the column ran on. */
  version?: string;
  /** webgpu: the adapter the column ran on, in one line. */
  adapter?: string;
  /** webgpu: layers whose forward ran on the CPU inside the GPU pass (no kernel yet). */
  cpuFallback?: string[];
  /** webgpu: layers whose backward ran on the CPU inside the GPU step. */
  cpuBackward?: string[];
  ms?: number;
  counts: { pass: number; fail: number; skip: number };
}

export interface MatrixResult {
  vectors: { id: string; group: string; description: string }[];
  columns: ColumnResult[];
  /** cells[vectorId][columnId] */
  cells: Record<string, Record<string, CellResult>>;
  failures: { vector: string; column: string; reason: string }[];
  /** Golden entries whose vector is gone, and similar notes; not failures. */
  notes: string[];
  ok: boolean;
  ms: number;
}

/** Every cell this selection names, in display order (runtime, then backend, then way in). */
export function plannedColumns(o: Pick<MatrixOptions, 'runtimes' | 'backends' | 'ways'>): { runtime: RuntimeId; backend: string; via: WayId }[] {
  const out: { runtime: RuntimeId; backend: string; via: WayId }[] = [];
  for (const runtime of o.runtimes?.length ? o.runtimes : RUNTIME_IDS) {
    for (const backend of o.backends?.length ? o.backends : BACKENDS) {
      for (const via of o.ways?.length ? o.ways : WAY_IDS) {
        if (WAYS[via].applies(RUNTIMES[runtime], backend)) out.push({ runtime, backend, via });
      }
    }
  }
  return out;
}

function short(h: string | undefined): string {
  return h ? h.slice(0, 12) : '(none)';
}

/**
 * One vector's result against its golden. A cell passes when every op matches: the same
 * digest, or the error the op expects. An error the vector does not expect always FAILs, even
 * when the golden run failed the same way (a layer not implemented yet is never a silent pass).
 */
export function judge(v: Vector, fileSha256: string, r: VectorResult | undefined, g: GoldenVector | undefined): CellResult {
  if (!r) return { status: 'FAIL', reason: 'the runner returned no result for this vector' };
  const general: string[] = [];
  const perOp: { key: string; text: string }[] = [];
  if (!g) general.push('no golden hashes for this vector: run `heddle conformance --update-golden --reason "..."`');
  else if (g.vector_sha256 !== fileSha256) general.push('the vector file changed after its golden was made: regenerate the golden (`--update-golden`)');
  v.ops.forEach((op, i) => {
    const key = opKey(op, i);
    const got = r.ops.find((o) => o.key === key);
    const want = g?.ops[key];
    const bad = (text: string): void => void perOp.push({ key, text });
    if (!got) return bad('no result');
    if (op.expect_error) {
      if (got.error !== op.expect_error) bad(`expected error ${op.expect_error}, got ${got.error ? `${got.error}: ${got.message}` : `a result (${short(got.sha256)})`}`);
      else if (want && want.error !== op.expect_error) bad(`the golden holds ${want.error ?? short(want.sha256)}, not the expected error ${op.expect_error}: regenerate the golden`);
      return;
    }
    if (got.error) {
      const pending = want?.error === got.error ? ' [pending: the golden run failed the same way; FAIL until implemented and the golden regenerated]' : '';
      return bad(`${got.error}: ${got.message}${pending}`);
    }
    if (!want) return g ? bad('no golden hash for this op') : undefined;
    if (want.error) return bad(`produced ${short(got.sha256)} but the golden holds error ${want.error}: regenerate the golden`);
    if (got.sha256 !== want.sha256) {
      const diff = Object.keys({ ...(want.arrays ?? {}), ...(got.arrays ?? {}) }).filter((n) => want.arrays?.[n] !== got.arrays?.[n]);
      bad(`sha256 ${short(got.sha256)} != golden ${short(want.sha256)}${diff.length ? `; differing arrays: ${diff.slice(0, 6).join(', ')}${diff.length > 6 ? `, ... (${diff.length})` : ''}` : ''}`);
    }
  });
  // The same text for several ops (a network that cannot be built) is said once.
  const merged: string[] = [];
  for (const { text } of perOp) {
    if (merged.some((m) => m.endsWith(`: ${text}`))) continue;
    const keys = perOp.filter((p) => p.text === text).map((p) => p.key);
    merged.push(`${keys.length === v.ops.length && keys.length > 1 ? 'every op' : keys.join(', ')}: ${text}`);
  }
  const problems = [...general, ...merged];
  return problems.length ? { status: 'FAIL', reason: problems.join('; '), ms: r.ms } : { status: 'pass', ms: r.ms };
}

async function pool<T>(items: readonly T[], jobs: number, f: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await f(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(jobs, items.length)) }, worker));
}

/** The code a runner needs: the core, the in-process runners, and Dawn's loader (the Node and Bun runners' webgpu). */
export const CODE_DIRS: readonly string[] = ['core', 'conformance/runner', 'conformance/browser', 'abi/node/webgpu.ts'];

/** Default per-column time limits. */
export const COLUMN_TIMEOUT_MS: Readonly<Record<string, number>> = { cpu: 180_000, webgpu: 600_000 };

/**
 * A run's context. The code under test is snapshotted into the scratch folder first, so every
 * column of one run tests the same code even while files are being edited (a column started
 * later would otherwise see the edit and "differ").
 */
export function makeContext(o: { root?: string; source?: string; timeoutMs?: number; snapshot?: boolean }): RunContext & { dispose(): void } {
  const root = o.root ?? repoRoot();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'heddle-conformance-'));
  let source = o.source ?? root;
  if (o.snapshot !== false) {
    const snap = path.join(work, 'src');
    for (const dir of CODE_DIRS) {
      fs.cpSync(path.join(source, dir), path.join(snap, dir), { recursive: true, dereference: true, filter: (src) => !src.endsWith('.test.ts') });
    }
    source = snap;
  }
  return {
    tools: root,
    source,
    work,
    timeoutMs: o.timeoutMs ?? 180_000,
    dispose: () => fs.rmSync(work, { recursive: true, force: true }),
  };
}

/** Runs one column; a runner that fails becomes a RunnerError-style rejection. */
export async function runColumn(runtime: RuntimeId, backend: string, via: WayId, vectors: Vector[], ctx: RunContext): Promise<RunReport> {
  return WAYS[via].run(RUNTIMES[runtime], backend, vectors, ctx);
}

export async function runMatrix(o: MatrixOptions = {}): Promise<MatrixResult> {
  const t0 = Date.now();
  const root = o.root ?? repoRoot();
  const loaded: LoadedVector[] = loadVectors(root, o.vectors ?? []);
  if (!loaded.length) throw new Error(`no vectors match ${JSON.stringify(o.vectors ?? [])}`);
  const golden = o.golden ?? readGolden(root);
  const ctx = makeContext({ root, source: o.source, timeoutMs: o.timeoutMs });
  const vectors = loaded.map((l) => l.vector);
  const cells: MatrixResult['cells'] = {};
  for (const l of loaded) cells[l.vector.id] = {};
  const columns: ColumnResult[] = plannedColumns(o).map(({ runtime, backend, via }) => ({
    id: `${runtime}/${backend}/${via}`,
    runtime,
    backend,
    via,
    state: 'ran',
    counts: { pass: 0, fail: 0, skip: 0 },
  }));
  try {
    await pool(columns, o.jobs ?? 2, async (col) => {
      const c0 = Date.now();
      const runtime = RUNTIMES[col.runtime];
      const cctx: RunContext = { ...ctx, source: o.sources?.[col.runtime] ?? ctx.source, timeoutMs: o.timeoutMs ?? COLUMN_TIMEOUT_MS[col.backend] ?? ctx.timeoutMs };
      const why = runtime.unavailable(cctx) ?? WAYS[col.via].unavailable(runtime, col.backend, cctx);
      let report: RunReport | null = null;
      if (why) {
        col.state = 'skipped';
        col.reason = why;
      } else {
        try {
          report = await runColumn(col.runtime, col.backend, col.via, vectors, cctx);
          col.version = report.version;
          // A column proves something only if the runtime it names computed it.
          if (col.via === 'ts' && report.runtime !== col.runtime) throw new Error(`it reported running on ${report.runtime} ${report.version}, not ${col.runtime}`);
          if (report.adapter) col.adapter = adapterLabel(report.adapter);
          if (report.cpuFallback?.length) col.cpuFallback = report.cpuFallback;
          if (report.cpuBackward?.length) col.cpuBackward = report.cpuBackward;
          // The host found the backend's prerequisites installed (else: skipped above), so a
          // backend that cannot start is a failure of the column, not a silent skip.
          if (report.unavailable) {
            col.state = 'crashed';
            col.reason = `the ${col.backend} backend could not start on ${col.id}: ${report.unavailable}`;
            report = null;
          }
        } catch (e) {
          col.state = 'crashed';
          col.reason = `the ${col.id} runner failed: ${(e as Error).message}`;
        }
      }
      for (const l of loaded) {
        let cell: CellResult;
        if (col.state === 'skipped') cell = { status: 'skip', reason: col.reason };
        else if (col.state === 'crashed') cell = { status: 'FAIL', reason: col.reason };
        else cell = judge(l.vector, l.fileSha256, report!.results.find((r) => r.id === l.vector.id), golden.vectors[l.vector.id]);
        cells[l.vector.id][col.id] = cell;
        col.counts[cell.status === 'pass' ? 'pass' : cell.status === 'FAIL' ? 'fail' : 'skip']++;
      }
      col.ms = Date.now() - c0;
      o.onColumn?.(col);
    });
  } finally {
    ctx.dispose();
  }
  const failures: MatrixResult['failures'] = [];
  for (const l of loaded) {
    for (const col of columns) {
      const c = cells[l.vector.id][col.id];
      if (c.status === 'FAIL') failures.push({ vector: l.vector.id, column: col.id, reason: c.reason ?? '' });
    }
  }
  const notes: string[] = [];
  if (!o.vectors?.length) {
    const ids = new Set(vectors.map((v) => v.id));
    for (const id of Object.keys(golden.vectors)) if (!ids.has(id)) notes.push(`golden.json holds ${id}, which has no vector file (the next --update-golden drops it)`);
  }
  return {
    vectors: vectors.map((v) => ({ id: v.id, group: v.group, description: v.description })),
    columns,
    cells,
    failures,
    notes,
    ok: failures.length === 0,
    ms: Date.now() - t0,
  };
}
