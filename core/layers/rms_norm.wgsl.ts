/**
 * rms_norm on the GPU, one workgroup per row, in rms_norm.ts's canonical order: invocation 0
 * forms ms = (sum over i ascending of x[i] * x[i]) / n and r = rsqrt(ms + eps); every
 * invocation then writes y[i] = (x[i] * r) * weight[i] for its strided share of i.
 */
import type { GpuCompileContext, GpuLayerKernel, LayerOp } from '../backend/webgpu/kernel.ts';
import { paramOf } from '../backend/webgpu/kernel.ts';
import type { Run, Val } from '../backend/webgpu/run.ts';
import { f32Lit, grid2d } from '../backend/webgpu/shader.ts';
import { f32 } from '../math/index.ts';
import type { Layer } from './layer.ts';
import { NORM_WG } from './layer_norm.wgsl.ts';
import type { RmsNormConfig } from './rms_norm.ts';

export const rmsNormGpu: GpuLayerKernel = {
  type: 'rms_norm',
  async compile(layer: Layer, cc: GpuCompileContext): Promise<LayerOp> {
    const cfg = layer.config as RmsNormConfig;
    const n = cfg.norm_size;
    const size = cc.batch * layer.inputShape.reduce((a, b) => a * b, 1);
    const rows = size / n;
    cc.need(size, `${cc.prefix} (rms_norm) activations`);
    const w = paramOf(layer, 'weight');
    const g = grid2d(rows, cc.maxWorkgroups);
    const kernel = await cc.kernel(
      {
        label: `${cc.prefix} rms_norm ${rows}x${n}`,
        buffers: [{ name: 'x', access: 'read' }, ...(w ? [{ name: 'w', access: 'read' as const }] : []), { name: 'y', access: 'read_write' }],
        math: ['div', 'rsqrt'],
        consts: { ROWS: rows, N: n, NX: g.x, WG: NORM_WG },
        decls: 'var<workgroup> sh_r: f32;',
        workgroupSize: [NORM_WG],
        body: `  let row = wid.y * NX + wid.x;
  if (row >= ROWS) { return; }
  let base = row * N;
  if (lid.x == 0u) {
    var ss = 0.0;
    for (var i = 0u; i < N; i++) { ss = h_add(ss, h_mul(x[base + i], x[base + i])); }
    sh_r = heddle_rsqrt(h_add(heddle_div(ss, ${f32Lit(n)}), ${f32Lit(f32(cfg.epsilon))}));
  }
  workgroupBarrier();
  let r = sh_r;
  for (var i = lid.x; i < N; i += WG) {
    let h = h_mul(x[base + i], r);
    y[base + i] = ${w ? 'h_mul(h, w[i])' : 'h'};
  }`,
      },
      [g.x, g.y],
    );
    const wb = w ? cc.weight(w) : null;
    const outShape = [cc.batch, ...layer.outputShape];
    return async (run: Run, xv: Val): Promise<Val> => {
      const x = run.gpu(xv);
      const y = run.output(outShape);
      run.dispatch(kernel, wb ? [x.buffer, wb, y.buffer] : [x.buffer, y.buffer]);
      return y;
    };
  },
};
