/**
 * kmeans on the GPU (the CPU reference is core/layers/kmeans.ts), forward and training.
 *   z[r, k] = -(d / T), d = sum over j ascending of (x - c)^2 from +0   one invocation per (r, k)
 *   p = row softmax of z over k                                         kernels/softmax.wgsl.ts
 *   features: y[r, j] = sum over k ascending of p[r, k] * c[k, j]      one invocation per (r, j)
 * Backward, the CPU's steps:
 *   dp[r, k] = dy (probabilities) or sum over j ascending of dy[r, j] * c[k, j] (features)
 *   dz = softmax backward (p, dp); w = (dz / T) * -2 (recomputed where used: same bits)
 *   dx[r, j] = sum over k ascending of w[r, k] * (x[r, j] - c[k, j])   one invocation per (r, j)
 *   grad c[k, j] += sum over rows ascending of u (the CPU's u[k, j]), one invocation per (k, j)
 * Negation flips the sign bit (exact, as JS's unary minus).
 */
import type { GpuCompileContext, GpuLayerKernel, GpuTrainContext, LayerOp, TrainForwarded, TrainOp } from '../backend/webgpu/kernel.ts';
import { paramOf } from '../backend/webgpu/kernel.ts';
import type { GpuVal, Kernel, Run, Val } from '../backend/webgpu/run.ts';
import { f32Lit, grid2d } from '../backend/webgpu/shader.ts';
import { softmaxRowsBackwardKernel, softmaxRowsKernel } from '../kernels/softmax.wgsl.ts';
import { f32 } from '../math/index.ts';
import type { KMeansConfig } from './kmeans.ts';
import type { Layer } from './layer.ts';

const WG = 64;
const NEG = 'fn h_neg(v: f32) -> f32 { return bitcast<f32>(bitcast<u32>(v) ^ 0x80000000u); }';

function unitKernel(cc: GpuCompileContext, o: { label: string; units: number; buffers: readonly { name: string; access: 'read' | 'read_write' }[]; math?: readonly string[]; consts: Record<string, number>; body: string }): Promise<Kernel> {
  const g = grid2d(Math.ceil(o.units / WG), cc.maxWorkgroups);
  return cc.kernel(
    {
      label: o.label,
      buffers: o.buffers,
      math: o.math,
      consts: { ...o.consts, UNITS: o.units, NX: g.x },
      decls: NEG,
      workgroupSize: [WG],
      body: `  let u = (wid.y * NX + wid.x) * ${WG}u + lid.x;
  if (u >= UNITS) { return; }
${o.body}`,
    },
    [g.x, g.y],
  );
}

interface Info {
  D: number;
  K: number;
  T: number;
  rows: number;
  features: boolean;
  inShape: number[];
  outShape: number[];
}

function info(layer: Layer, cc: GpuCompileContext): Info {
  const cfg = layer.config as KMeansConfig;
  const centers = paramOf(layer, 'centers')!;
  const [K, D] = centers.value.shape;
  const rows = (cc.batch * layer.inputShape.reduce((a, b) => a * b, 1)) / D;
  cc.need(rows * Math.max(K, D), `${cc.prefix} (kmeans) activations`);
  return { D, K, T: f32(cfg.kmeans_temperature), rows, features: cfg.output_mode === 'features', inShape: [cc.batch, ...layer.inputShape], outShape: [cc.batch, ...layer.outputShape] };
}

async function forwardKernels(layer: Layer, cc: GpuCompileContext, s: Info) {
  const { D, K, T, rows } = s;
  const label = `${cc.prefix} kmeans ${rows}x${D} K=${K}`;
  const consts = { D, K };
  const dist = await unitKernel(cc, {
    label: `${label} distances`,
    units: rows * K,
    buffers: [{ name: 'x', access: 'read' }, { name: 'c', access: 'read' }, { name: 'z', access: 'read_write' }],
    math: ['div'],
    consts,
    body: `  let r = u / K;
  let k = u - r * K;
  var d = h_zero();
  for (var j = 0u; j < D; j++) {
    let diff = h_sub(x[r * D + j], c[k * D + j]);
    d = h_add(d, h_mul(diff, diff));
  }
  z[u] = h_neg(heddle_div(d, ${f32Lit(T)}));`,
  });
  const soft = await softmaxRowsKernel(cc, { label: `${label} softmax`, rows, rowLen: K });
  const feat = s.features
    ? await unitKernel(cc, {
        label: `${label} features`,
        units: rows * D,
        buffers: [{ name: 'p', access: 'read' }, { name: 'c', access: 'read' }, { name: 'y', access: 'read_write' }],
        consts,
        body: `  let r = u / D;
  let j = u - r * D;
  var acc = h_zero();
  for (var k = 0u; k < K; k++) { acc = h_add(acc, h_mul(p[r * K + k], c[k * D + j])); }
  y[u] = acc;`,
      })
    : null;
  const cb = cc.weight(paramOf(layer, 'centers')!);
  return (run: Run, xv: Val): { x: GpuVal; p: GpuVal; y: GpuVal } => {
    const x = run.gpu(xv);
    const z = run.alloc(rows * K);
    run.dispatch(dist, [x.buffer, cb, z]);
    const p = run.output(feat ? [rows, K] : s.outShape);
    run.dispatch(soft, [z, p.buffer]);
    if (!feat) return { x, p, y: p };
    const y = run.output(s.outShape);
    run.dispatch(feat, [p.buffer, cb, y.buffer]);
    return { x, p, y };
  };
}

