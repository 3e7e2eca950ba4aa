/**
 * The engine process: `heddle-engine [--socket PATH] [--max-frame-bytes N]
 * [--stdio-method auto|sync|deno|stream] [--verbose]`. Without --socket it serves one
 * client on stdin/stdout (the wrappers spawn it this way); with --socket it serves many
 * clients on a unix socket until SIGINT/SIGTERM. The same file runs on Node, Deno and Bun;
 * it is bundled to dist/heddle-engine.js.
 *
 * Never `import process from 'node:process'` here: in ESM that switches Node's stdio fds
 * to non-blocking. `process` is read from globalThis.
 */
import { writeSync } from 'node:fs';
import { DEFAULT_MAX_FRAME_BYTES } from './framing.ts';
import { detectRuntime } from './runtime.ts';
import { Session } from './session.ts';
import { serveSocket } from './socket.ts';
import { type StdioMethod, denoSyncIO, fsSyncIO, serveStream, serveSync } from './stdio.ts';

export interface EngineOptions {
  socket?: string;
  maxFrameBytes: number;
  stdioMethod: StdioMethod | 'auto';
  verbose: boolean;
}

export const ENGINE_USAGE = `usage: heddle-engine [--socket PATH] [--max-frame-bytes N] [--stdio-method auto|sync|deno|stream] [--verbose]
  Serves the Heddle ABI (schemas/heddle.fbs): on stdin/stdout by default, or on a unix
  socket (mode 0600, many clients) with --socket.`;

export class UsageError extends Error {}

export function parseEngineArgs(argv: readonly string[]): EngineOptions {
  const o: EngineOptions = { maxFrameBytes: DEFAULT_MAX_FRAME_BYTES, stdioMethod: 'auto', verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case '--socket':
        o.socket = value();
        break;
      case '--max-frame-bytes': {
        const v = value();
        const n = Number(v);
        if (!/^\d+$/.test(v) || n < 64 || n > 0xffffffff) throw new UsageError(`--max-frame-bytes must be an integer in [64, 2^32), got '${v}'`);
        o.maxFrameBytes = n;
        break;
      }
      case '--stdio-method': {
        const v = value();
        if (!['auto', 'sync', 'deno', 'stream'].includes(v)) throw new UsageError(`--stdio-method must be auto, sync, deno or stream, got '${v}'`);
        o.stdioMethod = v as EngineOptions['stdioMethod'];
        break;
      }
      case '--verbose':
        o.verbose = true;
        break;
      case '-h':
      case '--help':
        throw new UsageError('');
      default:
        throw new UsageError(`unknown argument '${a}'`);
    }
  }
  return o;
}

function logger(verbose: boolean): ((line: string) => void) | undefined {
  if (!verbose) return undefined;
  return (line) => {
    try {
      writeSync(2, `heddle-engine: ${line}\n`);
    } catch {
      // stderr gone; nothing to do
    }
  };
}

interface Proc {
  argv: string[];
  exitCode?: number;
  exit(code?: number): never;
  on(ev: string, f: () => void): void;
  env: Record<string, string | undefined>;
}

/** Runs the engine until its stdio ends (resolves with the exit status) or, with a socket, until a signal. */
export async function runEngine(o: EngineOptions): Promise<number> {
  const runtime = detectRuntime();
  const log = logger(o.verbose);
  if (o.socket) {
    const server = await serveSocket({ path: o.socket, maxFrameBytes: o.maxFrameBytes, runtime, log });
    const proc = (globalThis as unknown as { process: Proc }).process;
    return new Promise<number>((resolve) => {
      const stop = (): void => {
        void server.close().then(() => resolve(0));
      };
      proc.on('SIGINT', stop);
      proc.on('SIGTERM', stop);
    });
  }
  const session = new Session({ connection: 1, maxFrameBytes: o.maxFrameBytes, runtime, log });
  let method = o.stdioMethod;
  if (method === 'auto') method = 'sync';
  log?.(`serving stdio (${method}) on ${runtime.name} ${runtime.version}`);
  if (method === 'stream') return serveStream(session, o.maxFrameBytes);
  return serveSync(session, method === 'deno' ? denoSyncIO() : fsSyncIO(0, 1), o.maxFrameBytes);
}

/** The bundle's entry: argv after the script name. */
export async function engineMain(argv: readonly string[]): Promise<number> {
  let o: EngineOptions;
  try {
    o = parseEngineArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      writeSync(2, (e.message ? `heddle-engine: ${e.message}\n` : '') + ENGINE_USAGE + '\n');
      return e.message ? 2 : 0;
    }
    throw e;
  }
  try {
    return await runEngine(o);
  } catch (e) {
    writeSync(2, `heddle-engine: ${(e as Error)?.message ?? String(e)}\n`);
    return 1;
  }
}
