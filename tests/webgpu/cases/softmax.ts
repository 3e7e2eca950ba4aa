/** GPU check cases: softmax (gathered by buildCases in tests/webgpu/checks.ts). */
import type { CheckCase, InputKind, ValueKind } from '../checks.ts';

const dense = (i: number, o: number, activation = 'linear', bias = true): Record<string, unknown> => ({ type: 'dense', input_height: i, output_height: o, activation, bias });
const sm = (fields: Record<string, unknown>): Record<string, unknown> => ({ type: 'softmax', ...fields });

/** dense weights whose output rows repeat (outputs o and o + period are equal): ties for the sorts. */
function repeatingRows(outF: number, inF: number, period: number): (shape: readonly number[]) => Float32Array {
  return () => Float32Array.from({ length: outF * inF }, (_, i) => {
    const o = Math.floor(i / inF) % period, k = i % inF;
    return Math.fround(((o * 7 + k * 3) % 11) / 8 - 0.6);
  });
}

export function softmaxCases(quick: boolean, large: boolean): CheckCase[] {
  const cases: CheckCase[] = [];
  const one = (name: string, kernel: string, input: number[], layer: Record<string, unknown>, inputs: InputKind, batches: number[] = [3], scenario?: CheckCase['scenario']): void => {
    cases.push({ name, kernel, config: { input_shape: input, layers: [layer] }, batches, inputs, weights: 'random' as ValueKind, scenario });
  };
  // sparsemax, entmax 1.5, entmax 2 (= sparsemax): random, hard, tiny (sums of the sorted
  // values go subnormal), edge, a wide row (the rank pass over 64 invocations), odd sizes
  for (const [t, kernel, f] of [
    ['sparsemax', 'softmax:sparsemax', { softmax_type: 'sparsemax' }],
    ['entmax 1.5', 'softmax:entmax', { softmax_type: 'entmax', entmax_alpha: 1.5 }],
    ['entmax 2', 'softmax:sparsemax', { softmax_type: 'entmax', entmax_alpha: 2 }],
  ] as const) {
    one(`softmax ${t} random`, kernel, [4, 9], sm(f), 'random', [3, 1]);
    one(`softmax ${t} hard values`, kernel, [5, 11], sm(f), 'hard');
    one(`softmax ${t} tiny values`, kernel, [4, 13], sm(f), 'tiny', [2]);
    one(`softmax ${t} edge values`, kernel, [3, 7], sm(f), 'edge', [2]);
    one(`softmax ${t} one value per row`, kernel, [5, 1], sm(f), 'random', [2]);
    one(`softmax ${t} ${quick ? 70 : 203} wide`, kernel, [quick ? 70 : 203], sm(f), 'random', [2]);
    one(`softmax ${t} grad`, kernel, [3, 10], sm(f), 'random', [2], 'grad');
    one(`softmax ${t} grad hard values`, kernel, [3, 10], sm(f), 'hard', [2], 'grad');
    // ties (equal values, and -0 / +0 after the shift) decided by position
    cases.push({ name: `softmax ${t} ties`, kernel, config: { input_shape: [6], layers: [dense(6, 12, 'linear', false), sm(f)] }, batches: [3], inputs: 'random', weights: 'random', fixed: { 'layers.0.weight': repeatingRows(12, 6, 4) } });
    cases.push({ name: `softmax ${t} ties grad`, kernel, config: { input_shape: [6], layers: [dense(6, 12, 'relu', false), sm(f)] }, batches: [3], inputs: 'random', weights: 'random', fixed: { 'layers.0.weight': repeatingRows(12, 6, 3) }, scenario: 'grad' });
  }
  // the tree variants
  const trees: [string, Record<string, unknown>, number][] = [
    ['hierarchical [3, 4]', { softmax_type: 'hierarchical', hierarchy_levels: [3, 4] }, 15],
    ['hierarchical [2, 3, 2]', { softmax_type: 'hierarchical', hierarchy_levels: [2, 3, 2] }, 20],
    ['hierarchical [5]', { softmax_type: 'hierarchical', hierarchy_levels: [5] }, 5],
    ['adaptive [4, 7, 12]', { softmax_type: 'adaptive', adaptive_cutoffs: [4, 7, 12] }, 14],
    ['adaptive [3]', { softmax_type: 'adaptive', adaptive_cutoffs: [3] }, 3],
    ['adaptive [1, 2, 6, 9]', { softmax_type: 'adaptive', adaptive_cutoffs: [1, 2, 6, 9] }, 12],
  ];
  for (const [t, f, n] of trees) {
    const kernel = `softmax:${t.split(' ')[0]}`;
    one(`softmax ${t} random`, kernel, [2, n], sm(f), 'random', [3, 1]);
    one(`softmax ${t} hard values`, kernel, [n], sm(f), 'hard');
    one(`softmax ${t} grad`, kernel, [2, n], sm(f), 'random', [2], 'grad');
  }
  one('softmax hierarchical tiny values', 'softmax:hierarchical', [2, 15], sm({ hierarchy_levels: [3, 4] }), 'tiny', [2]);
  one('softmax hierarchical grad tiny values', 'softmax:hierarchical', [15], sm({ hierarchy_levels: [3, 4] }), 'tiny', [2], 'grad');
  one('softmax adaptive grad hard values', 'softmax:adaptive', [14], sm({ adaptive_cutoffs: [4, 7, 12] }), 'hard', [3], 'grad');
  one('softmax hierarchical flattened [3, 5] sample', 'softmax:hierarchical', [3, 5], sm({ hierarchy_levels: [3, 4] }), 'random', [2]);
  // mixture: fixed weights, per-row logits, one component
  const mixtures: [string, Record<string, unknown>, number][] = [
    ['fixed [1, 2, 0.5]', { softmax_type: 'mixture', mixture_weights: [1, 2, 0.5] }, 3 * 5],
    ['fixed [0, 3]', { softmax_type: 'mixture', mixture_weights: [0, 3] }, 2 * 4],
    ['per-row K=2', { softmax_type: 'mixture', mixture_components: 2 }, 2 + 2 * 6],
    ['per-row K=3, n=1', { softmax_type: 'mixture', mixture_components: 3 }, 3 + 3],
    ['per-row K=1', { softmax_type: 'mixture', mixture_components: 1 }, 1 + 7],
  ];
  for (const [t, f, n] of mixtures) {
    one(`softmax mixture ${t} random`, 'softmax:mixture', [2, n], sm(f), 'random', [3, 1]);
    one(`softmax mixture ${t} hard values`, 'softmax:mixture', [n], sm(f), 'hard');
    one(`softmax mixture ${t} grad`, 'softmax:mixture', [2, n], sm(f), 'random', [2], 'grad');
  }
  one('softmax mixture tiny values', 'softmax:mixture', [3, 14], sm({ mixture_components: 2 }), 'tiny', [2]);
  one('softmax mixture grad tiny values', 'softmax:mixture', [3, 14], sm({ mixture_components: 2 }), 'tiny', [2], 'grad');
  // backward of the row-softmax variants
  const mask = Array.from({ length: 11 }, (_, i) => i % 3 !== 1);
  one('softmax standard grad', 'softmax:standard', [4, 9], sm({}), 'random', [3, 1], 'grad');
  one('softmax standard grad hard values', 'softmax:standard', [4, 9], sm({}), 'hard', [3], 'grad');
  one('softmax standard grad tiny values', 'softmax:standard', [4, 9], sm({}), 'tiny', [3], 'grad');
  one('softmax temperature 0.37 grad', 'softmax:temperature', [3, 8], sm({ softmax_type: 'temperature', temperature: 0.37 }), 'random', [2], 'grad');
  one('softmax masked grad', 'softmax:masked', [3, 11], sm({ mask }), 'random', [2], 'grad');
  one('softmax masked grad, flattened sample', 'softmax:masked', [11], sm({ mask }), 'hard', [3], 'grad');
  one('softmax grid 4x6 grad', 'softmax:grid', [24], sm({ softmax_rows: 4, softmax_cols: 6 }), 'random', [2], 'grad');
  one('softmax gumbel grad (no noise outside training)', 'softmax:gumbel', [10], sm({ softmax_type: 'gumbel', temperature: 2.5 }), 'random', [2], 'grad');
  one('softmax entmax alpha 1 grad', 'softmax:standard', [10], sm({ softmax_type: 'entmax', entmax_alpha: 1 }), 'random', [2], 'grad');
  // nested: inside sequential, parallel branches, before a residual
  cases.push({ name: 'softmax sparsemax and hierarchical inside sequential', kernel: 'softmax:nested', config: { input_shape: [8], layers: [{ type: 'sequential', layers: [dense(8, 9, 'tanh'), sm({ softmax_type: 'sparsemax' }), dense(9, 15), sm({ hierarchy_levels: [3, 4] })] }] }, batches: [3, 1], inputs: 'random', weights: 'random' });
  cases.push({ name: 'softmax variants as parallel branches (concat)', kernel: 'softmax:nested', config: { input_shape: [2, 14], layers: [{ type: 'parallel', combine_mode: 'concat', branches: [sm({ softmax_type: 'entmax' }), sm({ adaptive_cutoffs: [4, 7, 12] }), sm({ mixture_components: 2 })] }] }, batches: [2], inputs: 'random', weights: 'random' });
  cases.push({ name: 'softmax entmax then residual', kernel: 'softmax:nested', config: { input_shape: [10], layers: [dense(10, 10), sm({ softmax_type: 'entmax' }), { type: 'residual' }] }, batches: [3], inputs: 'random', weights: 'random' });
  cases.push({ name: 'softmax nested grad (dense, sparsemax, dense, mixture)', kernel: 'softmax:nested', config: { input_shape: [8], layers: [dense(8, 9, 'tanh'), sm({ softmax_type: 'sparsemax' }), dense(9, 14), sm({ mixture_components: 2 })] }, batches: [3], inputs: 'random', weights: 'random', scenario: 'grad' });
  // training: gumbel noise drawn from the step's rng on the host, then the GPU softmax
  cases.push({ name: 'softmax gumbel train (noise from ctx.rng)', kernel: 'softmax:gumbel', config: { input_shape: [6], layers: [dense(6, 5), sm({ softmax_type: 'gumbel', temperature: 0.8 })] }, batches: [2], inputs: 'random', weights: 'random', scenario: 'train', train: { epochs: 2, batchSize: 3 } });
  cases.push({ name: 'softmax entmax + hierarchical train', kernel: 'softmax:train', config: { input_shape: [6], layers: [dense(6, 7), sm({ softmax_type: 'entmax' }), dense(7, 15), sm({ hierarchy_levels: [3, 4] })] }, batches: [2], inputs: 'random', weights: 'random', scenario: 'train', train: { epochs: 2, batchSize: 4 } });
  if (large) {
    one('large: softmax sparsemax 2000 wide x16', 'large', [2000], sm({ softmax_type: 'sparsemax' }), 'random', [16]);
    one('large: softmax entmax 1.5 1500 wide x16', 'large', [1500], sm({ softmax_type: 'entmax' }), 'random', [16]);
    one('large: softmax hierarchical [16, 16, 16] x64', 'large', [16 + 256 + 4096], sm({ hierarchy_levels: [16, 16, 16] }), 'random', [64]);
    one('large: softmax adaptive [2000, 10000, 30000] x8', 'large', [30002], sm({ adaptive_cutoffs: [2000, 10000, 30000] }), 'random', [8]);
    one('large: softmax mixture K=8 n=1000 x32', 'large', [8 + 8000], sm({ mixture_components: 8 }), 'random', [32]);
    one('large: softmax entmax 1.5 grad 1000 wide x32', 'large', [1000], sm({ softmax_type: 'entmax' }), 'random', [32], 'grad');
  }
  return cases;
}
