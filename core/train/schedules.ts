/**
 * Learning-rate schedules: pure functions lr(t) of the epoch (default) or global step t,
 * counted from 0, named and parameterized like torch.optim.lr_scheduler.
 *
 * | type        | torch class        | lr(t)                                                              |
 * |-------------|--------------------|--------------------------------------------------------------------|
 * | constant    | (no scheduler)     | base                                                               |
 * | step        | StepLR             | base * gamma^floor(t / step_size)                                  |
 * | multistep   | MultiStepLR        | base * gamma^(number of milestones <= t)                           |
 * | exponential | ExponentialLR      | base * gamma^t                                                     |
 * | cosine      | CosineAnnealingLR  | eta_min + (base - eta_min) * (1 + cos(pi * t / T_max)) / 2         |
 * | linear      | LinearLR           | base * (start + (end - start) * min(t, total_iters) / total_iters) |
 * | polynomial  | PolynomialLR       | base * (1 - min(t, total_iters) / total_iters)^power               |
 *
 * Evaluation is float64 with + - * / only, so every runtime gets the same bits. Where torch's
 * scheduler computes lr recursively (lr_t from lr_{t-1}: StepLR, MultiStepLR, ExponentialLR,
 * LinearLR, PolynomialLR), Heddle runs the same recursion in the same order, so the values
 * equal torch's float64 learning rates. Cosine uses the closed form with Heddle's own
 * float64 cosine (hostmath.cosPiRatio); torch's recursive cosine agrees to ~1e-15 relative.
 */
import { fail } from '../errors.ts';
import { describeJson } from '../fields.ts';
import { cosPiRatio, powInt } from './hostmath.ts';

export const SCHEDULES = ['constant', 'step', 'multistep', 'exponential', 'cosine', 'linear', 'polynomial'] as const;
export type ScheduleName = (typeof SCHEDULES)[number];
/** What t counts: epochs (torch examples call scheduler.step() once per epoch) or optimizer steps. */
export type ScheduleInterval = 'epoch' | 'step';

interface Base {
  interval: ScheduleInterval;
}
export type ScheduleSpec =
  | (Base & { type: 'constant' })
  | (Base & { type: 'step'; step_size: number; gamma: number })
  | (Base & { type: 'multistep'; milestones: number[]; gamma: number })
  | (Base & { type: 'exponential'; gamma: number })
  | (Base & { type: 'cosine'; T_max: number; eta_min: number })
  | (Base & { type: 'linear'; start_factor: number; end_factor: number; total_iters: number })
  | (Base & { type: 'polynomial'; total_iters: number; power: number });

export type ScheduleSpecInput = ScheduleName | string | ({ type: string } & Record<string, unknown>);

const KEYS: Record<ScheduleName, readonly string[]> = {
  constant: [],
  step: ['step_size', 'gamma'],
  multistep: ['milestones', 'gamma'],
  exponential: ['gamma'],
  cosine: ['T_max', 'eta_min'],
  linear: ['start_factor', 'end_factor', 'total_iters'],
  polynomial: ['total_iters', 'power'],
};

// Keys are lowercased with '_' and '-' removed, so torch class names work too.
const TYPE_ALIASES: Record<string, ScheduleName> = {
  constant: 'constant', none: 'constant',
  step: 'step', steplr: 'step',
  multistep: 'multistep', multisteplr: 'multistep',
  exponential: 'exponential', exponentiallr: 'exponential',
  cosine: 'cosine', cosineannealing: 'cosine', cosineannealinglr: 'cosine',
  linear: 'linear', linearlr: 'linear', linearwarmup: 'linear', warmup: 'linear',
  polynomial: 'polynomial', polynomiallr: 'polynomial', poly: 'polynomial',
};

