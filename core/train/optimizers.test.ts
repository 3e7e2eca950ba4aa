import { describe, expect, it } from 'vitest';
import { HeddleError } from '../errors.ts';
import { Prng } from '../prng.ts';
import { Tensor } from '../tensor.ts';
import { type OptimizerSpec, createOptimizer, parseOptimizerSpec } from './optimizers.ts';
import { bits, makeParams, ulpDiff } from './test-util.ts';

function values(ps: ReturnType<typeof makeParams>): number[][] {
  return ps.map((p) => Array.from(p.param.value.data));
}

function setGrads(ps: ReturnType<typeof makeParams>, grads: number[][]): void {
  ps.forEach((p, i) => p.param.grad.data.set(grads[i]));
}

describe('optimizer specs', () => {
  it('fills torch defaults', () => {
    expect(parseOptimizerSpec('sgd')).toEqual({ type: 'sgd', lr: 1e-3, momentum: 0, dampening: 0, weight_decay: 0, nesterov: false });
    expect(parseOptimizerSpec('AdamW')).toEqual({ type: 'adamw', lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 1e-2, amsgrad: false });
    expect(parseOptimizerSpec({ type: 'RMSprop' })).toEqual({ type: 'rmsprop', lr: 1e-2, alpha: 0.99, eps: 1e-8, weight_decay: 0, momentum: 0, centered: false });
    expect(parseOptimizerSpec({ type: 'sgd', learning_rate: 0.5 }).lr).toBe(0.5);
  });

  const bad: [unknown, string][] = [
    ['x', "unknown optimizer 'x'"],
    [{ type: 'sgd', lr: -1 }, 'learning rate must be >= 0, got -1'],
    [{ type: 'adamw', betas: [0.9, 1] }, 'optimizer.betas[1]: must be in [0, 1), got 1'],
    [{ type: 'adamw', betas: [-0.1, 0.9] }, 'optimizer.betas[0]: must be in [0, 1)'],
    [{ type: 'adamw', betas: [0.9] }, 'expected [beta1, beta2]'],
    [{ type: 'adamw', eps: -1 }, 'eps must be >= 0'],
    [{ type: 'sgd', nesterov: true }, 'nesterov momentum requires momentum > 0'],
    [{ type: 'sgd', momentum: 0.9, nesterov: true, dampening: 0.1 }, 'dampening = 0'],
    [{ type: 'sgd', betas: [0.9, 0.9] }, "unknown sgd option 'betas'"],
    [{ type: 'rmsprop', alpha: 1.5 }, 'alpha must be in [0, 1]'],
    [{ type: 'sgd', lr: '0.1' }, 'expected a finite number'],
    [{ type: 'adamw', amsgrad: 1 }, 'expected true or false'],
    [{ lr: 0.1 }, 'missing optimizer "type"'],
    [42, 'expected an optimizer name'],
  ];
  for (const [raw, msg] of bad) {
    it(`rejects ${JSON.stringify(raw)}`, () => {
      expect(() => parseOptimizerSpec(raw)).toThrow(HeddleError);
      expect(() => parseOptimizerSpec(raw)).toThrow(msg);
    });
  }

  it('rejects a bad lr at step time', () => {
    const ps = makeParams([[1]], [[1]]);
    const opt = createOptimizer('sgd', ps);
    expect(() => opt.step(Number.NaN)).toThrow('learning rate');
    expect(opt.steps).toBe(0);
  });
});

/*
 * Hand-computed steps. Every value below is a dyadic rational with few bits, so each
 * intermediate is exact in f32 whatever the rounding or fusing: these are the numbers
 * torch.optim produces for the same inputs, derived by hand from torch's update rules.
 */
