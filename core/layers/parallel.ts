/**
 * parallel — runs branches side by side on the same input and combines their outputs
 * (Loom's Parallel layer, including its mixture-of-experts "filter" mode and "grid_scatter").
 *
 * Config:
 *   branches      (parallel_branches)  non-empty array of layer objects, any type, any nesting
 *   combine_mode  (combine)            concat (default) | add | avg (alias average, mean) |
 *                                      multiply (alias mul) | filter | grid_scatter
 *   filter only:
 *     filter_gate         a layer object (any type) mapping this layer's input to one logit per
 *                         branch (per-sample size = number of branches). Default: a dense layer
 *                         from the flattened sample (input_height = per-sample input size) to
 *                         the number of branches, linear, with bias.
 *     filter_softmax      standard (default) | sparsemax (alias sparse) | entmax (1.5-entmax):
 *                         how gate logits become weights (kernels/softmax.ts)
 *     filter_temperature  > 0, default 1 (0 = unset, as Loom writes): logits are divided by it
 *   grid_scatter only:
 *     grid_output_rows, grid_output_cols   >= 1, required
 *     grid_output_layers                   >= 1, default 1 (0 = unset)
 *     grid_positions  one entry per branch, {branch_index, target_row, target_col,
 *                     target_layer (default 0)}; branch_index defaults to the entry's index.
 *                     Every branch exactly once, every cell at most once. Default: branch j in
 *                     cell j of reading order (row, then col, then layer).
 *   Fields of a mode other than the configured one are an error.
 * Parameters: the branches', named `branches.{j}.<name>` under this layer's prefix, e.g.
 *   `layers.2.branches.1.weight`; filter's gate: `gate.<name>` (`layers.2.gate.weight`,
 *   `layers.2.gate.bias` for the default gate).
 * Shapes: every branch (and the gate) gets this layer's input. A residual directly as a branch
 *   is an error (it has no preceding layer); inside a sequential branch it works as usual.
 *   concat: when every branch output has the same rank and the same dims except the last, the
 *     outputs are concatenated along the last dim ([..., a] + [..., b] -> [..., a + b]);
 *     otherwise each branch output is flattened and the flat vectors are concatenated
 *     ([c, h, w] + [k] -> [c*h*w + k]). Branch order is j = 0..n-1.
 *   add, avg, multiply, filter: every branch output must have the same shape; output = that shape.
 *   grid_scatter: the output is a grid of rows x cols x layers cells in reading order; each
 *     occupied cell holds its branch's flattened output, empty cells take no space (Loom's
 *     layout). Shape: [rows, cols, ...S] (layers = 1) or [rows, cols, layers, ...S] when every
 *     cell is occupied and every branch output has the same shape S; otherwise the flat
 *     [sum of branch output sizes]. Branches may differ in type and size.
 * Arithmetic (element-wise, branches in order j = 0..n-1, each step rounded to f32, flushed):
 *   add       y = ((b0 + b1) + b2) + ...      (starts from b0, not from +0)
 *   avg       y = (((b0 + b1) + b2) + ...) / n    (deterministic div)
 *   multiply  y = ((b0 * b1) * b2) * ...
 *   filter    per sample: z = gate logits (/ filter_temperature when it is not 1);
 *             g = filter_softmax(z) over the n branches;
 *             y[i] = sum over j ascending of g[j] * b_j[i], from +0
 *   concat, grid_scatter: copies.
 * Backward: branch j receives dy_j: concat / grid_scatter -> its slice of dy; add -> dy;
 *   avg -> dy / n; multiply -> dy * P_j, P_j = product over k != j ascending of b_k (starting
 *   from the first such k; P_j = 1 for a single branch); filter -> dy * g[j], and the gate
 *   receives dz = filter_softmax backward of (g, dg) (then / filter_temperature when not 1)
 *   with dg[j] = sum over i ascending of dy[i] * b_j[i], from +0.
 *   Branch backwards run j = 0..n-1 (then the gate), and
 *   dx = ((dx_0 + dx_1) + dx_2) + ... (+ dx_gate) in that order.
 * Each branch's RunContext rng is this layer's forked by `branches.{j}`; the gate's by `gate`.
 */
