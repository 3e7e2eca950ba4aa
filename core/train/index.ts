/** Training: losses, gradient clipping, optimizers, learning-rate schedules and the trainer loop. */
export { LOSSES, type LossName, type LossResult, type LossTarget, parseLossName, computeLoss, mseLoss, crossEntropyLoss, checkTarget } from './losses.ts';
export { clipGradNorm, gradNorm } from './clip.ts';
export {
  OPTIMIZERS,
  type OptimizerName,
  type OptimizerSpec,
  type OptimizerSpecInput,
  type SgdSpec,
  type AdamWSpec,
  type RmspropSpec,
  type Optimizer,
  type OptimizerState,
  parseOptimizerSpec,
  createOptimizer,
} from './optimizers.ts';
export {
  SCHEDULES,
  type ScheduleName,
  type ScheduleInterval,
  type ScheduleSpec,
  type ScheduleSpecInput,
  type Schedule,
  parseScheduleSpec,
  createSchedule,
  scheduleLr,
} from './schedules.ts';
export { train, type TrainData, type TrainOptions, type TrainProgress, type TrainResult } from './trainer.ts';
