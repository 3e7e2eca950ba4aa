import cliProgress from 'cli-progress';

export interface TrainProgress {
  epoch: number;
  step: number;
  totalSteps: number;
  loss: number;
}

/** A training progress bar on stderr (stdout stays machine-readable). Disabled: prints nothing. */
export class ProgressReporter {
  private bar: cliProgress.SingleBar | null = null;

  constructor(private readonly enabled: boolean) {}

  update(p: TrainProgress): void {
    if (!this.enabled) return;
    if (!this.bar) {
      this.bar = new cliProgress.SingleBar(
        {
          stream: process.stderr,
          format: 'train |{bar}| {percentage}% | epoch {epoch} | step {value}/{total} | loss {loss}',
          hideCursor: true,
          noTTYOutput: true,
          notTTYSchedule: 2000,
          etaBuffer: 50,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(p.totalSteps, 0, { epoch: p.epoch + 1, loss: '-' });
    }
    this.bar.update(p.step, { epoch: p.epoch + 1, loss: p.loss.toPrecision(5) });
  }

  stop(): void {
    this.bar?.stop();
    this.bar = null;
  }
}
