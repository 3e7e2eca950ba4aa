/**
 * conv1d/2d/3d and conv_transposed1d/2d/3d: config, shapes, validation, forward and backward
 * against float64 formulas written here (independent of kernels/conv.ts), the canonical f32
 * order bit for bit (a scalar re-statement of the order documented in kernels/conv.ts), and
 * determinism. Gradient checks are in conv_grad.test.ts, PyTorch fixtures in conv.torch.test.ts.
 */
import { describe, expect, test } from 'vitest';
import { Network } from '../network.ts';
import { Prng } from '../prng.ts';
import { Tensor } from '../tensor.ts';
import { add as add32, mul as mul32 } from '../math/index.ts';
import { randomTensor, randomizeParams } from '../../tests/helpers/gradcheck.ts';
import { act64, bits, closeness, errorOf } from '../../tests/helpers/reference64.ts';

type Json = Record<string, unknown>;

/** Everything the references need, computed here from the config (not read from the layer). */
interface Geo {
  transposed: boolean;
  C: number;
  F: number;
  inSp: number[];
  outSp: number[];
  k: number[];
  s: number[];
  p: number[];
  d: number[];
}

const perDim = (v: unknown, r: number, def: number): number[] => (v === undefined ? new Array(r).fill(def) : Array.isArray(v) ? v : new Array(r).fill(v));

function geo(type: string, cfg: Json, inSp: number[]): Geo {
  const r = inSp.length;
  const transposed = type.startsWith('conv_transposed');
  const k = perDim(cfg.kernel_size, r, 0), s = perDim(cfg.stride, r, 1), p = perDim(cfg.padding, r, 0), d = perDim(cfg.dilation, r, 1);
  const op = perDim(cfg.output_padding, r, 0);
  const outSp = inSp.map((n, i) => (transposed ? (n - 1) * s[i] - 2 * p[i] + d[i] * (k[i] - 1) + op[i] + 1 : Math.floor((n + 2 * p[i] - d[i] * (k[i] - 1) - 1) / s[i]) + 1));
  return { transposed, C: cfg.input_channels as number, F: cfg.filters as number, inSp, outSp, k, s, p, d };
}

const volume = (a: number[]): number => a.reduce((x, y) => x * y, 1);
/** All multi-indices of `dims` in row-major order. */
function* indices(dims: number[]): Generator<number[]> {
  const n = volume(dims);
  for (let flat = 0; flat < n; flat++) {
    const idx = new Array(dims.length);
    let r = flat;
    for (let i = dims.length - 1; i >= 0; i--) {
      idx[i] = r % dims[i];
      r = Math.floor(r / dims[i]);
    }
    yield idx;
  }
}
const flatOf = (idx: number[], dims: number[]): number => idx.reduce((a, v, i) => a * dims[i] + v, 0);

/**
 * Float64 reference: forward y (pre-activation), and for a given dy the gradients dx, dW, db,
 * by enumerating every (narrow position q, kernel offset k) pair whose wide position
 * t = q*s - p + k*d is inside the wide side. conv: narrow = output; transposed: narrow = input.
 */
function ref64(g: Geo, x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number> | null, batch: number, dy?: ArrayLike<number>) {
  const { C, F, k } = g;
  const narrow = g.transposed ? g.inSp : g.outSp;
  const wide = g.transposed ? g.outSp : g.inSp;
  const inP = volume(g.inSp), outP = volume(g.outSp), K = volume(k);
  const y = new Float64Array(batch * F * outP);
  const dx = new Float64Array(batch * C * inP);
  const dW = new Float64Array(C * F * K);
  const db = new Float64Array(F);
  const pairs: [number, number, number][] = []; // [q flat, k flat, t flat]
  for (const q of indices(narrow)) {
    for (const kk of indices(k)) {
      const t = q.map((v, i) => v * g.s[i] - g.p[i] + kk[i] * g.d[i]);
      if (t.every((v, i) => v >= 0 && v < wide[i])) pairs.push([flatOf(q, narrow), flatOf(kk, k), flatOf(t, wide)]);
    }
  }
  for (let n = 0; n < batch; n++) {
    for (let f = 0; f < F; f++) {
      for (let c = 0; c < C; c++) {
        const wi = (kf: number) => (g.transposed ? (c * F + f) * K + kf : (f * C + c) * K + kf);
        for (const [q, kf, t] of pairs) {
          const [xi, yi] = g.transposed ? [q, t] : [t, q];
          y[(n * F + f) * outP + yi] += w[wi(kf)] * x[(n * C + c) * inP + xi];
          if (dy) {
            const d = dy[(n * F + f) * outP + yi];
            dx[(n * C + c) * inP + xi] += w[wi(kf)] * d;
            dW[wi(kf)] += d * x[(n * C + c) * inP + xi];
          }
        }
      }
      for (let o = 0; o < outP; o++) {
        if (b) y[(n * F + f) * outP + o] += b[f];
        if (dy) db[f] += dy[(n * F + f) * outP + o];
      }
    }
  }
  return { y, dx, dW, db };
}

/**
 * The canonical f32 order of kernels/conv.ts, restated as one scalar loop per result with
 * Heddle's add/mul (each rounded and flushed). Used to check the kernel bit for bit.
 */
