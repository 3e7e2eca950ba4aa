/**
 * Test support for the engine: a fresh single-file bundle of the engine (built with
 * esbuild like dist/heddle-engine.mjs, so tests never run a stale dist), runtime commands,
 * and a raw client that writes arbitrary bytes and reads decoded response frames.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { Builder, ByteBuffer, type Offset } from 'flatbuffers';
import type { TensorData } from '../../core/tensor.ts';
import { FrameReader } from './framing.ts';
import { REQUEST_IDENTIFIER } from './generated/abi.ts';
import { AbiVersion } from './generated/fb/heddle/abi/abi-version.ts';
import { Error as FbError } from './generated/fb/heddle/abi/error.ts';
import { HelloRequest } from './generated/fb/heddle/abi/hello-request.ts';
import { Request } from './generated/fb/heddle/abi/request.ts';
import type { RequestBody } from './generated/fb/heddle/abi/request-body.ts';
import { Response } from './generated/fb/heddle/abi/response.ts';
import { ResponseBody } from './generated/fb/heddle/abi/response-body.ts';
import { verifyResponseBuffer } from './generated/verify.ts';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

let bundle: Promise<string> | null = null;

/**
 * Builds abi/engine/bin.ts into a fresh folder once per test process; returns the bundle's
 * path. The folder is inside the checkout (node_modules/.cache/heddle-engine-test/), so the
 * bundle resolves the optional `webgpu` package (the webgpu backend on Node and Bun) as
 * dist/heddle-engine.mjs does.
 */
export function engineBundle(): Promise<string> {
  bundle ??= (async () => {
    const parent = join(REPO, 'node_modules/.cache/heddle-engine-test');
    mkdirSync(parent, { recursive: true });
    const out = join(mkdtempSync(join(parent, 'b-')), 'heddle-engine.mjs');
    await build({
      entryPoints: [join(REPO, 'abi/engine/bin.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outfile: out,
      logLevel: 'error',
    });
    return out;
  })();
  return bundle;
}

export type RuntimeName = 'node' | 'bun' | 'deno';

export function runtimeBinary(rt: RuntimeName): string {
  if (rt === 'node') return process.execPath;
  return join(REPO, 'node_modules/.bin', rt);
}

/** The command running the engine bundle on a runtime. */
export async function engineCommandFor(rt: RuntimeName, args: string[] = []): Promise<string[]> {
  const b = await engineBundle();
  const bin = runtimeBinary(rt);
  if (rt !== 'node' && !existsSync(bin)) throw new Error(`${bin} is missing (npm ci installs it)`);
  return rt === 'deno' ? [bin, 'run', '-A', b, ...args] : [bin, b, ...args];
}

export interface Decoded {
  callId: bigint;
  type: ResponseBody;
  /** For Error responses. */
  code?: number;
  message?: string;
  where?: string;
  response: Response;
}

export function decodeResponse(body: Uint8Array): Decoded {
  verifyResponseBuffer(body);
  const r = Response.getRootAsResponse(new ByteBuffer(body));
  const d: Decoded = { callId: r.callId(), type: r.bodyType(), response: r };
  if (d.type === ResponseBody.Error) {
    const e = r.body(new FbError()) as FbError;
    d.code = e.code();
    d.message = e.message() ?? '';
    d.where = e.where() ?? '';
  }
  return d;
}

/** A request frame (size-prefixed, as the wire wants it). */
export function requestFrame(callId: bigint, type: RequestBody, build: ((b: Builder) => Offset) | null): Uint8Array {
  const b = new Builder(1024);
  const body = build ? build(b) : 0;
  Request.startRequest(b);
  Request.addCallId(b, callId);
  if (build) {
    Request.addBodyType(b, type);
    Request.addBody(b, body);
  }
  b.finish(Request.endRequest(b), REQUEST_IDENTIFIER, true);
  return b.asUint8Array().slice();
}

export function helloBody(major = 1, minor = 0, patch = 0): (b: Builder) => Offset {
  return (b) => {
    HelloRequest.startHelloRequest(b);
    HelloRequest.addAbiVersion(b, AbiVersion.createAbiVersion(b, major, minor, patch));
    return HelloRequest.endHelloRequest(b);
  };
}

/** An engine process driven byte by byte. */
export class RawEngine {
  private readonly reader = new FrameReader(0xffffffff);
  private readonly frames: Decoded[] = [];
  private waiters: (() => void)[] = [];
  exit: { code: number | null; signal: string | null } | null = null;
  private readonly exited: Promise<void>;
  stderr = '';

  private constructor(readonly child: ChildProcess) {
    child.stdout!.on('data', (chunk: Buffer) => {
      this.reader.push(chunk);
      for (let ev = this.reader.next(); ev; ev = this.reader.next()) {
        if (ev.kind === 'frame') this.frames.push(decodeResponse(ev.frame.subarray(4).slice()));
      }
      this.wake();
    });
    child.stderr?.on('data', (c: Buffer) => (this.stderr += c.toString()));
    child.stdin!.on('error', () => {});
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        this.wake();
        resolve();
      }),
    );
  }

  static async start(rt: RuntimeName = 'node', args: string[] = []): Promise<RawEngine> {
    const cmd = await engineCommandFor(rt, args);
    return new RawEngine(spawn(cmd[0], cmd.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] }));
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  send(bytes: Uint8Array): void {
    this.child.stdin!.write(bytes);
  }

  endInput(): void {
    this.child.stdin!.end();
  }

  /** The next response frame; rejects after `ms` or if the engine exits first. */
  async next(ms = 10_000): Promise<Decoded> {
    const deadline = Date.now() + ms;
    for (;;) {
      const f = this.frames.shift();
      if (f) return f;
      if (this.exit) throw new Error(`engine exited (${JSON.stringify(this.exit)}) with no frame pending; stderr: ${this.stderr}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no response frame in time');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Sends a frame and returns the next response. */
  async call(frame: Uint8Array): Promise<Decoded> {
    this.send(frame);
    return this.next();
  }

  async waitExit(ms = 10_000): Promise<{ code: number | null; signal: string | null }> {
    await Promise.race([this.exited, new Promise((r) => setTimeout(r, ms))]);
    if (!this.exit) throw new Error('engine did not exit in time');
    return this.exit;
  }

  kill(): void {
    if (!this.exit) this.child.kill('SIGKILL');
  }
}

export function sha256(data: Uint8Array | TensorData): string {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return createHash('sha256').update(bytes).digest('hex');
}

/** Deterministic pseudo-random values in [-1, 1) (xorshift32), for test inputs. */
export function testValues(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

export function randomBytes(n: number, seed: number): Uint8Array {
  const v = testValues(Math.ceil(n / 4), seed);
  return new Uint8Array(v.buffer).slice(0, n);
}
