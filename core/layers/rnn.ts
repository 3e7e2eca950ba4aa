/**
 * rnn — PyTorch nn.RNN (one layer, batch_first) with tanh (default) or relu; also the shared
 * base of lstm.ts and gru.ts: config parsing, sequence shape rule, parameters, initial state.
 *
 * Config (canonical name first, aliases after):
 *   input_size  (input_height)                      features per time step, required (or d_model)
 *   hidden_size (output_height)                     hidden state size, required (or d_model)
 *   d_model                                         Loom's InitRNNCell/InitLSTMCell size: default
 *                                                   for both input_size and hidden_size
 *   seq_length  (seq_len, sequence_length)          steps per sample; optional, see Shapes
 *   bias                                            true|false, default true
 *   nonlinearity                                    rnn only: tanh (default) | relu
 *   PyTorch's num_layers (1), bidirectional (false), batch_first (true) are accepted with
 *   those values only; others are UNSUPPORTED (stack layers in the grid for num_layers > 1:
 *   two lstm slots compute what nn.LSTM(num_layers=2, dropout=0) computes).
 * Parameters (G gates: rnn 1, lstm 4 (i, f, g, o), gru 3 (r, z, n), PyTorch's order):
 *   weight_ih [G*H, in] (xavier_uniform over the whole matrix: fan_in = in, fan_out = G*H)
 *   weight_hh [G*H, H]  (orthogonal over the whole matrix, core/init.ts)
 *   bias_ih [G*H], bias_hh [G*H] (zeros); no biases when bias is false.
 *   (PyTorch initializes all four with U(-1/sqrt(H), 1/sqrt(H)); load its weights to match.)
 * Shapes (per sample): input [seq, in] -> output [seq, H], every hidden state h_1..h_seq, like
 *   PyTorch's `output`. With seq_length given, any input of seq_length * input_size values is
 *   read row-major as [seq_length, input_size] (Loom's flat "512 = 8 steps x 64 features");
 *   without it, the input must be [seq, input_size] or flat with a multiple of input_size values.
 *   Anything else is SHAPE_MISMATCH naming seq_length or input_size.
 * Initial state: zeros, unless set with RecurrentLayer.setInitialState(h0[, c0]) ([batch, H]
 *   tensors, kept until replaced or cleared with null). After a backward, initialStateGrad()
 *   holds dL/dh0 (and dL/dc0); after a forward, finalState() holds h_seq (and c_seq).
 *
 * Canonical arithmetic (kernels/linear.ts for products, core/math for the rest; all f32, flushed):
 *   gi[b, t, :] = W_ih x[b, t] + b_ih  (sum over k ascending, then + bias), all steps at once
 *   gh[b, :]    = W_hh h_{t-1}[b] + b_hh  (same order), h_0 = initial state
 *   rnn: a = gi + gh; h_t = tanh(a) | (a > 0 ? a : +0)
 * Backward through time, t = seq-1 down to 0, with dhrec = +0 before the last step:
 *   dh = dy[b, t] + dhrec;  da = dh * (1 - h_t * h_t)  |  (h_t > 0 ? dh : +0)
 *   dhrec = da · W_hh  (sum over gate rows j ascending);  dL/dh0 = dhrec after t = 0
 *   dx[b, t, k] = sum over j ascending of da[b, t, j] * W_ih[j, k]
 *   grad weight_ih += sum over rows (b, t) in order b ascending, then t ascending, of da ⊗ x;
 *   grad bias_ih   += the same row sum of da; weight_hh / bias_hh likewise with h_{t-1}
 *   (kernels/linear.ts linearBackwardParams: the row sum from +0, then one f32 add into the grad).
 */
import { fail } from '../errors.ts';
import type { FieldReader } from '../fields.ts';
import { linearBackwardInput, linearBackwardParams, linearForward } from '../kernels/linear.ts';
import { putTimeRows, tanhGrad } from '../kernels/recurrent.ts';
import { add, tanh } from '../math/index.ts';
import { Tensor, assertFinite, flushSubnormals, shapeSize, shapeStr } from '../tensor.ts';
import type { BuildContext, Layer, LayerConfig, LayerKind, Param, Shape } from './layer.ts';

/** Normalized config shared by rnn, lstm and gru. `seq_length` is present only when the config gives it. */
export interface RecurrentConfig extends LayerConfig {
  input_size: number;
  hidden_size: number;
  bias: boolean;
}

export interface RnnConfig extends RecurrentConfig {
  type: 'rnn';
  nonlinearity: 'tanh' | 'relu';
}

/** A recurrent state or its gradient: h [batch, H], and c [batch, H] for lstm. */
export interface RecurrentState {
  readonly h: Tensor;
  readonly c?: Tensor;
}

