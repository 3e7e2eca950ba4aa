import { describe, expect, test } from 'vitest';
import { Network } from '../network.ts';
import { Prng } from '../prng.ts';
import { Tensor } from '../tensor.ts';
import { gradcheck, layerNet, randomTensor, randomizeParams } from '../../tests/helpers/gradcheck.ts';
import { bits, closeness, errorOf } from '../../tests/helpers/reference64.ts';

const swiglu = (d: number, inter: number) => ({ type: 'swiglu', input_height: d, output_height: inter });

/** y = down(silu(gate x) * up x) in float64. */
function swiglu64(x: ArrayLike<number>, d: number, n: number, wg: ArrayLike<number>, wu: ArrayLike<number>, wd: ArrayLike<number>): number[] {
  const out: number[] = [];
  for (let r = 0; r < x.length / d; r++) {
    const a: number[] = [];
    for (let o = 0; o < n; o++) {
      let g = 0, u = 0;
      for (let k = 0; k < d; k++) {
        g += wg[o * d + k] * x[r * d + k];
        u += wu[o * d + k] * x[r * d + k];
      }
      a.push((g / (1 + Math.exp(-g))) * u);
    }
    for (let o = 0; o < d; o++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += wd[o * n + k] * a[k];
      out.push(s);
    }
  }
  return out;
}

describe('swiglu: config and shapes', () => {
  test('parameters, names, shapes, aliases; input shape inferred', () => {
    const net = Network.fromJSON({ layers: [swiglu(4, 6)] });
    expect(net.nodes[0].layer.config).toEqual({ type: 'swiglu', input_height: 4, output_height: 6 });
    expect(net.inputShape).toEqual([4]);
    expect(net.outputShape).toEqual([4]);
    expect(net.parameters().map((p) => [p.name, p.param.value.shape])).toEqual([
      ['layers.0.gate_proj.weight', [6, 4]], ['layers.0.up_proj.weight', [6, 4]], ['layers.0.down_proj.weight', [4, 6]],
    ]);
    const hf = Network.fromJSON({ layers: [{ type: 'swiglu', hidden_size: 4, intermediate_size: 6 }] });
    expect(hf.nodes[0].layer.config).toEqual(net.nodes[0].layer.config);
  });

  test('shape rule: last dim, flattened sample, mismatch', () => {
    expect(Network.fromJSON({ input_shape: [3, 4], layers: [swiglu(4, 5)] }).outputShape).toEqual([3, 4]);
    expect(Network.fromJSON({ input_shape: [2, 3], layers: [swiglu(6, 5)] }).outputShape).toEqual([6]);
    const e = errorOf(() => Network.fromJSON({ input_shape: [3, 4], layers: [swiglu(5, 5)] }));
    expect(e.code).toBe('SHAPE_MISMATCH');
    expect(e.message).toMatch(/layers\[0\] \(.*swiglu\)\.input_height/);
  });

  test('validation errors name the layer and the field', () => {
    for (const [cfg, field] of [[{ type: 'swiglu', output_height: 3 }, 'input_height'], [{ type: 'swiglu', input_height: 3 }, 'output_height'], [swiglu(0, 3), 'input_height'], [swiglu(3, 0), 'output_height'], [swiglu(3, 2.5), 'output_height']] as [Record<string, unknown>, string][]) {
      const e = errorOf(() => Network.fromJSON({ input_shape: [3], layers: [cfg] }));
      expect(e.code).toBe('CONFIG_INVALID');
      expect(e.message).toMatch(/layers\[0\] \(.*swiglu\)/);
      expect(e.message).toContain(`.${field}`);
    }
  });
});

describe('swiglu: forward vs float64', () => {
  for (const [shape, d, n] of [[[4], 4, 6], [[3, 5], 5, 7], [[1], 1, 1], [[2, 3], 6, 2]] as [number[], number, number][]) {
    test(`${JSON.stringify(shape)} d ${d} inter ${n}`, () => {
      const net = Network.fromJSON({ input_shape: shape, layers: [swiglu(d, n)] }, { seed: 2 });
      randomizeParams(net, 4, [-1, 1]);
      const x = randomTensor([3, ...shape], new Prng(5), [-3, 3]);
      const [wg, wu, wd] = net.parameters().map((p) => p.param.value.data);
      expect(closeness(net.forward(x).data, swiglu64(x.data, d, n, wg, wu, wd), 2e-5, 2e-5)).toBeLessThanOrEqual(1);
    });
  }
});

describe('swiglu: gradient check', () => {
  for (const [shape, d, n] of [[[4], 4, 6], [[1], 1, 1], [[3, 5], 5, 3], [[2, 3], 6, 7], [[1, 7], 7, 1]] as [number[], number, number][]) {
    for (const seed of [1, 2, 3]) {
      test(`${JSON.stringify(shape)} d ${d} inter ${n} seed ${seed}`, () => {
        const r = gradcheck(layerNet(swiglu(d, n), shape), { seed, batch: 2, randomizeParams: [-1, 1] });
        expect(r.ok, r.report()).toBe(true);
      });
    }
  }
});

describe('swiglu: determinism', () => {
  test('two runs give identical bits; a sample alone matches it inside a batch', () => {
    const x = randomTensor([3, 2, 5], new Prng(2), [-3, 3]);
    const run = () => {
      const net = Network.fromJSON({ input_shape: [2, 5], layers: [swiglu(5, 9)] }, { seed: 4 });
      const tape = net.forwardTape(x, { training: false, seed: 0 });
      const dx = net.backward(tape, x);
      return { net, y: tape.outputs[0].data, dx: dx.data, g: net.parameters().map((p) => bits(p.param.grad.data)) };
    };
    const a = run(), b = run();
    expect(bits(a.y)).toEqual(bits(b.y));
    expect(bits(a.dx)).toEqual(bits(b.dx));
    expect(a.g).toEqual(b.g);
    expect(bits(a.net.forward(new Tensor([1, 2, 5], x.data.slice(10, 20))).data)).toEqual(bits(a.y.slice(10, 20)));
  });
});
