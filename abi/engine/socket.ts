/**
 * The unix-socket transport (`heddle serve --socket PATH`): one engine, many clients, each
 * connection with its own session (handshake, call ids, handles). The socket file is
 * created with mode 0600 (only its owner may connect). Requests of one connection are
 * handled in order; connections share the one JS thread, so a long call on the cpu backend
 * (training) delays the others until it finishes. A call on the webgpu backend waits for the
 * device without holding the thread: other connections are served meanwhile, and its own
 * connection's later requests wait (unread) until it is answered.
 */
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { type Server, type Socket, connect, createServer } from 'node:net';
import type { RuntimeInfo } from './runtime.ts';
import { type Emit, Session } from './session.ts';
import { FrameFeeder } from './stdio.ts';

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
    let closed = false;
    /** Inside a data event's handling, where writes are corked (not in a call answered later). */
    let corked = false;
    const emit: Emit = (f, urgent) => {
      if (closed) return;
      sock.write(f.slice());
      if (urgent && corked) {
        // Progress of a long call: send it now, not when the call ends.
        sock.uncork();
        sock.cork();
      }
      if (sock.writableLength > HIGH_WATER) sock.pause();
    };
    // While a call waits for the GPU, this client's requests are not read (they queue in the kernel).
    const feeder = new FrameFeeder(session, emit, o.maxFrameBytes, (busy) => {
      if (busy) sock.pause();
      else if (!closed && sock.writableLength <= HIGH_WATER) sock.resume();
    });
    log(`connection ${connection}: open`);
    sock.on('drain', () => {
      if (!feeder.waiting) sock.resume();
    });
    sock.on('data', (chunk: Buffer) => {
      // The answers to requests that arrived together leave together.
      sock.cork();
      corked = true;
      feeder.push(chunk);
      corked = false;
      sock.uncork();
    });
    sock.on('end', () =>
      feeder.end(() => {
        closed = true;
        sock.end();
      }),
    );
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
