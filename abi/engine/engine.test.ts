/**
 * The engine process over stdio (Node): every bad-input case of the ABI gets an Error with
 * a precise code and the connection keeps serving; pipelining; the handshake rules.
 */
import { Builder } from 'flatbuffers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DType } from './generated/fb/heddle/abi/dtype.ts';
import { ErrorCode } from './generated/fb/heddle/abi/error-code.ts';
import { ForwardRequest } from './generated/fb/heddle/abi/forward-request.ts';
import { Handle } from './generated/fb/heddle/abi/handle.ts';
import { NetworkCreateRequest } from './generated/fb/heddle/abi/network-create-request.ts';
import { NetworkFreeRequest } from './generated/fb/heddle/abi/network-free-request.ts';
import { RequestBody } from './generated/fb/heddle/abi/request-body.ts';
import { ResponseBody } from './generated/fb/heddle/abi/response-body.ts';
import { Tensor as FbTensor } from './generated/fb/heddle/abi/tensor.ts';
import { NetworkCreateResponse } from './generated/fb/heddle/abi/network-create-response.ts';
import { Response } from './generated/fb/heddle/abi/response.ts';
import { addBytes, addShape } from './tensors.ts';
import { type Decoded, RawEngine, engineCommandFor, helloBody, randomBytes, requestFrame } from './testing.ts';

const CONFIG = { layers: [{ type: 'dense', input_height: 4, output_height: 3, activation: 'tanh' }, { type: 'dense', input_height: 3, output_height: 2 }] };

function codeName(d: Decoded): string {
  return d.type === ResponseBody.Error ? (ErrorCode[d.code as ErrorCode] ?? String(d.code)) : `ok:${ResponseBody[d.type]}`;
}

function createFrame(id: bigint, config: unknown, seed = 1n): Uint8Array {
  return requestFrame(id, RequestBody.NetworkCreateRequest, (b) => NetworkCreateRequest.createNetworkCreateRequest(b, b.createString(typeof config === 'string' ? config : JSON.stringify(config)), seed));
}

interface RawTensor {
  shape: (number | bigint)[];
  dtype?: number;
  bytes: Uint8Array;
}

function tensorOf(b: Builder, t: RawTensor): number {
  const data = addBytes(b, t.bytes, 16);
  b.startVector(8, t.shape.length, 8);
  for (let i = t.shape.length - 1; i >= 0; i--) b.addInt64(BigInt(t.shape[i]));
  const shape = b.endVector();
  FbTensor.startTensor(b);
  FbTensor.addShape(b, shape);
  if (t.dtype !== undefined) {
    b.forceDefaults(true);
    FbTensor.addDtype(b, t.dtype);
    b.forceDefaults(false);
  }
  FbTensor.addData(b, data);
  return FbTensor.endTensor(b);
}

function forwardFrame(id: bigint, h: { id: bigint; generation: number }, t: RawTensor): Uint8Array {
  return requestFrame(id, RequestBody.ForwardRequest, (b) => {
    const x = tensorOf(b, t);
    ForwardRequest.startForwardRequest(b);
    ForwardRequest.addNetwork(b, Handle.createHandle(b, h.id, h.generation));
    ForwardRequest.addInput(b, x);
    return ForwardRequest.endForwardRequest(b);
  });
}

function freeFrame(id: bigint, h: { id: bigint; generation: number }): Uint8Array {
  return requestFrame(id, RequestBody.NetworkFreeRequest, (b) => {
    NetworkFreeRequest.startNetworkFreeRequest(b);
    NetworkFreeRequest.addNetwork(b, Handle.createHandle(b, h.id, h.generation));
    return NetworkFreeRequest.endNetworkFreeRequest(b);
  });
}

function f32Bytes(values: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(values).buffer);
}

function handleOf(d: Decoded): { id: bigint; generation: number } {
  const r = d.response.body(new NetworkCreateResponse()) as NetworkCreateResponse;
  const h = r.network()!.network()!;
  return { id: h.id(), generation: h.generation() };
}