/** Parses and validates a schedule spec (CONFIG_INVALID errors name the field). */
export function parseScheduleSpec(raw: unknown, where = 'schedule'): ScheduleSpec {
  const obj: Record<string, unknown> =
    typeof raw === 'string' ? { type: raw } : raw !== null && typeof raw === 'object' && !Array.isArray(raw) ? (raw as Record<string, unknown>) : fail('CONFIG_INVALID', `expected a schedule name or an object with a "type", got ${describeJson(raw)}`, where);
  const typeRaw = obj.type;
  if (typeof typeRaw !== 'string') fail('CONFIG_INVALID', `missing schedule "type" (one of ${SCHEDULES.join(', ')})`, `${where}.type`);
  const type = TYPE_ALIASES[typeRaw.toLowerCase().replace(/[_-]/g, '')];
  if (!type) fail('CONFIG_INVALID', `unknown schedule '${typeRaw}'; expected one of ${SCHEDULES.join(', ')}`, `${where}.type`);
  for (const k of Object.keys(obj)) {
    if (k !== 'type' && k !== 'interval' && obj[k] !== undefined && !KEYS[type].includes(k)) {
      const takes = KEYS[type].length ? `takes ${KEYS[type].join(', ')} and interval` : 'takes only interval';
      fail('CONFIG_INVALID', `unknown ${type} schedule option '${k}'; ${type} ${takes}`, `${where}.${k}`);
    }
  }
  const at = (k: string): string => `${where}.${k}`;
  const num = (k: string, def: number | undefined, ok: (v: number) => boolean, rule: string): number => {
    const v = obj[k];
    if (v === undefined || v === null) {
      if (def === undefined) fail('CONFIG_INVALID', `${type} schedule needs '${k}'`, at(k));
      return def;
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) fail('CONFIG_INVALID', `expected a finite number, got ${describeJson(v)}`, at(k));
    if (!ok(v)) fail('CONFIG_INVALID', `must be ${rule}, got ${v}`, at(k));
    return v;
  };
  const posInt = (v: number): boolean => Number.isSafeInteger(v) && v >= 1;
  const gammaOk = (v: number): boolean => v >= 0;
  let interval: ScheduleInterval = 'epoch';
  if (obj.interval !== undefined && obj.interval !== null) {
    if (obj.interval !== 'epoch' && obj.interval !== 'step') fail('CONFIG_INVALID', `must be 'epoch' or 'step', got ${describeJson(obj.interval)}`, at('interval'));
    interval = obj.interval;
  }
  switch (type) {
    case 'constant':
      return { type, interval };
    case 'step':
      return { type, interval, step_size: num('step_size', undefined, posInt, 'an integer >= 1'), gamma: num('gamma', 0.1, gammaOk, '>= 0') };
    case 'multistep': {
      const m = obj.milestones;
      if (!Array.isArray(m)) fail('CONFIG_INVALID', m === undefined ? `multistep schedule needs 'milestones' (a list of epochs)` : `expected a list of integers, got ${describeJson(m)}`, at('milestones'));
      const milestones = m.map((v, i) => {
        if (typeof v !== 'number' || !posInt(v)) fail('CONFIG_INVALID', `expected an integer >= 1, got ${describeJson(v)}`, `${at('milestones')}[${i}]`);
        return v;
      });
      return { type, interval, milestones, gamma: num('gamma', 0.1, gammaOk, '>= 0') };
    }
    case 'exponential':
      return { type, interval, gamma: num('gamma', undefined, gammaOk, '>= 0') };
    case 'cosine':
      return { type, interval, T_max: num('T_max', undefined, posInt, 'an integer >= 1'), eta_min: num('eta_min', 0, (v) => v >= 0, '>= 0') };
    case 'linear':
      return {
        type,
        interval,
        start_factor: num('start_factor', 1 / 3, (v) => v > 0 && v <= 1, 'in (0, 1]'),
        end_factor: num('end_factor', 1, (v) => v >= 0 && v <= 1, 'in [0, 1]'),
        total_iters: num('total_iters', 5, posInt, 'an integer >= 1'),
      };
    case 'polynomial':
      return {
        type,
        interval,
        total_iters: num('total_iters', 5, posInt, 'an integer >= 1'),
        power: num('power', 1, (v) => Number.isSafeInteger(v) && v >= 0, 'an integer >= 0 (Heddle evaluates the power by multiplication)'),
      };
  }
}

