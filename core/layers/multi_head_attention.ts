/**
 * multi_head_attention (alias mha) — multi-head self-attention with grouped-query attention,
 * an optional causal mask, optional rotary position embedding (Llama) and a KV cache for
 * incremental decoding. PyTorch/Hugging Face Llama semantics; weights in nn.Linear layout.
 *
 * Config (canonical names first, aliases after; 0 means "unset" where Loom writes 0):
 *   d_model        (embed_dim, hidden_size)             model width, required, >= 1
 *   num_heads      (num_attention_heads)                query heads H, required, >= 1
 *   num_kv_heads   (num_key_value_heads)                key/value heads KV, default H (0 = unset);
 *                                                       must divide H; query head h reads kv head
 *                                                       floor(h / (H / KV)) (Llama's repeat_interleave)
 *   head_dim                                            Dh, default d_model / H (H must then divide
 *                                                       d_model); 0 = unset
 *   causal         (is_causal)                          true|false, default false
 *   rope_freq_base (rope_theta)                         rotary embedding base; absent, null or 0 = no
 *                                                       RoPE; must be > 0; needs an even head_dim
 *   bias                                                true|false, default true (biases on all four
 *                                                       projections, as nn.Linear / Loom; Llama: false)
 *   seq_length                                          optional (Loom); implies the input shape
 *                                                       [seq_length, d_model] for a first layer and
 *                                                       must match the input's seq otherwise
 * Parameters (xavier_uniform weights, zero biases):
 *   q_proj.weight [H * Dh, d_model]   q_proj.bias [H * Dh]
 *   k_proj.weight [KV * Dh, d_model]  k_proj.bias [KV * Dh]
 *   v_proj.weight [KV * Dh, d_model]  v_proj.bias [KV * Dh]
 *   o_proj.weight [d_model, H * Dh]   o_proj.bias [d_model]
 * Shapes (per sample): [seq, d_model] -> [seq, d_model]; a flat [seq * d_model] (Loom passes
 *   flat vectors) is read as [seq, d_model] and the output keeps the flat shape. seq >= 1.
 *
 * Canonical order, per sample (rows = token positions):
 *   q = x Wq^T + bq, k = x Wk^T + bk, v = x Wv^T + bv      (kernels/linear.ts: sum over d_model ascending, then + bias)
 *   with RoPE: q, k rotated per head at their absolute positions (kernels/rope.ts)
 *   attention per head: kernels/attention.ts (QK^T over Dh ascending, * scale, softmax as
 *     kernels/softmax.ts, P V over key positions ascending), scale = rsqrt(f32(Dh))
 *   y = attn Wo^T + bo                                       (kernels/linear.ts)
 * Backward:
 *   o_proj: kernels/linear.ts; attention: kernels/attention.ts (dk, dv sum over the query heads
 *   of their group ascending, then query positions ascending); RoPE: the transposed rotation;
 *   q/k/v projections: kernels/linear.ts each; dx = (dx_q + dx_k) + dx_v element-wise.
 *
 * KV cache (incremental decoding): Network.forward(x, { cache: true }) switches the layer to
 * cached mode for that call (setCacheMode). The new tokens of x take the positions
 * L .. L + seq - 1, where L is the number of positions already cached; their k and v (after
 * RoPE) are appended to the cache and the queries attend over all L + seq cached keys (causal:
 * query at position t sees keys 0..t). A cached forward is inference only (no backward).
 * Network.resetCache() empties it. The cache holds one sequence per batch element; a cached
 * call with another batch size than the cache holds is an error until the cache is reset.
 * Decoding position by position gives bit-for-bit the outputs of the full causal forward: each
 * projection row, rotation, score, softmax and sum is computed by the same operations in the
 * same order in both modes.
 */
import { fail } from '../errors.ts';
import type { FieldReader } from '../fields.ts';
import { type AttentionDims, attentionBackward, attentionForward } from '../kernels/attention.ts';
import { linearBackwardInput, linearBackwardParams, linearForward } from '../kernels/linear.ts';
import { RopeTable, ropeApply } from '../kernels/rope.ts';
import { add, f32, rsqrt } from '../math/index.ts';
import { Tensor, shapeStr } from '../tensor.ts';
import type { BuildContext, Layer, LayerConfig, LayerKind, Param, Shape } from './layer.ts';

