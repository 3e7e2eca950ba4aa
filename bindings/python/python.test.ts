/**
 * The Python package through vitest: runs its pytest suite (bindings/python/tests) with
 * Debian's Python 3 and pytest, against a fresh engine bundle (abi/engine/testing.ts) on Node,
 * Deno and Bun, with the TS core's reference bits computed here in-process
 * (tests/reference.ts); then the conformance matrix's Python columns.
 *
 * pytest must exit 0 and report at least MIN_TESTS passed: "no tests collected" (exit 5), an
 * error or a skip-everything run cannot pass silently.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engineBundle, REPO } from '../../abi/engine/testing.ts';
import { runAsync } from '../../tests/helpers/run.ts';
import { runMatrix } from '../../conformance/host/matrix.ts';
import { formatText } from '../../conformance/host/report.ts';
import { loadVectors, readGolden } from '../../conformance/host/vectors.ts';
import { reference } from './tests/reference.ts';

const MIN_TESTS = 70;

/** Debian's python3 (numpy and pytest from apt), or $HEDDLE_PYTHON. */
function python(): string {
  if (process.env.HEDDLE_PYTHON) return process.env.HEDDLE_PYTHON;
  return existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}

describe('heddle for Python (bindings/python)', () => {
  let tmp = '';
  let bundle = '';
  let refFile = '';

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'heddle-py-test-'));
    bundle = await engineBundle();
    refFile = join(tmp, 'reference.json');
    writeFileSync(refFile, JSON.stringify(reference()));
  });
  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('passes its pytest suite (bits on node/deno/bun, errors, API, offline pip install)', async () => {
    const env: Record<string, string | undefined> = {
      ...process.env,
      HEDDLE_ENGINE_BUNDLE: bundle,
      HEDDLE_PY_REFERENCE: refFile,
      HEDDLE_TEST_RUNTIMES: 'node,deno,bun',
      PYTHONDONTWRITEBYTECODE: '1',
    };
    delete env.HEDDLE_ENGINE;
    delete env.HEDDLE_LIBRARY;
    delete env.HEDDLE_TEST_INSTALLED;
    const r = await runAsync(python(), ['-m', 'pytest', '-p', 'no:cacheprovider', '-q', '-rfEs', join(REPO, 'bindings/python/tests')], {
      cwd: join(REPO, 'bindings/python'),
      env,
      timeout: 540_000,
    });
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`;
    expect(r.status, `pytest exited ${r.status ?? r.signal} (5 = no tests collected):\n${out.slice(-8000)}`).toBe(0);
    const passed = Number(/(\d+) passed/.exec(out)?.[1] ?? 0);
    expect(passed, out.slice(-4000)).toBeGreaterThanOrEqual(MIN_TESTS);
    expect(out).not.toMatch(/\d+ (failed|error|skipped)/);
  }, 600_000);

  it('conformance: the Python columns on node, deno and bun agree with the TS columns and pass every implemented vector', async () => {
    const root = REPO;
    const golden = readGolden(root);
    const pending = new Set(
      loadVectors(root)
        .filter(({ vector }) =>
          vector.ops.some((op, i) => {
            const g = golden.vectors[vector.id]?.ops[`${i}:${op.op}${op.op === 'roundtrip' ? `-${op.format}` : ''}`];
            return g?.error !== undefined && g.error !== op.expect_error;
          }),
        )
        .map(({ vector }) => vector.id),
    );
    const runtimes = ['node', 'deno', 'bun'] as const;
    const m = await runMatrix({ root, backends: ['cpu'], ways: ['ts', 'python'], runtimes: [...runtimes] });
    const text = formatText(m);
    expect(m.columns.map((c) => `${c.id}:${c.state}`), text).toEqual(runtimes.flatMap((r) => [`${r}/cpu/ts:ran`, `${r}/cpu/python:ran`]));
    // Through the wrapper, every cell is what the core gives in-process: same status, same reason.
    for (const v of m.vectors) {
      for (const r of runtimes) {
        const ts = m.cells[v.id][`${r}/cpu/ts`];
        const py = m.cells[v.id][`${r}/cpu/python`];
        expect({ status: py.status, reason: py.reason }, `${v.id} @ ${r}`).toEqual({ status: ts.status, reason: ts.reason });
      }
    }
    const pyFailures = m.failures.filter((f) => f.column.endsWith('/python'));
    expect(pyFailures.filter((f) => !pending.has(f.vector)), text).toEqual([]);
    for (const id of pending) for (const r of runtimes) expect(m.cells[id][`${r}/cpu/python`].status, `${id} @ ${r}`).toBe('FAIL');
    expect(m.vectors.length - pending.size).toBeGreaterThanOrEqual(60);
  }, 600_000);
});
