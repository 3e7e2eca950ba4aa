/** The matrix as text (a terminal table), as a JSON summary, and as one self-contained HTML file. */
import type { ColumnResult, MatrixResult } from './matrix.ts';

function groups(m: MatrixResult): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const v of m.vectors) {
    if (!g.has(v.group)) g.set(v.group, []);
    g.get(v.group)!.push(v.id);
  }
  return g;
}

/** Failures with the same vector and reason, merged across columns. */
function mergedFailures(m: MatrixResult): { vector: string; columns: string[]; reason: string }[] {
  const out: { vector: string; columns: string[]; reason: string }[] = [];
  for (const f of m.failures) {
    const same = out.find((o) => o.vector === f.vector && o.reason === f.reason);
    if (same) same.columns.push(f.column);
    else out.push({ vector: f.vector, columns: [f.column], reason: f.reason });
  }
  return out;
}

const shown = (m: MatrixResult): ColumnResult[] => m.columns.filter((c) => c.state !== 'skipped');

export function formatText(m: MatrixResult): string {
  const cols = shown(m);
  const skipped = m.columns.filter((c) => c.state === 'skipped');
  const lines: string[] = [];
  lines.push(`heddle conformance: ${m.vectors.length} vectors x ${cols.length} columns run (${skipped.length} skipped), ${(m.ms / 1000).toFixed(1)} s`);
  lines.push('');
  const nameW = Math.max(24, ...m.vectors.map((v) => v.id.length + 2));
  const colW = Math.max(8, ...cols.map((c) => Math.max(c.runtime.length, `${c.backend}/${c.via}`.length) + 2));
  const row = (name: string, cells: string[]): string => (name.padEnd(nameW) + cells.map((c) => c.padEnd(colW)).join('')).trimEnd();
  if (cols.length) {
    lines.push(row('', cols.map((c) => c.runtime)));
    lines.push(row('vector', cols.map((c) => `${c.backend}/${c.via}`)));
    for (const [group, ids] of groups(m)) {
      lines.push(`${group} (${ids.length})`);
      for (const id of ids) lines.push(row(`  ${id.slice(group.length + 1)}`, cols.map((c) => m.cells[id][c.id].status)));
    }
    lines.push('');
    lines.push(row('totals: pass', cols.map((c) => String(c.counts.pass))));
    lines.push(row('        FAIL', cols.map((c) => String(c.counts.fail))));
    lines.push(row('        skip', cols.map((c) => String(c.counts.skip))));
    lines.push(row('versions', cols.map((c) => c.version ?? '')));
    lines.push(row('seconds', cols.map((c) => (c.ms !== undefined ? (c.ms / 1000).toFixed(1) : ''))));
  }
  const gpu = cols.filter((c) => c.backend === 'webgpu');
  if (gpu.length) {
    lines.push('');
    lines.push('webgpu adapters:');
    for (const c of gpu) {
      lines.push(`  ${c.id}: ${c.adapter ?? (c.state === 'crashed' ? '(none: the column did not run)' : '(not reported)')}`);
      if (c.cpuFallback?.length) lines.push(`      forward on the CPU inside the GPU pass: ${c.cpuFallback.join(', ')}`);
      if (c.cpuBackward?.length) lines.push(`      backward on the CPU inside the GPU step: ${c.cpuBackward.join(', ')}`);
    }
  }
  if (skipped.length) {
    lines.push('');
    lines.push(`skipped columns (${skipped.length}):`);
    const byReason = new Map<string, string[]>();
    for (const c of skipped) byReason.set(c.reason ?? '', [...(byReason.get(c.reason ?? '') ?? []), c.id]);
    for (const [reason, ids] of byReason) lines.push(`  ${ids.join(', ')}:`, `      ${reason}`);
  }
  const partial = cols.flatMap((c) => m.vectors.filter((v) => m.cells[v.id][c.id].status === 'skip').map((v) => `  ${v.id} @ ${c.id}: ${m.cells[v.id][c.id].reason}`));
  if (partial.length) lines.push('', 'skipped cells:', ...partial);
  // A column without results FAILs every cell for one reason: said once, not per vector.
  const crashed = cols.filter((c) => c.state === 'crashed');
  const fails = mergedFailures({ ...m, failures: m.failures.filter((f) => !crashed.some((c) => c.id === f.column)) });
  if (fails.length || crashed.length) {
    lines.push('');
    lines.push(`FAIL (${m.failures.length} cells):`);
    for (const c of crashed) {
      lines.push(`  every vector @ ${c.id}:`);
      lines.push(`      ${c.reason ?? ''}`);
    }
    for (const f of fails) {
      const where = f.columns.length === cols.length && cols.length > 1 ? 'every column' : f.columns.join(', ');
      lines.push(`  ${f.vector} @ ${where}:`);
      lines.push(`      ${f.reason}`);
    }
  }
  for (const n of m.notes) lines.push(`note: ${n}`);
  lines.push('');
  lines.push(m.ok ? `OK: every cell that ran passed.` : `FAILED: ${m.failures.length} failing cell(s).`);
  return lines.join('\n') + '\n';
}

