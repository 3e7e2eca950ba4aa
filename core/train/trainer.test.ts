import { describe, expect, it } from 'vitest';
import { HeddleError } from '../errors.ts';
import { add, div, f32, mul } from '../math/index.ts';
import { Network } from '../network.ts';
import { Prng } from '../prng.ts';
import { Tensor } from '../tensor.ts';
import { clipGradNorm } from './clip.ts';
import { computeLoss } from './losses.ts';
import { createOptimizer } from './optimizers.ts';
import { createSchedule } from './schedules.ts';
import { type TrainData, type TrainOptions, type TrainProgress, train } from './trainer.ts';
import { bits } from './test-util.ts';

const CFG = {
  input_shape: [3],
  layers: [
    { type: 'dense', input_height: 3, output_height: 8, activation: 'tanh' },
    { type: 'dense', input_height: 8, output_height: 2 },
  ],
};

function net(seed = 1): Network {
  return Network.fromJSON(CFG, { seed });
}

function weightBits(n: Network): number[][] {
  return n.parameters().map((p) => bits(p.param.value.data));
}

/** N samples: x uniform in [-1, 1]^3; regression targets y = A x + noise-free; class = sign of x0 + x1. */
function dataset(n: number, seed = 9) {
  const rng = new Prng(seed);
  const x = new Float32Array(n * 3);
  for (let i = 0; i < x.length; i++) x[i] = rng.uniformRange(-1, 1);
  const y = new Float32Array(n * 2);
  const cls = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const [a, b, c] = [x[3 * i], x[3 * i + 1], x[3 * i + 2]];
    y[2 * i] = Math.fround(0.5 * a - b + 0.25 * c);
    y[2 * i + 1] = Math.fround(a * b);
    cls[i] = a + b > 0 ? 1 : 0;
  }
  return { inputs: new Tensor([n, 3], x), reg: new Tensor([n, 2], y), cls: new Tensor([n], cls) };
}

