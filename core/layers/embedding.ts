/**
 * embedding — token lookup table, PyTorch nn.Embedding (no padding_idx, no max_norm).
 *
 * Config (Loom names first, aliases after):
 *   vocab_size     (num_embeddings)    rows of the table, >= 1
 *   embedding_dim  (embed_dim)         width of a row, >= 1
 *   seq_length                         optional (Loom); implies the input shape [seq_length] for a
 *                                      first layer (0 = unset)
 * Parameters: weight [vocab_size, embedding_dim], normal(0, 1) as nn.Embedding.
 * Shapes: ids of any per-sample shape [...] -> [..., embedding_dim]; usually [seq] -> [seq, dim].
 *
 * Token ids: an i32 or i64 tensor, or an f32 tensor holding exact integers. As the first
 *   layer of a network, embedding makes Network accept i32 / i64 inputs (Layer.integerInput).
 *   Every id is checked before any output is written: an id that is not an integer or lies
 *   outside [0, vocab_size) is an INPUT_INVALID error naming the layer, the sample, the
 *   position and the value; it is never read out of bounds or clamped. (f32 ids pass the
 *   network's input rules first: non-finite values are rejected there, and a subnormal f32 is
 *   flushed to 0 on entry like every f32 input.)
 *
 * Forward: y[p, :] = weight[id[p], :] (a copy: no arithmetic).
 * Backward: no input gradient (ids are not differentiable): dx is +0 everywhere, with the input's
 *   shape. Weight gradient, for every row v that some position reads:
 *     grad[v, c] += (sum over positions p in ascending flat order (sample, then position) with
 *                   id[p] = v of dy[p, c]), the sum from +0, then one f32 add into the gradient.
 *   Rows no position reads are not touched (adding +0 would change no bit of a gradient that
 *   started at +0).
 */
import { fail } from '../errors.ts';
import type { FieldReader } from '../fields.ts';
import { add } from '../math/index.ts';
import { Tensor, type TensorData, shapeSize } from '../tensor.ts';
import type { BuildContext, Layer, LayerConfig, LayerKind, Param, Shape } from './layer.ts';

export interface EmbeddingConfig extends LayerConfig {
  type: 'embedding';
  vocab_size: number;
  embedding_dim: number;
  // Present only when set: seq_length: number.
}

interface EmbeddingSaved {
  ids: Int32Array;
}

export const embeddingKind: LayerKind = {
  type: 'embedding',
  aliases: [],
  parse(f: FieldReader): EmbeddingConfig {
    const cfg: EmbeddingConfig = {
      type: 'embedding',
      vocab_size: f.int(['vocab_size', 'num_embeddings'], { min: 1 }),
      embedding_dim: f.int(['embedding_dim', 'embed_dim'], { min: 1 }),
    };
    const seq = f.optInt('seq_length', { min: 1, zeroIsAbsent: true });
    if (seq !== undefined) cfg.seq_length = seq;
    return cfg;
  },
  inferInputShape(c) {
    const cfg = c as EmbeddingConfig;
    return typeof cfg.seq_length === 'number' ? [cfg.seq_length] : null;
  },
  build(c, inputShape, ctx) {
    return new EmbeddingLayer(c as EmbeddingConfig, inputShape, ctx);
  },
};

class EmbeddingLayer implements Layer {
  readonly type = 'embedding';
  readonly config: EmbeddingConfig;
  readonly inputShape: Shape;
  readonly outputShape: Shape;
  readonly params: Param[];
  readonly children = [];
  readonly usesSkip = false;
  readonly integerInput = true;
  private readonly weight: Param;
  private readonly where: string;

  constructor(cfg: EmbeddingConfig, inputShape: Shape, ctx: BuildContext) {
    this.config = cfg;
    this.where = ctx.where;
    this.inputShape = inputShape;
    this.outputShape = [...inputShape, cfg.embedding_dim];
    if (typeof cfg.seq_length === 'number' && !(inputShape.length === 1 && inputShape[0] === cfg.seq_length)) {
      fail('SHAPE_MISMATCH', `is ${cfg.seq_length}, but the input has per-sample shape [${inputShape.join(', ')}]`, `${ctx.where}.seq_length`);
    }
    this.weight = ctx.param('weight', [cfg.vocab_size, cfg.embedding_dim], { kind: 'normal', std: 1 });
    this.params = [this.weight];
  }

  /** Validated ids as Int32Array (one per position, flat). */
  private readIds(x: Tensor<TensorData>): Int32Array {
    const d = x.data;
    const n = d.length;
    const V = this.config.vocab_size;
    const ids = new Int32Array(n);
    const per = Math.max(1, shapeSize(this.inputShape));
    const bad = (i: number, value: string, why: string): never => {
      const b = Math.floor(i / per);
      let r = i % per;
      const pos: number[] = [];
      for (let a = this.inputShape.length - 1; a >= 0; a--) {
        pos.unshift(r % this.inputShape[a]);
        r = Math.floor(r / this.inputShape[a]);
      }
      return fail('INPUT_INVALID', `token id at sample ${b}, position [${pos.join(', ')}] (element ${i}) is ${value}: ${why}`, this.where);
    };
    if (d instanceof BigInt64Array) {
      const big = BigInt(V);
      for (let i = 0; i < n; i++) {
        const v = d[i];
        if (v < 0n || v >= big) bad(i, v.toString(), `ids must lie in [0, vocab_size = ${V})`);
        ids[i] = Number(v);
      }
    } else {
      for (let i = 0; i < n; i++) {
        const v = d[i];
        if (!Number.isInteger(v)) bad(i, String(v), 'ids must be integers');
        if (v < 0 || v >= V) bad(i, String(v), `ids must lie in [0, vocab_size = ${V})`);
        ids[i] = v;
      }
    }
    return ids;
  }

  forward(x: Tensor) {
    const ids = this.readIds(x as Tensor<TensorData>);
    const D = this.config.embedding_dim;
    const w = this.weight.value.data;
    const y = new Float32Array(ids.length * D);
    for (let p = 0; p < ids.length; p++) y.set(w.subarray(ids[p] * D, ids[p] * D + D), p * D);
    const saved: EmbeddingSaved = { ids };
    return { y: new Tensor([x.shape[0], ...this.outputShape], y), saved };
  }

  backward(s: unknown, dy: Tensor) {
    const { ids } = s as EmbeddingSaved;
    const D = this.config.embedding_dim;
    const g = dy.data;
    const sums = new Map<number, Float32Array>();
    for (let p = 0; p < ids.length; p++) {
      let acc = sums.get(ids[p]);
      if (!acc) sums.set(ids[p], (acc = new Float32Array(D)));
      for (let c = 0; c < D; c++) acc[c] = add(acc[c], g[p * D + c]);
    }
    const grad = this.weight.grad.data;
    for (const [v, acc] of sums) {
      for (let c = 0; c < D; c++) grad[v * D + c] = add(grad[v * D + c], acc[c]);
    }
    return { dx: Tensor.zeros([dy.shape[0], ...this.inputShape]) };
  }
}
