/**
 * One connection's state and the dispatch of its requests to the core: the handshake, the
 * call-id rule, the handle table, the backend choice. A Session never throws to its
 * transport: every failure becomes an Error response with a precise code, and the
 * session keeps serving. Requests are handled one at a time, in arrival order.
 *
 * On the cpu backend every call completes inside handleFrame. On the webgpu backend a call
 * that computes (Forward, Grad, Loss, Train) and SetBackend("webgpu") itself complete later:
 * handleFrame returns a promise, and the transport hands the session no further frame (and
 * keeps the frame's bytes in place: request tensors are views of them) until it settles.
 */
import { Builder, ByteBuffer, type Offset } from 'flatbuffers';
import { loadNetworkJSON, loadNetworkSafetensors, saveNetworkJSON, saveNetworkSafetensors } from '../../core/io/network_io.ts';
import type { Blueprint, LayerBlueprint } from '../../core/network.ts';
import { Network } from '../../core/network.ts';
import { Tensor, type TensorData } from '../../core/tensor.ts';
import { computeLoss, checkTarget, parseLossName } from '../../core/train/losses.ts';
import { type Optimizer, createOptimizer } from '../../core/train/optimizers.ts';
import { type TrainOptions, type TrainResult, train, trainAsync } from '../../core/train/trainer.ts';
import type { WebGpuContext } from '../../core/backend/webgpu/device.ts';
import { EngineError, type WireError, toWireError } from './errors.ts';
import { acquireEngineWebGpu, currentWebGpu, webGpuStatus } from './gpu.ts';
import { ABI_VERSION, CALL_BY_REQUEST, RESPONSE_IDENTIFIER } from './generated/abi.ts';
import { AbiVersion } from './generated/fb/heddle/abi/abi-version.ts';
import { BackendInfo } from './generated/fb/heddle/abi/backend-info.ts';
import { Blueprint as FbBlueprint } from './generated/fb/heddle/abi/blueprint.ts';
import { DType } from './generated/fb/heddle/abi/dtype.ts';
import { Error as FbError } from './generated/fb/heddle/abi/error.ts';
import { ErrorCode } from './generated/fb/heddle/abi/error-code.ts';
import { ForwardRequest } from './generated/fb/heddle/abi/forward-request.ts';
import { ForwardResponse } from './generated/fb/heddle/abi/forward-response.ts';
import { GradRequest } from './generated/fb/heddle/abi/grad-request.ts';
import { GradResponse } from './generated/fb/heddle/abi/grad-response.ts';
import { GridDims } from './generated/fb/heddle/abi/grid-dims.ts';
import { GridPos } from './generated/fb/heddle/abi/grid-pos.ts';
import { Handle } from './generated/fb/heddle/abi/handle.ts';
import { HelloRequest } from './generated/fb/heddle/abi/hello-request.ts';
import { HelloResponse } from './generated/fb/heddle/abi/hello-response.ts';
import { LayerBlueprint as FbLayerBlueprint } from './generated/fb/heddle/abi/layer-blueprint.ts';
import { LossRequest } from './generated/fb/heddle/abi/loss-request.ts';
import { LossResponse } from './generated/fb/heddle/abi/loss-response.ts';
import { NetworkGetWeightsRequest } from './generated/fb/heddle/abi/network-get-weights-request.ts';
import { NetworkGetWeightsResponse } from './generated/fb/heddle/abi/network-get-weights-response.ts';
import { NetworkSetWeightsRequest } from './generated/fb/heddle/abi/network-set-weights-request.ts';
import { NetworkSetWeightsResponse } from './generated/fb/heddle/abi/network-set-weights-response.ts';
import { OptimizerStateRequest } from './generated/fb/heddle/abi/optimizer-state-request.ts';
import { OptimizerStateResponse } from './generated/fb/heddle/abi/optimizer-state-response.ts';
import { MorphDtypeRequest } from './generated/fb/heddle/abi/morph-dtype-request.ts';
import { MorphDtypeResponse } from './generated/fb/heddle/abi/morph-dtype-response.ts';
import { NamedTensor } from './generated/fb/heddle/abi/named-tensor.ts';
import { NetworkCreateRequest } from './generated/fb/heddle/abi/network-create-request.ts';
import { NetworkCreateResponse } from './generated/fb/heddle/abi/network-create-response.ts';
import { NetworkDescribeRequest } from './generated/fb/heddle/abi/network-describe-request.ts';
import { NetworkDescribeResponse } from './generated/fb/heddle/abi/network-describe-response.ts';
import { NetworkFormat } from './generated/fb/heddle/abi/network-format.ts';
import { NetworkFreeRequest } from './generated/fb/heddle/abi/network-free-request.ts';
import { NetworkFreeResponse } from './generated/fb/heddle/abi/network-free-response.ts';
import { NetworkInfo } from './generated/fb/heddle/abi/network-info.ts';
import { NetworkLoadRequest } from './generated/fb/heddle/abi/network-load-request.ts';
import { NetworkLoadResponse } from './generated/fb/heddle/abi/network-load-response.ts';
import { NetworkSaveRequest } from './generated/fb/heddle/abi/network-save-request.ts';
import { NetworkSaveResponse } from './generated/fb/heddle/abi/network-save-response.ts';
import { OptimizerCreateRequest } from './generated/fb/heddle/abi/optimizer-create-request.ts';
import { OptimizerCreateResponse } from './generated/fb/heddle/abi/optimizer-create-response.ts';
import { OptimizerFreeRequest } from './generated/fb/heddle/abi/optimizer-free-request.ts';
import { OptimizerFreeResponse } from './generated/fb/heddle/abi/optimizer-free-response.ts';
import { OptimizerStepRequest } from './generated/fb/heddle/abi/optimizer-step-request.ts';
import { OptimizerStepResponse } from './generated/fb/heddle/abi/optimizer-step-response.ts';
import { ParamInfo } from './generated/fb/heddle/abi/param-info.ts';
import { Request } from './generated/fb/heddle/abi/request.ts';
import { RequestBody } from './generated/fb/heddle/abi/request-body.ts';
import { Response } from './generated/fb/heddle/abi/response.ts';
import { ResponseBody } from './generated/fb/heddle/abi/response-body.ts';
import { SetBackendRequest } from './generated/fb/heddle/abi/set-backend-request.ts';
import { SetBackendResponse } from './generated/fb/heddle/abi/set-backend-response.ts';
import type { Tensor as FbTensor } from './generated/fb/heddle/abi/tensor.ts';
import { TrainProgress } from './generated/fb/heddle/abi/train-progress.ts';
import { TrainRequest } from './generated/fb/heddle/abi/train-request.ts';
import { TrainResponse } from './generated/fb/heddle/abi/train-response.ts';
import { VerifyError, verifyRequestBuffer } from './generated/verify.ts';
import { HandleTable, type HandleValue } from './handles.ts';
import type { RuntimeInfo } from './runtime.ts';
import { type CoreDType, addBytes, addShape, addTensor, dtypeName, readTensor } from './tensors.ts';
import { ENGINE_VERSION } from './version.ts';

