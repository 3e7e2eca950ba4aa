/**
 * parallel — runs branches side by side on the same input and combines their outputs
 * (Loom's Parallel layer).
 *
 * Config:
 *   branches      (parallel_branches)  non-empty array of layer objects, any type, any nesting
 *   combine_mode  (combine)            concat (default) | add | avg (alias average, mean) |
 *                                      multiply (alias mul). Loom's filter and grid_scatter
 *                                      are rejected with UNSUPPORTED for now.
 * Parameters: only the branches', named `branches.{j}.<name>` under this layer's prefix, e.g.
 *   `layers.2.branches.1.weight`.
 * Shapes: every branch gets this layer's input. A residual directly as a branch is an error
 *   (it has no preceding layer); inside a sequential branch it works as usual.
 *   concat: when every branch output has the same rank and the same dims except the last, the
 *     outputs are concatenated along the last dim ([..., a] + [..., b] -> [..., a + b]);
 *     otherwise each branch output is flattened and the flat vectors are concatenated
 *     ([c, h, w] + [k] -> [c*h*w + k]). Branch order is j = 0..n-1.
 *   add, avg, multiply: every branch output must have the same shape; output = that shape.
 * Arithmetic (element-wise, branches in order j = 0..n-1, each step rounded to f32, flushed):
 *   add       y = ((b0 + b1) + b2) + ...      (starts from b0, not from +0)
 *   avg       y = (((b0 + b1) + b2) + ...) / n    (deterministic div)
 *   multiply  y = ((b0 * b1) * b2) * ...
 * Backward: branch j receives dy_j: concat -> its slice of dy; add -> dy; avg -> dy / n;
 *   multiply -> dy * P_j, P_j = product over k != j ascending of b_k (starting from the first
 *   such k; P_j = 1 for a single branch). Branch backwards run j = 0..n-1, and
 *   dx = ((dx_0 + dx_1) + dx_2) + ... in branch order.
 * Each branch's RunContext rng is this layer's forked by `branches.{j}`.
 */
import { fail } from '../errors.ts';
import type { FieldReader } from '../fields.ts';
import { describeJson } from '../fields.ts';
import { addInto } from '../kernels/linear.ts';
import { add, div, mul } from '../math/index.ts';
import { Tensor, shapeEquals, shapeSize, shapeStr } from '../tensor.ts';
import type { BuildContext, Layer, LayerConfig, LayerKind, ParseContext, RunContext, Shape } from './layer.ts';
// Cycle (registry imports this file): used only inside functions, after every module has loaded.
import { kindOf } from './registry.ts';
import { childContext, parseChildren } from './sequential.ts';

export const COMBINE_MODES = ['concat', 'add', 'avg', 'multiply'] as const;
export type CombineMode = (typeof COMBINE_MODES)[number];
const COMBINE_ALIASES: Record<string, CombineMode> = { average: 'avg', mean: 'avg', mul: 'multiply' };
const LATER_MODES = ['filter', 'grid_scatter'];

export interface ParallelConfig extends LayerConfig {
  type: 'parallel';
  branches: LayerConfig[];
  combine_mode: CombineMode;
}

interface ParallelSaved {
  saved: unknown[];
  ctxs: RunContext[];
  /** Branch outputs (multiply's backward needs them). */
  outs: Tensor[];
}

export const parallelKind: LayerKind = {
  type: 'parallel',
  aliases: [],
  parse(f: FieldReader, ctx: ParseContext): ParallelConfig {
    const combine = parseCombine(f);
    return { type: 'parallel', branches: parseChildren(f, ctx, ['branches', 'parallel_branches'], 'branch'), combine_mode: combine };
  },
  inferInputShape(c) {
    for (const b of (c as ParallelConfig).branches) {
      const s = kindOf(b).inferInputShape(b);
      if (s) return s;
    }
    return null;
  },
  build(c, inputShape, ctx) {
    return new ParallelLayer(c as ParallelConfig, inputShape, ctx);
  },
};

function parseCombine(f: FieldReader): CombineMode {
  const found = f.lookup(['combine_mode', 'combine']);
  if (!found || found.value === null || found.value === '') return 'concat';
  const v = found.value;
  if (typeof v !== 'string') fail('CONFIG_INVALID', `expected a combine mode name, got ${describeJson(v)}`, f.at(found.name));
  const t = v.toLowerCase();
  if (LATER_MODES.includes(t)) fail('UNSUPPORTED', `combine mode '${v}' is not implemented yet; supported: ${COMBINE_MODES.join(', ')}`, f.at(found.name));
  const mode = (COMBINE_ALIASES[t] ?? t) as CombineMode;
  if (!COMBINE_MODES.includes(mode)) {
    fail('CONFIG_INVALID', `unknown combine mode '${v}'; expected one of ${COMBINE_MODES.join(', ')} (aliases average, mean, mul)`, f.at(found.name));
  }
  return mode;
}

class ParallelLayer implements Layer {
  readonly type = 'parallel';
  readonly config: ParallelConfig;
  readonly inputShape: Shape;
  readonly outputShape: Shape;
  readonly params = [];
  readonly children: readonly { readonly prefix: string; readonly layer: Layer }[];
  readonly usesSkip = false;
  private readonly branches: Layer[];
  /** concat: per-sample rows and each branch's segment length per row. */
  private readonly rowsPerSample: number;
  private readonly segs: number[];