/** Parse the fields common to rnn, lstm and gru, in canonical order (extra fields appended by the caller). */
export function parseRecurrent(f: FieldReader, type: string): RecurrentConfig {
  const layers = f.optInt('num_layers', { min: 1 });
  if (layers !== undefined && layers !== 1) {
    fail('UNSUPPORTED', `one ${type} layer per grid slot; for num_layers ${layers} place ${layers} ${type} layers one after another (that computes what PyTorch's num_layers does without dropout)`, f.at(f.lookup('num_layers')!.name));
  }
  if (f.bool('bidirectional', false)) fail('UNSUPPORTED', 'bidirectional recurrent layers are not supported', f.at('bidirectional'));
  if (!f.bool('batch_first', true)) fail('UNSUPPORTED', `${type} is always batch-first: input [batch, seq, features]`, f.at('batch_first'));
  const dModel = f.optInt('d_model', { min: 1 });
  const input_size = f.int(['input_size', 'input_height'], { min: 1, default: dModel });
  const hidden_size = f.int(['hidden_size', 'output_height'], { min: 1, default: dModel });
  const seq = f.optInt(['seq_length', 'seq_len', 'sequence_length'], { min: 1 });
  const bias = f.bool('bias', true);
  return seq === undefined ? { type, input_size, hidden_size, bias } : { type, input_size, hidden_size, seq_length: seq, bias };
}

export function seqLengthOf(cfg: RecurrentConfig): number | undefined {
  return typeof cfg.seq_length === 'number' ? cfg.seq_length : undefined;
}

/** The per-sample input shape a recurrent config implies: [seq_length, input_size] when seq_length is given. */
export function recurrentInputShape(cfg: LayerConfig): Shape | null {
  const c = cfg as RecurrentConfig;
  const seq = seqLengthOf(c);
  return seq === undefined ? null : [seq, c.input_size];
}

/** The sequence length for a per-sample input shape (see the shape rule above). */
export function sequenceLength(cfg: RecurrentConfig, inputShape: Shape, where: string): number {
  const n = shapeSize(inputShape);
  const inF = cfg.input_size;
  const given = seqLengthOf(cfg);
  const got = `its input has per-sample shape ${shapeStr(inputShape)} (${n} values)`;
  if (given !== undefined) {
    if (n === given * inF) return given;
    if (n % inF === 0) {
      fail('SHAPE_MISMATCH', `is ${given}, but ${got}, which is ${n / inF} steps of input_size ${inF}`, `${where}.seq_length`);
    }
    fail('SHAPE_MISMATCH', `is ${inF}: expects seq_length x input_size = ${given} x ${inF} = ${given * inF} values per sample, but ${got}`, `${where}.input_size`);
  }
  if (inputShape.length === 2 && inputShape[1] === inF && n > 0) return inputShape[0];
  if (inputShape.length === 1 && n > 0 && n % inF === 0) return n / inF;
  return fail('SHAPE_MISMATCH', `is ${inF}: expects per-sample input [seq, ${inF}] or a flat multiple of ${inF} values, but ${got}; set seq_length to read another shape as [seq_length, input_size]`, `${where}.input_size`);
}

/**
 * Common state and parameters of rnn, lstm and gru. Subclasses implement forward/backward
 * with the helpers below; every layer of the three types is an instance of this class, so
 * `layer instanceof RecurrentLayer` finds the initial-state API.
 */
export abstract class RecurrentLayer implements Layer {
  abstract readonly type: string;
  readonly config: RecurrentConfig;
  readonly inputShape: Shape;
  readonly outputShape: Shape;
  readonly params: readonly Param[];
  readonly children = [];
  readonly usesSkip = false;
  /** Error location of this layer, e.g. `layers[0] (z0 y0 x0 l0, lstm)`. */
  readonly where: string;
  /** Steps per sample, features per step, hidden size, gates (rnn 1, lstm 4, gru 3). */
  readonly seq: number;
  readonly inF: number;
  readonly hidden: number;
  readonly gates: number;
  /** True for lstm: the state has a cell c besides h. */
  readonly hasCell: boolean;
  protected readonly weightIh: Param;
  protected readonly weightHh: Param;
  protected readonly biasIh: Param | null;
  protected readonly biasHh: Param | null;
  private h0: Tensor | null = null;
  private c0: Tensor | null = null;
  private lastFinal: RecurrentState | null = null;
  private lastGrad: RecurrentState | null = null;

