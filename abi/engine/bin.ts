/** Entry of the single-file engine bundle (dist/heddle-engine.js): `node|bun|deno run -A heddle-engine.js [options]`. */
import { engineMain } from './main.ts';

interface Proc {
  argv: string[];
  exit(code?: number): never;
}

const proc = (globalThis as unknown as { process: Proc }).process;
void engineMain(proc.argv.slice(2)).then((code) => proc.exit(code));