describe('engine over stdio: bad input', () => {
  let e: RawEngine;
  let id = 1n;
  let net: { id: bigint; generation: number };
  const nextId = (): bigint => id++;

  /** The engine still answers a normal call after the bad one. */
  async function stillServing(): Promise<void> {
    const r = await e.call(forwardFrame(nextId(), net, { shape: [1, 4], bytes: f32Bytes([1, 2, 3, 4]) }));
    expect(codeName(r)).toBe('ok:ForwardResponse');
  }

  beforeAll(async () => {
    e = await RawEngine.start('node', ['--max-frame-bytes', '65536']);
    const hello = await e.call(requestFrame(nextId(), RequestBody.HelloRequest, helloBody()));
    expect(codeName(hello)).toBe('ok:HelloResponse');
    const created = await e.call(createFrame(nextId(), CONFIG));
    expect(codeName(created)).toBe('ok:NetworkCreateResponse');
    net = handleOf(created);
  });
  afterAll(() => e.kill());

  it('a frame holding a truncated FlatBuffer: FRAME_INVALID, still serving', async () => {
    const full = forwardFrame(nextId(), net, { shape: [1, 4], bytes: f32Bytes([1, 2, 3, 4]) });
    const body = full.subarray(4, 4 + Math.floor((full.length - 4) / 2));
    const frame = new Uint8Array(4 + body.length);
    new DataView(frame.buffer).setUint32(0, body.length, true);
    frame.set(body, 4);
    const r = await e.call(frame);
    expect(codeName(r)).toBe('FRAME_INVALID');
    expect(r.callId).toBe(0n);
    await stillServing();
  });

  it('a length prefix over the cap: FRAME_TOO_LARGE, the bytes are skipped, still serving', async () => {
    const len = 100_000;
    const frame = new Uint8Array(4 + len);
    new DataView(frame.buffer).setUint32(0, len, true);
    frame.set(randomBytes(len, 7), 4);
    const r = await e.call(frame);
    expect(codeName(r)).toBe('FRAME_TOO_LARGE');
    expect(r.message).toMatch(/100000 bytes is over the engine's cap of 65536/);
    await stillServing();
  });

  it('random bytes in a frame: FRAME_INVALID, still serving', async () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const body = randomBytes(64 + seed * 37, seed);
      const frame = new Uint8Array(4 + body.length);
      new DataView(frame.buffer).setUint32(0, body.length, true);
      frame.set(body, 4);
      const r = await e.call(frame);
      expect(codeName(r)).toBe('FRAME_INVALID');
    }
    // Tiny frames, shorter than any FlatBuffer.
    for (const n of [0, 1, 7]) {
      const frame = new Uint8Array(4 + n);
      new DataView(frame.buffer).setUint32(0, n, true);
      expect(codeName(await e.call(frame))).toBe('FRAME_INVALID');
    }
    await stillServing();
  });

  it('a response frame sent to the engine: FRAME_INVALID naming it', async () => {
    const b = new Builder(64);
    Response.startResponse(b);
    Response.addCallId(b, 5n);
    b.finish(Response.endResponse(b), 'HDRS', true);
    const r = await e.call(b.asUint8Array());
    expect(codeName(r)).toBe('FRAME_INVALID');
    expect(r.message).toMatch(/Response frame/);
    await stillServing();
  });

  it('a union type that is not a call: REQUEST_UNKNOWN; none at all: REQUEST_UNKNOWN', async () => {
    const unknown = requestFrame(nextId(), 99 as RequestBody, (b) => NetworkFreeRequest.createNetworkFreeRequest(b, 0));
    const r1 = await e.call(unknown);
    expect(codeName(r1)).toBe('REQUEST_UNKNOWN');
    expect(r1.callId).toBe(id - 1n);
    const none = requestFrame(nextId(), RequestBody.NONE, null);
    expect(codeName(await e.call(none))).toBe('REQUEST_UNKNOWN');
    await stillServing();
  });

  it('a union type whose table is another call\'s: FRAME_INVALID (required fields missing)', async () => {
    // Type says Forward, the table is a NetworkCreateRequest: the verifier finds no network/input.
    const frame = requestFrame(nextId(), RequestBody.ForwardRequest, (b) => NetworkCreateRequest.createNetworkCreateRequest(b, b.createString('{}'), 0n));
    const r = await e.call(frame);
    expect(codeName(r)).toBe('FRAME_INVALID');
    // Its string field is read where ForwardRequest keeps its 16-byte handle: out of bounds.
    expect(r.message).toMatch(/not a valid Heddle request: ForwardRequest/);
    await stillServing();
  });

  it('a duplicate (or older, or zero) call id: DUPLICATE_CALL_ID', async () => {
    await stillServing();
    const used = id - 1n;
    const r = await e.call(forwardFrame(used, net, { shape: [1, 4], bytes: f32Bytes([1, 2, 3, 4]) }));
    expect(codeName(r)).toBe('DUPLICATE_CALL_ID');
    expect(r.callId).toBe(used);
    expect(codeName(await e.call(forwardFrame(0n, net, { shape: [1, 4], bytes: f32Bytes([1, 2, 3, 4]) })))).toBe('DUPLICATE_CALL_ID');
    expect(codeName(await e.call(forwardFrame(1n, net, { shape: [1, 4], bytes: f32Bytes([1, 2, 3, 4]) })))).toBe('DUPLICATE_CALL_ID');
    await stillServing();
  });

  it('unknown, foreign, stale and double-freed handles', async () => {
    const x = { shape: [1, 4], bytes: f32Bytes([1, 2, 3, 4]) };
    // Never issued on this connection (slot 999).
    expect(codeName(await e.call(forwardFrame(nextId(), { id: (1n << 32n) | 999n, generation: 1 }, x)))).toBe('HANDLE_UNKNOWN');
    expect(codeName(await e.call(forwardFrame(nextId(), { id: 0n, generation: 0 }, x)))).toBe('HANDLE_UNKNOWN');
    // A future generation of a live slot was never issued either.
    expect(codeName(await e.call(forwardFrame(nextId(), { id: net.id, generation: net.generation + 5 }, x)))).toBe('HANDLE_UNKNOWN');
    // Connection 2's handle on connection 1.
    expect(codeName(await e.call(forwardFrame(nextId(), { id: (2n << 32n) | 1n, generation: 1 }, x)))).toBe('HANDLE_FOREIGN');
    // Freed: stale for use, double free for a second free.
    const created = await e.call(createFrame(nextId(), CONFIG));
    const h = handleOf(created);
    expect(codeName(await e.call(freeFrame(nextId(), h)))).toBe('ok:NetworkFreeResponse');
    expect(codeName(await e.call(forwardFrame(nextId(), h, x)))).toBe('HANDLE_STALE');
    expect(codeName(await e.call(freeFrame(nextId(), h)))).toBe('HANDLE_DOUBLE_FREE');
    // The slot is reused with a new generation; the old handle stays stale.
    const again = handleOf(await e.call(createFrame(nextId(), CONFIG)));
    expect(again.id).toBe(h.id);
    expect(again.generation).toBe(h.generation + 1);
    expect(codeName(await e.call(forwardFrame(nextId(), h, x)))).toBe('HANDLE_STALE');
    expect(codeName(await e.call(freeFrame(nextId(), h)))).toBe('HANDLE_DOUBLE_FREE');
    expect(codeName(await e.call(forwardFrame(nextId(), again, x)))).toBe('ok:ForwardResponse');
    await stillServing();
  });

  it('a tensor whose shape and byte length disagree: TENSOR_INVALID', async () => {
    const r = await e.call(forwardFrame(nextId(), net, { shape: [2, 4], bytes: f32Bytes([1, 2, 3, 4]) }));
    expect(codeName(r)).toBe('TENSOR_INVALID');
    expect(r.message).toMatch(/needs 32 bytes of data, the tensor has 16/);
    expect(codeName(await e.call(forwardFrame(nextId(), net, { shape: [1, -4], bytes: f32Bytes([1, 2, 3, 4]) })))).toBe('TENSOR_INVALID');
    await stillServing();
  });

  it('a wrong dtype: DTYPE_INVALID', async () => {
    const i32 = await e.call(forwardFrame(nextId(), net, { shape: [1, 4], dtype: DType.I32, bytes: new Uint8Array(new Int32Array([1, 2, 3, 4]).buffer) }));
    expect(codeName(i32)).toBe('DTYPE_INVALID');
    expect(i32.message).toMatch(/dtype I32; this argument takes F32/);
    const bogus = await e.call(forwardFrame(nextId(), net, { shape: [1, 4], dtype: 77, bytes: f32Bytes([1, 2, 3, 4]) }));
    expect(codeName(bogus)).toBe('DTYPE_INVALID');
    expect(bogus.message).toMatch(/77 \(not a DType\)/);
    await stillServing();
  });

  it('a request for a huge allocation: RESOURCE_LIMIT', async () => {
    const huge = await e.call(forwardFrame(nextId(), net, { shape: [2 ** 31, 2 ** 31], bytes: f32Bytes([1, 2, 3, 4]) }));
    expect(codeName(huge)).toBe('RESOURCE_LIMIT');
    const hugeNet = await e.call(createFrame(nextId(), { layers: [{ type: 'dense', input_height: 10_000_000, output_height: 1_000_000 }] }));
    expect(codeName(hugeNet)).toBe('RESOURCE_LIMIT');
    await stillServing();
  });

  it('an invalid network config: CONFIG_INVALID with where', async () => {
    const bad = await e.call(createFrame(nextId(), { layers: [{ type: 'dense', input_height: 4, output_height: -3 }] }));
    expect(codeName(bad)).toBe('CONFIG_INVALID');
    expect(bad.message).toMatch(/output_height/);
    expect(codeName(await e.call(createFrame(nextId(), '{"layers": [')))).toBe('CONFIG_INVALID');
    expect(codeName(await e.call(createFrame(nextId(), { layers: [{ type: 'no_such_layer' }] })))).toBe('CONFIG_INVALID');
    expect(codeName(await e.call(createFrame(nextId(), CONFIG, 2n ** 60n)))).toBe('ARGUMENT_INVALID');
    await stillServing();
  });

  it('an input the network cannot take: SHAPE_MISMATCH / INPUT_INVALID', async () => {
    expect(codeName(await e.call(forwardFrame(nextId(), net, { shape: [1, 5], bytes: f32Bytes([1, 2, 3, 4, 5]) })))).toBe('SHAPE_MISMATCH');
    expect(codeName(await e.call(forwardFrame(nextId(), net, { shape: [1, 4], bytes: f32Bytes([1, NaN, 3, 4]) })))).toBe('INPUT_INVALID');
    await stillServing();
  });

  it('pipelined requests are answered in order', async () => {
    const n = 200;
    const frames: Uint8Array[] = [];
    const first = id;
    for (let i = 0; i < n; i++) frames.push(forwardFrame(nextId(), net, { shape: [1, 4], bytes: f32Bytes([i, 1, 2, 3]) }));
    const all = new Uint8Array(frames.reduce((s, f) => s + f.length, 0));
    let o = 0;
    for (const f of frames) {
      all.set(f, o);
      o += f.length;
    }
    e.send(all);
    for (let i = 0; i < n; i++) {
      const r = await e.next();
      expect(codeName(r)).toBe('ok:ForwardResponse');
      expect(r.callId).toBe(first + BigInt(i));
    }
  });
});