function canonical32(g: Geo, x: Float32Array, w: Float32Array, b: Float32Array | null, batch: number, dy: Float32Array, flush = true) {
  const add = flush ? add32 : (a: number, c: number) => Math.fround(a + c);
  const mul = flush ? mul32 : (a: number, c: number) => Math.fround(a * c);
  const { C, F, k } = g;
  const narrow = g.transposed ? g.inSp : g.outSp;
  const wide = g.transposed ? g.outSp : g.inSp;
  const inP = volume(g.inSp), outP = volume(g.outSp), K = volume(k);
  const kOffs = [...indices(k)];
  const tOf = (q: number[], kk: number[]): number | null => {
    const t = q.map((v, i) => v * g.s[i] - g.p[i] + kk[i] * g.d[i]);
    return t.every((v, i) => v >= 0 && v < wide[i]) ? flatOf(t, wide) : null;
  };
  const qOf = (t: number[], kk: number[]): number | null => {
    const q = t.map((v, i) => (v + g.p[i] - kk[i] * g.d[i]) / g.s[i]);
    return q.every((v, i) => Number.isInteger(v) && v >= 0 && v < narrow[i]) ? flatOf(q, narrow) : null;
  };
  const W = (a: number, bb: number, kf: number) => w[(a * (g.transposed ? F : C) + bb) * K + kf]; // w[dim0 a, dim1 bb]
  const y = new Float32Array(batch * F * outP);
  const dx = new Float32Array(batch * C * inP);
  const dW = new Float32Array(C * F * K);
  const db = new Float32Array(F);
  // forward
  for (let n = 0; n < batch; n++) {
    for (let f = 0; f < F; f++) {
      for (const o of indices(g.outSp)) {
        let acc = 0;
        for (let c = 0; c < C; c++) {
          kOffs.forEach((kk, kf) => {
            const src = g.transposed ? qOf(o, kk) : tOf(o, kk);
            if (src === null) return;
            acc = add(acc, mul(g.transposed ? W(c, f, kf) : W(f, c, kf), x[(n * C + c) * inP + src]));
          });
        }
        y[(n * F + f) * outP + flatOf(o, g.outSp)] = b ? add(acc, b[f]) : acc;
      }
    }
  }
  // dx: sum over f ascending, then k ascending
  for (let n = 0; n < batch; n++) {
    for (let c = 0; c < C; c++) {
      for (const i of indices(g.inSp)) {
        let acc = 0;
        for (let f = 0; f < F; f++) {
          kOffs.forEach((kk, kf) => {
            const o = g.transposed ? tOf(i, kk) : qOf(i, kk);
            if (o === null) return;
            acc = add(acc, mul(g.transposed ? W(c, f, kf) : W(f, c, kf), dy[(n * F + f) * outP + o]));
          });
        }
        dx[(n * C + c) * inP + flatOf(i, g.inSp)] = acc;
      }
    }
  }
  // dW: sum over n ascending, then narrow positions q ascending
  const [A, B] = g.transposed ? [C, F] : [F, C];
  for (let a = 0; a < A; a++) {
    for (let bb = 0; bb < B; bb++) {
      kOffs.forEach((kk, kf) => {
        let acc = 0;
        for (let n = 0; n < batch; n++) {
          for (const q of indices(narrow)) {
            const t = tOf(q, kk);
            if (t === null) continue;
            const qf = flatOf(q, narrow);
            // conv: dy[n, a=f, q] * x[n, bb=c, t]; transposed: x[n, a=c, q] * dy[n, bb=f, t]
            const v = g.transposed ? mul(x[(n * C + a) * inP + qf], dy[(n * F + bb) * outP + t]) : mul(dy[(n * F + a) * outP + qf], x[(n * C + bb) * inP + t]);
            acc = add(acc, v);
          }
        }
        dW[(a * B + bb) * K + kf] = acc;
      });
    }
  }
  for (let f = 0; f < F; f++) {
    let acc = 0;
    for (let n = 0; n < batch; n++) for (let o = 0; o < outP; o++) acc = add(acc, dy[(n * F + f) * outP + o]);
    db[f] = acc;
  }
  return { y, dx, dW, db };
}

const spatialNames = (r: number): string[] => (r === 1 ? ['input_height'] : r === 2 ? ['input_height', 'input_width'] : ['input_depth', 'input_height', 'input_width']);

/** A valid random config of `type` with rank r: sizes 1..6, odd sizes and size 1 included. */
function randomCase(type: string, rng: Prng): { cfg: Json; inSp: number[] } {
  const r = Number(type.at(-2));
  const transposed = type.startsWith('conv_transposed');
  const k: number[] = [], s: number[] = [], p: number[] = [], d: number[] = [], op: number[] = [], inSp: number[] = [];
  const maxK = r === 3 ? 2 : 3;
  for (let i = 0; i < r; i++) {
    k.push(1 + rng.int(maxK));
    s.push(1 + rng.int(3));
    d.push(1 + rng.int(2));
    const span = d[i] * (k[i] - 1) + 1;
    if (transposed) {
      const n = 1 + rng.int(r === 3 ? 3 : 4);
      inSp.push(n);
      op.push(rng.int(Math.max(s[i], d[i])));
      let pad = rng.int(3);
      while (pad > 0 && (n - 1) * s[i] - 2 * pad + span + op[i] < 1) pad--;
      p.push(pad);
    } else {
      const pad = rng.int(3);
      p.push(pad);
      inSp.push(Math.max(1, span - 2 * pad) + rng.int(r === 3 ? 3 : 5));
    }
  }
  const cfg: Json = { type, input_channels: 1 + rng.int(3), filters: 1 + rng.int(3), kernel_size: k, stride: s, padding: p, dilation: d, bias: rng.int(3) > 0 };
  if (transposed) cfg.output_padding = op;
  spatialNames(r).forEach((n, i) => (cfg[n] = inSp[i]));
  return { cfg, inSp };
}

