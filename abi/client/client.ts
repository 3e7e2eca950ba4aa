/**
 * The TypeScript client of the Heddle ABI: spawns an engine (stdio) or connects to one
 * (unix socket), does the handshake, and exposes networks and optimizers as objects that
 * own an engine handle. Calls may be pipelined: each returns a promise, responses are
 * matched by call id. Node only (node:child_process, node:net).
 *
 *   const engine = await Engine.spawn();              // node dist/heddle-engine.mjs
 *   const net = await engine.createNetwork(config, { seed: 42 });
 *   const y = await net.forward(Tensor.from([1, 4], [0.1, 0.2, 0.3, 0.4]));
 *   await net.free();
 *   await engine.close();
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { type Socket, connect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Builder, ByteBuffer, type Offset } from 'flatbuffers';
import { Tensor, type TensorData } from '../../core/tensor.ts';
import { FrameReader } from '../engine/framing.ts';
import { ABI_VERSION, ERROR_CODE_NAMES, REQUEST_IDENTIFIER } from '../engine/generated/abi.ts';
import { AbiVersion } from '../engine/generated/fb/heddle/abi/abi-version.ts';
import { DType } from '../engine/generated/fb/heddle/abi/dtype.ts';
import { Error as FbError } from '../engine/generated/fb/heddle/abi/error.ts';
import { ErrorCode } from '../engine/generated/fb/heddle/abi/error-code.ts';
import { ForwardRequest } from '../engine/generated/fb/heddle/abi/forward-request.ts';
import { ForwardResponse } from '../engine/generated/fb/heddle/abi/forward-response.ts';
import { GradRequest } from '../engine/generated/fb/heddle/abi/grad-request.ts';
import { GradResponse } from '../engine/generated/fb/heddle/abi/grad-response.ts';
import { Handle } from '../engine/generated/fb/heddle/abi/handle.ts';
import { HelloRequest } from '../engine/generated/fb/heddle/abi/hello-request.ts';
import { HelloResponse } from '../engine/generated/fb/heddle/abi/hello-response.ts';
import { LossRequest } from '../engine/generated/fb/heddle/abi/loss-request.ts';
import { LossResponse } from '../engine/generated/fb/heddle/abi/loss-response.ts';
import { NamedTensor } from '../engine/generated/fb/heddle/abi/named-tensor.ts';
import { NetworkGetWeightsRequest } from '../engine/generated/fb/heddle/abi/network-get-weights-request.ts';
import { NetworkGetWeightsResponse } from '../engine/generated/fb/heddle/abi/network-get-weights-response.ts';
import { NetworkSetWeightsRequest } from '../engine/generated/fb/heddle/abi/network-set-weights-request.ts';
import { OptimizerStateRequest } from '../engine/generated/fb/heddle/abi/optimizer-state-request.ts';
import { OptimizerStateResponse } from '../engine/generated/fb/heddle/abi/optimizer-state-response.ts';
import { MorphDtypeRequest } from '../engine/generated/fb/heddle/abi/morph-dtype-request.ts';
import { MorphDtypeResponse } from '../engine/generated/fb/heddle/abi/morph-dtype-response.ts';
import { NetworkCreateRequest } from '../engine/generated/fb/heddle/abi/network-create-request.ts';
import { NetworkCreateResponse } from '../engine/generated/fb/heddle/abi/network-create-response.ts';
import { NetworkDescribeRequest } from '../engine/generated/fb/heddle/abi/network-describe-request.ts';
import { NetworkDescribeResponse } from '../engine/generated/fb/heddle/abi/network-describe-response.ts';
import { NetworkFormat } from '../engine/generated/fb/heddle/abi/network-format.ts';
import { NetworkFreeRequest } from '../engine/generated/fb/heddle/abi/network-free-request.ts';
import type { NetworkInfo as FbNetworkInfo } from '../engine/generated/fb/heddle/abi/network-info.ts';
import { NetworkLoadRequest } from '../engine/generated/fb/heddle/abi/network-load-request.ts';
import { NetworkLoadResponse } from '../engine/generated/fb/heddle/abi/network-load-response.ts';
import { NetworkSaveRequest } from '../engine/generated/fb/heddle/abi/network-save-request.ts';
import { NetworkSaveResponse } from '../engine/generated/fb/heddle/abi/network-save-response.ts';
import { OptimizerCreateRequest } from '../engine/generated/fb/heddle/abi/optimizer-create-request.ts';
import { OptimizerCreateResponse } from '../engine/generated/fb/heddle/abi/optimizer-create-response.ts';
import { OptimizerFreeRequest } from '../engine/generated/fb/heddle/abi/optimizer-free-request.ts';
import { OptimizerStepRequest } from '../engine/generated/fb/heddle/abi/optimizer-step-request.ts';
import { OptimizerStepResponse } from '../engine/generated/fb/heddle/abi/optimizer-step-response.ts';
import { Request } from '../engine/generated/fb/heddle/abi/request.ts';
import { RequestBody } from '../engine/generated/fb/heddle/abi/request-body.ts';
import { Response } from '../engine/generated/fb/heddle/abi/response.ts';
import { ResponseBody } from '../engine/generated/fb/heddle/abi/response-body.ts';
import { SetBackendRequest } from '../engine/generated/fb/heddle/abi/set-backend-request.ts';
import { SetBackendResponse } from '../engine/generated/fb/heddle/abi/set-backend-response.ts';
import type { Tensor as FbTensor } from '../engine/generated/fb/heddle/abi/tensor.ts';
import { TrainProgress as FbTrainProgress } from '../engine/generated/fb/heddle/abi/train-progress.ts';
import { TrainRequest } from '../engine/generated/fb/heddle/abi/train-request.ts';
import { TrainResponse } from '../engine/generated/fb/heddle/abi/train-response.ts';
import { verifyResponseBuffer } from '../engine/generated/verify.ts';
import { addBytes, addTensor, readShape } from '../engine/tensors.ts';

export { ErrorCode, NetworkFormat, DType };

/** An error the engine answered, or one the client raised (ENGINE_EXITED, PROTOCOL_ERROR, ...). */
export class HeddleEngineError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly where = '',
    readonly detail = '',
  ) {
    super(`${ERROR_CODE_NAMES[code] ?? code}: ${message}`);
    this.name = 'HeddleEngineError';
  }

  get codeName(): string {
    return ERROR_CODE_NAMES[this.code] ?? String(this.code);
  }
}

