/**
 * The training loop: mini-batch gradient descent over a dataset held as two tensors.
 *
 * Rules (docs/training.md has the full text):
 * - Batches: stepsPerEpoch = ceil(N / batchSize); batch b holds positions
 *   b*batchSize .. min(N, (b+1)*batchSize) - 1 of the epoch's order (the last batch may be
 *   partial). The order is 0..N-1, or with `shuffle`, Prng(seed).fork(`shuffle.${epoch}`).permutation(N).
 * - Each step: zeroGrad; forwardTape(training, seed = Prng(seed).fork(`step.${globalStep}`).seed);
 *   loss; backward; optional clipGradNorm; optimizer.step(lr). globalStep counts from 0.
 * - lr = schedule.lrAt(epoch) (interval 'epoch', the default) or lrAt(globalStep).
 * - Epoch loss = (sum over batches ascending of f32(loss_b * f32(n_b))) / f32(N), so each
 *   sample weighs the same (torch examples' running_loss += loss.item() * batch_size).
 *   finalLoss is the last epoch's loss.
 * Everything is validated before the first step, so a call that throws changes nothing.
 */
import { fail } from '../errors.ts';
import { describeJson } from '../fields.ts';
import { add, div, f32, mul } from '../math/index.ts';
import type { Network } from '../network.ts';
import { Prng } from '../prng.ts';
import { Tensor, type TensorData, assertFinite, shapeEquals, shapeStr, flushSubnormals } from '../tensor.ts';
import { clipGradNorm } from './clip.ts';
import { type LossName, checkTarget, computeLoss, parseLossName } from './losses.ts';
import { type Optimizer, type OptimizerSpec, type OptimizerSpecInput, createOptimizer, parseOptimizerSpec } from './optimizers.ts';
import { type Schedule, type ScheduleSpec, type ScheduleSpecInput, createSchedule, parseScheduleSpec } from './schedules.ts';

export interface TrainData {
  /** [N, ...net.inputShape], f32, finite. */
  readonly inputs: Tensor;
  /** mse: f32 [N, ...net.outputShape]; cross_entropy: class indices [N, ...outputShape without its last dim] or probabilities shaped like the output. */
  readonly targets: Tensor<TensorData>;
}

export interface TrainProgress {
  /** Epoch index, from 0. */
  readonly epoch: number;
  /** Optimizer steps completed so far, including this one (1..totalSteps). */
  readonly step: number;
  readonly stepsPerEpoch: number;
  readonly totalSteps: number;
  /** This batch's loss (f32), from the forward pass before the update. */
  readonly loss: number;
  /** The learning rate this step used (float64, as the schedule computes it). */
  readonly lr: number;
}

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  loss: LossName | string;
  /** A spec (`"adamw"`, `{type: "sgd", lr: 0.1, momentum: 0.9}`) or an optimizer made by createOptimizer for this network (its state carries on). */
  optimizer: OptimizerSpecInput | OptimizerSpec | Optimizer;
  schedule?: ScheduleSpecInput | ScheduleSpec;
  /** Clip gradients to this global L2 norm before each step. */
  clipNorm?: number;
  shuffle?: boolean;
  /** Integer in [0, 2^53): drives shuffling and stochastic layers. */
  seed: number;
  onProgress?: (p: TrainProgress) => void;
}

export interface TrainResult {
  /** The last epoch's loss (see epochLosses). */
  readonly finalLoss: number;
  /** Per epoch: sample-weighted mean of the batch losses, f32. */
  readonly epochLosses: number[];
  /** Optimizer steps taken by this call. */
  readonly steps: number;
  /** The optimizer, for exporting its state or training on. */
  readonly optimizer: Optimizer;
}

/** One step the loop asks for: the batch, its target, the learning rate and the step's seed. */
interface StepRequest {
  readonly x: Tensor;
  readonly y: Tensor<TensorData>;
  readonly lr: number;
  readonly seed: number;
}

/**
 * The training loop of both train and trainAsync: yields each step's request and receives the
 * step's loss. Bookkeeping (batches, order, schedule, progress, epoch losses) is the same code
 * on every backend; only the step differs.
 */
