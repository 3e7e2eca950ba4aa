/**
 * conv1d/2d/3d and conv_transposed1d/2d/3d on the GPU, forward and training (the CPU reference
 * is conv1d.ts's ConvLayer over kernels/conv.ts; the loops are kernels/conv.wgsl.ts).
 *
 *   conv forward         gather(x) + bias, activation fused (softmax: a row kernel after)
 *   transposed forward   scatter(x) + bias, activation fused
 *   backward             g = activation backward (pre, post, dy) (g = dy for linear), then
 *                        conv:       weightGrad(narrow g, wide x), dx = scatter(g) with W [F, C, k]
 *                        transposed: weightGrad(narrow x, wide g), dx = gather(g) with W [C, F, k]
 *                        bias grad:  channel sums of g
 *                        each adds its finished sum into the gradient buffer with one h_add,
 *                        as ConvLayer.backward adds into Param.grad.
 * Every config the CPU accepts runs here (groups and padding_mode are fixed at PyTorch's
 * defaults by the parser).
 */
import { mapKernel } from '../backend/webgpu/common.ts';
import type { GpuCompileContext, GpuLayerKernel, GpuTrainContext, LayerOp, TrainForwarded, TrainOp } from '../backend/webgpu/kernel.ts';
import { paramOf } from '../backend/webgpu/kernel.ts';
import type { GpuVal, Kernel, Run, Val } from '../backend/webgpu/run.ts';
import type { ConvGeometry, Dims3 } from '../kernels/conv.ts';
import {
  activationBackwardKernel, channelSumsKernel, convGatherKernel, convScatterKernel, convWeightGradKernel,
} from '../kernels/conv.wgsl.ts';
import { softmaxRowsBackwardKernel, softmaxRowsKernel } from '../kernels/softmax.wgsl.ts';
import { shapeSize } from '../tensor.ts';
import type { Activation } from './activations.ts';
import { activationWgsl } from './activations.wgsl.ts';
import { type ConvConfig, resolveSpatial } from './conv1d.ts';
import type { Layer } from './layer.ts';

interface Family {
  readonly type: string;
  readonly rank: 1 | 2 | 3;
  readonly transposed: boolean;
}

function to3(v: readonly number[], fill: number): Dims3 {
  const a = [...new Array<number>(3 - v.length).fill(fill), ...v];
  return [a[0], a[1], a[2]];
}

/** The layer's geometry, as ConvLayer builds it. */
function geometry(fam: Family, layer: Layer, where: string): ConvGeometry {
  const cfg = layer.config as ConvConfig;
  const spatial = resolveSpatial(cfg, fam.rank, layer.inputShape, where);
  const out = layer.outputShape.slice(1);
  return {
    wide: to3(fam.transposed ? out : spatial, 1),
    narrow: to3(fam.transposed ? spatial : out, 1),
    kernel: to3(cfg.kernel_size, 1),
    stride: to3(cfg.stride, 1),
    padding: to3(cfg.padding, 0),
    dilation: to3(cfg.dilation, 1),
  };
}

interface Plan {
  readonly cfg: ConvConfig;
  readonly geom: ConvGeometry;
  readonly inShape: number[];
  readonly outShape: number[];
  readonly outSize: number;
  /** Softmax rows: the output's last dim, as activationForward's rowLen. */
  readonly rowLen: number;
  readonly label: string;
}

function plan(fam: Family, layer: Layer, cc: GpuCompileContext): Plan {
  const cfg = layer.config as ConvConfig;
  const inShape = [cc.batch, ...layer.inputShape];
  const outShape = [cc.batch, ...layer.outputShape];
  cc.need(shapeSize(inShape), `${cc.prefix} (${fam.type}) input`);
  cc.need(shapeSize(outShape), `${cc.prefix} (${fam.type}) output`);
  return {
    cfg,
    geom: geometry(fam, layer, cc.prefix),
    inShape,
    outShape,
    outSize: shapeSize(outShape),
    rowLen: layer.outputShape[layer.outputShape.length - 1],
    label: `${cc.prefix} ${fam.type} ${cc.batch}x[${layer.inputShape.join(',')}]->[${layer.outputShape.join(',')}]`,
  };
}

/** The forward kernel (gather or scatter) with the bias and an element-wise activation fused. */
function forwardKernel(fam: Family, p: Plan, cc: GpuCompileContext, activation: Exclude<Activation, 'softmax'>): Promise<Kernel> {
  const spec = {
    label: `${p.label} ${activation}`,
    batch: cc.batch,
    inCh: p.cfg.input_channels,
    outCh: p.cfg.filters,
    geom: p.geom,
    bias: p.cfg.bias,
    activation,
  };
  return fam.transposed ? convScatterKernel(cc, spec) : convGatherKernel(cc, spec);
}

interface Saved {
  readonly x: GpuVal;
  readonly pre: GpuVal;
  readonly post: GpuVal;
}

