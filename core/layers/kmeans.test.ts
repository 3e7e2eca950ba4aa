import { describe, expect, test } from 'vitest';
import { softmaxRowsForward } from '../kernels/softmax.ts';
import { add, div, mul, sub } from '../math/index.ts';
import { Network } from '../network.ts';
import { Prng } from '../prng.ts';
import { Tensor } from '../tensor.ts';
import { gradcheck, layerNet, randomTensor } from '../../tests/helpers/gradcheck.ts';
import { bits, closeness, errorOf } from '../../tests/helpers/reference64.ts';

type Cfg = Record<string, unknown>;
const km = (extra: Cfg = {}) => ({ type: 'kmeans', ...extra });
const net1 = (extra: Cfg, shape: number[], seed = 0) => Network.fromJSON(layerNet(km(extra) as never, shape), { seed });

/** Float64 k-means layer: rows of D values, centers [K, D]. */
function kmeans64(x: ArrayLike<number>, c: ArrayLike<number>, K: number, D: number, T: number, mode: string): number[] {
  const out: number[] = [];
  for (let o = 0; o < x.length; o += D) {
    const z: number[] = [];
    for (let k = 0; k < K; k++) {
      let d = 0;
      for (let j = 0; j < D; j++) d += (x[o + j] - c[k * D + j]) ** 2;
      z.push(-d / T);
    }
    const m = Math.max(...z);
    const e = z.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    const p = e.map((v) => v / s);
    if (mode === 'features') for (let j = 0; j < D; j++) out.push(p.reduce((a, pk, k) => a + pk * c[k * D + j], 0));
    else out.push(...p);
  }
  return out;
}

/** Central differences of sum(r * f(v)) in float64. */
function fd64(f: (v: number[]) => number[], v0: ArrayLike<number>, r: ArrayLike<number>, h = 1e-6): number[] {
  const base = Array.from(v0);
  const L = (v: number[]) => f(v).reduce((a, y, i) => a + r[i] * y, 0);
  return base.map((v, i) => {
    const p = base.slice(), m = base.slice();
    p[i] = v + h;
    m[i] = v - h;
    return (L(p) - L(m)) / (2 * h);
  });
}

describe('kmeans: config and shapes', () => {
  test('defaults, aliases, Loom names', () => {
    const cfg = (extra: Cfg, shape = [4]) => net1(extra, shape).nodes[0].layer.config;
    expect(cfg({})).toEqual({ type: 'kmeans', num_clusters: 8, kmeans_temperature: 1, output_mode: 'probabilities' });
    expect(cfg({ num_clusters: 3, temperature: 0.5, kmeans_output_mode: 'Features' })).toEqual({ type: 'kmeans', num_clusters: 3, kmeans_temperature: 0.5, output_mode: 'features' });
    expect(cfg({ kmeans_temperature: 0 })).toEqual({ type: 'kmeans', num_clusters: 8, kmeans_temperature: 1, output_mode: 'probabilities' }); // Loom's unset
    expect(cfg({ d_model: 4 })).toEqual({ type: 'kmeans', num_clusters: 8, kmeans_temperature: 1, output_mode: 'probabilities', input_height: 4 });
    expect(Network.fromJSON({ layers: [{ type: 'k_means', input_height: 6, num_clusters: 2 }] }).inputShape).toEqual([6]);
  });

  test('parameter centers [K, D] named layers.{i}.centers; output shapes', () => {
    const net = Network.fromJSON({ layers: [{ type: 'dense', input_height: 3, output_height: 5 }, km({ num_clusters: 4 })] });
    expect(net.parameters().map((p) => [p.name, p.param.value.shape])).toEqual([
      ['layers.0.weight', [5, 3]],
      ['layers.0.bias', [5]],
      ['layers.1.centers', [4, 5]],
    ]);
    expect(net.outputShape).toEqual([4]);
    for (const v of net.parameters()[2].param.value.data) expect(Math.abs(v)).toBeLessThanOrEqual(1);
    expect(net1({ num_clusters: 3 }, [2, 5]).outputShape).toEqual([2, 3]);
    expect(net1({ num_clusters: 3, output_mode: 'features' }, [2, 5]).outputShape).toEqual([2, 5]);
    expect(net1({ num_clusters: 3, input_height: 10 }, [2, 5]).outputShape).toEqual([3]); // flattened sample
    expect(net1({ num_clusters: 3, input_height: 10, output_mode: 'features' }, [2, 5]).outputShape).toEqual([10]);
  });

  test('validation errors name the layer and the field', () => {
    const cases: [Cfg, number[], string, string][] = [
      [{ num_clusters: 0 }, [4], 'CONFIG_INVALID', 'num_clusters'],
      [{ num_clusters: 2.5 }, [4], 'CONFIG_INVALID', 'num_clusters'],
      [{ kmeans_temperature: -1 }, [4], 'CONFIG_INVALID', 'kmeans_temperature'],
      [{ temperature: -1 }, [4], 'CONFIG_INVALID', 'temperature'],
      [{ temperature: 'hot' }, [4], 'CONFIG_INVALID', 'temperature'],
      [{ kmeans_temperature: 1e-50 }, [4], 'CONFIG_INVALID', 'kmeans_temperature'],
      [{ output_mode: 'labels' }, [4], 'CONFIG_INVALID', 'output_mode'],
      [{ output_mode: 3 }, [4], 'CONFIG_INVALID', 'output_mode'],
      [{ input_height: 5 }, [4], 'SHAPE_MISMATCH', 'input_height'],
      [{ input_height: -5 }, [4], 'CONFIG_INVALID', 'input_height'],
    ];
    for (const [extra, shape, code, field] of cases) {
      const e = errorOf(() => net1(extra, shape));
      expect(e.code, JSON.stringify(extra)).toBe(code);
      expect(e.message).toMatch(/layers\[0\] \(.*kmeans\)/);
      expect(e.message, JSON.stringify(extra)).toContain(`.${field}:`);
    }
    const e = errorOf(() => net1({ kmeans_temperature: 2, temperature: 3 }, [4]));
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.message).toContain('kmeans_temperature');
  });
});

