/**
 * kmeans — differentiable k-means clustering (Loom's KMeans layer): soft assignment of each
 * feature vector to K learnable cluster centers.
 *
 * Config (Loom names first, aliases after):
 *   num_clusters        K >= 1, default 8 (Loom's DefaultNumClusters)
 *   kmeans_temperature  (temperature)  T > 0, default 1 (Loom writes 0 for unset: read as 1)
 *   output_mode         (kmeans_output_mode)  probabilities (default) | features
 *   input_height        (d_model, input_size)  D, the feature size; optional: without it, D is
 *                       the input's last dim
 * Parameters: centers [K, D], uniform in [-1, 1].
 * Shapes: dense's feature rule on D ([..., D], or a flattened sample of D values); each row x
 *   of D values gives
 *     probabilities: p [K],  p = softmax over k of  -||x - c_k||^2 / T
 *     features:      y [D],  y = sum over k of p_k * c_k   (the soft-assigned mixture of centers,
 *                            a reconstruction of x from the centers, as Loom's "features" mode)
 *   so [..., D] -> [..., K] or [..., D].
 *   (Loom's code scales the distance by 1 / (2 T^2) instead of 1 / T; a Loom model with
 *   temperature t matches Heddle's with T = 2 t^2.)
 * Canonical arithmetic, per row, every step an f32 operation of core/math (flushed):
 *   diff[k, j] = x[j] - c[k, j]
 *   d[k]  = sum over j ascending of diff[k, j] * diff[k, j], from +0
 *   z[k]  = -(d[k] / T)                               (negation is exact)
 *   p     = softmax(z)                                (kernels/softmax.ts row kernel)
 *   features: y[j] = sum over k ascending of p[k] * c[k, j], from +0
 * Backward, per row, for dy:
 *   dp[k] = dy[k] (probabilities), or sum over j ascending of dy[j] * c[k, j] (features)
 *   dz    = softmax backward (p, dp)                  (kernels/softmax.ts)
 *   w[k]  = (dz[k] / T) * -2                          (dL/d diff[k, j] = w[k] * diff[k, j])
 *   dx[j] = sum over k ascending of w[k] * diff[k, j], from +0
 *   row contribution to the centers' gradient, u[k, j] =
 *            -(w[k] * diff[k, j])                         (probabilities)
 *            (p[k] * dy[j]) - (w[k] * diff[k, j])         (features)
 *   grad centers[k, j] += (sum over rows ascending of u[k, j], from +0)   (one f32 add)
 *   diff is recomputed in the backward with the same operations (same bits).
 */
import { fail } from '../errors.ts';
import type { FieldReader } from '../fields.ts';
import { describeJson } from '../fields.ts';
import { softmaxRowsBackward, softmaxRowsForward } from '../kernels/softmax.ts';
import { add, div, f32, mul, sub } from '../math/index.ts';
import { Tensor, shapeStr } from '../tensor.ts';
import { featureView } from './dense.ts';
import type { BuildContext, Layer, LayerConfig, LayerKind, Param, Shape } from './layer.ts';

export const KMEANS_OUTPUT_MODES = ['probabilities', 'features'] as const;
export type KMeansOutputMode = (typeof KMEANS_OUTPUT_MODES)[number];

export interface KMeansConfig extends LayerConfig {
  type: 'kmeans';
  num_clusters: number;
  kmeans_temperature: number;
  output_mode: KMeansOutputMode;
  // input_height: number, only when given (otherwise the input's last dim).
}

interface KMeansSaved {
  x: Float32Array;
  p: Float32Array;
  rows: number;
}

export const kmeansKind: LayerKind = {
  type: 'kmeans',
  aliases: ['k_means'],
  parse(f: FieldReader): KMeansConfig {
    const k = f.int('num_clusters', { min: 1, default: 8 });
    let t = f.num(['kmeans_temperature', 'temperature'], { default: 1 });
    if (t === 0) t = 1; // Loom's "unset"
    if (!(f32(t) > 0)) fail('CONFIG_INVALID', `must be > 0, got ${t}`, f.at(f.lookup(['kmeans_temperature', 'temperature'])!.name));
    const modeField = f.lookup(['output_mode', 'kmeans_output_mode']);
    let mode: KMeansOutputMode = 'probabilities';
    if (modeField && modeField.value !== null && modeField.value !== '') {
      const v = modeField.value;
      if (typeof v !== 'string') fail('CONFIG_INVALID', `expected an output mode name, got ${describeJson(v)}`, f.at(modeField.name));
      const m = v.toLowerCase();
      if (!(KMEANS_OUTPUT_MODES as readonly string[]).includes(m)) {
        fail('CONFIG_INVALID', `unknown output mode '${v}'; expected one of ${KMEANS_OUTPUT_MODES.join(', ')}`, f.at(modeField.name));
      }
      mode = m as KMeansOutputMode;
    }
    const cfg: KMeansConfig = { type: 'kmeans', num_clusters: k, kmeans_temperature: t, output_mode: mode };
    const d = f.optInt(['input_height', 'd_model', 'input_size'], { min: 1, zeroIsAbsent: true });
    if (d !== undefined) cfg.input_height = d;
    return cfg;
  },
  inferInputShape(c) {
    const d = (c as KMeansConfig).input_height;
    return typeof d === 'number' ? [d] : null;
  },
  build(c, inputShape, ctx) {
    return new KMeansLayer(c as KMeansConfig, inputShape, ctx);
  },
};