export interface MultiHeadAttentionConfig extends LayerConfig {
  type: 'multi_head_attention';
  d_model: number;
  num_heads: number;
  num_kv_heads: number;
  head_dim: number;
  causal: boolean;
  bias: boolean;
  // Present only when set: rope_freq_base: number, seq_length: number (optional properties
  // cannot satisfy the Json index type).
}

interface MhaSaved {
  x: Float32Array;
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  p: Float32Array;
  attn: Float32Array;
  batch: number;
}

export const multiHeadAttentionKind: LayerKind = {
  type: 'multi_head_attention',
  aliases: ['mha', 'multihead_attention'],
  parse(f: FieldReader): MultiHeadAttentionConfig {
    const dModel = f.int(['d_model', 'embed_dim', 'hidden_size'], { min: 1 });
    const heads = f.int(['num_heads', 'num_attention_heads'], { min: 1 });
    const kv = f.optInt(['num_kv_heads', 'num_key_value_heads'], { min: 1, zeroIsAbsent: true }) ?? heads;
    if (heads % kv !== 0) {
      fail('CONFIG_INVALID', `num_kv_heads ${kv} must divide num_heads ${heads} (each kv head serves num_heads / num_kv_heads query heads)`, f.at(f.lookup(['num_kv_heads', 'num_key_value_heads'])!.name));
    }
    let headDim = f.optInt('head_dim', { min: 1, zeroIsAbsent: true });
    if (headDim === undefined) {
      if (dModel % heads !== 0) {
        fail('CONFIG_INVALID', `num_heads ${heads} does not divide d_model ${dModel}; set head_dim for heads of another width`, f.at(f.lookup(['num_heads', 'num_attention_heads'])!.name));
      }
      headDim = dModel / heads;
    }
    const cfg: MultiHeadAttentionConfig = {
      type: 'multi_head_attention',
      d_model: dModel,
      num_heads: heads,
      num_kv_heads: kv,
      head_dim: headDim,
      causal: f.bool(['causal', 'is_causal'], false),
      bias: f.bool('bias', true),
    };
    const rope = f.lookup(['rope_freq_base', 'rope_theta']);
    if (rope && rope.value !== null && rope.value !== 0) {
      const base = f.num(rope.name);
      if (!(base > 0) || !Number.isFinite(Math.fround(base))) fail('CONFIG_INVALID', `must be > 0 and fit in f32, got ${base}`, f.at(rope.name));
      if (headDim % 2 !== 0) fail('CONFIG_INVALID', `rotary position embedding needs an even head_dim, but head_dim is ${headDim}`, f.at(rope.name));
      cfg.rope_freq_base = base;
    }
    const seq = f.optInt('seq_length', { min: 1, zeroIsAbsent: true });
    if (seq !== undefined) cfg.seq_length = seq;
    return cfg;
  },
  inferInputShape(c) {
    const cfg = c as MultiHeadAttentionConfig;
    return typeof cfg.seq_length === 'number' ? [cfg.seq_length, cfg.d_model] : null;
  },
  build(c, inputShape, ctx) {
    return new MultiHeadAttentionLayer(c as MultiHeadAttentionConfig, inputShape, ctx);
  },
};

interface KvCache {
  batch: number;
  /** Positions cached. */
  len: number;
  /** Positions the arrays can hold. */
  cap: number;
  k: Float32Array[];
  v: Float32Array[];
}

class MultiHeadAttentionLayer implements Layer {
  readonly type = 'multi_head_attention';
  readonly config: MultiHeadAttentionConfig;
  readonly inputShape: Shape;
  readonly outputShape: Shape;
  readonly params: Param[];
  readonly children = [];
  readonly usesSkip = false;
  private readonly where: string;
  private readonly seq: number;
  private readonly dims: AttentionDims;
  private readonly qWidth: number;
  private readonly kvWidth: number;
  private readonly rope: RopeTable | null;
  private readonly wq: Param;
  private readonly wk: Param;
  private readonly wv: Param;
  private readonly wo: Param;
  private readonly bq: Param | null;
  private readonly bk: Param | null;
  private readonly bv: Param | null;
  private readonly bo: Param | null;
  private caching = false;
  private cache: KvCache | null = null;