import { fail } from '../errors.ts';
import type { FieldReader, JsonObject } from '../fields.ts';
import { FieldReader as Reader, describeJson } from '../fields.ts';
import { addInto } from '../kernels/linear.ts';
import { entmax15RowsBackward, entmax15RowsForward, softmaxRowsBackward, softmaxRowsForward, sparsemaxRowsBackward, sparsemaxRowsForward } from '../kernels/softmax.ts';
import { add, div, f32, mul } from '../math/index.ts';
import { Tensor, shapeEquals, shapeSize, shapeStr } from '../tensor.ts';
import type { BuildContext, Layer, LayerConfig, LayerKind, ParseContext, RunContext, Shape } from './layer.ts';
// Cycle (registry imports this file): used only inside functions, after every module has loaded.
import { kindOf } from './registry.ts';
import { childContext, parseChildren } from './sequential.ts';

export const COMBINE_MODES = ['concat', 'add', 'avg', 'multiply', 'filter', 'grid_scatter'] as const;
export type CombineMode = (typeof COMBINE_MODES)[number];
const COMBINE_ALIASES: Record<string, CombineMode> = { average: 'avg', mean: 'avg', mul: 'multiply' };
export const FILTER_SOFTMAXES = ['standard', 'sparsemax', 'entmax'] as const;
export type FilterSoftmax = (typeof FILTER_SOFTMAXES)[number];

export interface ParallelConfig extends LayerConfig {
  type: 'parallel';
  branches: LayerConfig[];
  combine_mode: CombineMode;
  // filter: filter_softmax: FilterSoftmax, filter_temperature: number, filter_gate?: LayerConfig.
  // grid_scatter: grid_output_rows / grid_output_cols / grid_output_layers: number,
  //   grid_positions: {branch_index, target_row, target_col, target_layer}[] (one per branch, in branch order).
}

interface GridPosition extends JsonObject {
  branch_index: number;
  target_row: number;
  target_col: number;
  target_layer: number;
}

interface ParallelSaved {
  saved: unknown[];
  ctxs: RunContext[];
  /** Branch outputs (multiply's and filter's backward need them). */
  outs: Tensor[];
  gate?: { saved: unknown; ctx: RunContext; g: Float32Array; aux: Float32Array | null };
}

const FILTER_FIELDS = ['filter_gate', 'filter_softmax', 'filter_temperature'];
const GRID_FIELDS = ['grid_output_rows', 'grid_output_cols', 'grid_output_layers', 'grid_positions'];

export const parallelKind: LayerKind = {
  type: 'parallel',
  aliases: [],
  parse(f: FieldReader, ctx: ParseContext): ParallelConfig {
    const combine = parseCombine(f);
    const branches = parseChildren(f, ctx, ['branches', 'parallel_branches'], 'branch');
    const cfg: ParallelConfig = { type: 'parallel', branches, combine_mode: combine };
    const stray = [...(combine === 'filter' ? [] : FILTER_FIELDS), ...(combine === 'grid_scatter' ? [] : GRID_FIELDS)].find((n) => isSet(f, n));
    if (stray) {
      const mode = FILTER_FIELDS.includes(stray) ? 'filter' : 'grid_scatter';
      fail('CONFIG_INVALID', `applies to combine_mode '${mode}' only, but combine_mode is '${combine}'`, f.at(stray));
    }
    if (combine === 'filter') parseFilter(f, ctx, cfg);
    if (combine === 'grid_scatter') parseGrid(f, cfg);
    return cfg;
  },
  inferInputShape(c) {
    const cfg = c as ParallelConfig;
    const candidates = [...cfg.branches, ...(cfg.filter_gate ? [cfg.filter_gate as LayerConfig] : [])];
    for (const b of candidates) {
      const s = kindOf(b).inferInputShape(b);
      if (s) return s;
    }
    return null;
  },
  build(c, inputShape, ctx) {
    return new ParallelLayer(c as ParallelConfig, inputShape, ctx);
  },
};

/** A field counts as set unless absent, null, or Loom's "unset" (0, "", empty array). */
function isSet(f: FieldReader, name: string): boolean {
  const v = f.lookup(name);
  if (!v || v.value === null || v.value === 0 || v.value === '') return false;
  return !(Array.isArray(v.value) && v.value.length === 0);
}

function parseCombine(f: FieldReader): CombineMode {
  const found = f.lookup(['combine_mode', 'combine']);
  if (!found || found.value === null || found.value === '') return 'concat';
  const v = found.value;
  if (typeof v !== 'string') fail('CONFIG_INVALID', `expected a combine mode name, got ${describeJson(v)}`, f.at(found.name));
  const t = v.toLowerCase();
  const mode = (COMBINE_ALIASES[t] ?? t) as CombineMode;
  if (!COMBINE_MODES.includes(mode)) {
    fail('CONFIG_INVALID', `unknown combine mode '${v}'; expected one of ${COMBINE_MODES.join(', ')} (aliases average, mean, mul)`, f.at(found.name));
  }
  return mode;
}

