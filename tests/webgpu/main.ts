/**
 * Runs the GPU bit-equality checks (checks.ts) on whatever adapter this runtime offers and
 * prints the adapter report, one line per case, a per-kernel match table, and as the last
 * line a JSON summary. Exit code 1 on any mismatch, 2 when no adapter could be had.
 *
 *   deno run -A tests/webgpu/main.ts             navigator.gpu (lavapipe on CI)
 *   bun tests/webgpu/main.ts                     the `webgpu` package (set VK_ICD_FILENAMES for SwiftShader)
 *   node .device/checks.mjs                      the bundle scripts/pack-device.sh builds
 * Arguments: --quick (small sizes), --large (add GPU-sized cases), --filter <text>,
 * --adversary (afterwards, rerun the cases with the barrier, then the flush, switched off and
 * report how many values change: shows what the checks catch on this adapter; not a failure),
 * --expect-unavailable (exit 0 only when acquiring the adapter fails with BACKEND_UNAVAILABLE).
 */
import { runtimeWebGpu } from '../../abi/node/webgpu.ts';
import { acquireWebGpu } from '../../core/backend/webgpu/device.ts';
import type { GpuEntry } from '../../core/backend/webgpu/gpu.ts';
import { HeddleError } from '../../core/errors.ts';
import { matchTable, runAdversary, runChecks } from './checks.ts';

interface Host {
  args: string[];
  env(name: string): string | undefined;
  exit(code: number): never;
  runtime: string;
}

function host(): Host {
  const g = globalThis as unknown as {
    Deno?: { args: string[]; env: { get(n: string): string | undefined }; exit(c: number): never; version: { deno: string } };
    Bun?: { version: string };
    process?: { argv: string[]; env: Record<string, string | undefined>; exit(c: number): never; versions: { node: string } };
  };
  if (g.Deno) return { args: g.Deno.args, env: (n) => g.Deno!.env.get(n), exit: (c) => g.Deno!.exit(c), runtime: `deno ${g.Deno.version.deno}` };
  const p = g.process!;
  return { args: p.argv.slice(2), env: (n) => p.env[n], exit: (c) => p.exit(c), runtime: g.Bun ? `bun ${g.Bun.version}` : `node ${p.versions.node}` };
}

async function gpuEntry(h: Host): Promise<GpuEntry | undefined> {
  // Node and Bun: the webgpu package, resolved from this file (the device bundle finds the
  // packed copy in .device/node_modules), or HEDDLE_WEBGPU_MODULE.
  return runtimeWebGpu({ module: h.env('HEDDLE_WEBGPU_MODULE') });
}

async function main(): Promise<void> {
  const h = host();
  const quick = h.args.includes('--quick');
  const fi = h.args.indexOf('--filter');
  const filter = fi >= 0 ? h.args[fi + 1] : undefined;
  const expectUnavailable = h.args.includes('--expect-unavailable');
  const large = h.args.includes('--large');
  const adversary = h.args.includes('--adversary');
  let ctx;
  try {
    ctx = await acquireWebGpu({ gpu: await gpuEntry(h) });
  } catch (e) {
    if (e instanceof HeddleError && e.code === 'BACKEND_UNAVAILABLE') {
      console.log(JSON.stringify({ runtime: h.runtime, unavailable: true, code: e.code, message: e.message }));
      h.exit(expectUnavailable ? 0 : 2);
    }
    throw e;
  }
  if (expectUnavailable) {
    console.log(JSON.stringify({ runtime: h.runtime, unavailable: false, adapter: ctx.report }));
    h.exit(1);
  }
  console.log(`runtime: ${h.runtime}`);
  console.log(`adapter: ${JSON.stringify(ctx.report)}`);
  const results = await runChecks(ctx, { quick, large, filter, log: (l) => console.log(l) });
  console.log('');
  console.log(matchTable(results));
  let adversaryReport: Record<string, unknown> | undefined;
  if (adversary) {
    const noBarrier = await runAdversary(ctx, { noBarrier: true, noFlush: false }, { quick, large });
    const noFlush = await runAdversary(ctx, { noBarrier: false, noFlush: true }, { quick, large });
    console.log('');
    console.log('| rule switched off | cases | values | values that changed |');
    console.log('|---|---|---|---|');
    console.log(`| contraction barrier (fused a*b+c) | ${noBarrier.cases} | ${noBarrier.values} | ${noBarrier.mismatches} |`);
    console.log(`| explicit flush to zero | ${noFlush.cases} | ${noFlush.values} | ${noFlush.mismatches} |`);
    adversaryReport = { noBarrier: { mismatches: noBarrier.mismatches, cases: noBarrier.casesWithMismatches }, noFlush: { mismatches: noFlush.mismatches, cases: noFlush.casesWithMismatches } };
  }
  const failed = results.filter((r) => r.mismatches > 0 || r.error);
  const summary = {
    runtime: h.runtime,
    adapter: { vendor: ctx.report.vendor, architecture: ctx.report.architecture, description: ctx.report.description, device: ctx.report.device },
    cases: results.length,
    passed: results.length - failed.length,
    failed: failed.map((r) => r.name),
    adversary: adversaryReport,
    kernels: Object.fromEntries([...new Set(results.map((r) => r.kernel))].map((k) => [k, results.filter((r) => r.kernel === k).every((r) => r.mismatches === 0 && !r.error)])),
  };
  ctx.destroy();
  console.log(`${summary.passed} passed, ${failed.length} failed`);
  console.log(JSON.stringify(summary));
  h.exit(failed.length ? 1 : 0);
}

main().catch((e) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : e);
  host().exit(3);
});
