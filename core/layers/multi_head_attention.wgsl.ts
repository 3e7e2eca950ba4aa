/**
 * multi_head_attention on the GPU (the CPU reference is core/layers/multi_head_attention.ts),
 * every config (GQA, causal, RoPE, with or without biases), forward, KV-cached forward and
 * training, in the CPU's canonical order:
 *   q, k, v, and the output projection: linearKernel (dense.wgsl.ts), = kernels/linear.ts;
 *   RoPE: kernels/rope.wgsl.ts with the CPU's own cos / sin table rows uploaded per call;
 *   attention: kernels/attention.wgsl.ts.
 * Backward (the CPU's order): o_proj gradients and dAttn (linear backward below), the
 * attention backward, the inverse rotation of dq and dk, the q / k / v parameter gradients,
 * dx = (dx_q + dx_k) + dx_v.
 *
 * KV cache. The cache of a layer running on the GPU lives on the GPU, position-major
 * ([capacity, batch, KV * Dh], so growing it is one copy and the attention module does not
 * depend on the capacity), grown as the CPU's (max(len + seq, 2 * cap, 16) positions). It is
 * kept per layer (shared by the plans of every batch size), apart from the CPU layer's own
 * cache: Network.forward with { cache: true } (always the CPU) and forwardAsync on this
 * backend continue separate sequences. The cached offset reaches the kernels as a one-value
 * buffer, so the modules do not depend on it. Whether a forward is cached is read from the
 * CPU layer (its `caching` flag, set by setCacheMode for the duration of a cached call);
 * resetCache is wrapped to empty the GPU cache too.
 */
import { fail } from '../errors.ts';
import { MAP_WG, mapKernel } from '../backend/webgpu/common.ts';
import type { WebGpuContext } from '../backend/webgpu/device.ts';
import { BufferUsage, type GpuBuffer } from '../backend/webgpu/gpu.ts';
import type { GpuCompileContext, GpuLayerKernel, GpuTrainContext, LayerOp, TrainOp } from '../backend/webgpu/kernel.ts';
import { paramOf } from '../backend/webgpu/kernel.ts';
import type { GpuVal, Kernel, Run, Val } from '../backend/webgpu/run.ts';
import { grid2d } from '../backend/webgpu/shader.ts';
import { type AttentionSpec, attentionDkvKernel, attentionDqKernel, attentionForwardKernel, attentionScoresGradKernel } from '../kernels/attention.wgsl.ts';
import { RopeTable } from '../kernels/rope.ts';
import { ropeKernel, ropeTableRows } from '../kernels/rope.wgsl.ts';
import { f32, rsqrt } from '../math/index.ts';
import { Tensor } from '../tensor.ts';
import { type LinearGradKernels, linearGradKernels, linearKernel } from './dense.wgsl.ts';
import type { Layer, Param } from './layer.ts';
import type { MultiHeadAttentionConfig } from './multi_head_attention.ts';

interface Dims {
  readonly B: number;
  readonly S: number;
  readonly dm: number;
  readonly H: number;
  readonly KV: number;
  readonly Dh: number;
  readonly qw: number;
  readonly kw: number;
  readonly rows: number;
  readonly outShape: readonly number[];
  readonly attn: AttentionSpec;
}

function dimsOf(layer: Layer, cc: GpuCompileContext): Dims {
  const cfg = layer.config as MultiHeadAttentionConfig;
  const dm = cfg.d_model;
  const per = layer.inputShape.reduce((a, b) => a * b, 1);
  const S = per / dm;
  const { num_heads: H, num_kv_heads: KV, head_dim: Dh } = cfg;
  const B = cc.batch;
  return {
    B, S, dm, H, KV, Dh, qw: H * Dh, kw: KV * Dh, rows: B * S,
    outShape: [B, ...layer.outputShape],
    attn: { label: `${cc.prefix} attention`, batch: B, seq: S, heads: H, kvHeads: KV, headDim: Dh, causal: cfg.causal, scale: rsqrt(f32(Dh)) },
  };
}