export interface HandleRef {
  readonly id: bigint;
  readonly generation: number;
}

export interface NetworkInfo {
  readonly handle: HandleRef;
  readonly inputShape: number[];
  readonly outputShape: number[];
  readonly parameterCount: number;
  readonly parameters: { name: string; shape: number[] }[];
}

export interface HelloInfo {
  abiVersion: { major: number; minor: number; patch: number };
  engineVersion: string;
  runtime: string;
  runtimeVersion: string;
  backends: { name: string; available: boolean; adapters: string[]; reason: string }[];
  maxFrameBytes: number;
  connection: number;
}

export interface TrainProgress {
  epoch: number;
  step: number;
  stepsPerEpoch: number;
  totalSteps: number;
  loss: number;
  lr: number;
}

export interface TrainResult {
  finalLoss: number;
  epochLosses: number[];
  steps: number;
}

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  loss: string;
  /** A spec (`'adamw'`, `{ type: 'sgd', lr: 0.1 }`) or an optimizer made for this network. */
  optimizer: string | Record<string, unknown> | RemoteOptimizer;
  schedule?: string | Record<string, unknown>;
  clipNorm?: number;
  shuffle?: boolean;
  seed?: number;
  /** Progress frame every this many steps (default 1; 0 for none). */
  progressEvery?: number;
  onProgress?: (p: TrainProgress) => void;
}

export interface SpawnOptions {
  /** The engine command (argv). Default: HEDDLE_ENGINE (split on spaces), else `<runtime> dist/heddle-engine.mjs`. */
  command?: string[];
  /** Runtime for the bundled engine when no command is given (default node). */
  runtime?: 'node' | 'bun' | 'deno';
  /** Extra engine arguments (e.g. ['--max-frame-bytes', '4096']). */
  args?: string[];
  env?: Record<string, string | undefined>;
  /** Where the engine's stderr goes (default: inherited). */
  stderr?: 'inherit' | 'ignore' | 'pipe';
  /** Client name sent in Hello. */
  clientName?: string;
}

interface Pending {
  call: string;
  /** The ResponseBody value of the final answer (equal to the request's RequestBody value). */
  want: number;
  decode: (r: Response) => unknown;
  progress?: (r: Response) => void;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** The bundled engine next to this module (source tree or dist). */
export function bundledEnginePath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, 'heddle-engine.mjs'), join(here, '../../dist/heddle-engine.mjs'), join(here, '../dist/heddle-engine.mjs')];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new HeddleEngineError(ErrorCode.ENGINE_START_FAILED, `the engine bundle was not found (looked at ${candidates.join(', ')}); run npm run build or set HEDDLE_ENGINE`);
  return found;
}

