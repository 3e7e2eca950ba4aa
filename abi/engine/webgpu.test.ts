/**
 * The webgpu backend through the engine (docs/abi.md, Backends): SetBackend("webgpu") then
 * Forward, Grad (grad_output, and target + loss), Loss, OptimizerStep and Train give exactly
 * the bits of the same calls on the cpu backend, on Node and Bun (Dawn on SwiftShader) and on
 * Deno (wgpu on lavapipe). Also: no adapter is BACKEND_UNAVAILABLE with the reason and the
 * connection stays on the cpu; pipelined calls on the GPU are answered in order; with
 * --socket, another connection is served while one trains on the GPU.
 *
 * The adapter is chosen by the engine's environment (VK_ICD_FILENAMES, DENO_WEBGPU_BACKEND),
 * as a wrapper's engine would inherit it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Tensor, type TensorData } from '../../core/tensor.ts';
import { Engine, ErrorCode, type HeddleEngineError } from '../client/client.ts';
import { type RuntimeName, engineCommandFor, sha256, testValues } from './testing.ts';

const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';
const LAVAPIPE = '/usr/share/vulkan/icd.d/lvp_icd.x86_64.json';

/** The environment that gives each runtime its software adapter. */
function gpuEnv(rt: RuntimeName): Record<string, string> {
  return rt === 'deno' ? { VK_ICD_FILENAMES: LAVAPIPE, DENO_WEBGPU_BACKEND: 'vulkan' } : { VK_ICD_FILENAMES: SWIFTSHADER };
}
/** No Vulkan driver at all (and no OpenGL fallback on Deno). */
const NO_ADAPTER = { VK_ICD_FILENAMES: '/nonexistent/heddle_icd.json', DENO_WEBGPU_BACKEND: 'vulkan' };

/** dense, layer_norm, residual (GPU kernels forward and backward); SEQ: an lstm, which runs on the CPU inside the GPU pass, then rms_norm and dense. */
const MLP = {
  layers: [
    { type: 'dense', input_height: 5, output_height: 7, activation: 'tanh' },
    { type: 'layer_norm', norm_size: 7 },
    { type: 'dense', input_height: 7, output_height: 7, activation: 'gelu' },
    { type: 'residual' },
    { type: 'dense', input_height: 7, output_height: 3 },
  ],
};
const SEQ = {
  input_shape: [4, 3],
  layers: [
    { type: 'lstm', input_size: 3, hidden_size: 5, seq_length: 4 },
    { type: 'rms_norm', norm_size: 5 },
    { type: 'dense', input_height: 5, output_height: 2, activation: 'sigmoid' },
  ],
};

function f32(values: Float32Array, shape: readonly number[]): Tensor {
  return new Tensor([...shape], values, 'f32');
}

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, d) => a * d, 1);
}

/** A digest per result, in call order; a mismatch names the call. */
type Digests = Record<string, string>;

/** Float64 values as bytes (every f32 and lr is exact in a double). */
function f64Bytes(v: number[]): Uint8Array {
  return new Uint8Array(new Float64Array(v).buffer);
}

function put(out: Digests, key: string, v: Tensor<TensorData> | number | number[] | Map<string, Tensor<TensorData>>): void {
  if (typeof v === 'number') out[key] = `${v} ${sha256(f64Bytes([v]))}`;
  else if (Array.isArray(v)) out[key] = sha256(f64Bytes(v));
  else if (v instanceof Map) for (const [name, t] of v) out[`${key} ${name}`] = sha256(t.data);
  else out[key] = `${v.shape.join('x')} ${sha256(v.data)}`;
}