/** The four projections' parameters and their resident buffers. */
interface Proj {
  readonly w: Param;
  readonly b: Param | null;
  readonly wb: GpuBuffer;
  readonly bb: GpuBuffer | null;
}

function projOf(layer: Layer, cc: GpuCompileContext, name: string): Proj {
  const w = paramOf(layer, `${name}.weight`)!;
  const b = paramOf(layer, `${name}.bias`);
  return { w, b, wb: cc.weight(w), bb: b ? cc.weight(b) : null };
}

function linearBinds(p: Proj, x: GpuBuffer, y: GpuBuffer): GpuBuffer[] {
  return p.bb ? [x, p.wb, p.bb, y] : [x, p.wb, y];
}

/** What the plain forward produces (the training forward keeps it for backward). */
interface Saved {
  readonly x: GpuVal;
  readonly q: GpuVal;
  readonly k: GpuVal;
  readonly v: GpuVal;
  readonly p: GpuVal;
  readonly attn: GpuVal;
  readonly y: GpuVal;
}

/** The GPU KV cache of one layer. */
interface KvState {
  ctx: WebGpuContext | null;
  k: GpuBuffer | null;
  v: GpuBuffer | null;
  /** Positions the buffers hold, and for how many sequences. */
  cap: number;
  bufBatch: number;
  /** Positions cached, and the batch they belong to (meaningful when len > 0). */
  len: number;
  batch: number;
  /** Replaced buffers: destroyed at the next cached call (the pass that copied them has finished). */
  retired: GpuBuffer[];
}

const KV_STATES = new WeakMap<Layer, KvState>();

function kvState(layer: Layer): KvState {
  const known = KV_STATES.get(layer);
  if (known) return known;
  const st: KvState = { ctx: null, k: null, v: null, cap: 0, bufBatch: 0, len: 0, batch: 0, retired: [] };
  const reset = layer.resetCache?.bind(layer);
  // Network.resetCache() calls this: empty the GPU cache with the CPU one (buffers are kept).
  layer.resetCache = (): void => {
    reset?.();
    st.len = 0;
  };
  KV_STATES.set(layer, st);
  return st;
}

/** Whether the CPU layer is in cached mode (setCacheMode, for the duration of a cached call). */
function cacheModeReader(layer: Layer): () => boolean {
  const l = layer as unknown as { caching?: unknown };
  if (typeof l.caching !== 'boolean') fail('INTERNAL', 'multi_head_attention has no caching flag to read (the GPU kernel must follow the layer\'s cache mode)', 'backend webgpu');
  return () => l.caching === true;
}

function cpuVal(data: Float32Array): Val {
  return { kind: 'cpu', tensor: new Tensor([data.length], data) };
}

/** Copies new k / v rows [B, S, KW] into the cache [cap, B, KW] at positions off .. off + S - 1. Binds src, prm, dst. */
function kvAppendKernel(cc: GpuCompileContext, d: Dims): Promise<Kernel> {
  const n = d.rows * d.kw;
  const g = grid2d(Math.ceil(n / MAP_WG), cc.maxWorkgroups);
  return cc.kernel(
    {
      label: `${cc.prefix} kv cache append`,
      buffers: [{ name: 'src', access: 'read' }, { name: 'prm', access: 'read' }, { name: 'dst', access: 'read_write' }],
      consts: { N: n, B: d.B, S: d.S, KW: d.kw, NX: g.x },
      workgroupSize: [MAP_WG],
      body: `  let idx = (wid.y * NX + wid.x) * ${MAP_WG}u + lid.x;
  if (idx >= N) { return; }
  let c = idx % KW;
  let bs = idx / KW;
  let s = bs % S;
  let b = bs / S;
  dst[((u32(prm[0]) + s) * B + b) * KW + c] = src[idx];`,
    },
    [g.x, g.y],
  );
}

interface Forward {
  readonly d: Dims;
  readonly rope: RopeTable | null;
  readonly q: Proj;
  readonly k: Proj;
  readonly v: Proj;
  readonly o: Proj;
  plain(run: Run, xv: Val): Saved;
  cached(run: Run, xv: Val, st: KvState): Promise<Val>;
}

