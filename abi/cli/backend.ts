/**
 * `--backend` for run / grad / train. `cpu` is the reference and needs nothing; `webgpu` asks
 * the runtime for an adapter and gives the same output bits (docs/webgpu.md).
 *
 * Where the `GPU` object comes from, as in the engine (abi/engine/gpu.ts) and the WebGPU
 * checks: `navigator.gpu` when the runtime has one (Deno), else the npm package `webgpu`
 * (Dawn) through abi/node/webgpu.ts (Node, Bun). Which adapter it finds is the environment's
 * business (on Linux, VK_ICD_FILENAMES; on Deno also DENO_WEBGPU_BACKEND): the CLI names no
 * driver. No adapter is BACKEND_UNAVAILABLE with the core's reason.
 */
import { fail } from '../../core/errors.ts';
import type { Network } from '../../core/network.ts';
import { adapterName } from '../engine/gpu.ts';
import { runtimeWebGpu } from '../node/webgpu.ts';

/** What the command does on the backend: inference (run) or backward passes (grad, train). */
export type BackendUse = 'forward' | 'training';

/**
 * Puts `net` on the backend named by --backend. For webgpu it writes the adapter, and each
 * layer that runs on the CPU inside the GPU pass, on stderr (stdout stays machine-readable).
 * Call net.releaseBackend() when done: it destroys the device the network acquired.
 */
export async function selectBackend(net: Network, name: string | undefined, use: BackendUse): Promise<void> {
  if (name === undefined || name === 'cpu') return;
  if (name !== 'webgpu') fail('BACKEND_UNAVAILABLE', `backend '${name}' is not available in this build; use --backend cpu or webgpu`, '--backend');
  const report = await net.useBackend('webgpu', { gpu: await runtimeWebGpu() });
  const lines = [`webgpu: adapter ${report.adapter ? adapterName(report.adapter) : 'unknown'}`];
  const cpu: string[] = [];
  for (const l of report.layers ?? []) {
    const onCpu = use === 'forward' ? l.device === 'cpu' : l.training === 'cpu';
    // A container on the CPU takes its children with it: name it alone.
    if (!onCpu || cpu.some((c) => l.name.startsWith(`${c}.`))) continue;
    cpu.push(l.name);
    const reason = use === 'forward' ? l.reason : l.trainingReason;
    lines.push(`webgpu: ${l.name} (${l.type}) runs on the CPU${reason ? `: ${reason}` : ''}`);
  }
  process.stderr.write(lines.join('\n') + '\n');
}