function* trainingLoop(plan: Plan, data: TrainData, onProgress: TrainOptions['onProgress']): Generator<StepRequest, TrainResult, number> {
  const { n, epochs, batchSize, optimizer, schedule, interval, shuffle, root } = plan;
  const stepsPerEpoch = Math.ceil(n / batchSize);
  const totalSteps = stepsPerEpoch * epochs;
  const inSample = data.inputs.size / n;
  const tgtSample = data.targets.size / n;
  const fN = f32(n);
  const epochLosses: number[] = [];
  let globalStep = 0;
  for (let epoch = 0; epoch < epochs; epoch++) {
    const order = shuffle ? root.fork(`shuffle.${epoch}`).permutation(n) : null;
    let weighted = 0;
    for (let b = 0; b < stepsPerEpoch; b++) {
      const start = b * batchSize;
      const count = Math.min(batchSize, n - start);
      const x = gather(data.inputs, order, start, count, inSample);
      const y = flushSubnormals(gather(data.targets, order, start, count, tgtSample));
      const lr = schedule ? schedule.lrAt(interval === 'step' ? globalStep : epoch) : optimizer.spec.lr;
      const loss = yield { x, y, lr, seed: root.fork(`step.${globalStep}`).seed };
      globalStep++;
      weighted = add(weighted, mul(loss, f32(count)));
      onProgress?.({ epoch, step: globalStep, stepsPerEpoch, totalSteps, loss, lr });
    }
    epochLosses.push(div(weighted, fN));
  }
  return { finalLoss: epochLosses[epochLosses.length - 1], epochLosses, steps: globalStep, optimizer };
}

export function train(net: Network, data: TrainData, opts: TrainOptions): TrainResult {
  const plan = prepare(net, data, opts);
  const { lossName, optimizer, clipNorm } = plan;
  const loop = trainingLoop(plan, data, opts.onProgress);
  let next = loop.next();
  while (!next.done) {
    const { x, y, lr, seed } = next.value;
    net.zeroGrad();
    const tape = net.forwardTape(x, { training: true, seed });
    const out = tape.outputs[tape.outputs.length - 1];
    const { loss, grad } = computeLoss(lossName, out, y);
    net.backward(tape, grad);
    if (clipNorm !== undefined) clipGradNorm(optimizer.params, clipNorm);
    optimizer.step(lr);
    next = loop.next(loss);
  }
  return next.value;
}

/**
 * train() on the network's selected backend (Network.useBackend): on the CPU backend it is
 * train itself; on webgpu every step (forward, backward, clipping, the optimizer update) runs
 * on the GPU with the loss on the host, and the weights, gradients and optimizer state come
 * back to the host objects when the call ends. The same bits as train() on every backend. A
 * call that fails leaves the network's weights and the optimizer as they were.
 */
export async function trainAsync(net: Network, data: TrainData, opts: TrainOptions): Promise<TrainResult> {
  const gpu = net.backendBinding;
  if (!gpu || !gpu.trainStep) return train(net, data, opts);
  const plan = prepare(net, data, opts);
  const { lossName, optimizer, clipNorm } = plan;
  const loop = trainingLoop(plan, data, opts.onProgress);
  try {
    let next = loop.next();
    while (!next.done) {
      const { x, y, lr, seed } = next.value;
      const loss = await gpu.trainStep(x, { loss: lossName, target: y, optimizer, lr, clipNorm, seed });
      next = loop.next(loss);
    }
    await gpu.finishTraining!(optimizer);
    return next.value;
  } catch (e) {
    gpu.abortTraining!();
    throw e;
  }
}

interface Plan {
  n: number;
  epochs: number;
  batchSize: number;
  lossName: LossName;
  optimizer: Optimizer;
  schedule: Schedule | null;
  interval: 'epoch' | 'step';
  clipNorm: number | undefined;
  shuffle: boolean;
  root: Prng;
}