/**
 * Receives one complete response frame (size-prefixed). It must write or copy the bytes
 * before returning. `urgent` marks a progress frame: a transport that batches its writes
 * sends it (and what came before) now rather than after the call.
 */
export type Emit = (frame: Uint8Array, urgent?: boolean) => void;

export interface SessionOptions {
  /** This connection's number, in [1, 2^32). */
  connection: number;
  maxFrameBytes: number;
  runtime: RuntimeInfo;
  /** Engine log (stderr), when verbose. */
  log?: (line: string) => void;
}

interface NetworkEntry {
  kind: 'network';
  net: Network;
  id: bigint;
  /** The device its webgpu binding runs on (null: not bound, it runs on the CPU). */
  gpu: WebGpuContext | null;
}
interface OptimizerEntry {
  kind: 'optimizer';
  opt: Optimizer;
  network: bigint;
}
type Entry = NetworkEntry | OptimizerEntry;

export const BACKENDS = ['cpu', 'webgpu'] as const;

/** Bytes a response tensor may take (the forward output of a huge batch, say). */
const MAX_OUTPUT_BYTES = 2 ** 31 - 64;

export class Session {
  readonly connection: number;
  private readonly handles: HandleTable<Entry>;
  private readonly b = new Builder(1 << 16);
  private helloDone = false;
  private lastCallId = 0n;
  private backend: 'cpu' | 'webgpu' = 'cpu';
  /** The device this connection's webgpu backend runs on (the engine's, shared). */
  private gpu: WebGpuContext | null = null;
  /** Live networks, to release their device memory when freed or when the connection ends. */
  private readonly networks = new Set<NetworkEntry>();
  /** The call in flight (webgpu), if any. */
  private inflight: Promise<void> | null = null;
  private closed = false;
  private readonly maxFrameBytes: number;
  private readonly runtime: RuntimeInfo;
  private readonly log: (line: string) => void;

  constructor(o: SessionOptions) {
    this.connection = o.connection;
    this.handles = new HandleTable<Entry>(o.connection);
    this.maxFrameBytes = o.maxFrameBytes;
    this.runtime = o.runtime;
    this.log = o.log ?? (() => {});
  }

  /** Live handles (for tests and logs). */
  get liveHandles(): number {
    return this.handles.size;
  }

  /** The connection ended: handles go; device memory is released once a call in flight ends. */
  close(): void {
    this.closed = true;
    this.handles.clear();
    if (this.inflight) void this.inflight.then(() => this.releaseAll());
    else this.releaseAll();
  }

  private releaseAll(): void {
    for (const e of this.networks) this.unbind(e);
    this.networks.clear();
  }

  private unbind(e: NetworkEntry): void {
    if (e.gpu === null) return;
    e.gpu = null;
    e.net.releaseBackend();
  }

  // ---------------------------------------------------------------- responses

  private finish(callId: bigint, type: ResponseBody, body: Offset, emit: Emit): void {
    const b = this.b;
    Response.startResponse(b);
    Response.addCallId(b, callId);
    Response.addBodyType(b, type);
    Response.addBody(b, body);
    b.finish(Response.endResponse(b), RESPONSE_IDENTIFIER, true);
    emit(b.asUint8Array(), type === ResponseBody.TrainProgress);
  }

  private respond(callId: bigint, type: ResponseBody, build: (b: Builder) => Offset, emit: Emit): void {
    this.b.clear();
    const body = build(this.b);
    this.finish(callId, type, body, emit);
  }

  /** Sends an Error response (call id 0 for frame-level errors). */
  sendError(callId: bigint, err: WireError, emit: Emit): void {
    this.b.clear();
    const b = this.b;
    const message = b.createString(err.message);
    const detail = err.detail ? b.createString(err.detail) : 0;
    const where = err.where ? b.createString(err.where) : 0;
    FbError.startError(b);
    FbError.addCode(b, err.code);
    FbError.addMessage(b, message);
    if (detail) FbError.addDetail(b, detail);
    if (where) FbError.addWhere(b, where);
    this.finish(callId, ResponseBody.Error, FbError.endError(b), emit);
    if (err.code === ErrorCode.INTERNAL) this.log(`connection ${this.connection}: INTERNAL: ${err.message}\n${err.detail}`);
  }

  /** A frame over the cap: answered, then its bytes are discarded by the reader. */
  frameTooLarge(length: number, emit: Emit): void {
    this.sendError(
      0n,
      {
        code: ErrorCode.FRAME_TOO_LARGE,
        message: `frame of ${length} bytes is over the engine's cap of ${this.maxFrameBytes} bytes; its bytes are discarded`,
        where: 'frame',
        detail: `declared length ${length}, max_frame_bytes ${this.maxFrameBytes}`,
      },
      emit,
    );
  }