describe('hand-computed torch steps (exact)', () => {
  it('SGD with momentum: two steps', () => {
    const ps = makeParams([[1, -2]], [[0.5, 1]]);
    const opt = createOptimizer({ type: 'sgd', lr: 0.5, momentum: 0.5 }, ps);
    opt.step(); // buf = g; p = p - 0.5 g
    expect(values(ps)).toEqual([[0.75, -2.5]]);
    opt.step(); // buf = 0.5 buf + g = 1.5 g; p = p - 0.5 buf
    expect(values(ps)).toEqual([[0.375, -3.25]]);
  });

  it('SGD nesterov and weight decay', () => {
    const ps = makeParams([[1, -2]], [[0.5, 1]]);
    createOptimizer({ type: 'sgd', lr: 0.5, momentum: 0.5, nesterov: true }, ps).step(); // g + 0.5 buf = 1.5 g
    expect(values(ps)).toEqual([[0.625, -2.75]]);
    const qs = makeParams([[1, -2]], [[0.5, 1]]);
    createOptimizer({ type: 'sgd', lr: 0.5, weight_decay: 0.5 }, qs).step(); // g + 0.5 p = [1, 0]
    expect(values(qs)).toEqual([[0.5, -2]]);
  });

  it('SGD dampening (from the second step on)', () => {
    const ps = makeParams([[0]], [[1]]);
    const opt = createOptimizer({ type: 'sgd', lr: 1, momentum: 0.5, dampening: 0.5 }, ps);
    opt.step(); // buf = 1 (no dampening on the first step)
    opt.step(); // buf = 0.5 + 0.5*1 = 1
    expect(values(ps)).toEqual([[-2]]);
  });

  it('AdamW, betas (0.5, 0.75), large-weight lerp branch', () => {
    // p *= 1 - 0.5*0.5; m = lerp(0, g, 0.5) = g/2; v = 0.25 g^2; bc1 = 0.5, bc2 = 0.25 (sqrt 0.5);
    // p += (-1 * m) / (sqrt(v) / 0.5): [2, 0] with g [1, -2] -> [1.5 - 0.5, 0 + 0.5]
    for (const amsgrad of [false, true]) {
      const ps = makeParams([[2, 0]], [[1, -2]]);
      createOptimizer({ type: 'adamw', lr: 0.5, betas: [0.5, 0.75], eps: 0, weight_decay: 0.5, amsgrad }, ps).step();
      expect(values(ps)).toEqual([[1, 0.5]]);
    }
  });

  it('AdamW, small-weight lerp branch and eps', () => {
    // betas (0.75, 0.75): m = 0.25 g, v = 0.25 g^2, bc1 = bc2 = 0.25, step = lr/0.25 = 2, bc2_sqrt = 0.5
    // denom = (|g|/2)/0.5 + eps = |g| + 1 for eps = 1; p -= 2 * 0.25 g / (|g| + 1)
    const ps = makeParams([[4, 4]], [[1, -3]]);
    createOptimizer({ type: 'adamw', lr: 0.5, betas: [0.75, 0.75], eps: 1, weight_decay: 0 }, ps).step();
    expect(values(ps)).toEqual([[4 - 0.25, 4 + 0.375]]);
  });

  it('RMSprop plain, momentum, weight decay and centered', () => {
    const a = makeParams([[1]], [[2]]);
    const oa = createOptimizer({ type: 'rmsprop', lr: 0.5, alpha: 0.75, eps: 0 }, a);
    oa.step(); // sq = (0.25*2)*2 = 1; p = 1 - 0.5*2/1
    expect(values(a)).toEqual([[0]]);
    setGrads(a, [[1]]);
    oa.step(); // sq = 0.75 + 0.25 = 1; p = 0 - 0.5*1/1
    expect(values(a)).toEqual([[-0.5]]);

    const b = makeParams([[1]], [[2]]);
    const ob = createOptimizer({ type: 'rmsprop', lr: 0.5, alpha: 0.75, eps: 0, momentum: 0.5 }, b);
    ob.step(); // buf = 0 + 2/1 = 2; p = 1 - 0.5*2
    setGrads(b, [[1]]);
    ob.step(); // buf = 2*0.5 + 1/1 = 2; p = 0 - 1
    expect(values(b)).toEqual([[-1]]);

    const c = makeParams([[2]], [[1]]);
    createOptimizer({ type: 'rmsprop', lr: 0.5, alpha: 0.75, eps: 0, weight_decay: 0.5 }, c).step(); // g = 1 + 1 = 2
    expect(values(c)).toEqual([[1]]);

    const d = makeParams([[1]], [[2]]);
    createOptimizer({ type: 'rmsprop', lr: 0.5, alpha: 0.5, eps: 0, centered: true }, d).step();
    // sq = (0.5*2)*2 = 2; ga = lerp(0, 2, 0.5) = 1; avg = sqrt(2 - 1) = 1; p = 1 - 0.5*2/1
    expect(values(d)).toEqual([[0]]);
  });
});

