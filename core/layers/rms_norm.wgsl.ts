/**
 * rms_norm on the GPU, one workgroup per row, in rms_norm.ts's canonical order: invocation 0
 * forms ms = (sum over i ascending of x[i] * x[i]) / n and r = rsqrt(ms + eps); every
 * invocation then writes y[i] = (x[i] * r) * weight[i] for its strided share of i.
 */
import type { GpuCompileContext, GpuLayerKernel, GpuTrainContext, LayerOp, TrainOp } from '../backend/webgpu/kernel.ts';
import type { Kernel } from '../backend/webgpu/run.ts';
import { paramOf } from '../backend/webgpu/kernel.ts';
import type { Run, Val } from '../backend/webgpu/run.ts';
import { f32Lit, grid2d } from '../backend/webgpu/shader.ts';
import { f32 } from '../math/index.ts';
import type { Layer } from './layer.ts';
import { NORM_WG } from './layer_norm.wgsl.ts';
import type { RmsNormConfig } from './rms_norm.ts';

/** The forward kernel; with `save`, also writes xhat = x * r and r per row (training). */
function forwardKernel(layer: Layer, cc: GpuCompileContext, save: boolean): Promise<Kernel> {
  const cfg = layer.config as RmsNormConfig;
  const n = cfg.norm_size;
  const size = cc.batch * layer.inputShape.reduce((a, b) => a * b, 1);
  const rows = size / n;
  cc.need(size, `${cc.prefix} (rms_norm) activations`);
  const w = paramOf(layer, 'weight');
  const g = grid2d(rows, cc.maxWorkgroups);
  return cc.kernel(
    {
      label: `${cc.prefix} rms_norm ${rows}x${n}${save ? ' (training)' : ''}`,
      buffers: [
        { name: 'x', access: 'read' },
        ...(w ? [{ name: 'w', access: 'read' as const }] : []),
        { name: 'y', access: 'read_write' },
        ...(save ? [{ name: 'xh', access: 'read_write' as const }, { name: 'rs', access: 'read_write' as const }] : []),
      ],
      math: ['div', 'rsqrt'],
      consts: { ROWS: rows, N: n, NX: g.x, WG: NORM_WG },
      decls: 'var<workgroup> sh_r: f32;',
      workgroupSize: [NORM_WG],
      body: `  let row = wid.y * NX + wid.x;
  if (row >= ROWS) { return; }
  let base = row * N;
  if (lid.x == 0u) {
    var ss = h_zero();
    for (var i = 0u; i < N; i++) { ss = h_add(ss, h_mul(x[base + i], x[base + i])); }
    sh_r = heddle_rsqrt(h_add(heddle_div(ss, ${f32Lit(n)}), ${f32Lit(f32(cfg.epsilon))}));
${save ? '    rs[row] = sh_r;\n' : ''}  }
  workgroupBarrier();
  let r = sh_r;
  for (var i = lid.x; i < N; i += WG) {
    let h = h_mul(x[base + i], r);
${save ? '    xh[base + i] = h;\n' : ''}    y[base + i] = ${w ? 'h_mul(h, w[i])' : 'h'};
  }`,
    },
    [g.x, g.y],
  );
}