/** The command to start an engine: explicit, else HEDDLE_ENGINE, else the bundle on a runtime. */
export function engineCommand(o: SpawnOptions = {}): string[] {
  if (o.command?.length) return [...o.command, ...(o.args ?? [])];
  const env = process.env.HEDDLE_ENGINE?.trim();
  if (env) return [...env.split(/\s+/), ...(o.args ?? [])];
  const bundle = bundledEnginePath();
  const rt = o.runtime ?? 'node';
  const base = rt === 'node' ? [process.execPath, bundle] : rt === 'bun' ? ['bun', bundle] : ['deno', 'run', '-A', bundle];
  return [...base, ...(o.args ?? [])];
}

function readTensorOut(t: FbTensor | null, what: string): Tensor<TensorData> {
  if (!t) throw new HeddleEngineError(ErrorCode.PROTOCOL_ERROR, `the engine sent no ${what}`);
  const shape = readShape(t.shapeLength(), (i) => t.shape(i), what);
  const raw = t.dataArray() ?? new Uint8Array(0);
  const copy = raw.slice();
  const n = shape.reduce((a, d) => a * d, 1);
  switch (t.dtype()) {
    case DType.F32:
      return new Tensor(shape, new Float32Array(copy.buffer, 0, n), 'f32');
    case DType.I32:
      return new Tensor(shape, new Int32Array(copy.buffer, 0, n), 'i32');
    case DType.I64:
      return new Tensor(shape, new BigInt64Array(copy.buffer, 0, n), 'i64');
    default:
      throw new HeddleEngineError(ErrorCode.PROTOCOL_ERROR, `${what} has dtype ${t.dtype()}`);
  }
}

function readNamed(n: number, at: (i: number) => NamedTensor | null, what: string): Map<string, Tensor<TensorData>> {
  const out = new Map<string, Tensor<TensorData>>();
  for (let i = 0; i < n; i++) {
    const t = at(i)!;
    out.set(t.name()!, readTensorOut(t.tensor(), `${what} ${t.name()}`));
  }
  return out;
}

function readInfo(i: FbNetworkInfo | null): NetworkInfo {
  if (!i) throw new HeddleEngineError(ErrorCode.PROTOCOL_ERROR, 'the engine sent no NetworkInfo');
  const h = i.network()!;
  const parameters: { name: string; shape: number[] }[] = [];
  for (let k = 0; k < i.parametersLength(); k++) {
    const p = i.parameters(k)!;
    parameters.push({ name: p.name()!, shape: readShape(p.shapeLength(), (j) => p.shape(j), 'parameter shape') });
  }
  return {
    handle: { id: h.id(), generation: h.generation() },
    inputShape: readShape(i.inputShapeLength(), (k) => i.inputShape(k), 'input_shape'),
    outputShape: readShape(i.outputShapeLength(), (k) => i.outputShape(k), 'output_shape'),
    parameterCount: Number(i.parameterCount()),
    parameters,
  };
}

function addHandle(h: HandleRef, b: Builder): Offset {
  return Handle.createHandle(b, h.id, h.generation);
}

function jsonArg(v: string | Record<string, unknown>): string {
  return JSON.stringify(v);
}

/** A connection to one engine. */
export class Engine {
  private readonly b = new Builder(1 << 16);
  private readonly reader = new FrameReader(0xffffffff);
  private readonly pending = new Map<bigint, Pending>();
  private nextId = 1n;
  private closedWith: HeddleEngineError | null = null;
  private closing = false;
  /** Set by connect/spawn after the handshake. */
  info!: HelloInfo;
  /** Errors the engine sent with call id 0 while no call was pending. */
  readonly strayErrors: HeddleEngineError[] = [];

  private constructor(
    private readonly write: (bytes: Uint8Array) => void,
    private readonly end: () => void,
    readonly child: ChildProcess | null,
  ) {}