/** The calls whose bits are compared, on a fresh network of `config` (same seed each time). */
async function scenario(engine: Engine, config: { input_shape?: number[]; layers: unknown[] }): Promise<Digests> {
  const out: Digests = {};
  const net = await engine.createNetwork(config, { seed: 7 });
  const { inputShape: inShape, outputShape: outShape } = net.info;
  const B = 5;
  const x = f32(testValues(B * sizeOf(inShape), 11), [B, ...inShape]);
  const dy = f32(testValues(B * sizeOf(outShape), 12), [B, ...outShape]);
  const target = f32(testValues(B * sizeOf(outShape), 13), [B, ...outShape]);
  put(out, 'forward', await net.forward(x));
  put(out, 'forward batch 1', await net.forward(f32(testValues(sizeOf(inShape), 14), [1, ...inShape])));
  const g = await net.grad(x, { gradOutput: dy });
  put(out, 'grad dx', g.inputGrad);
  put(out, 'grad w', g.weightGrads);
  const gl = await net.grad(x, { target, loss: 'mse' });
  put(out, 'grad+mse loss', gl.loss!);
  put(out, 'grad+mse dx', gl.inputGrad);
  put(out, 'grad+mse w', gl.weightGrads);
  const l = await net.loss(x, target, 'mse');
  put(out, 'loss', l.loss);
  put(out, 'loss output', l.output);
  put(out, 'loss grad', l.outputGrad);
  // OptimizerStep updates the host weights; the next GPU pass must see them.
  const opt = await net.createOptimizer({ type: 'adamw', lr: 0.01 });
  await opt.step();
  put(out, 'forward after step', await net.forward(x));
  await net.grad(x, { gradOutput: dy });
  await opt.step(0.05);
  put(out, 'forward after 2nd step', await net.forward(x));
  // Train with that optimizer (its state carries on), then with a spec; progress frames too.
  const N = 11;
  const X = f32(testValues(N * sizeOf(inShape), 21), [N, ...inShape]);
  const Y = f32(testValues(N * sizeOf(outShape), 22), [N, ...outShape]);
  const progress: number[] = [];
  const t1 = await net.train({ inputs: X, targets: Y }, { epochs: 2, batchSize: 4, loss: 'mse', optimizer: opt, shuffle: true, seed: 5, clipNorm: 0.5, progressEvery: 1, onProgress: (p) => progress.push(p.loss, p.lr) });
  put(out, 'train 1 losses', [t1.finalLoss, ...t1.epochLosses, t1.steps]);
  put(out, 'train 1 progress', progress);
  put(out, 'train 1 weights', await net.getWeights());
  const st = await opt.state();
  put(out, `optimizer state step ${st.step}`, st.tensors);
  const t2 = await net.train({ inputs: X, targets: Y }, { epochs: 1, batchSize: 3, loss: 'mse', optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9 }, seed: 9, schedule: { type: 'step', step_size: 1, gamma: 0.5 } });
  put(out, 'train 2 losses', [t2.finalLoss, ...t2.epochLosses, t2.steps]);
  put(out, 'train 2 weights', await net.getWeights());
  put(out, 'forward after train', await net.forward(x));
  // Weights set by the client are the ones the GPU uses next.
  const w = await net.getWeights();
  const scaled = new Map([...w].map(([k, t]) => [k, f32((t.data as Float32Array).map((v) => v * 0.75), t.shape)]));
  await net.setWeights(scaled);
  put(out, 'forward after setWeights', await net.forward(x));
  await net.free();
  return out;
}

const children: ChildProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), 'heddle-webgpu-engine-'));
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

async function start(rt: RuntimeName, env: Record<string, string>): Promise<Engine> {
  return Engine.spawn({ command: await engineCommandFor(rt), env, stderr: 'ignore', clientName: 'webgpu.test' });
}

for (const rt of ['node', 'deno', 'bun'] as RuntimeName[]) {
  describe(`the webgpu backend through the engine on ${rt}`, () => {
    it('SetBackend("webgpu") gives the cpu backend\'s bits: forward, grad, loss, optimizer step, train', async () => {
      const engine = await start(rt, gpuEnv(rt));
      try {
        const webgpu = engine.info.backends.find((b) => b.name === 'webgpu')!;
        expect(webgpu).toMatchObject({ available: true, adapters: [] });
        expect(await engine.setBackend('cpu')).toBe('cpu');
        const cpu = { mlp: await scenario(engine, MLP), seq: await scenario(engine, SEQ) };
        expect(await engine.setBackend('webgpu')).toBe('webgpu');
        // Hello now names the adapter in use.
        const info = await engine.hello({ major: 1, minor: 0, patch: 0 });
        const after = info.backends.find((b) => b.name === 'webgpu')!;
        expect(after.available).toBe(true);
        expect(after.adapters.length).toBe(1);
        expect(after.adapters[0]).toMatch(rt === 'deno' ? /llvmpipe/i : /swiftshader/i);
        const gpu = { mlp: await scenario(engine, MLP), seq: await scenario(engine, SEQ) };
        expect(gpu.mlp).toEqual(cpu.mlp);
        expect(gpu.seq).toEqual(cpu.seq);
        expect(Object.keys(gpu.mlp).length).toBeGreaterThan(20);
        // And back: a network made on the GPU continues on the CPU with the same bits.
        const net = await engine.createNetwork(MLP, { seed: 3 });
        const x = f32(testValues(15, 31), [3, 5]);
        const onGpu = await net.forward(x);
        expect(await engine.setBackend('cpu')).toBe('cpu');
        expect(sha256((await net.forward(x)).data)).toBe(sha256(onGpu.data));
        expect(await engine.setBackend('webgpu')).toBe('webgpu');
        expect(sha256((await net.forward(x)).data)).toBe(sha256(onGpu.data));
      } finally {
        await engine.close();
      }
    }, 400_000);

    it('pipelined calls on the GPU are answered in order, errors included', async () => {
      const engine = await start(rt, gpuEnv(rt));
      try {
        const net = await engine.createNetwork(MLP, { seed: 4 });
        const xs = [0, 1, 2, 3].map((i) => f32(testValues(10, 40 + i), [2, 5]));
        const want = await Promise.all(xs.map((x) => net.forward(x)));
        await engine.setBackend('webgpu');
        // Sent back to back; the client matches answers to calls by call id.
        const same = (i: number) => (y: Tensor<TensorData>) => `f${i} ${sha256(y.data) === sha256(want[i].data)}`;
        const results = await Promise.all([
          net.forward(xs[0]).then(same(0)),
          net.describe().then(() => 'describe'),
          net.forward(f32(new Float32Array(6), [2, 3])).catch((e: HeddleEngineError) => `bad ${ErrorCode[e.code]}`),
          net.forward(xs[1]).then(same(1)),
          engine.setBackend('cpu'),
          net.forward(xs[2]).then(same(2)),
          engine.setBackend('webgpu'),
          net.forward(xs[3]).then(same(3)),
          net.free().then(() => 'freed'),
        ]);
        expect(results).toEqual(['f0 true', 'describe', 'bad SHAPE_MISMATCH', 'f1 true', 'cpu', 'f2 true', 'webgpu', 'f3 true', 'freed']);
      } finally {
        await engine.close();
      }
    }, 300_000);

    it('no adapter: BACKEND_UNAVAILABLE with the reason; the connection stays on the cpu', async () => {
      const engine = await start(rt, NO_ADAPTER);
      try {
        const net = await engine.createNetwork(MLP, { seed: 4 });
        const x = f32(testValues(10, 50), [2, 5]);
        const before = await net.forward(x);
        const err = (await engine.setBackend('webgpu').catch((e: unknown) => e)) as HeddleEngineError;
        expect(err.code).toBe(ErrorCode.BACKEND_UNAVAILABLE);
        expect(err.message).toMatch(/found no adapter/);
        expect(sha256((await net.forward(x)).data)).toBe(sha256(before.data));
        // Hello now says why.
        const info = await engine.hello({ major: 1, minor: 0, patch: 0 });
        const webgpu = info.backends.find((b) => b.name === 'webgpu')!;
        expect(webgpu.available).toBe(false);
        expect(err.message).toContain(webgpu.reason);
        await expect(engine.setBackend('tpu')).rejects.toMatchObject({ code: ErrorCode.ARGUMENT_INVALID });
      } finally {
        await engine.close();
      }
    }, 120_000);
  });
}

