/**
 * Ways in: how a vector reaches the core. A matrix cell is runtime x backend x way in.
 *
 * - `ts`: the TypeScript API, in the runtime's own process (the runtime adapters run it).
 * - `python`, `csharp`, `c`: a wrapper's conformance client talks to the engine process,
 *   which runs on the runtime of the column (Node, Deno or Bun; a browser has no engine
 *   process, so there are no browser x wrapper cells). The client gets materialized vectors
 *   (runner/materialize.ts) and answers with a RunReport (docs/conformance.md, "Wrapper way in").
 *   Backend webgpu: the client selects it in the engine (set_backend) before any vector, and
 *   the engine gets the runtime's webgpu environment (the adapter). Wrapper x webgpu cells
 *   exist on Node only: they test the ABI path on the GPU; each runtime's GPU arithmetic is
 *   the business of its ts column.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { RunReport, VectorResult } from '../runner/execute.ts';
import { digest } from '../runner/digest.ts';
import type { NamedArray } from '../runner/digest.ts';
import { materialize } from '../runner/materialize.ts';
import type { Vector } from '../runner/spec.ts';
import { base64Decode } from '../../core/io/base64.ts';
import { type RunContext, type Runtime, RunnerError, backendEnv, exec } from './runtimes.ts';

export type WayId = 'ts' | 'python' | 'csharp' | 'c';
export const WAY_IDS: readonly WayId[] = ['ts', 'python', 'csharp', 'c'];

export interface WayIn {
  readonly id: WayId;
  readonly label: string;
  /** Whether runtime x backend x this way in is a cell at all (a browser has no engine process). */
  applies(runtime: Runtime, backend: string): boolean;
  /** null when the cell can run here, else why not (shown as skipped). */
  unavailable(runtime: Runtime, backend: string, ctx: RunContext): string | null;
  run(runtime: Runtime, backend: string, vectors: Vector[], ctx: RunContext): Promise<RunReport>;
}

/** Backend prerequisites the host can check before starting a column (skip when missing). */
function backendUnavailableHere(runtime: Runtime, backend: string, ctx: RunContext): string | null {
  return backend === 'webgpu' ? runtime.webgpuUnavailable(ctx) : null;
}

export const tsWay: WayIn = {
  id: 'ts',
  label: 'TypeScript API, in-process',
  applies: () => true,
  unavailable: (runtime, backend, ctx) => backendUnavailableHere(runtime, backend, ctx),
  run: (runtime, backend, vectors, ctx) => runtime.runInProcess({ backend, vectors }, ctx),
};

/**
 * What a wrapper's conformance client answers per op: a digest it computed itself, or the
 * arrays (base64 little-endian, in the documented order) for the host to digest.
 */
interface WrapperOpResult {
  key: string;
  sha256?: string;
  arrays?: { name: string; dtype: NamedArray['dtype']; shape: number[]; data: string }[];
  error?: string;
  message?: string;
}

interface WrapperReport {
  runtime: string;
  version: string;
  backend: string;
  unavailable?: string;
  /** webgpu: the adapter the engine runs on, in one line, when the client can tell. */
  adapter?: string;
  results: { id: string; ms: number; ops: WrapperOpResult[] }[];
}

function decodeArrays(arrays: NonNullable<WrapperOpResult['arrays']>): NamedArray[] {
  return arrays.map((a) => {
    const bytes = base64Decode(a.data, `array ${a.name}`);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const width = a.dtype === 'f64' ? 8 : a.dtype === 'u8' ? 1 : 4;
    const n = bytes.length / width;
    let data: NamedArray['data'];
    if (a.dtype === 'u8') data = bytes;
    else if (a.dtype === 'f64') data = Float64Array.from({ length: n }, (_, i) => view.getFloat64(8 * i, true));
    else if (a.dtype === 'f32') data = Float32Array.from({ length: n }, (_, i) => view.getFloat32(4 * i, true));
    else data = Int32Array.from({ length: n }, (_, i) => view.getInt32(4 * i, true));
    return { name: a.name, dtype: a.dtype, shape: a.shape, data };
  });
}