interface KMeansSaved {
  x: GpuVal;
  p: GpuVal;
}

export const kmeansGpu: GpuLayerKernel = {
  type: 'kmeans',
  async compile(layer: Layer, cc: GpuCompileContext): Promise<LayerOp> {
    const fwd = await forwardKernels(layer, cc, info(layer, cc));
    return async (run: Run, xv: Val): Promise<Val> => fwd(run, xv).y;
  },
  trainUnsupported(): string | null {
    return null;
  },
  async compileTrain(layer: Layer, cc: GpuTrainContext): Promise<TrainOp> {
    const s = info(layer, cc);
    const { D, K, T, rows, features } = s;
    const fwd = await forwardKernels(layer, cc, s);
    const label = `${cc.prefix} kmeans backward ${rows}x${D} K=${K}`;
    const consts = { D, K, R: rows };
    const w = `h_mul(heddle_div(dz[r * K + k], ${f32Lit(T)}), ${f32Lit(-2)})`;
    const dpK = features
      ? await unitKernel(cc, {
          label: `${label} dp`,
          units: rows * K,
          buffers: [{ name: 'dy', access: 'read' }, { name: 'c', access: 'read' }, { name: 'dp', access: 'read_write' }],
          consts,
          body: `  let r = u / K;
  let k = u - r * K;
  var acc = h_zero();
  for (var j = 0u; j < D; j++) { acc = h_add(acc, h_mul(dy[r * D + j], c[k * D + j])); }
  dp[u] = acc;`,
        })
      : null;
    const dzK = await softmaxRowsBackwardKernel(cc, { label: `${label} softmax`, rows, rowLen: K });
    const dxK = await unitKernel(cc, {
      label: `${label} dx`,
      units: rows * D,
      buffers: [{ name: 'x', access: 'read' }, { name: 'c', access: 'read' }, { name: 'dz', access: 'read' }, { name: 'dx', access: 'read_write' }],
      math: ['div'],
      consts,
      body: `  let r = u / D;
  let j = u - r * D;
  var acc = h_zero();
  for (var k = 0u; k < K; k++) { acc = h_add(acc, h_mul(${w}, h_sub(x[u], c[k * D + j]))); }
  dx[u] = acc;`,
    });
    const gK = await unitKernel(cc, {
      label: `${label} grad centers`,
      units: K * D,
      buffers: [{ name: 'x', access: 'read' }, { name: 'c', access: 'read' }, { name: 'dz', access: 'read' }, { name: 'p', access: 'read' }, { name: 'dy', access: 'read' }, { name: 'gc', access: 'read_write' }],
      math: ['div'],
      consts,
      body: `  let k = u / D;
  let j = u - k * D;
  var acc = h_zero();
  for (var r = 0u; r < R; r++) {
    let t = h_mul(${w}, h_sub(x[r * D + j], c[u]));
    acc = h_add(acc, ${features ? 'h_sub(h_mul(p[r * K + k], dy[r * D + j]), t)' : 'h_neg(t)'});
  }
  gc[u] = h_add(gc[u], acc);`,
    });
    const centers = paramOf(layer, 'centers')!;
    const cb = cc.weight(centers);
    const gc = cc.grad(centers);
    return {
      async forward(run: Run, xv: Val): Promise<TrainForwarded> {
        const { x, p, y } = fwd(run, xv);
        const saved: KMeansSaved = { x, p };
        return { y, saved };
      },
      async backward(run: Run, sv: unknown, dyv: Val): Promise<{ dx: Val }> {
        const { x, p } = sv as KMeansSaved;
        const dy = run.gpu(dyv);
        let dp = dy.buffer;
        if (dpK) {
          dp = run.alloc(rows * K);
          run.dispatch(dpK, [dy.buffer, cb, dp]);
        }
        const dz = run.alloc(rows * K);
        run.dispatch(dzK, [p.buffer, dp, dz]);
        const dx = run.output(s.inShape);
        run.dispatch(dxK, [x.buffer, cb, dz, dx.buffer]);
        run.dispatch(gK, [x.buffer, cb, dz, p.buffer, dy.buffer, gc]);
        return { dx };
      },
    };
  },
};

/** Registered in core/backend/webgpu/kernels.ts. */
export const kmeansGpuKernels: readonly GpuLayerKernel[] = [kmeansGpu];
