/**
 * `heddle conformance` as a real process on the built CLI (`npm test` builds it first), against
 * a scratch repository (HEDDLE_ROOT) holding two vectors and its own golden.json: the golden
 * changes only with --update-golden --reason, the exit code is 1 on any FAIL, --json and --html
 * report what they promise.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repo = path.resolve(__dirname, '..');
const CLI = path.join(repo, 'dist', 'cli.js');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'heddle-conformance-cli-'));
const golden = path.join(root, 'conformance', 'golden.json');

function heddle(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, 'conformance', ...args], { cwd: root, encoding: 'utf8', timeout: 120_000, env: { ...process.env, HEDDLE_ROOT: root } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  for (const p of ['node_modules', 'core', 'abi']) fs.symlinkSync(path.join(repo, p), path.join(root, p));
  fs.mkdirSync(path.join(root, 'conformance', 'vectors', 't'), { recursive: true });
  for (const p of ['runner', 'browser']) fs.symlinkSync(path.join(repo, 'conformance', p), path.join(root, 'conformance', p));
  const vector = (ops: unknown[]) => JSON.stringify({ description: 'd', seed: 3, config: { layers: [{ type: 'dense', input_height: 3, output_height: 4, activation: 'tanh' }] }, ops });
  fs.writeFileSync(path.join(root, 'conformance/vectors/t/dense.json'), vector(['forward', 'grad', 'train', 'roundtrip:json']));
  fs.writeFileSync(path.join(root, 'conformance/vectors/t/reject-nan.json'), vector([{ op: 'forward', input: { fill: 'values', values: ['nan'] }, expect_error: 'INPUT_INVALID' }]));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('heddle conformance (CLI)', () => {
  it('fails every cell while there is no golden', () => {
    const r = heddle('--runtime', 'node', '--backend', 'cpu', '--via', 'ts');
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/no golden hashes for this vector/);
    expect(r.stdout).toMatch(/FAILED: 2 failing cell/);
  });

  it('--update-golden needs a reason, and goldens come only from node / cpu / ts', () => {
    let r = heddle('--update-golden');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/heddle: CONFIG_INVALID: --reason: say why the goldens change/);
    r = heddle('--update-golden', '--reason', 'x', '--runtime', 'bun');
    expect(r.code).toBe(1);
    expect(fs.existsSync(golden)).toBe(false);
  });

  it('--update-golden --reason writes golden.json; then the matrix passes (exit 0) and --json counts it', () => {
    let r = heddle('--update-golden', '--reason', 'scratch goldens for the CLI test');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/2 added, 0 changed, 0 removed/);
    const g = JSON.parse(fs.readFileSync(golden, 'utf8'));
    expect(g.reason).toBe('scratch goldens for the CLI test');
    expect(g.produced_by).toMatch(/^node .* \/ cpu \/ ts$/);
    expect(Object.keys(g.vectors['t/dense'].ops)).toEqual(['0:forward', '1:grad', '2:train', '3:roundtrip-json']);
    expect(g.vectors['t/reject-nan'].ops['0:forward']).toEqual({ error: 'INPUT_INVALID' });

    r = heddle('--runtime', 'node,bun', '--backend', 'cpu', '--json');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.ok).toBe(true);
    expect(j.vectors).toBe(2);
    const ran = j.columns.filter((c: { state: string }) => c.state === 'ran');
    expect(ran.map((c: { id: string }) => c.id)).toEqual(['node/cpu/ts', 'bun/cpu/ts']);
    for (const c of ran) expect(c).toMatchObject({ pass: 2, fail: 0, skip: 0 });
    // The wrapper columns are named and skipped with their reason, never silently dropped.
    expect(j.columns.find((c: { id: string }) => c.id === 'node/cpu/python')).toMatchObject({ state: 'skipped', skip: 2 });
    expect(j.failures).toEqual([]);
  });

  it('a golden that disagrees makes the cell FAIL: exit 1, the op and array named, the HTML report written', () => {
    const g = JSON.parse(fs.readFileSync(golden, 'utf8'));
    const op = g.vectors['t/dense'].ops['1:grad'];
    op.sha256 = '0'.repeat(64);
    op.arrays['layers.0.bias.grad'] = '0'.repeat(16);
    fs.writeFileSync(golden, JSON.stringify(g));
    const html = path.join(root, 'report.html');
    const r = heddle('--runtime', 'node', '--backend', 'cpu', '--via', 'ts', '--html', html);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/t\/dense @ node\/cpu\/ts:\n +1:grad: sha256 [0-9a-f]{12} != golden 000000000000; differing arrays: layers\.0\.bias\.grad/);
    expect(r.stdout).toMatch(/ +dense +FAIL\n +reject-nan +pass\n/);
    const page = fs.readFileSync(html, 'utf8');
    expect(page).toMatch(/<td class="fail" title="1:grad: sha256/);

    const j = JSON.parse(heddle('--runtime', 'node', '--backend', 'cpu', '--via', 'ts', '--json').stdout);
    expect(j.ok).toBe(false);
    expect(j.failures).toEqual([{ vector: 't/dense', column: 'node/cpu/ts', reason: expect.stringMatching(/^1:grad: sha256/) }]);
  });

  it('bad options are usage errors naming the option', () => {
    const r = heddle('--runtime', 'firefox');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--runtime: unknown value 'firefox'; expected one of node, deno, bun, chromium/);
  });
});