/** Turns a wrapper's report into a RunReport (the host digests returned arrays). */
export function normalizeWrapperReport(r: WrapperReport): RunReport {
  const results: VectorResult[] = r.results.map((v) => ({
    id: v.id,
    ms: v.ms,
    ops: v.ops.map((o) => {
      if (o.error) return { key: o.key, error: o.error, message: o.message };
      if (o.arrays) {
        const arrays = decodeArrays(o.arrays);
        const per: Record<string, string> = {};
        for (const a of arrays) per[a.name] = digest([a]).slice(0, 16);
        return { key: o.key, sha256: digest(arrays), arrays: per };
      }
      return { key: o.key, sha256: o.sha256 };
    }),
  }));
  const adapter = r.adapter ? { adapter: { vendor: '', architecture: '', device: '', description: r.adapter, isFallbackAdapter: false } } : {};
  return { runtime: r.runtime, version: r.version, backend: r.backend, unavailable: r.unavailable, ...adapter, results };
}

/**
 * A wrapper way in. Its client is the executable `conformance/wrappers/<id>/run` (a script in
 * any language: it may build and start the wrapper's program however its ecosystem does); the
 * host runs `run --engine '<engine argv as JSON>' --backend B REQUEST.json REPORT.json`, where
 * REQUEST.json is `{ backend, vectors: MaterializedVector[] }`, and reads REPORT.json.
 */
function wrapperWay(id: Exclude<WayId, 'ts'>, label: string): WayIn {
  const clientPath = (ctx: RunContext): string => path.join(ctx.tools, 'conformance', 'wrappers', id, 'run');
  return {
    id,
    label,
    applies: (runtime, backend) => runtime.id !== 'chromium' && (backend !== 'webgpu' || runtime.id === 'node'),
    unavailable(runtime, backend, ctx) {
      if (!fs.existsSync(clientPath(ctx))) return `the ${label} conformance client (conformance/wrappers/${id}/run) does not exist yet: it comes with the wrappers (issue 4)`;
      if (!runtime.engineCommand(ctx)) return `the engine process (dist/heddle-engine.mjs, \`npm run build\`) cannot start on ${runtime.id}`;
      return backendUnavailableHere(runtime, backend, ctx);
    },
    async run(runtime, backend, vectors, ctx) {
      const engine = runtime.engineCommand(ctx);
      if (!engine) throw new RunnerError(`${id}: the engine process cannot start on ${runtime.id}`);
      // One name per column: the cpu and webgpu columns of a runtime may run at once.
      const reqFile = path.join(ctx.work, `${process.pid}-${id}-${runtime.id}-${backend}-request.json`);
      const outFile = path.join(ctx.work, `${process.pid}-${id}-${runtime.id}-${backend}-report.json`);
      fs.writeFileSync(reqFile, JSON.stringify({ backend, vectors: vectors.map(materialize) }));
      try {
        // The engine inherits the client's environment: for webgpu, the runtime's adapter.
        const env = backendEnv(runtime, backend, ctx);
        const r = await exec(clientPath(ctx), ['--engine', JSON.stringify(engine), '--backend', backend, reqFile, outFile], { cwd: ctx.tools, timeoutMs: ctx.timeoutMs, env });
        if (r.code !== 0 || !fs.existsSync(outFile)) throw new RunnerError(`${id} client ${r.timedOut ? 'timed out' : `exited with ${r.code ?? r.signal}`}: ${r.stderr.trim().slice(-1500)}`);
        return normalizeWrapperReport(JSON.parse(fs.readFileSync(outFile, 'utf8')) as WrapperReport);
      } finally {
        fs.rmSync(reqFile, { force: true });
        fs.rmSync(outFile, { force: true });
      }
    },
  };
}

export const pythonWay = wrapperWay('python', 'Python wrapper');
export const csharpWay = wrapperWay('csharp', 'C# wrapper');
export const cWay = wrapperWay('c', 'C wrapper');

export const WAYS: Record<WayId, WayIn> = { ts: tsWay, python: pythonWay, csharp: csharpWay, c: cWay };
