import { describe, expect, test } from 'vitest';
import { Network } from '../network.ts';
import { Prng } from '../prng.ts';
import { Tensor } from '../tensor.ts';
import { gradcheck, layerNet, randomTensor } from '../../tests/helpers/gradcheck.ts';
import { bits, closeness, errorOf, softmax64 } from '../../tests/helpers/reference64.ts';

const net1 = (layer: Record<string, unknown>, shape: number[]) => Network.fromJSON(layerNet(layer as never, shape));

describe('softmax: config', () => {
  test('variant from softmax_type or from the fields present', () => {
    const cfg = (l: Record<string, unknown>, shape = [4]) => net1({ type: 'softmax', ...l }, shape).nodes[0].layer.config;
    expect(cfg({})).toEqual({ type: 'softmax', softmax_type: 'standard' });
    expect(cfg({ temperature: 1.0 })).toEqual({ type: 'softmax', softmax_type: 'standard' });
    expect(cfg({ temperature: 0.5 })).toEqual({ type: 'softmax', softmax_type: 'temperature', temperature: 0.5 });
    expect(cfg({ softmax_type: 'temperature' })).toEqual({ type: 'softmax', softmax_type: 'temperature', temperature: 1 });
    expect(cfg({ mask: [true, false, true, true] })).toEqual({ type: 'softmax', softmax_type: 'masked', mask: [true, false, true, true] });
    expect(cfg({ softmax_type: 'grid', softmax_rows: 2, softmax_cols: 2 })).toEqual({ type: 'softmax', softmax_type: 'grid', softmax_rows: 2, softmax_cols: 2 });
    expect(cfg({ softmax_rows: 2, softmax_cols: 2 })).toEqual({ type: 'softmax', softmax_type: 'grid', softmax_rows: 2, softmax_cols: 2 });
    // Loom writes 0 for unset rows/cols.
    expect(cfg({ softmax_type: 'Standard', softmax_rows: 0, softmax_cols: 0 })).toEqual({ type: 'softmax', softmax_type: 'standard' });
  });

  test('input shape inferred for masked and grid', () => {
    expect(Network.fromJSON({ layers: [{ type: 'softmax', mask: [true, false, true] }] }).inputShape).toEqual([3]);
    expect(Network.fromJSON({ layers: [{ type: 'softmax', softmax_type: 'grid', softmax_rows: 3, softmax_cols: 4 }] }).inputShape).toEqual([12]);
    const e = errorOf(() => Network.fromJSON({ layers: [{ type: 'softmax' }] }));
    expect(e.code).toBe('CONFIG_INVALID');
  });

  test("every Loom variant is accepted (none is UNSUPPORTED any more)", () => {
    const cases: [Record<string, unknown>, number[]][] = [
      [{ softmax_type: 'hierarchical', hierarchy_levels: [2] }, [2]],
      [{ softmax_type: 'gumbel' }, [4]],
      [{ softmax_type: 'sparsemax' }, [4]],
      [{ softmax_type: 'sparse' }, [4]],
      [{ softmax_type: 'entmax' }, [4]],
      [{ softmax_type: 'adaptive', adaptive_cutoffs: [2, 4] }, [5]],
      [{ softmax_type: 'mixture', mixture_components: 2 }, [6]],
    ];
    for (const [extra, shape] of cases) expect(() => net1({ type: 'softmax', ...extra }, shape), JSON.stringify(extra)).not.toThrow();
  });

  test('validation errors name the layer and the field', () => {
    const cases: [Record<string, unknown>, string, string][] = [
      [{ softmax_type: 'bogus' }, 'CONFIG_INVALID', 'softmax_type'],
      [{ softmax_type: 3 }, 'CONFIG_INVALID', 'softmax_type'],
      [{ temperature: 0 }, 'CONFIG_INVALID', 'temperature'],
      [{ softmax_type: 'temperature', temperature: -1 }, 'CONFIG_INVALID', 'temperature'],
      [{ softmax_type: 'masked' }, 'CONFIG_INVALID', 'mask'],
      [{ mask: [false, false, false, false] }, 'CONFIG_INVALID', 'mask'],
      [{ mask: [] }, 'CONFIG_INVALID', 'mask'],
      [{ mask: [true, 1, true, true] }, 'CONFIG_INVALID', 'mask[1]'],
      [{ mask: [true, true, true] }, 'SHAPE_MISMATCH', 'mask'],
      [{ softmax_type: 'grid', softmax_cols: 2 }, 'CONFIG_INVALID', 'softmax_rows'],
      [{ softmax_type: 'grid', softmax_rows: 2 }, 'CONFIG_INVALID', 'softmax_cols'],
      [{ softmax_type: 'grid', softmax_rows: 3, softmax_cols: 2 }, 'SHAPE_MISMATCH', 'softmax_rows'],
      [{ softmax_type: 'grid', softmax_rows: -1, softmax_cols: 2 }, 'CONFIG_INVALID', 'softmax_rows'],
      [{ softmax_type: 'standard', temperature: 2 }, 'CONFIG_INVALID', 'temperature'],
      [{ softmax_type: 'masked', mask: [true, true, true, true], softmax_rows: 2, softmax_cols: 2 }, 'CONFIG_INVALID', 'softmax_rows'],
      [{ mask: [true, true, true, true], temperature: 3 }, 'CONFIG_INVALID', 'softmax_type'],
    ];
    for (const [extra, code, field] of cases) {
      const e = errorOf(() => net1({ type: 'softmax', ...extra }, [4]));
      expect(e.code, JSON.stringify(extra)).toBe(code);
      expect(e.message).toContain('layers[0]');
      expect(e.message).toContain('softmax');
      expect(e.message, JSON.stringify(extra)).toContain(`.${field}`);
    }
  });
});