const TYPES = ['conv1d', 'conv2d', 'conv3d', 'conv_transposed1d', 'conv_transposed2d', 'conv_transposed3d'];

function setup(cfg: Json, inSp: number[], batch: number, seed: number) {
  const net = Network.fromJSON({ input_shape: [cfg.input_channels as number, ...inSp], layers: [cfg] }, { seed });
  randomizeParams(net, seed, [-1, 1]);
  const x = randomTensor([batch, ...net.inputShape], new Prng(seed).fork('x'), [-2, 2]);
  const dy = randomTensor([batch, ...net.outputShape], new Prng(seed).fork('dy'), [-1, 1]);
  const ps = net.parameters().map((q) => q.param);
  return { net, x, dy, w: ps[0].value.data, b: ps.length > 1 ? ps[1].value.data : null, ps };
}

function runBackward(net: Network, x: Tensor, dy: Tensor) {
  net.zeroGrad();
  const tape = net.forwardTape(x, { training: false, seed: 0 });
  const dx = net.backward(tape, dy);
  const ps = net.parameters().map((q) => q.param.grad.data);
  return { y: tape.outputs[tape.outputs.length - 1].data, dx: dx.data, dW: ps[0], db: ps.length > 1 ? ps[1] : null };
}

describe('conv: config and shapes', () => {
  test('conv2d defaults, normalized config, parameter names and shapes', () => {
    const net = Network.fromJSON({ layers: [{ type: 'conv2d', input_channels: 3, filters: 4, kernel_size: 3, input_height: 5, input_width: 7 }] });
    expect(net.nodes[0].layer.config).toEqual({
      type: 'conv2d', input_channels: 3, filters: 4, kernel_size: [3, 3], stride: [1, 1], padding: [0, 0], dilation: [1, 1],
      input_height: 5, input_width: 7, activation: 'linear', bias: true,
    });
    expect(net.inputShape).toEqual([3, 5, 7]);
    expect(net.outputShape).toEqual([4, 3, 5]);
    expect(net.parameters().map((p) => [p.name, p.param.value.shape])).toEqual([['layers.0.weight', [4, 3, 3, 3]], ['layers.0.bias', [4]]]);
    // kaiming_uniform: |w| <= sqrt(6 / (3*3*3)); bias zeros
    const bound = Math.sqrt(6 / 27);
    expect(net.parameters()[0].param.value.data.every((v) => Math.abs(v) <= bound)).toBe(true);
    expect(net.parameters()[0].param.value.data.some((v) => Math.abs(v) > bound / 2)).toBe(true);
    expect(Array.from(net.parameters()[1].param.value.data)).toEqual([0, 0, 0, 0]);
  });

  test('transposed weight is [in, out, k...]; output_padding normalized; fan_in = out * prod(k)', () => {
    const net = Network.fromJSON({ layers: [{ type: 'conv_transposed3d', input_channels: 2, filters: 5, kernel_size: [1, 2, 3], stride: 2, output_padding: 1, input_depth: 2, input_height: 3, input_width: 4, bias: false }] });
    expect(net.nodes[0].layer.config.output_padding).toEqual([1, 1, 1]);
    expect(net.parameters().map((p) => [p.name, p.param.value.shape])).toEqual([['layers.0.weight', [2, 5, 1, 2, 3]]]);
    expect(net.outputShape).toEqual([5, 4, 7, 10]);
    expect(net.parameters()[0].param.value.data.every((v) => Math.abs(v) <= Math.sqrt(6 / 30))).toBe(true);
  });

  test("Loom's conv1d fields (conv1d_*) and the dense -> conv1d example (2048 = 64 channels x 32)", () => {
    const net = Network.fromJSON({
      layers: [
        { type: 'dense', activation: 'leaky_relu', input_height: 2048, output_height: 2048 },
        { type: 'conv1d', conv1d_in_channels: 64, conv1d_filters: 64, conv1d_kernel_size: 3, conv1d_stride: 1, conv1d_padding: 1 },
        { type: 'conv1d', conv1d_in_channels: 64, conv1d_filters: 64, conv1d_kernel_size: 3, conv1d_stride: 1, conv1d_padding: 1 },
        { type: 'dense', activation: 'sigmoid', input_height: 2048, output_height: 2 },
      ],
    });
    expect(net.nodes[1].layer.inputShape).toEqual([2048]);
    expect(net.nodes[1].layer.outputShape).toEqual([64, 32]);
    expect(net.nodes[2].layer.inputShape).toEqual([64, 32]);
    expect(net.outputShape).toEqual([2]);
    expect(net.nodes[1].layer.config).toMatchObject({ input_channels: 64, filters: 64, kernel_size: [3], stride: [1], padding: [1] });
  });

  test("Loom's zeros for unset fields yield to the conv1d_* spellings", () => {
    const net = Network.fromJSON({
      input_shape: [32],
      layers: [{
        type: 'conv1d', input_channels: 0, filters: 0, kernel_size: 0, stride: 0, padding: 0, input_height: 0, input_width: 0, input_depth: 0, output_padding: 0,
        conv1d_in_channels: 4, conv1d_filters: 2, conv1d_kernel_size: 3, conv1d_stride: 1, conv1d_padding: 1, output_height: 0,
      }],
    });
    expect(net.nodes[0].layer.config).toEqual({ type: 'conv1d', input_channels: 4, filters: 2, kernel_size: [3], stride: [1], padding: [1], dilation: [1], activation: 'linear', bias: true });
    expect(net.outputShape).toEqual([2, 8]);
    // two nonzero spellings that disagree stay an error
    expect(errorOf(() => Network.fromJSON({ input_shape: [32], layers: [{ type: 'conv1d', padding: 2, conv1d_padding: 1, input_channels: 4, filters: 1, kernel_size: 1 }] })).message).toMatch(/padding.*disagree/);
  });

  test("Loom's conv2d example: dense 2048 -> conv2d 8ch 16x16 (explicit sizes), Loom's 0 = unset", () => {
    const net = Network.fromJSON({
      layers: [
        { type: 'dense', input_height: 2048, output_height: 2048 },
        { type: 'Conv2D', input_channels: 8, filters: 8, kernel_size: 3, stride: 1, padding: 1, input_height: 16, input_width: 16, input_depth: 0 },
        { type: 'conv2d', input_channels: 8, filters: 8, kernel_size: 3, stride: 1, padding: 1, input_height: 16, input_width: 16 },
        { type: 'dense', input_height: 2048, output_height: 2 },
      ],
    });
    expect(net.nodes[1].layer.outputShape).toEqual([8, 16, 16]);
    expect(net.nodes[1].layer.config.type).toBe('conv2d');
    expect(net.nodes[1].layer.config.input_depth).toBeUndefined();
  });

  test('aliases: in_channels, out_channels, input_length, type names', () => {
    const a = Network.fromJSON({ input_shape: [2, 9], layers: [{ type: 'cnn1', in_channels: 2, out_channels: 3, kernel_size: [4], input_length: 9 }] });
    expect(a.outputShape).toEqual([3, 6]);
    expect(a.nodes[0].layer.config).toMatchObject({ type: 'conv1d', input_channels: 2, filters: 3, input_height: 9 });
    for (const [alias, type] of [['cnn2', 'conv2d'], ['cnn3', 'conv3d'], ['conv_transpose1d', 'conv_transposed1d'], ['ConvTransposed2D', 'conv_transposed2d'], ['conv_transpose3d', 'conv_transposed3d']]) {
      const r = Number(type.at(-2));
      const net = Network.fromJSON({ input_shape: [1, ...new Array(r).fill(3)], layers: [{ type: alias, input_channels: 1, filters: 1, kernel_size: 1 }] });
      expect(net.nodes[0].layer.type).toBe(type);
    }
  });

  test('spatial sizes derived from the incoming shape', () => {
    const shape = (inputShape: number[], layer: Json) => {
      const net = Network.fromJSON({ input_shape: inputShape, layers: [layer] });
      return [net.nodes[0].layer.inputShape, net.outputShape];
    };
    // [C, L] used directly; flat [C*L] reshaped
    expect(shape([3, 10], { type: 'conv1d', input_channels: 3, filters: 2, kernel_size: 3 })).toEqual([[3, 10], [2, 8]]);
    expect(shape([30], { type: 'conv1d', input_channels: 3, filters: 2, kernel_size: 3 })).toEqual([[30], [2, 8]]);
    // 2-d: one absent size derived from a flat input; a structured input used as is
    expect(shape([60], { type: 'conv2d', input_channels: 3, filters: 1, kernel_size: 1, input_height: 4 })).toEqual([[60], [1, 4, 5]]);
    expect(shape([60], { type: 'conv2d', input_channels: 3, filters: 1, kernel_size: 1, input_width: 4 })).toEqual([[60], [1, 5, 4]]);
    expect(shape([3, 4, 5], { type: 'conv2d', input_channels: 3, filters: 1, kernel_size: 1 })).toEqual([[3, 4, 5], [1, 4, 5]]);
    // [C, H, W] -> conv1d with C channels: spatial dims flattened to L
    expect(shape([3, 4, 5], { type: 'conv1d', input_channels: 3, filters: 1, kernel_size: 2 })).toEqual([[3, 4, 5], [1, 19]]);
    // 3-d from [C, D, H, W], and from flat with D and H given
    expect(shape([2, 3, 4, 5], { type: 'conv3d', input_channels: 2, filters: 1, kernel_size: 1 })).toEqual([[2, 3, 4, 5], [1, 3, 4, 5]]);
    expect(shape([120], { type: 'conv_transposed3d', input_channels: 2, filters: 1, kernel_size: 1, input_depth: 3, input_height: 4 })).toEqual([[120], [1, 3, 4, 5]]);
    // inference: the first layer with every spatial size given needs no input_shape
    expect(Network.fromJSON({ layers: [{ type: 'conv3d', input_channels: 2, filters: 1, kernel_size: 1, input_depth: 1, input_height: 2, input_width: 3 }] }).inputShape).toEqual([2, 1, 2, 3]);
  });

  test('the canonical config round-trips and describes itself', () => {
    const cfg = {
      input_shape: [24],
      layers: [
        { type: 'dense', input_height: 24, output_height: 24 },
        { type: 'conv1d', conv1d_in_channels: 3, conv1d_filters: 2, conv1d_kernel_size: 2, activation: 'tanh' },
        { type: 'conv_transposed2d', input_channels: 2, filters: 1, kernel_size: [2, 1], stride: 2, output_padding: [1, 0], input_height: 7, bias: false },
      ],
    };
    const a = Network.fromJSON(cfg, { seed: 5 });
    const b = Network.fromJSON(a.configJSON(), { seed: 5 });
    expect(b.configJSON()).toEqual(a.configJSON());
    expect(b.outputShape).toEqual(a.outputShape);
    expect(a.outputShape).toEqual([1, 15, 1]);
    expect(b.parameters().map((p) => Array.from(p.param.value.data))).toEqual(a.parameters().map((p) => Array.from(p.param.value.data)));
    const bp = a.describe();
    expect(bp.layers.map((l) => [l.type, l.input_shape, l.output_shape, l.parameters])).toEqual([
      ['dense', [24], [24], 600],
      ['conv1d', [24], [2, 7], 14],
      ['conv_transposed2d', [2, 7], [1, 15, 1], 4],
    ]);
  });

  test('conv2d -> dense via the flattened sample', () => {
    const net = Network.fromJSON({ input_shape: [2, 5, 5], layers: [{ type: 'conv2d', input_channels: 2, filters: 3, kernel_size: 3, activation: 'relu' }, { type: 'dense', input_height: 27, output_height: 4 }] });
    expect(net.nodes[1].layer.inputShape).toEqual([3, 3, 3]);
    expect(net.outputShape).toEqual([4]);
  });
});

