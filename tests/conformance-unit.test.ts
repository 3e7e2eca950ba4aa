/**
 * The conformance suite's own parts: SHA-256, the digest encoding, vector validation, the
 * judge, materialized vectors (what wrappers receive), wrapper reports, the reports, and the
 * webgpu plumbing that needs no GPU (columns, adapter labels, a GPU object with no adapter).
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Prng } from '../core/prng.ts';
import { base64Encode } from '../core/io/base64.ts';
import { digest, type NamedArray } from '../conformance/runner/digest.ts';
import { adapterLabel, executeVector, runRequest } from '../conformance/runner/execute.ts';
import { materialize, materializedSource, vectorOf } from '../conformance/runner/materialize.ts';
import { Sha256, sha256Hex } from '../conformance/runner/sha256.ts';
import { VectorError, parseValue, parseVector } from '../conformance/runner/spec.ts';
import { judge, plannedColumns, type MatrixResult } from '../conformance/host/matrix.ts';
import { formatHtml, formatText, jsonSummary } from '../conformance/host/report.ts';
import { loadVectors } from '../conformance/host/vectors.ts';
import { normalizeWrapperReport } from '../conformance/host/ways.ts';
import { repoRoot } from '../conformance/host/paths.ts';

const root = repoRoot();

describe('sha256', () => {
  it('matches node:crypto on lengths around every block boundary, fed in pieces', () => {
    const rng = new Prng(5);
    for (const n of [0, 1, 3, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000, 4099]) {
      const bytes = Uint8Array.from({ length: n }, () => rng.nextU32() & 255);
      const want = createHash('sha256').update(bytes).digest('hex');
      expect(sha256Hex(bytes)).toBe(want);
      const h = new Sha256();
      for (let i = 0; i < n; i += 7) h.update(bytes.subarray(i, i + 7));
      expect(h.hex()).toBe(want);
    }
    expect(sha256Hex(new TextEncoder().encode('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});

describe('digest', () => {
  const f32 = (name: string, values: number[]): NamedArray => ({ name, dtype: 'f32', shape: [values.length], data: Float32Array.from(values) });

  it('is the SHA-256 of the documented encoding', () => {
    const a = f32('output', [1, -0]);
    const bytes = Buffer.concat([Buffer.from('heddle-conformance/1\noutput\tf32\t2\t8\n'), Buffer.from([0, 0, 0x80, 0x3f, 0, 0, 0, 0x80])]);
    expect(digest([a])).toBe(createHash('sha256').update(bytes).digest('hex'));
  });

  it('sees every bit: signed zeros, the last mantissa bit, names, shapes, dtypes', () => {
    const base = digest([f32('y', [0, 1])]);
    expect(digest([f32('y', [-0, 1])])).not.toBe(base);
    expect(digest([f32('y', [0, 1.0000001192092896])])).not.toBe(base);
    expect(digest([f32('z', [0, 1])])).not.toBe(base);
    expect(digest([{ ...f32('y', [0, 1]), shape: [1, 2] }])).not.toBe(base);
    expect(digest([{ name: 'y', dtype: 'f64', shape: [2], data: Float64Array.of(0, 1) }])).not.toBe(base);
  });

  it('writes every NaN as the canonical quiet NaN', () => {
    const nanA = new Float32Array(new Uint32Array([0x7fc00000]).buffer)[0];
    const nanB = new Float32Array(new Uint32Array([0xffc00001]).buffer)[0];
    expect(digest([f32('y', [nanA])])).toBe(digest([f32('y', [nanB])]));
    expect(digest([f32('y', [Infinity])])).not.toBe(digest([f32('y', [-Infinity])]));
  });
});

describe('vector format', () => {
  const ok = { description: 'd', seed: 1, config: { layers: [{ type: 'dense', input_height: 2, output_height: 2 }] }, ops: ['forward'] };

  it('reads values: decimals, -0, f32 bits, inf and nan', () => {
    expect(Object.is(parseValue('-0'), -0)).toBe(true);
    expect(parseValue('0x00000001')).toBe(1.401298464324817e-45);
    expect(parseValue('0x3f800000')).toBe(1);
    expect(parseValue('1e-39')).toBe(Math.fround(1e-39));
    expect(parseValue('-inf')).toBe(-Infinity);
    expect(Number.isNaN(parseValue('nan'))).toBe(true);
    expect(() => parseValue('1,5')).toThrow(VectorError);
  });

  it('rejects typos, naming the file and field', () => {
    expect(() => parseVector('g/x', { ...ok, sede: 1 })).toThrow(/conformance\/vectors\/g\/x\.json: unknown field 'sede'/);
    expect(() => parseVector('g/x', { ...ok, ops: [{ op: 'forward', inptu: {} }] })).toThrow(/ops\[0\]: unknown field 'inptu'/);
    expect(() => parseVector('g/x', { ...ok, ops: ['fwd'] })).toThrow(/unknown op shorthand 'fwd'/);
    expect(() => parseVector('g/x', { ...ok, input: { fill: 'gauss' } })).toThrow(/input\.fill: unknown fill 'gauss'/);
    expect(() => parseVector('g/x', { ...ok, input: { set: { '0': '0x1' } } })).toThrow(/input\.set\.0/);
    expect(() => parseVector('G/X', ok)).toThrow(/lowercase/);
  });

  it('every vector file is valid and there are at least 60', () => {
    const all = loadVectors(root);
    expect(all.length).toBeGreaterThanOrEqual(60);
    const groups = new Set(all.map((l) => l.vector.group));
    for (const g of ['layers', 'activations', 'losses', 'optimizers', 'schedules', 'networks', 'hard']) expect(groups).toContain(g);
  });
});

describe('judge', () => {
  const v = parseVector('g/x', {
    description: 'd',
    seed: 1,
    config: { layers: [{ type: 'dense', input_height: 2, output_height: 2 }] },
    ops: ['forward', { op: 'forward', input: { fill: 'values', values: ['nan'] }, expect_error: 'INPUT_INVALID' }],
  });
  const golden = { vector_sha256: 'f', ops: { '0:forward': { sha256: 'a'.repeat(64), arrays: { output: 'a'.repeat(16) } }, '1:forward': { error: 'INPUT_INVALID' } } };
  const result = (first: object) => ({ id: 'g/x', ms: 1, ops: [{ key: '0:forward', ...first }, { key: '1:forward', error: 'INPUT_INVALID', message: 'nan' }] });

  it('passes equal hashes and expected errors', () => {
    expect(judge(v, 'f', result({ sha256: 'a'.repeat(64) }), golden)).toEqual({ status: 'pass', ms: 1 });
  });
  it('fails a different hash, naming the array that differs', () => {
    const c = judge(v, 'f', result({ sha256: 'b'.repeat(64), arrays: { output: 'b'.repeat(16) } }), golden);
    expect(c.status).toBe('FAIL');
    expect(c.reason).toMatch(/0:forward: sha256 bbbbbbbbbbbb != golden aaaaaaaaaaaa; differing arrays: output/);
  });
  it('fails an unexpected error even when the golden run failed the same way (never a silent pass)', () => {
    const pending = { ...golden, ops: { ...golden.ops, '0:forward': { error: 'UNSUPPORTED' } } };
    const c = judge(v, 'f', result({ error: 'UNSUPPORTED', message: 'not implemented yet' }), pending);
    expect(c.status).toBe('FAIL');
    expect(c.reason).toMatch(/pending/);
  });
  it('fails a missing golden and a vector file that changed', () => {
    expect(judge(v, 'f', result({ sha256: 'a'.repeat(64) }), undefined).reason).toMatch(/no golden/);
    expect(judge(v, 'changed', result({ sha256: 'a'.repeat(64) }), golden).reason).toMatch(/vector file changed/);
  });
});

describe('materialized vectors (what a wrapper way in receives)', () => {
  it('carry everything: executing them gives the hashes of the generated tensors, for every vector', () => {
    for (const { vector } of loadVectors(root)) {
      const direct = executeVector(vector);
      const m = JSON.parse(JSON.stringify(materialize(vector)));
      const again = executeVector(vectorOf(m), materializedSource(m));
      expect(again.ops.map((o) => o.sha256 ?? o.error), vector.id).toEqual(direct.ops.map((o) => o.sha256 ?? o.error));
    }
  });

  it('a wrapper report with raw arrays is digested by the host like the TS runner digests them', () => {
    const arrays: NamedArray[] = [
      { name: 'output', dtype: 'f32', shape: [2], data: Float32Array.of(1.5, -0) },
      { name: 'step_lrs', dtype: 'f64', shape: [1], data: Float64Array.of(0.1) },
      { name: 'file', dtype: 'u8', shape: [3], data: Uint8Array.of(1, 2, 3) },
      { name: 'optimizer.step', dtype: 'i32', shape: [], data: Int32Array.of(7) },
    ];
    const wire = arrays.map((a) => ({ name: a.name, dtype: a.dtype, shape: [...a.shape], data: base64Encode(new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength)) }));
    const r = normalizeWrapperReport({ runtime: 'node', version: '1', backend: 'cpu', results: [{ id: 'g/x', ms: 1, ops: [{ key: '0:forward', arrays: wire }, { key: '1:grad', error: 'UNSUPPORTED', message: 'm' }] }] });
    expect(r.results[0].ops[0].sha256).toBe(digest(arrays));
    expect(r.results[0].ops[1]).toEqual({ key: '1:grad', error: 'UNSUPPORTED', message: 'm' });
  });
});

describe('reports', () => {
  const m: MatrixResult = {
    vectors: [{ id: 'g/a', group: 'g', description: 'a <b>' }, { id: 'g/b', group: 'g', description: 'b' }],
    columns: [
      { id: 'node/cpu/ts', runtime: 'node', backend: 'cpu', via: 'ts', state: 'ran', version: '20', ms: 10, counts: { pass: 1, fail: 1, skip: 0 } },
      { id: 'node/webgpu/ts', runtime: 'node', backend: 'webgpu', via: 'ts', state: 'skipped', reason: 'no webgpu', counts: { pass: 0, fail: 0, skip: 2 } },
    ],
    cells: {
      'g/a': { 'node/cpu/ts': { status: 'pass' }, 'node/webgpu/ts': { status: 'skip', reason: 'no webgpu' } },
      'g/b': { 'node/cpu/ts': { status: 'FAIL', reason: '0:forward: sha256 x != golden y' }, 'node/webgpu/ts': { status: 'skip', reason: 'no webgpu' } },
    },
    failures: [{ vector: 'g/b', column: 'node/cpu/ts', reason: '0:forward: sha256 x != golden y' }],
    notes: [],
    ok: false,
    ms: 1234,
  };
  it('text: a table of the columns that ran, skipped columns with reasons, failures with reasons', () => {
    const t = formatText(m);
    expect(t).toMatch(/\n {2}a +pass\n {2}b +FAIL\n/);
    expect(t).toMatch(/node\/webgpu\/ts:\n +no webgpu/);
    expect(t).toMatch(/g\/b @ node\/cpu\/ts:\n +0:forward: sha256 x != golden y/);
    expect(t).toMatch(/FAILED: 1 failing cell/);
  });
  it('json: counts per column and the failing cells', () => {
    const j = jsonSummary(m);
    expect(j.ok).toBe(false);
    expect(j.columns[0]).toMatchObject({ id: 'node/cpu/ts', pass: 1, fail: 1, skip: 0, state: 'ran' });
    expect(j.columns[1]).toMatchObject({ state: 'skipped', reason: 'no webgpu' });
    expect(j.failures).toEqual(m.failures);
  });
  it('html: one self-contained file (no scripts, no external resources), escaped text', () => {
    const h = formatHtml(m);
    expect(h).toMatch(/^<!doctype html>/);
    expect(h).not.toMatch(/<script|<link|src=|https?:/);
    expect(h).toContain('a &lt;b&gt;');
    expect(h).toContain('<td class="fail" title="0:forward: sha256 x != golden y">FAIL</td>');
  });
});

describe('webgpu columns (no GPU needed)', () => {
  it('ts on every runtime; the wrapper ways in on node only', () => {
    const ids = plannedColumns({ backends: ['webgpu'] }).map((c) => `${c.runtime}/${c.backend}/${c.via}`);
    expect(ids).toEqual(['node/webgpu/ts', 'node/webgpu/python', 'node/webgpu/csharp', 'node/webgpu/c', 'deno/webgpu/ts', 'bun/webgpu/ts', 'chromium/webgpu/ts']);
    expect(plannedColumns({ backends: ['cpu'] }).filter((c) => c.via !== 'ts').map((c) => c.runtime)).toEqual(['node', 'node', 'node', 'deno', 'deno', 'deno', 'bun', 'bun', 'bun']);
  });

  it('an adapter in one line: its description, else vendor and architecture (Chromium hides the description)', () => {
    expect(adapterLabel({ vendor: 'google', architecture: 'swiftshader', device: '', description: '', isFallbackAdapter: true })).toBe('google swiftshader (fallback adapter)');
    expect(adapterLabel({ vendor: 'nvidia', architecture: '', device: 'h200', description: 'NVIDIA: 580', isFallbackAdapter: false })).toBe('NVIDIA: 580');
  });

  it('a GPU object without an adapter: the runner reports BACKEND_UNAVAILABLE and no results', async () => {
    const vectors = loadVectors(root, ['layers/dense']).map((l) => l.vector);
    const r = await runRequest({ backend: 'webgpu', vectors }, { gpu: async () => ({ requestAdapter: async () => null }) as never });
    expect(r.results).toEqual([]);
    expect(r.unavailable).toMatch(/^BACKEND_UNAVAILABLE: backend webgpu: the given GPU object found no adapter/);
    const cpu = await runRequest({ backend: 'cpu', vectors });
    expect(cpu.results.map((v) => v.id)).toEqual(vectors.map((v) => v.id));
  });

  const g: MatrixResult = {
    vectors: [{ id: 'g/a', group: 'g', description: 'a' }, { id: 'g/b', group: 'g', description: 'b' }],
    columns: [
      { id: 'node/webgpu/ts', runtime: 'node', backend: 'webgpu', via: 'ts', state: 'ran', version: '20', adapter: 'SwiftShader driver 5.0.0 (fallback adapter)', cpuFallback: ['lstm'], cpuBackward: ['conv1d'], ms: 10, counts: { pass: 2, fail: 0, skip: 0 } },
      { id: 'deno/webgpu/ts', runtime: 'deno', backend: 'webgpu', via: 'ts', state: 'crashed', reason: 'the webgpu backend could not start on deno/webgpu/ts: BACKEND_UNAVAILABLE: no adapter', ms: 10, counts: { pass: 0, fail: 2, skip: 0 } },
    ],
    cells: {
      'g/a': { 'node/webgpu/ts': { status: 'pass' }, 'deno/webgpu/ts': { status: 'FAIL', reason: 'the webgpu backend could not start on deno/webgpu/ts: BACKEND_UNAVAILABLE: no adapter' } },
      'g/b': { 'node/webgpu/ts': { status: 'pass' }, 'deno/webgpu/ts': { status: 'FAIL', reason: 'the webgpu backend could not start on deno/webgpu/ts: BACKEND_UNAVAILABLE: no adapter' } },
    },
    failures: ['g/a', 'g/b'].map((vector) => ({ vector, column: 'deno/webgpu/ts', reason: 'the webgpu backend could not start on deno/webgpu/ts: BACKEND_UNAVAILABLE: no adapter' })),
    notes: [],
    ok: false,
    ms: 20,
  };

  it('reports name each column\'s adapter and what ran on the CPU; a column without an adapter FAILs once, not per vector', () => {
    const t = formatText(g);
    expect(t).toMatch(/webgpu adapters:\n {2}node\/webgpu\/ts: SwiftShader driver 5\.0\.0 \(fallback adapter\)\n +forward on the CPU inside the GPU pass: lstm\n +backward on the CPU inside the GPU step: conv1d\n {2}deno\/webgpu\/ts: \(none/);
    expect(t).toMatch(/FAIL \(2 cells\):\n {2}every vector @ deno\/webgpu\/ts:\n +the webgpu backend could not start on deno\/webgpu\/ts: BACKEND_UNAVAILABLE: no adapter\n\nFAILED/);
    expect(t).not.toMatch(/g\/a @/);
    const j = jsonSummary(g);
    expect(j.columns[0]).toMatchObject({ adapter: 'SwiftShader driver 5.0.0 (fallback adapter)', cpu_fallback: ['lstm'], cpu_backward: ['conv1d'] });
    expect(j.failures).toHaveLength(2);
    const h = formatHtml(g);
    expect(h).toContain('<th>adapter (webgpu)</th>');
    expect(h).toContain('SwiftShader driver 5.0.0 (fallback adapter)<br><small>forward on the CPU inside the GPU pass: lstm</small><br><small>backward on the CPU inside the GPU step: conv1d</small>');
    expect(h.match(/<li><b>/g)).toHaveLength(1);
  });
});
