/**
 * WGSL of the N-d convolution loops of kernels/conv.ts (gather, scatter, weightGrad, channel
 * sums), plus the element-wise activation backward and the softmax row backward the conv
 * layers' training needs. Geometry is 3-d [D, H, W] as on the CPU (1-d and 2-d pad with
 * kernel 1, stride 1, padding 0, dilation 1), baked into each module as constants.
 *
 * One invocation per output element, and each output's sum runs in the canonical order of
 * kernels/conv.ts, from +0, every product and partial sum rounded and flushed (h_mul, h_add):
 *   gather     out[n, a, q] = sum over b ascending, then k ascending (kd, kh, kw), of
 *              w[a, b, k] * wide[n, b, t(q, k)], pairs whose t is in the padding skipped;
 *              then + bias[a], then the activation (fused: both are per element).
 *   scatter    out[n, a, t] = sum over b ascending, then k ascending, of w[b, a, k] * narrow[n, b, q]
 *              for the one q (if any) with t(q, k) = t; then + bias, then the activation.
 *              The CPU visits (b, k) in this order for every t (its loops put the positions
 *              innermost), so the per-output order is the same.
 *   weightGrad g[a, b, k] = h_add(g[a, b, k], s), s = sum over n ascending, then q ascending
 *              (row-major, the q whose t is inside), of narrow[n, a, q] * wide[n, b, t(q, k)].
 *   sums       g[c] = h_add(g[c], s), s = sum over n ascending, then positions ascending, of dy.
 * The CPU's fast paths skip flush checks only where they provably change nothing, so these
 * always-flushing loops give the same bits. t(q, k) = q * stride - padding + k * dilation.
 */
import { fail } from '../errors.ts';
import type { GpuCompileContext } from '../backend/webgpu/kernel.ts';
import type { Kernel } from '../backend/webgpu/run.ts';
import { grid2d } from '../backend/webgpu/shader.ts';
import type { Activation } from '../layers/activations.ts';
import { activationGradWgsl, activationWgsl } from '../layers/activations.wgsl.ts';
import type { ConvGeometry } from './conv.ts';

/** Invocations per workgroup of every kernel here. */
export const CONV_WG = 64;

const prod = (d: readonly number[]): number => d[0] * d[1] * d[2];

/** Workgroups for one invocation per element of `n`, checked against the dispatch limit. */
function grid(cc: GpuCompileContext, n: number, label: string): { x: number; y: number } {
  const g = grid2d(Math.ceil(n / CONV_WG), cc.maxWorkgroups);
  if (g.y > cc.maxWorkgroups) fail('UNSUPPORTED', `${n} outputs exceed the adapter's dispatch limit (${cc.maxWorkgroups} x ${cc.maxWorkgroups} workgroups of ${CONV_WG})`, label);
  return g;
}

/** Geometry constants: wide W*, narrow N*, kernel K*, stride S*, padding P*, dilation L*. */
function geomConsts(g: ConvGeometry): Record<string, number> {
  const c: Record<string, number> = {};
  const dims = ['D', 'H', 'W'];
  dims.forEach((d, i) => {
    c[`W${d}`] = g.wide[i];
    c[`N${d}`] = g.narrow[i];
    c[`K${d}`] = g.kernel[i];
    c[`S${d}`] = g.stride[i];
    c[`P${d}`] = g.padding[i];
    c[`L${d}`] = g.dilation[i];
  });
  return c;
}


/** Element index of invocation; returns early past `total`. */
const flatIndex = (total: string): string => `  let idx = (wid.y * NX + wid.x) * ${CONV_WG}u + lid.x;
  if (idx >= ${total}) { return; }`;

export interface ConvMapSpec {
  readonly label: string;
  readonly batch: number;
  /** Channels of the operand read (wide for gather, narrow for scatter). */
  readonly inCh: number;
  /** Channels of the output. */
  readonly outCh: number;
  readonly geom: ConvGeometry;
  readonly bias: boolean;
  /** Element-wise activation fused after the bias (softmax runs as a row kernel after). */
  readonly activation: Exclude<Activation, 'softmax'>;
}

function mapBuffers(src: string, bias: boolean): { name: string; access: 'read' | 'read_write' }[] {
  return [
    { name: src, access: 'read' },
    { name: 'w', access: 'read' },
    ...(bias ? [{ name: 'bias', access: 'read' as const }] : []),
    { name: 'y', access: 'read_write' },
  ];
}

/**
 * Conv forward / transposed dx: y[n, a, q] over the narrow side. Binds wide, w [outCh, inCh, k...],
 * (bias,) y.
 */