describe('conv: validation names the layer and the field, before any compute', () => {
  const cases: [string, Json[], number[] | undefined, string, string][] = [
    // [what, layers, input_shape, code, field]
    ['missing input_channels', [{ type: 'conv2d', filters: 2, kernel_size: 3 }], [2, 4, 4], 'CONFIG_INVALID', 'input_channels'],
    ['zero filters', [{ type: 'conv2d', input_channels: 2, filters: 0, kernel_size: 3 }], [2, 4, 4], 'CONFIG_INVALID', 'filters'],
    ['zero kernel in one dim', [{ type: 'conv2d', input_channels: 2, filters: 2, kernel_size: [3, 0] }], [2, 4, 4], 'CONFIG_INVALID', 'kernel_size[1]'],
    ['missing kernel', [{ type: 'conv1d', input_channels: 2, filters: 2 }], [2, 4], 'CONFIG_INVALID', 'kernel_size'],
    ['wrong per-dim length', [{ type: 'conv3d', input_channels: 1, filters: 1, kernel_size: [1, 1] }], [1, 2, 2, 2], 'CONFIG_INVALID', 'kernel_size'],
    ['zero stride', [{ type: 'conv1d', input_channels: 1, filters: 1, kernel_size: 1, stride: 0 }], [1, 4], 'CONFIG_INVALID', 'stride'],
    ['negative padding', [{ type: 'conv1d', input_channels: 1, filters: 1, kernel_size: 1, conv1d_padding: -1 }], [1, 4], 'CONFIG_INVALID', 'conv1d_padding'],
    ['fractional dilation', [{ type: 'conv2d', input_channels: 1, filters: 1, kernel_size: 1, dilation: [1, 1.5] }], [1, 4, 4], 'CONFIG_INVALID', 'dilation[1]'],
    ['zero dilation', [{ type: 'conv2d', input_channels: 1, filters: 1, kernel_size: 1, dilation: 0 }], [1, 4, 4], 'CONFIG_INVALID', 'dilation'],
    ['negative size', [{ type: 'conv2d', input_channels: 1, filters: 1, kernel_size: 1, input_height: -2 }], [1, 4, 4], 'CONFIG_INVALID', 'input_height'],
    ['kernel larger than the padded input', [{ type: 'conv2d', input_channels: 1, filters: 1, kernel_size: [3, 6], padding: [0, 1] }], [1, 4, 3], 'CONFIG_INVALID', 'kernel_size'],
    ['dilated kernel larger than the input', [{ type: 'conv1d', input_channels: 1, filters: 1, kernel_size: 3, dilation: 3 }], [1, 6], 'CONFIG_INVALID', 'kernel_size'],
    ['channels do not match the incoming shape', [{ type: 'conv2d', input_channels: 3, filters: 1, kernel_size: 1 }], [2, 4, 4], 'SHAPE_MISMATCH', 'input_channels'],
    ['flat input not divisible by the channels', [{ type: 'conv1d', input_channels: 4, filters: 1, kernel_size: 1 }], [10], 'SHAPE_MISMATCH', 'input_channels'],
    ['flat input does not match the given sizes', [{ type: 'conv2d', input_channels: 2, filters: 1, kernel_size: 1, input_height: 3, input_width: 3 }], [20], 'SHAPE_MISMATCH', 'input_height'],
    ['absent size cannot be derived', [{ type: 'conv2d', input_channels: 2, filters: 1, kernel_size: 1, input_height: 3 }], [20], 'SHAPE_MISMATCH', 'input_width'],
    ['two absent sizes from a flat input', [{ type: 'conv3d', input_channels: 2, filters: 1, kernel_size: 1, input_depth: 2 }], [48], 'CONFIG_INVALID', 'input_height'],
    ['output_padding not below stride or dilation', [{ type: 'conv_transposed2d', input_channels: 1, filters: 1, kernel_size: 3, stride: [2, 2], output_padding: [1, 2] }], [1, 4, 4], 'CONFIG_INVALID', 'output_padding'],
    ['output_padding on a plain conv', [{ type: 'conv2d', input_channels: 1, filters: 1, kernel_size: 1, output_padding: [0, 1] }], [1, 4, 4], 'CONFIG_INVALID', 'output_padding'],
    ['transposed padding leaves no output', [{ type: 'conv_transposed1d', input_channels: 1, filters: 1, kernel_size: 2, padding: 1 }], [1, 1], 'CONFIG_INVALID', 'padding'],
    ['unknown activation', [{ type: 'conv1d', input_channels: 1, filters: 1, kernel_size: 1, activation: 'swoosh' }], [1, 4], 'CONFIG_INVALID', 'activation'],
    ['groups', [{ type: 'conv1d', input_channels: 2, filters: 2, kernel_size: 1, groups: 2 }], [2, 4], 'UNSUPPORTED', 'groups'],
    ['padding_mode', [{ type: 'conv1d', input_channels: 2, filters: 2, kernel_size: 1, padding_mode: 'reflect' }], [2, 4], 'UNSUPPORTED', 'padding_mode'],
    ['aliases disagree', [{ type: 'conv1d', input_channels: 2, conv1d_in_channels: 3, filters: 2, kernel_size: 1 }], [2, 4], 'CONFIG_INVALID', 'conv1d_in_channels'],
    ['first layer without sizes', [{ type: 'conv2d', input_channels: 2, filters: 2, kernel_size: 1, input_height: 3 }], undefined, 'CONFIG_INVALID', 'input_shape'],
  ];
  for (const [what, layers, inputShape, code, field] of cases) {
    test(what, () => {
      // As the second layer (after a pass-through-sized dense) when an input shape is given, so the error must name layers[1].
      const pre = inputShape && inputShape.length === 1 ? [{ type: 'dense', input_height: inputShape[0], output_height: inputShape[0] }] : [];
      const idx = pre.length;
      const e = errorOf(() => Network.fromJSON({ ...(inputShape ? { input_shape: inputShape } : {}), layers: [...pre, ...layers] }));
      expect(e.code, e.message).toBe(code);
      if (field !== 'input_shape') {
        expect(e.message).toContain(`layers[${idx}]`);
        expect(e.message).toMatch(/conv/);
        // FieldReader reports an alias disagreement on the object, naming both fields in the message.
        if (what === 'aliases disagree') expect(e.message).toContain(field);
        else expect(e.where.endsWith(`.${field}`), `${e.where} should end with .${field}`).toBe(true);
      } else {
        expect(e.message).toContain('input_shape');
      }
    });
  }
});

