/**
 * sequential on the GPU: its children's ops in order, each fed the previous output (a
 * residual child also gets its preceding sibling's input), as sequential.ts. A child without
 * a GPU kernel runs on the CPU inside the same pass (its input read back, its output uploaded).
 */
import type { GpuCompileContext, GpuLayerKernel, GpuTrainContext, LayerOp, TrainOp } from '../backend/webgpu/kernel.ts';
import type { RunContext } from './layer.ts';
import { childContext } from './sequential.ts';
import type { Kernel, Run, Val } from '../backend/webgpu/run.ts';
import { sumVals } from '../backend/webgpu/common.ts';
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
  /**
   * Training: children's pairs in order with sequential.ts's child contexts (`layers.{j}`);
   * backward in reverse, a gradient meeting an earlier one summed (existing + new, h_add), as
   * sequential.ts accumulates.
   */
  async compileTrain(layer: Layer, cc: GpuTrainContext): Promise<TrainOp> {
    const ops: { op: TrainOp; skip: boolean; label: string }[] = [];
    for (const c of layer.children) ops.push({ op: await cc.childTrain(c.layer, c.prefix), skip: c.layer.usesSkip, label: c.prefix });
    const sums = new Map<number, Promise<Kernel>>();
    interface Saved {
      saved: unknown[];
      ctxs: RunContext[];
    }
    return {
      async forward(run: Run, x: Val, ctx: RunContext) {
        const saved: unknown[] = [];
        const ctxs: RunContext[] = [];
        let prev: Val | undefined;
        let cur = x;
        for (const { op, skip, label } of ops) {
          const c = childContext(ctx, label);
          const r = await op.forward(run, cur, c, skip ? prev : undefined);
          saved.push(r.saved);
          ctxs.push(c);
          prev = cur;
          cur = r.y;
        }
        return { y: cur, saved: { saved, ctxs } satisfies Saved };
      },
      async backward(run: Run, s: unknown, dy: Val) {
        const { saved, ctxs } = s as Saved;
        const n = ops.length;
        const grads: (Val | null)[] = new Array(n + 1).fill(null);
        grads[n] = dy;
        const accumulate = async (j: number, g: Val): Promise<void> => {
          grads[j] = grads[j] ? await sumVals(run, cc, sums, grads[j]!, g) : g;
        };
        for (let j = n - 1; j >= 0; j--) {
          const g = grads[j + 1];
          if (!g) continue;
          const r = await ops[j].op.backward(run, saved[j], g, ctxs[j]);
          await accumulate(j, r.dx);
          if (r.dskip) await accumulate(j - 1, r.dskip);
        }
        if (grads[0]) return { dx: grads[0] };
        const zeros = run.output([cc.batch, ...layer.inputShape]);
        run.clear(zeros.buffer);
        return { dx: zeros };
      },
    };
  },
};
