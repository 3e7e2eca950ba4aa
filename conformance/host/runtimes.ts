/**
 * Runtimes: where the core runs. Each adapter knows whether it can run on this machine and
 * how to run the in-process TypeScript runner there (conformance/runner/worker.ts for Node,
 * Deno and Bun; conformance/browser/page.ts in headless Chromium).
 *
 * Node runs an esbuild bundle of the runner (Node 20 does not run TypeScript); Deno and Bun
 * run the TypeScript sources directly, as their users do; Chromium loads an esbuild bundle
 * from a page served on 127.0.0.1.
 *
 * Backend webgpu, per runtime (docs/conformance.md, "Backends"): Node and Bun use Dawn (the
 * npm package `webgpu`) on SwiftShader, Deno its own WebGPU (wgpu) on Mesa's lavapipe, Chromium
 * its own WebGPU on its bundled SwiftShader. Each runtime says what it needs installed
 * (webgpuUnavailable: the column is skipped when it is missing, like a missing runtime) and
 * sets the environment or flags that pick that adapter.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { RunReport, RunRequest } from '../runner/execute.ts';
import { binPath } from './paths.ts';

export type RuntimeId = 'node' | 'deno' | 'bun' | 'chromium';
export const RUNTIME_IDS: readonly RuntimeId[] = ['node', 'deno', 'bun', 'chromium'];

export interface RunContext {
  /** Repository root holding node_modules (esbuild, deno, bun, playwright-core). */
  tools: string;
  /** Folder holding core/ and conformance/{runner,browser}/: the code under test. Usually `tools`. */
  source: string;
  /** A private scratch folder for bundles, requests and reports. */
  work: string;
  timeoutMs: number;
}

export interface Runtime {
  readonly id: RuntimeId;
  /** null when it can run here, else why not (the column is skipped with this reason). */
  unavailable(ctx: RunContext): string | null;
  /** Runs the TS runner in this runtime's process (the `ts` way in), on req.backend. */
  runInProcess(req: RunRequest, ctx: RunContext): Promise<RunReport>;
  /** The command that starts the engine process on this runtime (wrapper ways in), or null. */
  engineCommand(ctx: RunContext): string[] | null;
  /** The adapter its webgpu columns use, in words. */
  readonly webgpuAdapter: string;
  /** Backend webgpu: null when what that adapter needs is installed, else what is missing (the column is skipped). */
  webgpuUnavailable(ctx: RunContext): string | null;
  /** Backend webgpu: environment for a process of this runtime (the runner, the engine) that selects the adapter. */
  webgpuEnv(ctx: RunContext): Record<string, string>;
}

/** SwiftShader's Vulkan ICD, shipped by Debian's chromium package (Dawn on Node and Bun). */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
/** Mesa's lavapipe Vulkan ICD, from Debian's mesa-vulkan-drivers (Deno). */
export const LAVAPIPE_ICD = '/usr/share/vulkan/icd.d/lvp_icd.x86_64.json';
/** Chromium's flags for WebGPU on its own SwiftShader, with no GPU (headless, as root, no sandbox). */
export const CHROMIUM_WEBGPU_FLAGS: readonly string[] = ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader'];

/** The `webgpu` package's entry, from the repository's node_modules (the runner runs from a snapshot without one). */
function webgpuModule(ctx: RunContext): string {
  return path.join(ctx.tools, 'node_modules', 'webgpu', 'index.js');
}

/** Dawn on SwiftShader (Node and Bun). */
function dawnUnavailable(ctx: RunContext): string | null {
  if (!fs.existsSync(webgpuModule(ctx))) return "the npm package 'webgpu' (Dawn, an optional dependency) is not installed (npm ci)";
  if (!fs.existsSync(SWIFTSHADER_ICD)) return `${SWIFTSHADER_ICD} is missing: SwiftShader's Vulkan driver comes with Debian's chromium (scripts/setup.sh)`;
  return null;
}