  constructor(cfg: MultiHeadAttentionConfig, inputShape: Shape, ctx: BuildContext) {
    this.config = cfg;
    this.where = ctx.where;
    this.inputShape = inputShape;
    this.outputShape = inputShape;
    const dm = cfg.d_model;
    let seq: number;
    if (inputShape.length === 2 && inputShape[1] === dm) seq = inputShape[0];
    else if (inputShape.length === 1 && inputShape[0] % dm === 0) seq = inputShape[0] / dm;
    else {
      seq = fail('SHAPE_MISMATCH', `expects per-sample input [seq, d_model] = [seq, ${dm}] (or a flat [seq * ${dm}]), but its input has per-sample shape ${shapeStr(inputShape)}`, `${ctx.where}.d_model`);
    }
    if (seq < 1) fail('SHAPE_MISMATCH', `the input sequence is empty (per-sample shape ${shapeStr(inputShape)})`, `${ctx.where}.d_model`);
    if (typeof cfg.seq_length === 'number' && cfg.seq_length !== seq) {
      fail('SHAPE_MISMATCH', `is ${cfg.seq_length}, but the input has ${seq} positions (per-sample shape ${shapeStr(inputShape)})`, `${ctx.where}.seq_length`);
    }
    this.seq = seq;
    const { num_heads: H, num_kv_heads: KV, head_dim: Dh } = cfg;
    this.qWidth = H * Dh;
    this.kvWidth = KV * Dh;
    this.dims = { heads: H, kvHeads: KV, headDim: Dh, causal: cfg.causal, scale: rsqrt(f32(Dh)) };
    this.rope = typeof cfg.rope_freq_base === 'number' ? new RopeTable(cfg.rope_freq_base, Dh) : null;
    const proj = (name: string, out: number, inF: number): [Param, Param | null] => {
      const w = ctx.param(`${name}.weight`, [out, inF], { kind: 'xavier_uniform', fanIn: inF, fanOut: out });
      const b = cfg.bias ? ctx.param(`${name}.bias`, [out], { kind: 'zeros' }) : null;
      return [w, b];
    };
    [this.wq, this.bq] = proj('q_proj', this.qWidth, dm);
    [this.wk, this.bk] = proj('k_proj', this.kvWidth, dm);
    [this.wv, this.bv] = proj('v_proj', this.kvWidth, dm);
    [this.wo, this.bo] = proj('o_proj', dm, this.qWidth);
    this.params = [this.wq, this.bq, this.wk, this.bk, this.wv, this.bv, this.wo, this.bo].filter((p): p is Param => p !== null);
  }

  setCacheMode(on: boolean): void {
    this.caching = on;
  }

  resetCache(): void {
    this.cache = null;
  }

  /** Positions currently held by the KV cache (0 when empty). */
  cachedPositions(): number {
    return this.cache ? this.cache.len : 0;
  }

  forward(x: Tensor) {
    const B = x.shape[0];
    const S = this.seq;
    const rows = B * S;
    const dm = this.config.d_model;
    const qw = this.qWidth;
    const kw = this.kvWidth;
    const data = x.data;
    const q0 = linearForward(data, rows, dm, this.wq.value.data, this.bq ? this.bq.value.data : null, qw);
    const k0 = linearForward(data, rows, dm, this.wk.value.data, this.bk ? this.bk.value.data : null, kw);
    const v = linearForward(data, rows, dm, this.wv.value.data, this.bv ? this.bv.value.data : null, kw);
    const off = this.caching ? this.cacheOffset(B) : 0;
    const q = this.rope ? ropeApply(q0, rows, S, this.config.num_heads, this.rope, off, false) : q0;
    const k = this.rope ? ropeApply(k0, rows, S, this.config.num_kv_heads, this.rope, off, false) : k0;
    const attn = new Float32Array(rows * qw);
    let saved: MhaSaved | null = null;
    if (!this.caching) {
      const H = this.config.num_heads;
      const p = new Float32Array(B * H * S * S);
      for (let b = 0; b < B; b++) {
        attentionForward(
          q.subarray(b * S * qw, (b + 1) * S * qw), k.subarray(b * S * kw, (b + 1) * S * kw), v.subarray(b * S * kw, (b + 1) * S * kw),
          S, S, 0, this.dims, attn.subarray(b * S * qw, (b + 1) * S * qw), p.subarray(b * H * S * S, (b + 1) * H * S * S),
        );
      }
      saved = { x: data, q, k, v, p, attn, batch: B };
    } else {
      const c = this.append(B, k, v);
      const sk = c.len;
      for (let b = 0; b < B; b++) {
        attentionForward(q.subarray(b * S * qw, (b + 1) * S * qw), c.k[b].subarray(0, sk * kw), c.v[b].subarray(0, sk * kw), S, sk, off, this.dims, attn.subarray(b * S * qw, (b + 1) * S * qw), null);
      }
    }
    const y = linearForward(attn, rows, qw, this.wo.value.data, this.bo ? this.bo.value.data : null, dm);
    return { y: new Tensor([B, ...this.outputShape], y), saved };
  }

