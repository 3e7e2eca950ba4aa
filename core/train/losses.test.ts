import { describe, expect, it } from 'vitest';
import { HeddleError } from '../errors.ts';
import { log } from '../math/index.ts';
import { Prng } from '../prng.ts';
import { Tensor } from '../tensor.ts';
import { clipGradNorm, gradNorm } from './clip.ts';
import { computeLoss, crossEntropyLoss, mseLoss, parseLossName } from './losses.ts';
import { bits, makeParams, ulpDiff } from './test-util.ts';

function randomTensor(rng: Prng, shape: number[], scale = 1): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return Tensor.from(shape, Array.from({ length: n }, () => rng.uniformRange(-scale, scale)));
}

describe('mse', () => {
  it('hand-computed: mean of squares, grad 2(y - t)/n', () => {
    const r = mseLoss(Tensor.from([2, 1], [1, 2]), Tensor.from([2, 1], [0, 0]));
    expect(r.loss).toBe(2.5);
    expect(Array.from(r.grad.data)).toEqual([1, 2]);
    expect(r.grad.shape).toEqual([2, 1]);
  });

  it('matches a float64 reference', () => {
    const rng = new Prng(1);
    const y = randomTensor(rng, [8, 5]);
    const t = randomTensor(rng, [8, 5]);
    const r = mseLoss(y, t);
    let s = 0;
    for (let i = 0; i < 40; i++) s += (y.data[i] - t.data[i]) ** 2;
    expect(Math.abs(r.loss - s / 40)).toBeLessThan(1e-6 * (s / 40));
    for (let i = 0; i < 40; i++) expect(ulpDiff(r.grad.data[i], Math.fround((2 * (y.data[i] - t.data[i])) / 40))).toBeLessThanOrEqual(2);
  });

  it('rejects bad targets', () => {
    const y = Tensor.from([2, 1], [1, 2]);
    expect(() => mseLoss(y, Tensor.from([2], [0, 0]))).toThrow('shape');
    expect(() => mseLoss(y, Tensor.from([2, 1], [0, Number.NaN]))).toThrow('element 1 is NaN');
    expect(() => mseLoss(y, new Tensor([2, 1], Int32Array.of(0, 1)))).toThrow('f32');
  });
});

