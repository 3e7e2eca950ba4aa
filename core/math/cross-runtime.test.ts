import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { HASH_COUNT, mathHashes } from './cross-runtime-hashes.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const script = fileURLToPath(new URL('./cross-runtime-hashes.ts', import.meta.url));

function run(cmd: string, args: string[]): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: root, timeout: 90_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} failed: ${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, string>);
    });
  });
}

describe('math: the same bits on Node, Deno and Bun', () => {
  it(`hashes of ${HASH_COUNT} results per routine agree`, async () => {
    const deno = `${root}node_modules/.bin/deno`;
    const bun = `${root}node_modules/.bin/bun`;
    expect(existsSync(deno) && existsSync(bun), 'deno and bun are devDependencies (npm ci)').toBe(true);
    // The subprocesses start first and run while Node computes in-process.
    const others = Promise.all([run(deno, ['run', '--no-lock', '-A', script]), run(bun, [script])]);
    const node = await mathHashes();
    const [d, b] = await others;
    expect(Object.keys(node).length).toBeGreaterThanOrEqual(17);
    expect(d).toEqual(node);
    expect(b).toEqual(node);
  }, 120_000);
});