function parseFilter(f: FieldReader, ctx: ParseContext, cfg: ParallelConfig): void {
  const gate = f.lookup('filter_gate');
  if (gate && gate.value !== null) cfg.filter_gate = ctx.parseChild(gate.value, f.at('filter_gate'));
  const sm = f.lookup('filter_softmax');
  let kind: FilterSoftmax = 'standard';
  if (sm && sm.value !== null && sm.value !== '') {
    if (typeof sm.value !== 'string') fail('CONFIG_INVALID', `expected a softmax type name, got ${describeJson(sm.value)}`, f.at('filter_softmax'));
    const t = sm.value.toLowerCase();
    const canon = t === 'sparse' ? 'sparsemax' : t;
    if (!(FILTER_SOFTMAXES as readonly string[]).includes(canon)) {
      fail('CONFIG_INVALID', `unknown gate softmax '${sm.value}'; expected one of ${FILTER_SOFTMAXES.join(', ')} (alias sparse)`, f.at('filter_softmax'));
    }
    kind = canon as FilterSoftmax;
  }
  let t = f.num('filter_temperature', { default: 1 });
  if (t === 0) t = 1;
  if (!(f32(t) > 0)) fail('CONFIG_INVALID', `must be > 0, got ${t}`, f.at('filter_temperature'));
  cfg.filter_softmax = kind;
  cfg.filter_temperature = t;
}

function parseGrid(f: FieldReader, cfg: ParallelConfig): void {
  const n = cfg.branches.length;
  const rows = f.optInt('grid_output_rows', { min: 1, zeroIsAbsent: true });
  const cols = f.optInt('grid_output_cols', { min: 1, zeroIsAbsent: true });
  const layers = f.optInt('grid_output_layers', { min: 1, zeroIsAbsent: true }) ?? 1;
  if (rows === undefined) fail('CONFIG_INVALID', `combine_mode 'grid_scatter' needs grid_output_rows (an integer >= 1)`, f.at('grid_output_rows'));
  if (cols === undefined) fail('CONFIG_INVALID', `combine_mode 'grid_scatter' needs grid_output_cols (an integer >= 1)`, f.at('grid_output_cols'));
  const cells = rows * cols * layers;
  const raw = f.array('grid_positions');
  const positions: GridPosition[] = [];
  if (!raw || raw.length === 0) {
    if (cells < n) fail('CONFIG_INVALID', `the grid has ${rows} x ${cols} x ${layers} = ${cells} cells for ${n} branches; enlarge it or give grid_positions`, f.at('grid_output_rows'));
    for (let j = 0; j < n; j++) positions.push({ branch_index: j, target_row: Math.floor(j / (cols * layers)), target_col: Math.floor(j / layers) % cols, target_layer: j % layers });
  } else {
    const field = f.at('grid_positions');
    if (raw.length !== n) fail('CONFIG_INVALID', `has ${raw.length} entries for ${n} branches; give one position per branch`, field);
    const byBranch: (GridPosition | null)[] = new Array(n).fill(null);
    const entryOf: number[] = new Array(n).fill(-1);
    const cellOwner = new Map<number, number>();
    raw.forEach((item, k) => {
      const r = new Reader(item, `${field}[${k}]`);
      const branch = r.int('branch_index', { min: 0, default: k });
      if (branch >= n) fail('CONFIG_INVALID', `branch ${branch} does not exist (the layer has ${n} branches, 0..${n - 1})`, r.at('branch_index'));
      if (byBranch[branch]) fail('CONFIG_INVALID', `branch ${branch} is already placed by grid_positions[${entryOf[branch]}]`, r.at('branch_index'));
      const row = r.int('target_row', { min: 0 });
      if (row >= rows) fail('CONFIG_INVALID', `branch ${branch}: row ${row} is outside the grid (grid_output_rows = ${rows})`, r.at('target_row'));
      const col = r.int('target_col', { min: 0 });
      if (col >= cols) fail('CONFIG_INVALID', `branch ${branch}: col ${col} is outside the grid (grid_output_cols = ${cols})`, r.at('target_col'));
      const layer = r.int('target_layer', { min: 0, default: 0 });
      if (layer >= layers) fail('CONFIG_INVALID', `branch ${branch}: layer ${layer} is outside the grid (grid_output_layers = ${layers})`, r.at('target_layer'));
      const cell = (row * cols + col) * layers + layer;
      const owner = cellOwner.get(cell);
      if (owner !== undefined) fail('CONFIG_INVALID', `branch ${branch}: cell (row ${row}, col ${col}, layer ${layer}) already holds branch ${owner}`, r.where);
      cellOwner.set(cell, branch);
      byBranch[branch] = { branch_index: branch, target_row: row, target_col: col, target_layer: layer };
      entryOf[branch] = k;
    });
    positions.push(...(byBranch as GridPosition[]));
  }
  cfg.grid_output_rows = rows;
  cfg.grid_output_cols = cols;
  cfg.grid_output_layers = layers;
  cfg.grid_positions = positions;
}