/** Textbook float64 implementations, independent of the f32 code. */
class Ref {
  t = 0;
  s1: number[] = [];
  s2: number[] = [];
  s3: number[] = [];
  constructor(readonly spec: OptimizerSpec, public p: number[]) {
    this.s1 = p.map(() => 0);
    this.s2 = p.map(() => 0);
    this.s3 = p.map(() => 0);
  }
  step(g0: number[]): void {
    const s = this.spec;
    this.t++;
    for (let i = 0; i < this.p.length; i++) {
      let g = g0[i];
      if (s.type === 'sgd') {
        g += s.weight_decay * this.p[i];
        if (s.momentum) {
          this.s1[i] = this.t === 1 ? g : s.momentum * this.s1[i] + (1 - s.dampening) * g;
          g = s.nesterov ? g + s.momentum * this.s1[i] : this.s1[i];
        }
        this.p[i] -= s.lr * g;
      } else if (s.type === 'adamw') {
        const [b1, b2] = s.betas;
        this.p[i] *= 1 - s.lr * s.weight_decay;
        this.s1[i] = b1 * this.s1[i] + (1 - b1) * g;
        this.s2[i] = b2 * this.s2[i] + (1 - b2) * g * g;
        this.s3[i] = Math.max(this.s3[i], this.s2[i]);
        const mhat = this.s1[i] / (1 - b1 ** this.t);
        const vhat = (s.amsgrad ? this.s3[i] : this.s2[i]) / (1 - b2 ** this.t);
        this.p[i] -= (s.lr * mhat) / (Math.sqrt(vhat) + s.eps);
      } else {
        g += s.weight_decay * this.p[i];
        this.s1[i] = s.alpha * this.s1[i] + (1 - s.alpha) * g * g;
        let avg: number;
        if (s.centered) {
          this.s3[i] = s.alpha * this.s3[i] + (1 - s.alpha) * g;
          avg = Math.sqrt(this.s1[i] - this.s3[i] * this.s3[i]) + s.eps;
        } else {
          avg = Math.sqrt(this.s1[i]) + s.eps;
        }
        if (s.momentum > 0) {
          this.s2[i] = s.momentum * this.s2[i] + g / avg;
          this.p[i] -= s.lr * this.s2[i];
        } else {
          this.p[i] -= (s.lr * g) / avg;
        }
      }
    }
  }
}

describe('against a float64 reference', () => {
  const specs: unknown[] = [
    { type: 'sgd', lr: 0.01 },
    { type: 'sgd', lr: 0.05, momentum: 0.9, weight_decay: 1e-2 },
    { type: 'sgd', lr: 0.05, momentum: 0.9, dampening: 0.1 },
    { type: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true, weight_decay: 1e-3 },
    'adamw',
    { type: 'adamw', lr: 3e-3, betas: [0.8, 0.99], weight_decay: 0.1, amsgrad: true },
    { type: 'adamw', lr: 1e-3, weight_decay: 0 },
    'rmsprop',
    { type: 'rmsprop', lr: 1e-3, momentum: 0.9, weight_decay: 1e-2 },
    { type: 'rmsprop', lr: 1e-3, centered: true },
    { type: 'rmsprop', lr: 1e-3, centered: true, momentum: 0.5 },
  ];
  for (const raw of specs) {
    it(`${JSON.stringify(raw)}: one step within 2 ulp, four steps within 8 ulp`, () => {
      const spec = parseOptimizerSpec(raw);
      const rng = new Prng(99);
      const n = 500;
      // Params in [1, 2) and grads in (-1, 1): the update never cancels the parameter, so
      // the f32 result is well conditioned and ulp distances measure the arithmetic alone.
      const p0 = Array.from({ length: n }, () => rng.uniformRange(1, 2));
      const ps = makeParams([p0], [p0.map(() => 0)]);
      const ref = new Ref(spec, [...p0]);
      const opt = createOptimizer(spec, ps);
      for (let s = 0; s < 4; s++) {
        const g = p0.map(() => rng.uniformRange(-1, 1));
        setGrads(ps, [g]);
        opt.step();
        ref.step(g);
        const got = ps[0].param.value.data;
        const worst = Math.max(...ref.p.map((v, i) => ulpDiff(Math.fround(v), got[i])));
        expect(worst).toBeLessThanOrEqual(s === 0 ? 2 : 8);
      }
    });
  }
});

