/**
 * swiglu on the GPU (the CPU reference is core/layers/swiglu.ts), forward and training:
 *   g = x Wg^T, u = x Wu^T      dense's linear kernel (no bias, sum over d ascending)
 *   a = (g * sigmoid(g)) * u    element-wise (heddle_sigmoid: the CPU's sigmoid)
 *   y = a Wd^T                  dense's linear kernel (sum over inter ascending)
 * Backward, the CPU's steps (kernels/linear.ts' orders):
 *   grad Wd += dy^T a; da = dy Wd; du = da * (g * s); dg = ((da * u) * s) * (1 + g * (1 - s))
 *   with s = sigmoid(g) recomputed (same bits as the forward's); grad Wg += dg^T x,
 *   grad Wu += du^T x; dx = f32(dg Wg + du Wu), each product sum over inter ascending.
 * The linear backward kernels are dense.wgsl.ts's linearGradKernels.
 */
import type { GpuCompileContext, GpuLayerKernel, GpuTrainContext, LayerOp, TrainForwarded, TrainOp } from '../backend/webgpu/kernel.ts';
import { paramOf } from '../backend/webgpu/kernel.ts';
import { MAP_WG, mapKernel } from '../backend/webgpu/common.ts';
import type { GpuVal, Kernel, Run, Val } from '../backend/webgpu/run.ts';
import { grid2d } from '../backend/webgpu/shader.ts';
import { linearGradKernels, linearKernel } from './dense.wgsl.ts';
import type { Layer } from './layer.ts';
import type { SwigluConfig } from './swiglu.ts';

interface Shapes {
  d: number;
  n: number;
  rows: number;
  inShape: number[];
  outShape: number[];
}

function shapes(layer: Layer, cc: GpuCompileContext): Shapes {
  const cfg = layer.config as SwigluConfig;
  const d = cfg.input_height, n = cfg.output_height;
  const rows = (cc.batch * layer.inputShape.reduce((a, b) => a * b, 1)) / d;
  cc.need(rows * Math.max(d, n), `${cc.prefix} (swiglu) activations`);
  return { d, n, rows, inShape: [cc.batch, ...layer.inputShape], outShape: [cc.batch, ...layer.outputShape] };
}

async function forwardKernels(layer: Layer, cc: GpuCompileContext, s: Shapes) {
  const { d, n, rows } = s;
  const label = `${cc.prefix} swiglu ${rows}x${d}->${n}`;
  const gate = await linearKernel(cc, { label: `${label} gate`, rows, inF: d, outF: n, bias: false, activation: 'linear' });
  const up = await linearKernel(cc, { label: `${label} up`, rows, inF: d, outF: n, bias: false, activation: 'linear' });
  const act = await mapKernel(cc, { label: `${label} silu*up`, n: rows * n, inputs: ['g', 'u'], expr: 'h_mul(h_mul(g[i], heddle_sigmoid(g[i])), u[i])', math: ['sigmoid'] });
  const down = await linearKernel(cc, { label: `${label} down`, rows, inF: n, outF: d, bias: false, activation: 'linear' });
  const wg = cc.weight(paramOf(layer, 'gate_proj.weight')!);
  const wu = cc.weight(paramOf(layer, 'up_proj.weight')!);
  const wd = cc.weight(paramOf(layer, 'down_proj.weight')!);
  return (run: Run, xv: Val): { x: GpuVal; g: GpuVal; u: GpuVal; a: GpuVal; y: GpuVal } => {
    const x = run.gpu(xv);
    const g = run.output([rows, n]);
    const u = run.output([rows, n]);
    const a = run.output([rows, n]);
    const y = run.output(s.outShape);
    run.dispatch(gate, [x.buffer, wg, g.buffer]);
    run.dispatch(up, [x.buffer, wu, u.buffer]);
    run.dispatch(act, [g.buffer, u.buffer, a.buffer]);
    run.dispatch(down, [a.buffer, wd, y.buffer]);
    return { x, g, u, a, y };
  };
}

