/**
 * The conformance vector format (docs/conformance.md, "Vector format") and its validation.
 * Browser-safe: no runtime APIs.
 *
 * A vector is one JSON file under conformance/vectors/<group>/<name>.json; its id is the path
 * without the extension (`layers/dense-basic`), its group (the matrix's row group) the folder.
 */

/** A number, or a string: a decimal ("-0", "1e-39", "inf", "-inf", "nan") or f32 bits ("0x00000001"). */
export type Value = number | string;

export type Fill = 'uniform' | 'normal' | 'zeros' | 'ones' | 'ints' | 'values' | 'probs';

/** How to make a tensor's values from the vector's seed (core/prng.ts). */
export interface FillSpec {
  fill?: Fill;
  /** uniform: [lo, hi) (default -1, 1); ints: integers in [lo, hi). */
  lo?: Value;
  hi?: Value;
  /** normal: mean + std * N(0, 1) (default 0, 1). */
  mean?: Value;
  std?: Value;
  /** values: repeated cyclically to fill the tensor. */
  values?: Value[];
  /** Overrides after filling: flat index -> value. */
  set?: Record<string, Value>;
  /** The PRNG stream: new Prng(seed).fork(stream). Defaults to the tensor's role (input, grad_output, ...). */
  stream?: string;
  /** Element type: f32 (default) or i32 (class indices). */
  dtype?: 'f32' | 'i32';
}

/** A tensor: its fill and a shape, or a batch size with the per-sample shape implied by the network. */
export interface TensorSpec extends FillSpec {
  shape?: number[];
  batch?: number;
}

export type OpName = 'forward' | 'grad' | 'loss' | 'train' | 'roundtrip';

export interface OpSpec {
  op: OpName;
  /** This op's input instead of the vector's. */
  input?: TensorSpec;
  /** The op must fail with this error code (the code is what is compared). */
  expect_error?: string;
  /** grad: dL/d(output) (default uniform [-1, 1), stream grad_output). */
  grad_output?: FillSpec;
  /** loss / train: mse or cross_entropy. */
  loss?: string;
  /** loss: the target (default: see docs). */
  target?: TensorSpec;
  /** train: dataset size (default 4), inputs and targets (default uniform / class indices). */
  samples?: number;
  inputs?: TensorSpec;
  targets?: TensorSpec;
  epochs?: number;
  batch_size?: number;
  optimizer?: unknown;
  schedule?: unknown;
  clip_norm?: number;
  shuffle?: boolean;
  /** train seed (default: the vector's seed). */
  seed?: number;
  /** roundtrip: file format. */
  format?: 'safetensors' | 'json';
}

export interface Vector {
  /** `<group>/<name>`, from the file path. */
  id: string;
  group: string;
  description: string;
  /** The network config (Loom's JSON format, either form). */
  config: unknown;
  /** Weight initialization seed and the root of every generated tensor. */
  seed: number;
  /** The default input of every op. */
  input: TensorSpec;
  /** Replace initial weights: `*` for every parameter, or a full parameter name. */
  weights?: Record<string, FillSpec>;
  ops: OpSpec[];
}

const TOP_KEYS = new Set(['description', 'config', 'seed', 'input', 'weights', 'ops']);
const FILL_KEYS = new Set(['fill', 'lo', 'hi', 'mean', 'std', 'values', 'set', 'stream', 'dtype']);
const TENSOR_KEYS = new Set([...FILL_KEYS, 'shape', 'batch']);
const FILLS = new Set<Fill>(['uniform', 'normal', 'zeros', 'ones', 'ints', 'values', 'probs']);
const OP_KEYS: Record<OpName, readonly string[]> = {
  forward: ['input'],
  grad: ['input', 'grad_output'],
  loss: ['input', 'loss', 'target'],
  train: ['samples', 'inputs', 'targets', 'epochs', 'batch_size', 'optimizer', 'schedule', 'clip_norm', 'shuffle', 'seed', 'loss'],
  roundtrip: ['input', 'format'],
};

export class VectorError extends Error {}

