/**
 * embedding on the GPU (the CPU reference is core/layers/embedding.ts), forward and training.
 *
 * Ids: the network input arrives on the host (i32, i64 or f32 holding integers); an
 * embedding after another layer gets f32 ids on the GPU, which are read back. Every id is
 * validated on the host before anything is dispatched, with the CPU's rule; a bad id makes
 * the CPU layer's own forward raise its error (INPUT_INVALID naming sample, position and
 * value). The valid ids go up as u32 bit patterns in an f32 buffer, read with bitcast<u32>.
 *
 * Forward: y[p, c] = weight[id[p], c], a copy (no arithmetic), one invocation per value.
 * Backward: dx is +0 with the input's shape (ids are not differentiable). The weight gradient
 * follows the CPU: per row v that some position reads, grad[v, c] += (sum over those positions
 * in ascending flat order of dy[p, c], from +0); rows no position reads are not touched. The
 * host groups the positions by id (ascending within each id) during the forward; one
 * invocation per (distinct id, c) sums its list in that order, then adds once into grad.
 */
import { fail } from '../errors.ts';
import type { GpuCompileContext, GpuLayerKernel, GpuTrainContext, LayerOp, TrainForwarded, TrainOp } from '../backend/webgpu/kernel.ts';
import { paramOf } from '../backend/webgpu/kernel.ts';
import type { GpuBuffer } from '../backend/webgpu/gpu.ts';
import type { Kernel, Run, Val } from '../backend/webgpu/run.ts';
import { grid2d } from '../backend/webgpu/shader.ts';
import { Tensor, type TensorData } from '../tensor.ts';
import type { EmbeddingConfig } from './embedding.ts';
import type { Layer } from './layer.ts';

const WG = 64;

/** Host-validated ids as u32, or the CPU layer's own error. */
function readIds(layer: Layer, t: Tensor<TensorData>): Uint32Array {
  const V = (layer.config as EmbeddingConfig).vocab_size;
  const d = t.data;
  const n = d.length;
  const ids = new Uint32Array(n);
  let ok = true;
  if (d instanceof BigInt64Array) {
    const big = BigInt(V);
    for (let i = 0; i < n && ok; i++) {
      const v = d[i];
      if (v < 0n || v >= big) ok = false;
      else ids[i] = Number(v);
    }
  } else {
    for (let i = 0; i < n && ok; i++) {
      const v = d[i] as number;
      if (!Number.isInteger(v) || v < 0 || v >= V) ok = false;
      else ids[i] = v;
    }
  }
  if (!ok) {
    // The CPU forward validates every id first and throws its INPUT_INVALID error.
    layer.forward(t as Tensor, { training: false, rng: null });
    fail('INTERNAL', 'an id failed the GPU check but not the CPU one', 'backend webgpu');
  }
  return ids;
}

async function hostIds(layer: Layer, run: Run, xv: Val): Promise<Uint32Array> {
  const t = xv.kind === 'cpu' ? xv.tensor : await run.cpu(xv);
  return readIds(layer, t);
}

/** Writes u32 words into a new pooled buffer. */
function upload(run: Run, words: Uint32Array): GpuBuffer {
  const buf = run.alloc(words.length);
  if (words.length > 0) run.ctx.device.queue.writeBuffer(buf, 0, words);
  return buf;
}

interface Compiled {
  readonly positions: number;
  readonly gather: Kernel;
  readonly w: GpuBuffer;
  readonly outShape: number[];
}

async function compileForward(layer: Layer, cc: GpuCompileContext): Promise<Compiled> {
  const cfg = layer.config as EmbeddingConfig;
  const D = cfg.embedding_dim;
  const positions = cc.batch * layer.inputShape.reduce((a, b) => a * b, 1);
  cc.need(positions * D, `${cc.prefix} (embedding) activations`);
  const g = grid2d(Math.ceil((positions * D) / WG), cc.maxWorkgroups);
  const gather = await cc.kernel(
    {
      label: `${cc.prefix} embedding ${positions}x${D}`,
      buffers: [{ name: 'ids', access: 'read' }, { name: 'w', access: 'read' }, { name: 'y', access: 'read_write' }],
      consts: { P: positions, D, NX: g.x },
      workgroupSize: [WG],
      body: `  let i = (wid.y * NX + wid.x) * ${WG}u + lid.x;
  if (i >= P * D) { return; }
  let p = i / D;
  let c = i - p * D;
  y[i] = w[bitcast<u32>(ids[p]) * D + c];`,
    },
    [g.x, g.y],
  );
  return { positions, gather, w: cc.weight(paramOf(layer, 'weight')!), outShape: [cc.batch, ...layer.outputShape] };
}

