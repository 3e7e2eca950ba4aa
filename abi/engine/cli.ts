/**
 * The engine's commands for the `heddle` CLI: `heddle serve --socket PATH` (one engine,
 * many clients on a unix socket) and `heddle engine` (one client on stdin/stdout, what the
 * wrappers spawn; the same as running dist/heddle-engine.mjs).
 */
import { type Command, Option } from 'commander';
import { HeddleError } from '../../core/errors.ts';
import { DEFAULT_MAX_FRAME_BYTES } from './framing.ts';
import { runEngine } from './main.ts';

function parseFrameCap(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 64 || n > 0xffffffff) throw new HeddleError('CONFIG_INVALID', `expected an integer in [64, 2^32), got '${v}'`, '--max-frame-bytes');
  return n;
}

interface EngineCliOpts {
  socket?: string;
  maxFrameBytes: number;
  stdioMethod?: 'auto' | 'sync' | 'deno' | 'stream';
  verbose?: boolean;
}

/** The CLI sets exit status 0 after a command returns; an engine's non-zero status must survive that. */
function exitOnFailure(code: number): void {
  if (code !== 0) process.exit(code);
}

export function registerEngineCommands(program: Command): void {
  program
    .command('serve')
    .description('serve the Heddle ABI on a unix socket (mode 0600) for many clients, until SIGINT/SIGTERM')
    .requiredOption('--socket <path>', 'socket file to create')
    .option('--max-frame-bytes <n>', 'largest request frame accepted', parseFrameCap, DEFAULT_MAX_FRAME_BYTES)
    .option('--verbose', 'log connections and internal errors on stderr')
    .action(async (o: EngineCliOpts) => {
      exitOnFailure(await runEngine({ socket: o.socket, maxFrameBytes: o.maxFrameBytes, stdioMethod: 'auto', verbose: !!o.verbose }));
    });

  program
    .command('engine')
    .description('serve the Heddle ABI to one client on stdin/stdout (what the wrappers spawn)')
    .option('--max-frame-bytes <n>', 'largest request frame accepted', parseFrameCap, DEFAULT_MAX_FRAME_BYTES)
    .addOption(new Option('--stdio-method <m>', 'how stdio is read and written').choices(['auto', 'sync', 'deno', 'stream']).default('auto'))
    .option('--verbose', 'log internal errors on stderr')
    .action(async (o: EngineCliOpts) => {
      exitOnFailure(await runEngine({ maxFrameBytes: o.maxFrameBytes, stdioMethod: o.stdioMethod ?? 'auto', verbose: !!o.verbose }));
    });
}
