/**
 * The backward products of kernels/linear.ts in WGSL, as the recurrent layers use them
 * (core/layers/recurrent.wgsl.ts), in linear.ts's canonical order:
 *   input grad  dx[r, k] = sum over o = 0..O-1 ascending of h_mul(dy[r, o], W[o, k]), from +0
 *   param grads gW[o, k] = h_add(gW[o, k], sum over r = 0..R-1 ascending of h_mul(dy[r, o], x[r, k]) from +0)
 *               gb[o]    = h_add(gb[o], sum over r ascending of dy[r, o] from +0)
 * One invocation per output element; every sum is sequential, so its order is the CPU's.
 * Accumulators start at a run-time +0 (h_zero()), not the literal 0.0: Mesa (lavapipe)
 * unrolls short constant loops and folds `0.0 + p` into `p`, which turns a -0 product into a
 * -0 sum where the CPU's +0 + -0 gives +0.
 */
import type { GpuCompileContext } from '../backend/webgpu/kernel.ts';
import type { Kernel } from '../backend/webgpu/run.ts';
import { grid2d } from '../backend/webgpu/shader.ts';

const WG = 64;

/** dx[R, K] = dy[R, O] . W[O, K]. Binds dy, w (read), dx. */
export function linearInputGradKernel(cc: GpuCompileContext, label: string, rows: number, outF: number, inF: number): Promise<Kernel> {
  const g = grid2d(Math.ceil((rows * inF) / WG), cc.maxWorkgroups);
  return cc.kernel(
    {
      label,
      buffers: [{ name: 'dy', access: 'read' }, { name: 'w', access: 'read' }, { name: 'dx', access: 'read_write' }],
      consts: { R: rows, O: outF, K: inF, NX: g.x },
      workgroupSize: [WG],
      body: `  let idx = (wid.y * NX + wid.x) * ${WG}u + lid.x;
  if (idx >= R * K) { return; }
  let r = idx / K;
  let k = idx - r * K;
  var acc = h_zero();
  for (var o = 0u; o < O; o++) {
    acc = h_add(acc, h_mul(dy[r * O + o], w[o * K + k]));
  }
  dx[idx] = acc;`,
    },
    [g.x, g.y],
  );
}

/**
 * gW[O, K] += dy[R, O]^T . x[R, K], x read from element `xOffset` of its buffer (a section of a
 * larger saved buffer). Binds dy, x (read), gw.
 */
export function linearWeightGradKernel(cc: GpuCompileContext, label: string, rows: number, outF: number, inF: number, xOffset: number): Promise<Kernel> {
  const g = grid2d(Math.ceil((outF * inF) / WG), cc.maxWorkgroups);
  return cc.kernel(
    {
      label,
      buffers: [{ name: 'dy', access: 'read' }, { name: 'x', access: 'read' }, { name: 'gw', access: 'read_write' }],
      consts: { R: rows, O: outF, K: inF, XOFF: xOffset, NX: g.x },
      workgroupSize: [WG],
      body: `  let idx = (wid.y * NX + wid.x) * ${WG}u + lid.x;
  if (idx >= O * K) { return; }
  let o = idx / K;
  let k = idx - o * K;
  var acc = h_zero();
  for (var r = 0u; r < R; r++) {
    acc = h_add(acc, h_mul(dy[r * O + o], x[XOFF + r * K + k]));
  }
  gw[idx] = h_add(gw[idx], acc);`,
    },
    [g.x, g.y],
  );
}

/** gb[O] += column sums of dy[R, O]. Binds dy (read), gb. */
export function linearBiasGradKernel(cc: GpuCompileContext, label: string, rows: number, outF: number): Promise<Kernel> {
  const g = grid2d(Math.ceil(outF / WG), cc.maxWorkgroups);
  return cc.kernel(
    {
      label,
      buffers: [{ name: 'dy', access: 'read' }, { name: 'gb', access: 'read_write' }],
      consts: { R: rows, O: outF, NX: g.x },
      workgroupSize: [WG],
      body: `  let o = (wid.y * NX + wid.x) * ${WG}u + lid.x;
  if (o >= O) { return; }
  var acc = h_zero();
  for (var r = 0u; r < R; r++) {
    acc = h_add(acc, dy[r * O + o]);
  }
  gb[o] = h_add(gb[o], acc);`,
    },
    [g.x, g.y],
  );
}
