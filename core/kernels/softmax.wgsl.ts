/**
 * WGSL row softmax: the canonical arithmetic of softmaxRowsForward (kernels/softmax.ts), one
 * workgroup per row.
 *
 *   z[i] = x[i]                (or heddle_div(x[i], T) for a temperature, as the layer does)
 *   m    = max over unmasked i ascending (v > m replaces m, from -Inf): invocation 0, sequential
 *   e[i] = exp(z[i] - m)       every invocation, strided (independent element-wise values)
 *   s    = sum over unmasked i ascending of e[i], from +0: invocation 0, sequential
 *   y[i] = e[i] / s            (masked y[i] = +0), every invocation, strided
 *
 * e is written into y and read back by invocation 0 after a storage barrier; the sums are
 * sequential so their order is the CPU's.
 */
import type { GpuCompileContext } from '../backend/webgpu/kernel.ts';
import type { Kernel } from '../backend/webgpu/run.ts';
import { f32Lit, grid2d, packBits } from '../backend/webgpu/shader.ts';

/** Invocations per row. */
export const SOFTMAX_WG = 64;

export interface SoftmaxRowsSpec {
  readonly label: string;
  readonly rows: number;
  readonly rowLen: number;
  /** false = masked out (probability +0); length rowLen. */
  readonly mask?: readonly boolean[] | null;
  /** Divide the logits by this f32 value first. */
  readonly temperature?: number | null;
}

/** Binds x (read) and y (read_write), both rows x rowLen. */
export function softmaxRowsKernel(cc: GpuCompileContext, o: SoftmaxRowsSpec): Promise<Kernel> {
  const g = grid2d(o.rows, cc.maxWorkgroups);
  const mask = o.mask ?? null;
  const t = o.temperature ?? null;
  const words = mask ? packBits(mask) : [];
  const decls = [
    'var<workgroup> sh_m: f32;',
    'var<workgroup> sh_s: f32;',
    mask ? `var<private> MASK: array<u32, ${words.length}> = array<u32, ${words.length}>(${words.map((w) => `${w}u`).join(', ')});` : '',
    mask ? 'fn keep(j: u32) -> bool { return ((MASK[j >> 5u] >> (j & 31u)) & 1u) != 0u; }' : 'fn keep(j: u32) -> bool { return true; }',
    t !== null ? `fn z_at(i: u32) -> f32 { return heddle_div(x[i], ${f32Lit(t)}); }` : 'fn z_at(i: u32) -> f32 { return x[i]; }',
  ].join('\n');
  const body = `  let row = wid.y * NX + wid.x;
  if (row >= ROWS) { return; }
  let base = row * N;
  if (lid.x == 0u) {
    var m = h_neg_inf();
    for (var j = 0u; j < N; j++) {
      if (keep(j)) {
        let v = z_at(base + j);
        if (v > m) { m = v; }
      }
    }
    sh_m = m;
  }
  workgroupBarrier();
  let m = sh_m;
  for (var j = lid.x; j < N; j += WG) {
    if (keep(j)) { y[base + j] = heddle_exp(h_sub(z_at(base + j), m)); }
  }
  storageBarrier();
  workgroupBarrier();
  if (lid.x == 0u) {
    var s = 0.0;
    for (var j = 0u; j < N; j++) {
      if (keep(j)) { s = h_add(s, y[base + j]); }
    }
    sh_s = s;
  }
  workgroupBarrier();
  let s = sh_s;
  for (var j = lid.x; j < N; j += WG) {
    if (keep(j)) { y[base + j] = heddle_div(y[base + j], s); } else { y[base + j] = 0.0; }
  }`;
  return cc.kernel(
    {
      label: o.label,
      buffers: [{ name: 'x', access: 'read' }, { name: 'y', access: 'read_write' }],
      math: ['exp', 'div'],
      consts: { ROWS: o.rows, N: o.rowLen, NX: g.x, WG: SOFTMAX_WG },
      decls,
      workgroupSize: [SOFTMAX_WG],
      body,
    },
    [g.x, g.y],
  );
}
