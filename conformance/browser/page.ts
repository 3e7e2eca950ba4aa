/**
 * The browser runner: the page served by conformance/host/browser.ts loads this bundle, which
 * fetches /request.json, runs every vector with the core in the page, shows the hashes, and
 * leaves the RunReport in `window.__heddleConformance` (the host reads it with playwright) and
 * POSTs it to /report. Opened by hand, the page shows the same table.
 */
import { type RunReport, type RunRequest, adapterLabel, runRequest } from '../runner/execute.ts';

declare global {
  interface Window {
    __heddleConformance?: RunReport | { fatal: string };
  }
}

function text(tag: string, s: string): HTMLElement {
  const el = document.createElement(tag);
  el.textContent = s;
  return el;
}

async function main(): Promise<void> {
  const status = document.getElementById('status')!;
  try {
    const req = (await (await fetch('/request.json')).json()) as RunRequest;
    status.textContent = `running ${req.vectors.length} vectors on backend ${req.backend}...`;
    await new Promise((r) => setTimeout(r, 0));
    // webgpu: navigator.gpu (the host starts Chromium with WebGPU on SwiftShader for those columns).
    const report = await runRequest(req);
    window.__heddleConformance = report;
    status.textContent = report.unavailable
      ? `backend ${report.backend} unavailable: ${report.unavailable}`
      : `${report.runtime} ${report.version}, backend ${report.backend}${report.adapter ? ` (${adapterLabel(report.adapter)})` : ''}: ${report.results.length} vectors done`;
    const table = document.createElement('table');
    for (const r of report.results) {
      for (const op of r.ops) {
        const tr = document.createElement('tr');
        tr.append(text('td', r.id), text('td', op.key), text('td', op.sha256 ?? `${op.error}: ${op.message}`));
        table.append(tr);
      }
    }
    document.body.append(table);
    await fetch('/report', { method: 'POST', body: JSON.stringify(report) }).catch(() => undefined);
  } catch (e) {
    const fatal = String((e as Error)?.stack ?? e);
    window.__heddleConformance = { fatal };
    status.textContent = `failed: ${fatal}`;
  }
}

void main();
