/**
 * Training on the GPU (docs/webgpu.md, "Training"): the backward pass of the network and the
 * optimizer step, with weights, gradients and optimizer state resident on the device.
 *
 * - A training plan per batch size: each node's TrainOp (GPU) or the CPU fallback below.
 * - The network-level backward is Network.backward's: nodes in reverse, gradients of a value
 *   used twice summed in the same order (the existing one + the new one, h_add), a disabled
 *   node passing its gradient through.
 * - The loss and its gradient are computed on the host (computeLoss: the output is read back
 *   anyway for the reported loss) and the gradient uploaded.
 * - Clipping and the optimizer step run on the GPU (core/train/clip.wgsl.ts,
 *   core/train/optimizers.wgsl.ts). The host copies of the weights, gradients and optimizer
 *   state are brought up to date once, when the training call ends (finish); a failed call
 *   leaves them as they were and marks the GPU copies for re-upload (abort).
 */
import { fail } from '../../errors.ts';
import type { Layer, Param, RunContext } from '../../layers/layer.ts';
import type { Network } from '../../network.ts';
import { Prng } from '../../prng.ts';
import { Tensor, type TensorData } from '../../tensor.ts';
import { NORM_CHUNK, clipCoefficientShader, clipScaleShader, normAccumulateShader } from '../../train/clip.wgsl.ts';
import { type LossName, computeLoss } from '../../train/losses.ts';
import type { Optimizer } from '../../train/optimizers.ts';
import { OPT_WG, optimizerScalars, optimizerStepShader } from '../../train/optimizers.wgsl.ts';
import { MAP_WG, sumVals } from './common.ts';
import type { GpuTrainContext, TrainOp } from './kernel.ts';
import { BufferUsage, type GpuBuffer } from './gpu.ts';
import type { Kernel, Run, Val } from './run.ts';
import { type ShaderSpec, grid2d } from './shader.ts';

/** What the training driver needs from its backend. */
export interface TrainHost {
  readonly net: Network;
  /** A compile context for network-level kernels of this batch size. */
  trainContext(prefix: string, batch: number): GpuTrainContext;
  /** The resident value buffer of a parameter (created and uploaded when missing). */
  weightBuffer(p: Param): GpuBuffer;
  gradBuffer(p: Param): GpuBuffer;
}

/** Every parameter of a layer and its children, in the layer's order. */
export function layerParams(layer: Layer): Param[] {
  return [...layer.params, ...layer.children.flatMap((c) => layerParams(c.layer))];
}

/**
 * Host copies of parameter values during GPU training: which are stale (the GPU copy is newer)
 * and the values they had before the call, for restoring them when the call fails.
 */
export class HostSync {
  readonly gpuNewer = new Set<Param>();
  private readonly backup = new Map<Param, Float32Array>();

  constructor(private readonly host: TrainHost) {}

  /** Brings the host copies of these parameters up to date (a CPU layer is about to use them). */
  async pull(run: Run, params: readonly Param[]): Promise<void> {
    const stale = params.filter((p) => this.gpuNewer.has(p));
    if (stale.length === 0) return;
    const data = await run.cpuMany(stale.map((p) => ({ kind: 'gpu' as const, shape: p.value.shape, buffer: this.host.weightBuffer(p) })));
    stale.forEach((p, i) => {
      if (!this.backup.has(p)) this.backup.set(p, p.value.data.slice());
      p.value.data.set(data[i]);
      this.gpuNewer.delete(p);
    });
  }

  /** The call succeeded: the host keeps what it pulled. */
  commit(): void {
    this.backup.clear();
  }

  /** The call failed: host values go back to what they were (the caller re-uploads every parameter). */
  restore(): void {
    for (const [p, v] of this.backup) p.value.data.set(v);
    this.backup.clear();
    this.gpuNewer.clear();
  }
}

/**
 * A layer without a GPU training pair: its CPU forward and backward inside the GPU step. Its
 * input (and the output gradient) come back to the host; its parameters' current values and
 * gradient buffers are read back, Layer.backward adds into the gradients exactly as on the
 * CPU, and the gradients go back to the GPU.
 */
