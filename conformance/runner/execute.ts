/**
 * Runs conformance vectors in-process with the core and reports, per operation, the SHA-256
 * of the bits it produced (digest.ts) or the error code it raised. Browser-safe: the same
 * module runs under Node, Deno, Bun and in a browser page. Comparing with the goldens is the
 * host's job (conformance/host/matrix.ts), so a runtime only computes.
 */
import { Network } from '../../core/network.ts';
import { Prng } from '../../core/prng.ts';
import { Tensor, type TensorData } from '../../core/tensor.ts';
import { add, div, mul } from '../../core/math/index.ts';
import { computeLoss, parseLossName } from '../../core/train/losses.ts';
import { train, trainAsync, type TrainOptions, type TrainResult } from '../../core/train/trainer.ts';
import { type AdapterReport, type WebGpuContext, acquireWebGpu } from '../../core/backend/webgpu/device.ts';
import type { GpuEntry } from '../../core/backend/webgpu/gpu.ts';
import type { LayerPlacement } from '../../core/backend/backend.ts';
import { loadNetworkJSON, loadNetworkSafetensors, saveNetworkJSON, saveNetworkSafetensors } from '../../core/io/network_io.ts';
import { type NamedArray, digest } from './digest.ts';
import { type FillSpec, type OpSpec, type TensorSpec, type Vector, opKey, parseValue } from './spec.ts';

export interface OpResult {
  /** `<index>:<op>`, the golden key. */
  key: string;
  /** Digest of the op's output arrays, on success. */
  sha256?: string;
  /** The error code, when the op raised one (HeddleError code, or EXCEPTION for anything else). */
  error?: string;
  message?: string;
  /** Per-array digests (first 16 hex digits), to name the tensor that differs. */
  arrays?: Record<string, string>;
}

export interface VectorResult {
  id: string;
  ops: OpResult[];
  ms: number;
}

/** The adapter a webgpu run used (from AdapterReport). */
export interface AdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
}

/** What a runner reports for one request. */
export interface RunReport {
  runtime: string;
  version: string;
  backend: string;
  /**
   * Set when the backend cannot run here (no adapter: `BACKEND_UNAVAILABLE: why`); then results
   * is empty. The host FAILs such a column: its prerequisites were checked before it started.
   */
  unavailable?: string;
  /** webgpu: the adapter every vector ran on. */
  adapter?: AdapterInfo;
  /** webgpu: layers whose forward ran on the CPU inside the GPU pass (no kernel yet), sorted. */
  cpuFallback?: string[];
  /** webgpu: layers whose forward runs on the GPU but whose backward (grad, train) runs on the CPU, sorted. */
  cpuBackward?: string[];
  results: VectorResult[];
}

export interface RunRequest {
  backend: string;
  vectors: Vector[];
}

/** Where a runner gets its GPU object: undefined = navigator.gpu (browsers, Deno). */
export interface RunOptions {
  gpu?: () => Promise<GpuEntry | undefined>;
}

/** Backends this build of the core can run; null = available, else the reason it is not. */
export function backendUnavailable(backend: string): string | null {
  if (backend === 'cpu' || backend === 'webgpu') return null;
  return `unknown backend '${backend}'`;
}

/** One line for an adapter: its description, else what it says of itself (Chromium hides the description). */
export function adapterLabel(a: AdapterInfo): string {
  const words = a.description || [a.vendor, a.architecture, a.device].filter(Boolean).join(' ') || 'an adapter that does not describe itself';
  return a.isFallbackAdapter ? `${words} (fallback adapter)` : words;
}