/** A schedule bound to a base learning rate. lrAt(t) is pure; results of the recursive forms are cached. */
export interface Schedule {
  readonly spec: ScheduleSpec;
  readonly baseLr: number;
  /** Learning rate at epoch (or step) t >= 0. */
  lrAt(t: number): number;
}

export function createSchedule(spec: ScheduleSpecInput | ScheduleSpec, baseLr: number): Schedule {
  const s = parseScheduleSpec(spec);
  if (typeof baseLr !== 'number' || !Number.isFinite(baseLr) || baseLr < 0) fail('CONFIG_INVALID', `base learning rate must be a finite number >= 0, got ${String(baseLr)}`, 'schedule');
  const closed = closedForm(s, baseLr);
  const rec = closed ? null : recursion(s, baseLr);
  let memoT = 0;
  let memoLr = rec ? rec.lr0 : 0;
  return {
    spec: s,
    baseLr,
    lrAt(t: number): number {
      if (!Number.isSafeInteger(t) || t < 0) fail('CONFIG_INVALID', `schedule position must be an integer >= 0, got ${String(t)}`, 'schedule');
      if (closed) return closed(t);
      if (t < memoT) {
        memoT = 0;
        memoLr = rec!.lr0;
      }
      for (let e = memoT + 1; e <= t; e++) memoLr = rec!.next(e, memoLr);
      memoT = t;
      return memoLr;
    },
  };
}

/** lr at t for a spec and base lr (a fresh schedule each call: O(t) for the recursive forms). */
export function scheduleLr(spec: ScheduleSpecInput | ScheduleSpec, baseLr: number, t: number): number {
  return createSchedule(spec, baseLr).lrAt(t);
}

function closedForm(s: ScheduleSpec, base: number): ((t: number) => number) | null {
  switch (s.type) {
    case 'constant':
      return () => base;
    case 'cosine':
      // torch's _get_closed_form_lr, same evaluation order: periodic beyond T_max, like torch.
      return (t) => s.eta_min + ((base - s.eta_min) * (1 + cosPiRatio(t, s.T_max))) / 2;
    default:
      return null;
  }
}

/** torch's chainable get_lr(): lr at 0, and lr_e from lr_{e-1} for e >= 1. */
function recursion(s: ScheduleSpec, base: number): { lr0: number; next: (e: number, lr: number) => number } {
  switch (s.type) {
    case 'step':
      return { lr0: base, next: (e, lr) => (e % s.step_size === 0 ? lr * s.gamma : lr) };
    case 'multistep': {
      const counts = new Map<number, number>();
      for (const m of s.milestones) counts.set(m, (counts.get(m) ?? 0) + 1);
      return { lr0: base, next: (e, lr) => (counts.has(e) ? lr * powInt(s.gamma, counts.get(e)!) : lr) };
    }
    case 'exponential':
      return { lr0: base, next: (_e, lr) => lr * s.gamma };
    case 'linear': {
      const { start_factor: sf, end_factor: ef, total_iters: n } = s;
      return { lr0: base * sf, next: (e, lr) => (e > n ? lr : lr * (1.0 + (ef - sf) / (n * sf + (e - 1) * (ef - sf)))) };
    }
    case 'polynomial': {
      const { total_iters: n, power } = s;
      return { lr0: base, next: (e, lr) => (e > n ? lr : lr * powInt((1.0 - e / n) / (1.0 - (e - 1) / n), power)) };
    }
    default:
      return fail('INTERNAL', `schedule ${s.type} has no recursion`);
  }
}
