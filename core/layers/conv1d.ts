/**
 * conv1d — PyTorch nn.Conv1d followed by an activation (Loom's Conv1D, LayerCNN1).
 *
 * This file also holds the N-d machinery shared by all six convolution layers (conv1d/2d/3d,
 * conv_transposed1d/2d/3d): config parsing, shape rules and the layer class. The arithmetic
 * and its canonical order live in kernels/conv.ts.
 *
 * Config (canonical name first, aliases after; N = 1, 2, 3 spatial dims):
 *   input_channels  (in_channels; conv1d also conv1d_in_channels)   required, >= 1
 *   filters         (out_channels; conv1d also conv1d_filters)      required, >= 1
 *   kernel_size     (conv1d also conv1d_kernel_size)                required: an int or N ints, >= 1
 *   stride          (conv1d also conv1d_stride)                     int or N ints >= 1, default 1
 *   padding         (conv1d also conv1d_padding)                    int or N ints >= 0, default 0 (zeros)
 *   dilation                                                        int or N ints >= 1, default 1
 *   output_padding  transposed only                                 int or N ints >= 0, default 0;
 *                   each must be < stride or < dilation of its dim (as PyTorch)
 *   spatial sizes   conv1d: input_height (input_length) = L; 2-d: input_height, input_width;
 *                   3-d: input_depth, input_height, input_width. Optional (0 = absent, as Loom
 *                   writes); derived from the incoming shape when absent (see resolveSpatial).
 *   activation      as dense (default linear); softmax works per row of the output's last dim
 *   bias            true|false (default true)
 *   groups / padding_mode are accepted only at PyTorch's defaults (1 / "zeros"); an all-zero
 *   output_padding on a plain conv is ignored, a nonzero one is an error.
 * Loom writes 0 for unset fields: a 0 under one spelling yields to a nonzero value under another
 * (`padding: 0` next to `conv1d_padding: 1` reads 1).
 * Per-dim arrays are in PyTorch order: [H, W] for 2-d, [D, H, W] for 3-d. The normalized config
 * holds every per-dim field as an array of N ints.
 *
 * Shapes (per sample, channels-first): conv [C, ...in] -> [F, ...out],
 *   out = floor((in + 2p - d(k-1) - 1) / s) + 1;
 * transposed [C, ...in] -> [F, ...out], out = (in - 1) s - 2p + d(k-1) + output_padding + 1.
 * Parameters: conv weight [F, C, k...], transposed weight [C, F, k...] (PyTorch layouts), both
 *   kaiming_uniform with PyTorch's fan_in (weight dim 1 times the kernel volume: C*prod(k) for
 *   conv, F*prod(k) for transposed); bias [F] zeros.
 */
import { fail } from '../errors.ts';
import type { FieldReader, Json } from '../fields.ts';
import { describeJson } from '../fields.ts';
import {
  type ConvGeometry, type Dims3, addBias, channelSumsInto, convGather, convOutSize, convScatter, convTransposedOutSize, convWeightGrad,
} from '../kernels/conv.ts';
import { Tensor, shapeSize, shapeStr } from '../tensor.ts';
import { type Activation, activationBackward, activationForward, parseActivation } from './activations.ts';
import type { BuildContext, Layer, LayerConfig, LayerKind, Param, Shape } from './layer.ts';

/** Which of the six convolution layers. */
export interface ConvFamily {
  readonly type: string;
  readonly aliases: readonly string[];
  readonly rank: 1 | 2 | 3;
  readonly transposed: boolean;
}

/**
 * Normalized config. Optional members (present only when given): input_depth, input_height,
 * input_width (per rank), output_padding (transposed layers only, always present there).
 */
export interface ConvConfig extends LayerConfig {
  input_channels: number;
  filters: number;
  kernel_size: number[];
  stride: number[];
  padding: number[];
  dilation: number[];
  activation: Activation;
  bias: boolean;
}

/** Names of the spatial-size fields, in dim order, per rank. */
export function spatialFields(rank: 1 | 2 | 3): readonly string[] {
  return rank === 1 ? ['input_height'] : rank === 2 ? ['input_height', 'input_width'] : ['input_depth', 'input_height', 'input_width'];
}