describe('conv: forward and backward vs float64', () => {
  for (const type of TYPES) {
    for (let seed = 1; seed <= 6; seed++) {
      test(`${type} random case seed ${seed}`, () => {
        const { cfg, inSp } = randomCase(type, new Prng(seed).fork(type));
        const batch = 1 + (seed % 3);
        const { net, x, dy, w, b } = setup(cfg, inSp, batch, seed);
        const g = geo(type, cfg, inSp);
        expect(net.outputShape, JSON.stringify(cfg)).toEqual([g.F, ...g.outSp]);
        const r = ref64(g, x.data, w, b, batch, dy.data);
        const got = runBackward(net, x, dy);
        const ctx = JSON.stringify(cfg);
        expect(closeness(got.y, r.y, 1e-5, 1e-5), ctx).toBeLessThanOrEqual(1);
        expect(closeness(got.dx, r.dx, 1e-5, 1e-5), ctx).toBeLessThanOrEqual(1);
        expect(closeness(got.dW, r.dW, 1e-5, 1e-5), ctx).toBeLessThanOrEqual(1);
        if (b) expect(closeness(got.db!, r.db, 1e-5, 1e-5), ctx).toBeLessThanOrEqual(1);
      });
    }
  }

  test('the random cases cover every option', () => {
    for (const transposed of [false, true]) {
      const seen = new Set<string>();
      for (const type of TYPES.filter((t) => t.startsWith('conv_transposed') === transposed)) {
        for (let seed = 1; seed <= 6; seed++) {
          const { cfg, inSp } = randomCase(type, new Prng(seed).fork(type));
          const g = geo(type, cfg, inSp);
          if (g.s.some((v) => v > 1)) seen.add('stride');
          if (g.p.some((v) => v > 0)) seen.add('padding');
          if (g.d.some((v) => v > 1)) seen.add('dilation');
          if (((cfg.output_padding as number[] | undefined) ?? []).some((v) => v > 0)) seen.add('output_padding');
          if (cfg.bias === false) seen.add('no bias');
          if (inSp.includes(1) || g.outSp.includes(1)) seen.add('size 1');
          if (inSp.some((v) => v % 2 === 1 && v > 1)) seen.add('odd size');
          if ((cfg.input_channels as number) > 1 && (cfg.filters as number) > 1) seen.add('channels');
        }
      }
      const want = ['stride', 'padding', 'dilation', 'no bias', 'size 1', 'odd size', 'channels', ...(transposed ? ['output_padding'] : [])];
      expect([...seen].sort()).toEqual(want.sort());
    }
  });

  for (const act of ['relu', 'tanh', 'sigmoid']) {
    test(`conv2d with ${act} activation`, () => {
      const cfg = { type: 'conv2d', input_channels: 2, filters: 3, kernel_size: [3, 2], stride: [1, 2], padding: 1, activation: act };
      const { net, x, w, b } = setup(cfg, [4, 5], 2, 4);
      const pre = ref64(geo('conv2d', cfg, [4, 5]), x.data, w, b, 2).y;
      expect(closeness(net.forward(x).data, Array.from(pre, (v) => act64(act, v).y), 1e-5, 1e-5)).toBeLessThanOrEqual(1);
    });
  }

  test('a hand-computed conv1d and conv_transposed1d', () => {
    const c = Network.fromJSON({ input_shape: [1, 4], layers: [{ type: 'conv1d', input_channels: 1, filters: 1, kernel_size: 2, padding: 1, stride: 2 }] });
    c.parameters()[0].param.value.data.set([1, 10]);
    c.parameters()[1].param.value.data.set([0.5]);
    // padded x: 0 1 2 3 4 0; windows at 0, 2, 4: (0,1) (2,3) (4,0)
    expect(Array.from(c.forward(Tensor.from([1, 1, 4], [1, 2, 3, 4])).data)).toEqual([10.5, 32.5, 4.5]);
    const t = Network.fromJSON({ input_shape: [1, 2], layers: [{ type: 'conv_transposed1d', input_channels: 1, filters: 1, kernel_size: 3, stride: 2, output_padding: 1, bias: false }] });
    t.parameters()[0].param.value.data.set([1, 10, 100]);
    // x = [1, 2]: out length (2-1)*2 + 3 + 1 = 6; 1*[1,10,100] at 0, 2*[1,10,100] at 2
    expect(Array.from(t.forward(Tensor.from([1, 1, 2], [1, 2])).data)).toEqual([1, 10, 102, 20, 200, 0]);
  });
});