  /** Spawns an engine process and does the handshake. */
  static async spawn(o: SpawnOptions = {}): Promise<Engine> {
    const cmd = engineCommand(o);
    const child = spawn(cmd[0], cmd.slice(1), { stdio: ['pipe', 'pipe', o.stderr ?? 'inherit'], env: { ...process.env, ...(o.env ?? {}) } });
    const engine = new Engine(
      (bytes) => void child.stdin!.write(bytes),
      () => child.stdin!.end(),
      child,
    );
    child.stdin!.on('error', () => {});
    child.stdout!.on('data', (chunk: Buffer) => engine.onData(chunk));
    const started = new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (e) => reject(new HeddleEngineError(ErrorCode.ENGINE_START_FAILED, `could not start ${cmd.join(' ')}: ${e.message}`)));
    });
    child.once('exit', (code, signal) => {
      engine.fail(new HeddleEngineError(ErrorCode.ENGINE_EXITED, `the engine exited (${signal ? `signal ${signal}` : `status ${code}`})`));
    });
    await started;
    await engine.handshake(o.clientName ?? 'heddle-ts');
    return engine;
  }

  /** Connects to an engine serving a unix socket and does the handshake. */
  static async connect(path: string, o: { clientName?: string } = {}): Promise<Engine> {
    const sock: Socket = connect(path);
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', (e) => reject(new HeddleEngineError(ErrorCode.CONNECT_FAILED, `could not connect to ${path}: ${e.message}`)));
    });
    const engine = new Engine(
      (bytes) => void sock.write(bytes),
      () => sock.end(),
      null,
    );
    sock.on('data', (chunk: Buffer) => engine.onData(chunk));
    sock.on('error', () => {});
    sock.on('close', () => engine.fail(new HeddleEngineError(ErrorCode.ENGINE_EXITED, `the engine closed the connection (${path})`)));
    await engine.handshake(o.clientName ?? 'heddle-ts');
    return engine;
  }

  /** True once the engine exited or the connection closed. */
  get closed(): boolean {
    return this.closedWith !== null;
  }

  /** Calls sent and not yet answered. */
  get inFlight(): number {
    return this.pending.size;
  }

  private fail(e: HeddleEngineError): void {
    if (this.closedWith) return;
    this.closedWith = this.closing ? new HeddleEngineError(ErrorCode.CLOSED, 'the engine was closed by this client') : e;
    for (const p of this.pending.values()) p.reject(this.closedWith);
    this.pending.clear();
  }

  private onData(chunk: Uint8Array): void {
    this.reader.push(chunk);
    for (let ev = this.reader.next(); ev; ev = this.reader.next()) {
      if (ev.kind !== 'frame') continue; // the client's cap is 4 GiB: never reached
      this.onFrame(ev.frame.subarray(4));
    }
  }

  private onFrame(body: Uint8Array): void {
    try {
      verifyResponseBuffer(body);
    } catch (e) {
      this.fail(new HeddleEngineError(ErrorCode.PROTOCOL_ERROR, `the engine sent an unreadable frame: ${(e as Error).message}`));
      return;
    }
    const r = Response.getRootAsResponse(new ByteBuffer(body));
    const id = r.callId();
    let p = this.pending.get(id);
    if (id === 0n) {
      // A frame-level error: the engine answers in order, so it is the oldest pending call's.
      const first = this.pending.entries().next();
      p = first.done ? undefined : first.value[1];
      if (!first.done) this.pending.delete(first.value[0]);
      const err = errorOf(r);
      if (p) p.reject(err);
      else this.strayErrors.push(err);
      return;
    }
    if (!p) {
      this.fail(new HeddleEngineError(ErrorCode.PROTOCOL_ERROR, `the engine answered call id ${id}, which is not pending`));
      return;
    }
    const type = r.bodyType();
    if (type === ResponseBody.Error) {
      this.pending.delete(id);
      p.reject(errorOf(r));
      return;
    }
    if (type === ResponseBody.TrainProgress) {
      try {
        p.progress?.(r);
      } catch {
        // a throwing progress callback must not break the connection
      }
      return;
    }
    this.pending.delete(id);
    if (type !== p.want) {
      this.fail(new HeddleEngineError(ErrorCode.PROTOCOL_ERROR, `the engine answered ${p.call} (call ${id}) with response type ${type}`));
      p.reject(this.closedWith);
      return;
    }
    try {
      p.resolve(p.decode(r));
    } catch (e) {
      p.reject(e);
    }
  }

  /**
   * Sends one request. `build` writes the request body into the builder; `decode` turns the
   * response into plain values (synchronously: the frame's bytes are reused afterwards).
   */
  call<T>(call: string, type: RequestBody, build: (b: Builder) => Offset, decode: (r: Response) => T, progress?: (r: Response) => void): Promise<T> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    const id = this.nextId++;
    const b = this.b;
    b.clear();
    const body = build(b);
    Request.startRequest(b);
    Request.addCallId(b, id);
    Request.addBodyType(b, type);
    Request.addBody(b, body);
    b.finish(Request.endRequest(b), REQUEST_IDENTIFIER, true);
    const frame = b.asUint8Array().slice();
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { call, want: type, decode, progress, resolve: resolve as (v: unknown) => void, reject });
      this.write(frame);
    });
  }

  /** Writes raw bytes to the engine (tests of malformed input). */
  sendRaw(bytes: Uint8Array): void {
    this.write(bytes);
  }

  private async handshake(clientName: string): Promise<void> {
    this.info = await this.hello(ABI_VERSION, clientName);
  }

  /** The Hello call (done by spawn/connect; exposed to test version negotiation). */
  hello(v: { major: number; minor: number; patch: number }, clientName = 'heddle-ts'): Promise<HelloInfo> {
    return this.call(
      'Hello',
      RequestBody.HelloRequest,
      (b) => {
        const client = b.createString(clientName);
        HelloRequest.startHelloRequest(b);
        HelloRequest.addAbiVersion(b, AbiVersion.createAbiVersion(b, v.major, v.minor, v.patch));
        HelloRequest.addClient(b, client);
        return HelloRequest.endHelloRequest(b);
      },
      (r) => {
        const h = r.body(new HelloResponse()) as HelloResponse;
        const av = h.abiVersion()!;
        const backends: HelloInfo['backends'] = [];
        for (let i = 0; i < h.backendsLength(); i++) {
          const x = h.backends(i)!;
          const adapters: string[] = [];
          for (let k = 0; k < x.adaptersLength(); k++) adapters.push(x.adapters(k)!);
          backends.push({ name: x.name() ?? '', available: x.available(), adapters, reason: x.reason() ?? '' });
        }
        return {
          abiVersion: { major: av.major(), minor: av.minor(), patch: av.patch() },
          engineVersion: h.engineVersion() ?? '',
          runtime: h.runtime() ?? '',
          runtimeVersion: h.runtimeVersion() ?? '',
          backends,
          maxFrameBytes: Number(h.maxFrameBytes()),
          connection: h.connection(),
        };
      },
    );
  }

  /** Builds a network from a config (object or JSON text). */
  async createNetwork(config: unknown, o: { seed?: number } = {}): Promise<RemoteNetwork> {
    const text = typeof config === 'string' ? config : JSON.stringify(config);
    const info = await this.call(
      'NetworkCreate',
      RequestBody.NetworkCreateRequest,
      (b) => NetworkCreateRequest.createNetworkCreateRequest(b, b.createString(text), BigInt(o.seed ?? 0)),
      (r) => readInfo((r.body(new NetworkCreateResponse()) as NetworkCreateResponse).network()),
    );
    return new RemoteNetwork(this, info);
  }

  /** Builds a network from saved bytes (NetworkSave's, or a file's). */
  async loadNetwork(data: Uint8Array, format: NetworkFormat, o: { config?: unknown } = {}): Promise<RemoteNetwork> {
    const info = await this.call(
      'NetworkLoad',
      RequestBody.NetworkLoadRequest,
      (b) => {
        const d = addBytes(b, data, 16);
        const cfg = o.config === undefined ? 0 : b.createString(typeof o.config === 'string' ? o.config : JSON.stringify(o.config));
        NetworkLoadRequest.startNetworkLoadRequest(b);
        NetworkLoadRequest.addFormat(b, format);
        NetworkLoadRequest.addData(b, d);
        if (cfg) NetworkLoadRequest.addConfigJson(b, cfg);
        return NetworkLoadRequest.endNetworkLoadRequest(b);
      },
      (r) => readInfo((r.body(new NetworkLoadResponse()) as NetworkLoadResponse).network()),
    );
    return new RemoteNetwork(this, info);
  }

  async setBackend(name: string): Promise<string> {
    return this.call(
      'SetBackend',
      RequestBody.SetBackendRequest,
      (b) => SetBackendRequest.createSetBackendRequest(b, b.createString(name)),
      (r) => (r.body(new SetBackendResponse()) as SetBackendResponse).name() ?? '',
    );
  }

  /** Ends the connection (the spawned engine exits at end of input). Resolves when it is gone. */
  async close(): Promise<void> {
    if (this.closedWith) return;
    this.closing = true;
    const child = this.child;
    const gone =
      child && child.exitCode === null && child.signalCode === null
        ? new Promise<void>((resolve) => child.once('exit', () => resolve()))
        : Promise.resolve();
    this.end();
    await gone;
    this.fail(new HeddleEngineError(ErrorCode.CLOSED, 'the engine was closed by this client'));
  }
}

