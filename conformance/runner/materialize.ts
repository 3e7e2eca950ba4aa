/**
 * Materialized vectors: every generated tensor written out as bytes, so a way in that does
 * not run Heddle's TypeScript (the Python, C# and C wrappers, through the engine process) needs
 * no port of the PRNG or of the fill rules: it reads the tensors, makes the ABI calls and
 * returns the arrays each op produces (docs/conformance.md, "Wrapper way in").
 *
 * materializedSource() feeds a materialized vector back into executeVector, which is how the
 * tests prove that the materialized form carries everything an op needs.
 */
import { base64Decode, base64Encode } from '../../core/io/base64.ts';
import { Network } from '../../core/network.ts';
import { Tensor, type TensorData } from '../../core/tensor.ts';
import { parseLossName } from '../../core/train/losses.ts';
import { type TensorSource, specSource } from './execute.ts';
import { type OpSpec, type Vector, opKey } from './spec.ts';

/** A tensor on the wire: little-endian values, standard base64. */
export interface WireTensor {
  dtype: 'f32' | 'i32';
  shape: number[];
  data: string;
}

/** An op with its fill specs replaced by the tensors they make. */
export interface MaterializedOp {
  key: string;
  /** The op's options (op, format, loss, expect_error, epochs, batch_size, optimizer, schedule, clip_norm, shuffle, seed). */
  spec: OpSpec;
  input?: WireTensor;
  grad_output?: WireTensor;
  target?: WireTensor;
  inputs?: WireTensor;
  targets?: WireTensor;
}

export interface MaterializedVector {
  id: string;
  config: unknown;
  /** Network initialization seed (and the default train seed). */
  seed: number;
  /** Weights to set after building, by full parameter name. */
  weights?: Record<string, WireTensor>;
  ops: MaterializedOp[];
  /** Set when the network could not be built here (every op then reports this error). */
  build_error?: { code: string; message: string };
}

export function toWire(t: Tensor<TensorData>): WireTensor {
  const d = t.data;
  const out = new Uint8Array(d.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < d.length; i++) {
    if (t.dtype === 'f32') view.setFloat32(4 * i, d[i] as number, true);
    else view.setInt32(4 * i, d[i] as number, true);
  }
  if (t.dtype !== 'f32' && t.dtype !== 'i32') throw new Error(`toWire: dtype ${t.dtype} is not used by vectors`);
  return { dtype: t.dtype, shape: [...t.shape], data: base64Encode(out) };
}

export function fromWire(w: WireTensor): Tensor<TensorData> {
  const bytes = base64Decode(w.data, 'wire tensor');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.length / 4;
  if (w.dtype === 'f32') {
    const d = new Float32Array(n);
    for (let i = 0; i < n; i++) d[i] = view.getFloat32(4 * i, true);
    return new Tensor(w.shape, d);
  }
  const d = new Int32Array(n);
  for (let i = 0; i < n; i++) d[i] = view.getInt32(4 * i, true);
  return new Tensor(w.shape, d, 'i32');
}

const FILL_FIELDS = ['input', 'grad_output', 'target', 'inputs', 'targets'] as const;

/** Generates every tensor of a vector (needs the network's shapes, so it builds the network). */
export function materialize(v: Vector): MaterializedVector {
  const src = specSource(v);
  const ops: MaterializedOp[] = v.ops.map((op, i) => {
    const spec: OpSpec = { ...op };
    for (const k of FILL_FIELDS) delete spec[k];
    return { key: opKey(op, i), spec };
  });
  const m: MaterializedVector = { id: v.id, config: v.config, seed: v.seed, ops };
  let net: Network;
  try {
    net = Network.fromJSON(v.config, { seed: v.seed });
    const w = src.weights(net);
    if (w) {
      m.weights = {};
      for (const [k, t] of w) m.weights[k] = toWire(t);
    }
  } catch (e) {
    const err = e as { code?: string; message?: string };
    m.build_error = { code: typeof err.code === 'string' ? err.code : 'EXCEPTION', message: String(err.message ?? e) };
    return m;
  }
  v.ops.forEach((op, i) => {
    const mo = ops[i];
    // A fill that fails (a bad spec) is left out; executing the op then reports the same error.
    const tryWire = (f: () => Tensor<TensorData>): WireTensor | undefined => {
      try {
        return toWire(f());
      } catch {
        return undefined;
      }
    };
    if (op.op === 'forward' || op.op === 'grad' || op.op === 'loss' || op.op === 'roundtrip') mo.input = tryWire(() => src.input(op, i, net));
    if (op.op === 'grad' && mo.input) mo.grad_output = tryWire(() => src.gradOutput(op, i, net, mo.input!.shape[0]));
    if (op.op === 'loss' && mo.input) {
      mo.target = tryWire(() => {
        // The target's shape follows the output's: [batch, ...outputShape].
        const name = parseLossName(op.loss);
        return src.target(op, i, name, [mo.input!.shape[0], ...net.outputShape]);
      });
    }
    if (op.op === 'train') {
      try {
        const d = src.trainData(op, i, net, parseLossName(op.loss ?? 'mse'));
        mo.inputs = toWire(d.inputs);
        mo.targets = toWire(d.targets);
      } catch {
        // reported when the op runs
      }
    }
  });
  return m;
}

/** A TensorSource reading a materialized vector (what a wrapper does with the same data). */
export function materializedSource(m: MaterializedVector): TensorSource {
  const need = (w: WireTensor | undefined, what: string, i: number): Tensor<TensorData> => {
    if (!w) throw new Error(`materialized vector ${m.id}: op ${i} has no ${what}`);
    return fromWire(w);
  };
  return {
    weights() {
      if (!m.weights) return null;
      return new Map(Object.entries(m.weights).map(([k, w]) => [k, fromWire(w) as Tensor]));
    },
    input: (_op, i) => need(m.ops[i].input, 'input', i) as Tensor,
    gradOutput: (_op, i) => need(m.ops[i].grad_output, 'grad_output', i) as Tensor,
    target: (_op, i) => need(m.ops[i].target, 'target', i),
    trainData: (_op, i) => ({ inputs: need(m.ops[i].inputs, 'inputs', i) as Tensor, targets: need(m.ops[i].targets, 'targets', i) }),
  };
}

/** The Vector whose ops a materialized vector carries (fill specs are not needed with materializedSource). */
export function vectorOf(m: MaterializedVector, group = m.id.split('/')[0]): Vector {
  return { id: m.id, group, description: '', config: m.config, seed: m.seed, input: {}, ops: m.ops.map((o) => o.spec) };
}
