/** Gradient checks (tests/helpers/gradcheck.ts) for the six convolution layers, every option, and chains. */
import { describe, expect, test } from 'vitest';
import { Prng } from '../prng.ts';
import { gradcheck } from '../../tests/helpers/gradcheck.ts';

type Json = Record<string, unknown>;

const spatialNames = (r: number): string[] => (r === 1 ? ['input_height'] : r === 2 ? ['input_height', 'input_width'] : ['input_depth', 'input_height', 'input_width']);

function check(cfg: Json, seeds: number[] = [1, 2, 3], batch = 2): void {
  for (const seed of seeds) {
    const r = gradcheck(cfg, { seed, batch, randomizeParams: [-1, 1], maxPerTensor: 40 });
    expect(r.ok, `${JSON.stringify(cfg)} seed ${seed}\n${r.report()}`).toBe(true);
  }
}

const one = (layer: Json, inputShape: number[]): Json => ({ input_shape: inputShape, layers: [layer] });

/** Option cases per rank: [name, extra fields, spatial input sizes]. */
function optionCases(r: 1 | 2 | 3, transposed: boolean): [string, Json, number[]][] {
  const n = (v: number) => new Array(r).fill(v);
  const odd = [5, 3, 7].slice(0, r);
  const cases: [string, Json, number[]][] = [
    ['plain', { kernel_size: 2 }, odd],
    ['stride', { kernel_size: 3, stride: [2, 3, 1].slice(0, r) }, odd],
    ['padding', { kernel_size: 3, padding: [1, 2, 0].slice(0, r) }, odd],
    ['dilation', { kernel_size: 2, dilation: [2, 1, 3].slice(0, r) }, odd],
    ['stride padding dilation', { kernel_size: [3, 2, 2].slice(0, r), stride: 2, padding: 1, dilation: 2 }, odd],
    ['no bias', { kernel_size: 2, padding: 1, bias: false }, odd],
    ['size 1 everywhere', { kernel_size: 1 }, n(1)],
    ['size 1 input, padded kernel', { kernel_size: 3, padding: transposed ? 0 : 1 }, n(1)],
    ['tanh activation', { kernel_size: 2, activation: 'tanh' }, odd],
  ];
  if (transposed) {
    cases.push(['output_padding < stride', { kernel_size: 2, stride: [2, 3, 2].slice(0, r), output_padding: [1, 2, 0].slice(0, r) }, odd]);
    cases.push(['output_padding < dilation', { kernel_size: 2, dilation: 3, output_padding: 2, padding: 1 }, odd]);
  }
  return cases;
}

for (const transposed of [false, true]) {
  for (const r of [1, 2, 3] as const) {
    const type = transposed ? `conv_transposed${r}d` : `conv${r}d`;
    describe(`${type} gradient check`, () => {
      for (const [name, extra, sp] of optionCases(r, transposed)) {
        const channels: [number, number] = r === 3 ? [2, 2] : [2, 3];
        test(`${name} ${JSON.stringify(sp)}`, () => {
          const layer = { type, input_channels: channels[0], filters: channels[1], ...extra };
          check(one(layer, [channels[0], ...sp]), r === 3 ? [1, 2] : [1, 2, 3]);
        });
      }
      for (let seed = 1; seed <= 4; seed++) {
        test(`random shape seed ${seed}`, () => {
          const rng = new Prng(seed).fork(type);
          const k: number[] = [], s: number[] = [], p: number[] = [], d: number[] = [], op: number[] = [], sp: number[] = [];
          for (let i = 0; i < r; i++) {
            k.push(1 + rng.int(3));
            s.push(1 + rng.int(2));
            d.push(1 + rng.int(2));
            const span = d[i] * (k[i] - 1) + 1;
            p.push(rng.int(2));
            if (transposed) {
              sp.push(1 + rng.int(3));
              op.push(rng.int(Math.max(s[i], d[i])));
              while (p[i] > 0 && (sp[i] - 1) * s[i] - 2 * p[i] + span + op[i] < 1) p[i]--;
            } else {
              sp.push(Math.max(1, span - 2 * p[i]) + rng.int(3));
            }
          }
          const C = 1 + rng.int(3), F = 1 + rng.int(3);
          const layer: Json = { type, input_channels: C, filters: F, kernel_size: k, stride: s, padding: p, dilation: d, bias: rng.int(2) === 0 };
          if (transposed) layer.output_padding = op;
          spatialNames(r).forEach((name, i) => (layer[name] = sp[i]));
          check(one(layer, [C, ...sp]), [seed], 1 + rng.int(3));
        });
      }
    });
  }
}

describe('conv chains gradient check', () => {
  test('conv2d -> dense (flattened sample)', () => {
    check({ input_shape: [2, 5, 4], layers: [{ type: 'conv2d', input_channels: 2, filters: 3, kernel_size: 3, padding: 1, stride: 2, activation: 'tanh' }, { type: 'dense', input_height: 18, output_height: 3 }] });
  });
  test('dense -> conv1d (flat input reshaped) -> conv_transposed1d', () => {
    check({ input_shape: [6], layers: [{ type: 'dense', input_height: 6, output_height: 12 }, { type: 'conv1d', conv1d_in_channels: 3, conv1d_filters: 2, conv1d_kernel_size: 3, conv1d_padding: 1 }, { type: 'conv_transposed1d', input_channels: 2, filters: 1, kernel_size: 2, stride: 2 }] });
  });
  test('conv3d -> conv_transposed3d (an autoencoder shape)', () => {
    check({ input_shape: [1, 4, 3, 4], layers: [{ type: 'conv3d', input_channels: 1, filters: 2, kernel_size: 2, stride: 2, padding: [1, 0, 1] }, { type: 'conv_transposed3d', input_channels: 2, filters: 1, kernel_size: 2, stride: 2 }] }, [1, 2]);
  });
  test('conv2d -> conv1d over the flattened spatial dims', () => {
    check({ input_shape: [2, 3, 3], layers: [{ type: 'conv2d', input_channels: 2, filters: 2, kernel_size: 2, activation: 'relu' }, { type: 'conv1d', input_channels: 2, filters: 2, kernel_size: 3 }] });
  });
});