/** An int, or an array of exactly `rank` ints, each >= min; a missing field takes `def` (or is an error). */
function perDim(f: FieldReader, names: readonly string[], rank: number, min: number, def?: number): number[] {
  const found = f.lookup(names);
  if (!found || found.value === null) {
    if (def === undefined) fail('CONFIG_INVALID', `missing required field (an integer or ${rank} integers)`, f.at(names[0]));
    return new Array<number>(rank).fill(def);
  }
  const where = f.at(found.name);
  const one = (v: Json, at: string): number => {
    if (typeof v !== 'number' || !Number.isInteger(v)) fail('CONFIG_INVALID', `expected an integer, got ${describeJson(v)}`, at);
    if (v < min) fail('CONFIG_INVALID', `must be >= ${min}, got ${v}`, at);
    return v;
  };
  if (Array.isArray(found.value)) {
    if (found.value.length !== rank) {
      fail('CONFIG_INVALID', `expected an integer or ${rank} integer${rank > 1 ? 's' : ''} (one per spatial dim), got an array of ${found.value.length}`, where);
    }
    return found.value.map((v, i) => one(v, `${where}[${i}]`));
  }
  return new Array<number>(rank).fill(one(found.value, where));
}

/**
 * Loom writes 0 for unset fields, so a Loom conv1d may carry `padding: 0` next to
 * `conv1d_padding: 1`: a 0 under one spelling yields to a nonzero value under another.
 * Spellings that still disagree are an error (FieldReader's rule).
 */
function spellings(f: FieldReader, names: readonly string[]): string[] {
  const present = names.filter((n) => {
    const v = f.lookup(n);
    return v !== undefined && v.value !== null;
  });
  const nonzero = present.filter((n) => f.lookup(n)!.value !== 0);
  return nonzero.length > 0 && nonzero.length < present.length ? nonzero : [...names];
}

export function parseConv(f: FieldReader, fam: ConvFamily): ConvConfig {
  const loom1 = fam.rank === 1 && !fam.transposed;
  const names = (canonical: string, extra: readonly string[], loom?: string): string[] =>
    spellings(f, [canonical, ...extra, ...(loom1 && loom ? [loom] : [])]);
  const groups = f.lookup('groups');
  if (groups && groups.value !== null && groups.value !== 1) {
    fail('UNSUPPORTED', `only groups = 1 is supported, got ${JSON.stringify(groups.value)}`, f.at('groups'));
  }
  const mode = f.lookup('padding_mode');
  if (mode && mode.value !== null && mode.value !== 'zeros') {
    fail('UNSUPPORTED', `only padding_mode "zeros" is supported, got ${JSON.stringify(mode.value)}`, f.at('padding_mode'));
  }
  const r = fam.rank;
  const cfg: ConvConfig = {
    type: fam.type,
    input_channels: f.int(names('input_channels', ['in_channels'], 'conv1d_in_channels'), { min: 1 }),
    filters: f.int(names('filters', ['out_channels'], 'conv1d_filters'), { min: 1 }),
    kernel_size: perDim(f, names('kernel_size', [], 'conv1d_kernel_size'), r, 1),
    stride: perDim(f, names('stride', [], 'conv1d_stride'), r, 1, 1),
    padding: perDim(f, names('padding', [], 'conv1d_padding'), r, 0, 0),
    dilation: perDim(f, ['dilation'], r, 1, 1),
    activation: 'linear',
    bias: true,
  };
  if (fam.transposed) {
    const op = perDim(f, ['output_padding'], r, 0, 0);
    op.forEach((v, i) => {
      if (v >= cfg.stride[i] && v >= cfg.dilation[i]) {
        fail('CONFIG_INVALID', `must be smaller than either stride (${cfg.stride[i]}) or dilation (${cfg.dilation[i]})${r > 1 ? ` in dim ${i}` : ''}, got ${v}`, f.at('output_padding'));
      }
    });
    cfg.output_padding = op;
  } else if (f.has('output_padding') && perDim(f, ['output_padding'], r, 0, 0).some((v) => v !== 0)) {
    fail('CONFIG_INVALID', `applies only to transposed convolutions (conv_transposed${r}d)`, f.at('output_padding'));
  }
  for (const name of spatialFields(r)) {
    const v = f.optInt(spellings(f, r === 1 ? [name, 'input_length'] : [name]), { min: 1, zeroIsAbsent: true });
    if (v !== undefined) cfg[name] = v;
  }
  cfg.activation = parseActivation(f, 'linear');
  cfg.bias = f.bool('bias', true);
  return cfg;
}

