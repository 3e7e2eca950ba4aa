import { fail } from './errors.ts';
import { add, div, mul, sqrt, sub } from './math/index.ts';
import type { Prng } from './prng.ts';

/**
 * Weight initializers. All draw from a Prng forked per parameter name, so a parameter's
 * initial values depend only on the network seed and its full name (`layers.3.weight`),
 * never on what else is in the network. All arithmetic is Heddle's deterministic f32.
 *
 * | kind             | rule                                                        | used for            |
 * |------------------|-------------------------------------------------------------|---------------------|
 * | xavier_uniform   | U(-a, a), a = sqrt(6 / (fan_in + fan_out)) (Glorot 2010)     | dense, projections  |
 * | kaiming_uniform  | U(-a, a), a = sqrt(6 / fan_in) (He 2015, gain sqrt(2))       | convolutions        |
 * | orthogonal       | Gram-Schmidt (modified, rows in order) of a normal matrix   | recurrent weights   |
 * | uniform          | U(-bound, bound)                                            | biases of some kinds|
 * | normal           | N(0, std^2), Box-Muller                                     | embeddings          |
 * | zeros / ones     | constant                                                    | biases, norm gains  |
 */
export type InitSpec =
  | { kind: 'xavier_uniform'; fanIn: number; fanOut: number }
  | { kind: 'kaiming_uniform'; fanIn: number }
  | { kind: 'orthogonal' }
  | { kind: 'uniform'; bound: number }
  | { kind: 'normal'; std: number }
  | { kind: 'zeros' }
  | { kind: 'ones' };

export function initialize(spec: InitSpec, shape: readonly number[], rng: Prng): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  switch (spec.kind) {
    case 'zeros':
      return out;
    case 'ones':
      return out.fill(1);
    case 'uniform':
      return fillUniform(out, Math.fround(spec.bound), rng);
    case 'xavier_uniform':
      return fillUniform(out, sqrt(div(6, Math.fround(spec.fanIn + spec.fanOut))), rng);
    case 'kaiming_uniform':
      return fillUniform(out, sqrt(div(6, Math.fround(spec.fanIn))), rng);
    case 'normal': {
      const std = Math.fround(spec.std);
      for (let i = 0; i < n; i++) out[i] = mul(rng.normal(), std);
      return out;
    }
    case 'orthogonal':
      return orthogonal(shape, rng);
  }
}

function fillUniform(out: Float32Array, bound: number, rng: Prng): Float32Array {
  for (let i = 0; i < out.length; i++) out[i] = rng.uniformRange(-bound, bound);
  return out;
}

/**
 * A [rows, cols] matrix with orthonormal rows (rows <= cols) or orthonormal columns
 * (rows > cols), from modified Gram-Schmidt over a standard-normal matrix. Vectors are
 * processed in index order; each dot product sums in index order. Shapes with more than
 * two dims are treated as [shape[0], rest].
 */
function orthogonal(shape: readonly number[], rng: Prng): Float32Array {
  if (shape.length < 2) fail('INTERNAL', 'orthogonal init needs a matrix');
  const rows = shape[0];
  const cols = shape.slice(1).reduce((a, b) => a * b, 1);
  const transposed = rows > cols;
  const nv = transposed ? cols : rows; // number of vectors to orthonormalize
  const len = transposed ? rows : cols; // their length
  const v = new Float32Array(nv * len);
  for (let i = 0; i < v.length; i++) v[i] = rng.normal();
  for (let i = 0; i < nv; i++) {
    const vi = i * len;
    for (let j = 0; j < i; j++) {
      const vj = j * len;
      let dot = 0;
      for (let k = 0; k < len; k++) dot = add(dot, mul(v[vi + k], v[vj + k]));
      for (let k = 0; k < len; k++) v[vi + k] = sub(v[vi + k], mul(dot, v[vj + k]));
    }
    let ss = 0;
    for (let k = 0; k < len; k++) ss = add(ss, mul(v[vi + k], v[vi + k]));
    const inv = ss > 0 ? div(1, sqrt(ss)) : 0;
    for (let k = 0; k < len; k++) v[vi + k] = mul(v[vi + k], inv);
  }
  if (!transposed) return v;
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * cols + c] = v[c * len + r];
  return out;
}