export function cpuTrainOp(layer: Layer, host: TrainHost, sync: HostSync): TrainOp {
  const params = layerParams(layer);
  return {
    async forward(run, x, ctx, skip) {
      await sync.pull(run, params);
      const xt = await run.cpu(x);
      const st = skip ? await run.cpu(skip) : undefined;
      const r = layer.forward(xt as Tensor, ctx, st as Tensor | undefined);
      return { y: { kind: 'cpu', tensor: r.y }, saved: r.saved };
    },
    async backward(run, saved, dy, ctx) {
      const dyt = await run.cpu(dy);
      await sync.pull(run, params);
      const grads = await run.cpuMany(params.map((p) => ({ kind: 'gpu' as const, shape: p.grad.shape, buffer: host.gradBuffer(p) })));
      params.forEach((p, i) => p.grad.data.set(grads[i]));
      const r = layer.backward(saved, dyt as Tensor, ctx);
      for (const p of params) run.write(host.gradBuffer(p), p.grad.data);
      return { dx: { kind: 'cpu', tensor: r.dx }, dskip: r.dskip ? { kind: 'cpu', tensor: r.dskip } : undefined };
    },
  };
}

export interface TrainPlan {
  readonly batch: number;
  readonly ops: (TrainOp | null)[];
  /** h_add of two values of n elements (gradients meeting at a node), by n. */
  readonly sums: Map<number, Promise<Kernel>>;
}

/**
 * Forward with tape, then backward from the gradient `lossGrad` returns for the output.
 * Returns dL/d(input) (zeros when no gradient reaches it, as Network.backward).
 */
export async function forwardBackward(
  run: Run,
  host: TrainHost,
  plan: TrainPlan,
  input: Tensor<TensorData>,
  ctxs: readonly RunContext[],
  lossGrad: (output: Val) => Promise<Val>,
): Promise<Val> {
  const nodes = host.net.nodes;
  const inputs: Val[] = [];
  const outputs: Val[] = [];
  const saved: unknown[] = [];
  const first: Val = { kind: 'cpu', tensor: input };
  for (const node of nodes) {
    const x = node.source < 0 ? first : outputs[node.source];
    inputs.push(x);
    const op = plan.ops[node.index];
    if (!op) {
      outputs.push(x);
      saved.push(null);
      continue;
    }
    const skip = node.layer.usesSkip ? inputs[node.index - 1] : undefined;
    const r = await op.forward(run, x, ctxs[node.index], skip);
    outputs.push(r.y);
    saved.push(r.saved);
  }
  const last = nodes.length - 1;
  const grads: (Val | null)[] = nodes.map(() => null);
  let gradInput: Val | null = null;
  const cc = host.trainContext('network', plan.batch);
  const add = (a: Val, b: Val): Promise<Val> => sumVals(run, cc, plan.sums, a, b);
  const accumulate = async (target: number, g: Val): Promise<void> => {
    if (target < 0) gradInput = gradInput ? await add(gradInput, g) : g;
    else grads[target] = grads[target] ? await add(grads[target]!, g) : g;
  };
  grads[last] = await lossGrad(outputs[last]);
  for (let i = last; i >= 0; i--) {
    const g = grads[i];
    if (!g) continue;
    const node = nodes[i];
    const op = plan.ops[i];
    if (!op) {
      await accumulate(node.source, g);
      continue;
    }
    const r = await op.backward(run, saved[i], g, ctxs[i]);
    await accumulate(node.source, r.dx);
    if (r.dskip) await accumulate(nodes[i - 1].source, r.dskip);
  }
  return gradInput ?? { kind: 'cpu', tensor: Tensor.zeros(input.shape) };
}

/** The RunContext of every node for one step, as Network.forwardTape makes them. */
export function stepContexts(net: Network, training: boolean, seed: number): RunContext[] {
  const stepRng = training ? new Prng(seed) : null;
  return net.nodes.map((node) => ({ training, rng: stepRng ? stepRng.fork(`layers.${node.index}`) : null }));
}

/** One training step's settings (the trainer's loop decides them). */
export interface StepSettings {
  readonly loss: LossName;
  readonly target: Tensor<TensorData>;
  readonly optimizer: Optimizer;
  readonly lr: number;
  readonly clipNorm?: number;
  readonly seed: number;
}

/** Optimizer state and per-size kernels for the length of one training call. */
export class OptimizerSession {
  /** Steps taken, including the optimizer's earlier ones. */
  t: number;
  private first: boolean;
  /** state[k][slot] for parameter k of optimizer.params. */
  private readonly state: GpuBuffer[][];
  private readonly scalars: GpuBuffer;
  private readonly clipBuf: GpuBuffer;
  private readonly kernels = new Map<string, Promise<Kernel>>();

