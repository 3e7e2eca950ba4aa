import { describe, expect, it } from 'vitest';
import { HeddleError } from '../errors.ts';
import { cosPiRatio, powInt } from './hostmath.ts';
import { createSchedule, parseScheduleSpec, scheduleLr } from './schedules.ts';

/** float64 -> (mantissa, exponent) with x = m * 2^e exactly (positive normal x). */
function decompose(x: number): [bigint, bigint] {
  const v = new DataView(new ArrayBuffer(8));
  v.setFloat64(0, x);
  const b = v.getBigUint64(0);
  const ex = (b >> 52n) & 0x7ffn;
  return [(b & ((1n << 52n) - 1n)) | (1n << 52n), ex - 1075n];
}

/** |x^n - r| <= half an ulp of r, in exact integer arithmetic. */
function correctlyRounded(x: number, n: number, r: number): boolean {
  const [m, e] = decompose(x);
  const [mr, er] = decompose(r);
  const en = e * BigInt(n);
  const low = en < er - 1n ? en : er - 1n;
  const a = m ** BigInt(n) << (en - low);
  const b = mr << (er - low);
  const half = 1n << (er - 1n - low);
  const d = a > b ? a - b : b - a;
  return d <= half;
}

const seq = (s: ReturnType<typeof createSchedule>, n: number): number[] => Array.from({ length: n }, (_, t) => s.lrAt(t));

describe('host math', () => {
  it('powInt is correctly rounded (checked in exact integer arithmetic)', () => {
    for (const x of [0.9, 0.999, 0.99, 0.8, 0.95, 0.1]) {
      for (const n of [1, 2, 3, 7, 10, 100, 1000, 4321]) {
        const r = powInt(x, n);
        if (r < 1e-300) continue;
        expect(correctlyRounded(x, n, r)).toBe(true);
      }
    }
    expect(powInt(0.5, 0)).toBe(1);
    expect(powInt(0.5, 3)).toBe(0.125);
    expect(powInt(3, 4)).toBe(81);
  });

  it('cosPiRatio agrees with cos to ~1e-16 and is exact at the landmarks', () => {
    for (const den of [1, 2, 3, 7, 10, 100, 1000]) {
      for (let num = 0; num <= 2 * den; num += Math.max(1, Math.floor(den / 50))) {
        // The reference's own argument rounding (ulp of pi*num/den, up to 9e-16) dominates.
        expect(Math.abs(cosPiRatio(num, den) - Math.cos((Math.PI * num) / den))).toBeLessThan(2e-15);
      }
      expect(cosPiRatio(0, den)).toBe(1);
      expect(cosPiRatio(den, den)).toBe(-1);
      expect(cosPiRatio(2 * den, den)).toBe(1);
      expect(cosPiRatio(7 * den, den)).toBe(-1);
    }
    expect(cosPiRatio(1, 2)).toBe(0);
    expect(cosPiRatio(5, 10)).toBe(0);
    expect(cosPiRatio(15, 10)).toBe(0);
  });
});