export function convGatherKernel(cc: GpuCompileContext, s: ConvMapSpec): Promise<Kernel> {
  const total = s.batch * s.outCh * prod(s.geom.narrow);
  const g = grid(cc, total, s.label);
  const act = activationWgsl(s.activation);
  const body = `${flatIndex('TOTAL')}
  let np = ND * NH * NW;
  let n = idx / (OC * np);
  let a = (idx / np) % OC;
  let q = idx % np;
  let qd = q / (NH * NW);
  let qh = (q / NW) % NH;
  let qw = q % NW;
  var acc = h_zero();
  for (var b = 0u; b < IC; b++) {
    let xb = (n * IC + b) * WD;
    let wb = (a * IC + b) * KD;
    for (var kd = 0u; kd < KD; kd++) {
      let id = i32(qd * SD + kd * LD) - i32(PD);
      if (id < 0 || id >= i32(WD)) { continue; }
      for (var kh = 0u; kh < KH; kh++) {
        let ih = i32(qh * SH + kh * LH) - i32(PH);
        if (ih < 0 || ih >= i32(WH)) { continue; }
        let xr = ((xb + u32(id)) * WH + u32(ih)) * WW;
        let wr = ((wb + kd) * KH + kh) * KW;
        for (var kw = 0u; kw < KW; kw++) {
          let iw = i32(qw * SW + kw * LW) - i32(PW);
          if (iw < 0 || iw >= i32(WW)) { continue; }
          acc = h_add(acc, h_mul(w[wr + kw], wide[xr + u32(iw)]));
        }
      }
    }
  }
${s.bias ? '  acc = h_add(acc, bias[a]);\n' : ''}  y[idx] = heddle_act(acc);`;
  return cc.kernel(
    {
      label: s.label,
      buffers: mapBuffers('wide', s.bias),
      math: act.math,
      consts: { ...geomConsts(s.geom), IC: s.inCh, OC: s.outCh, TOTAL: total, NX: g.x },
      decls: act.decl,
      workgroupSize: [CONV_WG],
      body,
    },
    [g.x, g.y],
  );
}

/**
 * Transposed forward / conv dx: y[n, a, t] over the wide side. Binds narrow, w [inCh, outCh, k...],
 * (bias,) y. Wide positions no pair reaches get +0 (then the bias).
 */
export function convScatterKernel(cc: GpuCompileContext, s: ConvMapSpec): Promise<Kernel> {
  const total = s.batch * s.outCh * prod(s.geom.wide);
  const g = grid(cc, total, s.label);
  const act = activationWgsl(s.activation);
  // Per dim: e = t + p - k*dil must be >= 0 and a multiple of the stride; q = e / s < narrow.
  const body = `${flatIndex('TOTAL')}
  let wp = WD * WH * WW;
  let n = idx / (OC * wp);
  let a = (idx / wp) % OC;
  let t = idx % wp;
  let td = i32(t / (WH * WW)) + i32(PD);
  let th = i32((t / WW) % WH) + i32(PH);
  let tw = i32(t % WW) + i32(PW);
  var acc = h_zero();
  for (var b = 0u; b < IC; b++) {
    let xb = (n * IC + b) * ND;
    let wb = (b * OC + a) * KD;
    for (var kd = 0u; kd < KD; kd++) {
      let ed = td - i32(kd * LD);
      if (ed < 0 || (u32(ed) % SD) != 0u) { continue; }
      let qd = u32(ed) / SD;
      if (qd >= ND) { continue; }
      for (var kh = 0u; kh < KH; kh++) {
        let eh = th - i32(kh * LH);
        if (eh < 0 || (u32(eh) % SH) != 0u) { continue; }
        let qh = u32(eh) / SH;
        if (qh >= NH) { continue; }
        let xr = ((xb + qd) * NH + qh) * NW;
        let wr = ((wb + kd) * KH + kh) * KW;
        for (var kw = 0u; kw < KW; kw++) {
          let ew = tw - i32(kw * LW);
          if (ew < 0 || (u32(ew) % SW) != 0u) { continue; }
          let qw = u32(ew) / SW;
          if (qw >= NW) { continue; }
          acc = h_add(acc, h_mul(w[wr + kw], narrow[xr + qw]));
        }
      }
    }
  }
${s.bias ? '  acc = h_add(acc, bias[a]);\n' : ''}  y[idx] = heddle_act(acc);`;
  return cc.kernel(
    {
      label: s.label,
      buffers: mapBuffers('narrow', s.bias),
      math: act.math,
      consts: { ...geomConsts(s.geom), IC: s.inCh, OC: s.outCh, TOTAL: total, NX: g.x },
      decls: act.decl,
      workgroupSize: [CONV_WG],
      body,
    },
    [g.x, g.y],
  );
}