describe('conv: the canonical f32 order, bit for bit', () => {
  // Normal data takes the kernels' unchecked fast path; tiny data (products and sums below
  // 2^-126) takes the flushing path. Both must equal the scalar restatement of the order.
  // 'many' channels (5 in, 6 out) exercise the kernels' four-channel blocks and their remainder.
  for (const type of TYPES) {
    for (const [scale, channels] of [['normal', 'few'], ['tiny', 'few'], ['mixed', 'few'], ['normal', 'many'], ['tiny', 'many'], ['mixed', 'many']] as const) {
      test(`${type} ${scale} ${channels} channels`, () => {
        const { cfg, inSp } = randomCase(type, new Prng(11).fork(type + scale + channels));
        if (channels === 'many') Object.assign(cfg, { input_channels: 5, filters: 6 });
        const batch = 2;
        const { net, x, dy, ps } = setup(cfg, inSp, batch, 7);
        if (scale !== 'normal') {
          // x ~ 2^-60, w ~ 2^-66: products ~ 2^-126 and below, some flushed, some not.
          const xs = x.data;
          const from = scale === 'mixed' ? xs.length / batch : 0;
          for (let i = from; i < xs.length; i++) xs[i] = Math.fround(xs[i] * 2 ** -60);
          for (let i = 0; i < ps[0].value.data.length; i++) ps[0].value.data[i] = Math.fround(ps[0].value.data[i] * 2 ** -66);
          for (let i = 0; i < dy.data.length; i++) dy.data[i] = Math.fround(dy.data[i] * 2 ** -59);
          if (ps[1]) for (let i = 0; i < ps[1].value.data.length; i++) ps[1].value.data[i] = Math.fround(ps[1].value.data[i] * 2 ** -100);
        }
        const w = ps[0].value.data, b = ps.length > 1 ? ps[1].value.data : null;
        const ref = canonical32(geo(type, cfg, inSp), x.data, w, b, batch, dy.data);
        const got = runBackward(net, x, dy);
        const ctx = JSON.stringify(cfg);
        expect(bits(got.y), ctx).toEqual(bits(ref.y));
        expect(bits(got.dx), ctx).toEqual(bits(ref.dx));
        expect(bits(got.dW), ctx).toEqual(bits(ref.dW));
        if (b) expect(bits(got.db!), ctx).toEqual(bits(ref.db));
        if (scale === 'tiny' && channels === 'many') {
          // The data does reach the subnormal range: without flushing some result would differ.
          // (Only asserted for the larger cases: a tiny random case may read almost no input.)
          const unflushed = canonical32(geo(type, cfg, inSp), x.data, w, b, batch, dy.data, false);
          const differs = (a: Float32Array, c: Float32Array) => a.some((v, i) => !Object.is(v, c[i]));
          expect(differs(unflushed.y, ref.y) || differs(unflushed.dx, ref.dx) || differs(unflushed.dW, ref.dW), 'flushing mattered').toBe(true);
        }
      });
    }
  }
});

