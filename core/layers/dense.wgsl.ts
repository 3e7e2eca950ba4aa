/**
 * dense on the GPU: the linear map of kernels/linear.ts in its canonical order, then the
 * activation (activations.wgsl.ts, fused into the same kernel; softmax as a row kernel after).
 *
 * Per output y[r, o]: acc = +0; for k = 0..K-1 ascending: acc = ftz(acc + ftz(W[o,k] * x[r,k]))
 * with the product through the contraction barrier (h_mul), then y = ftz(acc + bias[o]).
 * Two variants, the same bits:
 *   tiled   (rows and outputs both >= TILED_MIN): a workgroup of 16 x 16 invocations computes
 *           a 64 x 64 block of outputs (4 x 4 each), staging 16-wide slices of x and W in
 *           workgroup memory. Each output's accumulation still runs over k ascending, one
 *           product at a time, so the tiling changes nothing in the bits. Padding outside the
 *           matrix is never added (a +0 product would turn an acc of -0 into +0).
 *   direct  (small batches): one invocation per output, k ascending from global memory. No
 *           workgroup memory or barriers: it also compiles in milliseconds on software
 *           adapters, where the tiled one takes seconds.
 */
import { fail } from '../errors.ts';
import type { GpuCompileContext, GpuLayerKernel, GpuTrainContext, LayerOp, TrainOp } from '../backend/webgpu/kernel.ts';
import { mapKernel } from '../backend/webgpu/common.ts';
import { paramOf } from '../backend/webgpu/kernel.ts';
import type { Kernel, Run, Val } from '../backend/webgpu/run.ts';
import { type ShaderBinding, grid2d } from '../backend/webgpu/shader.ts';
import { softmaxRowsBackwardKernel, softmaxRowsKernel } from '../kernels/softmax.wgsl.ts';
import { activationGradWgsl, activationWgsl } from './activations.wgsl.ts';
import type { Activation } from './activations.ts';
import type { DenseConfig } from './dense.ts';
import type { Layer } from './layer.ts';

const TILE = 64;
const TK = 16;
const THREADS = 16; // per dimension; TILE / THREADS = 4 outputs per invocation per dimension
const PER = TILE / THREADS;
/** Rows and outputs from which the tiled variant is used. */
export const TILED_MIN = 32;
const DIRECT_WG = 64;

export interface LinearSpec {
  readonly label: string;
  readonly rows: number;
  readonly inF: number;
  readonly outF: number;
  readonly bias: boolean;
  /** Element-wise activation fused after the bias (not softmax). */
  readonly activation: Exclude<Activation, 'softmax'>;
}

/**
 * y[rows, outF] = act(x[rows, inF] . W[outF, inF]^T + b). Binds x, W, (b,) y.
 * Shared by every layer with a row-wise linear map.
 */
export function linearKernel(cc: GpuCompileContext, s: LinearSpec): Promise<Kernel> {
  const act = activationWgsl(s.activation);
  return gemmKernel(cc, {
    label: s.label,
    m: s.rows,
    n: s.outF,
    k: s.inF,
    a: { name: 'x', at: (i, t) => `${i} * ${s.inF}u + ${t}` },
    b: { name: 'w', at: (j, t) => `${j} * ${s.inF}u + ${t}` },
    extra: s.bias ? [{ name: 'b', access: 'read' }] : [],
    out: { name: 'y', access: 'read_write' },
    math: act.math,
    decls: act.decl,
    epilogue: (acc, i, j) => `${s.bias ? `${acc} = h_add(${acc}, b[${j}]);
` : ''}y[${i} * ${s.outF}u + ${j}] = heddle_act(${acc});`,
  });
}

/**
 * A sum of products C[i, j] = sum over t = 0..k-1 ascending of A(i, t) * B(j, t), from +0,
 * each product through h_mul and each addition through h_add, then `epilogue` per element
 * (i < m, j < n). A and B are read through index expressions, so one generator serves the
 * forward (x . W^T), dL/dx (dy . W) and dL/dW (dy^T . x) of every row-wise linear map.
 * Binds a, b, then `extra` (in order), then `out`.
 */
export interface GemmSpec {
  readonly label: string;
  readonly m: number;
  readonly n: number;
  readonly k: number;
  readonly a: { readonly name: string; at(i: string, t: string): string };
  readonly b: { readonly name: string; at(j: string, t: string): string };
  readonly extra: readonly ShaderBinding[];
  readonly out: ShaderBinding;
  readonly math?: readonly string[];
  readonly decls?: string;
  /** WGSL statements with the accumulator (a `var`) and the u32 indices in scope. */
  epilogue(acc: string, i: string, j: string): string;
}

