/**
 * The C# binding (bindings/csharp) through vitest: builds the Heddle library, libheddle (CMake,
 * from the library's build) and the xunit tests in Release (incremental, under
 * node_modules/.cache/heddle/csharp), runs `dotnet test` against a fresh engine bundle and fails
 * when any test fails or when too few ran; then checks that `dotnet pack` makes a .nupkg carrying
 * libheddle.so under runtimes/linux-x64/native and the engine bundle as content.
 *
 * The xunit suite itself checks forward/grad/train/save/load bits against the TS core run
 * in-process (Heddle.Tests/reference.ts), with the engine on Node, Deno and Bun.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { REPO, engineBundle } from '../abi/engine/testing.ts';
import { runAsync } from '../tests/helpers/run.ts';

const CS = join(REPO, 'bindings/csharp');
const ARTIFACTS = join(REPO, 'node_modules/.cache/heddle/csharp');
const LOCK = join(ARTIFACTS, '.lock');
/** The suite has about 25 tests; fewer than this means tests were lost or not discovered. */
const MIN_TESTS = 20;

function dotnetEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, DOTNET_CLI_TELEMETRY_OPTOUT: '1', DOTNET_NOLOGO: '1', DOTNET_SKIP_FIRST_TIME_EXPERIENCE: '1', ...extra };
  delete env.HEDDLE_ENGINE;
  return env;
}

/** Runs dotnet under the build lock bindings/csharp/heddle-dotnet (the conformance client's build) takes too. */
async function dotnetLocked(args: string[], timeoutMs: number): Promise<string> {
  const r = await runAsync('flock', [LOCK, 'dotnet', ...args], { cwd: CS, env: dotnetEnv(), timeout: timeoutMs });
  if (r.error) throw new Error(`dotnet ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`dotnet ${args.join(' ')} exited with ${r.status ?? r.signal}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

describe('Heddle .NET binding (bindings/csharp)', () => {
  let bundle = '';

  beforeAll(async () => {
    try {
      execFileSync('dotnet', ['--version'], { encoding: 'utf8', env: dotnetEnv() });
    } catch {
      throw new Error('the .NET SDK (dotnet, 10.x) is not installed: scripts/setup.sh says how to get it');
    }
    mkdirSync(ARTIFACTS, { recursive: true });
    await dotnetLocked(['build', 'Heddle.Tests/Heddle.Tests.csproj', '-c', 'Release', '-nologo', '-v', 'quiet'], 900_000);
    bundle = await engineBundle();
  }, 900_000);

  it('passes its xunit suite (bits on node/deno/bun, errors, engine death, discovery, socket)', async () => {
    const r = await runAsync('dotnet', ['test', 'Heddle.Tests/Heddle.Tests.csproj', '-c', 'Release', '--no-build', '--nologo'], {
      cwd: CS,
      env: dotnetEnv({ HEDDLE_ENGINE_BUNDLE: bundle }),
      timeout: 600_000,
    });
    const out = `${r.stdout}${r.stderr}`;
    expect(r.error, out).toBeUndefined();
    const m = /Failed:\s+(\d+), Passed:\s+(\d+), Skipped:\s+(\d+), Total:\s+(\d+)/.exec(out);
    expect(m, `no test summary in the output of dotnet test:\n${out}`).not.toBeNull();
    const [failed, passed, , total] = m!.slice(1).map(Number);
    expect({ status: r.status, failed }, out).toEqual({ status: 0, failed: 0 });
    expect(passed, out).toBeGreaterThanOrEqual(MIN_TESTS);
    expect(total, out).toBeGreaterThanOrEqual(MIN_TESTS);
  }, 600_000);

  it('dotnet pack makes a .nupkg with libheddle.so under runtimes/linux-x64/native and the engine bundle', async () => {
    const out = mkdtempSync(join(tmpdir(), 'heddle-nupkg-'));
    try {
      await dotnetLocked(['pack', 'Heddle/Heddle.csproj', '-c', 'Release', '--no-build', '-nologo', '-v', 'quiet', '-o', out], 300_000);
      const pkg = readdirSync(out).find((f) => f.endsWith('.nupkg'));
      expect(pkg).toBe('Heddle.0.1.0.nupkg');
      const list = execFileSync('unzip', ['-Z1', join(out, pkg!)], { encoding: 'utf8' }).split('\n');
      for (const f of ['lib/net10.0/Heddle.dll', 'lib/net10.0/Heddle.xml', 'runtimes/linux-x64/native/libheddle.so', 'contentFiles/any/any/heddle-engine.mjs', 'README.md']) {
        expect(list, f).toContain(f);
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 300_000);
});
