/**
 * dense — fully connected layer, PyTorch nn.Linear followed by an activation.
 *
 * Config (Loom names first, aliases after):
 *   input_height  (input_size, in_features)    features in
 *   output_height (output_size, out_features)  features out
 *   activation    one of activations.ts (default linear)
 *   bias          true|false (default true)
 * Parameters: weight [out, in] (xavier_uniform), bias [out] (zeros).
 * Shapes: if the input's last dim equals input_height the map applies to the last dim
 *   ([..., in] -> [..., out]); otherwise, if the whole per-sample size equals input_height,
 *   the sample is flattened ([c, h, w] -> [out]), so conv stacks chain into dense as in Loom.
 * Arithmetic: kernels/linear.ts (sum over k ascending, then + bias), then the activation.
 */
import { fail } from '../errors.ts';
import type { FieldReader } from '../fields.ts';
import { linearBackwardInput, linearBackwardParams, linearForward } from '../kernels/linear.ts';
import { Tensor, shapeSize, shapeStr } from '../tensor.ts';
import { type Activation, activationBackward, activationForward, parseActivation } from './activations.ts';
import type { BuildContext, Layer, LayerConfig, LayerKind, Shape } from './layer.ts';

export interface DenseConfig extends LayerConfig {
  type: 'dense';
  input_height: number;
  output_height: number;
  activation: Activation;
  bias: boolean;
}

interface DenseSaved {
  x: Float32Array;
  pre: Float32Array;
  post: Float32Array;
  rows: number;
}

export const denseKind: LayerKind = {
  type: 'dense',
  aliases: ['linear', 'fully_connected', 'fc'],
  parse(f: FieldReader): DenseConfig {
    return {
      type: 'dense',
      input_height: f.int(['input_height', 'input_size', 'in_features'], { min: 1 }),
      output_height: f.int(['output_height', 'output_size', 'out_features'], { min: 1 }),
      activation: parseActivation(f, 'linear'),
      bias: f.bool('bias', true),
    };
  },
  inferInputShape(cfg) {
    return [(cfg as DenseConfig).input_height];
  },
  build(c, inputShape, ctx) {
    const cfg = c as DenseConfig;
    return new DenseLayer(cfg, inputShape, ctx);
  },
};

/** How a per-sample shape feeds a last-dim map of width `width`: leading shape kept, or flattened. */
export function featureView(inputShape: Shape, width: number, where: string, field: string): { lead: number[] } {
  if (inputShape.length > 0 && inputShape[inputShape.length - 1] === width) return { lead: inputShape.slice(0, -1) };
  if (shapeSize(inputShape) === width) return { lead: [] };
  return fail('SHAPE_MISMATCH', `expects ${width} input features, but its input has per-sample shape ${shapeStr(inputShape)} (${shapeSize(inputShape)} values)`, `${where}.${field}`);
}

class DenseLayer implements Layer {
  readonly type = 'dense';
  readonly config: DenseConfig;
  readonly inputShape: Shape;
  readonly outputShape: Shape;
  readonly params;
  readonly children = [];
  readonly usesSkip = false;
  private readonly weight;
  private readonly bias;

  constructor(cfg: DenseConfig, inputShape: Shape, ctx: BuildContext) {
    this.config = cfg;
    this.inputShape = inputShape;
    const { lead } = featureView(inputShape, cfg.input_height, ctx.where, 'input_height');
    this.outputShape = [...lead, cfg.output_height];
    this.weight = ctx.param('weight', [cfg.output_height, cfg.input_height], { kind: 'xavier_uniform', fanIn: cfg.input_height, fanOut: cfg.output_height });
    this.bias = cfg.bias ? ctx.param('bias', [cfg.output_height], { kind: 'zeros' }) : null;
    this.params = this.bias ? [this.weight, this.bias] : [this.weight];
  }

  forward(x: Tensor) {
    const { input_height: inF, output_height: outF, activation } = this.config;
    const rows = x.size / inF;
    const pre = linearForward(x.data, rows, inF, this.weight.value.data, this.bias ? this.bias.value.data : null, outF);
    const post = activation === 'linear' ? pre : activationForward(activation, pre, outF);
    const saved: DenseSaved = { x: x.data, pre, post, rows };
    return { y: new Tensor([x.shape[0], ...this.outputShape], post), saved };
  }

  backward(s: unknown, dy: Tensor) {
    const saved = s as DenseSaved;
    const { input_height: inF, output_height: outF, activation } = this.config;
    const dpre = activation === 'linear' ? dy.data : activationBackward(activation, saved.pre, saved.post, dy.data, outF);
    linearBackwardParams(dpre, saved.x, saved.rows, inF, outF, this.weight.grad.data, this.bias ? this.bias.grad.data : null);
    const dx = linearBackwardInput(dpre, saved.rows, outF, this.weight.value.data, inF);
    return { dx: new Tensor([dy.shape[0], ...this.inputShape], dx) };
  }
}
