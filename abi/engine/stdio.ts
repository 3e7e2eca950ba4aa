/**
 * The stdio transport: the engine reads request frames on fd 0 and writes response frames
 * on fd 1 (stderr is for logs only). One connection, the process's lifetime.
 *
 * Methods (measured in docs/abi.md; `--stdio-method` picks one, `auto` the fastest here):
 * - `sync`: blocking fs.readSync / fs.writeSync on the raw fds, one synchronous loop.
 *   Fastest on Node, Deno and Bun. Nothing may touch process.stdin / process.stdout (or
 *   console.log) in this mode: creating those streams switches the fds to non-blocking.
 *   EAGAIN (an fd left non-blocking by someone else) is handled by a short sleep and retry.
 * - `deno`: Deno.stdin.readSync / Deno.stdout.writeSync (Deno only).
 * - `stream`: process.stdin 'data' events and process.stdout.write (event loop driven).
 */
import { readSync, writeSync } from 'node:fs';
import { FrameReader } from './framing.ts';
import type { Emit, Session } from './session.ts';

export type StdioMethod = 'sync' | 'deno' | 'stream';

export interface SyncIO {
  /** Reads into buf[off, off+len); 0 at end of stream. */
  read(buf: Uint8Array, off: number, len: number): number;
  /** Writes all of bytes. */
  write(bytes: Uint8Array): void;
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
function sleepMs(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

function errCode(e: unknown): string {
  return (e as { code?: string })?.code ?? '';
}

/** Blocking reads and writes on raw file descriptors through node:fs. */
export function fsSyncIO(fdIn = 0, fdOut = 1): SyncIO {
  return {
    read(buf, off, len) {
      for (;;) {
        try {
          return readSync(fdIn, buf, off, len, null);
        } catch (e) {
          const c = errCode(e);
          if (c === 'EAGAIN' || c === 'EWOULDBLOCK') sleepMs(1);
          else if (c === 'EOF') return 0;
          else if (c === 'EINTR') continue;
          else throw e;
        }
      }
    },
    write(bytes) {
      let o = 0;
      while (o < bytes.length) {
        try {
          o += writeSync(fdOut, bytes, o, bytes.length - o);
        } catch (e) {
          const c = errCode(e);
          if (c === 'EAGAIN' || c === 'EWOULDBLOCK') sleepMs(1);
          else if (c !== 'EINTR') throw e;
        }
      }
    },
  };
}

interface DenoStdio {
  stdin: { readSync(p: Uint8Array): number | null };
  stdout: { writeSync(p: Uint8Array): number };
}

/** Deno's own synchronous stdio. */
export function denoSyncIO(): SyncIO {
  const D = (globalThis as unknown as { Deno?: DenoStdio }).Deno;
  if (!D) throw new Error('the deno stdio method needs Deno');
  return {
    read(buf, off, len) {
      return D.stdin.readSync(buf.subarray(off, off + len)) ?? 0;
    },
    write(bytes) {
      let o = 0;
      while (o < bytes.length) o += D.stdout.writeSync(bytes.subarray(o));
    },
  };
}

/**
 * Response frames of one read's requests, written with one write: pipelined requests that
 * arrive together are answered with one syscall. Progress frames go out at once.
 */
class OutBuffer {
  private buf = new Uint8Array(1 << 16);
  private len = 0;
  constructor(private readonly io: SyncIO) {}

  add(frame: Uint8Array, urgent = false): void {
    if (this.len + frame.length > this.buf.length) {
      if (this.len > 0 && frame.length <= this.buf.length) this.flush();
      if (frame.length > this.buf.length) {
        // Too big to gather: send what is pending, then the frame itself.
        this.flush();
        this.io.write(frame);
        return;
      }
    }
    this.buf.set(frame, this.len);
    this.len += frame.length;
    if (urgent) this.flush();
  }

  flush(): void {
    if (this.len === 0) return;
    const n = this.len;
    this.len = 0;
    this.io.write(this.buf.subarray(0, n));
  }
}

/**
 * Serves one session over a synchronous IO until end of stream. Resolves with the exit status.
 * The loop is synchronous while calls complete at once (cpu); a call that completes later
 * (webgpu) is awaited before the next frame is handled or the next read made, so the event
 * loop runs the GPU work and the frame's bytes stay in place.
 */
export async function serveSync(session: Session, io: SyncIO, maxFrameBytes: number): Promise<number> {
  const reader = new FrameReader(maxFrameBytes);
  const out = new OutBuffer(io);
  const emit: Emit = (f, urgent) => out.add(f, urgent);
  try {
    for (;;) {
      const [buf, off, len] = reader.readTarget();
      const n = io.read(buf, off, len);
      if (n === 0) {
        if (reader.midFrame) {
          session.frameTruncated(reader.describePartial(), emit);
          out.flush();
          return 3;
        }
        return 0;
      }
      reader.commit(n);
      for (let ev = reader.next(); ev; ev = reader.next()) {
        if (ev.kind === 'frame') {
          const later = session.handleFrame(ev.frame, emit);
          if (later) {
            // Answers so far go out before the wait.
            out.flush();
            await later;
          }
        } else session.frameTooLarge(ev.length, emit);
      }
      out.flush();
    }
  } catch (e) {
    // The client went away (EPIPE, ECONNRESET): nobody is left to answer.
    const c = errCode(e);
    if (c === 'EPIPE' || c === 'ECONNRESET' || c === 'EBADF') return 0;
    throw e;
  } finally {
    session.close();
  }
}

interface NodeStdio {
  stdin: { on(ev: string, f: (chunk?: Uint8Array) => void): void; resume(): void };
  stdout: { write(b: Uint8Array, cb?: () => void): boolean; end(cb?: () => void): void };
}

/** Serves one session on process.stdin / process.stdout streams. Resolves with the exit status at end of stream. */
export function serveStream(session: Session, maxFrameBytes: number): Promise<number> {
  const proc = (globalThis as unknown as { process: NodeStdio }).process;
  const emit: Emit = (f) => void proc.stdout.write(f.slice());
  const feeder = new FrameFeeder(session, emit, maxFrameBytes);
  return new Promise((resolve) => {
    proc.stdin.on('data', (chunk) => feeder.push(chunk!));
    proc.stdin.on('end', () =>
      feeder.end((truncated) => {
        session.close();
        proc.stdout.end(() => resolve(truncated ? 3 : 0));
      }),
    );
    proc.stdin.resume();
  });
}

/**
 * Feeds the chunks of a stream transport (socket, process.stdin) to a session, frames in
 * order. While a call is in flight (webgpu) new chunks wait aside, unread: the reader's
 * buffer, which holds the frame being served, is not touched until the call settles.
 */
export class FrameFeeder {
  private readonly reader: FrameReader;
  private readonly backlog: Uint8Array[] = [];
  private busy = false;
  private ending: ((truncated: boolean) => void) | null = null;

  constructor(
    private readonly session: Session,
    private readonly emit: Emit,
    maxFrameBytes: number,
    /** Told when a call starts waiting (true) and when the feeder is idle again (false). */
    private readonly onBusy?: (busy: boolean) => void,
  ) {
    this.reader = new FrameReader(maxFrameBytes);
  }

  /** True while a call is in flight. */
  get waiting(): boolean {
    return this.busy;
  }

  push(chunk: Uint8Array): void {
    if (this.busy) {
      this.backlog.push(chunk);
      return;
    }
    this.reader.push(chunk);
    this.drain();
  }

  /**
   * End of input: once every frame before it is answered, FRAME_TRUNCATED if the input
   * ended inside a frame, then `done(truncated)`.
   */
  end(done: (truncated: boolean) => void): void {
    this.ending = done;
    if (!this.busy) this.finish();
  }

  private drain(): void {
    for (;;) {
      for (let ev = this.reader.next(); ev; ev = this.reader.next()) {
        if (ev.kind === 'too_large') {
          this.session.frameTooLarge(ev.length, this.emit);
          continue;
        }
        const later = this.session.handleFrame(ev.frame, this.emit);
        if (later) {
          this.busy = true;
          this.onBusy?.(true);
          const next = (): void => {
            this.busy = false;
            this.drain();
            if (!this.busy) {
              this.onBusy?.(false);
              if (this.ending) this.finish();
            }
          };
          void later.then(next, next);
          return;
        }
      }
      const next = this.backlog.shift();
      if (!next) return;
      this.reader.push(next);
    }
  }

  private finish(): void {
    const done = this.ending!;
    this.ending = null;
    const truncated = this.reader.midFrame;
    if (truncated) this.session.frameTruncated(this.reader.describePartial(), this.emit);
    done(truncated);
  }
}
