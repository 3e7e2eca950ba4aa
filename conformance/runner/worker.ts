/**
 * The in-process runner for Node, Deno and Bun: `<runtime> worker.ts REQUEST.json REPORT.json`
 * reads a RunRequest (backend + vectors), runs every vector with the core in this process and
 * writes a RunReport. Deno and Bun run this file from source; Node runs an esbuild bundle of it
 * (Node 20 cannot run TypeScript). Only node:fs and node:process are used, which all three have.
 *
 * Backend webgpu: Deno has navigator.gpu (wgpu); Node and Bun load Dawn, the npm package
 * `webgpu`, through abi/node/webgpu.ts, from HEDDLE_WEBGPU_MODULE when set (the host passes the
 * repository's copy: the runner runs from a snapshot folder with no node_modules). The Vulkan
 * driver comes from the environment (VK_ICD_FILENAMES, set by the host per column).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import process from 'node:process';
import type { GpuEntry } from '../../core/backend/webgpu/gpu.ts';
import { type RunRequest, runRequest } from './execute.ts';

async function gpu(): Promise<GpuEntry | undefined> {
  if ((globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu) return undefined;
  const { nodeWebGpu } = await import('../../abi/node/webgpu.ts');
  return nodeWebGpu({ module: process.env.HEDDLE_WEBGPU_MODULE || undefined });
}

const [reqPath, outPath] = process.argv.slice(2);
if (!reqPath || !outPath) {
  process.stderr.write('usage: worker REQUEST.json REPORT.json\n');
  process.exit(2);
}
const req = JSON.parse(readFileSync(reqPath, 'utf8')) as RunRequest;
const report = await runRequest(req, { gpu });
writeFileSync(outPath, JSON.stringify(report));
// Dawn's instance keeps Node's event loop alive; the report is written, so leave now.
process.exit(0);
