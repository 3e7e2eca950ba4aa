/**
 * The engine's side of a Forward round trip, in-process, without any I/O
 * (scripts/bench-abi.sh --profile): what Session.handleFrame costs for one Forward of 1024 f32
 * through the pass-through network (a disabled 1024x1024 dense layer), and its parts:
 *
 *   handleFrame     the whole dispatch: verify, decode, tensor view, checks, core forward,
 *                   response build (what the stdio loop calls per frame), plus the copy of
 *                   the answer into the output buffer that the stdio loop does;
 *   verify          verifyRequestBuffer on the frame (the generated verifier);
 *   core forward    Network.forward on a [1, 1024] tensor in-process (input checks, the
 *                   subnormal flush, the disabled layer's copy);
 *   response build  a ForwardResponse with a 1024-float tensor (flatbuffers Builder + tensor copy);
 *   rest            handleFrame - the three above: request decode, handle lookup, tensor view, checks.
 *
 * Bundled by bench-abi.sh with esbuild (the abi sources use extensionless imports) and run on
 * node, deno and bun:
 *
 *   esbuild scripts/bench-abi-engine.ts --bundle --format=esm --platform=node --outfile=/tmp/e.mjs
 *   node /tmp/e.mjs [calls]      bun /tmp/e.mjs      deno run -A /tmp/e.mjs
 *
 * Prints one line of key=value pairs, times in us per call: the best batch of 500 calls (on a
 * shared machine the best batch is the cost without interference; the median is printed too).
 */
import { Builder, ByteBuffer } from 'flatbuffers';
import { Network } from '../core/network.ts';
import { Tensor } from '../core/tensor.ts';
import { REQUEST_IDENTIFIER, RESPONSE_IDENTIFIER } from '../abi/engine/generated/abi.ts';
import { AbiVersion } from '../abi/engine/generated/fb/heddle/abi/abi-version.ts';
import { ForwardRequest } from '../abi/engine/generated/fb/heddle/abi/forward-request.ts';
import { ForwardResponse } from '../abi/engine/generated/fb/heddle/abi/forward-response.ts';
import { Handle } from '../abi/engine/generated/fb/heddle/abi/handle.ts';
import { HelloRequest } from '../abi/engine/generated/fb/heddle/abi/hello-request.ts';
import { NetworkCreateRequest } from '../abi/engine/generated/fb/heddle/abi/network-create-request.ts';
import { NetworkCreateResponse } from '../abi/engine/generated/fb/heddle/abi/network-create-response.ts';
import { Request } from '../abi/engine/generated/fb/heddle/abi/request.ts';
import { RequestBody } from '../abi/engine/generated/fb/heddle/abi/request-body.ts';
import { Response } from '../abi/engine/generated/fb/heddle/abi/response.ts';
import { ResponseBody } from '../abi/engine/generated/fb/heddle/abi/response-body.ts';
import { verifyRequestBuffer } from '../abi/engine/generated/verify.ts';
import { detectRuntime } from '../abi/engine/runtime.ts';
import { Session } from '../abi/engine/session.ts';
import { addTensor } from '../abi/engine/tensors.ts';

const CONFIG = { layers: [{ type: 'dense', input_height: 1024, output_height: 1024, disabled: true }] };
const BATCH = 500;
const args = (globalThis as unknown as { Deno?: { args: string[] }; process?: { argv: string[] } });
const argv = args.Deno ? args.Deno.args : (args.process?.argv.slice(2) ?? []);
const CALLS = Math.max(BATCH * 4, Number(argv[0] ?? 20000));

function frame(callId: bigint, type: RequestBody, build: (b: Builder) => number): Uint8Array {
  const b = new Builder(8192);
  const body = build(b);
  Request.startRequest(b);
  Request.addCallId(b, callId);
  Request.addBodyType(b, type);
  Request.addBody(b, body);
  b.finish(Request.endRequest(b), REQUEST_IDENTIFIER, true);
  return b.asUint8Array().slice();
}

const x = new Float32Array(1024);
for (let i = 0; i < 1024; i++) x[i] = i / 1024;

// The tensor data 16-byte aligned in the frame, as libheddle sends it (addTensor aligns).
const xTensor = new Tensor([1, 1024], x);
function forwardFrame(callId: bigint, h: { id: bigint; gen: number }): Uint8Array {
  return frame(callId, RequestBody.ForwardRequest, (b) => {
    const t = addTensor(b, xTensor);
    ForwardRequest.startForwardRequest(b);
    ForwardRequest.addNetwork(b, Handle.createHandle(b, h.id, h.gen));
    ForwardRequest.addInput(b, t);
    return ForwardRequest.endForwardRequest(b);
  });
}