/** Validates everything and builds the optimizer/schedule; touches no network state. */
function prepare(net: Network, data: TrainData, opts: TrainOptions): Plan {
  if (opts === null || typeof opts !== 'object') fail('CONFIG_INVALID', `expected training options, got ${describeJson(opts)}`, 'train');
  const int = (k: 'epochs' | 'batchSize'): number => {
    const v = opts[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) fail('CONFIG_INVALID', `must be an integer >= 1, got ${describeJson(v)}`, `train.${k}`);
    return v;
  };
  const epochs = int('epochs');
  const batchSize = int('batchSize');
  if (typeof opts.seed !== 'number' || !Number.isSafeInteger(opts.seed) || opts.seed < 0) fail('CONFIG_INVALID', `must be an integer in [0, 2^53), got ${describeJson(opts.seed)}`, 'train.seed');
  const lossName = parseLossName(opts.loss, 'train.loss');
  if (opts.shuffle !== undefined && typeof opts.shuffle !== 'boolean') fail('CONFIG_INVALID', `expected true or false, got ${describeJson(opts.shuffle)}`, 'train.shuffle');
  const clipNorm = opts.clipNorm ?? undefined;
  if (clipNorm !== undefined && (typeof clipNorm !== 'number' || !Number.isFinite(clipNorm) || clipNorm <= 0)) {
    fail('CONFIG_INVALID', `must be a finite number > 0, got ${describeJson(clipNorm)}`, 'train.clipNorm');
  }
  if (opts.onProgress !== undefined && typeof opts.onProgress !== 'function') fail('CONFIG_INVALID', 'must be a function', 'train.onProgress');

  let optimizer: Optimizer;
  if (isOptimizer(opts.optimizer)) {
    optimizer = opts.optimizer;
    const mine = net.parameters();
    if (optimizer.params.length !== mine.length || optimizer.params.some((p, i) => p.param !== mine[i].param)) {
      fail('CONFIG_INVALID', 'the optimizer was created for a different network (its parameters are not this network\'s)', 'train.optimizer');
    }
  } else {
    parseOptimizerSpec(opts.optimizer, 'train.optimizer'); // errors name train.optimizer
    optimizer = createOptimizer(opts.optimizer, net.parameters());
  }
  let schedule: Schedule | null = null;
  let interval: 'epoch' | 'step' = 'epoch';
  if (opts.schedule !== undefined && opts.schedule !== null) {
    const spec = parseScheduleSpec(opts.schedule, 'train.schedule');
    schedule = createSchedule(spec, optimizer.spec.lr);
    interval = spec.interval;
  }

  const { inputs, targets } = data ?? ({} as TrainData);
  if (!(inputs instanceof Tensor)) fail('INPUT_INVALID', 'expected a tensor of inputs', 'data.inputs');
  if (!(targets instanceof Tensor)) fail('INPUT_INVALID', 'expected a tensor of targets', 'data.targets');
  if (inputs.dtype !== 'f32') fail('INPUT_INVALID', `expected f32 inputs, got ${inputs.dtype}`, 'data.inputs');
  const inShape = net.inputShape;
  if (inputs.shape.length !== inShape.length + 1 || !shapeEquals(inputs.shape.slice(1), inShape)) {
    fail('SHAPE_MISMATCH', `inputs have shape ${shapeStr(inputs.shape)}, the network takes [N, ${inShape.join(', ')}]`, 'data.inputs');
  }
  const n = inputs.shape[0];
  if (n < 1) fail('SHAPE_MISMATCH', 'the dataset is empty (N = 0)', 'data.inputs');
  if (targets.shape[0] !== n) {
    fail('SHAPE_MISMATCH', `inputs hold ${n} samples but targets hold ${targets.shape.length ? targets.shape[0] : 'a scalar'} (shape ${shapeStr(targets.shape)})`, 'data.targets');
  }
  assertFinite(inputs, 'data.inputs');
  checkTarget(lossName, [n, ...net.outputShape], targets, 'data.targets');
  return { n, epochs, batchSize, lossName, optimizer, schedule, interval, clipNorm, shuffle: opts.shuffle ?? false, root: new Prng(opts.seed) };
}

function isOptimizer(o: unknown): o is Optimizer {
  return o !== null && typeof o === 'object' && typeof (o as Optimizer).step === 'function' && Array.isArray((o as Optimizer).params);
}

/** Rows [start, start+count) of the epoch order as a new batch tensor (a view when unshuffled). */
function gather<D extends TensorData>(t: Tensor<D>, order: Int32Array | null, start: number, count: number, per: number): Tensor<D> {
  const shape = [count, ...t.shape.slice(1)];
  if (!order) return new Tensor(shape, t.data.subarray(start * per, (start + count) * per) as D, t.dtype);
  const out = new (t.data.constructor as { new (n: number): D })(count * per);
  for (let r = 0; r < count; r++) {
    const src = order[start + r] * per;
    out.set(t.data.subarray(src, src + per) as never, r * per);
  }
  return new Tensor(shape, out, t.dtype);
}
