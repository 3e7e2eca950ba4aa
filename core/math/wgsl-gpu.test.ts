import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const script = fileURLToPath(new URL('./wgsl-gpu-check.ts', import.meta.url));

// Runs the WGSL library on whatever WebGPU adapter Deno finds (on a machine without a GPU,
// Mesa's lavapipe gives llvmpipe); skipped when there is none.
it('WGSL library on a real WebGPU adapter gives the TypeScript bits', async (ctx) => {
  const out = await new Promise<string>((resolve, reject) => {
    execFile(
      `${root}node_modules/.bin/deno`,
      ['run', '--no-lock', '-A', script, '65536'],
      { cwd: root, timeout: 90_000, env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
    );
  });
  const r = JSON.parse(out.trim().split('\n').pop()!) as { adapter: string | null; mismatches?: Record<string, number>; first?: Record<string, string> };
  if (!r.adapter) ctx.skip();
  expect(r.first, `adapter ${r.adapter}`).toEqual({});
  expect(Object.values(r.mismatches!).every((n) => n === 0)).toBe(true);
}, 120_000);
