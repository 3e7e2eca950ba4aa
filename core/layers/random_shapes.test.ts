/** Gradient checks over seeded random shapes (rank 1..3, dims 1..6) for every layer type. */
import { describe, expect, test } from 'vitest';
import { Prng } from '../prng.ts';
import { ACTIVATIONS } from './activations.ts';
import { gradcheck } from '../../tests/helpers/gradcheck.ts';

function randomShape(rng: Prng): number[] {
  const rank = 1 + rng.int(3);
  return Array.from({ length: rank }, () => 1 + rng.int(6));
}

const last = (s: number[]): number => s[s.length - 1];
const size = (s: number[]): number => s.reduce((a, b) => a * b, 1);

type Maker = (shape: number[], rng: Prng) => unknown[];
const makers: Record<string, Maker> = {
  dense: (s, rng) => [{ type: 'dense', input_height: last(s), output_height: 1 + rng.int(5), activation: ACTIVATIONS[rng.int(ACTIVATIONS.length)] }],
  layer_norm: (s, rng) => [{ type: 'layer_norm', norm_size: rng.int(2) ? last(s) : size(s), elementwise_affine: rng.int(4) > 0 }],
  rms_norm: (s, rng) => [{ type: 'rms_norm', norm_size: rng.int(2) ? last(s) : size(s), epsilon: 1e-5 }],
  softmax: (s, rng) => {
    const v = rng.int(4);
    if (v === 0) return [{ type: 'softmax' }];
    if (v === 1) return [{ type: 'softmax', temperature: 0.5 + 2 * rng.uniform() }];
    if (v === 2) {
      const mask = Array.from({ length: last(s) }, () => rng.int(3) > 0);
      mask[rng.int(mask.length)] = true;
      return [{ type: 'softmax', mask }];
    }
    return [{ type: 'softmax', softmax_rows: size(s) / last(s), softmax_cols: last(s) }];
  },
  residual: (s) => [{ type: 'dense', input_height: last(s), output_height: last(s), activation: 'tanh' }, { type: 'residual' }],
  sequential: (s, rng) => [{ type: 'sequential', layers: [{ type: 'dense', input_height: last(s), output_height: last(s), activation: 'silu' }, { type: 'residual' }, { type: 'layer_norm', norm_size: last(s) }, { type: 'dense', input_height: last(s), output_height: 1 + rng.int(4) }] }],
  parallel: (s, rng) => {
    const mode = ['concat', 'add', 'avg', 'multiply'][rng.int(4)];
    const out = 1 + rng.int(4);
    const n = 1 + rng.int(3);
    const branches = Array.from({ length: n }, (_, j) => ({ type: 'dense', input_height: last(s), output_height: mode === 'concat' ? 1 + rng.int(4) : out, activation: ['tanh', 'gelu', 'linear'][j % 3] }));
    return [{ type: 'parallel', branches, combine_mode: mode }];
  },
};

describe('random shapes', () => {
  for (const [name, make] of Object.entries(makers)) {
    for (let seed = 1; seed <= 6; seed++) {
      test(`${name} seed ${seed}`, () => {
        const rng = new Prng(seed).fork(name);
        const shape = randomShape(rng);
        const cfg = { input_shape: shape, layers: make(shape, rng) };
        const r = gradcheck(cfg, { seed, batch: 1 + rng.int(3), randomizeParams: [-1, 1], maxPerTensor: 24 });
        expect(r.ok, `${JSON.stringify(cfg)}\n${r.report()}`).toBe(true);
      });
    }
  }
});
