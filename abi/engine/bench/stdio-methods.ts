/**
 * Measures the engine's stdio methods on every runtime here: Forward round trips with a
 * 1024-float input through the TS client, sequential (p50/p99 latency) and pipelined
 * (calls/s). The network is one disabled 1024->1024 dense layer (it passes its input
 * through), so the numbers are the transport's, not the compute's.
 *
 *   npx tsup && npx vite-node abi/engine/bench/stdio-methods.ts [--calls N]
 */
import { existsSync } from 'node:fs';
import { Tensor } from '../../../core/tensor.ts';
import { Engine } from '../../client/client.ts';

const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const N = arg('--calls', 5000);
const bundle = 'dist/heddle-engine.mjs';
if (!existsSync(bundle)) throw new Error('build first: npx tsup');

export const PASSTHROUGH_1024 = { layers: [{ type: 'dense', input_height: 1024, output_height: 1024, disabled: true }] };

const runtimes: Record<string, string[]> = {
  node: [process.execPath, bundle],
  bun: ['node_modules/.bin/bun', bundle],
  deno: ['node_modules/.bin/deno', 'run', '-A', bundle],
};

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
}

for (const [rt, cmd] of Object.entries(runtimes)) {
  for (const method of ['sync', 'stream', ...(rt === 'deno' ? ['deno'] : [])]) {
    const e = await Engine.spawn({ command: [...cmd, '--stdio-method', method] });
    const net = await e.createNetwork(PASSTHROUGH_1024, { seed: 1 });
    const x = Tensor.from([1, 1024], Array.from({ length: 1024 }, (_, i) => Math.sin(i)));
    for (let i = 0; i < 500; i++) await net.forward(x);
    const lat: number[] = [];
    for (let i = 0; i < N; i++) {
      const t0 = process.hrtime.bigint();
      await net.forward(x);
      lat.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
    const t0 = performance.now();
    const ps: Promise<unknown>[] = [];
    for (let i = 0; i < N; i++) ps.push(net.forward(x));
    await Promise.all(ps);
    const pip = N / ((performance.now() - t0) / 1000);
    process.stdout.write(`${rt.padEnd(5)} ${e.info.runtimeVersion.padEnd(8)} ${method.padEnd(7)} p50 ${pct(lat, 0.5).toFixed(1).padStart(6)} us  p99 ${pct(lat, 0.99).toFixed(1).padStart(7)} us  pipelined ${pip.toFixed(0).padStart(6)} calls/s\n`);
    await e.close();
  }
}
