/**
 * WebGPU backend: every GPU kernel bit-identical to the CPU (tests/webgpu/checks.ts), on
 *   - SwiftShader through Dawn (npm `webgpu`) in this Node process (flushes subnormals),
 *   - Mesa lavapipe through Deno's navigator.gpu (keeps subnormals: explicit FTZ matters),
 *   - Bun with the `webgpu` package on SwiftShader (the same cases at quick sizes);
 * and BACKEND_UNAVAILABLE when there is no adapter. Needs Debian's chromium (SwiftShader) and
 * mesa-vulkan-drivers (scripts/setup.sh installs both); a missing one is a test failure, not a skip.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeWebGpu } from '../abi/node/webgpu.ts';
import { acquireWebGpu, type WebGpuContext } from '../core/backend/webgpu/device.ts';
import { HeddleError } from '../core/errors.ts';
import { Network } from '../core/network.ts';
import { Tensor } from '../core/tensor.ts';
import { recurrentStateChecks } from './webgpu/cases/recurrent.ts';
import { buildCases, runCase } from './webgpu/checks.ts';

const root = fileURLToPath(new URL('../', import.meta.url));
const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';
const LAVAPIPE = '/usr/share/vulkan/icd.d/lvp_icd.x86_64.json';

interface Summary {
  runtime: string;
  unavailable?: boolean;
  code?: string;
  message?: string;
  adapter?: { description: string };
  cases?: number;
  passed?: number;
  failed?: string[];
  kernels?: Record<string, boolean>;
  adversary?: { noBarrier: { mismatches: number }; noFlush: { mismatches: number } };
}

function runJson(cmd: string, args: string[], env: Record<string, string>, timeout: number): Promise<{ code: number; summary: Summary; output: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: root, timeout, maxBuffer: 16 << 20, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      const lines = stdout.trim().split('\n');
      let summary: Summary = { runtime: cmd };
      try {
        summary = JSON.parse(lines[lines.length - 1]) as Summary;
      } catch {
        // reported through `output`
      }
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, summary, output: `${stdout}\n${stderr}`.slice(-6000) });
    });
  });
}

describe('webgpu: device acquisition', () => {
  it('no navigator.gpu and no gpu given: BACKEND_UNAVAILABLE saying why', async () => {
    const err = await acquireWebGpu({}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HeddleError);
    expect((err as HeddleError).code).toBe('BACKEND_UNAVAILABLE');
    expect((err as HeddleError).message).toMatch(/navigator\.gpu.*abi\/node\/webgpu\.ts/);
  });

  it('an implementation without adapters: BACKEND_UNAVAILABLE naming the drivers', async () => {
    const err = await acquireWebGpu({ gpu: { requestAdapter: async () => null } }).catch((e: unknown) => e);
    expect((err as HeddleError).code).toBe('BACKEND_UNAVAILABLE');
    expect((err as HeddleError).message).toMatch(/no adapter.*Vulkan/);
  });

  it('a missing webgpu package: BACKEND_UNAVAILABLE', async () => {
    const err = await nodeWebGpu({ module: 'heddle-no-such-webgpu-package' }).catch((e: unknown) => e);
    expect((err as HeddleError).code).toBe('BACKEND_UNAVAILABLE');
    expect((err as HeddleError).message).toMatch(/npm install webgpu/);
  });

  it('useBackend on a network: BACKEND_UNAVAILABLE, and the network stays on the CPU', async () => {
    const net = Network.fromJSON({ input_shape: [3], layers: [{ type: 'dense', input_height: 3, output_height: 2 }] });
    const err = await net.useBackend('webgpu', { gpu: { requestAdapter: async () => null } }).catch((e: unknown) => e);
    expect((err as HeddleError).code).toBe('BACKEND_UNAVAILABLE');
    expect(net.backend).toBe('cpu');
    const x = Tensor.from([1, 3], [1, 2, 3]);
    expect(Array.from((await net.forwardAsync(x)).data)).toEqual(Array.from(net.forward(x).data));
  });

  it('Dawn with no Vulkan driver (VK_ICD_FILENAMES at a missing file, in a child process)', async () => {
    const bun = `${root}node_modules/.bin/bun`;
    const r = await runJson(bun, ['tests/webgpu/main.ts', '--expect-unavailable'], { VK_ICD_FILENAMES: '/nonexistent/heddle_icd.json' }, 60_000);
    expect(r.code, r.output).toBe(0);
    expect(r.summary.code).toBe('BACKEND_UNAVAILABLE');
    expect(r.summary.message).toMatch(/no adapter/);
  });

  // Without DENO_WEBGPU_BACKEND=vulkan, Deno's wgpu falls back to OpenGL (llvmpipe through EGL).
  it('Deno with no Vulkan driver', async () => {
    const deno = `${root}node_modules/.bin/deno`;
    const r = await runJson(deno, ['run', '--no-lock', '-A', 'tests/webgpu/main.ts', '--expect-unavailable'], { VK_ICD_FILENAMES: '/nonexistent/heddle_icd.json', DENO_WEBGPU_BACKEND: 'vulkan' }, 60_000);
    expect(r.code, r.output).toBe(0);
    expect(r.summary.code).toBe('BACKEND_UNAVAILABLE');
  });
});

describe('webgpu on SwiftShader (Node, Dawn): GPU forward bit-identical to the CPU', () => {
  let ctx: WebGpuContext;
  beforeAll(async () => {
    expect(existsSync(SWIFTSHADER), `${SWIFTSHADER} (Debian chromium, scripts/setup.sh)`).toBe(true);
    process.env.VK_ICD_FILENAMES = SWIFTSHADER; // read when Dawn creates its Vulkan instance
    ctx = await acquireWebGpu({ gpu: await nodeWebGpu() });
  });
  afterAll(() => ctx?.destroy());

  it('reports the adapter and the limits it uses', () => {
    expect(ctx.report.backend).toBe('webgpu');
    expect(ctx.report.description).toMatch(/SwiftShader/i);
    expect(ctx.report.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 << 20);
    expect(ctx.report.mode).toBe('deterministic');
  });

  for (const c of buildCases()) {
    it(`${c.kernel}: ${c.name}`, async () => {
      const r = await runCase(ctx, c);
      expect(r.error ?? null, r.error).toBe(null);
      expect(r.mismatches, r.first).toBe(0);
      expect(r.values).toBeGreaterThan(0);
    });
  }

  it('recurrent: initial states in, final states and their gradients out, bit-identical', async () => {
    const r = await recurrentStateChecks(ctx);
    expect(r.mismatches).toBe(0);
    expect(r.ok).toBe(true);
    expect(r.values).toBeGreaterThan(0);
  });

  it('reports where each layer runs, for inference and for training', async () => {
    const filter = { type: 'parallel', combine_mode: 'filter', filter_softmax: 'sparsemax', branches: [{ type: 'dense', input_height: 6, output_height: 5 }, { type: 'dense', input_height: 6, output_height: 5 }] };
    const net = Network.fromJSON({ input_shape: [4, 6], layers: [{ type: 'dense', input_height: 6, output_height: 6 }, filter, { type: 'sequential', layers: [{ type: 'rms_norm', norm_size: 5 }, { type: 'dense', input_height: 5, output_height: 3, activation: 'tanh' }] }] });
    const report = await net.useBackend('webgpu', { context: ctx });
    const why = 'no GPU backward for parallel yet';
    const inside = 'its container trains on the CPU';
    expect(report.layers).toEqual([
      { name: 'layers.0', type: 'dense', device: 'gpu', training: 'gpu' },
      { name: 'layers.1', type: 'parallel', device: 'gpu', training: 'cpu', trainingReason: why },
      { name: 'layers.1.branches.0', type: 'dense', device: 'gpu', training: 'cpu', trainingReason: inside },
      { name: 'layers.1.branches.1', type: 'dense', device: 'gpu', training: 'cpu', trainingReason: inside },
      { name: 'layers.1.gate', type: 'dense', device: 'gpu', training: 'cpu', trainingReason: inside },
      { name: 'layers.2', type: 'sequential', device: 'gpu', training: 'gpu' },
      { name: 'layers.2.layers.0', type: 'rms_norm', device: 'gpu', training: 'gpu' },
      { name: 'layers.2.layers.1', type: 'dense', device: 'gpu', training: 'gpu' },
    ]);
    expect(report.adapter?.description).toMatch(/SwiftShader/i);
    net.releaseBackend();
    expect(net.backend).toBe('cpu');
  });

  it('a tensor larger than the adapter binds: UNSUPPORTED naming the layer and the limit', async () => {
    const net = Network.fromJSON({ input_shape: [40], layers: [{ type: 'dense', input_height: 40, output_height: 40 }] });
    const limited = Object.create(ctx) as WebGpuContext;
    limited.limit = (name: string) => (name === 'maxStorageBufferBindingSize' ? 4096 : ctx.limit(name));
    await net.useBackend('webgpu', { context: limited });
    const err = await net.forwardAsync(Tensor.zeros([2, 40])).catch((e: unknown) => e);
    expect((err as HeddleError).code).toBe('UNSUPPORTED');
    expect((err as HeddleError).message).toMatch(/layers\.0.*6400 bytes.*4096.*maxStorageBufferBindingSize/);
    net.releaseBackend();
  });

  it('a kernel that fails to compile: INTERNAL with the compiler messages and the source', async () => {
    const err = await ctx.pipeline('fn main( {', [], 'broken').catch((e: unknown) => e);
    expect((err as HeddleError).code).toBe('INTERNAL');
    expect((err as HeddleError).message).toMatch(/WGSL kernel 'broken' failed to compile/);
    expect((err as HeddleError).detail).toBe('fn main( {');
  });

  it('a lost device: BACKEND_UNAVAILABLE, never a hang', async () => {
    const own = await acquireWebGpu({ gpu: await nodeWebGpu() });
    const net = Network.fromJSON({ input_shape: [4], layers: [{ type: 'dense', input_height: 4, output_height: 2 }] });
    await net.useBackend('webgpu', { context: own });
    const x = Tensor.from([1, 4], [1, 2, 3, 4]);
    await net.forwardAsync(x);
    own.device.destroy(); // what a driver reset looks like from here
    for (let i = 0; i < 50 && own.lostReason === null; i++) await new Promise((r) => setTimeout(r, 10));
    const err = await net.forwardAsync(x).catch((e: unknown) => e);
    expect((err as HeddleError).code).toBe('BACKEND_UNAVAILABLE');
    expect((err as HeddleError).message).toMatch(/device was lost/);
    net.releaseBackend();
  });

  it('a released backend refuses to run; forwardAsync then runs on the CPU', async () => {
    const net = Network.fromJSON({ input_shape: [3], layers: [{ type: 'dense', input_height: 3, output_height: 2, activation: 'gelu' }] });
    await net.useBackend('webgpu', { context: ctx });
    const x = Tensor.from([1, 3], [0.5, -1, 2]);
    const gpu = await net.forwardAsync(x);
    net.releaseBackend();
    expect(net.backend).toBe('cpu');
    expect(Array.from((await net.forwardAsync(x)).data)).toEqual(Array.from(gpu.data));
  });

  it('concurrent forwards on one device are serialized and stay exact', async () => {
    const a = Network.fromJSON({ input_shape: [8], layers: [{ type: 'dense', input_height: 8, output_height: 8, activation: 'tanh' }, { type: 'softmax' }] }, { seed: 1 });
    const b = Network.fromJSON({ input_shape: [8], layers: [{ type: 'dense', input_height: 8, output_height: 4, activation: 'silu' }] }, { seed: 2 });
    await a.useBackend('webgpu', { context: ctx });
    await b.useBackend('webgpu', { context: ctx });
    const xs = [1, 2, 3].map((k) => Tensor.from([k, 8], Array.from({ length: 8 * k }, (_, i) => Math.sin(i * k))));
    const runs = xs.flatMap((x) => [a.forwardAsync(x), b.forwardAsync(x)]);
    const got = await Promise.all(runs);
    xs.forEach((x, k) => {
      expect(Array.from(got[2 * k].data)).toEqual(Array.from(a.forward(x).data));
      expect(Array.from(got[2 * k + 1].data)).toEqual(Array.from(b.forward(x).data));
    });
    a.releaseBackend();
    b.releaseBackend();
  });
});

describe('webgpu on other runtimes (child processes)', () => {
  it('Deno, navigator.gpu on Mesa lavapipe (keeps subnormals): every case bit-identical', async () => {
    expect(existsSync(LAVAPIPE), `${LAVAPIPE} (Debian mesa-vulkan-drivers, scripts/setup.sh)`).toBe(true);
    const deno = `${root}node_modules/.bin/deno`;
    const r = await runJson(deno, ['run', '--no-lock', '-A', 'tests/webgpu/main.ts', '--adversary'], { VK_ICD_FILENAMES: LAVAPIPE, DENO_WEBGPU_BACKEND: 'vulkan' }, 400_000);
    expect(r.summary.adapter?.description ?? '', r.output).toMatch(/llvmpipe/);
    expect(r.summary.failed ?? ['no summary'], r.output).toEqual([]);
    expect(r.summary.cases).toBe(buildCases().length + 1); // + the recurrent state checks
    expect(r.code, r.output).toBe(0);
    // The same cases with the explicit flush switched off must change bits here: lavapipe keeps
    // subnormals, so these checks would catch a kernel that relied on the adapter to flush.
    expect(r.summary.adversary?.noFlush.mismatches ?? 0, r.output).toBeGreaterThan(0);
  }, 420_000);

  it('Bun with the webgpu package on SwiftShader: every case bit-identical (quick sizes)', async () => {
    const bun = `${root}node_modules/.bin/bun`;
    const r = await runJson(bun, ['tests/webgpu/main.ts', '--quick'], { VK_ICD_FILENAMES: SWIFTSHADER }, 300_000);
    expect(r.summary.adapter?.description ?? '', r.output).toMatch(/SwiftShader/i);
    expect(r.summary.failed ?? ['no summary'], r.output).toEqual([]);
    expect(r.summary.cases).toBe(buildCases(true).length + 1);
    expect(r.code, r.output).toBe(0);
  }, 320_000);
});
