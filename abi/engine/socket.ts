/**
 * The unix-socket transport (`heddle serve --socket PATH`): one engine, many clients, each
 * connection with its own session (handshake, call ids, handles). The socket file is
 * created with mode 0600 (only its owner may connect). Requests of one connection are
 * handled in order; connections share the one JS thread, so a long call (training)
 * delays the others until it finishes.
 */
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { type Server, type Socket, connect, createServer } from 'node:net';
import { FrameReader } from './framing.ts';
import type { RuntimeInfo } from './runtime.ts';
import { type Emit, Session } from './session.ts';

export interface SocketServerOptions {
  path: string;
  maxFrameBytes: number;
  runtime: RuntimeInfo;
  log?: (line: string) => void;
}

export interface SocketServer {
  readonly path: string;
  /** Live connections. */
  readonly connections: number;
  close(): Promise<void>;
}

/** Bytes queued for a slow reader before the engine stops reading that client's requests. */
const HIGH_WATER = 16 * 1024 * 1024;

function isLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

interface Umask {
  umask?: (mask?: number) => number;
}

export async function serveSocket(o: SocketServerOptions): Promise<SocketServer> {
  const log = o.log ?? (() => {});
  let stat: ReturnType<typeof lstatSync> | null = null;
  try {
    stat = lstatSync(o.path);
  } catch {
    stat = null;
  }
  if (stat) {
    if (!stat.isSocket()) throw new Error(`${o.path} exists and is not a socket; remove it or choose another path`);
    if (await isLive(o.path)) throw new Error(`an engine is already serving ${o.path}`);
    unlinkSync(o.path); // a stale socket left by an engine that died
  }
  let next = 1;
  const live = new Set<Socket>();
  // allowHalfOpen: a client may send its requests, shut down its side, and still read the answers.
  const server: Server = createServer({ allowHalfOpen: true }, (sock) => {
    const connection = next++;
    live.add(sock);
    const session = new Session({ connection, maxFrameBytes: o.maxFrameBytes, runtime: o.runtime, log });
    const reader = new FrameReader(o.maxFrameBytes);
    let closed = false;
    const emit: Emit = (f, urgent) => {
      if (closed) return;
      sock.write(f.slice());
      if (urgent) {
        // Progress of a long call: send it now, not when the call ends.
        sock.uncork();
        sock.cork();
      }
      if (sock.writableLength > HIGH_WATER) sock.pause();
    };
    log(`connection ${connection}: open`);
    sock.on('drain', () => sock.resume());
    sock.on('data', (chunk: Buffer) => {
      reader.push(chunk);
      // The answers to requests that arrived together leave together.
      sock.cork();
      for (let ev = reader.next(); ev; ev = reader.next()) {
        if (ev.kind === 'frame') session.handleFrame(ev.frame, emit);
        else session.frameTooLarge(ev.length, emit);
      }
      sock.uncork();
    });
    sock.on('end', () => {
      if (reader.midFrame) session.frameTruncated(reader.describePartial(), emit);
      closed = true;
      sock.end();
    });
    sock.on('error', () => {
      closed = true;
    });
    sock.on('close', () => {
      closed = true;
      live.delete(sock);
      session.close();
      log(`connection ${connection}: closed`);
    });
  });
  // Create the socket file owner-only from the start (umask), then make sure of it (chmod).
  const proc = (globalThis as unknown as { process?: Umask }).process;
  let old: number | undefined;
  try {
    old = proc?.umask?.(0o177);
  } catch {
    old = undefined;
  }
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.path, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    if (old !== undefined) proc?.umask?.(old);
  }
  chmodSync(o.path, 0o600);
  log(`serving ${o.path}`);
  return {
    path: o.path,
    get connections() {
      return live.size;
    },
    close() {
      return new Promise<void>((resolve) => {
        for (const s of live) s.destroy();
        server.close(() => {
          try {
            unlinkSync(o.path);
          } catch {
            // already gone
          }
          resolve();
        });
      });
    },
  };
}