  /** The stream ended inside a frame: the last frame of the connection. */
  frameTruncated(what: string, emit: Emit): void {
    this.sendError(0n, { code: ErrorCode.FRAME_TRUNCATED, message: `${what}; closing the connection`, where: 'frame', detail: '' }, emit);
  }

  // ---------------------------------------------------------------- dispatch

  /**
   * Handles one frame (prefix included). Never throws. Returns a promise when the call
   * completes later (webgpu): the transport must not hand over another frame, nor reuse
   * this frame's bytes, until it settles (it never rejects).
   */
  handleFrame(frame: Uint8Array, emit: Emit): Promise<void> | undefined {
    const body = frame.subarray(4);
    try {
      verifyRequestBuffer(body);
    } catch (e) {
      const msg = e instanceof VerifyError ? e.message : String(e);
      const hint = body.length >= 8 && String.fromCharCode(...body.subarray(4, 8)) === RESPONSE_IDENTIFIER ? ' (this is a Response frame; the engine reads Requests)' : '';
      this.sendError(0n, { code: ErrorCode.FRAME_INVALID, message: `frame of ${body.length} bytes is not a valid Heddle request: ${msg}${hint}`, where: 'frame', detail: '' }, emit);
      return;
    }
    const req = Request.getRootAsRequest(new ByteBuffer(body));
    const callId = req.callId();
    if (callId === 0n || callId <= this.lastCallId) {
      const why = callId === 0n ? 'call id 0 is reserved' : `call id ${callId} is not greater than the previous call id ${this.lastCallId}`;
      this.sendError(callId, { code: ErrorCode.DUPLICATE_CALL_ID, message: `${why}; call ids must increase on a connection`, where: 'Request.call_id', detail: '' }, emit);
      return;
    }
    this.lastCallId = callId;
    const type = req.bodyType();
    const call = CALL_BY_REQUEST.get(type);
    if (!call) {
      const what = type === RequestBody.NONE ? 'the request has no body (union type NONE)' : `request type ${type} is not a call of ABI ${ABI_VERSION.major}.${ABI_VERSION.minor}`;
      this.sendError(callId, { code: ErrorCode.REQUEST_UNKNOWN, message: what, where: 'Request.body', detail: '' }, emit);
      return;
    }
    if (!this.helloDone && type !== RequestBody.HelloRequest) {
      this.sendError(callId, { code: ErrorCode.HANDSHAKE_REQUIRED, message: `${call.name} before Hello: the first call on a connection must be Hello`, where: 'Request.body', detail: '' }, emit);
      return;
    }
    let later: void | Promise<void>;
    try {
      later = this.dispatch(req, type, callId, emit);
    } catch (e) {
      this.sendError(callId, toWireError(e), emit);
      return undefined;
    }
    if (!(later instanceof Promise)) return undefined;
    const done = later.then(
      () => undefined,
      (e: unknown) => this.sendError(callId, toWireError(e), emit),
    );
    this.inflight = done;
    return done.finally(() => {
      if (this.inflight === done) this.inflight = null;
    });
  }

  private dispatch(req: Request, type: RequestBody, id: bigint, emit: Emit): void | Promise<void> {
    switch (type) {
      case RequestBody.HelloRequest:
        return this.hello(id, req.body(new HelloRequest()) as HelloRequest, emit);
      case RequestBody.NetworkCreateRequest:
        return this.networkCreate(id, req.body(new NetworkCreateRequest()) as NetworkCreateRequest, emit);
      case RequestBody.NetworkLoadRequest:
        return this.networkLoad(id, req.body(new NetworkLoadRequest()) as NetworkLoadRequest, emit);
      case RequestBody.NetworkSaveRequest:
        return this.networkSave(id, req.body(new NetworkSaveRequest()) as NetworkSaveRequest, emit);
      case RequestBody.NetworkFreeRequest:
        return this.networkFree(id, req.body(new NetworkFreeRequest()) as NetworkFreeRequest, emit);
      case RequestBody.NetworkDescribeRequest:
        return this.networkDescribe(id, req.body(new NetworkDescribeRequest()) as NetworkDescribeRequest, emit);
      case RequestBody.ForwardRequest:
        return this.forward(id, req.body(new ForwardRequest()) as ForwardRequest, emit);
      case RequestBody.GradRequest:
        return this.grad(id, req.body(new GradRequest()) as GradRequest, emit);
      case RequestBody.TrainRequest:
        return this.train(id, req.body(new TrainRequest()) as TrainRequest, emit);
      case RequestBody.SetBackendRequest:
        return this.setBackend(id, req.body(new SetBackendRequest()) as SetBackendRequest, emit);
      case RequestBody.OptimizerCreateRequest:
        return this.optimizerCreate(id, req.body(new OptimizerCreateRequest()) as OptimizerCreateRequest, emit);
      case RequestBody.OptimizerStepRequest:
        return this.optimizerStep(id, req.body(new OptimizerStepRequest()) as OptimizerStepRequest, emit);
      case RequestBody.OptimizerFreeRequest:
        return this.optimizerFree(id, req.body(new OptimizerFreeRequest()) as OptimizerFreeRequest, emit);
      case RequestBody.MorphDtypeRequest:
        return this.morphDtype(id, req.body(new MorphDtypeRequest()) as MorphDtypeRequest, emit);
      case RequestBody.NetworkGetWeightsRequest:
        return this.getWeights(id, req.body(new NetworkGetWeightsRequest()) as NetworkGetWeightsRequest, emit);
      case RequestBody.NetworkSetWeightsRequest:
        return this.setWeights(id, req.body(new NetworkSetWeightsRequest()) as NetworkSetWeightsRequest, emit);
      case RequestBody.LossRequest:
        return this.loss(id, req.body(new LossRequest()) as LossRequest, emit);
      case RequestBody.OptimizerStateRequest:
        return this.optimizerState(id, req.body(new OptimizerStateRequest()) as OptimizerStateRequest, emit);
      default:
        throw new EngineError(ErrorCode.REQUEST_UNKNOWN, `request type ${type} has no handler`, 'Request.body');
    }
  }

