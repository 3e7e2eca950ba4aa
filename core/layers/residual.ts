/**
 * residual — adds a skip connection: y = x + skip, where `skip` is the input of the
 * preceding layer (in a network, the preceding grid node; in a sequential, the preceding
 * sibling). So `[dense, residual]` computes dense(x) + x. (Loom's Residual layer.)
 *
 * Config: no fields. No parameters.
 * Shapes: the per-sample input shape must equal the skip's shape exactly; output = input shape.
 *   A residual with no preceding layer (first in a network or a sequential, or directly a
 *   parallel branch) is a config error.
 * Arithmetic: y[i] = f32(x[i] + skip[i]). Backward: dx = dy, dskip = dy (copies).
 */
import { fail } from '../errors.ts';
import { add } from '../math/index.ts';
import { Tensor, shapeEquals, shapeStr } from '../tensor.ts';
import type { BuildContext, Layer, LayerConfig, LayerKind, Shape } from './layer.ts';

export interface ResidualConfig extends LayerConfig {
  type: 'residual';
}

export const residualKind: LayerKind = {
  type: 'residual',
  aliases: [],
  parse(): ResidualConfig {
    return { type: 'residual' };
  },
  inferInputShape() {
    return null;
  },
  build(c, inputShape, ctx) {
    return new ResidualLayer(c as ResidualConfig, inputShape, ctx);
  },
};

class ResidualLayer implements Layer {
  readonly type = 'residual';
  readonly config: ResidualConfig;
  readonly inputShape: Shape;
  readonly outputShape: Shape;
  readonly params = [];
  readonly children = [];
  readonly usesSkip = true;

  constructor(cfg: ResidualConfig, inputShape: Shape, ctx: BuildContext) {
    this.config = cfg;
    if (!ctx.skipShape) fail('CONFIG_INVALID', 'residual needs a preceding layer: it adds the input of the preceding layer to its own input', ctx.where);
    if (!shapeEquals(inputShape, ctx.skipShape)) {
      fail('SHAPE_MISMATCH', `adds the input of the preceding layer, per-sample shape ${shapeStr(ctx.skipShape)}, to its own input, shape ${shapeStr(inputShape)}; they must be equal`, ctx.where);
    }
    this.inputShape = inputShape;
    this.outputShape = inputShape;
  }

  forward(x: Tensor, _ctx: unknown, skip?: Tensor) {
    if (!skip || skip.size !== x.size) fail('INTERNAL', `residual got a skip input of ${skip ? skip.size : 'no'} values for an input of ${x.size}`);
    const y = new Float32Array(x.size);
    const a = x.data, b = skip.data;
    for (let i = 0; i < y.length; i++) y[i] = add(a[i], b[i]);
    return { y: new Tensor(x.shape, y), saved: null };
  }

  backward(_saved: unknown, dy: Tensor) {
    return { dx: new Tensor(dy.shape, dy.data.slice()), dskip: new Tensor(dy.shape, dy.data.slice()) };
  }
}