function bad(where: string, msg: string): never {
  throw new VectorError(`${where}: ${msg}`);
}

function isObj(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function checkKeys(o: Record<string, unknown>, allowed: ReadonlySet<string>, where: string): void {
  for (const k of Object.keys(o)) if (!allowed.has(k)) bad(where, `unknown field '${k}' (allowed: ${[...allowed].join(', ')})`);
}

function checkValue(v: unknown, where: string): Value {
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) bad(where, `expected a finite number, got ${v}`);
    return v;
  }
  if (typeof v === 'string') {
    parseValue(v, where);
    return v;
  }
  return bad(where, `expected a number or a string, got ${JSON.stringify(v)}`);
}

/** A Value as the f32 it denotes (not flushed: the engine's entry flush is part of what is tested). */
export function parseValue(v: Value, where = 'value'): number {
  if (typeof v === 'number') return Math.fround(v);
  const s = v.trim().toLowerCase();
  if (/^0x[0-9a-f]{8}$/.test(s)) {
    const u = new Uint32Array([parseInt(s.slice(2), 16)]);
    return new Float32Array(u.buffer)[0];
  }
  if (s === 'inf' || s === '+inf' || s === 'infinity') return Infinity;
  if (s === '-inf' || s === '-infinity') return -Infinity;
  if (s === 'nan') return NaN;
  if (s === '-0') return -0;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/.test(s)) bad(where, `cannot read '${v}' as a number (decimal, inf, nan or 0x + 8 hex digits of f32 bits)`);
  return Math.fround(Number(s));
}

function checkFill(raw: unknown, where: string, keys: ReadonlySet<string>): FillSpec & TensorSpec {
  if (!isObj(raw)) bad(where, 'expected an object');
  checkKeys(raw, keys, where);
  const o = raw as TensorSpec;
  if (o.fill !== undefined && !FILLS.has(o.fill)) bad(`${where}.fill`, `unknown fill '${String(o.fill)}' (one of ${[...FILLS].join(', ')})`);
  for (const k of ['lo', 'hi', 'mean', 'std'] as const) if (o[k] !== undefined) checkValue(o[k], `${where}.${k}`);
  if (o.values !== undefined) {
    if (!Array.isArray(o.values) || o.values.length === 0) bad(`${where}.values`, 'expected a non-empty array');
    o.values.forEach((v, i) => checkValue(v, `${where}.values[${i}]`));
  }
  if ((o.fill === 'values') !== (o.values !== undefined)) bad(where, '"values" goes with fill "values" (and only with it)');
  if (o.set !== undefined) {
    if (!isObj(o.set)) bad(`${where}.set`, 'expected an object of index -> value');
    for (const [k, v] of Object.entries(o.set)) {
      if (!/^\d+$/.test(k)) bad(`${where}.set`, `index '${k}' is not a non-negative integer`);
      checkValue(v, `${where}.set.${k}`);
    }
  }
  if (o.stream !== undefined && typeof o.stream !== 'string') bad(`${where}.stream`, 'expected a string');
  if (o.dtype !== undefined && o.dtype !== 'f32' && o.dtype !== 'i32') bad(`${where}.dtype`, 'expected f32 or i32');
  if (o.shape !== undefined && (!Array.isArray(o.shape) || !o.shape.every((d) => Number.isInteger(d) && d >= 0))) bad(`${where}.shape`, 'expected an array of non-negative integers');
  if (o.batch !== undefined && (!Number.isInteger(o.batch) || o.batch < 1)) bad(`${where}.batch`, 'expected an integer >= 1');
  return o;
}

const SHORTHAND: Record<string, OpSpec> = {
  forward: { op: 'forward' },
  grad: { op: 'grad' },
  train: { op: 'train' },
  'roundtrip:safetensors': { op: 'roundtrip', format: 'safetensors' },
  'roundtrip:json': { op: 'roundtrip', format: 'json' },
};