  // ---------------------------------------------------------------- helpers

  private handleOf(h: Handle | null): HandleValue {
    // Required fields are guaranteed by the verifier.
    return { id: h!.id(), generation: h!.generation() };
  }

  private network(h: Handle | null, what: string): NetworkEntry {
    return this.handles.get(this.handleOf(h), 'network', what) as NetworkEntry;
  }

  private optimizer(h: Handle | null, what: string): OptimizerEntry {
    return this.handles.get(this.handleOf(h), 'optimizer', what) as OptimizerEntry;
  }

  private tensor(t: FbTensor | null, what: string, dtypes: readonly CoreDType[]): Tensor<TensorData> {
    return readTensor(t!, what, { dtypes, maxBytes: this.maxFrameBytes });
  }

  private seed(v: bigint, what: string): number {
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new EngineError(ErrorCode.ARGUMENT_INVALID, `seed ${v} is out of range; seeds are integers in [0, 2^53)`, what);
    return Number(v);
  }

  /**
   * Runs `fn` with the network bound to this connection's device (binding it first, or again
   * when the device it was bound to is gone and the engine has a new one). Binding uploads
   * nothing: weights go up on the first pass.
   */
  private async onGpu<T>(entry: NetworkEntry, fn: () => Promise<T>): Promise<T> {
    let ctx = this.gpu!;
    if (ctx.isDestroyed || ctx.lostReason !== null) {
      const now = currentWebGpu();
      if (now) ctx = this.gpu = now;
    }
    if (entry.gpu !== ctx || entry.net.backend !== 'webgpu') {
      const report = await entry.net.useBackend('webgpu', { context: ctx });
      entry.gpu = ctx;
      const onCpu = (report.layers ?? []).filter((l) => l.device === 'cpu').map((l) => `${l.name} (${l.type})`);
      this.log(`connection ${this.connection}: network ${entry.id} on webgpu (${ctx.report.description || ctx.report.vendor}); on the CPU inside its passes: ${onCpu.join(', ') || 'none'}`);
    }
    return fn();
  }

  private checkOutput(batch: number, net: Network, what: string): void {
    let per = 1;
    for (const d of net.outputShape) per *= d;
    const bytes = batch * per * 4;
    if (bytes > MAX_OUTPUT_BYTES) {
      throw new EngineError(ErrorCode.RESOURCE_LIMIT, `the output for a batch of ${batch} would take ${bytes} bytes; the engine answers at most ${MAX_OUTPUT_BYTES}`, what);
    }
  }

  private addNetworkInfo(b: Builder, h: HandleValue, net: Network): Offset {
    const params = net.parameters();
    const infos = params.map((p) => {
      const name = b.createString(p.name);
      const shape = addShape(b, p.param.value.shape);
      ParamInfo.startParamInfo(b);
      ParamInfo.addName(b, name);
      ParamInfo.addShape(b, shape);
      return ParamInfo.endParamInfo(b);
    });
    const paramsVec = NetworkInfo.createParametersVector(b, infos);
    const inShape = addShape(b, net.inputShape);
    const outShape = addShape(b, net.outputShape);
    NetworkInfo.startNetworkInfo(b);
    NetworkInfo.addNetwork(b, Handle.createHandle(b, h.id, h.generation));
    NetworkInfo.addInputShape(b, inShape);
    NetworkInfo.addOutputShape(b, outShape);
    NetworkInfo.addParameterCount(b, BigInt(net.parameterCount()));
    NetworkInfo.addParameters(b, paramsVec);
    return NetworkInfo.endNetworkInfo(b);
  }

  private register(net: Network): HandleValue {
    // The entry learns its own id after add() so dependents (optimizers) can refer to it.
    const entry: NetworkEntry = { kind: 'network', net, id: 0n, gpu: null };
    const h = this.handles.add('network', entry);
    entry.id = h.id;
    this.networks.add(entry);
    return h;
  }

  // ---------------------------------------------------------------- calls

  private hello(id: bigint, r: HelloRequest, emit: Emit): void {
    const v = r.abiVersion()!;
    const client = `${v.major()}.${v.minor()}.${v.patch()}`;
    const mine = `${ABI_VERSION.major}.${ABI_VERSION.minor}.${ABI_VERSION.patch}`;
    if (v.major() !== ABI_VERSION.major) {
      throw new EngineError(
        ErrorCode.ABI_INCOMPATIBLE,
        `client speaks ABI ${client}, this engine speaks ABI ${mine}; major versions must match (use an engine of ABI ${v.major()}.x or a client of ${ABI_VERSION.major}.x)`,
        'HelloRequest.abi_version',
        `engine ${ENGINE_VERSION}`,
      );
    }
    this.helloDone = true;
    this.log(`connection ${this.connection}: hello from ${r.client() ?? 'a client'} (ABI ${client})`);
    this.respond(
      id,
      ResponseBody.HelloResponse,
      (b) => {
        const backends = BACKENDS.map((name) => {
          const st = name === 'cpu' ? { available: true, adapters: [], reason: '' } : webGpuStatus();
          const n = b.createString(name);
          const adapters = BackendInfo.createAdaptersVector(b, st.adapters.map((a) => b.createString(a)));
          const reason = st.reason ? b.createString(st.reason) : 0;
          BackendInfo.startBackendInfo(b);
          BackendInfo.addName(b, n);
          BackendInfo.addAvailable(b, st.available);
          BackendInfo.addAdapters(b, adapters);
          if (reason) BackendInfo.addReason(b, reason);
          return BackendInfo.endBackendInfo(b);
        });
        const backendsVec = HelloResponse.createBackendsVector(b, backends);
        const engineVersion = b.createString(ENGINE_VERSION);
        const runtime = b.createString(this.runtime.name);
        const runtimeVersion = b.createString(this.runtime.version);
        HelloResponse.startHelloResponse(b);
        HelloResponse.addAbiVersion(b, AbiVersion.createAbiVersion(b, ABI_VERSION.major, ABI_VERSION.minor, ABI_VERSION.patch));
        HelloResponse.addEngineVersion(b, engineVersion);
        HelloResponse.addRuntime(b, runtime);
        HelloResponse.addRuntimeVersion(b, runtimeVersion);
        HelloResponse.addBackends(b, backendsVec);
        HelloResponse.addMaxFrameBytes(b, BigInt(this.maxFrameBytes));
        HelloResponse.addConnection(b, this.connection);
        return HelloResponse.endHelloResponse(b);
      },
      emit,
    );
  }