const now = (): number => performance.now();
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}
const best = (xs: number[]): number => Math.min(...xs);

const runtime = detectRuntime();
const session = new Session({ connection: 1, maxFrameBytes: 256 << 20, runtime });
let last: Uint8Array = new Uint8Array(0);
const out = new Uint8Array(1 << 16);
// As the stdio loop's OutBuffer: the answer is copied into the output buffer.
const emit = (f: Uint8Array): void => {
  out.set(f.length <= out.length ? f : f.subarray(0, out.length));
  last = f;
};
let id = 1n;
session.handleFrame(
  frame(id++, RequestBody.HelloRequest, (b) => {
    HelloRequest.startHelloRequest(b);
    HelloRequest.addAbiVersion(b, AbiVersion.createAbiVersion(b, 1, 0, 0));
    return HelloRequest.endHelloRequest(b);
  }),
  emit,
);
session.handleFrame(
  frame(id++, RequestBody.NetworkCreateRequest, (b) => NetworkCreateRequest.createNetworkCreateRequest(b, b.createString(JSON.stringify(CONFIG)), 1n)),
  emit,
);
const created = Response.getRootAsResponse(new ByteBuffer(last.subarray(4)));
if (created.bodyType() !== ResponseBody.NetworkCreateResponse) throw new Error('NetworkCreate failed');
const hh = (created.body(new NetworkCreateResponse()) as NetworkCreateResponse).network()!.network()!;
const handle = { id: hh.id(), gen: hh.generation() };

const net = Network.fromJSON(CONFIG, { seed: 1 });
const input = xTensor;
const rb = new Builder(1 << 16);

const t = { handle: [] as number[], verify: [] as number[], forward: [] as number[], build: [] as number[] };
for (let done = -BATCH * 4; done < CALLS; done += BATCH) {
  const frames: Uint8Array[] = [];
  for (let i = 0; i < BATCH; i++) frames.push(forwardFrame(id++, handle));
  let t0 = now();
  for (const f of frames) session.handleFrame(f, emit);
  const th = (now() - t0) / BATCH;
  if (Response.getRootAsResponse(new ByteBuffer(last.subarray(4))).bodyType() !== ResponseBody.ForwardResponse) throw new Error('Forward failed');
  t0 = now();
  for (const f of frames) verifyRequestBuffer(f.subarray(4));
  const tv = (now() - t0) / BATCH;
  t0 = now();
  let y: Tensor | null = null;
  for (let i = 0; i < BATCH; i++) y = net.forward(input);
  const tf = (now() - t0) / BATCH;
  t0 = now();
  for (let i = 0; i < BATCH; i++) {
    rb.clear();
    const body = ForwardResponse.createForwardResponse(rb, addTensor(rb, y!));
    Response.startResponse(rb);
    Response.addCallId(rb, 1n);
    Response.addBodyType(rb, ResponseBody.ForwardResponse);
    Response.addBody(rb, body);
    rb.finish(Response.endResponse(rb), RESPONSE_IDENTIFIER, true);
    out.set(rb.asUint8Array());
  }
  const tb = (now() - t0) / BATCH;
  if (done < 0) continue; // warm-up batches
  t.handle.push(th * 1e3);
  t.verify.push(tv * 1e3);
  t.forward.push(tf * 1e3);
  t.build.push(tb * 1e3);
}
const h = best(t.handle), v = best(t.verify), f = best(t.forward), b = best(t.build);
const line =
  `runtime=${runtime.name} version=${runtime.version} calls=${t.handle.length * BATCH} handle_frame_us=${h.toFixed(2)} verify_us=${v.toFixed(2)} ` +
  `core_forward_us=${f.toFixed(2)} response_build_us=${b.toFixed(2)} rest_us=${(h - v - f - b).toFixed(2)} handle_frame_median_us=${median(t.handle).toFixed(2)}\n`;
const g = globalThis as unknown as { Deno?: { stdout: { writeSync(b: Uint8Array): number } }; process?: { stdout: { write(s: string): void } } };
if (g.Deno) g.Deno.stdout.writeSync(new TextEncoder().encode(line));
else g.process!.stdout.write(line);