function errorOf(r: Response): HeddleEngineError {
  const e = r.body(new FbError()) as FbError;
  return new HeddleEngineError(e.code(), e.message() ?? '', e.where() ?? '', e.detail() ?? '');
}

/** A network living in the engine. Call free() when done. */
export class RemoteNetwork {
  constructor(
    readonly engine: Engine,
    readonly info: NetworkInfo,
  ) {}

  get handle(): HandleRef {
    return this.info.handle;
  }

  forward(x: Tensor<TensorData>): Promise<Tensor<TensorData>> {
    return this.engine.call(
      'Forward',
      RequestBody.ForwardRequest,
      (b) => {
        const t = addTensor(b, x);
        ForwardRequest.startForwardRequest(b);
        ForwardRequest.addNetwork(b, addHandle(this.handle, b));
        ForwardRequest.addInput(b, t);
        return ForwardRequest.endForwardRequest(b);
      },
      (r) => readTensorOut((r.body(new ForwardResponse()) as ForwardResponse).output(), 'output'),
    );
  }

  /** Backward pass: dL/d input and (by default) every weight gradient, by parameter name. */
  grad(
    x: Tensor<TensorData>,
    g: { gradOutput: Tensor<TensorData> } | { target: Tensor<TensorData>; loss: string },
    o: { weightGrads?: boolean } = {},
  ): Promise<{ inputGrad: Tensor<TensorData>; weightGrads: Map<string, Tensor<TensorData>>; loss: number | null }> {
    return this.engine.call(
      'Grad',
      RequestBody.GradRequest,
      (b) => {
        const xt = addTensor(b, x);
        const gy = 'gradOutput' in g ? addTensor(b, g.gradOutput) : 0;
        const tg = 'target' in g ? addTensor(b, g.target) : 0;
        const loss = 'loss' in g ? b.createString(g.loss) : 0;
        GradRequest.startGradRequest(b);
        GradRequest.addNetwork(b, addHandle(this.handle, b));
        GradRequest.addInput(b, xt);
        if (gy) GradRequest.addGradOutput(b, gy);
        if (tg) GradRequest.addTarget(b, tg);
        if (loss) GradRequest.addLoss(b, loss);
        if (o.weightGrads === false) GradRequest.addWeightGrads(b, false);
        return GradRequest.endGradRequest(b);
      },
      (r) => {
        const res = r.body(new GradResponse()) as GradResponse;
        const weightGrads = readNamed(res.weightGradsLength(), (i) => res.weightGrads(i), 'weight grad');
        return { inputGrad: readTensorOut(res.inputGrad(), 'input_grad'), weightGrads, loss: res.loss() };
      },
    );
  }