  constructor(cfg: ParallelConfig, inputShape: Shape, ctx: BuildContext) {
    this.config = cfg;
    this.inputShape = inputShape;
    this.branches = cfg.branches.map((b, j) => ctx.buildChild(b, inputShape, `branches.${j}`, `${ctx.where}.branches[${j}] (${b.type})`, null));
    this.children = this.branches.map((layer, j) => ({ prefix: `branches.${j}`, layer }));
    const shapes = this.branches.map((b) => b.outputShape);
    if (cfg.combine_mode === 'concat') {
      const r = shapes[0].length;
      const lastDim = r > 0 && shapes.every((s) => s.length === r && shapeEquals(s.slice(0, -1), shapes[0].slice(0, -1)));
      if (lastDim) {
        const lead = shapes[0].slice(0, -1);
        this.segs = shapes.map((s) => s[r - 1]);
        this.rowsPerSample = shapeSize(lead);
        this.outputShape = [...lead, this.segs.reduce((a, b) => a + b, 0)];
      } else {
        this.segs = shapes.map((s) => shapeSize(s));
        this.rowsPerSample = 1;
        this.outputShape = [this.segs.reduce((a, b) => a + b, 0)];
      }
    } else {
      const j = shapes.findIndex((s) => !shapeEquals(s, shapes[0]));
      if (j >= 0) {
        fail('SHAPE_MISMATCH', `combine_mode '${cfg.combine_mode}' needs every branch output to have the same shape, but branches[0] gives ${shapeStr(shapes[0])} and branches[${j}] gives ${shapeStr(shapes[j])}`, `${ctx.where}.combine_mode`);
      }
      this.segs = [];
      this.rowsPerSample = 0;
      this.outputShape = shapes[0];
    }
  }

  forward(x: Tensor, ctx: RunContext) {
    const saved: unknown[] = [];
    const ctxs: RunContext[] = [];
    const outs: Tensor[] = [];
    this.branches.forEach((b, j) => {
      const c = childContext(ctx, `branches.${j}`);
      const r = b.forward(x, c);
      saved.push(r.saved);
      ctxs.push(c);
      outs.push(r.y);
    });
    const batch = x.shape[0];
    const outShape = [batch, ...this.outputShape];
    const n = outs.length;
    let y: Float32Array;
    switch (this.config.combine_mode) {
      case 'concat': {
        y = new Float32Array(shapeSize(outShape));
        const rows = batch * this.rowsPerSample;
        const total = this.segs.reduce((a, b) => a + b, 0);
        let off = 0;
        this.segs.forEach((len, j) => {
          const src = outs[j].data;
          for (let r = 0; r < rows; r++) y.set(src.subarray(r * len, (r + 1) * len), r * total + off);
          off += len;
        });
        break;
      }
      case 'add':
      case 'avg': {
        y = outs[0].data.slice();
        for (let j = 1; j < n; j++) {
          const b = outs[j].data;
          for (let i = 0; i < y.length; i++) y[i] = add(y[i], b[i]);
        }
        if (this.config.combine_mode === 'avg') for (let i = 0; i < y.length; i++) y[i] = div(y[i], n);
        break;
      }
      case 'multiply': {
        y = outs[0].data.slice();
        for (let j = 1; j < n; j++) {
          const b = outs[j].data;
          for (let i = 0; i < y.length; i++) y[i] = mul(y[i], b[i]);
        }
        break;
      }
    }
    const s: ParallelSaved = { saved, ctxs, outs };
    return { y: new Tensor(outShape, y), saved: s };
  }

  backward(s: unknown, dy: Tensor) {
    const { saved, ctxs, outs } = s as ParallelSaved;
    const n = this.branches.length;
    const batch = dy.shape[0];
    const dys: Tensor[] = [];
    switch (this.config.combine_mode) {
      case 'concat': {
        const rows = batch * this.rowsPerSample;
        const total = this.segs.reduce((a, b) => a + b, 0);
        let off = 0;
        this.segs.forEach((len, j) => {
          const g = new Float32Array(rows * len);
          for (let r = 0; r < rows; r++) g.set(dy.data.subarray(r * total + off, r * total + off + len), r * len);
          dys.push(new Tensor(outs[j].shape, g));
          off += len;
        });
        break;
      }
      case 'add':
        for (let j = 0; j < n; j++) dys.push(dy);
        break;
      case 'avg': {
        const g = new Float32Array(dy.size);
        for (let i = 0; i < g.length; i++) g[i] = div(dy.data[i], n);
        const t = new Tensor(dy.shape, g);
        for (let j = 0; j < n; j++) dys.push(t);
        break;
      }
      case 'multiply':
        for (let j = 0; j < n; j++) {
          const g = new Float32Array(dy.size);
          for (let i = 0; i < g.length; i++) {
            let p = 1;
            let first = true;
            for (let k = 0; k < n; k++) {
              if (k === j) continue;
              p = first ? outs[k].data[i] : mul(p, outs[k].data[i]);
              first = false;
            }
            g[i] = mul(dy.data[i], p);
          }
          dys.push(new Tensor(dy.shape, g));
        }
        break;
    }
    let dx: Tensor | null = null;
    for (let j = 0; j < n; j++) {
      const r = this.branches[j].backward(saved[j], dys[j], ctxs[j]);
      if (!dx) dx = r.dx.clone();
      else addInto(dx.data, r.dx.data);
    }
    return { dx: dx! };
  }
}