describe('engine over stdio: handshake and stream end', () => {
  it('refuses calls before Hello, and an incompatible ABI major, politely', async () => {
    const e = await RawEngine.start('node');
    try {
      expect(codeName(await e.call(createFrame(1n, CONFIG)))).toBe('HANDSHAKE_REQUIRED');
      const wrong = await e.call(requestFrame(2n, RequestBody.HelloRequest, helloBody(2, 0, 0)));
      expect(codeName(wrong)).toBe('ABI_INCOMPATIBLE');
      expect(wrong.message).toMatch(/client speaks ABI 2\.0\.0, this engine speaks ABI 1\.0\.0/);
      expect(codeName(await e.call(createFrame(3n, CONFIG)))).toBe('HANDSHAKE_REQUIRED');
      // A newer minor of the same major is accepted.
      expect(codeName(await e.call(requestFrame(4n, RequestBody.HelloRequest, helloBody(1, 7, 0))))).toBe('ok:HelloResponse');
      expect(codeName(await e.call(createFrame(5n, CONFIG)))).toBe('ok:NetworkCreateResponse');
    } finally {
      e.kill();
    }
  });

  it('a stream ending inside a frame: a final FRAME_TRUNCATED, then the engine exits', async () => {
    const e = await RawEngine.start('node');
    expect(codeName(await e.call(requestFrame(1n, RequestBody.HelloRequest, helloBody())))).toBe('ok:HelloResponse');
    const frame = createFrame(2n, CONFIG);
    e.send(frame.subarray(0, frame.length - 5));
    e.endInput();
    const r = await e.next();
    expect(codeName(r)).toBe('FRAME_TRUNCATED');
    expect(r.message).toMatch(/stream ended after \d+ of the frame's \d+ bytes/);
    expect((await e.waitExit()).code).toBe(3);
  });

  it('a clean end of input: the engine exits 0', async () => {
    const e = await RawEngine.start('node');
    expect(codeName(await e.call(requestFrame(1n, RequestBody.HelloRequest, helloBody())))).toBe('ok:HelloResponse');
    e.endInput();
    expect((await e.waitExit()).code).toBe(0);
  });

  it('raw junk that is no frame at all gets an answer and never crashes the engine', async () => {
    const e = await RawEngine.start('node', ['--max-frame-bytes', '1024']);
    e.send(new TextEncoder().encode('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    const r = await e.next();
    expect(codeName(r)).toBe('FRAME_TOO_LARGE'); // "GET " read as a length
    e.endInput();
    expect(codeName(await e.next())).toBe('FRAME_TRUNCATED');
    expect((await e.waitExit()).code).toBe(3);
  });
});

for (const rt of ['deno', 'bun'] as const) {
  describe(`engine over stdio on ${rt}: bad input`, () => {
    it('answers bad frames with precise codes, keeps serving, and closes only on a truncated stream', async () => {
      const e = await RawEngine.start(rt, ['--max-frame-bytes', '4096']);
      try {
        expect(codeName(await e.call(requestFrame(1n, RequestBody.HelloRequest, helloBody())))).toBe('ok:HelloResponse');
        const created = await e.call(createFrame(2n, CONFIG));
        const h = handleOf(created);
        const x = { shape: [1, 4], bytes: f32Bytes([1, 2, 3, 4]) };
        const big = new Uint8Array(4 + 5000);
        new DataView(big.buffer).setUint32(0, 5000, true);
        expect(codeName(await e.call(big))).toBe('FRAME_TOO_LARGE');
        const junk = randomBytes(100, 9);
        const jf = new Uint8Array(104);
        new DataView(jf.buffer).setUint32(0, 100, true);
        jf.set(junk, 4);
        expect(codeName(await e.call(jf))).toBe('FRAME_INVALID');
        expect(codeName(await e.call(forwardFrame(2n, h, x)))).toBe('DUPLICATE_CALL_ID');
        expect(codeName(await e.call(forwardFrame(3n, h, { shape: [3, 4], bytes: x.bytes })))).toBe('TENSOR_INVALID');
        expect(codeName(await e.call(forwardFrame(4n, h, { ...x, dtype: DType.I64 })))).toBe('DTYPE_INVALID');
        expect(codeName(await e.call(freeFrame(5n, h)))).toBe('ok:NetworkFreeResponse');
        expect(codeName(await e.call(forwardFrame(6n, h, x)))).toBe('HANDLE_STALE');
        expect(codeName(await e.call(freeFrame(7n, h)))).toBe('HANDLE_DOUBLE_FREE');
        expect(codeName(await e.call(createFrame(8n, { layers: [] })))).toBe('CONFIG_INVALID');
        const last = createFrame(9n, CONFIG);
        e.send(last.subarray(0, 7));
        e.endInput();
        expect(codeName(await e.next())).toBe('FRAME_TRUNCATED');
        expect((await e.waitExit()).code).toBe(3);
      } finally {
        e.kill();
      }
    });
  });
}
