/**
 * softmax — a probability distribution per row (Loom's Softmax layer, PyTorch softmax(dim=-1)).
 *
 * Config:
 *   softmax_type   standard (default) | temperature | masked | grid. Loom's other variants
 *                  (hierarchical, gumbel, sparse/sparsemax, entmax, adaptive, mixture) are
 *                  rejected with UNSUPPORTED for now.
 *   temperature    > 0, default 1 (temperature only: y = softmax(x / temperature))
 *   mask           masked only: booleans, false = masked out (probability 0, gradient 0);
 *                  at least one true
 *   softmax_rows, softmax_cols   grid only: the sample is rows x cols values, each row of
 *                  `cols` gets its own softmax; rows * cols must equal the per-sample size
 * Without softmax_type, the variant is read off the fields present (mask -> masked,
 * softmax_rows/cols -> grid, temperature != 1 -> temperature); fields of another variant
 * than the named one are an error (temperature 1 and rows/cols 0, Loom's "unset", are allowed).
 * No parameters. Output shape = input shape.
 * Rows: standard/temperature: the last dim. masked: the last dim when it equals the mask
 *   length, else the whole sample when its size does (dense's rule). grid: softmax_cols.
 * Arithmetic: kernels/softmax.ts (row max subtracted, exp, sum ascending, e / s). temperature
 *   first computes z = x / T (deterministic div); its backward divides the kernel's dx by T.
 */
import { fail } from '../errors.ts';
import type { FieldReader, Json } from '../fields.ts';
import { describeJson } from '../fields.ts';
import { softmaxRowsBackward, softmaxRowsForward } from '../kernels/softmax.ts';
import { div, f32 } from '../math/index.ts';
import { Tensor, shapeSize, shapeStr } from '../tensor.ts';
import { featureView } from './dense.ts';
import type { BuildContext, Layer, LayerConfig, LayerKind, Shape } from './layer.ts';

export const SOFTMAX_TYPES = ['standard', 'temperature', 'masked', 'grid'] as const;
export type SoftmaxType = (typeof SOFTMAX_TYPES)[number];
/** Loom variants that are valid configs Heddle does not run yet. */
const LATER_TYPES = ['hierarchical', 'gumbel', 'sparse', 'sparsemax', 'entmax', 'adaptive', 'mixture'];

export interface SoftmaxConfig extends LayerConfig {
  type: 'softmax';
  softmax_type: SoftmaxType;
  // Present only for their variant (see the header): temperature: number, mask: boolean[],
  // softmax_rows / softmax_cols: number. Optional properties cannot satisfy the Json index type.
}

interface SoftmaxSaved {
  y: Float32Array;
}

export const softmaxKind: LayerKind = {
  type: 'softmax',
  aliases: [],
  parse(f: FieldReader): SoftmaxConfig {
    const explicit = f.lookup('softmax_type');
    let named: SoftmaxType | null = null;
    if (explicit && explicit.value !== null && explicit.value !== '') {
      const v = explicit.value;
      if (typeof v !== 'string') fail('CONFIG_INVALID', `expected a softmax type name, got ${describeJson(v)}`, f.at('softmax_type'));
      const t = v.toLowerCase();
      if (LATER_TYPES.includes(t)) fail('UNSUPPORTED', `softmax type '${v}' is not implemented yet; supported: ${SOFTMAX_TYPES.join(', ')}`, f.at('softmax_type'));
      if (!(SOFTMAX_TYPES as readonly string[]).includes(t)) {
        fail('CONFIG_INVALID', `unknown softmax type '${v}'; expected one of ${[...SOFTMAX_TYPES, ...LATER_TYPES].join(', ')}`, f.at('softmax_type'));
      }
      named = t as SoftmaxType;
    }
    const temperature = f.num('temperature', { default: 1 });
    if (!(f32(temperature) > 0)) fail('CONFIG_INVALID', `must be > 0, got ${temperature}`, f.at('temperature'));
    const mask = parseMask(f);
    const rows = f.optInt('softmax_rows', { min: 1, zeroIsAbsent: true });
    const cols = f.optInt('softmax_cols', { min: 1, zeroIsAbsent: true });

    // Which variant each present field belongs to; a field of another variant is an error.
    const present: [string, SoftmaxType][] = [];
    if (temperature !== 1) present.push(['temperature', 'temperature']);
    if (mask) present.push(['mask', 'masked']);
    if (rows !== undefined) present.push(['softmax_rows', 'grid']);
    if (cols !== undefined) present.push(['softmax_cols', 'grid']);
    let type: SoftmaxType;
    if (named) {
      type = named;
      const stray = present.find(([, t]) => t !== named);
      if (stray) fail('CONFIG_INVALID', `applies to softmax_type '${stray[1]}' only, but softmax_type is '${named}'`, f.at(stray[0]));
    } else {
      const kinds = [...new Set(present.map(([, t]) => t))];
      if (kinds.length > 1) {
        fail('CONFIG_INVALID', `fields of several softmax variants are set (${present.map(([n]) => n).join(', ')}); name one with softmax_type`, f.at('softmax_type'));
      }
      type = kinds[0] ?? 'standard';
    }

    const cfg: SoftmaxConfig = { type: 'softmax', softmax_type: type };
    if (type === 'temperature') cfg.temperature = temperature;
    if (type === 'masked') {
      if (!mask) fail('CONFIG_INVALID', `softmax_type 'masked' needs a mask (an array of booleans, false = masked out)`, f.at('mask'));
      cfg.mask = mask;
    }
    if (type === 'grid') {
      if (rows === undefined) fail('CONFIG_INVALID', `softmax_type 'grid' needs softmax_rows (an integer >= 1)`, f.at('softmax_rows'));
      if (cols === undefined) fail('CONFIG_INVALID', `softmax_type 'grid' needs softmax_cols (an integer >= 1)`, f.at('softmax_cols'));
      cfg.softmax_rows = rows;
      cfg.softmax_cols = cols;
    }
    return cfg;
  },
  inferInputShape(c) {
    const cfg = c as SoftmaxConfig;
    if (cfg.softmax_type === 'masked') return [(cfg.mask as boolean[]).length];
    if (cfg.softmax_type === 'grid') return [(cfg.softmax_rows as number) * (cfg.softmax_cols as number)];
    return null;
  },
  build(c, inputShape, ctx) {
    return new SoftmaxLayer(c as SoftmaxConfig, inputShape, ctx);
  },
};

