/**
 * WebGPU for Node.js and Bun: loads the npm package `webgpu` (Dawn's node binding, an optional
 * dependency) and returns its `GPU` object, to pass to Network.useBackend('webgpu', { gpu })
 * or acquireWebGpu({ gpu }). Deno and browsers need none of this: they have navigator.gpu.
 *
 * On Linux, Dawn uses the Vulkan loader (libvulkan1) and whatever ICD it finds; a machine
 * without a GPU can use SwiftShader, which Debian's chromium package ships:
 *   VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json
 * (set it before the first call: the loader reads it when Dawn creates its instance). Mesa's
 * lavapipe from Debian 12 is too old for Dawn (it lacks shaderUniform*ArrayDynamicIndexing);
 * Deno's own WebGPU (wgpu) accepts it.
 */
import { HeddleError } from '../../core/errors.ts';
import type { GpuEntry } from '../../core/backend/webgpu/gpu.ts';

export interface NodeWebGpuOptions {
  /** Dawn instance toggles passed to create(), e.g. ['backend=vulkan'] or ['adapter=SwiftShader']. */
  dawnOptions?: string[];
  /** Module specifier or path to load instead of 'webgpu' (e.g. a packed copy). */
  module?: string;
}

interface DawnModule {
  create(options: string[]): unknown;
}

let cached: { key: string; gpu: GpuEntry } | null = null;

/**
 * The `GPU` object of the `webgpu` package. Throws BACKEND_UNAVAILABLE when the package is not
 * installed or its native binding does not load on this platform. One instance per process
 * and options (Dawn instances are heavy).
 */
export async function nodeWebGpu(opts: NodeWebGpuOptions = {}): Promise<GpuEntry> {
  const spec = opts.module ?? 'webgpu';
  const dawnOptions = opts.dawnOptions ?? [];
  const key = `${spec}\n${dawnOptions.join('\n')}`;
  if (cached && cached.key === key) return cached.gpu;
  let mod: DawnModule;
  try {
    // A computed specifier: bundlers leave the native package alone.
    mod = (await import(/* @vite-ignore */ spec)) as DawnModule;
  } catch (e) {
    throw new HeddleError(
      'BACKEND_UNAVAILABLE',
      `cannot load the '${spec}' package (Dawn's WebGPU for Node.js and Bun): ${e instanceof Error ? e.message : String(e)}. Install it with npm install webgpu`,
      'backend webgpu',
    );
  }
  if (typeof mod.create !== 'function') throw new HeddleError('BACKEND_UNAVAILABLE', `the '${spec}' package has no create() function`, 'backend webgpu');
  let gpu: unknown;
  try {
    gpu = mod.create(dawnOptions);
  } catch (e) {
    throw new HeddleError('BACKEND_UNAVAILABLE', `Dawn failed to start: ${e instanceof Error ? e.message : String(e)}`, 'backend webgpu');
  }
  cached = { key, gpu: gpu as GpuEntry };
  return cached.gpu;
}

/**
 * The `gpu` option for acquireWebGpu / useBackend on this runtime: undefined where the runtime
 * has `navigator.gpu` (Deno, browsers: acquireWebGpu takes it and reports it as the source),
 * else the `webgpu` package (Node, Bun). The engine, the CLI and the GPU checks all use it.
 */
export async function runtimeWebGpu(opts: NodeWebGpuOptions = {}): Promise<GpuEntry | undefined> {
  if ((globalThis as { navigator?: { gpu?: GpuEntry } }).navigator?.gpu) return undefined;
  return nodeWebGpu(opts);
}
