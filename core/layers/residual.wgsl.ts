/** residual on the GPU: y[i] = f32(x[i] + skip[i]), flushed (h_add), as residual.ts. */
import { mapKernel } from '../backend/webgpu/common.ts';
import type { GpuCompileContext, GpuLayerKernel, GpuTrainContext, LayerOp, TrainOp } from '../backend/webgpu/kernel.ts';
import type { Run, Val } from '../backend/webgpu/run.ts';
import { fail } from '../errors.ts';
import type { Layer } from './layer.ts';

export const residualGpu: GpuLayerKernel = {
  type: 'residual',
  async compile(layer: Layer, cc: GpuCompileContext): Promise<LayerOp> {
    const n = cc.batch * layer.inputShape.reduce((a, b) => a * b, 1);
    cc.need(n, `${cc.prefix} (residual) activations`);
    const kernel = await mapKernel(cc, { label: `${cc.prefix} residual ${n}`, n, inputs: ['a', 'b'], expr: 'h_add(a[i], b[i])' });
    const outShape = [cc.batch, ...layer.outputShape];
    return async (run: Run, xv: Val, skipv?: Val): Promise<Val> => {
      if (!skipv) fail('INTERNAL', 'residual got no skip input', cc.prefix);
      const x = run.gpu(xv);
      const skip = run.gpu(skipv);
      const y = run.output(outShape);
      run.dispatch(kernel, [x.buffer, skip.buffer, y.buffer]);
      return y;
    };
  },
  /** Training: the same forward; backward hands dy to both inputs (residual.ts copies it twice). */
  async compileTrain(layer: Layer, cc: GpuTrainContext): Promise<TrainOp> {
    const op = await residualGpu.compile(layer, cc);
    return {
      async forward(run: Run, x: Val, _ctx, skip?: Val) {
        return { y: await op(run, x, skip), saved: null };
      },
      async backward(_run: Run, _saved: unknown, dy: Val) {
        // Gradients are never written in place, so both inputs may share dy's buffer.
        return { dx: dy, dskip: dy };
      },
    };
  },
};
