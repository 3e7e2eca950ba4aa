/**
 * swiglu — the gated feed-forward block of Llama / Mistral (Hugging Face LlamaMLP):
 *   y = down_proj(silu(gate_proj(x)) * up_proj(x))
 *
 * Config (Loom names first, aliases after):
 *   input_height  (hidden_size, d_model)          d: features in, and the output size; >= 1
 *   output_height (intermediate_size)             the intermediate size; >= 1
 * Parameters (xavier_uniform, no biases, as Llama):
 *   gate_proj.weight [inter, d]   up_proj.weight [inter, d]   down_proj.weight [d, inter]
 * Shapes: dense's feature rule on input_height: [..., d] -> [..., d] over the last dim, or a
 *   flattened sample of d values -> [d].
 *
 * Canonical order, per row (every step rounded to f32 and flushed, core/math):
 *   g = x Wg^T, u = x Wu^T                (kernels/linear.ts: sum over d ascending)
 *   s = sigmoid(g); a = (g * s) * u       (silu as activations.ts: g * sigmoid(g))
 *   y = a Wd^T                            (kernels/linear.ts: sum over inter ascending)
 * Backward, for dy:
 *   da = dy Wd (kernels/linear.ts); grad Wd += dy^T a (rows ascending)
 *   du = da * (g * s);  dsilu = da * u;  dg = (dsilu * s) * (1 + g * (1 - s))   (activations.ts' silu)
 *   grad Wg += dg^T x, grad Wu += du^T x (rows ascending, kernels/linear.ts)
 *   dx = dg Wg + du Wu, element-wise f32(dx_gate + dx_up)
 */
import type { FieldReader } from '../fields.ts';
import { linearBackwardInput, linearBackwardParams, linearForward } from '../kernels/linear.ts';
import { add, mul, sigmoid, sub } from '../math/index.ts';
import { Tensor } from '../tensor.ts';
import { featureView } from './dense.ts';
import type { BuildContext, Layer, LayerConfig, LayerKind, Param, Shape } from './layer.ts';

export interface SwigluConfig extends LayerConfig {
  type: 'swiglu';
  input_height: number;
  output_height: number;
}

interface SwigluSaved {
  x: Float32Array;
  g: Float32Array;
  u: Float32Array;
  s: Float32Array;
  a: Float32Array;
  rows: number;
}

export const swigluKind: LayerKind = {
  type: 'swiglu',
  aliases: [],
  parse(f: FieldReader): SwigluConfig {
    return {
      type: 'swiglu',
      input_height: f.int(['input_height', 'hidden_size', 'd_model'], { min: 1 }),
      output_height: f.int(['output_height', 'intermediate_size'], { min: 1 }),
    };
  },
  inferInputShape(cfg) {
    return [(cfg as SwigluConfig).input_height];
  },
  build(c, inputShape, ctx) {
    return new SwigluLayer(c as SwigluConfig, inputShape, ctx);
  },
};

class SwigluLayer implements Layer {
  readonly type = 'swiglu';
  readonly config: SwigluConfig;
  readonly inputShape: Shape;
  readonly outputShape: Shape;
  readonly params: Param[];
  readonly children = [];
  readonly usesSkip = false;
  private readonly gate: Param;
  private readonly up: Param;
  private readonly down: Param;

  constructor(cfg: SwigluConfig, inputShape: Shape, ctx: BuildContext) {
    this.config = cfg;
    this.inputShape = inputShape;
    const { lead } = featureView(inputShape, cfg.input_height, ctx.where, 'input_height');
    this.outputShape = [...lead, cfg.input_height];
    const d = cfg.input_height;
    const n = cfg.output_height;
    this.gate = ctx.param('gate_proj.weight', [n, d], { kind: 'xavier_uniform', fanIn: d, fanOut: n });
    this.up = ctx.param('up_proj.weight', [n, d], { kind: 'xavier_uniform', fanIn: d, fanOut: n });
    this.down = ctx.param('down_proj.weight', [d, n], { kind: 'xavier_uniform', fanIn: n, fanOut: d });
    this.params = [this.gate, this.up, this.down];
  }

  forward(x: Tensor) {
    const d = this.config.input_height;
    const n = this.config.output_height;
    const rows = x.size / d;
    const g = linearForward(x.data, rows, d, this.gate.value.data, null, n);
    const u = linearForward(x.data, rows, d, this.up.value.data, null, n);
    const s = new Float32Array(g.length);
    const a = new Float32Array(g.length);
    for (let i = 0; i < g.length; i++) {
      s[i] = sigmoid(g[i]);
      a[i] = mul(mul(g[i], s[i]), u[i]);
    }
    const y = linearForward(a, rows, n, this.down.value.data, null, d);
    const saved: SwigluSaved = { x: x.data, g, u, s, a, rows };
    return { y: new Tensor([x.shape[0], ...this.outputShape], y), saved };
  }

  backward(sv: unknown, dy: Tensor) {
    const { x, g, u, s, a, rows } = sv as SwigluSaved;
    const d = this.config.input_height;
    const n = this.config.output_height;
    linearBackwardParams(dy.data, a, rows, n, d, this.down.grad.data, null);
    const da = linearBackwardInput(dy.data, rows, d, this.down.value.data, n);
    const dg = new Float32Array(g.length);
    const du = new Float32Array(g.length);
    for (let i = 0; i < g.length; i++) {
      du[i] = mul(da[i], mul(g[i], s[i]));
      const dsilu = mul(da[i], u[i]);
      dg[i] = mul(mul(dsilu, s[i]), add(1, mul(g[i], sub(1, s[i]))));
    }
    linearBackwardParams(dg, x, rows, d, n, this.gate.grad.data, null);
    linearBackwardParams(du, x, rows, d, n, this.up.grad.data, null);
    const dxg = linearBackwardInput(dg, rows, n, this.gate.value.data, d);
    const dxu = linearBackwardInput(du, rows, n, this.up.value.data, d);
    const dx = new Float32Array(dxg.length);
    for (let i = 0; i < dx.length; i++) dx[i] = add(dxg[i], dxu[i]);
    return { dx: new Tensor([dy.shape[0], ...this.inputShape], dx) };
  }
}
