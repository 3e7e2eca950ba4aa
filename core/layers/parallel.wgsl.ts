/**
 * parallel on the GPU: every branch's op on the same input, then the combine of parallel.ts:
 *   add       y = ((b0 + b1) + b2) + ...            (one dispatch per branch after the first)
 *   avg       the same sum, then y / n (heddle_div)
 *   multiply  y = ((b0 * b1) * b2) * ...
 *   concat, grid_scatter   strided row copies into the output layout
 *   filter    (standard gate softmax) z = gate(x) (/ T), g = softmax rows of n, then
 *             y[i] = sum over j ascending of g[j] * b_j[i], from +0 (one dispatch per branch)
 *             (sparsemax / entmax gate: z / T, then the sorted-row kernels of kernels/softmax.wgsl.ts)
 * Training of a parallel layer runs on the CPU inside the GPU step (no GPU backward yet).
 */
import { MAP_WG, copyRowsKernel, mapKernel } from '../backend/webgpu/common.ts';
import type { GpuCompileContext, GpuLayerKernel, LayerOp } from '../backend/webgpu/kernel.ts';
import type { Kernel, Run, Val } from '../backend/webgpu/run.ts';
import { f32Lit, grid2d } from '../backend/webgpu/shader.ts';
import { entmax15RowsKernels, softmaxRowsKernel, sparsemaxRowsKernels } from '../kernels/softmax.wgsl.ts';
import { f32 } from '../math/index.ts';
import { shapeEquals, shapeSize } from '../tensor.ts';
import type { Layer, Shape } from './layer.ts';
import type { ParallelConfig } from './parallel.ts';

interface GridPos {
  target_row: number;
  target_col: number;
  target_layer: number;
}

/** Row layout of concat / grid_scatter, as ParallelLayer computes it. */
function layout(cfg: ParallelConfig, shapes: readonly Shape[]): { rowsPerSample: number; segs: number[]; offs: number[] } {
  if (cfg.combine_mode === 'concat') {
    const r = shapes[0].length;
    const lastDim = r > 0 && shapes.every((s) => s.length === r && shapeEquals(s.slice(0, -1), shapes[0].slice(0, -1)));
    const segs = lastDim ? shapes.map((s) => s[r - 1]) : shapes.map((s) => shapeSize(s));
    const rowsPerSample = lastDim ? shapeSize(shapes[0].slice(0, -1)) : 1;
    const offs: number[] = [];
    let off = 0;
    for (const len of segs) {
      offs.push(off);
      off += len;
    }
    return { rowsPerSample, segs, offs };
  }
  const cols = cfg.grid_output_cols as number, layers = cfg.grid_output_layers as number;
  const pos = cfg.grid_positions as unknown as GridPos[];
  const cellOf = pos.map((p) => (p.target_row * cols + p.target_col) * layers + p.target_layer);
  const segs = shapes.map((s) => shapeSize(s));
  const order = Array.from({ length: shapes.length }, (_, j) => j).sort((a, b) => cellOf[a] - cellOf[b]);
  const offs = new Array<number>(shapes.length).fill(0);
  let off = 0;
  for (const j of order) {
    offs[j] = off;
    off += segs[j];
  }
  return { rowsPerSample: 1, segs, offs };
}