  private networkCreate(id: bigint, r: NetworkCreateRequest, emit: Emit): void {
    const seed = this.seed(r.seed(), 'NetworkCreateRequest.seed');
    const net = Network.fromJSON(r.configJson()!, { seed });
    const h = this.register(net);
    this.respond(id, ResponseBody.NetworkCreateResponse, (b) => NetworkCreateResponse.createNetworkCreateResponse(b, this.addNetworkInfo(b, h, net)), emit);
  }

  private networkLoad(id: bigint, r: NetworkLoadRequest, emit: Emit): void {
    const data = r.dataArray() ?? new Uint8Array(0);
    const config = r.configJson();
    let net: Network;
    switch (r.format()) {
      case NetworkFormat.JSON:
        if (config !== null) throw new EngineError(ErrorCode.ARGUMENT_INVALID, 'config_json is only used with SAFETENSORS (a network JSON document holds its config)', 'NetworkLoadRequest.config_json');
        net = loadNetworkJSON(data, { source: 'NetworkLoadRequest.data' });
        break;
      case NetworkFormat.SAFETENSORS:
        net = loadNetworkSafetensors(data, config === null ? { source: 'NetworkLoadRequest.data' } : { source: 'NetworkLoadRequest.data', config });
        break;
      default:
        throw new EngineError(ErrorCode.ARGUMENT_INVALID, `format ${r.format()} is not a NetworkFormat (JSON = 0, SAFETENSORS = 1)`, 'NetworkLoadRequest.format');
    }
    const h = this.register(net);
    this.respond(id, ResponseBody.NetworkLoadResponse, (b) => NetworkLoadResponse.createNetworkLoadResponse(b, this.addNetworkInfo(b, h, net)), emit);
  }

  private networkSave(id: bigint, r: NetworkSaveRequest, emit: Emit): void {
    const { net } = this.network(r.network(), 'NetworkSaveRequest.network');
    let bytes: Uint8Array;
    switch (r.format()) {
      case NetworkFormat.JSON:
        bytes = new TextEncoder().encode(saveNetworkJSON(net));
        break;
      case NetworkFormat.SAFETENSORS:
        bytes = saveNetworkSafetensors(net);
        break;
      default:
        throw new EngineError(ErrorCode.ARGUMENT_INVALID, `format ${r.format()} is not a NetworkFormat (JSON = 0, SAFETENSORS = 1)`, 'NetworkSaveRequest.format');
    }
    this.respond(id, ResponseBody.NetworkSaveResponse, (b) => NetworkSaveResponse.createNetworkSaveResponse(b, addBytes(b, bytes, 16)), emit);
  }

  private networkFree(id: bigint, r: NetworkFreeRequest, emit: Emit): void {
    const h = this.handleOf(r.network());
    const entry = this.handles.release(h, 'network', 'NetworkFreeRequest.network', 'freed by NetworkFree') as NetworkEntry;
    this.unbind(entry);
    this.networks.delete(entry);
    this.handles.releaseWhere((kind, v) => kind === 'optimizer' && (v as OptimizerEntry).network === h.id, 'freed with its network');
    this.respond(id, ResponseBody.NetworkFreeResponse, (b) => NetworkFreeResponse.createNetworkFreeResponse(b), emit);
  }

  private networkDescribe(id: bigint, r: NetworkDescribeRequest, emit: Emit): void {
    const { net } = this.network(r.network(), 'NetworkDescribeRequest.network');
    const bp = net.describe();
    this.respond(
      id,
      ResponseBody.NetworkDescribeResponse,
      (b) => {
        const json = b.createString(JSON.stringify(bp));
        const blueprint = addBlueprint(b, bp);
        return NetworkDescribeResponse.createNetworkDescribeResponse(b, blueprint, json);
      },
      emit,
    );
  }

  private forward(id: bigint, r: ForwardRequest, emit: Emit): void | Promise<void> {
    const entry = this.network(r.network(), 'ForwardRequest.network');
    const { net } = entry;
    const x = this.tensor(r.input(), 'ForwardRequest.input', inputDtypes(net));
    this.checkOutput(x.shape[0] ?? 0, net, 'ForwardRequest.input');
    const send = (y: Tensor): void => this.respond(id, ResponseBody.ForwardResponse, (b) => ForwardResponse.createForwardResponse(b, addTensor(b, y)), emit);
    if (this.backend === 'cpu') return send(net.forward(x as Tensor));
    return this.onGpu(entry, () => net.forwardAsync(x)).then(send);
  }