describe('conv: the canonical f32 order, fixed cases with every kind of border', () => {
  const cases: [string, Json, number[]][] = [
    ['conv1d', { kernel_size: 3, padding: 2, dilation: 2 }, [9]],
    ['conv2d', { kernel_size: [3, 2], padding: [1, 2], stride: [1, 2], dilation: [2, 1] }, [6, 7]],
    ['conv3d', { kernel_size: 2, padding: 1, stride: [2, 1, 1] }, [3, 4, 5]],
    ['conv_transposed1d', { kernel_size: 3, padding: 1, stride: 2, output_padding: 1 }, [5]],
    ['conv_transposed2d', { kernel_size: [2, 3], padding: [0, 1], stride: [2, 1], dilation: [1, 2], output_padding: [1, 0] }, [4, 3]],
    ['conv_transposed3d', { kernel_size: 2, stride: 2, padding: [0, 1, 0], output_padding: [1, 0, 1] }, [2, 3, 2]],
  ];
  for (const [type, extra, inSp] of cases) {
    for (const scale of ['normal', 'tiny'] as const) {
      test(`${type} ${JSON.stringify(extra)} ${scale}`, () => {
        const cfg = { type, input_channels: 5, filters: 6, ...extra };
        const { net, x, dy, ps } = setup(cfg, inSp, 2, 5);
        if (scale === 'tiny') {
          for (let i = 0; i < x.data.length; i++) x.data[i] = Math.fround(x.data[i] * 2 ** -60);
          for (let i = 0; i < ps[0].value.data.length; i++) ps[0].value.data[i] = Math.fround(ps[0].value.data[i] * 2 ** -66);
          for (let i = 0; i < dy.data.length; i++) dy.data[i] = Math.fround(dy.data[i] * 2 ** -59);
          ps[1].value.data.fill(0);
        }
        const ref = canonical32(geo(type, cfg, inSp), x.data, ps[0].value.data, ps[1].value.data, 2, dy.data);
        const got = runBackward(net, x, dy);
        expect(bits(got.y)).toEqual(bits(ref.y));
        expect(bits(got.dx)).toEqual(bits(ref.dx));
        expect(bits(got.dW)).toEqual(bits(ref.dW));
        expect(bits(got.db!)).toEqual(bits(ref.db));
      });
    }
  }
});