/** Tiled when both m and n are >= TILED_MIN, else one invocation per element; the same bits. */
export function gemmKernel(cc: GpuCompileContext, s: GemmSpec): Promise<Kernel> {
  return s.m >= TILED_MIN && s.n >= TILED_MIN ? tiledKernel(cc, s) : directKernel(cc, s);
}

function gemmBuffers(s: GemmSpec): ShaderBinding[] {
  return [{ name: s.a.name, access: 'read' }, { name: s.b.name, access: 'read' }, ...s.extra, s.out];
}

function directKernel(cc: GpuCompileContext, s: GemmSpec): Promise<Kernel> {
  const g = grid2d(Math.ceil((s.m * s.n) / DIRECT_WG), cc.maxWorkgroups);
  return cc.kernel(
    {
      label: `${s.label} direct`,
      buffers: gemmBuffers(s),
      math: s.math,
      consts: { M: s.m, N: s.n, K: s.k, NX: g.x },
      decls: s.decls,
      workgroupSize: [DIRECT_WG],
      body: `  let idx = (wid.y * NX + wid.x) * ${DIRECT_WG}u + lid.x;
  if (idx >= M * N) { return; }
  let i = idx / N;
  let j = idx - i * N;
  var acc = h_zero();
  for (var t = 0u; t < K; t++) {
    acc = h_add(acc, h_mul(${s.b.name}[${s.b.at('j', 't')}], ${s.a.name}[${s.a.at('i', 't')}]));
  }
  ${s.epilogue('acc', 'i', 'j')}`,
    },
    [g.x, g.y],
  );
}

function tiledKernel(cc: GpuCompileContext, s: GemmSpec): Promise<Kernel> {
  const wx = Math.ceil(s.n / TILE);
  const wy = Math.ceil(s.m / TILE);
  if (wx > cc.maxWorkgroups || wy > cc.maxWorkgroups) {
    fail('UNSUPPORTED', `${s.m} x ${s.n} outputs exceed the adapter's dispatch limit (${cc.maxWorkgroups} workgroups of ${TILE} per dimension)`, s.label);
  }
  const decls = `var<workgroup> as_: array<f32, ${TILE * TK}>;
var<workgroup> bs_: array<f32, ${TILE * TK}>;
${s.decls ?? ''}`;
  const loads = TILE * TK / (THREADS * THREADS);
  const body = `  let row0 = wid.y * ${TILE}u;
  let col0 = wid.x * ${TILE}u;
  var acc: array<f32, ${PER * PER}>;
  for (var q = 0u; q < ${PER * PER}u; q++) { acc[q] = h_zero(); }
  for (var k0 = 0u; k0 < K; k0 += ${TK}u) {
    for (var l = 0u; l < ${loads}u; l++) {
      let e = li + l * ${THREADS * THREADS}u;
      let m = e / ${TK}u;
      let gk = k0 + (e % ${TK}u);
      var av = 0.0;
      if (row0 + m < M && gk < K) { av = ${s.a.name}[${s.a.at('(row0 + m)', 'gk')}]; }
      as_[e] = av;
      var bv = 0.0;
      if (col0 + m < N && gk < K) { bv = ${s.b.name}[${s.b.at('(col0 + m)', 'gk')}]; }
      bs_[e] = bv;
    }
    workgroupBarrier();
    let kn = min(${TK}u, K - k0);
    for (var kk = 0u; kk < kn; kk++) {
      for (var ii = 0u; ii < ${PER}u; ii++) {
        let av = as_[(lid.y + ii * ${THREADS}u) * ${TK}u + kk];
        for (var jj = 0u; jj < ${PER}u; jj++) {
          let q = ii * ${PER}u + jj;
          acc[q] = h_add(acc[q], h_mul(bs_[(lid.x + jj * ${THREADS}u) * ${TK}u + kk], av));
        }
      }
    }
    workgroupBarrier();
  }
  for (var ii = 0u; ii < ${PER}u; ii++) {
    let i = row0 + lid.y + ii * ${THREADS}u;
    for (var jj = 0u; jj < ${PER}u; jj++) {
      let j = col0 + lid.x + jj * ${THREADS}u;
      if (i < M && j < N) {
        var v = acc[ii * ${PER}u + jj];
        ${s.epilogue('v', 'i', 'j')}
      }
    }
  }`;
  return cc.kernel(
    {
      label: `${s.label} tiled`,
      buffers: gemmBuffers(s),
      math: s.math,
      consts: { M: s.m, N: s.n, K: s.k },
      decls,
      workgroupSize: [THREADS, THREADS],
      body,
    },
    [wx, wy],
  );
}

