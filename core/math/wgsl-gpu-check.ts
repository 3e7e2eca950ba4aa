/**
 * Runs the WGSL math library on a real WebGPU adapter and compares every result bit with
 * the generated TypeScript. Needs a runtime with `navigator.gpu` (Deno has it; on a machine
 * without a GPU, Mesa's lavapipe gives an llvmpipe adapter):
 *   node_modules/.bin/deno run --no-lock -A core/math/wgsl-gpu-check.ts [count]
 * Prints one JSON line: { adapter, count, mismatches: { routine: n }, first: { routine: "..." } },
 * or { adapter: null } when no adapter is available. wgsl-gpu.test.ts runs it when it can.
 */
import * as M from './index.ts';
import { binaryInputs, unaryInputs } from './sweep.ts';
import { WGSL_ROUTINES, wgslMathLibrary } from './wgsl.ts';

interface Result {
  adapter: string | null;
  count?: number;
  mismatches?: Record<string, number>;
  first?: Record<string, string>;
}

// Minimal WebGPU typings for what this script uses (core is compiled without @webgpu/types).
interface GpuBuffer {
  mapAsync(mode: number): Promise<void>;
  getMappedRange(): ArrayBuffer;
  unmap(): void;
}
interface GpuDevice {
  createBuffer(d: { size: number; usage: number; mappedAtCreation?: boolean }): GpuBuffer;
  createShaderModule(d: { code: string }): unknown;
  createComputePipeline(d: unknown): { getBindGroupLayout(i: number): unknown };
  createBindGroup(d: unknown): unknown;
  createCommandEncoder(): {
    beginComputePass(): { setPipeline(p: unknown): void; setBindGroup(i: number, g: unknown): void; dispatchWorkgroups(n: number): void; end(): void };
    copyBufferToBuffer(a: GpuBuffer, ao: number, b: GpuBuffer, bo: number, n: number): void;
    finish(): unknown;
  };
  queue: { writeBuffer(b: GpuBuffer, o: number, d: ArrayBufferView): void; submit(c: unknown[]): void };
  pushErrorScope(f: string): void;
  popErrorScope(): Promise<{ message: string } | null>;
}
const STORAGE = 0x80, COPY_DST = 0x08, COPY_SRC = 0x04, MAP_READ = 0x01;

function kernel(name: string): string {
  const binary = name === 'div';
  // Unary kernels read xb too, so that 'auto' layouts keep the same four bindings.
  return `${wgslMathLibrary([name])}
@group(0) @binding(0) var<storage, read> xa: array<f32>;
@group(0) @binding(1) var<storage, read> xb: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> heddle_consts: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  heddle_nz = heddle_consts[0];
  let i = id.x;
  if (i < arrayLength(&y)) { y[i] = ${binary ? 'heddle_div(xa[i], xb[i])' : `heddle_${name}(xa[i]) + xb[0]`}; }
}
`;
}

export async function gpuCheck(count: number): Promise<Result> {
  const gpu = (globalThis as { navigator?: { gpu?: { requestAdapter(): Promise<unknown> } } }).navigator?.gpu;
  const adapter = (await gpu?.requestAdapter()) as { info?: { description?: string; vendor?: string }; requestDevice(): Promise<GpuDevice> } | null | undefined;
  if (!adapter) return { adapter: null };
  const device = await adapter.requestDevice();
  const buf = (data: Float32Array): GpuBuffer => {
    const b = device.createBuffer({ size: data.byteLength, usage: STORAGE | COPY_DST });
    device.queue.writeBuffer(b, 0, data);
    return b;
  };
  const F = new Float32Array(1);
  const U = new Uint32Array(F.buffer);
  const bits = (v: number): number => {
    F[0] = v;
    return U[0]!;
  };
  const consts = buf(Float32Array.of(-0));
  const mismatches: Record<string, number> = {};
  const first: Record<string, string> = {};
  for (const name of WGSL_ROUTINES) {
    let a: Float32Array, b: Float32Array;
    if (name === 'div') [a, b] = binaryInputs(name, count, 31);
    else {
      a = unaryInputs(name, count, 31);
      b = Float32Array.of(-0); // y = f(x) + (-0): unchanged bits, but keeps binding 1 in use
    }
    device.pushErrorScope('validation');
    device.pushErrorScope('validation');
    const module = device.createShaderModule({ code: kernel(name) });
    const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
    const err = await device.popErrorScope();
    if (err) throw new Error(`WGSL for ${name} rejected: ${err.message}`);
    const out = device.createBuffer({ size: count * 4, usage: STORAGE | COPY_SRC });
    const read = device.createBuffer({ size: count * 4, usage: MAP_READ | COPY_DST });
    const group = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [buf(a), buf(b), out, consts].map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(Math.ceil(count / 64));
    pass.end();
    enc.copyBufferToBuffer(out, 0, read, 0, count * 4);
    device.queue.submit([enc.finish()]);
    const err2 = await device.popErrorScope();
    if (err2) throw new Error(`dispatch for ${name} failed: ${err2.message}`);
    await read.mapAsync(MAP_READ);
    const got = new Float32Array(read.getMappedRange().slice(0));
    read.unmap();
    let bad = 0;
    const fn = (M as unknown as Record<string, (...v: number[]) => number>)[name]!;
    for (let i = 0; i < count; i++) {
      const want = name === 'div' ? fn(a[i]!, b[i]!) : fn(a[i]!);
      // A GPU may return any NaN; the JS side canonicalises, so compare NaN-ness for NaNs.
      const same = Number.isNaN(want) ? Number.isNaN(got[i]!) : bits(got[i]!) === bits(want);
      if (!same) {
        if (!bad) first[name] = `${name}(${a[i]}${name === 'div' ? `, ${b[i]}` : ''}) = ${got[i]} on the GPU, ${want} in TS`;
        bad++;
      }
    }
    mismatches[name] = bad;
  }
  return { adapter: adapter.info?.description || adapter.info?.vendor || 'unknown', count, mismatches, first };
}

if ((import.meta as { main?: boolean }).main) {
  const g = globalThis as { Deno?: { args: string[] }; process?: { argv: string[] } };
  const args = g.Deno ? g.Deno.args : (g.process?.argv.slice(2) ?? []);
  console.log(JSON.stringify(await gpuCheck(Number(args[0] ?? 65536))));
}