function gatherOp(run: Run, c: Compiled, ids: Uint32Array): Val {
  const idb = upload(run, ids);
  const y = run.output(c.outShape);
  run.dispatch(c.gather, [idb, c.w, y.buffer]);
  return y;
}

/**
 * The positions grouped by id, as u32 words: [U, uniq[MAXU], start[MAXU + 1], pos[P]], with
 * U distinct ids (in first-use order), start[q] .. start[q + 1] - 1 indexing pos, and each id's
 * positions ascending.
 */
function groupByIds(ids: Uint32Array, maxU: number): Uint32Array {
  const P = ids.length;
  const first = new Map<number, number>();
  const count: number[] = [];
  const uniq: number[] = [];
  for (let p = 0; p < P; p++) {
    let q = first.get(ids[p]);
    if (q === undefined) {
      q = uniq.length;
      first.set(ids[p], q);
      uniq.push(ids[p]);
      count.push(0);
    }
    count[q]++;
  }
  const U = uniq.length;
  const out = new Uint32Array(1 + maxU + maxU + 1 + P);
  out[0] = U;
  const startAt = 1 + maxU;
  const posAt = startAt + maxU + 1;
  let s = 0;
  for (let q = 0; q < U; q++) {
    out[1 + q] = uniq[q];
    out[startAt + q] = s;
    s += count[q];
  }
  out[startAt + U] = s;
  const fill = new Int32Array(U);
  for (let p = 0; p < P; p++) {
    const q = first.get(ids[p])!;
    out[posAt + out[startAt + q] + fill[q]++] = p;
  }
  return out;
}

interface EmbeddingSaved {
  groups: Uint32Array;
}

export const embeddingGpu: GpuLayerKernel = {
  type: 'embedding',
  async compile(layer: Layer, cc: GpuCompileContext): Promise<LayerOp> {
    const c = await compileForward(layer, cc);
    return async (run: Run, xv: Val): Promise<Val> => gatherOp(run, c, await hostIds(layer, run, xv));
  },
  trainUnsupported(): string | null {
    return null;
  },
  async compileTrain(layer: Layer, cc: GpuTrainContext): Promise<TrainOp> {
    const c = await compileForward(layer, cc);
    const cfg = layer.config as EmbeddingConfig;
    const D = cfg.embedding_dim;
    const P = c.positions;
    const maxU = Math.min(cfg.vocab_size, P);
    const p = paramOf(layer, 'weight')!;
    const grad = cc.grad(p);
    const g = grid2d(Math.ceil((maxU * D) / WG), cc.maxWorkgroups);
    const back = await cc.kernel(
      {
        label: `${cc.prefix} embedding backward ${P}x${D}`,
        buffers: [{ name: 'grp', access: 'read' }, { name: 'dy', access: 'read' }, { name: 'gw', access: 'read_write' }],
        consts: { MAXU: maxU, D, NX: g.x },
        workgroupSize: [WG],
        body: `  let i = (wid.y * NX + wid.x) * ${WG}u + lid.x;
  let q = i / D;
  if (q >= MAXU || q >= bitcast<u32>(grp[0])) { return; }
  let c = i - q * D;
  let v = bitcast<u32>(grp[1u + q]);
  let s0 = bitcast<u32>(grp[1u + MAXU + q]);
  let s1 = bitcast<u32>(grp[2u + MAXU + q]);
  var acc = h_zero();
  for (var j = s0; j < s1; j++) {
    let p = bitcast<u32>(grp[2u + 2u * MAXU + j]);
    acc = h_add(acc, dy[p * D + c]);
  }
  gw[v * D + c] = h_add(gw[v * D + c], acc);`,
      },
      [g.x, g.y],
    );
    const inShape = [cc.batch, ...layer.inputShape];
    return {
      async forward(run: Run, xv: Val): Promise<TrainForwarded> {
        const ids = await hostIds(layer, run, xv);
        const y = gatherOp(run, c, ids);
        const saved: EmbeddingSaved = { groups: groupByIds(ids, maxU) };
        return { y, saved };
      },
      async backward(run: Run, sv: unknown, dyv: Val): Promise<{ dx: Val }> {
        const { groups } = sv as EmbeddingSaved;
        const dy = run.gpu(dyv);
        run.dispatch(back, [upload(run, groups), dy.buffer, grad]);
        return { dx: { kind: 'cpu', tensor: Tensor.zeros(inShape) } };
      },
    };
  },
};

/** Registered in core/backend/webgpu/kernels.ts. */
export const embeddingGpuKernels: readonly GpuLayerKernel[] = [embeddingGpu];