function checkOp(raw: unknown, where: string): OpSpec {
  if (typeof raw === 'string') {
    const s = SHORTHAND[raw];
    if (!s) bad(where, `unknown op shorthand '${raw}' (one of ${Object.keys(SHORTHAND).join(', ')})`);
    return { ...s };
  }
  if (!isObj(raw)) bad(where, 'expected an op name or an object with "op"');
  const name = raw.op as OpName;
  if (typeof name !== 'string' || !(name in OP_KEYS)) bad(`${where}.op`, `unknown op '${String(raw.op)}' (one of ${Object.keys(OP_KEYS).join(', ')})`);
  checkKeys(raw, new Set(['op', 'expect_error', ...OP_KEYS[name]]), where);
  const o = raw as unknown as OpSpec;
  if (o.input !== undefined) checkFill(o.input, `${where}.input`, TENSOR_KEYS);
  if (o.grad_output !== undefined) checkFill(o.grad_output, `${where}.grad_output`, FILL_KEYS);
  if (o.target !== undefined) checkFill(o.target, `${where}.target`, TENSOR_KEYS);
  if (o.inputs !== undefined) checkFill(o.inputs, `${where}.inputs`, TENSOR_KEYS);
  if (o.targets !== undefined) checkFill(o.targets, `${where}.targets`, TENSOR_KEYS);
  if (o.expect_error !== undefined && (typeof o.expect_error !== 'string' || !/^[A-Z_]+$/.test(o.expect_error))) bad(`${where}.expect_error`, 'expected an error code such as INPUT_INVALID');
  if (name === 'loss' && o.loss === undefined) bad(where, 'a loss op needs "loss"');
  if (name === 'roundtrip' && o.format !== 'safetensors' && o.format !== 'json') bad(`${where}.format`, 'expected safetensors or json');
  for (const k of ['samples', 'epochs', 'batch_size'] as const) {
    if (o[k] !== undefined && (!Number.isInteger(o[k]) || (o[k] as number) < 1)) bad(`${where}.${k}`, 'expected an integer >= 1');
  }
  return o;
}

/** Validates a parsed vector file; `id` is `<group>/<name>`. Throws VectorError naming the field. */
export function parseVector(id: string, raw: unknown): Vector {
  const where = `conformance/vectors/${id}.json`;
  const m = /^([a-z0-9_-]+)\/([a-z0-9_.-]+)$/.exec(id);
  if (!m) bad(where, 'a vector lives at conformance/vectors/<group>/<name>.json (lowercase letters, digits, - _ .)');
  if (!isObj(raw)) bad(where, 'expected a JSON object');
  checkKeys(raw, TOP_KEYS, where);
  if (typeof raw.description !== 'string' || !raw.description) bad(`${where}.description`, 'expected a non-empty string');
  if (!isObj(raw.config)) bad(`${where}.config`, 'expected a network config object');
  if (!Number.isSafeInteger(raw.seed) || (raw.seed as number) < 0) bad(`${where}.seed`, 'expected an integer in [0, 2^53)');
  const input = checkFill(raw.input ?? {}, `${where}.input`, TENSOR_KEYS);
  let weights: Record<string, FillSpec> | undefined;
  if (raw.weights !== undefined) {
    if (!isObj(raw.weights)) bad(`${where}.weights`, 'expected an object: parameter name (or *) -> fill');
    weights = {};
    for (const [k, v] of Object.entries(raw.weights)) weights[k] = checkFill(v, `${where}.weights.${k}`, FILL_KEYS);
  }
  if (!Array.isArray(raw.ops) || raw.ops.length === 0) bad(`${where}.ops`, 'expected a non-empty array');
  const ops = raw.ops.map((o, i) => checkOp(o, `${where}.ops[${i}]`));
  return { id, group: m[1], description: raw.description, config: raw.config, seed: raw.seed as number, input, weights, ops };
}

/** The golden key of op i: `<i>:<op>` (`2:train`, `3:roundtrip-json`). */
export function opKey(op: OpSpec, i: number): string {
  return `${i}:${op.op}${op.op === 'roundtrip' ? `-${op.format}` : ''}`;
}
