/**
 * Scaled dot-product attention for one sample, with grouped-query attention (GQA), an
 * optional causal mask and a query position offset (the KV cache). The projections and RoPE
 * happen outside (layers/multi_head_attention.ts); this kernel sees, for one sample:
 *   q [sq, H * Dh]   (query i is at absolute position off + i)
 *   k, v [sk, KV * Dh] (key j is at absolute position j)
 * Query head h reads kv head g(h) = floor(h / (H / KV)), as in Llama.
 * Query i sees keys j < n(i), n(i) = causal ? min(sk, off + i + 1) : sk; the others are
 * masked (probability +0, gradient +0).
 *
 * Canonical arithmetic (every step rounded to f32 and flushed, core/math; sums sequential
 * from +0; the WebGPU backend must follow the same order):
 *   dot[h, i, j] = sum over d = 0..Dh-1 ascending of q[i, h, d] * k[j, g, d]
 *   s[h, i, j]   = dot[h, i, j] * scale                      (scale = rsqrt(f32(Dh)) by default)
 *   P[h, i, :]   = softmax over j < n(i), exactly as kernels/softmax.ts:
 *                  m = max (exact), e[j] = exp(s[j] - m), z = sum over j ascending of e[j], P = e / z
 *   o[i, h, d]   = sum over j = 0..n(i)-1 ascending of P[h, i, j] * v[j, g, d]
 * Backward, for dO [sq, H * Dh]:
 *   dP[h, i, j]  = sum over d ascending of dO[i, h, d] * v[j, g, d]
 *   dot2[h, i]   = sum over j < n(i) ascending of dP[h, i, j] * P[h, i, j]
 *   dS[h, i, j]  = (P[h, i, j] * (dP[h, i, j] - dot2[h, i])) * scale
 *   dq[i, h, d]  = sum over j < n(i) ascending of dS[h, i, j] * k[j, g, d]
 *   dk[j, g, d]  = sum over (h with g(h) = g, ascending; then i ascending, j < n(i)) of dS[h, i, j] * q[i, h, d]
 *   dv[j, g, d]  = sum over (h with g(h) = g, ascending; then i ascending, j < n(i)) of P[h, i, j] * dO[i, h, d]
 * (the sums for dk and dv are one sequential accumulation over the pairs (h, i) in that
 * order). Masked pairs are skipped; including them would add only +0 or -0 to an
 * accumulator that starts at +0, which changes no bit, so a backend may do either.
 */
import { add, div, exp, mul, sub } from '../math/index.ts';

export interface AttentionDims {
  heads: number;
  kvHeads: number;
  headDim: number;
  causal: boolean;
  /** f32 score scale. */
  scale: number;
}

/** Number of keys query i sees. */
function visible(i: number, sk: number, off: number, causal: boolean): number {
  return causal ? Math.min(sk, off + i + 1) : sk;
}

/**
 * Forward for one sample. Writes o [sq, H * Dh] and, when given, P [H, sq, sk] (masked
 * entries +0).
 */
export function attentionForward(
  q: Float32Array, k: Float32Array, v: Float32Array, sq: number, sk: number, off: number,
  dims: AttentionDims, o: Float32Array, p: Float32Array | null,
): void {
  const { heads: H, kvHeads: KV, headDim: Dh, causal, scale } = dims;
  const group = H / KV;
  const qw = H * Dh;
  const kw = KV * Dh;
  const e = new Float32Array(sk);
  for (let h = 0; h < H; h++) {
    const g = Math.floor(h / group);
    for (let i = 0; i < sq; i++) {
      const n = visible(i, sk, off, causal);
      const qo = i * qw + h * Dh;
      let m = -Infinity;
      for (let j = 0; j < n; j++) {
        const ko = j * kw + g * Dh;
        let dot = 0;
        for (let d = 0; d < Dh; d++) dot = add(dot, mul(q[qo + d], k[ko + d]));
        const s = mul(dot, scale);
        e[j] = s;
        if (s > m) m = s;
      }
      let z = 0;
      for (let j = 0; j < n; j++) {
        const ej = exp(sub(e[j], m));
        e[j] = ej;
        z = add(z, ej);
      }
      const oo = i * qw + h * Dh;
      for (let d = 0; d < Dh; d++) o[oo + d] = 0;
      const po = (h * sq + i) * sk;
      for (let j = 0; j < n; j++) {
        const pj = div(e[j], z);
        if (p) p[po + j] = pj;
        const vo = j * kw + g * Dh;
        for (let d = 0; d < Dh; d++) o[oo + d] = add(o[oo + d], mul(pj, v[vo + d]));
      }
      if (p) for (let j = n; j < sk; j++) p[po + j] = 0;
    }
  }
}

/**
 * Backward for one sample: accumulates into dq [sq, H * Dh] and dk, dv [sk, KV * Dh], which
 * the caller passes zero-filled (+0), in the orders of the header.
 */
export function attentionBackward(
  dO: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, p: Float32Array,
  sq: number, sk: number, off: number, dims: AttentionDims,
  dq: Float32Array, dk: Float32Array, dv: Float32Array,
): void {
  const { heads: H, kvHeads: KV, headDim: Dh, causal, scale } = dims;
  const group = H / KV;
  const qw = H * Dh;
  const kw = KV * Dh;
  const dS = new Float32Array(sk);
  for (let h = 0; h < H; h++) {
    const g = Math.floor(h / group);
    for (let i = 0; i < sq; i++) {
      const n = visible(i, sk, off, causal);
      const qo = i * qw + h * Dh;
      const po = (h * sq + i) * sk;
      // dP, then the softmax backward (kernels/softmax.ts) and the score scale.
      let dot2 = 0;
      for (let j = 0; j < n; j++) {
        const vo = j * kw + g * Dh;
        let dp = 0;
        for (let d = 0; d < Dh; d++) dp = add(dp, mul(dO[qo + d], v[vo + d]));
        dS[j] = dp;
        dot2 = add(dot2, mul(dp, p[po + j]));
      }
      for (let j = 0; j < n; j++) dS[j] = mul(mul(p[po + j], sub(dS[j], dot2)), scale);
      // dq[i, h, :] over j ascending; dk, dv rows j receive this (h, i) pair's term.
      for (let j = 0; j < n; j++) {
        const ko = j * kw + g * Dh;
        const s = dS[j];
        const pj = p[po + j];
        for (let d = 0; d < Dh; d++) {
          dq[qo + d] = add(dq[qo + d], mul(s, k[ko + d]));
          dk[ko + d] = add(dk[ko + d], mul(s, q[qo + d]));
          dv[ko + d] = add(dv[ko + d], mul(pj, dO[qo + d]));
        }
      }
    }
  }
}
