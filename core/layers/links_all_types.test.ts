/**
 * Residual and remote links work with every registered layer type.
 *
 * The test is generic over layerKinds(): every registered kind must have an example below (a
 * kind without one fails, and a kind still answering UNSUPPORTED fails when its example is
 * built). For each example block B (the kind under test, possibly after helper layers):
 *   residual   [...B, residual]: y = B's last layer output + that layer's input (bit for bit),
 *              when that layer keeps its shape; otherwise the residual is rejected with
 *              SHAPE_MISMATCH naming it, and [...B, A, residual] (A a shape-keeping dense on B's
 *              output) is used, so B's output receives a skip gradient. Gradient-checked.
 *   target     B's output read through a remote link: [...B, D, A(remote -> B's last), residual],
 *              D left dead. Must equal the flat [...B, A, residual] (same weights) bit for bit:
 *              output, input gradient and every parameter gradient; D's gradients stay 0.
 *              Gradient-checked.
 *   linker     the kind as the linking layer: [P, D, ...B (first remote -> P)], equal to
 *              [P, ...B] bit for bit (skipped for kinds that read token ids, which no layer
 *              produces).
 */
import { describe, expect, test } from 'vitest';
import type { JsonObject } from '../fields.ts';
import { add } from '../math/index.ts';
import { Network } from '../network.ts';
import { Prng } from '../prng.ts';
import { Tensor, type TensorData } from '../tensor.ts';
import { gradcheck, randomTensor } from '../../tests/helpers/gradcheck.ts';
import { bits, errorOf } from '../../tests/helpers/reference64.ts';
import { layerKinds } from './registry.ts';

type Cfg = JsonObject;
interface Example {
  name: string;
  /** The block; the kind under test is one of its layers. */
  layers: Cfg[];
  /** Per-sample input shape. */
  input: number[];
  /** Token-id input: ids uniform in [0, vocab). */
  vocab?: number;
}

const dense = (i: number, o: number, activation = 'tanh'): Cfg => ({ type: 'dense', input_height: i, output_height: o, activation });

/** One or more examples per registered kind (by canonical type name). */
const EXAMPLES: Record<string, Example[]> = {
  dense: [{ name: 'dense', layers: [dense(4, 4)], input: [2, 4] }, { name: 'dense 3->5', layers: [dense(3, 5, 'gelu')], input: [3] }],
  layer_norm: [{ name: 'layer_norm', layers: [{ type: 'layer_norm', norm_size: 4 }], input: [2, 4] }],
  rms_norm: [{ name: 'rms_norm', layers: [{ type: 'rms_norm', norm_size: 3 }], input: [3] }],
  softmax: [
    { name: 'softmax', layers: [{ type: 'softmax' }], input: [2, 3] },
    { name: 'softmax entmax', layers: [{ type: 'softmax', softmax_type: 'entmax' }], input: [5] },
    { name: 'softmax hierarchical', layers: [{ type: 'softmax', hierarchy_levels: [2, 2] }], input: [6] },
  ],
  residual: [{ name: 'residual', layers: [dense(4, 4), { type: 'residual' }], input: [4] }],
  sequential: [{ name: 'sequential', layers: [{ type: 'sequential', layers: [dense(4, 4, 'silu'), { type: 'residual' }, { type: 'layer_norm', norm_size: 4 }] }], input: [4] }],
  parallel: [
    { name: 'parallel add', layers: [{ type: 'parallel', branches: [dense(4, 4), dense(4, 4, 'sigmoid')], combine_mode: 'add' }], input: [4] },
    { name: 'parallel filter', layers: [{ type: 'parallel', branches: [dense(3, 3), { type: 'layer_norm', norm_size: 3 }], combine_mode: 'filter' }], input: [2, 3] },
    { name: 'parallel grid_scatter', layers: [{ type: 'parallel', branches: [dense(3, 2), dense(3, 1)], combine_mode: 'grid_scatter', grid_output_rows: 1, grid_output_cols: 2 }], input: [3] },
  ],
  conv1d: [{ name: 'conv1d', layers: [{ type: 'conv1d', input_channels: 2, filters: 2, kernel_size: 3, padding: 1 }], input: [2, 5] }],
  conv2d: [{ name: 'conv2d', layers: [{ type: 'conv2d', input_channels: 2, filters: 2, kernel_size: 3, padding: 1 }], input: [2, 3, 4] }],
  conv3d: [{ name: 'conv3d', layers: [{ type: 'conv3d', input_channels: 1, filters: 1, kernel_size: 3, padding: 1 }], input: [1, 3, 2, 3] }],
  conv_transposed1d: [{ name: 'conv_transposed1d', layers: [{ type: 'conv_transposed1d', input_channels: 2, filters: 2, kernel_size: 3, padding: 1 }], input: [2, 5] }],
  conv_transposed2d: [{ name: 'conv_transposed2d', layers: [{ type: 'conv_transposed2d', input_channels: 2, filters: 2, kernel_size: 3, padding: 1 }], input: [2, 3, 4] }],
  conv_transposed3d: [{ name: 'conv_transposed3d', layers: [{ type: 'conv_transposed3d', input_channels: 1, filters: 1, kernel_size: 3, padding: 1 }], input: [1, 3, 2, 3] }],
  rnn: [{ name: 'rnn', layers: [{ type: 'rnn', input_size: 3, hidden_size: 3 }], input: [4, 3] }],
  lstm: [{ name: 'lstm', layers: [{ type: 'lstm', input_size: 3, hidden_size: 3 }], input: [4, 3] }],
  gru: [{ name: 'gru', layers: [{ type: 'gru', input_size: 3, hidden_size: 3 }], input: [4, 3] }],
  multi_head_attention: [{ name: 'multi_head_attention', layers: [{ type: 'multi_head_attention', d_model: 4, num_heads: 2 }], input: [3, 4] }],
  swiglu: [{ name: 'swiglu', layers: [{ type: 'swiglu', input_height: 4, output_height: 6 }], input: [2, 4] }],
  embedding: [{ name: 'embedding', layers: [{ type: 'embedding', vocab_size: 7, embedding_dim: 3 }], input: [5], vocab: 7 }],
  kmeans: [
    { name: 'kmeans probabilities', layers: [{ type: 'kmeans', num_clusters: 4 }], input: [2, 4] },
    { name: 'kmeans features', layers: [{ type: 'kmeans', num_clusters: 3, output_mode: 'features' }], input: [3] },
  ],
};