  constructor(cfg: RecurrentConfig, inputShape: Shape, ctx: BuildContext, gates: number, hasCell: boolean) {
    this.config = cfg;
    this.where = ctx.where;
    this.seq = sequenceLength(cfg, inputShape, ctx.where);
    this.inF = cfg.input_size;
    this.hidden = cfg.hidden_size;
    this.gates = gates;
    this.hasCell = hasCell;
    this.inputShape = inputShape;
    this.outputShape = [this.seq, this.hidden];
    const rows = gates * this.hidden;
    this.weightIh = ctx.param('weight_ih', [rows, this.inF], { kind: 'xavier_uniform', fanIn: this.inF, fanOut: rows });
    this.weightHh = ctx.param('weight_hh', [rows, this.hidden], { kind: 'orthogonal' });
    this.biasIh = cfg.bias ? ctx.param('bias_ih', [rows], { kind: 'zeros' }) : null;
    this.biasHh = cfg.bias ? ctx.param('bias_hh', [rows], { kind: 'zeros' }) : null;
    this.params = this.biasIh && this.biasHh ? [this.weightIh, this.weightHh, this.biasIh, this.biasHh] : [this.weightIh, this.weightHh];
  }

  /**
   * Set the initial state for the following forward passes: h0 (and, for lstm, c0) of shape
   * [batch, hidden_size], finite f32 (subnormals are flushed); null means zeros. The tensors
   * are copied. The next forward's batch must equal their batch. Pass (null) to clear.
   */
  setInitialState(h0: Tensor | null, c0: Tensor | null = null): void {
    const at = `${this.where}.initial_state`;
    if (c0 && !this.hasCell) fail('INPUT_INVALID', `${this.type} has no cell state; give h0 only`, at);
    const check = (t: Tensor, name: string): Tensor => {
      if (t.dtype !== 'f32') fail('INPUT_INVALID', `${name} must be f32, got ${t.dtype}`, at);
      if (t.shape.length !== 2 || t.shape[1] !== this.hidden || t.shape[0] < 1) {
        fail('SHAPE_MISMATCH', `${name} has shape ${shapeStr(t.shape)}, expected [batch, ${this.hidden}] (hidden_size ${this.hidden})`, at);
      }
      assertFinite(t, `${at}.${name}`);
      return flushSubnormals(t).clone();
    };
    const h = h0 ? check(h0, 'h0') : null;
    const c = c0 ? check(c0, 'c0') : null;
    if (h && c && h.shape[0] !== c.shape[0]) fail('SHAPE_MISMATCH', `h0 has batch ${h.shape[0]} but c0 has batch ${c.shape[0]}`, at);
    this.h0 = h;
    this.c0 = c;
  }

  /** The initial state set by setInitialState (copies); null entries mean zeros. */
  initialState(): { h: Tensor | null; c: Tensor | null } {
    return { h: this.h0?.clone() ?? null, c: this.c0?.clone() ?? null };
  }

  /** h_seq (and c_seq) of the most recent forward, [batch, H]; null before any forward. */
  finalState(): RecurrentState | null {
    return this.lastFinal;
  }

  /** dL/dh0 (and dL/dc0) of the most recent backward, [batch, H], whether the initial state was set or zero. */
  initialStateGrad(): RecurrentState | null {
    return this.lastGrad;
  }

  abstract forward(x: Tensor): { y: Tensor; saved: unknown };
  abstract backward(saved: unknown, dy: Tensor): { dx: Tensor };

  /** The initial h (and c) for a batch, as [B, H] arrays; validates the batch before any compute. */
  protected startState(batch: number): { h: Float32Array; c: Float32Array } {
    const size = batch * this.hidden;
    for (const [t, name] of [[this.h0, 'h0'], [this.c0, 'c0']] as const) {
      if (t && t.shape[0] !== batch) {
        fail('SHAPE_MISMATCH', `${name} was set for batch ${t.shape[0]}, but the input has batch ${batch}`, `${this.where}.initial_state`);
      }
    }
    return { h: this.h0 ? this.h0.data : new Float32Array(size), c: this.c0 ? this.c0.data : new Float32Array(size) };
  }

  protected recordFinal(batch: number, h: Float32Array, c: Float32Array | null): void {
    const shape = [batch, this.hidden];
    this.lastFinal = c ? { h: new Tensor(shape, h), c: new Tensor(shape, c) } : { h: new Tensor(shape, h) };
  }

  protected recordGrad(batch: number, dh: Float32Array, dc: Float32Array | null): void {
    const shape = [batch, this.hidden];
    this.lastGrad = dc ? { h: new Tensor(shape, dh), c: new Tensor(shape, dc) } : { h: new Tensor(shape, dh) };
  }

  /** gi = W_ih x + b_ih for every (b, t) row: [B, S, G*H]. */
  protected inputProjection(x: Float32Array, batch: number): Float32Array {
    return linearForward(x, batch * this.seq, this.inF, this.weightIh.value.data, this.biasIh?.value.data ?? null, this.gates * this.hidden);
  }

