/**
 * layer_norm — PyTorch nn.LayerNorm over the last dim (Loom's LayerNorm).
 *
 * Config (canonical name first, aliases after):
 *   norm_size          (normalized_shape, size)  features normalized together, required
 *   epsilon            (eps)                     > 0 after f32 rounding, default 1e-5
 *   elementwise_affine                           true|false, default true
 * Parameters: weight [norm_size] (ones), bias [norm_size] (zeros); none without elementwise_affine.
 * Shapes: output shape = input shape. norm_size must equal the input's last dim, or else the
 *   whole per-sample size (the sample is then normalized as one flat vector), as dense's rule.
 * Arithmetic, per row of n = norm_size values (math/index.ts: each step rounded to f32, flushed):
 *   mean   = (sum over i = 0..n-1 ascending of x[i], from +0) / n       (deterministic div)
 *   d[i]   = x[i] - mean
 *   var    = (sum over i ascending of d[i] * d[i], from +0) / n        (biased, as PyTorch)
 *   rstd   = rsqrt(var + eps)
 *   xhat[i]= d[i] * rstd
 *   y[i]   = xhat[i] * weight[i] + bias[i]                              (y = xhat without affine)
 * Backward, per row (g[i] = dy[i] * weight[i], or dy[i] without affine):
 *   m1 = (sum over i ascending of g[i]) / n
 *   m2 = (sum over i ascending of g[i] * xhat[i]) / n
 *   dx[i] = rstd * ((g[i] - m1) - xhat[i] * m2)
 *   grad weight[i] += (sum over rows r ascending of dy[r, i] * xhat[r, i], from +0)  (one add into the grad)
 *   grad bias[i]   += (sum over rows r ascending of dy[r, i], from +0)
 */
import { fail } from '../errors.ts';
import type { FieldReader } from '../fields.ts';
import { addInto } from '../kernels/linear.ts';
import { add, div, f32, mul, rsqrt, sub } from '../math/index.ts';
import { Tensor } from '../tensor.ts';
import { featureView } from './dense.ts';
import type { BuildContext, Layer, LayerConfig, LayerKind, Param, Shape } from './layer.ts';

export interface LayerNormConfig extends LayerConfig {
  type: 'layer_norm';
  norm_size: number;
  epsilon: number;
  elementwise_affine: boolean;
}

interface LayerNormSaved {
  xhat: Float32Array;
  rstd: Float32Array;
}

/** Reads `epsilon` (alias eps): must stay a positive normal number once rounded to f32. */
export function parseEpsilon(f: FieldReader, def: number): number {
  const eps = f.num(['epsilon', 'eps'], { default: def });
  if (!(f32(eps) > 0)) {
    const name = f.lookup(['epsilon', 'eps'])?.name ?? 'epsilon';
    fail('CONFIG_INVALID', `must be > 0 (and at least 2^-126 once rounded to f32), got ${eps}; a zero epsilon turns a constant row into NaN`, f.at(name));
  }
  return eps;
}

export const layerNormKind: LayerKind = {
  type: 'layer_norm',
  aliases: ['layernorm'],
  parse(f: FieldReader): LayerNormConfig {
    return {
      type: 'layer_norm',
      norm_size: f.int(['norm_size', 'normalized_shape', 'size'], { min: 1 }),
      epsilon: parseEpsilon(f, 1e-5),
      elementwise_affine: f.bool('elementwise_affine', true),
    };
  },
  inferInputShape(cfg) {
    return [(cfg as LayerNormConfig).norm_size];
  },
  build(c, inputShape, ctx) {
    return new LayerNormLayer(c as LayerNormConfig, inputShape, ctx);
  },
};

class LayerNormLayer implements Layer {
  readonly type = 'layer_norm';
  readonly config: LayerNormConfig;
  readonly inputShape: Shape;
  readonly outputShape: Shape;
  readonly params: readonly Param[];
  readonly children = [];
  readonly usesSkip = false;
  private readonly weight: Param | null;
  private readonly bias: Param | null;
  private readonly eps: number;

  constructor(cfg: LayerNormConfig, inputShape: Shape, ctx: BuildContext) {
    this.config = cfg;
    featureView(inputShape, cfg.norm_size, ctx.where, 'norm_size');
    this.inputShape = inputShape;
    this.outputShape = inputShape;
    this.eps = f32(cfg.epsilon);
    const n = cfg.norm_size;
    this.weight = cfg.elementwise_affine ? ctx.param('weight', [n], { kind: 'ones' }) : null;
    this.bias = cfg.elementwise_affine ? ctx.param('bias', [n], { kind: 'zeros' }) : null;
    this.params = this.weight && this.bias ? [this.weight, this.bias] : [];
  }

  forward(x: Tensor) {
    const n = this.config.norm_size;
    const rows = x.size / n;
    const xd = x.data;
    const xhat = new Float32Array(x.size);
    const rstd = new Float32Array(rows);
    const y = new Float32Array(x.size);
    const w = this.weight?.value.data;
    const b = this.bias?.value.data;
    for (let r = 0; r < rows; r++) {
      const o = r * n;
      let s = 0;
      for (let i = 0; i < n; i++) s = add(s, xd[o + i]);
      const mean = div(s, n);
      let ss = 0;
      for (let i = 0; i < n; i++) {
        const d = sub(xd[o + i], mean);
        xhat[o + i] = d;
        ss = add(ss, mul(d, d));
      }
      const rs = rsqrt(add(div(ss, n), this.eps));
      rstd[r] = rs;
      for (let i = 0; i < n; i++) {
        const h = mul(xhat[o + i], rs);
        xhat[o + i] = h;
        y[o + i] = w && b ? add(mul(h, w[i]), b[i]) : h;
      }
    }
    const saved: LayerNormSaved = { xhat, rstd };
    return { y: new Tensor(x.shape, y), saved };
  }

  backward(s: unknown, dy: Tensor) {
    const { xhat, rstd } = s as LayerNormSaved;
    const n = this.config.norm_size;
    const rows = rstd.length;
    const g = dy.data;
    const w = this.weight?.value.data;
    const dx = new Float32Array(dy.size);
    const gi = new Float32Array(n);
    for (let r = 0; r < rows; r++) {
      const o = r * n;
      let s1 = 0;
      let s2 = 0;
      for (let i = 0; i < n; i++) {
        const v = w ? mul(g[o + i], w[i]) : g[o + i];
        gi[i] = v;
        s1 = add(s1, v);
        s2 = add(s2, mul(v, xhat[o + i]));
      }
      const m1 = div(s1, n);
      const m2 = div(s2, n);
      const rs = rstd[r];
      for (let i = 0; i < n; i++) dx[o + i] = mul(rs, sub(sub(gi[i], m1), mul(xhat[o + i], m2)));
    }
    if (this.weight && this.bias) {
      const dw = new Float32Array(n);
      const db = new Float32Array(n);
      for (let r = 0; r < rows; r++) {
        const o = r * n;
        for (let i = 0; i < n; i++) {
          dw[i] = add(dw[i], mul(g[o + i], xhat[o + i]));
          db[i] = add(db[i], g[o + i]);
        }
      }
      addInto(this.weight.grad.data, dw);
      addInto(this.bias.grad.data, db);
    }
    return { dx: new Tensor(dy.shape, dx) };
  }
}
