/**
 * softmax layer on the GPU: the variants built on the plain row softmax run on the GPU
 * (kernels/softmax.wgsl.ts): standard, temperature (logits divided by T, heddle_div),
 * masked, grid (rows of softmax_cols), gumbel outside training (= temperature; the GPU path
 * is inference only), entmax with alpha 1 (= standard). The others (hierarchical, adaptive,
 * mixture, sparsemax, entmax 1.5 / 2) run on the CPU for now, with the data moved.
 */
import type { GpuCompileContext, GpuLayerKernel, LayerOp } from '../backend/webgpu/kernel.ts';
import type { Run, Val } from '../backend/webgpu/run.ts';
import { softmaxRowsKernel } from '../kernels/softmax.wgsl.ts';
import { f32 } from '../math/index.ts';
import type { Layer } from './layer.ts';
import type { SoftmaxConfig } from './softmax.ts';

function rowKind(cfg: SoftmaxConfig): 'plain' | null {
  switch (cfg.softmax_type) {
    case 'standard':
    case 'temperature':
    case 'masked':
    case 'grid':
    case 'gumbel':
      return 'plain';
    case 'entmax':
      return cfg.entmax_alpha === 1 ? 'plain' : null;
    default:
      return null;
  }
}

export const softmaxGpu: GpuLayerKernel = {
  type: 'softmax',
  unsupported(layer: Layer): string | null {
    const cfg = layer.config as SoftmaxConfig;
    if (rowKind(cfg)) return null;
    const what = cfg.softmax_type === 'entmax' ? `entmax (alpha ${String(cfg.entmax_alpha)})` : cfg.softmax_type;
    return `softmax_type ${what} has no GPU kernel yet`;
  },
  async compile(layer: Layer, cc: GpuCompileContext): Promise<LayerOp> {
    const cfg = layer.config as SoftmaxConfig;
    const size = cc.batch * layer.inputShape.reduce((a, b) => a * b, 1);
    const last = layer.inputShape.length > 0 ? layer.inputShape[layer.inputShape.length - 1] : 1;
    const mask = cfg.softmax_type === 'masked' ? (cfg.mask as boolean[]) : null;
    const rowLen = mask ? mask.length : cfg.softmax_type === 'grid' ? (cfg.softmax_cols as number) : last;
    const temperature = cfg.softmax_type === 'temperature' || cfg.softmax_type === 'gumbel' ? f32(cfg.temperature as number) : null;
    cc.need(size, `${cc.prefix} (softmax) activations`);
    const kernel = await softmaxRowsKernel(cc, { label: `${cc.prefix} softmax ${cfg.softmax_type} ${size / rowLen}x${rowLen}`, rows: size / rowLen, rowLen, mask, temperature });
    const outShape = [cc.batch, ...layer.outputShape];
    return async (run: Run, xv: Val): Promise<Val> => {
      const x = run.gpu(xv);
      const y = run.output(outShape);
      run.dispatch(kernel, [x.buffer, y.buffer]);
      return y;
    };
  },
};