/** Row-wise gate softmax of the chosen kind; `aux` is what its backward needs besides g. */
function gateForward(kind: FilterSoftmax, z: Float32Array, n: number): { g: Float32Array; aux: Float32Array | null } {
  if (kind === 'sparsemax') return { g: sparsemaxRowsForward(z, n), aux: null };
  if (kind === 'entmax') {
    const r = entmax15RowsForward(z, n);
    return { g: r.y, aux: r.g };
  }
  return { g: softmaxRowsForward(z, n), aux: null };
}

function gateBackward(kind: FilterSoftmax, g: Float32Array, aux: Float32Array | null, dg: Float32Array, n: number): Float32Array {
  if (kind === 'sparsemax') return sparsemaxRowsBackward(g, dg, n);
  if (kind === 'entmax') return entmax15RowsBackward(aux!, dg, n);
  return softmaxRowsBackward(g, dg, n);
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
  private readonly gate: Layer | null = null;
  private readonly gateTemperature: number = 1;
  /** concat and grid_scatter: per-sample rows, each branch's segment length per row, and offset in a row. */
  private readonly rowsPerSample: number;
  private readonly segs: number[];
  private readonly offs: number[];

  constructor(cfg: ParallelConfig, inputShape: Shape, ctx: BuildContext) {
    this.config = cfg;
    this.inputShape = inputShape;
    this.branches = cfg.branches.map((b, j) => ctx.buildChild(b, inputShape, `branches.${j}`, `${ctx.where}.branches[${j}] (${b.type})`, null));
    const children = this.branches.map((layer, j) => ({ prefix: `branches.${j}`, layer }));
    const shapes = this.branches.map((b) => b.outputShape);
    const n = this.branches.length;
    this.offs = [];
    switch (cfg.combine_mode) {
      case 'concat': {
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
        let off = 0;
        for (const len of this.segs) {
          this.offs.push(off);
          off += len;
        }
        break;
      }
      case 'grid_scatter': {
        const rows = cfg.grid_output_rows as number, cols = cfg.grid_output_cols as number, layers = cfg.grid_output_layers as number;
        const pos = cfg.grid_positions as GridPosition[];
        const cellOf = pos.map((p) => (p.target_row * cols + p.target_col) * layers + p.target_layer);
        this.segs = shapes.map((s) => shapeSize(s));
        this.rowsPerSample = 1;
        // Offsets: branches in cell order.
        const order = Array.from({ length: n }, (_, j) => j).sort((a, b) => cellOf[a] - cellOf[b]);
        const offs = new Array<number>(n).fill(0);
        let off = 0;
        for (const j of order) {
          offs[j] = off;
          off += this.segs[j];
        }
        this.offs.push(...offs);
        const full = n === rows * cols * layers && shapes.every((s) => shapeEquals(s, shapes[0]));
        this.outputShape = full ? [rows, cols, ...(layers > 1 ? [layers] : []), ...shapes[0]] : [off];
        break;
      }
      default: {
        const j = shapes.findIndex((s) => !shapeEquals(s, shapes[0]));
        if (j >= 0) {
          fail('SHAPE_MISMATCH', `combine_mode '${cfg.combine_mode}' needs every branch output to have the same shape, but branches[0] gives ${shapeStr(shapes[0])} and branches[${j}] gives ${shapeStr(shapes[j])}`, `${ctx.where}.combine_mode`);
        }
        this.segs = [];
        this.rowsPerSample = 0;
        this.outputShape = shapes[0];
      }
    }
    if (cfg.combine_mode === 'filter') {
      const given = cfg.filter_gate as LayerConfig | undefined;
      const gateCfg: LayerConfig = given ?? { type: 'dense', input_height: shapeSize(inputShape), output_height: n, activation: 'linear', bias: true };
      const where = given ? `${ctx.where}.filter_gate (${given.type})` : `${ctx.where}.filter_gate (dense, the default gate)`;
      const gate = ctx.buildChild(gateCfg, inputShape, 'gate', where, null);
      if (shapeSize(gate.outputShape) !== n) {
        fail('SHAPE_MISMATCH', `the gate must give one logit per branch (${n} values per sample), but it gives per-sample shape ${shapeStr(gate.outputShape)} (${shapeSize(gate.outputShape)} values)`, `${ctx.where}.filter_gate`);
      }
      this.gate = gate;
      this.gateTemperature = f32(cfg.filter_temperature as number);
      children.push({ prefix: 'gate', layer: gate });
    }
    this.children = children;
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
    let gateSaved: ParallelSaved['gate'];
    switch (this.config.combine_mode) {
      case 'concat':
      case 'grid_scatter': {
        y = new Float32Array(shapeSize(outShape));
        const rows = batch * this.rowsPerSample;
        const total = this.segs.reduce((a, b) => a + b, 0);
        this.segs.forEach((len, j) => {
          const src = outs[j].data;
          const off = this.offs[j];
          for (let r = 0; r < rows; r++) y.set(src.subarray(r * len, (r + 1) * len), r * total + off);
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
      case 'filter': {
        const gctx = childContext(ctx, 'gate');
        const gr = this.gate!.forward(x, gctx);
        const t = this.gateTemperature;
        const z = t === 1 ? gr.y.data : Float32Array.from(gr.y.data, (v) => div(v, t));
        const { g, aux } = gateForward(this.config.filter_softmax as FilterSoftmax, z, n);
        const per = outs[0].size / batch;
        y = new Float32Array(outs[0].size);
        for (let b = 0; b < batch; b++) {
          for (let i = 0; i < per; i++) {
            let acc = 0;
            for (let j = 0; j < n; j++) acc = add(acc, mul(g[b * n + j], outs[j].data[b * per + i]));
            y[b * per + i] = acc;
          }
        }
        gateSaved = { saved: gr.saved, ctx: gctx, g, aux };
        break;
      }
    }
    const s: ParallelSaved = { saved, ctxs, outs, gate: gateSaved };
    return { y: new Tensor(outShape, y), saved: s };
  }

  backward(s: unknown, dy: Tensor) {
    const { saved, ctxs, outs, gate } = s as ParallelSaved;
    const n = this.branches.length;
    const batch = dy.shape[0];
    const dys: Tensor[] = [];
    let dGate: Tensor | null = null;
    switch (this.config.combine_mode) {
      case 'concat':
      case 'grid_scatter': {
        const rows = batch * this.rowsPerSample;
        const total = this.segs.reduce((a, b) => a + b, 0);
        this.segs.forEach((len, j) => {
          const off = this.offs[j];
          const g = new Float32Array(rows * len);
          for (let r = 0; r < rows; r++) g.set(dy.data.subarray(r * total + off, r * total + off + len), r * len);
          dys.push(new Tensor(outs[j].shape, g));
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
      case 'filter': {
        const { g } = gate!;
        const per = dy.size / batch;
        const dg = new Float32Array(batch * n);
        for (let j = 0; j < n; j++) {
          const d = new Float32Array(dy.size);
          const bj = outs[j].data;
          for (let b = 0; b < batch; b++) {
            const gj = g[b * n + j];
            let acc = 0;
            for (let i = 0; i < per; i++) {
              const dv = dy.data[b * per + i];
              d[b * per + i] = mul(dv, gj);
              acc = add(acc, mul(dv, bj[b * per + i]));
            }
            dg[b * n + j] = acc;
          }
          dys.push(new Tensor(dy.shape, d));
        }
        const dz = gateBackward(this.config.filter_softmax as FilterSoftmax, g, gate!.aux, dg, n);
        const t = this.gateTemperature;
        if (t !== 1) for (let i = 0; i < dz.length; i++) dz[i] = div(dz[i], t);
        dGate = new Tensor([batch, ...this.gate!.outputShape], dz);
        break;
      }
    }
    let dx: Tensor | null = null;
    for (let j = 0; j < n; j++) {
      const r = this.branches[j].backward(saved[j], dys[j], ctxs[j]);
      if (!dx) dx = r.dx.clone();
      else addInto(dx.data, r.dx.data);
    }
    if (dGate) {
      const r = this.gate!.backward(gate!.saved, dGate, gate!.ctx);
      addInto(dx!.data, r.dx.data);
    }
    return { dx: dx! };
  }
}