describe('train', () => {
  it('same seed, same bits; another seed, other bits', () => {
    const d = dataset(37);
    const opts: TrainOptions = {
      epochs: 3,
      batchSize: 8,
      loss: 'cross_entropy',
      optimizer: { type: 'adamw', lr: 0.01 },
      schedule: { type: 'cosine', T_max: 3 },
      clipNorm: 0.5,
      shuffle: true,
      seed: 1234,
    };
    const a = net();
    const b = net();
    const ra = train(a, { inputs: d.inputs, targets: d.cls }, opts);
    const rb = train(b, { inputs: d.inputs, targets: d.cls }, opts);
    expect(weightBits(b)).toEqual(weightBits(a));
    expect(rb.epochLosses).toEqual(ra.epochLosses);
    expect(ra.steps).toBe(15);
    const c = net();
    train(c, { inputs: d.inputs, targets: d.cls }, { ...opts, seed: 1235 });
    expect(weightBits(c)).not.toEqual(weightBits(a));
  });

  it('follows the documented loop exactly (order, seeds, clip, lr, epoch loss)', () => {
    const d = dataset(23);
    const opts: TrainOptions = {
      epochs: 3,
      batchSize: 5,
      loss: 'mse',
      optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9 },
      schedule: { type: 'step', step_size: 1, gamma: 0.5 },
      clipNorm: 1,
      shuffle: true,
      seed: 77,
    };
    const a = net(3);
    const got = train(a, { inputs: d.inputs, targets: d.reg }, opts);

    const b = net(3);
    const opt = createOptimizer(opts.optimizer as object as { type: string }, b.parameters());
    const sched = createSchedule(opts.schedule!, 0.1);
    const root = new Prng(77);
    const losses: number[] = [];
    let step = 0;
    for (let e = 0; e < 3; e++) {
      const order = root.fork(`shuffle.${e}`).permutation(23);
      let w = 0;
      for (let s = 0; s < 23; s += 5) {
        const idx = Array.from(order.subarray(s, Math.min(23, s + 5)));
        const x = new Tensor([idx.length, 3], Float32Array.from(idx.flatMap((i) => Array.from(d.inputs.data.subarray(3 * i, 3 * i + 3)))));
        const y = new Tensor([idx.length, 2], Float32Array.from(idx.flatMap((i) => Array.from(d.reg.data.subarray(2 * i, 2 * i + 2)))));
        b.zeroGrad();
        const tape = b.forwardTape(x, { training: true, seed: root.fork(`step.${step}`).seed });
        const { loss, grad } = computeLoss('mse', tape.outputs[tape.outputs.length - 1], y);
        b.backward(tape, grad);
        clipGradNorm(b.parameters(), 1);
        opt.step(sched.lrAt(e));
        w = add(w, mul(loss, f32(idx.length)));
        step++;
      }
      losses.push(div(w, f32(23)));
    }
    expect(weightBits(a)).toEqual(weightBits(b));
    expect(got.epochLosses).toEqual(losses);
    expect(got.finalLoss).toBe(losses[2]);
    expect(got.steps).toBe(15);
  });

  it('learns a regression (mse) and a classification (cross_entropy)', () => {
    const d = dataset(64);
    const r = train(net(), { inputs: d.inputs, targets: d.reg }, { epochs: 60, batchSize: 16, loss: 'mse', optimizer: { type: 'adamw', lr: 0.02 }, seed: 1, shuffle: true });
    expect(r.finalLoss).toBeLessThan(r.epochLosses[0] / 10);
    const c = train(net(), { inputs: d.inputs, targets: d.cls }, { epochs: 40, batchSize: 16, loss: 'cross_entropy', optimizer: { type: 'rmsprop', lr: 0.01 }, seed: 1, shuffle: true });
    expect(c.finalLoss).toBeLessThan(0.2);
    const s = train(net(), { inputs: d.inputs, targets: d.reg }, { epochs: 60, batchSize: 8, loss: 'mse', optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9 }, seed: 1 });
    expect(s.finalLoss).toBeLessThan(s.epochLosses[0] / 10);
  });

  it('includes the last partial batch and reports progress per step', () => {
    const d = dataset(10);
    const seen: TrainProgress[] = [];
    const r = train(net(), { inputs: d.inputs, targets: d.reg }, {
      epochs: 2,
      batchSize: 4,
      loss: 'mse',
      optimizer: { type: 'sgd', lr: 0.1 },
      schedule: { type: 'exponential', gamma: 0.5 },
      seed: 0,
      onProgress: (p) => seen.push(p),
    });
    expect(r.steps).toBe(6);
    expect(seen.map((p) => [p.epoch, p.step, p.stepsPerEpoch, p.totalSteps, p.lr])).toEqual([
      [0, 1, 3, 6, 0.1], [0, 2, 3, 6, 0.1], [0, 3, 3, 6, 0.1],
      [1, 4, 3, 6, 0.05], [1, 5, 3, 6, 0.05], [1, 6, 3, 6, 0.05],
    ]);
    // Epoch loss weighs each batch by its size: (4 l0 + 4 l1 + 2 l2) / 10.
    const [l0, l1, l2] = seen.slice(0, 3).map((p) => p.loss);
    expect(r.epochLosses[0]).toBe(div(add(add(mul(l0, 4), mul(l1, 4)), mul(l2, 2)), 10));
  });

  it("interval 'step' advances the schedule every optimizer step", () => {
    const d = dataset(6);
    const lrs: number[] = [];
    train(net(), { inputs: d.inputs, targets: d.reg }, {
      epochs: 2, batchSize: 2, loss: 'mse', optimizer: { type: 'sgd', lr: 1 }, seed: 0,
      schedule: { type: 'step', step_size: 2, gamma: 0.5, interval: 'step' },
      onProgress: (p) => lrs.push(p.lr),
    });
    expect(lrs).toEqual([1, 1, 0.5, 0.5, 0.25, 0.25]);
  });

  it('takes i32 and i64 class targets, shuffled, with the same result', () => {
    const d = dataset(12);
    const opts: TrainOptions = { epochs: 2, batchSize: 5, loss: 'cross_entropy', optimizer: 'adamw', shuffle: true, seed: 5 };
    const a = net();
    const b = net();
    train(a, { inputs: d.inputs, targets: d.cls }, opts);
    train(b, { inputs: d.inputs, targets: new Tensor([12], BigInt64Array.from(Array.from(d.cls.data as Int32Array, BigInt))) }, opts);
    expect(weightBits(b)).toEqual(weightBits(a));
  });

  it('an optimizer passed in carries its state across calls', () => {
    const d = dataset(9);
    const base = { batchSize: 3, loss: 'mse', seed: 2 } as const;
    const a = net();
    train(a, { inputs: d.inputs, targets: d.reg }, { ...base, epochs: 2, optimizer: 'adamw' });
    const b = net();
    const opt = createOptimizer('adamw', b.parameters());
    train(b, { inputs: d.inputs, targets: d.reg }, { ...base, epochs: 1, optimizer: opt });
    const r = train(b, { inputs: d.inputs, targets: d.reg }, { ...base, epochs: 1, optimizer: opt });
    expect(r.optimizer).toBe(opt);
    expect(opt.steps).toBe(6);
    expect(weightBits(b)).toEqual(weightBits(a));
  });

  it('validates everything before the first step; a failed call changes nothing', () => {
    const d = dataset(8);
    const n = net();
    const before = weightBits(n);
    const opt = createOptimizer('sgd', n.parameters());
    const good: TrainOptions = { epochs: 1, batchSize: 4, loss: 'mse', optimizer: opt, seed: 0 };
    const data: TrainData = { inputs: d.inputs, targets: d.reg };
    const nanX = d.inputs.clone();
    nanX.data[5] = Number.NaN;
    const cases: [Partial<TrainOptions>, Partial<typeof data>, string][] = [
      [{ epochs: 0 }, {}, 'train.epochs: must be an integer >= 1'],
      [{ batchSize: 2.5 }, {}, 'train.batchSize'],
      [{ seed: -1 }, {}, 'train.seed'],
      [{ loss: 'hinge' }, {}, "unknown loss 'hinge'"],
      [{ optimizer: 'adam' }, {}, "train.optimizer.type: unknown optimizer 'adam'"],
      [{ optimizer: { type: 'sgd', lr: -0.1 } }, {}, 'learning rate must be >= 0'],
      [{ optimizer: createOptimizer('sgd', net().parameters()) }, {}, 'different network'],
      [{ schedule: { type: 'step' } }, {}, "train.schedule.step_size: step schedule needs 'step_size'"],
      [{ clipNorm: -1 }, {}, 'train.clipNorm'],
      [{ shuffle: 1 as unknown as boolean }, {}, 'train.shuffle'],
      [{}, { inputs: Tensor.zeros([8, 4]) }, 'data.inputs: inputs have shape [8, 4], the network takes [N, 3]'],
      [{}, { inputs: nanX }, 'data.inputs: element 5 is NaN'],
      [{}, { targets: Tensor.zeros([7, 2]) }, 'inputs hold 8 samples but targets hold 7'],
      [{}, { targets: Tensor.zeros([8, 3]) }, 'mse targets have shape [8, 3], the output has shape [8, 2]'],
      [{ loss: 'cross_entropy' }, { targets: new Tensor([8], Int32Array.of(0, 1, 0, 1, 2, 0, 0, 0)) }, 'data.targets: element 4 is 2; class indices must be integers in [0, 2)'],
      [{}, { inputs: Tensor.zeros([0, 3]), targets: Tensor.zeros([0, 2]) }, 'the dataset is empty'],
    ];
    for (const [o, dd, msg] of cases) {
      let err: unknown;
      try {
        train(n, { ...data, ...dd }, { ...good, ...o });
      } catch (e) {
        err = e;
      }
      expect(err, msg).toBeInstanceOf(HeddleError);
      expect((err as Error).message).toContain(msg);
      expect(weightBits(n)).toEqual(before);
      expect(opt.steps).toBe(0);
    }
    train(n, data, good);
    expect(opt.steps).toBe(2);
  });
});