/** The input shape a config implies on its own: [C, ...spatial] when every spatial size is given. */
export function convInferInputShape(cfg: ConvConfig, rank: 1 | 2 | 3): Shape | null {
  const sp = spatialFields(rank).map((n) => cfg[n] as number | undefined);
  return sp.every((v) => v !== undefined) ? [cfg.input_channels, ...(sp as number[])] : null;
}

/**
 * The spatial sizes of the per-sample input, given the incoming shape S:
 *  - S of rank >= 2 must have S[0] = input_channels; the per-sample size must be a multiple of
 *    input_channels (a flat S from a dense layer is reshaped to [C, ...]).
 *  - If S is [C, ...N dims] and agrees with every spatial size given, its dims are used.
 *  - Otherwise the given sizes are used, and at most one absent size is derived so that the
 *    total matches (e.g. conv1d's length = size / C; a 2-d input_width = size / (C * H)).
 */
export function resolveSpatial(cfg: ConvConfig, rank: 1 | 2 | 3, S: Shape, where: string): number[] {
  const C = cfg.input_channels;
  const size = shapeSize(S);
  const names = spatialFields(rank);
  const given = names.map((n) => cfg[n] as number | undefined);
  if (S.length >= 2 && S[0] !== C) {
    fail('SHAPE_MISMATCH', `is ${C}, but the incoming per-sample shape ${shapeStr(S)} has ${S[0]} channels (dim 0; inputs are channels-first)`, `${where}.input_channels`);
  }
  if (size % C !== 0) {
    fail('SHAPE_MISMATCH', `is ${C}, but the incoming per-sample shape ${shapeStr(S)} holds ${size} values, not a multiple of ${C}`, `${where}.input_channels`);
  }
  const rest = size / C;
  if (S.length === rank + 1 && given.every((g, i) => g === undefined || g === S[i + 1])) return S.slice(1);
  const missing = given.flatMap((g, i) => (g === undefined ? [i] : []));
  const known = given.reduce<number>((p, g) => p * (g ?? 1), 1);
  const expects = `[${[C, ...given.map((g, i) => g ?? names[i])].join(', ')}]`;
  if (missing.length === 0) {
    if (known !== rest) {
      fail('SHAPE_MISMATCH', `expects an input of ${expects} = ${C * known} values per sample, but the incoming per-sample shape ${shapeStr(S)} holds ${size}`, `${where}.${names[0]}`);
    }
    return given as number[];
  }
  if (missing.length > 1) {
    fail('CONFIG_INVALID', `is needed: the incoming per-sample shape ${shapeStr(S)} does not give the spatial sizes; set ${missing.map((i) => names[i]).join(' and ')} (or feed a [channels, ${names.join(', ')}] shape)`, `${where}.${names[missing[0]]}`);
  }
  if (rest % known !== 0) {
    fail('SHAPE_MISMATCH', `cannot be derived: the incoming per-sample shape ${shapeStr(S)} holds ${size} values, not a multiple of ${expects.replace(names[missing[0]], '1')} = ${C * known}`, `${where}.${names[missing[0]]}`);
  }
  return given.map((g) => g ?? rest / known);
}

/** Pad a per-dim list of `rank` values to 3-d [D, H, W] with `fill` in front. */
function to3(v: readonly number[], fill: number): Dims3 {
  const a = [...new Array<number>(3 - v.length).fill(fill), ...v];
  return [a[0], a[1], a[2]];
}

interface ConvSaved {
  x: Float32Array;
  pre: Float32Array;
  post: Float32Array;
  batch: number;
}

export class ConvLayer implements Layer {
  readonly type: string;
  readonly config: ConvConfig;
  readonly inputShape: Shape;
  readonly outputShape: Shape;
  readonly params: readonly Param[];
  readonly children = [];
  readonly usesSkip = false;
  private readonly fam: ConvFamily;
  private readonly weight: Param;
  private readonly bias: Param | null;
  private readonly geom: ConvGeometry;
  private readonly outP: number;