/** Which JS runtime this is, and its version. */
export function runtimeInfo(): { runtime: string; version: string } {
  const g = globalThis as unknown as {
    Deno?: { version: { deno: string } };
    Bun?: { version: string };
    process?: { versions?: { node?: string } };
    navigator?: { userAgent?: string };
  };
  if (g.Deno) return { runtime: 'deno', version: g.Deno.version.deno };
  if (g.Bun) return { runtime: 'bun', version: g.Bun.version };
  if (g.process?.versions?.node) return { runtime: 'node', version: g.process.versions.node };
  const ua = g.navigator?.userAgent ?? '';
  const m = /(?:Chrome|Chromium)\/([\d.]+)/.exec(ua);
  return { runtime: m ? 'chromium' : 'browser', version: m ? m[1] : ua };
}

/**
 * Runs a request. cpu: every vector with executeVector. webgpu: one device for the whole
 * request (acquired here, shared by every vector's networks through the `context` option of
 * useBackend), every vector with executeVectorOnGpu; a device lost on the way is acquired again
 * for the next vector. No adapter: the report says why (`unavailable`) and has no results.
 */
export async function runRequest(req: RunRequest, opts: RunOptions = {}): Promise<RunReport> {
  const info = runtimeInfo();
  const why = backendUnavailable(req.backend);
  if (why) return { ...info, backend: req.backend, unavailable: why, results: [] };
  if (req.backend === 'cpu') return { ...info, backend: req.backend, results: req.vectors.map((v) => executeVector(v)) };
  const acquire = async (): Promise<WebGpuContext> => acquireWebGpu({ gpu: opts.gpu ? await opts.gpu() : undefined });
  let ctx: WebGpuContext;
  try {
    ctx = await acquire();
  } catch (e) {
    const f = asFailure(e);
    return { ...info, backend: req.backend, unavailable: `${f.code}: ${f.message}`, results: [] };
  }
  const adapter = adapterInfo(ctx.report);
  const fallback: Placements = { forward: new Set(), backward: new Set() };
  const results: VectorResult[] = [];
  try {
    let lost: unknown = null;
    for (const v of req.vectors) {
      if (!lost && ctx.lostReason !== null) {
        ctx.destroy();
        try {
          ctx = await acquire();
        } catch (e) {
          lost = e;
        }
      }
      if (lost) results.push({ id: v.id, ops: failEvery(v, 'the GPU device was lost and no new one could be had', lost), ms: 0 });
      else results.push(await executeVectorOnGpu(v, ctx, specSource(v), fallback));
    }
  } finally {
    ctx.destroy();
  }
  return { ...info, backend: req.backend, adapter, cpuFallback: [...fallback.forward].sort(), cpuBackward: [...fallback.backward].sort(), results };
}

/** What ran on the CPU inside GPU passes: a layer type, with the reason when it is not just "no kernel". */
interface Placements {
  forward: Set<string>;
  backward: Set<string>;
}

function notePlacements(layers: readonly LayerPlacement[], into: Placements): void {
  const what = (type: string, reason: string | undefined): string => (!reason || /^no GPU (kernel|backward) for /.test(reason) ? type : `${type} (${reason})`);
  for (const l of layers) {
    if (l.device === 'cpu') into.forward.add(what(l.type, l.reason));
    else if (l.training === 'cpu' && l.trainingReason !== 'its container trains on the CPU') into.backward.add(what(l.type, l.trainingReason));
  }
}

function adapterInfo(r: AdapterReport): AdapterInfo {
  return { vendor: r.vendor, architecture: r.architecture, device: r.device, description: r.description, isFallbackAdapter: r.isFallbackAdapter };
}

const now = (): number => (globalThis.performance ? globalThis.performance.now() : Date.now());

interface Failure {
  code: string;
  message: string;
}

function asFailure(e: unknown): Failure {
  const err = e as { code?: unknown; name?: unknown; message?: unknown; stack?: unknown };
  if (err && err.name === 'HeddleError' && typeof err.code === 'string') return { code: err.code, message: String(err.message) };
  return { code: 'EXCEPTION', message: String((err && (err.stack ?? err.message)) ?? e) };
}

/**
 * Where an op's tensors come from: generated from the vector's fill specs (the in-process
 * runners), or decoded from a materialized vector (materialize.ts: what a wrapper receives).
 */