export const parallelGpu: GpuLayerKernel = {
  type: 'parallel',
  unsupported(layer: Layer): string | null {
    const cfg = layer.config as ParallelConfig;
    void cfg;
    return null;
  },
  async compile(layer: Layer, cc: GpuCompileContext): Promise<LayerOp> {
    const cfg = layer.config as ParallelConfig;
    const branches = layer.children.filter((c) => c.prefix.startsWith('branches.'));
    const gateChild = layer.children.find((c) => c.prefix === 'gate') ?? null;
    const ops: LayerOp[] = [];
    for (const c of branches) ops.push(await cc.child(c.layer, c.prefix));
    const gateOp = gateChild ? await cc.child(gateChild.layer, gateChild.prefix) : null;
    const n = branches.length;
    const batch = cc.batch;
    const outShape = [batch, ...layer.outputShape];
    const size = shapeSize(outShape);
    cc.need(size, `${cc.prefix} (parallel) output`);
    const runBranches = async (run: Run, x: Val): Promise<Val[]> => {
      const outs: Val[] = [];
      for (const op of ops) outs.push(await op(run, x));
      return outs;
    };
    const label = `${cc.prefix} parallel ${cfg.combine_mode}`;
    switch (cfg.combine_mode) {
      case 'add':
      case 'avg':
      case 'multiply': {
        const op = cfg.combine_mode === 'multiply' ? 'h_mul' : 'h_add';
        const first = n > 1 ? await mapKernel(cc, { label: `${label} first`, n: size, inputs: ['a', 'b'], expr: `${op}(a[i], b[i])` }) : null;
        const next = n > 2 ? await mapKernel(cc, { label: `${label} next`, n: size, inputs: ['b'], expr: `${op}(y[i], b[i])` }) : null;
        const avg = cfg.combine_mode === 'avg' ? await mapKernel(cc, { label: `${label} divide`, n: size, inputs: [], expr: `heddle_div(y[i], ${f32Lit(n)})`, math: ['div'] }) : null;
        return async (run: Run, x: Val): Promise<Val> => {
          const outs = await runBranches(run, x);
          let y = run.gpu(outs[0]);
          if (first) {
            const acc = run.output(outShape);
            run.dispatch(first, [y.buffer, run.gpu(outs[1]).buffer, acc.buffer]);
            for (let j = 2; j < n; j++) run.dispatch(next!, [run.gpu(outs[j]).buffer, acc.buffer]);
            y = acc;
          }
          if (avg) {
            if (!first) {
              const copy = run.output(outShape);
              run.copy(y.buffer, 0, copy.buffer, 0, size * 4);
              y = copy;
            }
            run.dispatch(avg, [y.buffer]);
          }
          return y;
        };
      }
      case 'concat':
      case 'grid_scatter': {
        const { rowsPerSample, segs, offs } = layout(cfg, branches.map((c) => c.layer.outputShape));
        const total = segs.reduce((a, b) => a + b, 0);
        const rows = batch * rowsPerSample;
        const copies: Kernel[] = [];
        for (let j = 0; j < n; j++) copies.push(await copyRowsKernel(cc, `${label} branch ${j}`, rows, segs[j], total, offs[j]));
        return async (run: Run, x: Val): Promise<Val> => {
          const outs = await runBranches(run, x);
          const y = run.output(outShape);
          for (let j = 0; j < n; j++) if (segs[j] > 0) run.dispatch(copies[j], [run.gpu(outs[j]).buffer, y.buffer]);
          return y;
        };
      }
      case 'filter': {
        const t = f32(cfg.filter_temperature as number);
        const kind = cfg.filter_softmax as string;
        // the gate: z (/ T) then the row softmax of the chosen kind over the n branches (parallel.ts gateForward)
        const gate = kind === 'standard' ? await softmaxRowsKernel(cc, { label: `${label} gate softmax`, rows: batch, rowLen: n, temperature: t === 1 ? null : t }) : null;
        const scale = kind !== 'standard' && t !== 1 ? await mapKernel(cc, { label: `${label} gate / T`, n: batch * n, inputs: ['a'], expr: `heddle_div(a[i], ${f32Lit(t)})`, math: ['div'] }) : null;
        const sorted = kind === 'sparsemax' ? await sparsemaxRowsKernels(cc, { label: `${label} gate sparsemax`, rows: batch, rowLen: n }) : kind === 'entmax' ? await entmax15RowsKernels(cc, { label: `${label} gate entmax`, rows: batch, rowLen: n }) : null;
        const per = size / batch;
        const gx = grid2d(Math.ceil(size / MAP_WG), cc.maxWorkgroups);
        const mix = (j: number): Promise<Kernel> =>
          cc.kernel(
            {
              label: `${label} mix ${j}`,
              buffers: [{ name: 'g', access: 'read' }, { name: 'b', access: 'read' }, { name: 'y', access: 'read_write' }],
              consts: { N: size, PER: per, NB: n, J: j, NX: gx.x },
              workgroupSize: [MAP_WG],
              body: `  let i = (wid.y * NX + wid.x) * ${MAP_WG}u + lid.x;
  if (i >= N) { return; }
  let p = h_mul(g[(i / PER) * NB + J], b[i]);
  ${j === 0 ? 'y[i] = h_add(h_zero(), p);' : 'y[i] = h_add(y[i], p);'}`,
            },
            [gx.x, gx.y],
          );
        const mixes: Kernel[] = [];
        for (let j = 0; j < n; j++) mixes.push(await mix(j));
        return async (run: Run, x: Val): Promise<Val> => {
          const outs = await runBranches(run, x);
          let z = run.gpu(await gateOp!(run, x));
          const g = run.output([batch, n]);
          if (gate) run.dispatch(gate, [z.buffer, g.buffer]);
          else {
            if (scale) {
              const zs = run.output([batch, n]);
              run.dispatch(scale, [z.buffer, zs.buffer]);
              z = zs;
            }
            sorted!(run, z.buffer, g.buffer, kind === 'entmax' ? run.alloc(batch * n) : undefined);
          }
          const y = run.output(outShape);
          for (let j = 0; j < n; j++) run.dispatch(mixes[j], [g.buffer, run.gpu(outs[j]).buffer, y.buffer]);
          return y;
        };
      }
    }
  },
};