describe('cross_entropy', () => {
  it('hand-computed: equal logits give log(C), grad (1/C - onehot)/rows', () => {
    const r = crossEntropyLoss(Tensor.from([2, 2], [0, 0, 3, 3]), Int32Array.of(0, 1));
    expect(r.loss).toBe(log(2));
    expect(Array.from(r.grad.data)).toEqual([-0.25, 0.25, 0.25, -0.25]);
  });

  it('matches a float64 reference (log-sum-exp) for indices and probabilities', () => {
    const rng = new Prng(2);
    const [rows, c] = [6, 7];
    const z = randomTensor(rng, [rows, c], 4);
    const idx = Int32Array.from({ length: rows }, () => rng.int(c));
    const probs = new Float32Array(rows * c);
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let j = 0; j < c; j++) s += probs[r * c + j] = rng.uniform();
      for (let j = 0; j < c; j++) probs[r * c + j] = Math.fround(probs[r * c + j] / s);
    }
    const ref = (q: (r: number, j: number) => number) => {
      let total = 0;
      const g: number[] = [];
      for (let r = 0; r < rows; r++) {
        const row = Array.from(z.data.subarray(r * c, (r + 1) * c));
        const m = Math.max(...row);
        const s = row.reduce((a, v) => a + Math.exp(v - m), 0);
        const lse = m + Math.log(s);
        row.forEach((v, j) => {
          total += q(r, j) * (lse - v);
          g.push((Math.exp(v - m) / s - q(r, j)) / rows);
        });
      }
      return { loss: total / rows, g };
    };
    for (const [target, q] of [
      [idx, (r: number, j: number) => (idx[r] === j ? 1 : 0)],
      [new Tensor([rows, c], probs), (r: number, j: number) => probs[r * c + j]],
    ] as const) {
      const got = crossEntropyLoss(z, target);
      const want = ref(q);
      expect(Math.abs(got.loss - want.loss)).toBeLessThan(1e-5 * want.loss);
      want.g.forEach((v, i) => expect(Math.abs(got.grad.data[i] - v)).toBeLessThan(1e-6));
    }
  });

  it('one-hot probabilities give the same bits as class indices; i32, i64 and f32 indices agree', () => {
    const rng = new Prng(3);
    const z = randomTensor(rng, [5, 4], 3);
    const idx = [3, 0, 2, 2, 1];
    const a = crossEntropyLoss(z, Int32Array.from(idx));
    const onehot = new Float32Array(20);
    idx.forEach((t, r) => (onehot[r * 4 + t] = 1));
    for (const t of [new Tensor([5, 4], onehot), new Tensor([5], BigInt64Array.from(idx.map(BigInt))), Tensor.from([5], idx)]) {
      const b = crossEntropyLoss(z, t);
      expect(b.loss).toBe(a.loss);
      expect(bits(b.grad.data)).toEqual(bits(a.grad.data));
    }
  });

  it('is stable for huge logits', () => {
    const r = crossEntropyLoss(Tensor.from([1, 3], [1e30, 0, -1e30]), Int32Array.of(1));
    expect(r.loss).toBe(Math.fround(1e30));
    expect(Array.from(r.grad.data)).toEqual([1, -1, 0]);
    const s = crossEntropyLoss(Tensor.from([1, 2], [88, 89]), Int32Array.of(1));
    expect(Number.isFinite(s.loss)).toBe(true);
    // lse = 89 + log1p(e^-1) is rounded at 89's scale (ulp 7.6e-6) before z_t is subtracted, as in torch.
    expect(Math.abs(s.loss - Math.log1p(Math.exp(-1)))).toBeLessThan(8e-6);
  });

  it('takes leading dims: output [B, T, C] with targets [B, T], mean over B*T rows', () => {
    const rng = new Prng(4);
    const z = randomTensor(rng, [2, 3, 4]);
    const t = new Tensor([2, 3], Int32Array.of(0, 1, 2, 3, 0, 1));
    const a = crossEntropyLoss(z, t);
    const b = crossEntropyLoss(z.reshape([6, 4]), new Tensor([6], t.data));
    expect(a.loss).toBe(b.loss);
    expect(crossEntropyLoss(z, t.data as Int32Array).loss).toBe(a.loss);
    expect(a.grad.shape).toEqual([2, 3, 4]);
    expect(bits(a.grad.data)).toEqual(bits(b.grad.data));
  });

  it('rejects bad targets with the element index', () => {
    const z = Tensor.from([2, 3], [0, 0, 0, 0, 0, 0]);
    expect(() => crossEntropyLoss(z, Int32Array.of(0, 3))).toThrow('element 1 is 3; class indices must be integers in [0, 3)');
    expect(() => crossEntropyLoss(z, Int32Array.of(0, -1))).toThrow('element 1 is -1');
    expect(() => crossEntropyLoss(z, Tensor.from([2], [0, 1.5]))).toThrow('element 1 is 1.5');
    expect(() => crossEntropyLoss(z, Int32Array.of(0))).toThrow('expected class indices of shape [2] or probabilities of shape [2, 3]');
    expect(() => crossEntropyLoss(z, Tensor.from([2, 3], [0, 0, 0, 0, Infinity, 0]))).toThrow('must be finite');
  });

  it('parses loss names', () => {
    expect(parseLossName('CrossEntropyLoss')).toBe('cross_entropy');
    expect(parseLossName('MSELoss')).toBe('mse');
    expect(parseLossName('mse')).toBe('mse');
    expect(() => parseLossName('hinge')).toThrow("unknown loss 'hinge'");
    expect(() => parseLossName(3)).toThrow(HeddleError);
    const r = computeLoss('mse', Tensor.from([1, 1], [2]), Tensor.from([1, 1], [0]));
    expect(r.loss).toBe(4);
  });
});

describe('clipGradNorm', () => {
  it('hand-computed: grads (3, 4) have norm 5 and are scaled by 1/(5 + 1e-6)', () => {
    const ps = makeParams([[0], [0]], [[3], [4]]);
    expect(clipGradNorm(ps, 1)).toBe(5);
    const coef = Math.fround(1 / Math.fround(5 + Math.fround(1e-6)));
    expect(ps[0].param.grad.data[0]).toBe(Math.fround(3 * coef));
    expect(ps[1].param.grad.data[0]).toBe(Math.fround(4 * coef));
  });

  it('leaves grads alone below the threshold and returns the norm', () => {
    const ps = makeParams([[0, 0], [0]], [[1, 2], [2]]);
    expect(clipGradNorm(ps, 3.5)).toBe(3);
    expect(Array.from(ps[0].param.grad.data)).toEqual([1, 2]);
    expect(gradNorm(ps)).toBe(3);
  });

  it('clipped norm ends at max_norm (up to rounding), matching a float64 reference', () => {
    const rng = new Prng(7);
    const g = [Array.from({ length: 50 }, () => rng.uniformRange(-2, 2)), Array.from({ length: 9 }, () => rng.uniformRange(-2, 2))];
    const ps = makeParams(g.map((a) => a.map(() => 0)), g);
    const want = Math.sqrt(g.flat().reduce((a, v) => a + v * v, 0));
    const got = clipGradNorm(ps, 0.5);
    expect(Math.abs(got - want)).toBeLessThan(1e-5 * want);
    expect(Math.abs(gradNorm(ps) - 0.5)).toBeLessThan(1e-6);
  });

  it('rejects a bad max_norm', () => {
    expect(() => clipGradNorm([], 0)).toThrow('max_norm must be a finite number > 0');
    expect(() => clipGradNorm([], Number.NaN)).toThrow(HeddleError);
  });
});