const last = (s: readonly number[]): number => (s.length ? s[s.length - 1] : 1);
/**
 * gradcheck options for an example. Token ids are perturbed too (the harness checks the input):
 * an Int32Array stores v - h as v - 1, a jump the harness sees as a kink with the analytic 0
 * between the one-sided slopes; allow those (the parameters are still checked strictly).
 */
const gcOpts = (ex: Example, seed: number, input: Tensor<TensorData>) => ({ seed, batch: 2, input: input as Tensor, maxPerTensor: 16, ...(ex.vocab !== undefined ? { maxKinkedFraction: 0.6 } : {}) });

function makeInput(ex: Example, batch: number, seed: number): Tensor<TensorData> {
  const rng = new Prng(seed).fork('input');
  if (ex.vocab !== undefined) {
    const n = batch * ex.input.reduce((a, b) => a * b, 1);
    return new Tensor([batch, ...ex.input], Int32Array.from({ length: n }, () => rng.int(ex.vocab!)));
  }
  return randomTensor([batch, ...ex.input], rng, [-1.5, 1.5]);
}

/** Layers placed at l = 0, 1, ... of one cell; `links[k] = t` gives layer k a remote link to l = t. */
function grid(input: number[], layers: Cfg[], links: Record<number, number> = {}): Cfg {
  return {
    input_shape: input,
    layers_per_cell: layers.length,
    layers: layers.map((l, k) => (k in links ? { ...l, remote_link: { z: 0, y: 0, x: 0, l: links[k] } } : l)),
  };
}

/** Copy weights into `to` from `from`, where `to`'s slot i is `from`'s slot map(i). */
function transplant(from: Network, to: Network, map: (i: number) => number): void {
  const src = from.getWeights();
  const w = new Map<string, Tensor>();
  for (const p of to.parameters()) {
    const m = /^layers\.(\d+)\.(.*)$/.exec(p.name)!;
    const name = `layers.${map(Number(m[1]))}.${m[2]}`;
    const t = src.get(name);
    if (!t) throw new Error(`no ${name} for ${p.name}`);
    w.set(p.name, t);
  }
  to.setWeights(w, { complete: true });
}

function run(net: Network, x: Tensor<TensorData>, seed: number) {
  net.zeroGrad();
  const tape = net.forwardTape(x as Tensor, { training: false, seed: 0 });
  const y = tape.outputs[tape.outputs.length - 1];
  const dy = randomTensor(y.shape, new Prng(seed).fork('dy'), [-1, 1]);
  const dx = net.backward(tape, dy);
  return { tape, y: y.data, dx: dx.data as Float32Array, grads: new Map(net.parameters().map((p) => [p.name, p.param.grad.data.slice()])) };
}

function expectSameRun(a: ReturnType<typeof run>, b: ReturnType<typeof run>, map: (i: number) => number, intInput: boolean): void {
  expect(bits(a.y)).toEqual(bits(b.y));
  if (!intInput) expect(bits(a.dx)).toEqual(bits(b.dx));
  for (const [name, g] of a.grads) {
    const m = /^layers\.(\d+)\.(.*)$/.exec(name)!;
    const other = b.grads.get(`layers.${map(Number(m[1]))}.${m[2]}`)!;
    expect(bits(g), name).toEqual(bits(other));
  }
}

