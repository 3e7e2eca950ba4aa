/**
 * layer_norm on the GPU, one workgroup per row, in layer_norm.ts's canonical order:
 * invocation 0 forms the sequential sums (mean = (sum x ascending) / n, then
 * var = (sum (x - mean)^2 ascending) / n, rstd = rsqrt(var + eps)); every invocation then
 * writes y[i] = ((x[i] - mean) * rstd) * weight[i] + bias[i] for its strided share of i.
 */
import type { GpuCompileContext, GpuLayerKernel, GpuTrainContext, LayerOp, TrainOp } from '../backend/webgpu/kernel.ts';
import type { Kernel } from '../backend/webgpu/run.ts';
import { paramOf } from '../backend/webgpu/kernel.ts';
import type { Run, Val } from '../backend/webgpu/run.ts';
import { f32Lit, grid2d } from '../backend/webgpu/shader.ts';
import { f32 } from '../math/index.ts';
import type { Layer } from './layer.ts';
import type { LayerNormConfig } from './layer_norm.ts';

/** Invocations per row of the norm kernels. */
export const NORM_WG = 64;

/** The forward kernel; with `save`, also writes xhat (x - mean) * rstd and rstd per row (training). */
function forwardKernel(layer: Layer, cc: GpuCompileContext, save: boolean): Promise<Kernel> {
  const cfg = layer.config as LayerNormConfig;
  const n = cfg.norm_size;
  const size = cc.batch * layer.inputShape.reduce((a, b) => a * b, 1);
  const rows = size / n;
  cc.need(size, `${cc.prefix} (layer_norm) activations`);
  const affine = paramOf(layer, 'weight') !== null && paramOf(layer, 'bias') !== null;
  const g = grid2d(rows, cc.maxWorkgroups);
  return cc.kernel(
    {
      label: `${cc.prefix} layer_norm ${rows}x${n}${save ? ' (training)' : ''}`,
      buffers: [
        { name: 'x', access: 'read' },
        ...(affine ? [{ name: 'w', access: 'read' as const }, { name: 'b', access: 'read' as const }] : []),
        { name: 'y', access: 'read_write' },
        ...(save ? [{ name: 'xh', access: 'read_write' as const }, { name: 'rs', access: 'read_write' as const }] : []),
      ],
      math: ['div', 'rsqrt'],
      consts: { ROWS: rows, N: n, NX: g.x, WG: NORM_WG },
      decls: 'var<workgroup> sh_mean: f32;\nvar<workgroup> sh_rstd: f32;',
      workgroupSize: [NORM_WG],
      body: `  let row = wid.y * NX + wid.x;
  if (row >= ROWS) { return; }
  let base = row * N;
  if (lid.x == 0u) {
    var s = h_zero();
    for (var i = 0u; i < N; i++) { s = h_add(s, x[base + i]); }
    let mean = heddle_div(s, ${f32Lit(n)});
    var ss = h_zero();
    for (var i = 0u; i < N; i++) {
      let d = h_sub(x[base + i], mean);
      ss = h_add(ss, h_mul(d, d));
    }
    sh_mean = mean;
    sh_rstd = heddle_rsqrt(h_add(heddle_div(ss, ${f32Lit(n)}), ${f32Lit(f32(cfg.epsilon))}));
${save ? '    rs[row] = sh_rstd;\n' : ''}  }
  workgroupBarrier();
  let mean = sh_mean;
  let rstd = sh_rstd;
  for (var i = lid.x; i < N; i += WG) {
    let h = h_mul(h_sub(x[base + i], mean), rstd);
${save ? '    xh[base + i] = h;\n' : ''}    y[base + i] = ${affine ? 'h_add(h_mul(h, w[i]), b[i])' : 'h'};
  }`,
    },
    [g.x, g.y],
  );
}