  private grad(id: bigint, r: GradRequest, emit: Emit): void | Promise<void> {
    const entry = this.network(r.network(), 'GradRequest.network');
    const { net } = entry;
    const x = this.tensor(r.input(), 'GradRequest.input', inputDtypes(net)) as Tensor;
    const gyT = r.gradOutput();
    const targetT = r.target();
    const lossName = r.loss();
    if ((gyT === null) === (targetT === null)) {
      throw new EngineError(ErrorCode.ARGUMENT_INVALID, 'give either grad_output, or target with loss', 'GradRequest');
    }
    if ((targetT === null) !== (lossName === null)) {
      throw new EngineError(ErrorCode.ARGUMENT_INVALID, targetT ? 'target needs loss (mse or cross_entropy)' : 'loss needs target', 'GradRequest.loss');
    }
    const gy = gyT ? (this.tensor(gyT, 'GradRequest.grad_output', ['f32']) as Tensor) : null;
    const loss = lossName !== null ? parseLossName(lossName, 'GradRequest.loss') : null;
    const target = targetT ? this.tensor(targetT, 'GradRequest.target', ['f32', 'i32', 'i64']) : null;
    this.checkOutput(x.shape[0] ?? 0, net, 'GradRequest.input');
    const withWeights = r.weightGrads();
    const send = (dx: Tensor, lossValue: number | null): void =>
      this.respond(
        id,
        ResponseBody.GradResponse,
        (b) => {
          let grads = 0;
          if (withWeights) {
            grads = GradResponse.createWeightGradsVector(b, net.parameters().map(({ name, param }) => addNamedTensor(b, name, param.grad)));
          }
          const inputGrad = addTensor(b, dx);
          GradResponse.startGradResponse(b);
          GradResponse.addInputGrad(b, inputGrad);
          if (grads) GradResponse.addWeightGrads(b, grads);
          if (lossValue !== null) {
            // flatc 2.0.8's TS code drops an optional scalar equal to 0 unless defaults are forced.
            b.forceDefaults(true);
            GradResponse.addLoss(b, lossValue);
            b.forceDefaults(false);
          }
          return GradResponse.endGradResponse(b);
        },
        emit,
      );
    if (this.backend === 'cpu') {
      const tape = net.forwardTape(x, { training: false, seed: 0 });
      let dy: Tensor;
      let lossValue: number | null = null;
      if (gy) {
        dy = gy;
      } else {
        const out = tape.outputs[tape.outputs.length - 1];
        checkTarget(loss!, out.shape, target!, 'GradRequest.target');
        const lr = computeLoss(loss!, out, target!);
        dy = lr.grad;
        lossValue = lr.loss;
      }
      net.zeroGrad();
      return send(net.backward(tape, dy), lossValue);
    }
    // webgpu: the same steps with the forward and the backward on the device; the loss (and
    // its gradient) from the inference output, as above (training: false, the same bits).
    return this.onGpu(entry, async () => {
      let dy: Tensor;
      let lossValue: number | null = null;
      if (gy) {
        dy = gy;
      } else {
        const out = await net.forwardAsync(x);
        checkTarget(loss!, out.shape, target!, 'GradRequest.target');
        const lr = computeLoss(loss!, out, target!);
        dy = lr.grad;
        lossValue = lr.loss;
      }
      net.zeroGrad();
      send(await net.gradAsync(x, dy), lossValue);
    });
  }

  private train(id: bigint, r: TrainRequest, emit: Emit): void | Promise<void> {
    const entry = this.network(r.network(), 'TrainRequest.network');
    const { net } = entry;
    const inputs = this.tensor(r.inputs(), 'TrainRequest.inputs', inputDtypes(net)) as Tensor;
    const targets = this.tensor(r.targets(), 'TrainRequest.targets', ['f32', 'i32', 'i64']);
    const optHandle = r.optimizer();
    const optJson = r.optimizerJson();
    let optimizer: unknown;
    if (optHandle !== null) {
      if (optJson !== null) throw new EngineError(ErrorCode.ARGUMENT_INVALID, 'give optimizer or optimizer_json, not both', 'TrainRequest.optimizer');
      optimizer = this.optimizer(optHandle, 'TrainRequest.optimizer').opt;
    } else {
      if (optJson === null) throw new EngineError(ErrorCode.ARGUMENT_INVALID, 'give optimizer_json (e.g. "\\"adamw\\"" or {"type":"sgd","lr":0.1}) or an optimizer handle', 'TrainRequest.optimizer_json');
      optimizer = parseJsonArg(optJson, 'TrainRequest.optimizer_json', true);
    }
    const scheduleJson = r.scheduleJson();
    const schedule = scheduleJson === null ? undefined : parseJsonArg(scheduleJson, 'TrainRequest.schedule_json', true);
    const every = r.progressEvery();
    const clip = r.clipNorm();
    const opts: TrainOptions = {
      epochs: r.epochs(),
      batchSize: r.batchSize(),
      loss: r.loss()!,
      optimizer: optimizer as TrainOptions['optimizer'],
      schedule: schedule as TrainOptions['schedule'],
      clipNorm: clip === null ? undefined : clip,
      shuffle: r.shuffle(),
      seed: this.seed(r.seed(), 'TrainRequest.seed'),
      onProgress:
        every === 0
          ? undefined
          : (p) => {
              if (p.step % every !== 0 && p.step !== p.totalSteps) return;
              this.respond(
                id,
                ResponseBody.TrainProgress,
                (b) => TrainProgress.createTrainProgress(b, p.epoch, BigInt(p.step), BigInt(p.stepsPerEpoch), BigInt(p.totalSteps), p.loss, p.lr),
                emit,
              );
            },
    };
    const send = (result: TrainResult): void =>
      this.respond(
        id,
        ResponseBody.TrainResponse,
        (b) => {
          const losses = TrainResponse.createEpochLossesVector(b, result.epochLosses);
          return TrainResponse.createTrainResponse(b, result.finalLoss, losses, BigInt(result.steps));
        },
        emit,
      );
    if (this.backend === 'cpu') return send(train(net, { inputs, targets }, opts));
    return this.onGpu(entry, () => trainAsync(net, { inputs, targets }, opts)).then(send);
  }