function dawnEnv(ctx: RunContext): Record<string, string> {
  return { VK_ICD_FILENAMES: SWIFTSHADER_ICD, HEDDLE_WEBGPU_MODULE: webgpuModule(ctx) };
}

/** The environment of a process running `backend` on `runtime`. */
export function backendEnv(runtime: Runtime, backend: string, ctx: RunContext): NodeJS.ProcessEnv {
  return backend === 'webgpu' ? { ...process.env, ...runtime.webgpuEnv(ctx) } : process.env;
}

export class RunnerError extends Error {}

interface Exec {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export function exec(cmd: string, args: readonly string[], opts: { cwd: string; timeoutMs: number; env?: NodeJS.ProcessEnv }): Promise<Exec> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: null, signal: null, stdout, stderr: stderr + String(e), timedOut });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

function tail(s: string, n = 1500): string {
  const t = s.trim();
  return t.length > n ? `...${t.slice(-n)}` : t;
}

function describeExit(what: string, r: Exec, timeoutMs: number): string {
  if (r.timedOut) return `${what} timed out after ${timeoutMs / 1000}s`;
  return `${what} exited with ${r.code ?? r.signal}${r.stderr ? `: ${tail(r.stderr)}` : ''}`;
}

let counter = 0;
function scratch(ctx: RunContext, name: string): string {
  return path.join(ctx.work, `${process.pid}-${++counter}-${name}`);
}

const bundles = new Map<string, Promise<string>>();

/** esbuild bundle of `entry` (relative to ctx.source), built once per (source, platform). */
export function bundle(ctx: RunContext, entry: string, platform: 'node' | 'browser'): Promise<string> {
  const key = `${ctx.source}\0${entry}\0${platform}\0${ctx.work}`;
  let p = bundles.get(key);
  if (!p) {
    p = (async () => {
      const out = scratch(ctx, `${path.basename(entry, '.ts')}.${platform}.mjs`);
      const args = [path.join(ctx.source, entry), '--bundle', '--format=esm', `--platform=${platform}`, platform === 'node' ? '--target=node20' : '--target=es2022', `--outfile=${out}`, '--log-level=error'];
      const r = await exec(binPath(ctx.tools, 'esbuild'), args, { cwd: ctx.source, timeoutMs: ctx.timeoutMs });
      if (r.code !== 0) throw new RunnerError(describeExit('esbuild', r, ctx.timeoutMs));
      return out;
    })();
    bundles.set(key, p);
    p.catch(() => bundles.delete(key));
  }
  return p;
}

/** Runs worker-style: write the request, run the command, read the report. */
async function runWorker(label: string, cmd: string, args: (req: string, out: string) => string[], req: RunRequest, ctx: RunContext, env?: NodeJS.ProcessEnv): Promise<RunReport> {
  const reqFile = scratch(ctx, 'request.json');
  const outFile = scratch(ctx, 'report.json');
  fs.writeFileSync(reqFile, JSON.stringify(req));
  try {
    const r = await exec(cmd, args(reqFile, outFile), { cwd: ctx.work, timeoutMs: ctx.timeoutMs, env });
    if (r.code !== 0 || !fs.existsSync(outFile)) throw new RunnerError(describeExit(label, r, ctx.timeoutMs));
    return JSON.parse(fs.readFileSync(outFile, 'utf8')) as RunReport;
  } finally {
    fs.rmSync(reqFile, { force: true });
    fs.rmSync(outFile, { force: true });
  }
}

const WORKER = 'conformance/runner/worker.ts';

/** The engine process bundle (`npm run build`), which the wrapper ways in start on a runtime. */
const ENGINE = 'dist/heddle-engine.mjs';
function engineBundle(ctx: RunContext): string | null {
  const p = path.join(ctx.tools, ENGINE);
  return fs.existsSync(p) ? p : null;
}

function nodeBinary(): string {
  const v = process.versions as Record<string, string | undefined>;
  return v.bun || v.deno ? 'node' : process.execPath;
}

