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
import { train } from '../../core/train/trainer.ts';
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

/** What a runner reports for one request. */
export interface RunReport {
  runtime: string;
  version: string;
  backend: string;
  /** Set when the backend cannot run here; then results is empty. */
  unavailable?: string;
  results: VectorResult[];
}

export interface RunRequest {
  backend: string;
  vectors: Vector[];
}

/** Backends this build of the core can run; null = available, else the reason it is not. */
export function backendUnavailable(backend: string): string | null {
  if (backend === 'cpu') return null;
  if (backend === 'webgpu') return "the WebGPU backend is not in this build of the core yet";
  return `unknown backend '${backend}'`;
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

export function runRequest(req: RunRequest): RunReport {
  const info = runtimeInfo();
  const why = backendUnavailable(req.backend);
  if (why) return { ...info, backend: req.backend, unavailable: why, results: [] };
  return { ...info, backend: req.backend, results: req.vectors.map((v) => executeVector(v)) };
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

/** Runs every op of a vector, in order, on one network instance (train changes its weights). */
export function executeVector(v: Vector, source: TensorSource = specSource(v)): VectorResult {
  const t0 = now();
  const keys = v.ops.map((op, i) => opKey(op, i));
  let net: Network;
  try {
    net = Network.fromJSON(v.config, { seed: v.seed });
    const w = source.weights(net);
    if (w) net.setWeights(w);
  } catch (e) {
    const f = asFailure(e);
    return { id: v.id, ops: keys.map((key) => ({ key, error: f.code, message: `building the network: ${f.message}` })), ms: now() - t0 };
  }
  const ops: OpResult[] = [];
  v.ops.forEach((op, i) => {
    try {
      const arrays = runOp(net, op, i, source);
      const per: Record<string, string> = {};
      for (const a of arrays) per[a.name] = digest([a]).slice(0, 16);
      ops.push({ key: keys[i], sha256: digest(arrays), arrays: per });
    } catch (e) {
      const f = asFailure(e);
      ops.push({ key: keys[i], error: f.code, message: f.message });
    }
  });
  return { id: v.id, ops, ms: now() - t0 };
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
 * One op; returns its output arrays in the documented order (docs/conformance.md, "What each
 * op produces"). A wrapper way in must produce the same arrays.
 */
function runOp(net: Network, op: OpSpec, i: number, src: TensorSource): NamedArray[] {
  switch (op.op) {
    case 'forward': {
      const y = net.forward(src.input(op, i, net));
      return [f32Array('output', y)];
    }
    case 'grad': {
      const x = src.input(op, i, net);
      const tape = net.forwardTape(x, { training: false, seed: 0 });
      net.zeroGrad();
      const dx = net.backward(tape, src.gradOutput(op, i, net, x.shape[0]));
      return [f32Array('input.grad', dx), ...net.parameters().map(({ name, param }) => f32Array(`${name}.grad`, param.grad))];
    }
    case 'loss': {
      const y = net.forward(src.input(op, i, net));
      const name = parseLossName(op.loss, `ops[${i}].loss`);
      const r = computeLoss(name, y, src.target(op, i, name, y.shape));
      return [{ name: 'loss', dtype: 'f32', shape: [], data: Float32Array.of(r.loss) }, f32Array('grad', r.grad)];
    }
    case 'train': {
      const lossName = parseLossName(op.loss ?? 'mse', `ops[${i}].loss`);
      const { inputs, targets } = src.trainData(op, i, net, lossName);
      const losses: number[] = [];
      const lrs: number[] = [];
      const r = train(net, { inputs, targets }, {
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
      });
      const state = r.optimizer.exportState();
      const out: NamedArray[] = [
        { name: 'epoch_losses', dtype: 'f32', shape: [r.epochLosses.length], data: Float32Array.from(r.epochLosses) },
        { name: 'step_losses', dtype: 'f32', shape: [losses.length], data: Float32Array.from(losses) },
        { name: 'step_lrs', dtype: 'f64', shape: [lrs.length], data: Float64Array.from(lrs) },
        ...net.parameters().map(({ name, param }) => f32Array(name, param.value)),
        { name: 'optimizer.step', dtype: 'i32', shape: [], data: Int32Array.of(state.step) },
      ];
      for (const [name, t] of state.tensors) out.push(f32Array(`optimizer.${name}`, t));
      return out;
    }
    case 'roundtrip': {
      const x = src.input(op, i, net);
      const utf8 = new TextEncoder();
      let file: Uint8Array;
      let again: Network;
      let resaved: Uint8Array;
      if (op.format === 'safetensors') {
        file = saveNetworkSafetensors(net);
        again = loadNetworkSafetensors(file, { source: 'roundtrip.safetensors' });
        resaved = saveNetworkSafetensors(again);
      } else {
        file = utf8.encode(saveNetworkJSON(net));
        again = loadNetworkJSON(file, { source: 'roundtrip.json' });
        resaved = utf8.encode(saveNetworkJSON(again));
      }
      const y = again.forward(x);
      return [
        { name: 'file', dtype: 'u8', shape: [file.length], data: file },
        { name: 'file.resaved', dtype: 'u8', shape: [resaved.length], data: resaved },
        f32Array('output', y),
      ];
    }
  }
}

/** The train op's default seed is the vector's seed, which is the network's. */
function netSeed(net: Network): number {
  return net.seed;
}