describe('state export and import', () => {
  for (const raw of ['sgd', { type: 'sgd', momentum: 0.9 }, { type: 'adamw', amsgrad: true }, { type: 'rmsprop', momentum: 0.9, centered: true }]) {
    it(`${JSON.stringify(raw)}: a restored optimizer continues bit for bit`, () => {
      const rng = new Prng(5);
      const v = [Array.from({ length: 6 }, () => rng.uniformRange(-1, 1)), [0.5, -0.25]];
      const grads = () => [Array.from({ length: 6 }, () => rng.uniformRange(-1, 1)), [rng.uniformRange(-1, 1), rng.uniformRange(-1, 1)]];
      const a = makeParams(v, grads());
      const oa = createOptimizer(raw as string, a);
      expect(oa.exportState().tensors.size).toBe(0);
      for (let s = 0; s < 3; s++) {
        setGrads(a, grads());
        oa.step(0.01);
      }
      const st = oa.exportState();
      expect(st.step).toBe(3);
      expect([...st.tensors.keys()]).toEqual(a.flatMap((p) => oa.slots.map((s) => `${p.name}.${s}`)));
      const b = makeParams(a.map((p) => Array.from(p.param.value.data)), grads());
      const ob = createOptimizer(raw as string, b);
      ob.importState(st);
      expect(ob.steps).toBe(3);
      for (let s = 0; s < 2; s++) {
        const g = grads();
        setGrads(a, g);
        setGrads(b, g);
        oa.step(0.01);
        ob.step(0.01);
      }
      a.forEach((p, i) => expect(bits(b[i].param.value.data)).toEqual(bits(p.param.value.data)));
    });
  }

  it('slot names follow torch', () => {
    expect(createOptimizer({ type: 'adamw', amsgrad: true }, []).slots).toEqual(['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq']);
    expect(createOptimizer({ type: 'rmsprop', momentum: 0.9, centered: true }, []).slots).toEqual(['square_avg', 'momentum_buffer', 'grad_avg']);
    expect(createOptimizer({ type: 'sgd', momentum: 0.9 }, []).slots).toEqual(['momentum_buffer']);
  });

  it('rejects bad state without changing anything', () => {
    const a = makeParams([[1, 2]], [[0.5, 0.5]]);
    const oa = createOptimizer('adamw', a);
    oa.step();
    const good = oa.exportState();
    const b = makeParams([[1, 2]], [[0.5, 0.5]]);
    const ob = createOptimizer('adamw', b);
    const cases: [object, string][] = [
      [{ ...good, type: 'sgd' }, "state is for optimizer 'sgd'"],
      [{ ...good, step: -1 }, 'step must be an integer'],
      [{ ...good, tensors: new Map([...good.tensors].slice(1)) }, 'missing 1 state tensor(s): p0.exp_avg'],
      [{ ...good, tensors: new Map([...good.tensors, ['p0.bogus', Tensor.zeros([2])]]) }, "unexpected state tensor 'p0.bogus'"],
      [{ ...good, tensors: new Map([['p0.exp_avg', Tensor.zeros([3])], ['p0.exp_avg_sq', Tensor.zeros([2])]]) }, 'has shape [3]'],
      [{ ...good, tensors: new Map([['p0.exp_avg', Tensor.from([2], [Number.NaN, 0])], ['p0.exp_avg_sq', Tensor.zeros([2])]]) }, 'must be finite'],
    ];
    for (const [st, msg] of cases) {
      expect(() => ob.importState(st as typeof good)).toThrow(msg);
      expect(ob.steps).toBe(0);
      expect(ob.exportState().tensors.size).toBe(0);
    }
  });
});