describe('conv: determinism', () => {
  test('two runs, and a sample alone vs inside a batch, give identical bits', () => {
    const cfg = { input_shape: [3, 7, 6], layers: [{ type: 'conv2d', input_channels: 3, filters: 4, kernel_size: 3, padding: 1, stride: 2 }, { type: 'conv_transposed2d', input_channels: 4, filters: 2, kernel_size: 2, stride: 2, output_padding: 1 }] };
    const x = randomTensor([3, 3, 7, 6], new Prng(8), [-2, 2]);
    const run = () => {
      const net = Network.fromJSON(cfg, { seed: 1 });
      randomizeParams(net, 1, [-1, 1]);
      const tape = net.forwardTape(x, { training: false, seed: 0 });
      const dy = randomTensor([3, ...net.outputShape], new Prng(9), [-1, 1]);
      const dx = net.backward(tape, dy);
      return { net, y: tape.outputs[1].data, dx: dx.data, g: net.parameters().map((p) => bits(p.param.grad.data)) };
    };
    const a = run(), b = run();
    expect(bits(a.y)).toEqual(bits(b.y));
    expect(bits(a.dx)).toEqual(bits(b.dx));
    expect(a.g).toEqual(b.g);
    const per = 3 * 7 * 6, outPer = a.y.length / 3;
    const one = a.net.forward(new Tensor([1, 3, 7, 6], x.data.slice(per, 2 * per)));
    expect(bits(one.data)).toEqual(bits(a.y.slice(outPer, 2 * outPer)));
  });

  test('backward adds into the gradients', () => {
    for (const type of ['conv1d', 'conv_transposed1d']) {
      const net = Network.fromJSON({ input_shape: [2, 5], layers: [{ type, input_channels: 2, filters: 3, kernel_size: 2 }] });
      const x = randomTensor([2, 2, 5], new Prng(3), [-2, 2]);
      const dy = randomTensor([2, ...net.outputShape], new Prng(4), [-1, 1]);
      net.backward(net.forwardTape(x, { training: false, seed: 0 }), dy);
      const once = net.parameters().map((p) => p.param.grad.data.slice());
      net.backward(net.forwardTape(x, { training: false, seed: 0 }), dy);
      net.parameters().forEach((p, i) => expect(Array.from(p.param.grad.data)).toEqual(Array.from(once[i], (v) => Math.fround(2 * v))));
    }
  });
});