function parseMask(f: FieldReader): boolean[] | undefined {
  const arr = f.array('mask');
  if (!arr) return undefined;
  if (arr.length === 0) fail('CONFIG_INVALID', 'is empty; give one boolean per position of the last dim', f.at('mask'));
  const mask = arr.map((v: Json, i) => {
    if (typeof v !== 'boolean') fail('CONFIG_INVALID', `expected true or false, got ${describeJson(v)}`, `${f.at('mask')}[${i}]`);
    return v;
  });
  if (!mask.includes(true)) fail('CONFIG_INVALID', 'masks out every position; a softmax needs at least one unmasked (true) position', f.at('mask'));
  return mask;
}

class SoftmaxLayer implements Layer {
  readonly type = 'softmax';
  readonly config: SoftmaxConfig;
  readonly inputShape: Shape;
  readonly outputShape: Shape;
  readonly params = [];
  readonly children = [];
  readonly usesSkip = false;
  private readonly rowLen: number;
  private readonly mask: readonly boolean[] | null;
  private readonly temperature: number | null;

  constructor(cfg: SoftmaxConfig, inputShape: Shape, ctx: BuildContext) {
    this.config = cfg;
    this.inputShape = inputShape;
    this.outputShape = inputShape;
    this.mask = cfg.softmax_type === 'masked' ? (cfg.mask as boolean[]) : null;
    this.temperature = cfg.softmax_type === 'temperature' ? f32(cfg.temperature as number) : null;
    const size = shapeSize(inputShape);
    switch (cfg.softmax_type) {
      case 'masked':
        featureView(inputShape, this.mask!.length, ctx.where, 'mask');
        this.rowLen = this.mask!.length;
        break;
      case 'grid': {
        const rows = cfg.softmax_rows as number, cols = cfg.softmax_cols as number;
        if (rows * cols !== size) {
          fail('SHAPE_MISMATCH', `softmax_rows x softmax_cols = ${rows} x ${cols} = ${rows * cols}, but the per-sample input ${shapeStr(inputShape)} has ${size} values`, `${ctx.where}.softmax_rows`);
        }
        this.rowLen = cols;
        break;
      }
      default:
        this.rowLen = inputShape.length > 0 ? inputShape[inputShape.length - 1] : 1;
    }
  }

  forward(x: Tensor) {
    let z = x.data;
    const t = this.temperature;
    if (t !== null) {
      z = new Float32Array(x.size);
      for (let i = 0; i < z.length; i++) z[i] = div(x.data[i], t);
    }
    const y = softmaxRowsForward(z, this.rowLen, this.mask);
    const saved: SoftmaxSaved = { y };
    return { y: new Tensor(x.shape, y), saved };
  }

  backward(s: unknown, dy: Tensor) {
    const { y } = s as SoftmaxSaved;
    const dx = softmaxRowsBackward(y, dy.data, this.rowLen, this.mask);
    const t = this.temperature;
    if (t !== null) for (let i = 0; i < dx.length; i++) dx[i] = div(dx[i], t);
    return { dx: new Tensor(dy.shape, dx) };
  }
}