export interface ConvWeightGradSpec {
  readonly label: string;
  readonly batch: number;
  readonly narrowCh: number;
  readonly wideCh: number;
  readonly geom: ConvGeometry;
}

/**
 * grad[(a * wideCh + b) * K + k] = h_add(grad[...], s), s the canonical sum over n, q.
 * Binds narrow [batch, narrowCh, ...], wide [batch, wideCh, ...], grad (read_write).
 */
export function convWeightGradKernel(cc: GpuCompileContext, s: ConvWeightGradSpec): Promise<Kernel> {
  const K = prod(s.geom.kernel);
  const total = s.narrowCh * s.wideCh * K;
  const g = grid(cc, total, s.label);
  const body = `${flatIndex('TOTAL')}
  let kv = KD * KH * KW;
  let a = idx / (WC * kv);
  let b = (idx / kv) % WC;
  let k = idx % kv;
  let kd = k / (KH * KW);
  let kh = (k / KW) % KH;
  let kw = k % KW;
  var s = h_zero();
  for (var n = 0u; n < BATCH; n++) {
    let ab = (n * NC + a) * ND;
    let bb = (n * WC + b) * WD;
    for (var qd = 0u; qd < ND; qd++) {
      let id = i32(qd * SD + kd * LD) - i32(PD);
      if (id < 0 || id >= i32(WD)) { continue; }
      for (var qh = 0u; qh < NH; qh++) {
        let ih = i32(qh * SH + kh * LH) - i32(PH);
        if (ih < 0 || ih >= i32(WH)) { continue; }
        let ar = ((ab + qd) * NH + qh) * NW;
        let br = ((bb + u32(id)) * WH + u32(ih)) * WW;
        for (var qw = 0u; qw < NW; qw++) {
          let iw = i32(qw * SW + kw * LW) - i32(PW);
          if (iw < 0 || iw >= i32(WW)) { continue; }
          s = h_add(s, h_mul(narrow[ar + qw], wide[br + u32(iw)]));
        }
      }
    }
  }
  grad[idx] = h_add(grad[idx], s);`;
  return cc.kernel(
    {
      label: s.label,
      buffers: [{ name: 'narrow', access: 'read' }, { name: 'wide', access: 'read' }, { name: 'grad', access: 'read_write' }],
      consts: { ...geomConsts(s.geom), NC: s.narrowCh, WC: s.wideCh, BATCH: s.batch, TOTAL: total, NX: g.x },
      workgroupSize: [CONV_WG],
      body,
    },
    [g.x, g.y],
  );
}

/** grad[c] = h_add(grad[c], sum over n ascending, then i ascending, of dy[n, c, i]). Binds dy, grad. */
export function channelSumsKernel(cc: GpuCompileContext, label: string, batch: number, ch: number, per: number): Promise<Kernel> {
  const g = grid(cc, ch, label);
  return cc.kernel(
    {
      label,
      buffers: [{ name: 'dy', access: 'read' }, { name: 'grad', access: 'read_write' }],
      consts: { BATCH: batch, CH: ch, PER: per, NX: g.x },
      workgroupSize: [CONV_WG],
      body: `${flatIndex('CH')}
  var s = h_zero();
  for (var n = 0u; n < BATCH; n++) {
    let o = (n * CH + idx) * PER;
    for (var i = 0u; i < PER; i++) { s = h_add(s, dy[o + i]); }
  }
  grad[idx] = h_add(grad[idx], s);`,
    },
    [g.x, g.y],
  );
}

/** dL/dpre element-wise from pre, post and dL/dpost (activations.wgsl.ts, heddle_act_grad). */
export function activationBackwardKernel(cc: GpuCompileContext, label: string, n: number, act: Exclude<Activation, 'softmax' | 'linear'>): Promise<Kernel> {
  const g = grid(cc, n, label);
  const back = activationGradWgsl(act);
  return cc.kernel(
    {
      label,
      buffers: [{ name: 'pre', access: 'read' }, { name: 'post', access: 'read' }, { name: 'dy', access: 'read' }, { name: 'g', access: 'read_write' }],
      math: back.math,
      consts: { N: n, NX: g.x },
      decls: back.decl,
      workgroupSize: [CONV_WG],
      body: `${flatIndex('N')}
  g[idx] = heddle_act_grad(pre[idx], post[idx], dy[idx]);`,
    },
    [g.x, g.y],
  );
}

