/**
 * The TS client against a real engine (Node): errors as HeddleEngineError, pipelining,
 * backends, dtypes, optimizers, and an engine that dies.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tensor } from '../../core/tensor.ts';
import { DType } from '../engine/generated/fb/heddle/abi/dtype.ts';
import { ErrorCode } from '../engine/generated/fb/heddle/abi/error-code.ts';
import { engineCommandFor } from '../engine/testing.ts';
import { Engine, HeddleEngineError } from './client.ts';

const CONFIG = { layers: [{ type: 'dense', input_height: 4, output_height: 3, activation: 'tanh' }, { type: 'dense', input_height: 3, output_height: 2 }] };

describe('TS client', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await Engine.spawn({ command: await engineCommandFor('node') });
  });
  afterAll(async () => engine.close());

  it('reports errors as HeddleEngineError with the code, and keeps working', async () => {
    const net = await engine.createNetwork(CONFIG, { seed: 3 });
    const err = await net.forward(Tensor.from([1, 3], [1, 2, 3])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HeddleEngineError);
    expect((err as HeddleEngineError).code).toBe(ErrorCode.SHAPE_MISMATCH);
    expect((err as HeddleEngineError).codeName).toBe('SHAPE_MISMATCH');
    const y = await net.forward(Tensor.from([2, 4], [1, 2, 3, 4, 5, 6, 7, 8]));
    expect(y.shape).toEqual([2, 2]);
    await net.free();
  });

  it('pipelines calls (many in flight at once)', async () => {
    const net = await engine.createNetwork(CONFIG, { seed: 3 });
    const xs = Array.from({ length: 300 }, (_, i) => Tensor.from([1, 4], [i, -i, i / 2, 1]));
    const ys = await Promise.all(xs.map((x) => net.forward(x)));
    const one = await net.forward(xs[123]);
    expect(Array.from(ys[123].data as Float32Array)).toEqual(Array.from(one.data as Float32Array));
    await net.free();
  });

  it('set backend: cpu works, webgpu is unavailable, unknown names are invalid', async () => {
    expect(await engine.setBackend('cpu')).toBe('cpu');
    await expect(engine.setBackend('webgpu')).rejects.toMatchObject({ code: ErrorCode.BACKEND_UNAVAILABLE });
    await expect(engine.setBackend('tpu')).rejects.toMatchObject({ code: ErrorCode.ARGUMENT_INVALID });
  });

  it('morph dtype: F32 is a no-op, others are UNSUPPORTED', async () => {
    const net = await engine.createNetwork(CONFIG);
    expect((await net.morphDtype(DType.F32)).parameterCount).toBe(net.info.parameterCount);
    await expect(net.morphDtype(DType.F16)).rejects.toMatchObject({ code: ErrorCode.UNSUPPORTED });
    await expect(net.morphDtype(99 as DType)).rejects.toMatchObject({ code: ErrorCode.DTYPE_INVALID });
    await net.free();
  });

  it('optimizers: wrong kind, freed with their network', async () => {
    const net = await engine.createNetwork(CONFIG);
    const opt = await net.createOptimizer({ type: 'sgd', lr: 0.1 });
    expect((opt.spec as { type: string }).type).toBe('sgd');
    // An optimizer handle where a network handle is needed.
    const fake = new (net.constructor as new (e: Engine, i: typeof net.info) => typeof net)(engine, { ...net.info, handle: opt.handle });
    await expect(fake.forward(Tensor.from([1, 4], [1, 2, 3, 4]))).rejects.toMatchObject({ code: ErrorCode.HANDLE_WRONG_KIND });
    await net.grad(Tensor.from([1, 4], [1, 2, 3, 4]), { target: Tensor.from([1, 2], [0, 1]), loss: 'mse' });
    expect(await opt.step()).toBe(1);
    await net.free();
    await expect(opt.step()).rejects.toMatchObject({ code: ErrorCode.HANDLE_STALE });
    await expect(opt.free()).rejects.toMatchObject({ code: ErrorCode.HANDLE_DOUBLE_FREE });
  });

  it('an engine that dies fails pending and later calls with ENGINE_EXITED, and a new one starts', async () => {
    const e = await Engine.spawn({ command: await engineCommandFor('node') });
    const net = await e.createNetwork(CONFIG);
    const pending = net.forward(Tensor.from([1, 4], [1, 2, 3, 4]));
    e.child!.kill('SIGKILL');
    const t0 = Date.now();
    const results = await Promise.allSettled([pending, new Promise((r) => setTimeout(r, 50)).then(() => net.forward(Tensor.from([1, 4], [1, 2, 3, 4])))]);
    for (const r of results) {
      if (r.status === 'rejected') expect((r.reason as HeddleEngineError).code).toBe(ErrorCode.ENGINE_EXITED);
    }
    expect(results[1].status).toBe('rejected');
    expect(Date.now() - t0).toBeLessThan(5000);
    const fresh = await Engine.spawn({ command: await engineCommandFor('node') });
    const n2 = await fresh.createNetwork(CONFIG);
    expect((await n2.forward(Tensor.from([1, 4], [1, 2, 3, 4]))).shape).toEqual([1, 2]);
    await fresh.close();
  });
});

describe('TS client: weights, loss, optimizer state', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await Engine.spawn({ command: await engineCommandFor('node') });
  });
  afterAll(async () => engine.close());

  it('set weights is all-or-nothing, with precise errors', async () => {
    const net = await engine.createNetwork(CONFIG, { seed: 1 });
    const before = await net.getWeights();
    expect([...before.keys()]).toEqual(['layers.0.weight', 'layers.0.bias', 'layers.1.weight', 'layers.1.bias']);
    const good = new Tensor([3, 4], new Float32Array(12).fill(0.5));
    await expect(net.setWeights(new Map([['layers.0.weight', good], ['nope', good]]))).rejects.toMatchObject({ code: ErrorCode.WEIGHTS_INVALID });
    await expect(net.setWeights(new Map([['layers.0.weight', new Tensor([4, 3], new Float32Array(12))]]))).rejects.toMatchObject({ code: ErrorCode.WEIGHTS_INVALID });
    await expect(net.setWeights(new Map([['layers.0.weight', good]]), { complete: true })).rejects.toMatchObject({ code: ErrorCode.WEIGHTS_INVALID });
    expect([...(await net.getWeights()).values()].map((t) => Array.from(t.data as Float32Array))).toEqual([...before.values()].map((t) => Array.from(t.data as Float32Array)));
    await net.setWeights(new Map([['layers.0.weight', good]]));
    expect(Array.from((await net.getWeights()).get('layers.0.weight')!.data as Float32Array)).toEqual(new Array(12).fill(0.5));
    await net.free();
  });

  it('loss changes nothing and checks its target', async () => {
    const net = await engine.createNetwork(CONFIG, { seed: 1 });
    const x = Tensor.from([2, 4], [1, 2, 3, 4, 5, 6, 7, 8]);
    const a = await net.loss(x, new Tensor([2], new Int32Array([1, 0]), 'i32'), 'cross_entropy');
    const b = await net.loss(x, new Tensor([2], new Int32Array([1, 0]), 'i32'), 'cross_entropy');
    expect(a.loss).toBe(b.loss);
    expect(a.outputGrad.shape).toEqual([2, 2]);
    await expect(net.loss(x, new Tensor([2], new Int32Array([1, 5]), 'i32'), 'cross_entropy')).rejects.toMatchObject({ code: ErrorCode.INPUT_INVALID });
    await expect(net.loss(x, new Tensor([2], new Int32Array([1, 0]), 'i32'), 'hinge')).rejects.toMatchObject({ code: ErrorCode.CONFIG_INVALID });
    await net.free();
  });

  it('optimizer state follows the steps', async () => {
    const net = await engine.createNetwork(CONFIG, { seed: 1 });
    const opt = await net.createOptimizer('adamw');
    expect((await opt.state()).step).toBe(0);
    await net.grad(Tensor.from([1, 4], [1, 2, 3, 4]), { target: Tensor.from([1, 2], [0, 1]), loss: 'mse' });
    await opt.step();
    const st = await opt.state();
    expect(st.type).toBe('adamw');
    expect(st.step).toBe(1);
    expect([...st.tensors.keys()]).toContain('layers.0.weight.exp_avg');
    await net.free();
  });
});
