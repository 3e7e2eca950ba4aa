/**
 * WGSL rotary position embedding: ropeApply of kernels/rope.ts, element-wise.
 *
 * The cos / sin values come from the host: a RopeTable (kernels/rope.ts, Heddle's cos / sin
 * of f32(p) * inv[i]) is computed there and its rows for the positions in use are uploaded as
 * one buffer `cs` = [cos rows of positions off .. off + seq - 1, then the sin rows]. The GPU
 * thus rotates with the very values the CPU uses; only the rotation runs here:
 *   forward: y[i] = x[i] * c - x[half + i] * s;  y[half + i] = x[half + i] * c + x[i] * s
 *   inverse: y[i] = x[i] * c + x[half + i] * s;  y[half + i] = x[half + i] * c - x[i] * s
 * each product rounded on its own (h_mul), then one rounded sum (h_add / h_sub), as the CPU.
 */
import type { GpuCompileContext } from '../backend/webgpu/kernel.ts';
import type { Kernel } from '../backend/webgpu/run.ts';
import { grid2d } from '../backend/webgpu/shader.ts';
import type { RopeTable } from './rope.ts';

const WG = 256;

export interface RopeSpec {
  readonly label: string;
  /** Token rows ([batch, seq] flattened); row r is at table row r % seq. */
  readonly rows: number;
  readonly seq: number;
  readonly heads: number;
  readonly headDim: number;
  readonly inverse: boolean;
}

/** Binds x (read), cs (read: ropeTableRows), y (read_write); x and y are rows x heads * headDim. */
export function ropeKernel(cc: GpuCompileContext, s: RopeSpec): Promise<Kernel> {
  const half = s.headDim / 2;
  const n = s.rows * s.heads * half;
  const g = grid2d(Math.ceil(n / WG), cc.maxWorkgroups);
  const lo = s.inverse ? 'h_add(h_mul(a, c), h_mul(b, sn))' : 'h_sub(h_mul(a, c), h_mul(b, sn))';
  const hi = s.inverse ? 'h_sub(h_mul(b, c), h_mul(a, sn))' : 'h_add(h_mul(b, c), h_mul(a, sn))';
  return cc.kernel(
    {
      label: s.label,
      buffers: [{ name: 'x', access: 'read' }, { name: 'cs', access: 'read' }, { name: 'y', access: 'read_write' }],
      consts: { N: n, HALF: half, HEADS: s.heads, SEQ: s.seq, NX: g.x },
      workgroupSize: [WG],
      body: `  let idx = (wid.y * NX + wid.x) * ${WG}u + lid.x;
  if (idx >= N) { return; }
  let i = idx % HALF;
  let rh = idx / HALF;
  let r = rh / HEADS;
  let o = rh * (2u * HALF);
  let t = (r % SEQ) * HALF + i;
  let c = cs[t];
  let sn = cs[SEQ * HALF + t];
  let a = x[o + i];
  let b = x[o + HALF + i];
  y[o + i] = ${lo};
  y[o + HALF + i] = ${hi};`,
    },
    [g.x, g.y],
  );
}

/** The table rows for positions off .. off + seq - 1: cos rows, then sin rows (seq * half each). */
export function ropeTableRows(table: RopeTable, off: number, seq: number): Float32Array {
  const h = table.half;
  table.ensure(off + seq);
  const out = new Float32Array(2 * seq * h);
  out.set(table.cos.subarray(off * h, (off + seq) * h), 0);
  out.set(table.sin.subarray(off * h, (off + seq) * h), seq * h);
  return out;
}