  /** Trains in the engine; progress frames arrive through o.onProgress. */
  train(data: { inputs: Tensor<TensorData>; targets: Tensor<TensorData> }, o: TrainOptions): Promise<TrainResult> {
    return this.engine.call(
      'Train',
      RequestBody.TrainRequest,
      (b) => {
        const inputs = addTensor(b, data.inputs);
        const targets = addTensor(b, data.targets);
        const loss = b.createString(o.loss);
        const optJson = o.optimizer instanceof RemoteOptimizer ? 0 : b.createString(jsonArg(o.optimizer));
        const schedule = o.schedule === undefined ? 0 : b.createString(jsonArg(o.schedule));
        TrainRequest.startTrainRequest(b);
        TrainRequest.addNetwork(b, addHandle(this.handle, b));
        TrainRequest.addInputs(b, inputs);
        TrainRequest.addTargets(b, targets);
        TrainRequest.addEpochs(b, o.epochs);
        TrainRequest.addBatchSize(b, o.batchSize);
        TrainRequest.addLoss(b, loss);
        if (optJson) TrainRequest.addOptimizerJson(b, optJson);
        if (o.optimizer instanceof RemoteOptimizer) TrainRequest.addOptimizer(b, addHandle(o.optimizer.handle, b));
        if (schedule) TrainRequest.addScheduleJson(b, schedule);
        if (o.clipNorm !== undefined) {
          b.forceDefaults(true); // flatc 2.0.8's TS drops an optional scalar equal to 0 otherwise
          TrainRequest.addClipNorm(b, o.clipNorm);
          b.forceDefaults(false);
        }
        if (o.shuffle) TrainRequest.addShuffle(b, true);
        TrainRequest.addSeed(b, BigInt(o.seed ?? 0));
        if (o.progressEvery !== undefined) {
          b.forceDefaults(true);
          TrainRequest.addProgressEvery(b, o.progressEvery);
          b.forceDefaults(false);
        }
        return TrainRequest.endTrainRequest(b);
      },
      (r) => {
        const res = r.body(new TrainResponse()) as TrainResponse;
        const losses = res.epochLossesArray();
        return { finalLoss: res.finalLoss(), epochLosses: losses ? Array.from(losses) : [], steps: Number(res.steps()) };
      },
      o.onProgress
        ? (r) => {
            const p = r.body(new FbTrainProgress()) as FbTrainProgress;
            o.onProgress!({ epoch: p.epoch(), step: Number(p.step()), stepsPerEpoch: Number(p.stepsPerEpoch()), totalSteps: Number(p.totalSteps()), loss: p.loss(), lr: p.lr() });
          }
        : undefined,
    );
  }

