/**
 * sequential — runs nested layers one after another as a single grid slot (Loom's Sequential).
 *
 * Config:
 *   layers  (sequential_layers)  non-empty array of layer objects, any type, any nesting
 * Parameters: only the children's, named `layers.{j}.<name>` under this layer's prefix, e.g.
 *   `layers.3.layers.0.weight` for the first child of network slot 3.
 * Shapes: child j's input is child j-1's output (child 0 gets this layer's input); the output
 *   is the last child's output. A residual child gets the input of its preceding sibling;
 *   a residual as child 0 is an error (there is no preceding sibling).
 * Backward: children in reverse order. A value read by two children (a residual's skip) gets
 *   the f32 sum of their gradients, in the order they arrive (reverse child order), exactly as
 *   the network does for grid nodes.
 * Each child's RunContext rng is this layer's forked by `layers.{j}`.
 */
import { fail } from '../errors.ts';
import type { FieldReader } from '../fields.ts';
import { addInto } from '../kernels/linear.ts';
import { Tensor } from '../tensor.ts';
import type { BuildContext, Layer, LayerConfig, LayerKind, ParseContext, RunContext, Shape } from './layer.ts';
// Cycle (registry imports this file): used only inside functions, after every module has loaded.
import { kindOf } from './registry.ts';

export interface SequentialConfig extends LayerConfig {
  type: 'sequential';
  layers: LayerConfig[];
}

interface SequentialSaved {
  saved: unknown[];
  ctxs: RunContext[];
}

/** Parse an array of nested layer objects under `field` (aliases allowed); at least one. */
export function parseChildren(f: FieldReader, ctx: ParseContext, names: readonly string[], label: string): LayerConfig[] {
  const arr = f.array(names, { required: true })!;
  const field = f.lookup(names)!.name;
  if (arr.length === 0) fail('CONFIG_INVALID', `needs at least one ${label}`, f.at(field));
  return arr.map((raw, j) => ctx.parseChild(raw, `${f.at(field)}[${j}]`));
}

export function childContext(ctx: RunContext, label: string): RunContext {
  return { training: ctx.training, rng: ctx.rng ? ctx.rng.fork(label) : null };
}

export const sequentialKind: LayerKind = {
  type: 'sequential',
  aliases: [],
  parse(f: FieldReader, ctx: ParseContext): SequentialConfig {
    return { type: 'sequential', layers: parseChildren(f, ctx, ['layers', 'sequential_layers'], 'layer') };
  },
  inferInputShape(c) {
    const first = (c as SequentialConfig).layers[0];
    return kindOf(first).inferInputShape(first);
  },
  build(c, inputShape, ctx) {
    return new SequentialLayer(c as SequentialConfig, inputShape, ctx);
  },
};

class SequentialLayer implements Layer {
  readonly type = 'sequential';
  readonly config: SequentialConfig;
  readonly inputShape: Shape;
  readonly outputShape: Shape;
  readonly params = [];
  readonly children: readonly { readonly prefix: string; readonly layer: Layer }[];
  readonly usesSkip = false;
  private readonly layers: Layer[];

  constructor(cfg: SequentialConfig, inputShape: Shape, ctx: BuildContext) {
    this.config = cfg;
    this.inputShape = inputShape;
    const layers: Layer[] = [];
    let shape = inputShape;
    let prevInput: Shape | null = null;
    cfg.layers.forEach((child, j) => {
      const layer = ctx.buildChild(child, shape, `layers.${j}`, `${ctx.where}.layers[${j}] (${child.type})`, prevInput);
      layers.push(layer);
      prevInput = shape;
      shape = layer.outputShape;
    });
    this.layers = layers;
    this.children = layers.map((layer, j) => ({ prefix: `layers.${j}`, layer }));
    this.outputShape = shape;
  }

  forward(x: Tensor, ctx: RunContext) {
    const saved: unknown[] = [];
    const ctxs: RunContext[] = [];
    let prev: Tensor | undefined;
    let cur = x;
    this.layers.forEach((layer, j) => {
      const c = childContext(ctx, `layers.${j}`);
      const r = layer.forward(cur, c, layer.usesSkip ? prev : undefined);
      saved.push(r.saved);
      ctxs.push(c);
      prev = cur;
      cur = r.y;
    });
    const s: SequentialSaved = { saved, ctxs };
    return { y: cur, saved: s };
  }

  backward(s: unknown, dy: Tensor) {
    const { saved, ctxs } = s as SequentialSaved;
    const n = this.layers.length;
    // grads[j] is the gradient of child j's input (grads[0]: this layer's input).
    const grads: (Tensor | null)[] = new Array(n + 1).fill(null);
    grads[n] = dy;
    const accumulate = (j: number, g: Tensor): void => {
      const cur = grads[j];
      if (!cur) grads[j] = g;
      else {
        const sum = cur.clone();
        addInto(sum.data, g.data);
        grads[j] = sum;
      }
    };
    for (let j = n - 1; j >= 0; j--) {
      const g = grads[j + 1];
      if (!g) continue;
      const r = this.layers[j].backward(saved[j], g, ctxs[j]);
      accumulate(j, r.dx);
      if (r.dskip) accumulate(j - 1, r.dskip);
    }
    return { dx: grads[0] ?? Tensor.zeros([dy.shape[0], ...this.inputShape]) };
  }
}