/**
 * The backward of a row-wise linear map y = x . W^T (+ b), kernels/linear.ts's order, every
 * sum from +0, each on gemmKernel (so tiled when large):
 *   dW[o, k] = gw[o, k] + (sum over r ascending of dy[r, o] * x[r, k])     binds dy, x, gw
 *   db[o]    = gb[o] + (sum over r ascending of dy[r, o])                  binds dy, gb
 *   dx[r, k] = sum over o ascending of dy[r, o] * W[o, k]                  binds dy, w, dx
 *   dxPlus: dx[r, k] = p[r, k] + (that sum), for a layer whose input feeds two maps (swiglu)
 *                                                                          binds dy, w, p, dx
 */
export interface LinearGradKernels {
  readonly dW: Kernel;
  readonly dB: Kernel | null;
  readonly dX: Kernel;
  readonly dXPlus: Kernel | null;
}

export async function linearGradKernels(cc: GpuCompileContext, s: { label: string; rows: number; inF: number; outF: number; bias: boolean; plus?: boolean }): Promise<LinearGradKernels> {
  const { rows, inF, outF } = s;
  const dW = await gemmKernel(cc, {
    label: `${s.label} dW`,
    m: outF,
    n: inF,
    k: rows,
    a: { name: 'dy', at: (i, t) => `${t} * ${outF}u + ${i}` },
    b: { name: 'x', at: (j, t) => `${t} * ${inF}u + ${j}` },
    extra: [],
    out: { name: 'gw', access: 'read_write' },
    epilogue: (acc, i, j) => `gw[${i} * ${inF}u + ${j}] = h_add(gw[${i} * ${inF}u + ${j}], ${acc});`,
  });
  const g = grid2d(Math.ceil(outF / DIRECT_WG), cc.maxWorkgroups);
  const dB = s.bias
    ? await cc.kernel(
        {
          label: `${s.label} db`,
          buffers: [{ name: 'dy', access: 'read' }, { name: 'gb', access: 'read_write' }],
          consts: { R: rows, O: outF, NX: g.x },
          workgroupSize: [DIRECT_WG],
          body: `  let o = (wid.y * NX + wid.x) * ${DIRECT_WG}u + lid.x;
  if (o >= O) { return; }
  var acc = h_zero();
  for (var r = 0u; r < R; r++) { acc = h_add(acc, dy[r * O + o]); }
  gb[o] = h_add(gb[o], acc);`,
        },
        [g.x, g.y],
      )
    : null;
  const dx = (plus: boolean): Promise<Kernel> =>
    gemmKernel(cc, {
      label: `${s.label} dx${plus ? ' (added)' : ''}`,
      m: rows,
      n: inF,
      k: outF,
      a: { name: 'dy', at: (i, t) => `${i} * ${outF}u + ${t}` },
      b: { name: 'w', at: (j, t) => `${t} * ${inF}u + ${j}` },
      extra: plus ? [{ name: 'p', access: 'read' }] : [],
      out: { name: 'dx', access: 'read_write' },
      epilogue: (acc, i, j) => `dx[${i} * ${inF}u + ${j}] = ${plus ? `h_add(p[${i} * ${inF}u + ${j}], ${acc})` : acc};`,
    });
  return { dW, dB, dX: await dx(false), dXPlus: s.plus ? await dx(true) : null };
}

