/**
 * sequential on the GPU: its children's ops in order, each fed the previous output (a
 * residual child also gets its preceding sibling's input), as sequential.ts. A child without
 * a GPU kernel runs on the CPU inside the same pass (its input read back, its output uploaded).
 */
import type { GpuCompileContext, GpuLayerKernel, LayerOp } from '../backend/webgpu/kernel.ts';
import type { Run, Val } from '../backend/webgpu/run.ts';
import type { Layer } from './layer.ts';

export const sequentialGpu: GpuLayerKernel = {
  type: 'sequential',
  async compile(layer: Layer, cc: GpuCompileContext): Promise<LayerOp> {
    const ops: { op: LayerOp; skip: boolean }[] = [];
    for (const c of layer.children) ops.push({ op: await cc.child(c.layer, c.prefix), skip: c.layer.usesSkip });
    return async (run: Run, x: Val): Promise<Val> => {
      let prev: Val | undefined;
      let cur = x;
      for (const { op, skip } of ops) {
        const y = await op(run, cur, skip ? prev : undefined);
        prev = cur;
        cur = y;
      }
      return cur;
    };
  },
};