describe('schedules', () => {
  it('constant', () => {
    expect(seq(createSchedule('constant', 0.1), 4)).toEqual([0.1, 0.1, 0.1, 0.1]);
  });

  it('step (StepLR): torch\'s float64 values, repeated multiplication', () => {
    // torch.optim.lr_scheduler.StepLR(opt(lr=0.1), step_size=1, gamma=0.1).get_last_lr() per epoch
    expect(seq(createSchedule({ type: 'StepLR', step_size: 1 }, 0.1), 4)).toEqual([0.1, 0.010000000000000002, 0.0010000000000000002, 0.00010000000000000003]);
    expect(seq(createSchedule({ type: 'step', step_size: 2, gamma: 0.5 }, 0.1), 6)).toEqual([0.1, 0.1, 0.05, 0.05, 0.025, 0.025]);
  });

  it('multistep (MultiStepLR), with a repeated milestone counting twice', () => {
    expect(seq(createSchedule({ type: 'multistep', milestones: [2, 4] }, 1), 6)).toEqual([1, 1, 0.1, 0.1, 0.010000000000000002, 0.010000000000000002]);
    expect(seq(createSchedule({ type: 'multistep', milestones: [3, 1, 3], gamma: 0.5 }, 1), 5)).toEqual([1, 0.5, 0.5, 0.125, 0.125]);
  });

  it('exponential (ExponentialLR)', () => {
    const s = createSchedule({ type: 'exponential', gamma: 0.9 }, 0.01);
    for (let t = 0; t < 60; t++) expect(Math.abs(s.lrAt(t) / (0.01 * 0.9 ** t) - 1)).toBeLessThan(1e-14);
    expect(s.lrAt(1)).toBe(0.009000000000000001); // 0.01 * 0.9 in float64, as torch
  });

  it('cosine (CosineAnnealingLR closed form)', () => {
    const s = createSchedule({ type: 'cosine', T_max: 10, eta_min: 0.001 }, 0.1);
    for (let t = 0; t <= 20; t++) {
      const want = 0.001 + ((0.1 - 0.001) * (1 + Math.cos((Math.PI * t) / 10))) / 2;
      expect(Math.abs(s.lrAt(t) - want)).toBeLessThan(1e-16);
    }
    expect(s.lrAt(0)).toBe(0.1);
    expect(s.lrAt(10)).toBe(0.001);
    expect(s.lrAt(5)).toBe(0.001 + (0.1 - 0.001) / 2);
    expect(s.lrAt(20)).toBe(0.1); // periodic past T_max, like torch's formula
  });

  it('linear (LinearLR): warmup from start_factor to end_factor, then constant', () => {
    const s = createSchedule('linear', 0.1); // torch defaults: 1/3 -> 1 over 5 iterations
    expect(s.lrAt(0)).toBe(0.1 * (1 / 3));
    for (let t = 0; t <= 8; t++) {
      const want = 0.1 * (1 / 3 + ((1 - 1 / 3) * Math.min(t, 5)) / 5);
      expect(Math.abs(s.lrAt(t) / want - 1)).toBeLessThan(1e-15);
    }
    expect(s.lrAt(5)).toBe(s.lrAt(9));
    const d = createSchedule({ type: 'linear', start_factor: 1, end_factor: 0, total_iters: 4 }, 2);
    expect(seq(d, 6)).toEqual([2, 1.5, 1, 0.5, 0, 0]);
  });

  it('polynomial (PolynomialLR), integer power', () => {
    const s = createSchedule({ type: 'polynomial', total_iters: 4, power: 2 }, 1);
    const got = seq(s, 7);
    [1, 0.5625, 0.25, 0.0625, 0, 0, 0].forEach((w, t) => expect(Math.abs(got[t] - w)).toBeLessThan(1e-16));
    expect(got[1]).toBe(0.5625);
    expect(seq(createSchedule('polynomial', 1), 7)).toEqual(seq(createSchedule({ type: 'polynomial', total_iters: 5, power: 1 }, 1), 7));
  });

  it('lrAt is a pure function of t (the cache never leaks)', () => {
    for (const spec of [{ type: 'exponential', gamma: 0.97 }, { type: 'linear' }, { type: 'polynomial', power: 3, total_iters: 30 }, { type: 'step', step_size: 3 }]) {
      const s = createSchedule(spec, 0.3);
      const forward = seq(s, 40);
      const backward = Array.from({ length: 40 }, (_, i) => s.lrAt(39 - i)).reverse();
      expect(backward).toEqual(forward);
      expect(scheduleLr(spec, 0.3, 17)).toBe(forward[17]);
    }
  });

  it('parses intervals and torch names; rejects bad specs', () => {
    expect(parseScheduleSpec({ type: 'CosineAnnealingLR', T_max: 3, interval: 'step' })).toEqual({ type: 'cosine', T_max: 3, eta_min: 0, interval: 'step' });
    expect(parseScheduleSpec('constant')).toEqual({ type: 'constant', interval: 'epoch' });
    const bad: [unknown, string][] = [
      ['onecycle', "unknown schedule 'onecycle'"],
      [{ type: 'step' }, "step schedule needs 'step_size'"],
      [{ type: 'step', step_size: 0 }, 'schedule.step_size: must be an integer >= 1'],
      [{ type: 'exponential' }, "needs 'gamma'"],
      [{ type: 'cosine', T_max: 5, interval: 'batch' }, "must be 'epoch' or 'step'"],
      [{ type: 'polynomial', power: 0.5 }, 'an integer >= 0'],
      [{ type: 'multistep', milestones: [2, 0] }, 'schedule.milestones[1]: expected an integer >= 1'],
      [{ type: 'multistep' }, "needs 'milestones'"],
      [{ type: 'linear', start_factor: 0 }, 'in (0, 1]'],
      [{ type: 'step', step_size: 2, gama: 0.1 }, "unknown step schedule option 'gama'"],
      [{ type: 'constant', gamma: 0.1 }, 'takes only interval'],
    ];
    for (const [raw, msg] of bad) {
      expect(() => parseScheduleSpec(raw)).toThrow(HeddleError);
      expect(() => parseScheduleSpec(raw)).toThrow(msg);
    }
    expect(() => createSchedule('constant', -1)).toThrow('base learning rate');
    expect(() => createSchedule('constant', 1).lrAt(-1)).toThrow('integer >= 0');
  });
});
