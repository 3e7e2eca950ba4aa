/**
 * rms_norm — PyTorch nn.RMSNorm over the last dim (Loom's RMSNorm, Llama's norm).
 *
 * Config (canonical name first, aliases after):
 *   norm_size          (normalized_shape, size)  features normalized together, required
 *   epsilon            (eps)                     > 0 after f32 rounding; default 2^-23
 *                      (= torch.finfo(float32).eps, what nn.RMSNorm uses for eps=None;
 *                      Loom's examples set 1e-5 or 1e-6 explicitly)
 *   elementwise_affine                           true|false, default true
 * Parameters: weight [norm_size] (ones); none without elementwise_affine. No bias.
 * Shapes: output shape = input shape; norm_size matches the last dim, or else the whole
 *   per-sample size (flattened), as dense's rule.
 * Arithmetic, per row of n values (math/index.ts: each step rounded to f32, flushed):
 *   ms      = (sum over i = 0..n-1 ascending of x[i] * x[i], from +0) / n   (deterministic div)
 *   r       = rsqrt(ms + eps)
 *   xhat[i] = x[i] * r
 *   y[i]    = xhat[i] * weight[i]                       (y = xhat without affine)
 * Backward, per row (g[i] = dy[i] * weight[i], or dy[i] without affine):
 *   m     = (sum over i ascending of g[i] * xhat[i]) / n
 *   dx[i] = r * (g[i] - xhat[i] * m)
 *   grad weight[i] += (sum over rows ascending of dy[r, i] * xhat[r, i], from +0)   (one add into the grad)
 */
import type { FieldReader } from '../fields.ts';
import { addInto } from '../kernels/linear.ts';
import { add, div, f32, mul, rsqrt, sub } from '../math/index.ts';
import { Tensor } from '../tensor.ts';
import { featureView } from './dense.ts';
import type { BuildContext, Layer, LayerConfig, LayerKind, Param, Shape } from './layer.ts';
import { parseEpsilon } from './layer_norm.ts';

/** torch.finfo(torch.float32).eps. */
export const RMS_NORM_DEFAULT_EPS = 1.1920928955078125e-7;

export interface RmsNormConfig extends LayerConfig {
  type: 'rms_norm';
  norm_size: number;
  epsilon: number;
  elementwise_affine: boolean;
}

interface RmsNormSaved {
  xhat: Float32Array;
  r: Float32Array;
}

export const rmsNormKind: LayerKind = {
  type: 'rms_norm',
  aliases: ['rmsnorm'],
  parse(f: FieldReader): RmsNormConfig {
    return {
      type: 'rms_norm',
      norm_size: f.int(['norm_size', 'normalized_shape', 'size'], { min: 1 }),
      epsilon: parseEpsilon(f, RMS_NORM_DEFAULT_EPS),
      elementwise_affine: f.bool('elementwise_affine', true),
    };
  },
  inferInputShape(cfg) {
    return [(cfg as RmsNormConfig).norm_size];
  },
  build(c, inputShape, ctx) {
    return new RmsNormLayer(c as RmsNormConfig, inputShape, ctx);
  },
};

class RmsNormLayer implements Layer {
  readonly type = 'rms_norm';
  readonly config: RmsNormConfig;
  readonly inputShape: Shape;
  readonly outputShape: Shape;
  readonly params: readonly Param[];
  readonly children = [];
  readonly usesSkip = false;
  private readonly weight: Param | null;
  private readonly eps: number;

  constructor(cfg: RmsNormConfig, inputShape: Shape, ctx: BuildContext) {
    this.config = cfg;
    featureView(inputShape, cfg.norm_size, ctx.where, 'norm_size');
    this.inputShape = inputShape;
    this.outputShape = inputShape;
    this.eps = f32(cfg.epsilon);
    this.weight = cfg.elementwise_affine ? ctx.param('weight', [cfg.norm_size], { kind: 'ones' }) : null;
    this.params = this.weight ? [this.weight] : [];
  }

  forward(x: Tensor) {
    const n = this.config.norm_size;
    const rows = x.size / n;
    const xd = x.data;
    const xhat = new Float32Array(x.size);
    const rr = new Float32Array(rows);
    const y = new Float32Array(x.size);
    const w = this.weight?.value.data;
    for (let r = 0; r < rows; r++) {
      const o = r * n;
      let ss = 0;
      for (let i = 0; i < n; i++) ss = add(ss, mul(xd[o + i], xd[o + i]));
      const rs = rsqrt(add(div(ss, n), this.eps));
      rr[r] = rs;
      for (let i = 0; i < n; i++) {
        const h = mul(xd[o + i], rs);
        xhat[o + i] = h;
        y[o + i] = w ? mul(h, w[i]) : h;
      }
    }
    const saved: RmsNormSaved = { xhat, r: rr };
    return { y: new Tensor(x.shape, y), saved };
  }

  backward(s: unknown, dy: Tensor) {
    const { xhat, r: rr } = s as RmsNormSaved;
    const n = this.config.norm_size;
    const rows = rr.length;
    const g = dy.data;
    const w = this.weight?.value.data;
    const dx = new Float32Array(dy.size);
    const gi = new Float32Array(n);
    for (let r = 0; r < rows; r++) {
      const o = r * n;
      let s2 = 0;
      for (let i = 0; i < n; i++) {
        const v = w ? mul(g[o + i], w[i]) : g[o + i];
        gi[i] = v;
        s2 = add(s2, mul(v, xhat[o + i]));
      }
      const m = div(s2, n);
      const rs = rr[r];
      for (let i = 0; i < n; i++) dx[o + i] = mul(rs, sub(gi[i], mul(xhat[o + i], m)));
    }
    if (this.weight) {
      const dw = new Float32Array(n);
      for (let r = 0; r < rows; r++) {
        const o = r * n;
        for (let i = 0; i < n; i++) dw[i] = add(dw[i], mul(g[o + i], xhat[o + i]));
      }
      addInto(this.weight.grad.data, dw);
    }
    return { dx: new Tensor(dy.shape, dx) };
  }
}