export interface TensorSource {
  /** Weights replacing the initial ones, or null. */
  weights(net: Network): Map<string, Tensor> | null;
  input(op: OpSpec, i: number, net: Network): Tensor;
  gradOutput(op: OpSpec, i: number, net: Network, batch: number): Tensor;
  /** loss target for an output of this shape. */
  target(op: OpSpec, i: number, loss: string, outShape: readonly number[]): Tensor<TensorData>;
  trainData(op: OpSpec, i: number, net: Network, loss: string): { inputs: Tensor; targets: Tensor<TensorData> };
}

/** The vector's network with its replacement weights, or the failure of every op. */
function buildNetwork(v: Vector, source: TensorSource): Network | OpResult[] {
  try {
    const net = Network.fromJSON(v.config, { seed: v.seed });
    const w = source.weights(net);
    if (w) net.setWeights(w);
    return net;
  } catch (e) {
    return failEvery(v, 'building the network', e);
  }
}

function failEvery(v: Vector, what: string, e: unknown): OpResult[] {
  const f = asFailure(e);
  return v.ops.map((op, i) => ({ key: opKey(op, i), error: f.code, message: `${what}: ${f.message}` }));
}

function opResult(key: string, arrays: NamedArray[]): OpResult {
  const per: Record<string, string> = {};
  for (const a of arrays) per[a.name] = digest([a]).slice(0, 16);
  return { key, sha256: digest(arrays), arrays: per };
}

function opFailure(key: string, e: unknown): OpResult {
  const f = asFailure(e);
  return { key, error: f.code, message: f.message };
}

/** Runs every op of a vector, in order, on one network instance (train changes its weights). */
export function executeVector(v: Vector, source: TensorSource = specSource(v)): VectorResult {
  const t0 = now();
  const net = buildNetwork(v, source);
  if (Array.isArray(net)) return { id: v.id, ops: net, ms: now() - t0 };
  const ops: OpResult[] = [];
  v.ops.forEach((op, i) => {
    const key = opKey(op, i);
    try {
      ops.push(opResult(key, runOp(net, op, i, source)));
    } catch (e) {
      ops.push(opFailure(key, e));
    }
  });
  return { id: v.id, ops, ms: now() - t0 };
}

/**
 * executeVector on the webgpu backend: the vector's network runs on `ctx` (a device shared by
 * every vector of the run) and is released afterwards. forward, grad, loss (the loss itself on
 * the host, as trainAsync does), train and the reloaded network of roundtrip run through
 * forwardAsync / gradAsync / trainAsync; the arrays and their order are the CPU path's, so the
 * goldens of node / cpu / ts apply unchanged. Layers placed on the CPU inside the GPU pass are
 * noted in `placements`.
 */
export async function executeVectorOnGpu(v: Vector, ctx: WebGpuContext, source: TensorSource = specSource(v), placements?: Placements): Promise<VectorResult> {
  const t0 = now();
  const net = buildNetwork(v, source);
  if (Array.isArray(net)) return { id: v.id, ops: net, ms: now() - t0 };
  try {
    try {
      const report = await net.useBackend('webgpu', { context: ctx });
      if (placements) notePlacements(report.layers ?? [], placements);
    } catch (e) {
      return { id: v.id, ops: failEvery(v, 'selecting the webgpu backend', e), ms: now() - t0 };
    }
    const ops: OpResult[] = [];
    for (let i = 0; i < v.ops.length; i++) {
      const op = v.ops[i];
      const key = opKey(op, i);
      try {
        ops.push(opResult(key, await runOpOnGpu(net, op, i, source, ctx)));
      } catch (e) {
        ops.push(opFailure(key, e));
      }
    }
    return { id: v.id, ops, ms: now() - t0 };
  } finally {
    net.releaseBackend();
  }
}