/** du and dg from da, g, u in one pass (the CPU's loop). Binds da, g, u, du, dg. */
function gateBackwardKernel(cc: GpuCompileContext, label: string, n: number): Promise<Kernel> {
  const g = grid2d(Math.ceil(n / MAP_WG), cc.maxWorkgroups);
  return cc.kernel(
    {
      label,
      buffers: [{ name: 'da', access: 'read' }, { name: 'gv', access: 'read' }, { name: 'uv', access: 'read' }, { name: 'du', access: 'read_write' }, { name: 'dg', access: 'read_write' }],
      math: ['sigmoid'],
      consts: { N: n, NX: g.x },
      workgroupSize: [MAP_WG],
      body: `  let i = (wid.y * NX + wid.x) * ${MAP_WG}u + lid.x;
  if (i >= N) { return; }
  let gi = gv[i];
  let s = heddle_sigmoid(gi);
  du[i] = h_mul(da[i], h_mul(gi, s));
  let dsilu = h_mul(da[i], uv[i]);
  dg[i] = h_mul(h_mul(dsilu, s), h_add(1.0, h_mul(gi, h_sub(1.0, s))));`,
    },
    [g.x, g.y],
  );
}

interface SwigluSaved {
  x: GpuVal;
  g: GpuVal;
  u: GpuVal;
  a: GpuVal;
}

export const swigluGpu: GpuLayerKernel = {
  type: 'swiglu',
  async compile(layer: Layer, cc: GpuCompileContext): Promise<LayerOp> {
    const fwd = await forwardKernels(layer, cc, shapes(layer, cc));
    return async (run: Run, xv: Val): Promise<Val> => fwd(run, xv).y;
  },
  trainUnsupported(): string | null {
    return null;
  },
  async compileTrain(layer: Layer, cc: GpuTrainContext): Promise<TrainOp> {
    const s = shapes(layer, cc);
    const { d, n, rows } = s;
    const fwd = await forwardKernels(layer, cc, s);
    const label = `${cc.prefix} swiglu backward ${rows}x${d}->${n}`;
    const down = await linearGradKernels(cc, { label: `${label} down`, rows, inF: n, outF: d, bias: false });
    const gate = await gateBackwardKernel(cc, `${label} gate`, rows * n);
    // gate_proj and up_proj share their shapes; dx = dx(gate) + dx(up), in that order
    const inner = await linearGradKernels(cc, { label: `${label} gate/up`, rows, inF: d, outF: n, bias: false, plus: true });
    const pg = paramOf(layer, 'gate_proj.weight')!;
    const pu = paramOf(layer, 'up_proj.weight')!;
    const pd = paramOf(layer, 'down_proj.weight')!;
    const wg = cc.weight(pg), wu = cc.weight(pu), wd = cc.weight(pd);
    const gg = cc.grad(pg), gu = cc.grad(pu), gd = cc.grad(pd);
    return {
      async forward(run: Run, xv: Val): Promise<TrainForwarded> {
        const { x, g, u, a, y } = fwd(run, xv);
        const saved: SwigluSaved = { x, g, u, a };
        return { y, saved };
      },
      async backward(run: Run, sv: unknown, dyv: Val): Promise<{ dx: Val }> {
        const { x, g, u, a } = sv as SwigluSaved;
        const dy = run.gpu(dyv);
        run.dispatch(down.dW, [dy.buffer, a.buffer, gd]);
        const da = run.alloc(rows * n);
        run.dispatch(down.dX, [dy.buffer, wd, da]);
        const du = run.alloc(rows * n);
        const dg = run.alloc(rows * n);
        run.dispatch(gate, [da, g.buffer, u.buffer, du, dg]);
        run.dispatch(inner.dW, [dg, x.buffer, gg]);
        run.dispatch(inner.dW, [du, x.buffer, gu]);
        const dxg = run.alloc(rows * d);
        run.dispatch(inner.dX, [dg, wg, dxg]);
        const dx = run.output(s.inShape);
        run.dispatch(inner.dXPlus!, [du, wu, dxg, dx.buffer]);
        return { dx };
      },
    };
  },
};

/** Registered in core/backend/webgpu/kernels.ts. */
export const swigluGpuKernels: readonly GpuLayerKernel[] = [swigluGpu];