  private cacheOffset(batch: number): number {
    if (!this.cache) return 0;
    if (this.cache.batch !== batch) {
      fail('SHAPE_MISMATCH', `the KV cache holds ${this.cache.batch} sequence(s), but this cached forward has batch ${batch}; call resetCache() first`, this.where);
    }
    return this.cache.len;
  }

  /** Append this call's k, v rows (batch-major [B, S, kw]) to the cache. */
  private append(B: number, k: Float32Array, v: Float32Array): KvCache {
    const S = this.seq;
    const kw = this.kvWidth;
    let c = this.cache;
    if (!c) c = this.cache = { batch: B, len: 0, cap: 0, k: [], v: [] };
    if (c.len + S > c.cap) {
      const cap = Math.max(c.len + S, 2 * c.cap, 16);
      for (let b = 0; b < B; b++) {
        const nk = new Float32Array(cap * kw);
        const nv = new Float32Array(cap * kw);
        if (c.k[b]) nk.set(c.k[b].subarray(0, c.len * kw));
        if (c.v[b]) nv.set(c.v[b].subarray(0, c.len * kw));
        c.k[b] = nk;
        c.v[b] = nv;
      }
      c.cap = cap;
    }
    for (let b = 0; b < B; b++) {
      c.k[b].set(k.subarray(b * S * kw, (b + 1) * S * kw), c.len * kw);
      c.v[b].set(v.subarray(b * S * kw, (b + 1) * S * kw), c.len * kw);
    }
    c.len += S;
    return c;
  }

  backward(s: unknown, dy: Tensor) {
    if (!s) return fail('UNSUPPORTED', 'backward through a KV-cached forward is not supported; run the forward without { cache: true }', this.where);
    const saved = s as MhaSaved;
    const B = saved.batch;
    const S = this.seq;
    const rows = B * S;
    const dm = this.config.d_model;
    const H = this.config.num_heads;
    const qw = this.qWidth;
    const kw = this.kvWidth;
    const g = dy.data;
    linearBackwardParams(g, saved.attn, rows, qw, dm, this.wo.grad.data, this.bo ? this.bo.grad.data : null);
    const dAttn = linearBackwardInput(g, rows, dm, this.wo.value.data, qw);
    let dq: Float32Array = new Float32Array(rows * qw);
    let dk: Float32Array = new Float32Array(rows * kw);
    const dv = new Float32Array(rows * kw);
    for (let b = 0; b < B; b++) {
      const qs = (x: Float32Array) => x.subarray(b * S * qw, (b + 1) * S * qw);
      const ks = (x: Float32Array) => x.subarray(b * S * kw, (b + 1) * S * kw);
      attentionBackward(qs(dAttn), qs(saved.q), ks(saved.k), ks(saved.v), saved.p.subarray(b * H * S * S, (b + 1) * H * S * S), S, S, 0, this.dims, qs(dq), ks(dk), ks(dv));
    }
    if (this.rope) {
      dq = ropeApply(dq, rows, S, H, this.rope, 0, true);
      dk = ropeApply(dk, rows, S, this.config.num_kv_heads, this.rope, 0, true);
    }
    const x = saved.x;
    linearBackwardParams(dq, x, rows, dm, qw, this.wq.grad.data, this.bq ? this.bq.grad.data : null);
    linearBackwardParams(dk, x, rows, dm, kw, this.wk.grad.data, this.bk ? this.bk.grad.data : null);
    linearBackwardParams(dv, x, rows, dm, kw, this.wv.grad.data, this.bv ? this.bv.grad.data : null);
    const dxq = linearBackwardInput(dq, rows, qw, this.wq.value.data, dm);
    const dxk = linearBackwardInput(dk, rows, kw, this.wk.value.data, dm);
    const dxv = linearBackwardInput(dv, rows, kw, this.wv.value.data, dm);
    const dx = new Float32Array(rows * dm);
    for (let i = 0; i < dx.length; i++) dx[i] = add(add(dxq[i], dxk[i]), dxv[i]);
    return { dx: new Tensor([dy.shape[0], ...this.inputShape], dx) };
  }
}