  constructor(readonly optimizer: Optimizer, private readonly host: TrainHost) {
    const exported = optimizer.exportState();
    this.t = exported.step;
    this.first = exported.tensors.size === 0;
    const dev = host.trainContext('optimizer', 1).gpu.device;
    const usage = BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST;
    this.state = optimizer.params.map(({ name, param }) =>
      optimizer.slots.map((slot) => {
        const b = dev.createBuffer({ size: Math.max(4, param.value.size * 4), usage, label: `optimizer ${name}.${slot}` });
        const t = exported.tensors.get(`${name}.${slot}`);
        if (t && t.size > 0) dev.queue.writeBuffer(b, 0, t.data as Float32Array);
        return b;
      }),
    );
    this.scalars = dev.createBuffer({ size: 16, usage, label: 'optimizer scalars' });
    this.clipBuf = dev.createBuffer({ size: 16, usage, label: 'clip norm' });
  }

  private kernel(key: string, spec: () => ShaderSpec, wg: readonly [number, number?]): Promise<Kernel> {
    let k = this.kernels.get(key);
    if (!k) {
      k = this.host.trainContext('optimizer', 1).kernel(spec(), wg);
      this.kernels.set(key, k);
    }
    return k;
  }

  /** Records clipping (when asked) and the optimizer update of every parameter. */
  async record(run: Run, lr: number, clipNorm: number | undefined): Promise<void> {
    if (typeof lr !== 'number' || !Number.isFinite(lr) || lr < 0) fail('CONFIG_INVALID', `learning rate must be a finite number >= 0, got ${String(lr)}`, 'optimizer.lr');
    const cc = this.host.trainContext('optimizer', 1);
    const params = this.optimizer.params;
    if (clipNorm !== undefined) {
      run.clear(this.clipBuf);
      for (const { param } of params) {
        const n = param.value.size;
        if (n === 0) continue;
        const k = await this.kernel(`norm ${n}`, () => normAccumulateShader(n, `clip norm sum ${n}`), [1]);
        for (let c = 0; c < Math.ceil(n / NORM_CHUNK); c++) run.dispatch(k, [this.host.gradBuffer(param), this.clipBuf]);
      }
      const coefK = await this.kernel(`coef ${clipNorm}`, () => clipCoefficientShader(clipNorm, 'clip coefficient'), [1]);
      const coef = run.alloc(2);
      run.dispatch(coefK, [this.clipBuf, coef]);
      for (const { param } of params) {
        const n = param.value.size;
        if (n === 0) continue;
        const g = grid2d(Math.ceil(n / MAP_WG), cc.maxWorkgroups);
        const k = await this.kernel(`scale ${n}`, () => clipScaleShader(n, g.x, MAP_WG, `clip scale ${n}`), [g.x, g.y]);
        run.dispatch(k, [this.host.gradBuffer(param), coef]);
      }
    }
    run.write(this.scalars, optimizerScalars(this.optimizer.spec, lr, this.t + 1, this.first));
    for (const [k, { param }] of params.entries()) {
      const n = param.value.size;
      if (n === 0) continue;
      const g = grid2d(Math.ceil(n / OPT_WG), cc.maxWorkgroups);
      const kern = await this.kernel(`step ${n}`, () => optimizerStepShader(this.optimizer.spec, n, g.x, `${this.optimizer.spec.type} step ${n}`), [g.x, g.y]);
      run.dispatch(kern, [this.host.weightBuffer(param), this.host.gradBuffer(param), ...this.state[k], this.scalars]);
    }
    this.t++;
    this.first = false;
  }

  /** The state's buffers, as read-back values (optimizer.params order, slot order). */
  stateVals(): { name: string; val: Val & { kind: 'gpu' } }[] {
    const out: { name: string; val: Val & { kind: 'gpu' } }[] = [];
    this.optimizer.params.forEach(({ name, param }, k) => {
      this.optimizer.slots.forEach((slot, j) => out.push({ name: `${name}.${slot}`, val: { kind: 'gpu', shape: param.value.shape, buffer: this.state[k][j] } }));
    });
    return out;
  }

  destroy(): void {
    for (const slots of this.state) for (const b of slots) b.destroy();
    this.scalars.destroy();
    this.clipBuf.destroy();
  }
}

/** Host-side loss on the read-back output; returns the loss and the uploaded gradient. */
export async function hostLoss(run: Run, output: Val, s: StepSettings): Promise<{ loss: number; grad: Val }> {
  const y = (await run.cpu(output)) as Tensor;
  const r = computeLoss(s.loss, y, s.target);
  return { loss: r.loss, grad: { kind: 'cpu', tensor: r.grad } };
}
