import { describe, expect, test } from 'vitest';
import { Network } from '../network.ts';
import { Prng } from '../prng.ts';
import { gradcheck, randomTensor } from '../../tests/helpers/gradcheck.ts';
import { closeness, linear64 } from '../../tests/helpers/reference64.ts';

describe('dense', () => {
  const cases: [number, number, number[], boolean][] = [
    [4, 3, [4], true],
    [1, 1, [1], true],
    [5, 2, [3, 5], true],
    [6, 7, [2, 3], false],
    [3, 9, [2, 1, 3], false],
  ];
  for (const [inF, outF, shape, bias] of cases) {
    test(`forward vs float64 ${inF}->${outF} input ${JSON.stringify(shape)} bias ${bias}`, () => {
      const net = Network.fromJSON({ input_shape: shape, layers: [{ type: 'dense', input_height: inF, output_height: outF, bias }] }, { seed: 3 });
      const x = randomTensor([2, ...shape], new Prng(1), [-2, 2]);
      const p = net.parameters().map((q) => q.param.value.data);
      expect(closeness(net.forward(x).data, linear64(x.data, inF, p[0], bias ? p[1] : null, outF), 1e-5, 1e-6)).toBeLessThanOrEqual(1);
    });
    for (const seed of [1, 2, 3]) {
      test(`gradient check ${inF}->${outF} input ${JSON.stringify(shape)} bias ${bias} seed ${seed}`, () => {
        const r = gradcheck({ input_shape: shape, layers: [{ type: 'dense', input_height: inF, output_height: outF, bias }] }, { seed, batch: 3, randomizeParams: [-1, 1] });
        expect(r.ok, r.report()).toBe(true);
      });
    }
  }
});