  /** The network's bytes (config and weights). */
  save(format: NetworkFormat = NetworkFormat.SAFETENSORS): Promise<Uint8Array> {
    return this.engine.call(
      'NetworkSave',
      RequestBody.NetworkSaveRequest,
      (b) => {
        NetworkSaveRequest.startNetworkSaveRequest(b);
        NetworkSaveRequest.addNetwork(b, addHandle(this.handle, b));
        if (format !== NetworkFormat.JSON) NetworkSaveRequest.addFormat(b, format);
        return NetworkSaveRequest.endNetworkSaveRequest(b);
      },
      (r) => ((r.body(new NetworkSaveResponse()) as NetworkSaveResponse).dataArray() ?? new Uint8Array(0)).slice(),
    );
  }

  /** The blueprint, as `heddle info --json` prints it. */
  describe(): Promise<unknown> {
    return this.engine.call(
      'NetworkDescribe',
      RequestBody.NetworkDescribeRequest,
      (b) => {
        NetworkDescribeRequest.startNetworkDescribeRequest(b);
        NetworkDescribeRequest.addNetwork(b, addHandle(this.handle, b));
        return NetworkDescribeRequest.endNetworkDescribeRequest(b);
      },
      (r) => JSON.parse((r.body(new NetworkDescribeResponse()) as NetworkDescribeResponse).json()!) as unknown,
    );
  }

  async createOptimizer(spec: string | Record<string, unknown>): Promise<RemoteOptimizer> {
    const [handle, normalized] = await this.engine.call(
      'OptimizerCreate',
      RequestBody.OptimizerCreateRequest,
      (b) => {
        const s = b.createString(jsonArg(spec));
        OptimizerCreateRequest.startOptimizerCreateRequest(b);
        OptimizerCreateRequest.addNetwork(b, addHandle(this.handle, b));
        OptimizerCreateRequest.addSpecJson(b, s);
        return OptimizerCreateRequest.endOptimizerCreateRequest(b);
      },
      (r) => {
        const res = r.body(new OptimizerCreateResponse()) as OptimizerCreateResponse;
        const h = res.optimizer()!;
        return [{ id: h.id(), generation: h.generation() }, JSON.parse(res.specJson() ?? 'null') as unknown] as const;
      },
    );
    return new RemoteOptimizer(this.engine, handle, normalized);
  }

  /** Every weight by name, in parameter order (copies). */
  getWeights(): Promise<Map<string, Tensor<TensorData>>> {
    return this.engine.call(
      'NetworkGetWeights',
      RequestBody.NetworkGetWeightsRequest,
      (b) => {
        NetworkGetWeightsRequest.startNetworkGetWeightsRequest(b);
        NetworkGetWeightsRequest.addNetwork(b, addHandle(this.handle, b));
        return NetworkGetWeightsRequest.endNetworkGetWeightsRequest(b);
      },
      (r) => {
        const res = r.body(new NetworkGetWeightsResponse()) as NetworkGetWeightsResponse;
        return readNamed(res.weightsLength(), (i) => res.weights(i), 'weight');
      },
    );
  }

  /** Replaces weights by name; all-or-nothing. `complete` requires every parameter. */
  setWeights(weights: ReadonlyMap<string, Tensor<TensorData>>, o: { complete?: boolean } = {}): Promise<void> {
    return this.engine.call(
      'NetworkSetWeights',
      RequestBody.NetworkSetWeightsRequest,
      (b) => {
        const named = [...weights].map(([name, t]) => {
          const data = addTensor(b, t);
          const n = b.createString(name);
          NamedTensor.startNamedTensor(b);
          NamedTensor.addName(b, n);
          NamedTensor.addTensor(b, data);
          return NamedTensor.endNamedTensor(b);
        });
        const vec = NetworkSetWeightsRequest.createWeightsVector(b, named);
        NetworkSetWeightsRequest.startNetworkSetWeightsRequest(b);
        NetworkSetWeightsRequest.addNetwork(b, addHandle(this.handle, b));
        NetworkSetWeightsRequest.addWeights(b, vec);
        if (o.complete) NetworkSetWeightsRequest.addComplete(b, true);
        return NetworkSetWeightsRequest.endNetworkSetWeightsRequest(b);
      },
      () => undefined,
    );
  }