  /** gh = W_hh h + b_hh for one step: [B, H] -> [B, G*H]. */
  protected hiddenProjection(h: Float32Array, batch: number): Float32Array {
    return linearForward(h, batch, this.hidden, this.weightHh.value.data, this.biasHh?.value.data ?? null, this.gates * this.hidden);
  }

  /** d(h_{t-1}) through W_hh: [B, G*H] -> [B, H], sum over gate rows ascending. */
  protected hiddenGrad(dgh: Float32Array, batch: number): Float32Array {
    return linearBackwardInput(dgh, batch, this.gates * this.hidden, this.weightHh.value.data, this.hidden);
  }

  /** dx through W_ih for every row: [B, S, G*H] -> [B, S, in]. */
  protected inputGrad(dgi: Float32Array, batch: number): Float32Array {
    return linearBackwardInput(dgi, batch * this.seq, this.gates * this.hidden, this.weightIh.value.data, this.inF);
  }

  /** Parameter gradients from the gate gradients of every (b, t) row: dgi pairs with x, dgh with h_{t-1}. */
  protected paramGrads(dgi: Float32Array, x: Float32Array, dgh: Float32Array, hprev: Float32Array, batch: number): void {
    const rows = batch * this.seq;
    const width = this.gates * this.hidden;
    linearBackwardParams(dgi, x, rows, this.inF, width, this.weightIh.grad.data, this.biasIh?.grad.data ?? null);
    linearBackwardParams(dgh, hprev, rows, this.hidden, width, this.weightHh.grad.data, this.biasHh?.grad.data ?? null);
  }
}

export const rnnKind: LayerKind = {
  type: 'rnn',
  aliases: [],
  parse(f: FieldReader): RnnConfig {
    const cfg = parseRecurrent(f, 'rnn') as RnnConfig;
    cfg.nonlinearity = f.str<'tanh' | 'relu'>('nonlinearity', { oneOf: ['tanh', 'relu'], default: 'tanh' });
    return cfg;
  },
  inferInputShape: recurrentInputShape,
  build(cfg, inputShape, ctx) {
    return new RnnLayer(cfg as RnnConfig, inputShape, ctx);
  },
};

interface RnnSaved {
  batch: number;
  x: Float32Array;
  /** h_t for every (b, t): [B, S, H] (the output). */
  y: Float32Array;
  /** h_{t-1} for every (b, t): [B, S, H]. */
  hprev: Float32Array;
}

class RnnLayer extends RecurrentLayer {
  readonly type = 'rnn';
  private readonly relu: boolean;

  constructor(cfg: RnnConfig, inputShape: Shape, ctx: BuildContext) {
    super(cfg, inputShape, ctx, 1, false);
    this.relu = cfg.nonlinearity === 'relu';
  }

  forward(x: Tensor) {
    const B = x.shape[0];
    const S = this.seq, H = this.hidden;
    let h: Float32Array = this.startState(B).h;
    const gi = this.inputProjection(x.data, B);
    const y = new Float32Array(B * S * H);
    const hprev = new Float32Array(B * S * H);
    for (let t = 0; t < S; t++) {
      putTimeRows(hprev, h, B, S, t, H);
      const gh = this.hiddenProjection(h, B);
      const next = new Float32Array(B * H);
      for (let b = 0; b < B; b++) {
        const o = (b * S + t) * H;
        for (let j = 0; j < H; j++) {
          const a = add(gi[o + j], gh[b * H + j]);
          next[b * H + j] = this.relu ? (a > 0 ? a : 0) : tanh(a);
        }
      }
      putTimeRows(y, next, B, S, t, H);
      h = next;
    }
    this.recordFinal(B, h, null);
    const saved: RnnSaved = { batch: B, x: x.data, y, hprev };
    return { y: new Tensor([B, S, H], y), saved };
  }

  backward(s: unknown, dy: Tensor) {
    const { batch: B, x, y, hprev } = s as RnnSaved;
    const S = this.seq, H = this.hidden;
    const g = dy.data;
    const da = new Float32Array(B * S * H);
    let dhrec: Float32Array = new Float32Array(B * H);
    for (let t = S - 1; t >= 0; t--) {
      const step = new Float32Array(B * H);
      for (let b = 0; b < B; b++) {
        const o = (b * S + t) * H;
        for (let j = 0; j < H; j++) {
          const dh = add(g[o + j], dhrec[b * H + j]);
          const hv = y[o + j];
          step[b * H + j] = this.relu ? (hv > 0 ? dh : 0) : tanhGrad(dh, hv);
        }
      }
      putTimeRows(da, step, B, S, t, H);
      dhrec = this.hiddenGrad(step, B);
    }
    this.recordGrad(B, dhrec, null);
    const dx = this.inputGrad(da, B);
    this.paramGrads(da, x, da, hprev, B);
    return { dx: new Tensor([B, ...this.inputShape], dx) };
  }
}