  private setBackend(id: bigint, r: SetBackendRequest, emit: Emit): void | Promise<void> {
    const name = r.name()!;
    if (!(BACKENDS as readonly string[]).includes(name)) {
      throw new EngineError(ErrorCode.ARGUMENT_INVALID, `unknown backend '${name}'; backends are ${BACKENDS.join(', ')}`, 'SetBackendRequest.name');
    }
    const send = (): void => this.respond(id, ResponseBody.SetBackendResponse, (b) => SetBackendResponse.createSetBackendResponse(b, b.createString(name)), emit);
    if (name === 'cpu') {
      // Back to the host: every network's device memory is released (the device stays, for later).
      for (const e of this.networks) this.unbind(e);
      this.backend = 'cpu';
      this.gpu = null;
      return send();
    }
    // webgpu: the engine's device (acquired on first use, or again after a loss). A failure
    // (BACKEND_UNAVAILABLE, with the reason) leaves the connection on its backend.
    return acquireEngineWebGpu().then((ctx) => {
      if (this.closed) return;
      this.gpu = ctx;
      this.backend = 'webgpu';
      send();
    });
  }

  private optimizerCreate(id: bigint, r: OptimizerCreateRequest, emit: Emit): void {
    const entry = this.network(r.network(), 'OptimizerCreateRequest.network');
    const spec = parseJsonArg(r.specJson()!, 'OptimizerCreateRequest.spec_json', true);
    const opt = createOptimizer(spec as Parameters<typeof createOptimizer>[0], entry.net.parameters());
    const h = this.handles.add('optimizer', { kind: 'optimizer', opt, network: entry.id });
    this.respond(
      id,
      ResponseBody.OptimizerCreateResponse,
      (b) => {
        const specJson = b.createString(JSON.stringify(opt.spec));
        OptimizerCreateResponse.startOptimizerCreateResponse(b);
        OptimizerCreateResponse.addOptimizer(b, Handle.createHandle(b, h.id, h.generation));
        OptimizerCreateResponse.addSpecJson(b, specJson);
        return OptimizerCreateResponse.endOptimizerCreateResponse(b);
      },
      emit,
    );
  }

  private optimizerStep(id: bigint, r: OptimizerStepRequest, emit: Emit): void {
    const { opt } = this.optimizer(r.optimizer(), 'OptimizerStepRequest.optimizer');
    const lr = r.lr();
    if (lr !== null && !(Number.isFinite(lr) && lr >= 0)) {
      throw new EngineError(ErrorCode.ARGUMENT_INVALID, `lr must be a finite number >= 0, got ${lr}`, 'OptimizerStepRequest.lr');
    }
    opt.step(lr === null ? undefined : lr);
    this.respond(id, ResponseBody.OptimizerStepResponse, (b) => OptimizerStepResponse.createOptimizerStepResponse(b, BigInt(opt.steps)), emit);
  }

  private optimizerFree(id: bigint, r: OptimizerFreeRequest, emit: Emit): void {
    this.handles.release(this.handleOf(r.optimizer()), 'optimizer', 'OptimizerFreeRequest.optimizer', 'freed by OptimizerFree');
    this.respond(id, ResponseBody.OptimizerFreeResponse, (b) => OptimizerFreeResponse.createOptimizerFreeResponse(b), emit);
  }

  private morphDtype(id: bigint, r: MorphDtypeRequest, emit: Emit): void {
    const h = this.handleOf(r.network());
    const { net } = this.network(r.network(), 'MorphDtypeRequest.network');
    const d = r.dtype();
    if (DType[d] === undefined) throw new EngineError(ErrorCode.DTYPE_INVALID, `dtype ${dtypeName(d)} is not a DType`, 'MorphDtypeRequest.dtype');
    if (d !== DType.F32) {
      throw new EngineError(ErrorCode.UNSUPPORTED, `morphing a network to ${dtypeName(d)} is not supported yet; networks hold F32 weights`, 'MorphDtypeRequest.dtype');
    }
    this.respond(id, ResponseBody.MorphDtypeResponse, (b) => MorphDtypeResponse.createMorphDtypeResponse(b, this.addNetworkInfo(b, h, net)), emit);
  }

  private getWeights(id: bigint, r: NetworkGetWeightsRequest, emit: Emit): void {
    const { net } = this.network(r.network(), 'NetworkGetWeightsRequest.network');
    this.respond(
      id,
      ResponseBody.NetworkGetWeightsResponse,
      (b) => NetworkGetWeightsResponse.createNetworkGetWeightsResponse(b, NetworkGetWeightsResponse.createWeightsVector(b, net.parameters().map(({ name, param }) => addNamedTensor(b, name, param.value)))),
      emit,
    );
  }

  private setWeights(id: bigint, r: NetworkSetWeightsRequest, emit: Emit): void {
    const { net } = this.network(r.network(), 'NetworkSetWeightsRequest.network');
    const weights = new Map<string, Tensor>();
    for (let i = 0; i < r.weightsLength(); i++) {
      const nt = r.weights(i)!;
      const name = nt.name()!;
      const where = `NetworkSetWeightsRequest.weights[${i}] (${name})`;
      if (weights.has(name)) throw new EngineError(ErrorCode.ARGUMENT_INVALID, `tensor '${name}' is given twice`, where);
      // A view of the frame is enough: setWeights copies the values into the parameters.
      weights.set(name, readTensor(nt.tensor()!, where, { dtypes: ['f32'], maxBytes: this.maxFrameBytes }) as Tensor);
    }
    net.setWeights(weights, { complete: r.complete(), source: 'NetworkSetWeightsRequest.weights' });
    this.respond(id, ResponseBody.NetworkSetWeightsResponse, (b) => NetworkSetWeightsResponse.createNetworkSetWeightsResponse(b), emit);
  }