export interface JsonSummary {
  ok: boolean;
  vectors: number;
  seconds: number;
  columns: {
    id: string;
    runtime: string;
    backend: string;
    via: string;
    state: string;
    reason?: string;
    version?: string;
    /** webgpu: the adapter, in one line. */
    adapter?: string;
    /** webgpu: layers whose forward ran on the CPU inside the GPU pass. */
    cpu_fallback?: string[];
    /** webgpu: layers whose backward ran on the CPU inside the GPU step. */
    cpu_backward?: string[];
    seconds?: number;
    pass: number;
    fail: number;
    skip: number;
  }[];
  failures: { vector: string; column: string; reason: string }[];
  notes: string[];
}

export function jsonSummary(m: MatrixResult): JsonSummary {
  return {
    ok: m.ok,
    vectors: m.vectors.length,
    seconds: m.ms / 1000,
    columns: m.columns.map((c) => ({
      id: c.id,
      runtime: c.runtime,
      backend: c.backend,
      via: c.via,
      state: c.state,
      ...(c.reason ? { reason: c.reason } : {}),
      ...(c.version ? { version: c.version } : {}),
      ...(c.adapter ? { adapter: c.adapter } : {}),
      ...(c.cpuFallback?.length ? { cpu_fallback: c.cpuFallback } : {}),
      ...(c.cpuBackward?.length ? { cpu_backward: c.cpuBackward } : {}),
      ...(c.ms !== undefined ? { seconds: c.ms / 1000 } : {}),
      ...c.counts,
    })),
    failures: m.failures,
    notes: m.notes,
  };
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** One self-contained HTML page (inline CSS, no scripts, no external resources). */
export function formatHtml(m: MatrixResult, title = 'Heddle conformance matrix'): string {
  // Columns skipped as a whole are listed (with their reason) under Columns, not as a grid of "skip".
  const cols = shown(m);
  const head1 = cols.map((c) => `<th class="col">${esc(c.runtime)}</th>`).join('');
  const head2 = cols.map((c) => `<th class="col sub"${c.adapter ? ` title="${esc(c.adapter)}"` : ''}>${esc(c.backend)}<br>${esc(c.via)}</th>`).join('');
  const body: string[] = [];
  for (const [group, ids] of groups(m)) {
    body.push(`<tr class="group"><th colspan="${cols.length + 1}">${esc(group)} (${ids.length})</th></tr>`);
    for (const id of ids) {
      const v = m.vectors.find((x) => x.id === id)!;
      const tds = cols.map((c) => {
        const cell = m.cells[id][c.id];
        const cls = cell.status === 'pass' ? 'pass' : cell.status === 'FAIL' ? 'fail' : 'skip';
        const tip = cell.reason ? ` title="${esc(cell.reason)}"` : '';
        return `<td class="${cls}"${tip}>${cell.status}</td>`;
      });
      body.push(`<tr><th class="vec" title="${esc(v.description)}">${esc(id.slice(group.length + 1))}</th>${tds.join('')}</tr>`);
    }
  }
  const totals = (['pass', 'fail', 'skip'] as const)
    .map((k) => `<tr class="tot"><th>${k === 'fail' ? 'FAIL' : k}</th>${cols.map((c) => `<td>${c.counts[k]}</td>`).join('')}</tr>`)
    .join('');
  const colInfo = m.columns
    .map((c) => {
      const cpu = [
        c.cpuFallback?.length ? `<br><small>forward on the CPU inside the GPU pass: ${esc(c.cpuFallback.join(', '))}</small>` : '',
        c.cpuBackward?.length ? `<br><small>backward on the CPU inside the GPU step: ${esc(c.cpuBackward.join(', '))}</small>` : '',
      ].join('');
      const adapter = c.adapter ? `${esc(c.adapter)}${cpu}` : '';
      return `<tr><td>${esc(c.id)}</td><td>${esc(c.state)}</td><td>${esc(c.version ?? '')}</td><td class="why">${adapter}</td><td>${c.ms !== undefined && c.state !== 'skipped' ? (c.ms / 1000).toFixed(1) : ''}</td><td class="why">${esc(c.reason ?? '')}</td></tr>`;
    })
    .join('');
  const crashed = cols.filter((c) => c.state === 'crashed');
  const fails = [
    ...crashed.map((c) => `<li><b>every vector</b> @ ${esc(c.id)}<br><code>${esc(c.reason ?? '')}</code></li>`),
    ...mergedFailures({ ...m, failures: m.failures.filter((f) => !crashed.some((c) => c.id === f.column)) })
      .map((f) => `<li><b>${esc(f.vector)}</b> @ ${esc(f.columns.join(', '))}<br><code>${esc(f.reason)}</code></li>`),
  ].join('');
  const status = m.ok ? '<p class="ok">OK: every cell that ran passed.</p>' : `<p class="bad">FAILED: ${m.failures.length} failing cell(s).</p>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>
body{font:13px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:1em 0}
th,td{border:1px solid #ddd;padding:2px 6px;text-align:center;white-space:nowrap}
th.vec{text-align:left;font-weight:normal;font-family:ui-monospace,monospace}
tr.group th{text-align:left;background:#f3f3f3}
td.pass{background:#e3f6e3;color:#155d15}
td.fail{background:#fbdcdc;color:#8b0000;font-weight:bold}
td.skip{background:#f4f4f4;color:#888}
tr.tot td,tr.tot th{background:#fafafa}
th.sub{font-weight:normal;font-size:11px}
.ok{color:#155d15;font-weight:bold}.bad{color:#8b0000;font-weight:bold}
code{white-space:pre-wrap;font-size:12px}
td.why{text-align:left;white-space:normal}
</style></head><body>
<h1>${esc(title)}</h1>
<p>${m.vectors.length} vectors; columns are runtime x backend x way in (${cols.length} ran, ${m.columns.length - cols.length} skipped: see Columns); goldens made by node / cpu / ts. Hover a cell or a vector for details. ${(m.ms / 1000).toFixed(1)} s.</p>
${status}
<table><thead><tr><th>vector</th>${head1}</tr><tr><th></th>${head2}</tr></thead>
<tbody>${body.join('\n')}</tbody><tfoot>${totals}</tfoot></table>
<h2>Columns</h2>
<table><thead><tr><th>column</th><th>state</th><th>version</th><th>adapter (webgpu)</th><th>seconds</th><th>reason</th></tr></thead><tbody>${colInfo}</tbody></table>
${fails ? `<h2>Failures</h2><ul>${fails}</ul>` : ''}
${m.notes.length ? `<h2>Notes</h2><ul>${m.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : ''}
</body></html>
`;
}