describe('kmeans: forward and backward vs float64', () => {
  const cases: [string, Cfg, number[]][] = [
    ['probabilities', { num_clusters: 3 }, [5]],
    ['probabilities T=0.5 rows', { num_clusters: 4, kmeans_temperature: 0.5 }, [3, 2]],
    ['probabilities K=1', { num_clusters: 1 }, [3]],
    ['probabilities D=1', { num_clusters: 5, temperature: 2 }, [1]],
    ['features', { num_clusters: 3, output_mode: 'features' }, [5]],
    ['features rows T=3', { num_clusters: 2, output_mode: 'features', kmeans_temperature: 3 }, [2, 3]],
    ['features K=1', { num_clusters: 1, output_mode: 'features' }, [4]],
    ['features flattened', { num_clusters: 3, output_mode: 'features', input_height: 6 }, [2, 3]],
  ];
  for (const [name, extra, shape] of cases) {
    for (const seed of [1, 2]) {
      test(`${name} seed ${seed}`, () => {
        const net = net1(extra, shape, seed);
        const layerCfg = net.nodes[0].layer.config;
        const K = layerCfg.num_clusters as number, T = Math.fround(layerCfg.kmeans_temperature as number), mode = layerCfg.output_mode as string;
        const D = (layerCfg.input_height as number | undefined) ?? shape[shape.length - 1];
        const centers = net.parameters()[0].param;
        const x = randomTensor([3, ...shape], new Prng(seed).fork('x'), [-1.5, 1.5]);
        const r = randomTensor([3, ...net.outputShape], new Prng(seed).fork('r'), [-1, 1]);
        net.zeroGrad();
        const tape = net.forwardTape(x, { training: false, seed: 0 });
        const y = tape.outputs[0].data;
        const dx = net.backward(tape, r).data;
        const c = Array.from(centers.value.data);
        const xs = Array.from(x.data);
        expect(closeness(y, kmeans64(xs, c, K, D, T, mode), 1e-5, 1e-6)).toBeLessThanOrEqual(1);
        expect(closeness(dx, fd64((v) => kmeans64(v, c, K, D, T, mode), xs, r.data), 1e-3, 1e-4)).toBeLessThanOrEqual(1);
        expect(closeness(centers.grad.data, fd64((v) => kmeans64(xs, v, K, D, T, mode), c, r.data), 1e-3, 1e-4)).toBeLessThanOrEqual(1);
      });
    }
  }

  test('features: far from every other center, the output is the nearest center', () => {
    const net = net1({ num_clusters: 2, output_mode: 'features', kmeans_temperature: 0.01 }, [2]);
    net.setWeights(new Map([['layers.0.centers', Tensor.from([2, 2], [1, 1, -1, -1])]]));
    expect(Array.from(net.forward(Tensor.from([1, 2], [0.9, 1.2])).data)).toEqual([1, 1]);
    const p = net1({ num_clusters: 2, kmeans_temperature: 0.01 }, [2]);
    p.setWeights(new Map([['layers.0.centers', Tensor.from([2, 2], [1, 1, -1, -1])]]));
    expect(Array.from(p.forward(Tensor.from([1, 2], [-0.9, -1.2])).data)).toEqual([0, 1]);
  });
});