/** The shape of a tensor spec: its own, or [batch, ...sample]. */
function shapeOf(spec: TensorSpec, sample: readonly number[], defaultBatch: number): number[] {
  if (spec.shape) return [...spec.shape];
  return [spec.batch ?? defaultBatch, ...sample];
}

/** Tensors generated from the vector's specs (docs/conformance.md, "Generated tensors"). */
export function specSource(v: Vector): TensorSource {
  return {
    weights(net) {
      if (!v.weights) return null;
      const known = new Set(net.parameters().map((p) => p.name));
      for (const k of Object.keys(v.weights)) {
        if (k !== '*' && !known.has(k)) throw new Error(`vector ${v.id}: weights.${k} names no parameter of the network (it has ${[...known].join(', ')})`);
      }
      const map = new Map<string, Tensor>();
      for (const { name, param } of net.parameters()) {
        const spec = v.weights[name] ?? v.weights['*'];
        if (spec) map.set(name, makeTensor(spec, param.value.shape, v.seed, `weights.${name}`) as Tensor);
      }
      return map;
    },
    input(op, _i, net) {
      const spec = op.input ?? v.input;
      return makeTensor(spec, shapeOf(spec, net.inputShape, 2), v.seed, 'input') as Tensor;
    },
    gradOutput(op, _i, net, batch) {
      return makeTensor(op.grad_output ?? {}, [batch, ...net.outputShape], v.seed, 'grad_output') as Tensor;
    },
    target(op, _i, loss, outShape) {
      return defaultTarget(loss, outShape, op.target, v.seed, 'target');
    },
    trainData(op, _i, net, loss) {
      const n = op.samples ?? 4;
      const inputs = makeTensor(op.inputs ?? {}, shapeOf(op.inputs ?? {}, net.inputShape, n), v.seed, 'train.inputs') as Tensor;
      const targets = defaultTarget(loss, [inputs.shape[0], ...net.outputShape], op.targets, v.seed, 'train.targets');
      return { inputs, targets };
    },
  };
}

/** Generates a tensor from a fill spec with new Prng(seed).fork(stream ?? role). */
export function makeTensor(spec: FillSpec, shape: readonly number[], seed: number, role: string): Tensor<TensorData> {
  const n = shape.reduce((a, b) => a * b, 1);
  const vals = new Float64Array(n);
  const rng = new Prng(seed).fork(spec.stream ?? role);
  const num = (v: FillSpec['lo'], dflt: number): number => (v === undefined ? dflt : parseValue(v));
  const fill = spec.fill ?? 'uniform';
  switch (fill) {
    case 'uniform': {
      const lo = num(spec.lo, -1);
      const hi = num(spec.hi, 1);
      for (let i = 0; i < n; i++) vals[i] = rng.uniformRange(lo, hi);
      break;
    }
    case 'normal': {
      const mean = num(spec.mean, 0);
      const std = num(spec.std, 1);
      for (let i = 0; i < n; i++) vals[i] = add(mul(std, rng.normal()), mean);
      break;
    }
    case 'zeros':
      break;
    case 'ones':
      vals.fill(1);
      break;
    case 'ints': {
      if (spec.hi === undefined) throw new Error(`${role}: fill "ints" needs "hi" (exclusive)`);
      const lo = num(spec.lo, 0);
      const hi = num(spec.hi, 0);
      if (!Number.isInteger(lo) || !Number.isInteger(hi) || hi <= lo) throw new Error(`${role}: fill "ints" needs integers lo < hi`);
      for (let i = 0; i < n; i++) vals[i] = lo + rng.int(hi - lo);
      break;
    }
    case 'values': {
      const list = spec.values!.map((x) => parseValue(x));
      for (let i = 0; i < n; i++) vals[i] = list[i % list.length];
      break;
    }
    case 'probs': {
      // Rows along the last dim: (u + 0.5) / (sum of the row's u + 0.5, ascending).
      const c = shape.length ? shape[shape.length - 1] : 1;
      for (let r = 0; r < n / c; r++) {
        let s = 0;
        for (let j = 0; j < c; j++) {
          vals[r * c + j] = add(rng.uniform(), 0.5);
          s = add(s, vals[r * c + j]);
        }
        for (let j = 0; j < c; j++) vals[r * c + j] = div(vals[r * c + j], s);
      }
      break;
    }
  }
  for (const [k, v] of Object.entries(spec.set ?? {})) {
    const i = Number(k);
    if (i >= n) throw new Error(`${role}: set index ${i} is outside the tensor (${n} values)`);
    vals[i] = parseValue(v);
  }
  if (spec.dtype === 'i32') return new Tensor(shape, Int32Array.from(vals, (x) => Math.trunc(x)), 'i32');
  return new Tensor(shape, Float32Array.from(vals));
}