describe('softmax: forward vs float64', () => {
  const x = randomTensor([3, 2, 6], new Prng(12), [-30, 30]);
  test('standard: last dim', () => {
    const y = net1({ type: 'softmax' }, [2, 6]).forward(x);
    expect(y.shape).toEqual([3, 2, 6]);
    expect(closeness(y.data, softmax64(x.data, 6), 1e-5, 1e-7)).toBeLessThanOrEqual(1);
  });
  test('temperature', () => {
    const y = net1({ type: 'softmax', softmax_type: 'temperature', temperature: 3.5 }, [2, 6]).forward(x);
    expect(closeness(y.data, softmax64(x.data, 6, null, Math.fround(3.5)), 1e-5, 1e-7)).toBeLessThanOrEqual(1);
  });
  test('masked: masked positions are exactly 0', () => {
    const mask = [true, false, true, true, false, true];
    const y = net1({ type: 'softmax', mask }, [2, 6]).forward(x);
    expect(closeness(y.data, softmax64(x.data, 6, mask), 1e-5, 1e-7)).toBeLessThanOrEqual(1);
    for (let i = 0; i < y.size; i++) if (!mask[i % 6]) expect(Object.is(y.data[i], 0)).toBe(true);
  });
  test('masked over the flattened sample when the mask covers it', () => {
    const mask = Array.from({ length: 12 }, (_, i) => i % 5 !== 0);
    const y = net1({ type: 'softmax', mask }, [2, 6]).forward(x);
    expect(closeness(y.data, softmax64(x.data, 12, mask), 1e-5, 1e-7)).toBeLessThanOrEqual(1);
  });
  test('grid: rows of softmax_cols', () => {
    const y = net1({ type: 'softmax', softmax_type: 'grid', softmax_rows: 4, softmax_cols: 3 }, [2, 6]).forward(x);
    expect(y.shape).toEqual([3, 2, 6]);
    expect(closeness(y.data, softmax64(x.data, 3), 1e-5, 1e-7)).toBeLessThanOrEqual(1);
  });
  test('huge logits do not overflow; a single position gives 1', () => {
    const y = net1({ type: 'softmax' }, [3]).forward(Tensor.from([1, 3], [3e38, -3e38, 3e38]));
    expect(Array.from(y.data)).toEqual([0.5, 0, 0.5]);
    expect(Array.from(net1({ type: 'softmax' }, [1]).forward(Tensor.from([2, 1], [-7, 1e30])).data)).toEqual([1, 1]);
  });
});

describe('softmax: gradient check', () => {
  const variants: [string, Record<string, unknown>, number[]][] = [
    ['standard', {}, [5]],
    ['standard size 1', {}, [1]],
    ['standard 2-d', {}, [3, 4]],
    ['temperature 0.7', { temperature: 0.7 }, [6]],
    ['temperature 4', { softmax_type: 'temperature', temperature: 4 }, [2, 3]],
    ['masked', { mask: [true, false, true, true, false] }, [5]],
    ['masked one open', { mask: [false, true, false] }, [2, 3]],
    ['masked flattened', { mask: [true, true, false, true, false, true] }, [2, 3]],
    ['grid', { softmax_rows: 2, softmax_cols: 3 }, [6]],
    ['grid 1x7 on 2-d', { softmax_type: 'grid', softmax_rows: 1, softmax_cols: 7 }, [7, 1]],
  ];
  for (const [name, extra, shape] of variants) {
    for (const seed of [1, 2, 3]) {
      test(`${name} ${JSON.stringify(shape)} seed ${seed}`, () => {
        const r = gradcheck(layerNet({ type: 'softmax', ...extra } as never, shape), { seed, batch: 2 });
        expect(r.ok, r.report()).toBe(true);
      });
    }
  }

  test('masked positions get exactly zero gradient', () => {
    const net = net1({ type: 'softmax', mask: [true, false, true] }, [3]);
    const x = randomTensor([2, 3], new Prng(1), [-2, 2]);
    const dx = net.backward(net.forwardTape(x, { training: false, seed: 0 }), randomTensor([2, 3], new Prng(2), [-1, 1]));
    expect(dx.data[1]).toBe(0);
    expect(dx.data[4]).toBe(0);
  });
});

describe('softmax: determinism', () => {
  test('two runs give identical bits', () => {
    const x = randomTensor([5, 9], new Prng(3), [-10, 10]);
    const dy = randomTensor([5, 9], new Prng(4), [-1, 1]);
    const run = () => {
      const net = net1({ type: 'softmax', softmax_type: 'temperature', temperature: 0.3 }, [9]);
      const tape = net.forwardTape(x, { training: false, seed: 0 });
      return [tape.outputs[0].data, net.backward(tape, dy).data];
    };
    const [y1, d1] = run();
    const [y2, d2] = run();
    expect(bits(y1)).toEqual(bits(y2));
    expect(bits(d1)).toEqual(bits(d2));
  });
});