class KMeansLayer implements Layer {
  readonly type = 'kmeans';
  readonly config: KMeansConfig;
  readonly inputShape: Shape;
  readonly outputShape: Shape;
  readonly params: readonly Param[];
  readonly children = [];
  readonly usesSkip = false;
  private readonly centers: Param;
  private readonly dim: number;
  private readonly k: number;
  private readonly t: number;

  constructor(cfg: KMeansConfig, inputShape: Shape, ctx: BuildContext) {
    this.config = cfg;
    this.inputShape = inputShape;
    let dim: number;
    let lead: number[];
    if (typeof cfg.input_height === 'number') {
      dim = cfg.input_height;
      lead = featureView(inputShape, dim, ctx.where, 'input_height').lead;
    } else {
      if (inputShape.length === 0) fail('SHAPE_MISMATCH', `needs an input with a feature dim, got per-sample shape ${shapeStr(inputShape)}`, `${ctx.where}.input_height`);
      dim = inputShape[inputShape.length - 1];
      lead = inputShape.slice(0, -1);
    }
    this.dim = dim;
    this.k = cfg.num_clusters;
    this.t = f32(cfg.kmeans_temperature);
    this.outputShape = [...lead, cfg.output_mode === 'features' ? dim : this.k];
    this.centers = ctx.param('centers', [this.k, dim], { kind: 'uniform', bound: 1 });
    this.params = [this.centers];
  }

  forward(x: Tensor) {
    const D = this.dim, K = this.k, T = this.t;
    const rows = x.size / D;
    const c = this.centers.value.data;
    const xd = x.data;
    const z = new Float32Array(rows * K);
    for (let r = 0; r < rows; r++) {
      const xo = r * D;
      for (let k = 0; k < K; k++) {
        const co = k * D;
        let d = 0;
        for (let j = 0; j < D; j++) {
          const diff = sub(xd[xo + j], c[co + j]);
          d = add(d, mul(diff, diff));
        }
        z[r * K + k] = -div(d, T);
      }
    }
    const p = softmaxRowsForward(z, K);
    let y = p;
    if (this.config.output_mode === 'features') {
      y = new Float32Array(rows * D);
      for (let r = 0; r < rows; r++) {
        for (let j = 0; j < D; j++) {
          let acc = 0;
          for (let k = 0; k < K; k++) acc = add(acc, mul(p[r * K + k], c[k * D + j]));
          y[r * D + j] = acc;
        }
      }
    }
    const saved: KMeansSaved = { x: xd, p, rows };
    return { y: new Tensor([x.shape[0], ...this.outputShape], y), saved };
  }

  backward(s: unknown, dy: Tensor) {
    const { x, p, rows } = s as KMeansSaved;
    const D = this.dim, K = this.k, T = this.t;
    const c = this.centers.value.data;
    const features = this.config.output_mode === 'features';
    let dp = dy.data;
    if (features) {
      dp = new Float32Array(rows * K);
      for (let r = 0; r < rows; r++) {
        for (let k = 0; k < K; k++) {
          let acc = 0;
          for (let j = 0; j < D; j++) acc = add(acc, mul(dy.data[r * D + j], c[k * D + j]));
          dp[r * K + k] = acc;
        }
      }
    }
    const dz = softmaxRowsBackward(p, dp, K);
    const w = new Float32Array(rows * K);
    for (let i = 0; i < w.length; i++) w[i] = mul(div(dz[i], T), -2);
    const dx = new Float32Array(rows * D);
    const gsum = new Float32Array(K * D);
    for (let r = 0; r < rows; r++) {
      const xo = r * D;
      for (let j = 0; j < D; j++) {
        let acc = 0;
        for (let k = 0; k < K; k++) acc = add(acc, mul(w[r * K + k], sub(x[xo + j], c[k * D + j])));
        dx[xo + j] = acc;
      }
      for (let k = 0; k < K; k++) {
        const wk = w[r * K + k];
        for (let j = 0; j < D; j++) {
          const t = mul(wk, sub(x[xo + j], c[k * D + j]));
          const u = features ? sub(mul(p[r * K + k], dy.data[r * D + j]), t) : -t;
          gsum[k * D + j] = add(gsum[k * D + j], u);
        }
      }
    }
    const g = this.centers.grad.data;
    for (let i = 0; i < g.length; i++) g[i] = add(g[i], gsum[i]);
    return { dx: new Tensor([dy.shape[0], ...this.inputShape], dx) };
  }
}