export const nodeRuntime: Runtime = {
  id: 'node',
  unavailable: () => null,
  async runInProcess(req, ctx) {
    const js = await bundle(ctx, WORKER, 'node');
    return runWorker('node', nodeBinary(), (a, b) => [js, a, b], req, ctx, backendEnv(nodeRuntime, req.backend, ctx));
  },
  engineCommand(ctx) {
    const e = engineBundle(ctx);
    return e ? [nodeBinary(), e] : null;
  },
  webgpuAdapter: 'Dawn (npm webgpu) on SwiftShader',
  webgpuUnavailable: dawnUnavailable,
  webgpuEnv: dawnEnv,
};

const quiet = (env: NodeJS.ProcessEnv): NodeJS.ProcessEnv => ({ ...env, DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' });

export const denoRuntime: Runtime = {
  id: 'deno',
  unavailable: (ctx) => (fs.existsSync(binPath(ctx.tools, 'deno')) ? null : 'node_modules/.bin/deno is missing (npm ci installs the deno package)'),
  runInProcess(req, ctx) {
    const args = (a: string, b: string): string[] => [
      'run', '--quiet', '--no-config', '--no-lock', '--no-prompt',
      `--allow-read=${ctx.source},${ctx.work}`, `--allow-write=${ctx.work}`,
      path.join(ctx.source, WORKER), a, b,
    ];
    return runWorker('deno', binPath(ctx.tools, 'deno'), args, req, ctx, quiet(backendEnv(denoRuntime, req.backend, ctx)));
  },
  engineCommand(ctx) {
    const e = engineBundle(ctx);
    return e && fs.existsSync(binPath(ctx.tools, 'deno')) ? [binPath(ctx.tools, 'deno'), 'run', '-A', '--quiet', '--no-config', '--no-lock', e] : null;
  },
  webgpuAdapter: "Deno's WebGPU (wgpu) on Mesa lavapipe",
  webgpuUnavailable: () => (fs.existsSync(LAVAPIPE_ICD) ? null : `${LAVAPIPE_ICD} is missing: lavapipe comes with Debian's mesa-vulkan-drivers (scripts/setup.sh)`),
  // Without DENO_WEBGPU_BACKEND=vulkan, wgpu falls back to OpenGL when Vulkan finds no driver.
  webgpuEnv: () => ({ VK_ICD_FILENAMES: LAVAPIPE_ICD, DENO_WEBGPU_BACKEND: 'vulkan' }),
};

export const bunRuntime: Runtime = {
  id: 'bun',
  unavailable: (ctx) => (fs.existsSync(binPath(ctx.tools, 'bun')) ? null : 'node_modules/.bin/bun is missing (npm ci installs the bun package)'),
  runInProcess(req, ctx) {
    return runWorker('bun', binPath(ctx.tools, 'bun'), (a, b) => ['run', path.join(ctx.source, WORKER), a, b], req, ctx, quiet(backendEnv(bunRuntime, req.backend, ctx)));
  },
  engineCommand(ctx) {
    const e = engineBundle(ctx);
    return e && fs.existsSync(binPath(ctx.tools, 'bun')) ? [binPath(ctx.tools, 'bun'), 'run', e] : null;
  },
  webgpuAdapter: 'Dawn (npm webgpu) on SwiftShader',
  webgpuUnavailable: dawnUnavailable,
  webgpuEnv: dawnEnv,
};

/** Chromium's binary: HEDDLE_CHROMIUM, else Debian's /usr/bin/chromium. */
export function chromiumPath(): string {
  return process.env.HEDDLE_CHROMIUM || '/usr/bin/chromium';
}

interface Playwright {
  chromium: {
    launch(o: { executablePath: string; headless: boolean; args: string[]; timeout?: number }): Promise<{
      newPage(): Promise<{
        goto(url: string, o?: { timeout?: number }): Promise<unknown>;
        on(ev: 'console' | 'pageerror', f: (m: { text?: () => string; message?: string }) => void): void;
        waitForFunction(f: string, arg: unknown, o: { timeout: number; polling?: number }): Promise<unknown>;
        evaluate<T>(f: string): Promise<T>;
      }>;
      close(): Promise<void>;
    }>;
  };
}

/** Serves the runner page, its bundle and the request on 127.0.0.1 (a random free port). */
export async function servePage(files: Record<string, { type: string; body: string | Buffer }>, onReport?: (body: string) => void): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((reqIn, res) => {
    const url = (reqIn.url ?? '/').split('?')[0];
    if (reqIn.method === 'POST' && url === '/report') {
      let body = '';
      reqIn.on('data', (d: Buffer) => (body += d.toString()));
      reqIn.on('end', () => {
        onReport?.(body);
        res.writeHead(204).end();
      });
      return;
    }
    const f = files[url === '/' ? '/index.html' : url];
    if (!f || reqIn.method !== 'GET') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': f.type, 'cache-control': 'no-store' }).end(f.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export const chromiumRuntime: Runtime = {
  id: 'chromium',
  unavailable(ctx) {
    if (!fs.existsSync(chromiumPath())) return `${chromiumPath()} is missing (scripts/setup.sh installs Debian's chromium)`;
    if (!fs.existsSync(path.join(ctx.tools, 'node_modules', 'playwright-core'))) return 'playwright-core is not installed (npm ci)';
    return null;
  },
  async runInProcess(req, ctx) {
    const js = await bundle(ctx, 'conformance/browser/page.ts', 'browser');
    const html = fs.readFileSync(path.join(ctx.source, 'conformance/browser/index.html'));
    const page = await servePage({
      '/index.html': { type: 'text/html; charset=utf-8', body: html },
      '/runner.js': { type: 'text/javascript; charset=utf-8', body: fs.readFileSync(js) },
      '/request.json': { type: 'application/json', body: JSON.stringify(req) },
    });
    // A non-literal specifier keeps bundlers from pulling playwright-core into dist/cli.js.
    const specifier = path.join(ctx.tools, 'node_modules', 'playwright-core', 'index.mjs');
    const pw = (await import(specifier)) as Playwright;
    const browser = await pw.chromium.launch({
      executablePath: chromiumPath(),
      headless: true,
      // root cannot use Chromium's sandbox; the page only runs Heddle's own bundle. WebGPU
      // columns: Chromium's own WebGPU (Dawn) on the SwiftShader it bundles, no GPU needed.
      args: ['--no-sandbox', '--disable-dev-shm-usage', ...(req.backend === 'webgpu' ? CHROMIUM_WEBGPU_FLAGS : ['--disable-gpu'])],
      timeout: ctx.timeoutMs,
    });
    const logs: string[] = [];
    try {
      const p = await browser.newPage();
      p.on('console', (m) => logs.push(m.text?.() ?? ''));
      p.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
      await p.goto(page.url, { timeout: ctx.timeoutMs });
      try {
        await p.waitForFunction('window.__heddleConformance !== undefined', null, { timeout: ctx.timeoutMs, polling: 50 });
      } catch (e) {
        throw new RunnerError(`chromium: the page did not finish: ${(e as Error).message}${logs.length ? `; console: ${tail(logs.join('\n'))}` : ''}`);
      }
      const res = await p.evaluate<RunReport | { fatal: string }>('window.__heddleConformance');
      if ('fatal' in res) throw new RunnerError(`chromium: the page failed: ${tail(res.fatal)}`);
      return res;
    } finally {
      await browser.close().catch(() => undefined);
      await page.close();
    }
  },
  engineCommand: () => null,
  webgpuAdapter: "Chromium's WebGPU on its SwiftShader",
  webgpuUnavailable: () => null,
  webgpuEnv: () => ({}),
};

export const RUNTIMES: Record<RuntimeId, Runtime> = { node: nodeRuntime, deno: denoRuntime, bun: bunRuntime, chromium: chromiumRuntime };