export const rmsNormGpu: GpuLayerKernel = {
  type: 'rms_norm',
  async compile(layer: Layer, cc: GpuCompileContext): Promise<LayerOp> {
    const kernel = await forwardKernel(layer, cc, false);
    const w = paramOf(layer, 'weight');
    const wb = w ? cc.weight(w) : null;
    const outShape = [cc.batch, ...layer.outputShape];
    return async (run: Run, xv: Val): Promise<Val> => {
      const x = run.gpu(xv);
      const y = run.output(outShape);
      run.dispatch(kernel, wb ? [x.buffer, wb, y.buffer] : [x.buffer, y.buffer]);
      return y;
    };
  },
  /**
   * Backward in rms_norm.ts's order, one workgroup per row: invocation 0 forms
   * s2 = sum over i ascending of v * xhat (v = dy * weight, or dy), m = s2 / n; then
   * dx[i] = r * (v - xhat * m). Weight gradient: one invocation per i, the sum over rows
   * ascending of dy * xhat from +0, then added into the gradient.
   */
  async compileTrain(layer: Layer, cc: GpuTrainContext): Promise<TrainOp> {
    const cfg = layer.config as RmsNormConfig;
    const n = cfg.norm_size;
    const size = cc.batch * layer.inputShape.reduce((a, b) => a * b, 1);
    const rows = size / n;
    const fwd = await forwardKernel(layer, cc, true);
    const w = paramOf(layer, 'weight');
    const g = grid2d(rows, cc.maxWorkgroups);
    const v = w ? 'h_mul(dy[base + i], w[i])' : 'dy[base + i]';
    const dxK = await cc.kernel(
      {
        label: `${cc.prefix} rms_norm ${rows}x${n} dx`,
        buffers: [{ name: 'dy', access: 'read' }, { name: 'xh', access: 'read' }, { name: 'rs', access: 'read' }, ...(w ? [{ name: 'w', access: 'read' as const }] : []), { name: 'dx', access: 'read_write' }],
        math: ['div'],
        consts: { ROWS: rows, N: n, NX: g.x, WG: NORM_WG },
        decls: 'var<workgroup> sh_m: f32;',
        workgroupSize: [NORM_WG],
        body: `  let row = wid.y * NX + wid.x;
  if (row >= ROWS) { return; }
  let base = row * N;
  if (lid.x == 0u) {
    var s2 = h_zero();
    for (var i = 0u; i < N; i++) { s2 = h_add(s2, h_mul(${v}, xh[base + i])); }
    sh_m = heddle_div(s2, ${f32Lit(n)});
  }
  workgroupBarrier();
  let m = sh_m;
  let r = rs[row];
  for (var i = lid.x; i < N; i += WG) {
    dx[base + i] = h_mul(r, h_sub(${v}, h_mul(xh[base + i], m)));
  }`,
      },
      [g.x, g.y],
    );
    const dwK = w
      ? await cc.kernel(
          {
            label: `${cc.prefix} rms_norm ${rows}x${n} dw`,
            buffers: [{ name: 'dy', access: 'read' }, { name: 'xh', access: 'read' }, { name: 'gw', access: 'read_write' }],
            consts: { ROWS: rows, N: n },
            workgroupSize: [64],
            body: `  let i = gid.x;
  if (i >= N) { return; }
  var dw = h_zero();
  for (var r = 0u; r < ROWS; r++) { dw = h_add(dw, h_mul(dy[r * N + i], xh[r * N + i])); }
  gw[i] = h_add(gw[i], dw);`,
          },
          [Math.ceil(n / 64)],
        )
      : null;
    const wb = w ? cc.weight(w) : null;
    const gw = w ? cc.grad(w) : null;
    const shape = [cc.batch, ...layer.outputShape];
    return {
      async forward(run: Run, xv: Val) {
        const x = run.gpu(xv);
        const y = run.output(shape);
        const xh = run.output(shape);
        const rs = run.output([rows]);
        run.dispatch(fwd, wb ? [x.buffer, wb, y.buffer, xh.buffer, rs.buffer] : [x.buffer, y.buffer, xh.buffer, rs.buffer]);
        return { y, saved: { xh, rs } };
      },
      async backward(run: Run, saved: unknown, dyv: Val) {
        const { xh, rs } = saved as { xh: Val & { kind: 'gpu' }; rs: Val & { kind: 'gpu' } };
        const dy = run.gpu(dyv);
        const dx = run.output(shape);
        run.dispatch(dxK, wb ? [dy.buffer, xh.buffer, rs.buffer, wb, dx.buffer] : [dy.buffer, xh.buffer, rs.buffer, dx.buffer]);
        if (dwK && gw) run.dispatch(dwK, [dy.buffer, xh.buffer, gw]);
        return { dx };
      },
    };
  },
};