export const layerNormGpu: GpuLayerKernel = {
  type: 'layer_norm',
  async compile(layer: Layer, cc: GpuCompileContext): Promise<LayerOp> {
    const kernel = await forwardKernel(layer, cc, false);
    const w = paramOf(layer, 'weight');
    const b = paramOf(layer, 'bias');
    const wb = w && b ? cc.weight(w) : null;
    const bb = w && b ? cc.weight(b) : null;
    const outShape = [cc.batch, ...layer.outputShape];
    return async (run: Run, xv: Val): Promise<Val> => {
      const x = run.gpu(xv);
      const y = run.output(outShape);
      run.dispatch(kernel, wb && bb ? [x.buffer, wb, bb, y.buffer] : [x.buffer, y.buffer]);
      return y;
    };
  },
  /**
   * Backward in layer_norm.ts's order, one workgroup per row: invocation 0 forms
   * s1 = sum v and s2 = sum v * xhat over i ascending (v = dy * weight, or dy), m1 = s1 / n,
   * m2 = s2 / n; then dx[i] = rstd * ((v - m1) - xhat * m2). Weight and bias gradients: one
   * invocation per i, sums over rows ascending from +0, then added into the gradients.
   */
  async compileTrain(layer: Layer, cc: GpuTrainContext): Promise<TrainOp> {
    const cfg = layer.config as LayerNormConfig;
    const n = cfg.norm_size;
    const size = cc.batch * layer.inputShape.reduce((a, b) => a * b, 1);
    const rows = size / n;
    const fwd = await forwardKernel(layer, cc, true);
    const w = paramOf(layer, 'weight');
    const b = paramOf(layer, 'bias');
    const affine = w !== null && b !== null;
    const g = grid2d(rows, cc.maxWorkgroups);
    const v = affine ? 'h_mul(dy[base + i], w[i])' : 'dy[base + i]';
    const dxK = await cc.kernel(
      {
        label: `${cc.prefix} layer_norm ${rows}x${n} dx`,
        buffers: [{ name: 'dy', access: 'read' }, { name: 'xh', access: 'read' }, { name: 'rs', access: 'read' }, ...(affine ? [{ name: 'w', access: 'read' as const }] : []), { name: 'dx', access: 'read_write' }],
        math: ['div'],
        consts: { ROWS: rows, N: n, NX: g.x, WG: NORM_WG },
        decls: 'var<workgroup> sh_m1: f32;\nvar<workgroup> sh_m2: f32;',
        workgroupSize: [NORM_WG],
        body: `  let row = wid.y * NX + wid.x;
  if (row >= ROWS) { return; }
  let base = row * N;
  if (lid.x == 0u) {
    var s1 = h_zero();
    var s2 = h_zero();
    for (var i = 0u; i < N; i++) {
      let v = ${v};
      s1 = h_add(s1, v);
      s2 = h_add(s2, h_mul(v, xh[base + i]));
    }
    sh_m1 = heddle_div(s1, ${f32Lit(n)});
    sh_m2 = heddle_div(s2, ${f32Lit(n)});
  }
  workgroupBarrier();
  let m1 = sh_m1;
  let m2 = sh_m2;
  let r = rs[row];
  for (var i = lid.x; i < N; i += WG) {
    let v = ${v};
    dx[base + i] = h_mul(r, h_sub(h_sub(v, m1), h_mul(xh[base + i], m2)));
  }`,
      },
      [g.x, g.y],
    );
    const dwK = affine
      ? await cc.kernel(
          {
            label: `${cc.prefix} layer_norm ${rows}x${n} dw db`,
            buffers: [{ name: 'dy', access: 'read' }, { name: 'xh', access: 'read' }, { name: 'gw', access: 'read_write' }, { name: 'gb', access: 'read_write' }],
            consts: { ROWS: rows, N: n },
            workgroupSize: [64],
            body: `  let i = gid.x;
  if (i >= N) { return; }
  var dw = h_zero();
  var db = h_zero();
  for (var r = 0u; r < ROWS; r++) {
    dw = h_add(dw, h_mul(dy[r * N + i], xh[r * N + i]));
    db = h_add(db, dy[r * N + i]);
  }
  gw[i] = h_add(gw[i], dw);
  gb[i] = h_add(gb[i], db);`,
          },
          [Math.ceil(n / 64)],
        )
      : null;
    const wb = affine ? cc.weight(w) : null;
    const bb = affine ? cc.weight(b) : null;
    const gw = affine ? cc.grad(w) : null;
    const gb = affine ? cc.grad(b) : null;
    const shape = [cc.batch, ...layer.outputShape];
    return {
      async forward(run: Run, xv: Val) {
        const x = run.gpu(xv);
        const y = run.output(shape);
        const xh = run.output(shape);
        const rs = run.output([rows]);
        run.dispatch(fwd, wb && bb ? [x.buffer, wb, bb, y.buffer, xh.buffer, rs.buffer] : [x.buffer, y.buffer, xh.buffer, rs.buffer]);
        return { y, saved: { xh, rs } };
      },
      async backward(run: Run, saved: unknown, dyv: Val) {
        const { xh, rs } = saved as { xh: Val & { kind: 'gpu' }; rs: Val & { kind: 'gpu' } };
        const dy = run.gpu(dyv);
        const dx = run.output(shape);
        run.dispatch(dxK, wb ? [dy.buffer, xh.buffer, rs.buffer, wb, dx.buffer] : [dy.buffer, xh.buffer, rs.buffer, dx.buffer]);
        if (dwK && gw && gb) run.dispatch(dwK, [dy.buffer, xh.buffer, gw, gb]);
        return { dx };
      },
    };
  },
};