describe('the webgpu backend on each stdio method (node)', () => {
  for (const method of ['sync', 'stream'] as const) {
    it(`--stdio-method ${method}: pipelined GPU calls, and the end of input while one is in flight`, async () => {
      const engine = await Engine.spawn({ command: await engineCommandFor('node', ['--stdio-method', method]), env: gpuEnv('node'), stderr: 'ignore' });
      const net = await engine.createNetwork(MLP, { seed: 5 });
      const xs = [0, 1, 2].map((i) => f32(testValues(10, 70 + i), [2, 5]));
      const want = await Promise.all(xs.map((x) => net.forward(x)));
      await engine.setBackend('webgpu');
      const got = await Promise.all(xs.map((x) => net.forward(x)));
      expect(got.map((y) => sha256(y.data))).toEqual(want.map((y) => sha256(y.data)));
      // The answer to a call in flight still comes before the engine exits.
      const last = net.forward(xs[0]);
      const closing = engine.close();
      expect(sha256((await last).data)).toBe(sha256(want[0].data));
      await closing;
      expect(engine.child!.exitCode).toBe(0);
    }, 120_000);
  }
});

describe('the webgpu backend with --socket (node)', () => {
  it('serves another connection while one trains on the GPU; each connection chooses its backend', async () => {
    const path = join(dir, 'gpu.sock');
    const cmd = await engineCommandFor('node', ['--socket', path]);
    const child = spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', 'ignore', 'ignore'], env: { ...process.env, ...gpuEnv('node') } });
    children.push(child);
    const deadline = Date.now() + 15_000;
    while (!existsSync(path)) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error('the socket engine did not start');
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 50));
    const a = await Engine.connect(path);
    const b = await Engine.connect(path);
    try {
      const netA = await a.createNetwork(MLP, { seed: 8 });
      const netB = await b.createNetwork(MLP, { seed: 8 });
      const N = 40;
      const X = f32(testValues(N * 5, 61), [N, 5]);
      const Y = f32(testValues(N * 3, 62), [N, 3]);
      const opts = { epochs: 3, batchSize: 4, loss: 'mse', optimizer: 'adamw', seed: 2, progressEvery: 0 } as const;
      // The reference: the same training on the cpu (connection b).
      const ref = await netB.train({ inputs: X, targets: Y }, opts);
      const refW = await netB.getWeights();
      await a.setBackend('webgpu');
      let servedMeanwhile = 0;
      let trained = false;
      const training = netA.train({ inputs: X, targets: Y }, opts).then((r) => {
        trained = true;
        return r;
      });
      // Connection b (cpu) keeps being answered while a's training waits for the GPU.
      const x = f32(testValues(10, 63), [2, 5]);
      while (!trained && servedMeanwhile < 200) {
        await netB.forward(x);
        if (!trained) servedMeanwhile++;
      }
      const r = await training;
      expect(servedMeanwhile).toBeGreaterThan(0);
      expect([r.finalLoss, ...r.epochLosses, r.steps]).toEqual([ref.finalLoss, ...ref.epochLosses, ref.steps]);
      const w = await netA.getWeights();
      for (const [k, t] of refW) expect(sha256(w.get(k)!.data), k).toBe(sha256(t.data));
    } finally {
      await a.close();
      await b.close();
      child.kill('SIGTERM');
    }
  }, 300_000);
});