  constructor(fam: ConvFamily, cfg: ConvConfig, inputShape: Shape, ctx: BuildContext) {
    this.fam = fam;
    this.type = fam.type;
    this.config = cfg;
    this.inputShape = inputShape;
    const where = ctx.where;
    const spatial = resolveSpatial(cfg, fam.rank, inputShape, where);
    const names = spatialFields(fam.rank);
    const { kernel_size: k, stride: s, padding: p, dilation: d } = cfg;
    const out: number[] = [];
    for (let i = 0; i < fam.rank; i++) {
      const dim = fam.rank > 1 ? `[${i}]` : '';
      const span = d[i] * (k[i] - 1) + 1;
      if (fam.transposed) {
        const o = convTransposedOutSize(spatial[i], k[i], s[i], p[i], d[i], (cfg.output_padding as number[])[i]);
        if (o < 1) {
          fail('CONFIG_INVALID', `padding${dim} = ${p[i]} leaves no output: (${names[i]} ${spatial[i]} - 1) * stride ${s[i]} - 2 * ${p[i]} + dilation ${d[i]} * (kernel ${k[i]} - 1) + output_padding + 1 = ${o}`, `${where}.padding`);
        }
        out.push(o);
      } else {
        if (span > spatial[i] + 2 * p[i]) {
          const dil = d[i] > 1 ? ` with dilation ${d[i]}` : '';
          fail('CONFIG_INVALID', `kernel_size${dim} = ${k[i]}${dil} spans ${span} positions, more than the padded input ${names[i]} ${spatial[i]} + 2 * padding ${p[i]} = ${spatial[i] + 2 * p[i]}`, `${where}.kernel_size`);
        }
        out.push(convOutSize(spatial[i], k[i], s[i], p[i], d[i]));
      }
    }
    const F = cfg.filters, C = cfg.input_channels;
    this.outputShape = [F, ...out];
    this.outP = out.reduce((a, b) => a * b, 1);
    shapeSize(this.outputShape, `${where} output shape`);
    const kVol = k.reduce((a, b) => a * b, 1);
    this.geom = {
      wide: to3(fam.transposed ? out : spatial, 1),
      narrow: to3(fam.transposed ? spatial : out, 1),
      kernel: to3(k, 1),
      stride: to3(s, 1),
      padding: to3(p, 0),
      dilation: to3(d, 1),
    };
    const wShape = fam.transposed ? [C, F, ...k] : [F, C, ...k];
    this.weight = ctx.param('weight', wShape, { kind: 'kaiming_uniform', fanIn: wShape[1] * kVol });
    this.bias = cfg.bias ? ctx.param('bias', [F], { kind: 'zeros' }) : null;
    this.params = this.bias ? [this.weight, this.bias] : [this.weight];
  }

  forward(x: Tensor) {
    const batch = x.shape[0];
    const { input_channels: C, filters: F, activation } = this.config;
    const w = this.weight.value.data;
    const b = this.bias ? this.bias.value.data : null;
    let pre: Float32Array;
    if (this.fam.transposed) {
      pre = convScatter(x.data, batch, C, w, F, this.geom);
      if (b) addBias(pre, batch, F, this.outP, b);
    } else {
      pre = convGather(x.data, batch, C, w, F, b, this.geom);
    }
    const rowLen = this.outputShape[this.outputShape.length - 1];
    const post = activation === 'linear' ? pre : activationForward(activation, pre, rowLen);
    const saved: ConvSaved = { x: x.data, pre, post, batch };
    return { y: new Tensor([batch, ...this.outputShape], post), saved };
  }

  backward(s: unknown, dy: Tensor) {
    const { x, pre, post, batch } = s as ConvSaved;
    const { input_channels: C, filters: F, activation } = this.config;
    const rowLen = this.outputShape[this.outputShape.length - 1];
    const g = activation === 'linear' ? dy.data : activationBackward(activation, pre, post, dy.data, rowLen);
    const w = this.weight.value.data;
    let dx: Float32Array;
    if (this.fam.transposed) {
      convWeightGrad(x, C, g, F, batch, this.geom, this.weight.grad.data);
      dx = convGather(g, batch, F, w, C, null, this.geom);
    } else {
      convWeightGrad(g, F, x, C, batch, this.geom, this.weight.grad.data);
      dx = convScatter(g, batch, F, w, C, this.geom);
    }
    if (this.bias) channelSumsInto(g, batch, F, this.outP, this.bias.grad.data);
    return { dx: new Tensor([batch, ...this.inputShape], dx) };
  }
}

/** A LayerKind for one member of the convolution family. */
export function convKind(fam: ConvFamily): LayerKind {
  return {
    type: fam.type,
    aliases: fam.aliases,
    parse: (f) => parseConv(f, fam),
    inferInputShape: (cfg) => convInferInputShape(cfg as ConvConfig, fam.rank),
    build: (cfg, inputShape, ctx) => new ConvLayer(fam, cfg as ConvConfig, inputShape, ctx),
  };
}

export const conv1dKind: LayerKind = convKind({ type: 'conv1d', aliases: ['cnn1'], rank: 1, transposed: false });