async function buildForward(layer: Layer, cc: GpuCompileContext): Promise<Forward> {
  const cfg = layer.config as MultiHeadAttentionConfig;
  const d = dimsOf(layer, cc);
  const { B, S, H, KV, Dh, dm, qw, kw, rows } = d;
  cc.need(rows * Math.max(dm, qw, kw), `${cc.prefix} (multi_head_attention) activations`);
  cc.need(B * H * S * S, `${cc.prefix} (multi_head_attention) attention probabilities`);
  const q = projOf(layer, cc, 'q_proj');
  const k = projOf(layer, cc, 'k_proj');
  const v = projOf(layer, cc, 'v_proj');
  const o = projOf(layer, cc, 'o_proj');
  const lin = (name: string, inF: number, outF: number, bias: boolean): Promise<Kernel> =>
    linearKernel(cc, { label: `${cc.prefix} mha ${name} ${rows}x${inF}->${outF}`, rows, inF, outF, bias, activation: 'linear' });
  const linQ = await lin('q_proj', dm, qw, q.b !== null);
  const linK = await lin('k_proj', dm, kw, k.b !== null);
  const linV = (k.b !== null) === (v.b !== null) ? linK : await lin('v_proj', dm, kw, v.b !== null);
  const linO = await lin('o_proj', qw, dm, o.b !== null);
  const base = typeof cfg.rope_freq_base === 'number' ? cfg.rope_freq_base : null;
  const rope = base !== null ? new RopeTable(base, Dh) : null;
  const ropeQ = rope ? await ropeKernel(cc, { label: `${cc.prefix} mha rope q`, rows, seq: S, heads: H, headDim: Dh, inverse: false }) : null;
  const ropeK = rope ? await ropeKernel(cc, { label: `${cc.prefix} mha rope k`, rows, seq: S, heads: KV, headDim: Dh, inverse: false }) : null;
  const plainTable = rope ? ropeTableRows(rope, 0, S) : null;
  const attn = await attentionForwardKernel(cc, { ...d.attn, label: `${cc.prefix} mha attention` });
  let cachedKernels: Promise<{ attn: Kernel; append: Kernel }> | null = null;

  /** q, k (rotated at positions off ..), v. */
  const project = (run: Run, x: GpuVal, table: Float32Array | null): { q: GpuVal; k: GpuVal; v: GpuVal } => {
    const q0 = run.output([rows, qw]);
    const k0 = run.output([rows, kw]);
    const vv = run.output([rows, kw]);
    run.dispatch(linQ, linearBinds(q, x.buffer, q0.buffer));
    run.dispatch(linK, linearBinds(k, x.buffer, k0.buffer));
    run.dispatch(linV, linearBinds(v, x.buffer, vv.buffer));
    if (!table) return { q: q0, k: k0, v: vv };
    const cs = run.gpu(cpuVal(table));
    const q1 = run.output([rows, qw]);
    const k1 = run.output([rows, kw]);
    run.dispatch(ropeQ!, [q0.buffer, cs.buffer, q1.buffer]);
    run.dispatch(ropeK!, [k0.buffer, cs.buffer, k1.buffer]);
    return { q: q1, k: k1, v: vv };
  };

  const outProj = (run: Run, a: GpuVal): GpuVal => {
    const y = run.output(d.outShape);
    run.dispatch(linO, linearBinds(o, a.buffer, y.buffer));
    return y;
  };

  return {
    d, rope, q, k, v, o,
    plain(run: Run, xv: Val): Saved {
      const x = run.gpu(xv);
      const pr = project(run, x, plainTable);
      const p = run.output([B, H, S, S]);
      const a = run.output([rows, qw]);
      run.dispatch(attn, [pr.q.buffer, pr.k.buffer, pr.v.buffer, p.buffer, a.buffer]);
      return { x, ...pr, p, attn: a, y: outProj(run, a) };
    },
    async cached(run: Run, xv: Val, st: KvState): Promise<Val> {
      cachedKernels ??= (async () => ({
        attn: await attentionForwardKernel(cc, { ...d.attn, label: `${cc.prefix} mha attention (kv cache)`, cached: true }),
        append: await kvAppendKernel(cc, d),
      }))();
      const ker = await cachedKernels;
      for (const b of st.retired) b.destroy();
      st.retired = [];
      if (st.len > 0 && st.batch !== B) {
        fail('SHAPE_MISMATCH', `the KV cache holds ${st.batch} sequence(s), but this cached forward has batch ${B}; call resetCache() first`, cc.prefix);
      }
      if (st.ctx !== run.ctx) {
        if (st.len > 0) fail('UNSUPPORTED', 'the KV cache of this layer is on another WebGPU device (the backend was switched); call resetCache() first', cc.prefix);
        st.ctx = run.ctx;
        st.k = st.v = null;
        st.cap = 0;
      }
      const off = st.len;
      const x = run.gpu(xv);
      const pr = project(run, x, rope ? ropeTableRows(rope, off, S) : null);
      if (!st.k || !st.v || st.bufBatch !== B || off + S > st.cap) {
        const cap = st.bufBatch === B ? Math.max(off + S, 2 * st.cap, 16) : Math.max(off + S, 16);
        cc.need(cap * B * kw, `${cc.prefix} (multi_head_attention) KV cache`);
        const make = (what: string): GpuBuffer => run.ctx.device.createBuffer({ size: Math.max(4, cap * B * kw * 4), usage: BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST, label: `${cc.prefix} kv cache ${what}` });
        const nk = make('k');
        const nv = make('v');
        if (st.k && st.v) {
          const bytes = off * B * kw * 4;
          if (bytes > 0) {
            run.copy(st.k, 0, nk, 0, bytes);
            run.copy(st.v, 0, nv, 0, bytes);
          }
          st.retired.push(st.k, st.v);
        }
        st.k = nk;
        st.v = nv;
        st.cap = cap;
        st.bufBatch = B;
      }
      const prm = run.gpu(cpuVal(Float32Array.of(off)));
      run.dispatch(ker.append, [pr.k.buffer, prm.buffer, st.k]);
      run.dispatch(ker.append, [pr.v.buffer, prm.buffer, st.v]);
      st.len = off + S;
      st.batch = B;
      const p = run.output([B, H, S, off + S]);
      const a = run.output([rows, qw]);
      run.dispatch(ker.attn, [pr.q.buffer, st.k, st.v, prm.buffer, p.buffer, a.buffer]);
      return outProj(run, a);
    },
  };
}

