/**
 * The engine's WebGPU device: one per engine process, shared by every network of every
 * connection (the core serializes their passes on it), acquired on the first
 * SetBackend("webgpu") and again after it is lost.
 *
 * Where the `GPU` object comes from: `navigator.gpu` when the runtime has one (Deno), else
 * the npm package `webgpu` (Dawn) through abi/node/webgpu.ts (Node, Bun). Which adapter the
 * implementation finds is the environment's business (on Linux, VK_ICD_FILENAMES in the
 * engine's environment; on Deno also DENO_WEBGPU_BACKEND): the engine picks none itself.
 * No adapter is BACKEND_UNAVAILABLE with the core's message.
 */
import { createRequire } from 'node:module';
import { HeddleError } from '../../core/errors.ts';
import { type AdapterReport, WebGpuContext, acquireWebGpu } from '../../core/backend/webgpu/device.ts';
import type { GpuEntry } from '../../core/backend/webgpu/gpu.ts';
import { runtimeWebGpu } from '../node/webgpu.ts';

/** What Hello says about the webgpu backend. */
export interface WebGpuStatus {
  available: boolean;
  adapters: string[];
  reason: string;
}

let current: WebGpuContext | null = null;
let pending: Promise<WebGpuContext> | null = null;
/** Why the last acquisition failed (cleared by a success). */
let lastFailure: string | null = null;

function navigatorGpu(): GpuEntry | undefined {
  return (globalThis as { navigator?: { gpu?: GpuEntry } }).navigator?.gpu;
}

function usable(ctx: WebGpuContext | null): ctx is WebGpuContext {
  return ctx !== null && !ctx.isDestroyed && ctx.lostReason === null;
}

/** The device if one is held and alive (no acquisition). */
export function currentWebGpu(): WebGpuContext | null {
  return usable(current) ? current : null;
}

/**
 * The process's device: the one held if it is alive, else a new one. Throws
 * BACKEND_UNAVAILABLE (with the core's reason) when there is no implementation, no adapter
 * or no device. Concurrent callers share one acquisition.
 */
export function acquireEngineWebGpu(): Promise<WebGpuContext> {
  if (usable(current)) return Promise.resolve(current);
  pending ??= (async () => {
    try {
      const ctx = await acquireWebGpu({ gpu: await runtimeWebGpu() });
      const old = current as WebGpuContext | null;
      current = ctx;
      lastFailure = null;
      // A lost device is of no use to anyone; networks still bound to it are moved on their next call.
      if (old && !old.isDestroyed) old.destroy();
      return ctx;
    } catch (e) {
      lastFailure = e instanceof Error ? e.message : String(e);
      throw e instanceof HeddleError ? e : new HeddleError('BACKEND_UNAVAILABLE', `WebGPU failed to start: ${lastFailure}`, 'backend webgpu');
    } finally {
      pending = null;
    }
  })();
  return pending;
}

/** One line naming an adapter, for HelloResponse.backends[].adapters. */
export function adapterName(r: AdapterReport): string {
  const name = r.description || [r.vendor, r.architecture, r.device].filter(Boolean).join(' ') || 'unknown adapter';
  const parts = [r.vendor && r.description ? `vendor ${r.vendor}` : '', r.architecture && r.description ? `architecture ${r.architecture}` : '', r.isFallbackAdapter ? 'fallback adapter' : ''].filter(Boolean);
  return parts.length ? `${name} (${parts.join(', ')})` : name;
}

let packagePresent: boolean | null = null;

/** Whether the `webgpu` package resolves from here (cheap: nothing is loaded). */
function webgpuPackagePresent(): boolean {
  if (packagePresent === null) {
    try {
      createRequire(import.meta.url).resolve('webgpu');
      packagePresent = true;
    } catch {
      packagePresent = false;
    }
  }
  return packagePresent;
}

/**
 * The webgpu backend as Hello reports it, without probing for an adapter (that costs a Dawn
 * instance or a wgpu request, too much for every connection): the adapter in use once a
 * SetBackend("webgpu") acquired it; unavailable with the reason when the last attempt failed
 * or there is no implementation at all; otherwise available with no adapter listed yet.
 */
export function webGpuStatus(): WebGpuStatus {
  const ctx = currentWebGpu();
  if (ctx) return { available: true, adapters: [adapterName(ctx.report)], reason: '' };
  if (lastFailure !== null) return { available: false, adapters: [], reason: lastFailure };
  if (!navigatorGpu() && !webgpuPackagePresent()) {
    return { available: false, adapters: [], reason: "no WebGPU implementation: this runtime has no navigator.gpu and the npm package 'webgpu' (Dawn) is not installed where the engine runs" };
  }
  return { available: true, adapters: [], reason: '' };
}

/** For tests: forget the device (destroying it) and the last failure. */
export function resetEngineWebGpu(): void {
  current?.destroy();
  current = null;
  lastFailure = null;
}