describe('residual and remote links with every layer type', () => {
  test('every registered kind has an example', () => {
    const missing = layerKinds().map((k) => k.type).filter((t) => !EXAMPLES[t]);
    expect(missing, `add examples for: ${missing.join(', ')}`).toEqual([]);
  });

  for (const kind of layerKinds()) {
    const examples = EXAMPLES[kind.type] ?? [];
    if (examples.length === 0) {
      test(`${kind.type}: has an example`, () => {
        expect.fail(`no example for layer type ${kind.type}; add one to EXAMPLES`);
      });
    }
    for (const ex of examples) {
      const intInput = ex.vocab !== undefined;
      const b = ex.layers.length;

      test(`${ex.name}: residual after it`, () => {
        const block = Network.fromJSON(grid(ex.input, ex.layers), { seed: 1 });
        const lastLayer = block.nodes[b - 1].layer;
        const out = block.outputShape;
        const x = makeInput(ex, 2, 1);
        if (lastLayer.inputShape.length === out.length && lastLayer.inputShape.every((d, i) => d === out[i])) {
          const net = Network.fromJSON(grid(ex.input, [...ex.layers, { type: 'residual' }]), { seed: 1 });
          expect(net.outputShape).toEqual(out);
          const { tape, y } = run(net, x, 1);
          const before = tape.outputs[b - 1].data, skip = tape.inputs[b - 1].data as Float32Array;
          expect(bits(y)).toEqual(bits(Float32Array.from(before, (v, i) => add(v, skip[i]))));
          const r = gradcheck(net, gcOpts(ex, 1, x));
          expect(r.ok, r.report()).toBe(true);
        } else {
          const e = errorOf(() => Network.fromJSON(grid(ex.input, [...ex.layers, { type: 'residual' }])));
          expect(e.code).toBe('SHAPE_MISMATCH');
          expect(e.message).toContain(`layers[${b}]`);
          expect(e.message).toContain('residual');
          const n = last(out);
          const net = Network.fromJSON(grid(ex.input, [...ex.layers, dense(n, n), { type: 'residual' }]), { seed: 1 });
          const r = gradcheck(net, gcOpts(ex, 1, x));
          expect(r.ok, r.report()).toBe(true);
        }
      });

      test(`${ex.name}: as a remote-link target`, () => {
        const out = Network.fromJSON(grid(ex.input, ex.layers)).outputShape;
        const n = last(out);
        const linked = Network.fromJSON(grid(ex.input, [...ex.layers, dense(n, n, 'relu'), dense(n, n), { type: 'residual' }], { [b + 1]: b - 1 }), { seed: 2 });
        const flat = Network.fromJSON(grid(ex.input, [...ex.layers, dense(n, n), { type: 'residual' }]), { seed: 3 });
        const toLinked = (i: number) => (i < b ? i : i + 1);
        transplant(linked, flat, toLinked);
        const x = makeInput(ex, 3, 2);
        const a = run(flat, x, 2), c = run(linked, x, 2);
        expectSameRun(a, c, toLinked, intInput);
        for (const [name, g] of c.grads) if (name.startsWith(`layers.${b}.`)) expect(g.every((v) => v === 0), `${name} (dead layer) has a gradient`).toBe(true);
        const r = gradcheck(linked, gcOpts(ex, 2, makeInput(ex, 2, 3)));
        expect(r.ok, r.report()).toBe(true);
      });

      test(`${ex.name}: as the remote-linking layer`, () => {
        if (intInput) return; // reads token ids: no layer produces them, so it can only read the network input
        const m = last(ex.input);
        const pre = dense(m, m);
        const linked = Network.fromJSON(grid(ex.input, [pre, dense(m, m, 'relu'), ...ex.layers], { 2: 0 }), { seed: 4 });
        const flat = Network.fromJSON(grid(ex.input, [pre, ...ex.layers]), { seed: 5 });
        const toLinked = (i: number) => (i === 0 ? 0 : i + 1);
        transplant(linked, flat, toLinked);
        const x = makeInput(ex, 2, 4);
        expectSameRun(run(flat, x, 4), run(linked, x, 4), toLinked, false);
      });
    }
  }

  test('a remote link to a later or missing position fails validation, naming the layer and the field', () => {
    const later = errorOf(() => Network.fromJSON(grid([4], [dense(4, 4), dense(4, 4), dense(4, 4)], { 1: 2 })));
    expect(later.code).toBe('CONFIG_INVALID');
    expect(later.message).toMatch(/layers\[1\] \(.*dense\)\.remote_link: .*earlier position/);
    const missing = errorOf(() => Network.fromJSON(grid([4], [dense(4, 4), dense(4, 4)], { 1: 7 })));
    expect(missing.code).toBe('CONFIG_INVALID');
    expect(missing.message).toMatch(/layers\[1\] \(z0 y0 x0 l1.*\)\.remote_link/);
  });
});