  private loss(id: bigint, r: LossRequest, emit: Emit): void | Promise<void> {
    const entry = this.network(r.network(), 'LossRequest.network');
    const { net } = entry;
    const x = this.tensor(r.input(), 'LossRequest.input', inputDtypes(net)) as Tensor;
    const target = this.tensor(r.target(), 'LossRequest.target', ['f32', 'i32', 'i64']);
    const name = parseLossName(r.loss()!, 'LossRequest.loss');
    this.checkOutput(x.shape[0] ?? 0, net, 'LossRequest.input');
    const send = (y: Tensor): void => {
      checkTarget(name, y.shape, target, 'LossRequest.target');
      const res = computeLoss(name, y, target);
      this.respond(
        id,
        ResponseBody.LossResponse,
        (b) => {
          const out = addTensor(b, y);
          const grad = addTensor(b, res.grad);
          LossResponse.startLossResponse(b);
          LossResponse.addLoss(b, res.loss);
          LossResponse.addOutput(b, out);
          LossResponse.addOutputGrad(b, grad);
          return LossResponse.endLossResponse(b);
        },
        emit,
      );
    };
    if (this.backend === 'cpu') return send(net.forward(x));
    return this.onGpu(entry, () => net.forwardAsync(x)).then(send);
  }

  private optimizerState(id: bigint, r: OptimizerStateRequest, emit: Emit): void {
    const { opt } = this.optimizer(r.optimizer(), 'OptimizerStateRequest.optimizer');
    const state = opt.exportState();
    this.respond(
      id,
      ResponseBody.OptimizerStateResponse,
      (b) => {
        const tensors = OptimizerStateResponse.createTensorsVector(b, [...state.tensors].map(([name, t]) => addNamedTensor(b, name, t)));
        const type = b.createString(state.type);
        return OptimizerStateResponse.createOptimizerStateResponse(b, type, BigInt(state.step), tensors);
      },
      emit,
    );
  }
}

function addNamedTensor(b: Builder, name: string, t: Tensor<TensorData>): Offset {
  const data = addTensor(b, t);
  const n = b.createString(name);
  NamedTensor.startNamedTensor(b);
  NamedTensor.addName(b, n);
  NamedTensor.addTensor(b, data);
  return NamedTensor.endNamedTensor(b);
}

/** Input dtypes a network takes: f32, and integer ids when its first layer reads ids (embedding). */
function inputDtypes(net: Network): readonly CoreDType[] {
  const first = net.nodes[0];
  return first && !first.disabled && first.layer.integerInput === true ? ['f32', 'i32', 'i64'] : ['f32'];
}

/**
 * Parses a JSON argument. With `bareName`, text that is not JSON but looks like a name
 * (`adamw`) is taken as that string, so clients need not quote a bare optimizer name.
 */
function parseJsonArg(text: string, where: string, bareName: boolean): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    if (bareName && /^[A-Za-z_][A-Za-z0-9_]*$/.test(text)) return text;
    throw new EngineError(ErrorCode.CONFIG_INVALID, `invalid JSON: ${(e as Error).message}`, where);
  }
}

function addLayer(b: Builder, l: LayerBlueprint): Offset {
  const children = l.children ? FbLayerBlueprint.createChildrenVector(b, l.children.map((c) => addLayer(b, c))) : 0;
  const name = b.createString(l.name);
  const type = b.createString(l.type);
  const activation = l.activation !== undefined ? b.createString(l.activation) : 0;
  const inShape = addShape(b, l.input_shape);
  const outShape = addShape(b, l.output_shape);
  FbLayerBlueprint.startLayerBlueprint(b);
  FbLayerBlueprint.addName(b, name);
  FbLayerBlueprint.addType(b, type);
  if (l.position) FbLayerBlueprint.addPosition(b, GridPos.createGridPos(b, l.position.z, l.position.y, l.position.x, l.position.l));
  if (activation) FbLayerBlueprint.addActivation(b, activation);
  if (l.disabled) FbLayerBlueprint.addDisabled(b, true);
  if (l.remote_link) FbLayerBlueprint.addRemoteLink(b, GridPos.createGridPos(b, l.remote_link.z, l.remote_link.y, l.remote_link.x, l.remote_link.l));
  FbLayerBlueprint.addParameters(b, BigInt(l.parameters));
  FbLayerBlueprint.addInputShape(b, inShape);
  FbLayerBlueprint.addOutputShape(b, outShape);
  if (children) FbLayerBlueprint.addChildren(b, children);
  return FbLayerBlueprint.endLayerBlueprint(b);
}

function addBlueprint(b: Builder, bp: Blueprint): Offset {
  const layers = FbBlueprint.createLayersVector(b, bp.layers.map((l) => addLayer(b, l)));
  const id = b.createString(bp.id);
  const inShape = addShape(b, bp.input_shape);
  const outShape = addShape(b, bp.output_shape);
  FbBlueprint.startBlueprint(b);
  FbBlueprint.addId(b, id);
  FbBlueprint.addGrid(b, GridDims.createGridDims(b, bp.grid.depth, bp.grid.rows, bp.grid.cols, bp.grid.layers_per_cell));
  FbBlueprint.addBatchSize(b, bp.batch_size);
  FbBlueprint.addInputShape(b, inShape);
  FbBlueprint.addOutputShape(b, outShape);
  FbBlueprint.addTotalParameters(b, BigInt(bp.total_parameters));
  FbBlueprint.addLayers(b, layers);
  return FbBlueprint.endBlueprint(b);
}
