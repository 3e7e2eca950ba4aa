/**
 * WebGPU backend throughput next to the CPU backend, in the same run: forward and training
 * step of three workloads (dense 4096x4096 at batch 1024, a conv2d, an attention block).
 * Not a test: figures vary with the machine and its load. On the GPU device,
 * scripts/webgpu-device.sh --bench runs this and scripts/bench_torch.py (PyTorch fp32, TF32
 * off, same GPU) and prints the three side by side.
 *
 *   node dist/bench-webgpu.js [--small] [--no-cpu] [--reps 5] [--only dense,conv2d,attention]
 *
 * The CPU backend runs each workload at a smaller batch (`cpuBatch`: its bit-exact scalar
 * kernels would need minutes per training step at the GPU's batch); throughput in GFLOP/s is
 * comparable across batch sizes, and the GPU's output at that batch is compared bit for bit
 * with the CPU's. --small shrinks every workload (a smoke run on a software adapter).
 */
import { nodeWebGpu } from '../abi/node/webgpu.ts';
import { acquireWebGpu } from '../core/backend/webgpu/device.ts';
import { Network } from '../core/network.ts';
import { Prng } from '../core/prng.ts';
import { Tensor } from '../core/tensor.ts';
import { train, trainAsync } from '../core/train/trainer.ts';

const argv = process.argv.slice(2);
const flag = (n: string): boolean => argv.includes(`--${n}`);
const opt = (n: string, d: string): string => {
  const i = argv.indexOf(`--${n}`);
  return i >= 0 ? argv[i + 1] : d;
};
const small = flag('small');
const withCpu = !flag('no-cpu');
const reps = Number(opt('reps', small ? '2' : '5'));
const only = opt('only', 'dense,conv2d,attention').split(',');

interface Workload {
  name: string;
  config: Record<string, unknown>;
  batch: number;
  /** Multiply-adds x 2 of one forward pass at `batch` (the figure GFLOP/s is computed from). */
  flops: number;
  /** The CPU backend's batch (flops scale linearly with the batch). */
  cpuBatch: number;
}

function workloads(): Workload[] {
  const d = small ? 256 : 4096;
  const db = small ? 32 : 1024;
  const c = small ? { ch: 8, hw: 12, batch: 4 } : { ch: 64, hw: 32, batch: 32 };
  const a = small ? { seq: 16, dm: 32, heads: 4, ff: 64, batch: 2 } : { seq: 256, dm: 512, heads: 8, ff: 1024, batch: 8 };
  const attnFlops = a.batch * (2 * 4 * a.seq * a.dm * a.dm + 2 * 2 * a.seq * a.seq * a.dm + 2 * 2 * a.seq * a.dm * a.ff);
  return [
    { name: 'dense', config: { input_shape: [d], layers: [{ type: 'dense', input_height: d, output_height: d, activation: 'linear' }] }, batch: db, flops: 2 * db * d * d, cpuBatch: small ? db : 16 },
    {
      name: 'conv2d',
      config: { input_shape: [c.ch, c.hw, c.hw], layers: [{ type: 'conv2d', in_channels: c.ch, out_channels: c.ch, kernel_size: 3, padding: 1, activation: 'relu' }] },
      batch: c.batch,
      flops: 2 * c.batch * c.ch * c.ch * 9 * c.hw * c.hw,
      cpuBatch: small ? c.batch : 4,
    },
    {
      name: 'attention',
      config: {
        input_shape: [a.seq, a.dm],
        layers: [
          { type: 'multi_head_attention', d_model: a.dm, num_heads: a.heads, causal: true },
          { type: 'residual' },
          { type: 'layer_norm', norm_size: a.dm },
          { type: 'dense', input_height: a.dm, output_height: a.ff, activation: 'gelu' },
          { type: 'dense', input_height: a.ff, output_height: a.dm, activation: 'linear' },
        ],
      },
      batch: a.batch,
      flops: attnFlops,
      cpuBatch: small ? a.batch : 1,
    },
  ].filter((w) => only.includes(w.name));
}

function randomTensor(shape: number[], rng: Prng, scale = 1): Tensor {
  const n = shape.reduce((p, q) => p * q, 1);
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = Math.fround(rng.uniformRange(-1, 1) * scale);
  return new Tensor(shape, d);
}

async function time(fn: () => Promise<unknown> | unknown, n: number): Promise<number> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    ms.push(performance.now() - t0);
  }
  ms.sort((p, q) => p - q);
  return ms[Math.floor(ms.length / 2)];
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i] && !(a[i] !== a[i] && b[i] !== b[i])) return false;
  return true;
}

