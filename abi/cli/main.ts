/**
 * `heddle`: the command-line face of the engine. Every command reads and writes files
 * atomically; every failure prints `heddle: <CODE>: <what and where>` on stderr and exits
 * non-zero (1 for bad input, 2 for usage errors, 70 for internal errors).
 */
import { Command, CommanderError, Option } from 'commander';
import { HeddleError } from '../../core/errors.ts';
import { runDemo } from './demo.ts';
import { gradCommand, infoCommand, layersCommand, runCommand, trainCommand } from './commands.ts';
import { registerConformance } from './conformance.ts';
import { registerEngineCommands } from '../engine/cli.ts';

const program = new Command();
program
  .name('heddle')
  .description('Heddle: a deterministic neural virtual machine (same bits on every runtime and backend)')
  .version('0.1.0')
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });

const backend = new Option('--backend <name>', 'compute backend; webgpu takes its adapter from the environment (README, docs/webgpu.md) and writes the same bits').choices(['cpu', 'webgpu']).default('cpu');

program
  .command('run')
  .description('forward pass: writes tensor `output` for tensor `input`')
  .requiredOption('--model <file>', 'network config JSON (Loom format) or a saved Heddle network (.json/.safetensors)')
  .option('--weights <file>', 'weights (.safetensors); without it weights are initialized from --seed')
  .requiredOption('--input <file>', 'safetensors file holding tensor `input` [batch, ...features]')
  .requiredOption('--output <file>', 'safetensors file to write (tensor `output`)')
  .addOption(backend)
  .option('--seed <n>', 'initialization seed when no weights are given', parseSeed, 0)
  .action(runCommand);

program
  .command('grad')
  .description('backward pass: writes `input.grad` and `<param>.grad` for every weight')
  .requiredOption('--model <file>', 'network config JSON or saved network')
  .option('--weights <file>', 'weights (.safetensors)')
  .requiredOption('--input <file>', 'safetensors file holding tensor `input`')
  .requiredOption('--grad-output <file>', 'safetensors file holding tensor `grad_output` (dL/d output)')
  .requiredOption('--output <file>', 'safetensors file to write the gradients to')
  .addOption(backend)
  .option('--seed <n>', 'initialization seed when no weights are given', parseSeed, 0)
  .action(gradCommand);

program
  .command('train')
  .description('train on `inputs`/`targets` from a safetensors file; last line is final_loss=<value>')
  .requiredOption('--model <file>', 'network config JSON or saved network')
  .option('--weights <file>', 'initial weights (.safetensors)')
  .requiredOption('--data <file>', 'safetensors file holding `inputs` and `targets`')
  .requiredOption('--epochs <n>', 'number of epochs', positive('--epochs'))
  .requiredOption('--batch-size <n>', 'mini-batch size', positive('--batch-size'))
  .addOption(new Option('--optimizer <name>', 'optimizer (torch.optim defaults)').choices(['sgd', 'adamw', 'rmsprop']).default('sgd'))
  .requiredOption('--lr <x>', 'learning rate', finite('--lr'))
  .addOption(new Option('--loss <name>', 'loss, mean-reduced').choices(['mse', 'cross_entropy']).default('mse'))
  .option('--momentum <x>', 'sgd/rmsprop momentum', finite('--momentum'))
  .option('--weight-decay <x>', 'weight decay', finite('--weight-decay'))
  .option('--nesterov', 'sgd: Nesterov momentum')
  .option('--clip-norm <x>', 'clip gradients to this global L2 norm', finite('--clip-norm'))
  .option('--schedule <spec>', 'learning-rate schedule as JSON, e.g. {"type":"step","step_size":10,"gamma":0.5}')
  .option('--shuffle', 'shuffle samples each epoch (seeded)')
  .option('--seed <n>', 'seed for initialization and shuffling', parseSeed, 0)
  .requiredOption('--save <file>', 'where to save the trained network (.safetensors or .json)')
  .option('--no-progress', 'no progress bar')
  .addOption(backend)
  .action(trainCommand);

program
  .command('info')
  .description('print the blueprint: per layer its position, type, parameter count and shapes')
  .requiredOption('--model <file>', 'network config JSON or saved network')
  .option('--json', 'machine-readable JSON')
  .option('--seed <n>', 'initialization seed', parseSeed, 0)
  .action(infoCommand);

program
  .command('layers')
  .description('list every layer type Heddle knows, with its aliases')
  .option('--json', 'machine-readable JSON')
  .action(layersCommand);

program
  .command('demo')
  .description('the main job: train a small network on a generated dataset, save, reload, check the bits')
  .option('--out <dir>', 'where to write the model files', 'heddle-demo')
  .option('--epochs <n>', 'epochs', positive('--epochs'), 40)
  .option('--seed <n>', 'seed', parseSeed, 1)
  .option('--no-progress', 'no progress bar')
  .action(runDemo);

registerConformance(program);
registerEngineCommands(program);

// Option parsers receive (value, previous); `this` is unavailable, so each names its option itself.
function parseSeed(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n)) throw new HeddleError('CONFIG_INVALID', `expected an integer in [0, 2^53), got '${v}'`, '--seed');
  return n;
}
function positive(option: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < 1 || !Number.isSafeInteger(n)) throw new HeddleError('CONFIG_INVALID', `expected a positive integer, got '${v}'`, option);
    return n;
  };
}
function finite(option: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new HeddleError('CONFIG_INVALID', `expected a finite number, got '${v}'`, option);
    return n;
  };
}

async function main(): Promise<number> {
  try {
    await program.parseAsync(process.argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version are "errors" to commander too; they exit 0.
      return e.exitCode === 0 ? 0 : 2;
    }
    if (e instanceof HeddleError) {
      process.stderr.write(`heddle: ${e.code}: ${e.message}\n`);
      return 1;
    }
    process.stderr.write(`heddle: INTERNAL: ${(e as Error)?.stack ?? String(e)}\n`);
    return 70;
  }
}

main().then((code) => {
  process.exitCode = code;
});
