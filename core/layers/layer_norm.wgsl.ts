/**
 * layer_norm on the GPU, one workgroup per row, in layer_norm.ts's canonical order:
 * invocation 0 forms the sequential sums (mean = (sum x ascending) / n, then
 * var = (sum (x - mean)^2 ascending) / n, rstd = rsqrt(var + eps)); every invocation then
 * writes y[i] = ((x[i] - mean) * rstd) * weight[i] + bias[i] for its strided share of i.
 */
import type { GpuCompileContext, GpuLayerKernel, LayerOp } from '../backend/webgpu/kernel.ts';
import { paramOf } from '../backend/webgpu/kernel.ts';
import type { Run, Val } from '../backend/webgpu/run.ts';
import { f32Lit, grid2d } from '../backend/webgpu/shader.ts';
import { f32 } from '../math/index.ts';
import type { Layer } from './layer.ts';
import type { LayerNormConfig } from './layer_norm.ts';

/** Invocations per row of the norm kernels. */
export const NORM_WG = 64;

export const layerNormGpu: GpuLayerKernel = {
  type: 'layer_norm',
  async compile(layer: Layer, cc: GpuCompileContext): Promise<LayerOp> {
    const cfg = layer.config as LayerNormConfig;
    const n = cfg.norm_size;
    const size = cc.batch * layer.inputShape.reduce((a, b) => a * b, 1);
    const rows = size / n;
    cc.need(size, `${cc.prefix} (layer_norm) activations`);
    const w = paramOf(layer, 'weight');
    const b = paramOf(layer, 'bias');
    const affine = w !== null && b !== null;
    const g = grid2d(rows, cc.maxWorkgroups);
    const kernel = await cc.kernel(
      {
        label: `${cc.prefix} layer_norm ${rows}x${n}`,
        buffers: [{ name: 'x', access: 'read' }, ...(affine ? [{ name: 'w', access: 'read' as const }, { name: 'b', access: 'read' as const }] : []), { name: 'y', access: 'read_write' }],
        math: ['div', 'rsqrt'],
        consts: { ROWS: rows, N: n, NX: g.x, WG: NORM_WG },
        decls: 'var<workgroup> sh_mean: f32;\nvar<workgroup> sh_rstd: f32;',
        workgroupSize: [NORM_WG],
        body: `  let row = wid.y * NX + wid.x;
  if (row >= ROWS) { return; }
  let base = row * N;
  if (lid.x == 0u) {
    var s = 0.0;
    for (var i = 0u; i < N; i++) { s = h_add(s, x[base + i]); }
    let mean = heddle_div(s, ${f32Lit(n)});
    var ss = 0.0;
    for (var i = 0u; i < N; i++) {
      let d = h_sub(x[base + i], mean);
      ss = h_add(ss, h_mul(d, d));
    }
    sh_mean = mean;
    sh_rstd = heddle_rsqrt(h_add(heddle_div(ss, ${f32Lit(n)}), ${f32Lit(f32(cfg.epsilon))}));
  }
  workgroupBarrier();
  let mean = sh_mean;
  let rstd = sh_rstd;
  for (var i = lid.x; i < N; i += WG) {
    let h = h_mul(h_sub(x[base + i], mean), rstd);
    y[base + i] = ${affine ? 'h_add(h_mul(h, w[i]), b[i])' : 'h'};
  }`,
      },
      [g.x, g.y],
    );
    const wb = affine ? cc.weight(w) : null;
    const bb = affine ? cc.weight(b) : null;
    const outShape = [cc.batch, ...layer.outputShape];
    return async (run: Run, xv: Val): Promise<Val> => {
      const x = run.gpu(xv);
      const y = run.output(outShape);
      run.dispatch(kernel, wb && bb ? [x.buffer, wb, bb, y.buffer] : [x.buffer, y.buffer]);
      return y;
    };
  },
};