describe('kmeans: canonical arithmetic', () => {
  test('forward follows the documented order bit for bit', () => {
    const K = 3, D = 4, T = Math.fround(0.7);
    for (const mode of ['probabilities', 'features']) {
      const net = net1({ num_clusters: K, kmeans_temperature: 0.7, output_mode: mode }, [D], 4);
      const c = net.parameters()[0].param.value.data;
      const x = randomTensor([2, D], new Prng(3), [-2, 2]);
      const z = new Float32Array(2 * K);
      for (let r = 0; r < 2; r++) {
        for (let k = 0; k < K; k++) {
          let d = 0;
          for (let j = 0; j < D; j++) {
            const diff = sub(x.data[r * D + j], c[k * D + j]);
            d = add(d, mul(diff, diff));
          }
          z[r * K + k] = -div(d, T);
        }
      }
      const p = softmaxRowsForward(z, K);
      let expected = p;
      if (mode === 'features') {
        expected = new Float32Array(2 * D);
        for (let r = 0; r < 2; r++) for (let j = 0; j < D; j++) {
          let acc = 0;
          for (let k = 0; k < K; k++) acc = add(acc, mul(p[r * K + k], c[k * D + j]));
          expected[r * D + j] = acc;
        }
      }
      expect(bits(net.forward(x).data)).toEqual(bits(expected));
    }
  });

  test('the centers gradient accumulates: a second backward adds the row sum once', () => {
    const net = net1({ num_clusters: 2 }, [3], 2);
    const x = randomTensor([4, 3], new Prng(1), [-1, 1]);
    const r = randomTensor([4, 2], new Prng(2), [-1, 1]);
    net.zeroGrad();
    net.backward(net.forwardTape(x, { training: false, seed: 0 }), r);
    const once = net.parameters()[0].param.grad.data.slice();
    net.backward(net.forwardTape(x, { training: false, seed: 0 }), r);
    expect(bits(net.parameters()[0].param.grad.data)).toEqual(bits(Float32Array.from(once, (v) => add(v, v))));
  });
});

describe('kmeans: gradient check', () => {
  const cases: [string, Cfg, number[]][] = [
    ['probabilities', { num_clusters: 3 }, [4]],
    ['probabilities K=1 D=1', { num_clusters: 1 }, [1]],
    ['probabilities odd rows', { num_clusters: 5, kmeans_temperature: 2.5 }, [3, 3]],
    ['features', { num_clusters: 3, output_mode: 'features' }, [5]],
    ['features K=1', { num_clusters: 1, output_mode: 'features' }, [3]],
    ['features rows T=0.5', { num_clusters: 2, output_mode: 'features', temperature: 0.5 }, [2, 3]],
    ['features flattened', { num_clusters: 4, output_mode: 'features', input_height: 6 }, [3, 2]],
  ];
  for (const [name, extra, shape] of cases) {
    for (const seed of [1, 2, 3]) {
      test(`${name} ${JSON.stringify(shape)} seed ${seed}`, () => {
        const r = gradcheck(layerNet(km(extra) as never, shape), { seed, batch: 2, inputRange: [-1.5, 1.5] });
        expect(r.ok, r.report()).toBe(true);
      });
    }
  }

  test('random shapes', () => {
    for (let seed = 1; seed <= 8; seed++) {
      const rng = new Prng(seed).fork('kmeans');
      const rank = 1 + rng.int(3);
      const shape = Array.from({ length: rank }, () => 1 + rng.int(5));
      const extra = { num_clusters: 1 + rng.int(5), kmeans_temperature: 0.5 + 2 * rng.uniform(), output_mode: rng.int(2) ? 'features' : 'probabilities' };
      const r = gradcheck(layerNet(km(extra) as never, shape), { seed, batch: 1 + rng.int(3), inputRange: [-1.5, 1.5], maxPerTensor: 24 });
      expect(r.ok, `${JSON.stringify(extra)} ${JSON.stringify(shape)}\n${r.report()}`).toBe(true);
    }
  });

  test('inside a network: dense -> kmeans -> dense', () => {
    for (const seed of [1, 2]) {
      const cfg = { input_shape: [4], layers: [{ type: 'dense', input_height: 4, output_height: 3, activation: 'tanh' }, km({ num_clusters: 3, output_mode: 'features' }), { type: 'dense', input_height: 3, output_height: 2 }] };
      const r = gradcheck(cfg, { seed, batch: 3 });
      expect(r.ok, r.report()).toBe(true);
    }
  });
});

describe('kmeans: determinism', () => {
  test('two builds and runs give identical bits', () => {
    const x = randomTensor([5, 6], new Prng(3), [-2, 2]);
    const dy = randomTensor([5, 6], new Prng(4), [-1, 1]);
    const run = () => {
      const net = net1({ num_clusters: 4, output_mode: 'features', kmeans_temperature: 0.8 }, [6], 9);
      const tape = net.forwardTape(x, { training: false, seed: 0 });
      return [tape.outputs[0].data, net.backward(tape, dy).data, net.parameters()[0].param.grad.data];
    };
    const a = run(), b = run();
    a.forEach((v, i) => expect(bits(v)).toEqual(bits(b[i])));
  });
});

describe('kmeans: saved config round trip', () => {
  test('the canonical config re-parses to itself and computes the same bits', () => {
    for (const extra of [{ num_clusters: 3, temperature: 0.5, kmeans_output_mode: 'features' }, { d_model: 4 }]) {
      const a = net1(extra, [4], 2);
      const b = Network.fromJSON(a.configJSON(), { seed: 2 });
      expect(b.configJSON()).toEqual(a.configJSON());
      const x = randomTensor([2, 4], new Prng(1), [-2, 2]);
      expect(bits(b.forward(x).data)).toEqual(bits(a.forward(x).data));
    }
  });
});