export const denseGpu: GpuLayerKernel = {
  type: 'dense',
  async compile(layer: Layer, cc: GpuCompileContext): Promise<LayerOp> {
    const cfg = layer.config as DenseConfig;
    const inF = cfg.input_height, outF = cfg.output_height;
    const perSample = layer.inputShape.reduce((a, b) => a * b, 1);
    const rows = (cc.batch * perSample) / inF;
    const outShape = [cc.batch, ...layer.outputShape];
    const w = paramOf(layer, 'weight')!;
    const b = paramOf(layer, 'bias');
    cc.need(rows * Math.max(inF, outF), `${cc.prefix} (dense) activations`);
    const act = cfg.activation;
    const soft = act === 'softmax';
    const lin = await linearKernel(cc, { label: `${cc.prefix} dense ${rows}x${inF}->${outF}${soft ? '' : ` ${cfg.activation}`}`, rows, inF, outF, bias: b !== null, activation: act === 'softmax' ? 'linear' : act });
    const sm = soft ? await softmaxRowsKernel(cc, { label: `${cc.prefix} dense softmax`, rows, rowLen: outF }) : null;
    const wb = cc.weight(w);
    const bb = b ? cc.weight(b) : null;
    return async (run: Run, xv: Val): Promise<Val> => {
      const x = run.gpu(xv);
      const pre = run.output(outShape);
      run.dispatch(lin, bb ? [x.buffer, wb, bb, pre.buffer] : [x.buffer, wb, pre.buffer]);
      if (!sm) return pre;
      const y = run.output(outShape);
      run.dispatch(sm, [pre.buffer, y.buffer]);
      return y;
    };
  },
  /**
   * Training: pre = x . W^T + b (the forward's linear kernel), post = act(pre) (element-wise,
   * the same heddle_act); backward in dense.ts's order: dpre = act'(pre, post, dy), then
   * dW[o,k] += sum over r ascending of dpre[r,o] * x[r,k] (fresh +0 accumulator, then added
   * into the gradient), db[o] += sum over r of dpre[r,o], dx[r,k] = sum over o ascending of
   * dpre[r,o] * W[o,k] from +0.
   */
  async compileTrain(layer: Layer, cc: GpuTrainContext): Promise<TrainOp> {
    const cfg = layer.config as DenseConfig;
    const inF = cfg.input_height, outF = cfg.output_height;
    const soft = cfg.activation === 'softmax';
    const act: Exclude<Activation, 'softmax'> = soft ? 'linear' : (cfg.activation as Exclude<Activation, 'softmax'>);
    const perSample = layer.inputShape.reduce((a, b) => a * b, 1);
    const rows = (cc.batch * perSample) / inF;
    const outShape = [cc.batch, ...layer.outputShape];
    const inShape = [cc.batch, ...layer.inputShape];
    const w = paramOf(layer, 'weight')!;
    const b = paramOf(layer, 'bias');
    cc.need(rows * Math.max(inF, outF), `${cc.prefix} (dense) activations`);
    const label = `${cc.prefix} dense ${rows}x${inF}->${outF}`;
    const lin = await linearKernel(cc, { label: `${label} pre`, rows, inF, outF, bias: b !== null, activation: 'linear' });
    const fwd = activationWgsl(act);
    const actK = act === 'linear' ? null : await mapKernel(cc, { label: `${label} ${act}`, n: rows * outF, inputs: ['a'], expr: 'heddle_act(a[i])', math: fwd.math, decls: fwd.decl });
    // softmax over each output row: the row kernels of kernels/softmax.wgsl.ts (dense.ts calls the same row softmax)
    const smK = soft ? await softmaxRowsKernel(cc, { label: `${label} softmax`, rows, rowLen: outF }) : null;
    const dsmK = soft ? await softmaxRowsBackwardKernel(cc, { label: `${label} softmax backward`, rows, rowLen: outF }) : null;
    const g = activationGradWgsl(act);
    const dactK = act === 'linear' ? null : await mapKernel(cc, { label: `${label} d${act}`, n: rows * outF, inputs: ['pre', 'post', 'dy'], expr: 'heddle_act_grad(pre[i], post[i], dy[i])', math: g.math, decls: g.decl });
    const lg = await linearGradKernels(cc, { label, rows, inF, outF, bias: b !== null });
    const wb = cc.weight(w);
    const bb = b ? cc.weight(b) : null;
    const gw = cc.grad(w);
    const gb = b ? cc.grad(b) : null;
    interface Saved {
      x: Val;
      pre: Val;
      post: Val;
    }
    return {
      async forward(run: Run, xv: Val) {
        const x = run.gpu(xv);
        const pre = run.output(outShape);
        run.dispatch(lin, bb ? [x.buffer, wb, bb, pre.buffer] : [x.buffer, wb, pre.buffer]);
        let post = pre;
        if (actK) {
          post = run.output(outShape);
          run.dispatch(actK, [pre.buffer, post.buffer]);
        }
        if (smK) {
          post = run.output(outShape);
          run.dispatch(smK, [pre.buffer, post.buffer]);
        }
        return { y: post, saved: { x, pre, post } satisfies Saved };
      },
      async backward(run: Run, saved: unknown, dyv: Val) {
        const s = saved as Saved;
        const dy = run.gpu(dyv);
        let dp = dy;
        if (dactK) {
          dp = run.output(outShape);
          run.dispatch(dactK, [run.gpu(s.pre).buffer, run.gpu(s.post).buffer, dy.buffer, dp.buffer]);
        }
        if (dsmK) {
          dp = run.output(outShape);
          run.dispatch(dsmK, [run.gpu(s.post).buffer, dy.buffer, dp.buffer]);
        }
        const x = run.gpu(s.x);
        run.dispatch(lg.dW, [dp.buffer, x.buffer, gw]);
        if (lg.dB && gb) run.dispatch(lg.dB, [dp.buffer, gb]);
        const dx = run.output(inShape);
        run.dispatch(lg.dX, [dp.buffer, wb, dx.buffer]);
        return { dx };
      },
    };
  },
};