function convGpu(fam: Family): GpuLayerKernel {
  return {
    type: fam.type,
    async compile(layer: Layer, cc: GpuCompileContext): Promise<LayerOp> {
      const p = plan(fam, layer, cc);
      const act = p.cfg.activation;
      const soft = act === 'softmax';
      const k = await forwardKernel(fam, p, cc, soft ? 'linear' : act);
      const sm = soft ? await softmaxRowsKernel(cc, { label: `${p.label} softmax`, rows: p.outSize / p.rowLen, rowLen: p.rowLen }) : null;
      const w = cc.weight(paramOf(layer, 'weight')!);
      const b = paramOf(layer, 'bias');
      const bb = b ? cc.weight(b) : null;
      return async (run: Run, xv: Val): Promise<Val> => {
        const x = run.gpu(xv);
        const pre = run.output(p.outShape);
        run.dispatch(k, bb ? [x.buffer, w, bb, pre.buffer] : [x.buffer, w, pre.buffer]);
        if (!sm) return pre;
        const y = run.output(p.outShape);
        run.dispatch(sm, [pre.buffer, y.buffer]);
        return y;
      };
    },
    async compileTrain(layer: Layer, cc: GpuTrainContext): Promise<TrainOp> {
      const p = plan(fam, layer, cc);
      const act = p.cfg.activation;
      const C = p.cfg.input_channels, F = p.cfg.filters;
      const wp = paramOf(layer, 'weight')!;
      const bp = paramOf(layer, 'bias');
      const w = cc.weight(wp);
      const bb = bp ? cc.weight(bp) : null;
      const gw = cc.grad(wp);
      const gb = bp ? cc.grad(bp) : null;
      // Forward: pre (with the bias), then post = activation(pre) as a separate pass, since the
      // backward needs both (the activation is per element, so the bits are the fused ones).
      const preK = await forwardKernel(fam, p, cc, 'linear');
      const rows = p.outSize / p.rowLen;
      const postK = act === 'linear' ? null
        : act === 'softmax' ? await softmaxRowsKernel(cc, { label: `${p.label} softmax`, rows, rowLen: p.rowLen })
        : await actKernel(cc, `${p.label} ${act}`, p.outSize, act);
      const backK = act === 'linear' ? null
        : act === 'softmax' ? await softmaxRowsBackwardKernel(cc, { label: `${p.label} softmax backward`, rows, rowLen: p.rowLen })
        : await activationBackwardKernel(cc, `${p.label} ${act} backward`, p.outSize, act);
      const wgK = await convWeightGradKernel(cc, fam.transposed
        ? { label: `${p.label} weight grad`, batch: cc.batch, narrowCh: C, wideCh: F, geom: p.geom }
        : { label: `${p.label} weight grad`, batch: cc.batch, narrowCh: F, wideCh: C, geom: p.geom });
      const dxSpec = { label: `${p.label} dx`, batch: cc.batch, inCh: F, outCh: C, geom: p.geom, bias: false, activation: 'linear' as const };
      const dxK = fam.transposed ? await convGatherKernel(cc, dxSpec) : await convScatterKernel(cc, dxSpec);
      const perCh = p.outSize / (cc.batch * F);
      const sumK = bp ? await channelSumsKernel(cc, `${p.label} bias grad`, cc.batch, F, perCh) : null;
      return {
        async forward(run: Run, xv: Val): Promise<TrainForwarded> {
          const x = run.gpu(xv);
          const pre = run.output(p.outShape);
          run.dispatch(preK, bb ? [x.buffer, w, bb, pre.buffer] : [x.buffer, w, pre.buffer]);
          let post = pre;
          if (postK) {
            post = run.output(p.outShape);
            run.dispatch(postK, [pre.buffer, post.buffer]);
          }
          const saved: Saved = { x, pre, post };
          return { y: post, saved };
        },
        async backward(run: Run, s: unknown, dyv: Val): Promise<{ dx: Val }> {
          const { x, pre, post } = s as Saved;
          const dy = run.gpu(dyv);
          let g = dy;
          if (backK) {
            g = run.output(p.outShape);
            run.dispatch(backK, act === 'softmax' ? [post.buffer, dy.buffer, g.buffer] : [pre.buffer, post.buffer, dy.buffer, g.buffer]);
          }
          run.dispatch(wgK, fam.transposed ? [x.buffer, g.buffer, gw] : [g.buffer, x.buffer, gw]);
          const dx = run.output(p.inShape);
          run.dispatch(dxK, [g.buffer, w, dx.buffer]);
          if (sumK && gb) run.dispatch(sumK, [g.buffer, gb]);
          return { dx };
        },
      };
    },
  };
}

/** post[i] = activation(pre[i]) (activations.wgsl.ts). Binds pre, post. */
function actKernel(cc: GpuCompileContext, label: string, n: number, act: Exclude<Activation, 'softmax' | 'linear'>): Promise<Kernel> {
  const a = activationWgsl(act);
  return mapKernel(cc, { label, n, inputs: ['a'], expr: 'heddle_act(a[i])', math: a.math, decls: a.decl });
}

/** Registered in core/backend/webgpu/kernels.ts. */
export const convGpuKernels: readonly GpuLayerKernel[] = [
  convGpu({ type: 'conv1d', rank: 1, transposed: false }),
  convGpu({ type: 'conv2d', rank: 2, transposed: false }),
  convGpu({ type: 'conv3d', rank: 3, transposed: false }),
  convGpu({ type: 'conv_transposed1d', rank: 1, transposed: true }),
  convGpu({ type: 'conv_transposed2d', rank: 2, transposed: true }),
  convGpu({ type: 'conv_transposed3d', rank: 3, transposed: true }),
];
