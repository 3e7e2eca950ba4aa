/**
 * The in-process runner for Node, Deno and Bun: `<runtime> worker.ts REQUEST.json REPORT.json`
 * reads a RunRequest (backend + vectors), runs every vector with the core in this process and
 * writes a RunReport. Deno and Bun run this file from source; Node runs an esbuild bundle of it
 * (Node 20 cannot run TypeScript). Only node:fs and node:process are used, which all three have.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import process from 'node:process';
import { type RunRequest, runRequest } from './execute.ts';

const [reqPath, outPath] = process.argv.slice(2);
if (!reqPath || !outPath) {
  process.stderr.write('usage: worker REQUEST.json REPORT.json\n');
  process.exit(2);
}
const req = JSON.parse(readFileSync(reqPath, 'utf8')) as RunRequest;
const report = runRequest(req);
writeFileSync(outPath, JSON.stringify(report));
