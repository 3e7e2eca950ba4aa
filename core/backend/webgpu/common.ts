/**
 * Small kernels shared by several layers: element-wise maps and strided row copies.
 */
import type { GpuCompileContext } from './kernel.ts';
import { shapeSize } from '../../tensor.ts';
import type { Kernel, Run, Val } from './run.ts';
import { grid2d } from './shader.ts';

/** Threads per workgroup of the element-wise kernels. */
export const MAP_WG = 256;

/**
 * y[i] = expr for i < n, where expr reads the inputs as `a[i]`, `b[i]`, ... (names given in
 * `inputs`), using h_add / h_mul / heddle_* (declare the routines in `math`). Binds the inputs
 * (read) then `y` (read_write).
 */
export function mapKernel(cc: GpuCompileContext, o: { label: string; n: number; inputs: readonly string[]; expr: string; math?: readonly string[]; decls?: string }): Promise<Kernel> {
  const g = grid2d(Math.ceil(o.n / MAP_WG), cc.maxWorkgroups);
  return cc.kernel(
    {
      label: o.label,
      buffers: [...o.inputs.map((name) => ({ name, access: 'read' as const })), { name: 'y', access: 'read_write' }],
      math: o.math,
      consts: { N: o.n, NX: g.x },
      decls: o.decls,
      workgroupSize: [MAP_WG],
      body: `  let i = (wid.y * NX + wid.x) * ${MAP_WG}u + lid.x;
  if (i >= N) { return; }
  y[i] = ${o.expr};`,
    },
    [g.x, g.y],
  );
}

/**
 * Copies `rows` rows of `len` values from a packed source into columns off .. off + len - 1
 * of a destination whose rows hold `total` values (concatenation). Binds src (read), dst.
 */
export function copyRowsKernel(cc: GpuCompileContext, label: string, rows: number, len: number, total: number, off: number): Promise<Kernel> {
  const n = rows * len;
  const g = grid2d(Math.ceil(n / MAP_WG), cc.maxWorkgroups);
  return cc.kernel(
    {
      label,
      buffers: [{ name: 'src', access: 'read' }, { name: 'dst', access: 'read_write' }],
      consts: { N: n, LEN: len, TOTAL: total, OFF: off, NX: g.x },
      workgroupSize: [MAP_WG],
      body: `  let i = (wid.y * NX + wid.x) * ${MAP_WG}u + lid.x;
  if (i >= N) { return; }
  let r = i / LEN;
  dst[r * TOTAL + OFF + (i - r * LEN)] = src[i];`,
    },
    [g.x, g.y],
  );
}

/**
 * a + b element-wise (h_add), as a new value: two gradients meeting at one value, summed
 * existing + new as the CPU's backward does. Kernels are cached per size in `cache`.
 */
export async function sumVals(run: Run, cc: GpuCompileContext, cache: Map<number, Promise<Kernel>>, a: Val, b: Val): Promise<Val> {
  const ga = run.gpu(a);
  const gb = run.gpu(b);
  const n = shapeSize(ga.shape);
  let k = cache.get(n);
  if (!k) {
    k = mapKernel(cc, { label: `${cc.prefix} gradient sum ${n}`, n, inputs: ['a', 'b'], expr: 'h_add(a[i], b[i])' });
    cache.set(n, k);
  }
  const y = run.output(ga.shape);
  run.dispatch(await k, [ga.buffer, gb.buffer, y.buffer]);
  return y;
}
