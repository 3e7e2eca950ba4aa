/**
 * `heddle conformance`: runs the conformance matrix (docs/conformance.md) and prints it; exit
 * code 1 when any cell FAILs (a webgpu column that cannot get an adapter FAILs too; a column
 * whose prerequisites are not installed is skipped). `--update-golden --reason "..."` rewrites conformance/golden.json
 * from the node / cpu / ts cell, the only way the goldens change.
 */
import { type Command, Option } from 'commander';
import { HeddleError } from '../../core/errors.ts';
import { updateGolden } from '../../conformance/host/golden.ts';
import { BACKENDS, type ColumnResult, runMatrix } from '../../conformance/host/matrix.ts';
import { formatHtml, formatText, jsonSummary } from '../../conformance/host/report.ts';
import { RUNTIME_IDS, type RuntimeId } from '../../conformance/host/runtimes.ts';
import { loadVectors } from '../../conformance/host/vectors.ts';
import { repoRoot } from '../../conformance/host/paths.ts';
import { WAY_IDS, type WayId } from '../../conformance/host/ways.ts';
import { writeFileAtomic } from '../node/files.ts';

interface ConformanceOpts {
  runtime?: string[];
  backend?: string[];
  via?: string[];
  vector?: string[];
  json?: boolean;
  html?: string;
  updateGolden?: boolean;
  reason?: string;
  jobs: number;
  list?: boolean;
  progress: boolean;
}

/** Comma-separated and repeatable: `--runtime node,deno --runtime bun`. */
function listOf(option: string, allowed: readonly string[]): (v: string, prev: string[] | undefined) => string[] {
  return (v, prev) => {
    const items = v.split(',').map((s) => s.trim()).filter(Boolean);
    for (const it of items) {
      if (!allowed.includes(it)) throw new HeddleError('CONFIG_INVALID', `unknown value '${it}'; expected one of ${allowed.join(', ')}`, option);
    }
    return [...(prev ?? []), ...items];
  };
}

/** The verdict decides the exit code; the CLI's main() sets 0 after the action, so set it at exit. */
function exitWith(code: number): void {
  process.on('exit', () => {
    process.exitCode = code;
  });
}

export async function conformanceCommand(o: ConformanceOpts): Promise<void> {
  const root = repoRoot();
  if (o.list) {
    for (const l of loadVectors(root, o.vector ?? [])) process.stdout.write(`${l.vector.id}\t${l.vector.description}\n`);
    return;
  }
  if (o.updateGolden) {
    if (o.runtime || o.backend || o.via) throw new HeddleError('CONFIG_INVALID', 'goldens always come from node / cpu / ts; drop --runtime, --backend and --via', '--update-golden');
    if (!o.reason?.trim()) throw new HeddleError('CONFIG_INVALID', 'say why the goldens change: --reason "..." (and say it again in the commit message)', '--reason');
    const r = await updateGolden({ reason: o.reason, vectors: o.vector, root });
    process.stdout.write(
      `golden.json: ${Object.keys(r.golden.vectors).length} vectors (${r.golden.produced_by}); ` +
        `${r.added.length} added, ${r.changed.length} changed, ${r.removed.length} removed\n` +
        [...r.added.map((id) => `  + ${id}`), ...r.changed.map((id) => `  ~ ${id}`), ...r.removed.map((id) => `  - ${id}`)].join('\n') +
        (r.added.length + r.changed.length + r.removed.length ? '\n' : '') +
        (r.pending.length ? `pending (ops fail with errors they do not expect; their cells FAIL until implemented): ${r.pending.join(', ')}\n` : '') +
        `reason: ${r.golden.reason}\nThe commit that changes conformance/golden.json must give this reason.\n`,
    );
    return;
  }
  const progress = o.progress && !o.json && process.stderr.isTTY;
  const m = await runMatrix({
    root,
    runtimes: o.runtime as RuntimeId[] | undefined,
    backends: o.backend,
    ways: o.via as WayId[] | undefined,
    vectors: o.vector,
    jobs: o.jobs,
    onColumn: progress ? (c: ColumnResult) => process.stderr.write(`  ${c.id}: ${c.state === 'skipped' ? 'skipped' : `${c.counts.pass} pass, ${c.counts.fail} FAIL`}${c.adapter ? ` (${c.adapter})` : ''}\n`) : undefined,
  });
  if (o.html) writeFileAtomic(o.html, formatHtml(m));
  process.stdout.write(o.json ? JSON.stringify(jsonSummary(m), null, 2) + '\n' : formatText(m));
  if (o.html && !o.json) process.stdout.write(`report: ${o.html}\n`);
  if (!m.ok) exitWith(1);
}

export function registerConformance(program: Command): void {
  program
    .command('conformance')
    .description('run the conformance matrix (vectors x runtime x backend x way in) against the golden hashes; exit 1 on any FAIL')
    .option('--runtime <list>', `runtimes, comma-separated or repeated (${RUNTIME_IDS.join(', ')}; default all)`, listOf('--runtime', RUNTIME_IDS))
    .option('--backend <list>', `backends (${BACKENDS.join(', ')}; default all; webgpu runs on SwiftShader / lavapipe without a GPU)`, listOf('--backend', BACKENDS))
    .option('--via <list>', `ways in (${WAY_IDS.join(', ')}; default all)`, listOf('--via', WAY_IDS))
    .option('--vector <prefix>', 'only vectors whose id starts with this (repeatable)', (v: string, prev: string[] | undefined) => [...(prev ?? []), v])
    .option('--json', 'print a machine-readable summary: counts per column and the failing cells')
    .option('--html <file>', 'also write the matrix as one self-contained HTML file')
    .option('--update-golden', 'recompute conformance/golden.json from node / cpu / ts (needs --reason)')
    .option('--reason <text>', 'why the goldens change (recorded in golden.json; repeat it in the commit message)')
    .addOption(new Option('--jobs <n>', 'columns run at once').default(2).argParser((v: string) => {
      const n = Number(v);
      if (!/^\d+$/.test(v) || n < 1) throw new HeddleError('CONFIG_INVALID', `expected a positive integer, got '${v}'`, '--jobs');
      return n;
    }))
    .option('--list', 'list the vectors and exit')
    .option('--no-progress', 'no per-column progress on stderr')
    .action(conformanceCommand);
}