  /** A loss of the output against target and dLoss/dOutput; changes nothing. */
  loss(x: Tensor<TensorData>, target: Tensor<TensorData>, loss: string): Promise<{ loss: number; output: Tensor<TensorData>; outputGrad: Tensor<TensorData> }> {
    return this.engine.call(
      'Loss',
      RequestBody.LossRequest,
      (b) => {
        const xt = addTensor(b, x);
        const tt = addTensor(b, target);
        const l = b.createString(loss);
        LossRequest.startLossRequest(b);
        LossRequest.addNetwork(b, addHandle(this.handle, b));
        LossRequest.addInput(b, xt);
        LossRequest.addTarget(b, tt);
        LossRequest.addLoss(b, l);
        return LossRequest.endLossRequest(b);
      },
      (r) => {
        const res = r.body(new LossResponse()) as LossResponse;
        return { loss: res.loss(), output: readTensorOut(res.output(), 'output'), outputGrad: readTensorOut(res.outputGrad(), 'output_grad') };
      },
    );
  }

  morphDtype(dtype: DType): Promise<NetworkInfo> {
    return this.engine.call(
      'MorphDtype',
      RequestBody.MorphDtypeRequest,
      (b) => {
        MorphDtypeRequest.startMorphDtypeRequest(b);
        MorphDtypeRequest.addNetwork(b, addHandle(this.handle, b));
        b.forceDefaults(true);
        MorphDtypeRequest.addDtype(b, dtype);
        b.forceDefaults(false);
        return MorphDtypeRequest.endMorphDtypeRequest(b);
      },
      (r) => readInfo((r.body(new MorphDtypeResponse()) as MorphDtypeResponse).network()),
    );
  }

  free(): Promise<void> {
    return this.engine.call(
      'NetworkFree',
      RequestBody.NetworkFreeRequest,
      (b) => {
        NetworkFreeRequest.startNetworkFreeRequest(b);
        NetworkFreeRequest.addNetwork(b, addHandle(this.handle, b));
        return NetworkFreeRequest.endNetworkFreeRequest(b);
      },
      () => undefined,
    );
  }
}

/** An optimizer living in the engine (torch.optim semantics). */
export class RemoteOptimizer {
  constructor(
    readonly engine: Engine,
    readonly handle: HandleRef,
    /** The spec with every default filled in. */
    readonly spec: unknown,
  ) {}

  /** One update from the network's weight gradients (the last grad call's). Returns steps taken so far. */
  step(lr?: number): Promise<number> {
    return this.engine.call(
      'OptimizerStep',
      RequestBody.OptimizerStepRequest,
      (b) => {
        OptimizerStepRequest.startOptimizerStepRequest(b);
        OptimizerStepRequest.addOptimizer(b, addHandle(this.handle, b));
        if (lr !== undefined) {
          b.forceDefaults(true);
          OptimizerStepRequest.addLr(b, lr);
          b.forceDefaults(false);
        }
        return OptimizerStepRequest.endOptimizerStepRequest(b);
      },
      (r) => Number((r.body(new OptimizerStepResponse()) as OptimizerStepResponse).steps()),
    );
  }

  /** The state torch would save: type, step count and `<param>.<slot>` tensors. */
  state(): Promise<{ type: string; step: number; tensors: Map<string, Tensor<TensorData>> }> {
    return this.engine.call(
      'OptimizerState',
      RequestBody.OptimizerStateRequest,
      (b) => {
        OptimizerStateRequest.startOptimizerStateRequest(b);
        OptimizerStateRequest.addOptimizer(b, addHandle(this.handle, b));
        return OptimizerStateRequest.endOptimizerStateRequest(b);
      },
      (r) => {
        const res = r.body(new OptimizerStateResponse()) as OptimizerStateResponse;
        return { type: res.type() ?? '', step: Number(res.step()), tensors: readNamed(res.tensorsLength(), (i) => res.tensors(i), 'optimizer state') };
      },
    );
  }

  free(): Promise<void> {
    return this.engine.call(
      'OptimizerFree',
      RequestBody.OptimizerFreeRequest,
      (b) => {
        OptimizerFreeRequest.startOptimizerFreeRequest(b);
        OptimizerFreeRequest.addOptimizer(b, addHandle(this.handle, b));
        return OptimizerFreeRequest.endOptimizerFreeRequest(b);
      },
      () => undefined,
    );
  }
}

