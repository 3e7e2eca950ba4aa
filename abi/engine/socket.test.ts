/**
 * The unix-socket transport: `--socket PATH` serves several clients at once, each with its
 * own handles, on a socket file of mode 0600; a bad connection closes alone.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Tensor } from '../../core/tensor.ts';
import { Engine, ErrorCode, HeddleEngineError, RemoteNetwork } from '../client/client.ts';
import { FrameReader } from './framing.ts';
import { RequestBody } from './generated/fb/heddle/abi/request-body.ts';
import { ResponseBody } from './generated/fb/heddle/abi/response-body.ts';
import { type RuntimeName, decodeResponse, engineCommandFor, helloBody, requestFrame, sha256, testValues } from './testing.ts';

const CONFIG = { layers: [{ type: 'dense', input_height: 8, output_height: 4, activation: 'sigmoid' }] };
const dir = mkdtempSync(join(tmpdir(), 'heddle-sock-'));
const servers: ChildProcess[] = [];

afterAll(() => {
  for (const s of servers) if (s.exitCode === null) s.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

async function serve(rt: RuntimeName, path: string): Promise<{ child: ChildProcess; stderr: () => string }> {
  const cmd = await engineCommandFor(rt, ['--socket', path]);
  const child = spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  servers.push(child);
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const deadline = Date.now() + 15_000;
  while (!(existsSync(path) && statSync(path).isSocket() && (await accepts(path)))) {
    if (child.exitCode !== null) throw new Error(`server exited: ${err}`);
    if (Date.now() > deadline) throw new Error(`server did not create ${path}: ${err}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { child, stderr: () => err };
}

function accepts(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

function exited(child: ChildProcess): Promise<number | null> {
  return child.exitCode !== null ? Promise.resolve(child.exitCode) : new Promise((r) => child.once('exit', (code) => r(code)));
}

for (const rt of ['node', 'deno', 'bun'] as RuntimeName[]) {
  describe(`socket transport on ${rt}`, () => {
    it('serves two clients at once, each with its own handles, on a 0600 socket', async () => {
      const path = join(dir, `${rt}.sock`);
      const { child } = await serve(rt, path);
      expect(statSync(path).mode & 0o777).toBe(0o600);
      const a = await Engine.connect(path);
      const b = await Engine.connect(path);
      expect(a.info.runtime).toBe(rt);
      expect(a.info.connection).not.toBe(b.info.connection);
      const na = await a.createNetwork(CONFIG, { seed: 1 });
      const nb = await b.createNetwork(CONFIG, { seed: 2 });
      // Same slot number on each connection, different ids: handles are per connection.
      expect(na.handle.id).not.toBe(nb.handle.id);
      expect(na.handle.id & 0xffffffffn).toBe(nb.handle.id & 0xffffffffn);
      // A's handle on B's connection is foreign.
      const stolen = new RemoteNetwork(b, na.info);
      await expect(stolen.forward(new Tensor([1, 8], testValues(8, 1)))).rejects.toMatchObject({ code: ErrorCode.HANDLE_FOREIGN });
      // Interleaved pipelined calls from both clients.
      const xs = Array.from({ length: 50 }, (_, i) => new Tensor([2, 8], testValues(16, 100 + i)));
      const [ya, yb] = await Promise.all([Promise.all(xs.map((x) => na.forward(x))), Promise.all(xs.map((x) => nb.forward(x)))]);
      expect(sha256(ya[7].data)).toBe(sha256((await na.forward(xs[7])).data));
      expect(sha256(ya[7].data)).not.toBe(sha256(yb[7].data));
      // Closing A leaves B serving.
      await a.close();
      expect((await nb.forward(xs[0])).shape).toEqual([2, 4]);
      await b.close();
      // A second server on a live socket refuses.
      const dup = spawn(...((c) => [c[0], c.slice(1)] as const)(await engineCommandFor(rt, ['--socket', path])), { stdio: ['ignore', 'ignore', 'pipe'] });
      let dupErr = '';
      dup.stderr!.on('data', (c: Buffer) => (dupErr += c.toString()));
      expect(await exited(dup)).toBe(1);
      expect(dupErr).toMatch(/already serving/);
      child.kill('SIGTERM');
      expect(await exited(child)).toBe(0);
      expect(existsSync(path)).toBe(false);
    });
  });
}

describe('socket transport: failures stay on their connection', () => {
  it('a connection that ends inside a frame gets FRAME_TRUNCATED and closes; others keep serving', async () => {
    const path = join(dir, 'trunc.sock');
    const { child } = await serve('node', path);
    const good = await Engine.connect(path);
    const net = await good.createNetwork(CONFIG);
    const frames: ReturnType<typeof decodeResponse>[] = [];
    await new Promise<void>((resolve) => {
      const s = connect(path, () => {
        const hello = requestFrame(1n, RequestBody.HelloRequest, helloBody());
        s.write(hello);
        s.end(hello.subarray(0, 10)); // the next frame never completes
      });
      const reader = new FrameReader();
      s.on('data', (c: Buffer) => {
        reader.push(c);
        for (let ev = reader.next(); ev; ev = reader.next()) if (ev.kind === 'frame') frames.push(decodeResponse(ev.frame.subarray(4).slice()));
      });
      s.on('close', () => resolve());
    });
    expect(frames.map((f) => f.type)).toEqual([ResponseBody.HelloResponse, ResponseBody.Error]);
    expect(frames[1].code).toBe(ErrorCode.FRAME_TRUNCATED);
    expect((await net.forward(new Tensor([1, 8], testValues(8, 3)))).shape).toEqual([1, 4]);
    await good.close();
    child.kill('SIGTERM');
    await exited(child);
  });

  it('replaces a stale socket file, refuses a path that is not a socket', async () => {
    const path = join(dir, 'stale.sock');
    const first = await serve('node', path);
    first.child.kill('SIGKILL'); // leaves the socket file behind
    await exited(first.child);
    expect(existsSync(path)).toBe(true);
    const second = await serve('node', path);
    const c = await Engine.connect(path);
    expect(c.info.runtime).toBe('node'); // the new engine answers
    await c.close();
    second.child.kill('SIGTERM');
    await exited(second.child);

    const file = join(dir, 'plain-file');
    writeFileSync(file, 'x');
    const cmd = await engineCommandFor('node', ['--socket', file]);
    const p = spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    expect(await exited(p)).toBe(1);
    expect(err).toMatch(/exists and is not a socket/);
  });

  it('a client sees ENGINE_EXITED when the server dies', async () => {
    const path = join(dir, 'die.sock');
    const { child } = await serve('node', path);
    const c = await Engine.connect(path);
    const net = await c.createNetwork(CONFIG);
    child.kill('SIGKILL');
    const err = await (async () => {
      for (;;) {
        try {
          await net.forward(new Tensor([1, 8], testValues(8, 3)));
          await new Promise((r) => setTimeout(r, 10));
        } catch (e) {
          return e;
        }
      }
    })();
    expect(err).toBeInstanceOf(HeddleEngineError);
    expect((err as HeddleEngineError).code).toBe(ErrorCode.ENGINE_EXITED);
  });
});