/** Adds the projection's parameter gradients (dy against its input x) and returns its dL/dx. */
function linearBackward(run: Run, k: LinearGradKernels, p: Proj, grads: { w: GpuBuffer; b: GpuBuffer | null }, dy: GpuVal, x: GpuVal, dxShape: readonly number[]): GpuVal {
  run.dispatch(k.dW, [dy.buffer, x.buffer, grads.w]);
  if (k.dB && grads.b) run.dispatch(k.dB, [dy.buffer, grads.b]);
  const dx = run.output(dxShape);
  run.dispatch(k.dX, [dy.buffer, p.wb, dx.buffer]);
  return dx;
}

type Backward = (run: Run, s: Saved, dyv: Val) => Val;

async function buildBackward(cc: GpuTrainContext, f: Forward): Promise<Backward> {
  const { d, rope } = f;
  const { B, S, H, KV, Dh, dm, qw, kw, rows } = d;
  const label = (what: string): string => `${cc.prefix} mha backward ${what}`;
  const lgO = await linearGradKernels(cc, { label: label(`o_proj ${rows}x${qw}->${dm}`), rows: rows, inF: qw, outF: dm, bias: f.o.b !== null });
  const lgQ = await linearGradKernels(cc, { label: label(`q_proj ${rows}x${dm}->${qw}`), rows: rows, inF: dm, outF: qw, bias: f.q.b !== null });
  const lgK = await linearGradKernels(cc, { label: label(`k_proj ${rows}x${dm}->${kw}`), rows: rows, inF: dm, outF: kw, bias: f.k.b !== null });
  const lgV = (f.v.b !== null) === (f.k.b !== null) ? lgK : await linearGradKernels(cc, { label: label(`v_proj ${rows}x${dm}->${kw}`), rows: rows, inF: dm, outF: kw, bias: f.v.b !== null });
  const scores = await attentionScoresGradKernel(cc, { ...d.attn, label: label('scores') });
  const dqK = await attentionDqKernel(cc, { ...d.attn, label: label('dq') });
  const dkvK = await attentionDkvKernel(cc, { ...d.attn, label: label('dk dv') });
  const ropeQ = rope ? await ropeKernel(cc, { label: label('rope q'), rows, seq: S, heads: H, headDim: Dh, inverse: true }) : null;
  const ropeK = rope ? await ropeKernel(cc, { label: label('rope k'), rows, seq: S, heads: KV, headDim: Dh, inverse: true }) : null;
  const table = rope ? ropeTableRows(rope, 0, S) : null;
  const sum3 = await mapKernel(cc, { label: label('dx sum'), n: rows * dm, inputs: ['a', 'b', 'c'], expr: 'h_add(h_add(a[i], b[i]), c[i])' });
  const grads = (p: Proj): { w: GpuBuffer; b: GpuBuffer | null } => ({ w: cc.grad(p.w), b: p.b ? cc.grad(p.b) : null });
  const gO = grads(f.o);
  const gQ = grads(f.q);
  const gK = grads(f.k);
  const gV = grads(f.v);
  return (run, s, dyv) => {
    const dy = run.gpu(dyv);
    const dAttn = linearBackward(run, lgO, f.o, gO, dy, s.attn, [rows, qw]);
    const ds = run.output([B, H, S, S]);
    run.dispatch(scores, [dAttn.buffer, s.v.buffer, s.p.buffer, ds.buffer]);
    let dq = run.output([rows, qw]);
    let dk = run.output([rows, kw]);
    const dv = run.output([rows, kw]);
    run.dispatch(dqK, [ds.buffer, s.k.buffer, dq.buffer]);
    run.dispatch(dkvK, [ds.buffer, s.q.buffer, s.p.buffer, dAttn.buffer, dk.buffer, dv.buffer]);
    if (table) {
      const cs = run.gpu(cpuVal(table));
      const dq1 = run.output([rows, qw]);
      const dk1 = run.output([rows, kw]);
      run.dispatch(ropeQ!, [dq.buffer, cs.buffer, dq1.buffer]);
      run.dispatch(ropeK!, [dk.buffer, cs.buffer, dk1.buffer]);
      dq = dq1;
      dk = dk1;
    }
    // separate outputs each (the CPU's dispatch order between them changes no bit)
    const dxq = linearBackward(run, lgQ, f.q, gQ, dq, s.x, [rows, dm]);
    const dxk = linearBackward(run, lgK, f.k, gK, dk, s.x, [rows, dm]);
    const dxv = linearBackward(run, lgV, f.v, gV, dv, s.x, [rows, dm]);
    const dx = run.output(s.x.shape);
    run.dispatch(sum3, [dxq.buffer, dxk.buffer, dxv.buffer, dx.buffer]);
    return dx;
  };
}

export const multiHeadAttentionGpu: GpuLayerKernel = {
  type: 'multi_head_attention',
  async compile(layer: Layer, cc: GpuCompileContext): Promise<LayerOp> {
    const caching = cacheModeReader(layer);
    const st = kvState(layer);
    const f = await buildForward(layer, cc);
    return async (run: Run, xv: Val): Promise<Val> => (caching() ? f.cached(run, xv, st) : f.plain(run, xv).y);
  },
  async compileTrain(layer: Layer, cc: GpuTrainContext): Promise<TrainOp> {
    const f = await buildForward(layer, cc);
    const bwd = await buildBackward(cc, f);
    return {
      forward: async (run, xv) => {
        const s = f.plain(run, xv);
        return { y: s.y, saved: s };
      },
      backward: async (run, saved, dy) => ({ dx: bwd(run, saved as Saved, dy) }),
    };
  },
};

/** Registered in core/backend/webgpu/kernels.ts. */
export const multiHeadAttentionGpuKernels: readonly GpuLayerKernel[] = [multiHeadAttentionGpu];