function f32Array(name: string, t: Tensor): NamedArray {
  return { name, dtype: 'f32', shape: t.shape, data: t.data };
}

/** A loss target: the spec's fill (shape: its own or the output's); by default class indices for cross_entropy, uniform values for mse. */
function defaultTarget(loss: string, outShape: readonly number[], spec: TensorSpec | undefined, seed: number, role: string): Tensor<TensorData> {
  const indices = loss === 'cross_entropy' && (!spec || ((spec.fill === undefined || spec.fill === 'ints') && !spec.shape) || spec.dtype === 'i32');
  if (indices) {
    const c = outShape[outShape.length - 1];
    return makeTensor({ fill: 'ints', lo: 0, hi: c, dtype: 'i32', ...(spec ?? {}) }, spec?.shape ?? outShape.slice(0, -1), seed, role);
  }
  return makeTensor(spec ?? {}, spec?.shape ?? outShape, seed, role);
}

/**
 * One op; returns its output arrays in the documented order (docs/conformance.md, "What is
 * hashed"). A wrapper way in must produce the same arrays.
 */
function runOp(net: Network, op: OpSpec, i: number, src: TensorSource): NamedArray[] {
  switch (op.op) {
    case 'forward':
      return [f32Array('output', net.forward(src.input(op, i, net)))];
    case 'grad': {
      const x = src.input(op, i, net);
      const tape = net.forwardTape(x, { training: false, seed: 0 });
      net.zeroGrad();
      return gradArrays(net, net.backward(tape, src.gradOutput(op, i, net, x.shape[0])));
    }
    case 'loss': {
      const y = net.forward(src.input(op, i, net));
      return lossArrays(op, i, src, y);
    }
    case 'train': {
      const t = trainSetup(net, op, i, src);
      return trainArrays(net, train(net, t.data, t.opts), t);
    }
    case 'roundtrip': {
      const r = roundtrip(net, op);
      return roundtripArrays(r, r.again.forward(src.input(op, i, net)));
    }
  }
}

/** runOp on the webgpu backend (net already runs on `ctx`); the same arrays in the same order. */
async function runOpOnGpu(net: Network, op: OpSpec, i: number, src: TensorSource, ctx: WebGpuContext): Promise<NamedArray[]> {
  switch (op.op) {
    case 'forward':
      return [f32Array('output', await net.forwardAsync(src.input(op, i, net)))];
    case 'grad': {
      const x = src.input(op, i, net);
      const dy = src.gradOutput(op, i, net, x.shape[0]);
      net.zeroGrad();
      return gradArrays(net, await net.gradAsync(x, dy));
    }
    case 'loss': {
      const y = await net.forwardAsync(src.input(op, i, net));
      return lossArrays(op, i, src, y);
    }
    case 'train': {
      const t = trainSetup(net, op, i, src);
      return trainArrays(net, await trainAsync(net, t.data, t.opts), t);
    }
    case 'roundtrip': {
      const r = roundtrip(net, op);
      try {
        await r.again.useBackend('webgpu', { context: ctx });
        return roundtripArrays(r, await r.again.forwardAsync(src.input(op, i, net)));
      } finally {
        r.again.releaseBackend();
      }
    }
  }
}

