/**
 * Shared arithmetic of the recurrent layers (rnn.ts, lstm.ts, gru.ts).
 *
 * Layouts: a per-step quantity of width w over a batch of B sequences of length S is stored
 * as [B, S, w] (sample-major, then time, then feature), the layout of the layers' input and
 * output; `timeRows` / `putTimeRows` move one time step t in and out as a [B, w] block.
 *
 * The matrix products are kernels/linear.ts, so they follow its canonical order:
 *   projection  y[r, j] = f32( (sum over k ascending of f32(W[j, k] * v[r, k]), from +0) + b[j] )
 *   input grad  dv[r, k] = sum over j ascending of f32(dy[r, j] * W[j, k])
 *   param grads dW[j, k] += (sum over rows r ascending of f32(dy[r, j] * v[r, k])), db[j] += (sum over r of dy[r, j])
 * Every elementwise step uses core/math (each result rounded to f32 and flushed below 2^-126).
 */
import { mul, sub } from '../math/index.ts';

/** The [B, w] block of time step t from a [B, S, w] array. */
export function timeRows(src: Float32Array, batch: number, seq: number, t: number, width: number): Float32Array {
  const out = new Float32Array(batch * width);
  for (let b = 0; b < batch; b++) {
    const from = (b * seq + t) * width;
    out.set(src.subarray(from, from + width), b * width);
  }
  return out;
}

/** Write a [B, w] block as time step t of a [B, S, w] array. */
export function putTimeRows(dst: Float32Array, rows: Float32Array, batch: number, seq: number, t: number, width: number): void {
  for (let b = 0; b < batch; b++) dst.set(rows.subarray(b * width, b * width + width), (b * seq + t) * width);
}

/** Gradient through s = sigmoid(a), from the output s: (dy * (1 - s)) * s, as the sigmoid activation. */
export function sigmoidGrad(dy: number, s: number): number {
  return mul(mul(dy, sub(1, s)), s);
}

/** Gradient through t = tanh(a), from the output t: dy * (1 - t * t), as the tanh activation. */
export function tanhGrad(dy: number, t: number): number {
  return mul(dy, sub(1, mul(t, t)));
}
