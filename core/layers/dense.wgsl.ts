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
import type { GpuCompileContext, GpuLayerKernel, LayerOp } from '../backend/webgpu/kernel.ts';
import { paramOf } from '../backend/webgpu/kernel.ts';
import type { Kernel, Run, Val } from '../backend/webgpu/run.ts';
import { type ShaderBinding, grid2d } from '../backend/webgpu/shader.ts';
import { softmaxRowsKernel } from '../kernels/softmax.wgsl.ts';
import { activationWgsl } from './activations.wgsl.ts';
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
  return s.rows >= TILED_MIN && s.outF >= TILED_MIN ? tiledKernel(cc, s) : directKernel(cc, s);
}

function linearBuffers(s: LinearSpec): ShaderBinding[] {
  return [
    { name: 'x', access: 'read' },
    { name: 'w', access: 'read' },
    ...(s.bias ? [{ name: 'b', access: 'read' as const }] : []),
    { name: 'y', access: 'read_write' },
  ];
}

function directKernel(cc: GpuCompileContext, s: LinearSpec): Promise<Kernel> {
  const act = activationWgsl(s.activation);
  const g = grid2d(Math.ceil((s.rows * s.outF) / DIRECT_WG), cc.maxWorkgroups);
  return cc.kernel(
    {
      label: `${s.label} direct`,
      buffers: linearBuffers(s),
      math: act.math,
      consts: { R: s.rows, K: s.inF, O: s.outF, NX: g.x },
      decls: act.decl,
      workgroupSize: [DIRECT_WG],
      body: `  let idx = (wid.y * NX + wid.x) * ${DIRECT_WG}u + lid.x;
  if (idx >= R * O) { return; }
  let r = idx / O;
  let o = idx - r * O;
  var acc = 0.0;
  for (var k = 0u; k < K; k++) {
    acc = h_add(acc, h_mul(w[o * K + k], x[r * K + k]));
  }
${s.bias ? '  acc = h_add(acc, b[o]);\n' : ''}  y[idx] = heddle_act(acc);`,
    },
    [g.x, g.y],
  );
}

function tiledKernel(cc: GpuCompileContext, s: LinearSpec): Promise<Kernel> {
  const wx = Math.ceil(s.outF / TILE);
  const wy = Math.ceil(s.rows / TILE);
  if (wx > cc.maxWorkgroups || wy > cc.maxWorkgroups) {
    fail('UNSUPPORTED', `${s.rows} rows x ${s.outF} outputs exceed the adapter's dispatch limit (${cc.maxWorkgroups} workgroups of ${TILE} per dimension)`, s.label);
  }
  const act = activationWgsl(s.activation);
  const decls = `var<workgroup> xs: array<f32, ${TILE * TK}>;
var<workgroup> ws: array<f32, ${TILE * TK}>;
${act.decl}`;
  const loads = TILE * TK / (THREADS * THREADS);
  const body = `  let row0 = wid.y * ${TILE}u;
  let col0 = wid.x * ${TILE}u;
  var acc: array<f32, ${PER * PER}>;
  for (var k0 = 0u; k0 < K; k0 += ${TK}u) {
    for (var l = 0u; l < ${loads}u; l++) {
      let e = li + l * ${THREADS * THREADS}u;
      let m = e / ${TK}u;
      let gk = k0 + (e % ${TK}u);
      var xv = 0.0;
      if (row0 + m < R && gk < K) { xv = x[(row0 + m) * K + gk]; }
      xs[e] = xv;
      var wv = 0.0;
      if (col0 + m < O && gk < K) { wv = w[(col0 + m) * K + gk]; }
      ws[e] = wv;
    }
    workgroupBarrier();
    let kn = min(${TK}u, K - k0);
    for (var kk = 0u; kk < kn; kk++) {
      for (var i = 0u; i < ${PER}u; i++) {
        let xv = xs[(lid.y + i * ${THREADS}u) * ${TK}u + kk];
        for (var j = 0u; j < ${PER}u; j++) {
          let a = i * ${PER}u + j;
          acc[a] = h_add(acc[a], h_mul(ws[(lid.x + j * ${THREADS}u) * ${TK}u + kk], xv));
        }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < ${PER}u; i++) {
    let r = row0 + lid.y + i * ${THREADS}u;
    for (var j = 0u; j < ${PER}u; j++) {
      let o = col0 + lid.x + j * ${THREADS}u;
      if (r < R && o < O) {
        var v = acc[i * ${PER}u + j];
${s.bias ? '        v = h_add(v, b[o]);\n' : ''}        y[r * O + o] = heddle_act(v);
      }
    }
  }`;
  return cc.kernel(
    {
      label: `${s.label} tiled`,
      buffers: linearBuffers(s),
      math: act.math,
      consts: { R: s.rows, K: s.inF, O: s.outF },
      decls,
      workgroupSize: [THREADS, THREADS],
      body,
    },
    [wx, wy],
  );
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
};