function gradArrays(net: Network, dx: Tensor): NamedArray[] {
  return [f32Array('input.grad', dx), ...net.parameters().map(({ name, param }) => f32Array(`${name}.grad`, param.grad))];
}

function lossArrays(op: OpSpec, i: number, src: TensorSource, y: Tensor): NamedArray[] {
  const name = parseLossName(op.loss, `ops[${i}].loss`);
  const r = computeLoss(name, y, src.target(op, i, name, y.shape));
  return [{ name: 'loss', dtype: 'f32', shape: [], data: Float32Array.of(r.loss) }, f32Array('grad', r.grad)];
}

interface TrainSetup {
  data: { inputs: Tensor; targets: Tensor<TensorData> };
  opts: TrainOptions;
  /** Filled by onProgress: each step's loss and learning rate. */
  losses: number[];
  lrs: number[];
}

function trainSetup(net: Network, op: OpSpec, i: number, src: TensorSource): TrainSetup {
  const lossName = parseLossName(op.loss ?? 'mse', `ops[${i}].loss`);
  const losses: number[] = [];
  const lrs: number[] = [];
  const opts: TrainOptions = {
    epochs: op.epochs ?? 2,
    batchSize: op.batch_size ?? 2,
    loss: lossName,
    optimizer: (op.optimizer ?? { type: 'sgd', lr: 0.05 }) as never,
    schedule: op.schedule as never,
    clipNorm: op.clip_norm,
    shuffle: op.shuffle ?? false,
    seed: op.seed ?? netSeed(net),
    onProgress: (p) => {
      losses.push(p.loss);
      lrs.push(p.lr);
    },
  };
  return { data: src.trainData(op, i, net, lossName), opts, losses, lrs };
}

function trainArrays(net: Network, r: TrainResult, t: TrainSetup): NamedArray[] {
  const state = r.optimizer.exportState();
  const out: NamedArray[] = [
    { name: 'epoch_losses', dtype: 'f32', shape: [r.epochLosses.length], data: Float32Array.from(r.epochLosses) },
    { name: 'step_losses', dtype: 'f32', shape: [t.losses.length], data: Float32Array.from(t.losses) },
    { name: 'step_lrs', dtype: 'f64', shape: [t.lrs.length], data: Float64Array.from(t.lrs) },
    ...net.parameters().map(({ name, param }) => f32Array(name, param.value)),
    { name: 'optimizer.step', dtype: 'i32', shape: [], data: Int32Array.of(state.step) },
  ];
  for (const [name, t2] of state.tensors) out.push(f32Array(`optimizer.${name}`, t2));
  return out;
}

interface Roundtrip {
  file: Uint8Array;
  resaved: Uint8Array;
  /** The network loaded from `file`. */
  again: Network;
}

function roundtrip(net: Network, op: OpSpec): Roundtrip {
  const utf8 = new TextEncoder();
  if (op.format === 'safetensors') {
    const file = saveNetworkSafetensors(net);
    const again = loadNetworkSafetensors(file, { source: 'roundtrip.safetensors' });
    return { file, again, resaved: saveNetworkSafetensors(again) };
  }
  const file = utf8.encode(saveNetworkJSON(net));
  const again = loadNetworkJSON(file, { source: 'roundtrip.json' });
  return { file, again, resaved: utf8.encode(saveNetworkJSON(again)) };
}

function roundtripArrays(r: Roundtrip, y: Tensor): NamedArray[] {
  return [
    { name: 'file', dtype: 'u8', shape: [r.file.length], data: r.file },
    { name: 'file.resaved', dtype: 'u8', shape: [r.resaved.length], data: r.resaved },
    f32Array('output', y),
  ];
}

/** The train op's default seed is the vector's seed, which is the network's. */
function netSeed(net: Network): number {
  return net.seed;
}