interface Row {
  workload: string;
  backend: string;
  op: string;
  ms: number;
  gflops: number;
  bitIdentical?: boolean;
}

async function main(): Promise<void> {
  const ctx = await acquireWebGpu({ gpu: await nodeWebGpu() });
  const rows: Row[] = [];
  console.log(`adapter: ${ctx.report.description} (${ctx.report.vendor} ${ctx.report.architecture})`);
  console.log(`reps: ${reps} (median), small: ${small}, cpu backend: ${withCpu}`);
  for (const w of workloads()) {
    const rng = new Prng(7).fork(w.name);
    const net = Network.fromJSON(w.config, { seed: 3 });
    const x = randomTensor([w.batch, ...net.inputShape], rng.fork('x'));
    const steps = 2;
    const data = { inputs: randomTensor([w.batch * steps, ...net.inputShape], rng.fork('data')), targets: randomTensor([w.batch * steps, ...net.outputShape], rng.fork('y')) };
    const trainOpts = { epochs: 1, batchSize: w.batch, loss: 'mse', optimizer: { type: 'sgd', lr: 0.001 }, seed: 1 } as const;
    const start = net.getWeights();
    await net.useBackend('webgpu', { context: ctx });
    await net.forwardAsync(x); // compiles the plan
    const fwd = await time(() => net.forwardAsync(x), reps);
    rows.push({ workload: w.name, backend: 'webgpu', op: 'forward', ms: fwd, gflops: w.flops / fwd / 1e6 });
    // one training step = forward + backward (about 3x the forward's work) + the update;
    // timed over `steps` steps of one trainAsync call (its final read-back included)
    const gpuTrain = async (): Promise<void> => {
      net.setWeights(start);
      await trainAsync(net, data, trainOpts);
    };
    await gpuTrain(); // compiles the training plan
    const tr = (await time(gpuTrain, Math.max(1, Math.ceil(reps / 2)))) / steps;
    rows.push({ workload: w.name, backend: 'webgpu', op: 'train step', ms: tr, gflops: (3 * w.flops) / tr / 1e6 });
    console.log(`${w.name}: webgpu forward ${fwd.toFixed(1)} ms, train step ${tr.toFixed(1)} ms`);
    if (withCpu) {
      // the same computations at the CPU's batch: GPU results first (for the bit comparison)
      const cb = w.cpuBatch;
      const cflops = (w.flops * cb) / w.batch;
      const xc = randomTensor([cb, ...net.inputShape], rng.fork('xc'));
      const dataC = { inputs: randomTensor([cb, ...net.inputShape], rng.fork('dc')), targets: randomTensor([cb, ...net.outputShape], rng.fork('yc')) };
      const optsC = { ...trainOpts, batchSize: cb };
      net.setWeights(start);
      const gpuYc = await net.forwardAsync(xc);
      await trainAsync(net, dataC, optsC);
      const gpuWc = net.getWeights();
      net.releaseBackend();
      net.setWeights(start);
      let cpuY: Tensor | null = null;
      const cf = await time(() => {
        cpuY = net.forward(xc);
      }, 1);
      rows.push({ workload: w.name, backend: 'cpu', op: 'forward', ms: cf, gflops: cflops / cf / 1e6, bitIdentical: sameBits(cpuY!.data as Float32Array, gpuYc.data as Float32Array) });
      const ct = await time(() => train(net, dataC, optsC), 1);
      let same = true;
      for (const [name, t] of net.getWeights()) same &&= sameBits(t.data as Float32Array, gpuWc.get(name)!.data as Float32Array);
      rows.push({ workload: w.name, backend: 'cpu', op: 'train step', ms: ct, gflops: (3 * cflops) / ct / 1e6, bitIdentical: same });
      console.log(`${w.name}: cpu backend at batch ${cb} (gpu at ${w.batch})`);
    }
    net.releaseBackend();
    console.log(`${w.name}: done`);
  }
  console.log('\nms: per call at the workload batch (GPU) or at the CPU batch (see above); GFLOP/s comparable.');
  console.log('\n| workload | op | backend | ms (median) | GFLOP/s | GPU = CPU bits |');
  console.log('|---|---|---|---:|---:|---|');
  for (const r of rows) console.log(`| ${r.workload} | ${r.op} | ${r.backend} | ${r.ms.toFixed(2)} | ${r.gflops.toFixed(2)} | ${r.bitIdentical === undefined ? '' : r.bitIdentical ? 'yes' : 'NO'} |`);
  console.log(JSON.stringify({ adapter: ctx.report.description, small, rows }));
  ctx.destroy();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
