import { HeddleError, fail } from '../../core/errors.ts';
import { decodeSafetensors, encodeSafetensors } from '../../core/io/safetensors.ts';
import { loadNetworkJSON, loadNetworkSafetensors, loadWeightsSafetensors } from '../../core/io/network_io.ts';
import { isJsonObject, parseStrictJson } from '../../core/io/strict_json.ts';
import { layerKinds } from '../../core/layers/registry.ts';
import { Network } from '../../core/network.ts';
import { Tensor } from '../../core/tensor.ts';
import { trainAsync } from '../../core/train/trainer.ts';
import { readFileBytes, saveNetworkFile, writeFileAtomic } from '../node/files.ts';
import { selectBackend } from './backend.ts';
import { formatF32 } from './format.ts';
import { ProgressReporter } from './progress.ts';

interface ModelOpts {
  model: string;
  weights?: string;
  seed: number;
  backend?: string;
}

/** A config JSON (Loom format), a saved Heddle network (.json with weights, or .safetensors), plus optional weights. */
export function loadModel(o: ModelOpts): Network {
  const bytes = readFileBytes(o.model);
  let net: Network;
  if (o.model.endsWith('.safetensors')) {
    net = loadNetworkSafetensors(bytes, { source: o.model });
  } else {
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      fail('CONFIG_INVALID', 'is not valid UTF-8 text', o.model);
    }
    // Strict parse: duplicate keys are errors, not silently last-wins.
    const parsed = parseStrictJson(text, { where: o.model });
    const isSaved = isJsonObject(parsed) && parsed.format === 'heddle-network';
    net = isSaved ? loadNetworkJSON(parsed, { source: o.model }) : withSource(o.model, () => Network.fromJSON(parsed, { seed: o.seed }));
  }
  if (o.weights) loadWeightsSafetensors(net, readFileBytes(o.weights), { source: o.weights });
  return net;
}

/** Prefix config errors with the file they came from. */
function withSource<T>(file: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof HeddleError) {
      const msg = e.where ? e.message.slice(e.where.length + 2) : e.message;
      fail(e.code, msg, e.where ? `${file}: ${e.where}` : file, e.detail);
    }
    throw e;
  }
}

export function readTensor(file: string, name: string): Tensor {
  const { tensors } = decodeSafetensors(readFileBytes(file), { source: file });
  const t = tensors.get(name);
  if (!t) fail('INPUT_INVALID', `has no tensor '${name}' (it has: ${[...tensors.keys()].join(', ') || 'none'})`, file);
  return t as Tensor;
}

/**
 * Runs `f` with `net` on the backend named by --backend (after the files are read, so bad
 * input fails before a device is acquired), releasing the device whatever happens.
 */
async function onBackend<T>(net: Network, o: ModelOpts, use: 'forward' | 'training', f: () => Promise<T>): Promise<T> {
  try {
    await selectBackend(net, o.backend, use);
    return await f();
  } finally {
    net.releaseBackend();
  }
}

export async function runCommand(o: ModelOpts & { input: string; output: string }): Promise<void> {
  const net = loadModel(o);
  const x = readTensor(o.input, 'input');
  // forwardAsync on the CPU backend is forward itself.
  const y = await onBackend(net, o, 'forward', () => net.forwardAsync(x));
  writeFileAtomic(o.output, encodeSafetensors(new Map([['output', y]])));
}

export async function gradCommand(o: ModelOpts & { input: string; gradOutput: string; output: string }): Promise<void> {
  const net = loadModel(o);
  const x = readTensor(o.input, 'input');
  const gy = readTensor(o.gradOutput, 'grad_output');
  // gradAsync = forwardTape(x, { training: false, seed: 0 }) + backward(gy), adding into Param.grad.
  net.zeroGrad();
  const dx = await onBackend(net, o, 'training', () => net.gradAsync(x, gy));
  const out = new Map<string, Tensor>([['input.grad', dx]]);
  for (const { name, param } of net.parameters()) out.set(`${name}.grad`, param.grad);
  writeFileAtomic(o.output, encodeSafetensors(out));
}

interface TrainOpts extends ModelOpts {
  data: string;
  epochs: number;
  batchSize: number;
  optimizer: 'sgd' | 'adamw' | 'rmsprop';
  lr: number;
  loss: 'mse' | 'cross_entropy';
  momentum?: number;
  weightDecay?: number;
  nesterov?: boolean;
  clipNorm?: number;
  schedule?: string;
  shuffle?: boolean;
  save: string;
  progress: boolean;
}

export async function trainCommand(o: TrainOpts): Promise<void> {
  const net = loadModel(o);
  const { tensors } = decodeSafetensors(readFileBytes(o.data), { source: o.data });
  const inputs = tensors.get('inputs');
  const targets = tensors.get('targets');
  if (!inputs || !targets) fail('INPUT_INVALID', `needs tensors 'inputs' and 'targets' (it has: ${[...tensors.keys()].join(', ') || 'none'})`, o.data);
  const optimizer: Record<string, unknown> = { type: o.optimizer, lr: o.lr };
  if (o.momentum !== undefined) optimizer.momentum = o.momentum;
  if (o.weightDecay !== undefined) optimizer.weight_decay = o.weightDecay;
  if (o.nesterov) optimizer.nesterov = true;
  let schedule: unknown;
  if (o.schedule) {
    try {
      schedule = JSON.parse(o.schedule);
    } catch (e) {
      fail('CONFIG_INVALID', `invalid JSON: ${(e as Error).message}`, '--schedule');
    }
  }
  const progress = new ProgressReporter(o.progress);
  const result = await onBackend(net, o, 'training', async () => {
    // trainAsync on the CPU backend is train itself; the weights are back on the host when it ends.
    const r = await trainAsync(net, { inputs: inputs as Tensor, targets }, {
      epochs: o.epochs,
      batchSize: o.batchSize,
      loss: o.loss,
      optimizer,
      schedule,
      clipNorm: o.clipNorm,
      shuffle: !!o.shuffle,
      seed: o.seed,
      onProgress: (p) => progress.update(p),
    } as Parameters<typeof trainAsync>[2]);
    progress.stop();
    return r;
  });
  saveNetworkFile(net, o.save);
  process.stdout.write(`saved ${o.save}\nfinal_loss=${formatF32(result.finalLoss)}\n`);
}

export function infoCommand(o: { model: string; json?: boolean; seed: number }): void {
  const net = loadModel(o);
  const bp = net.describe();
  if (o.json) {
    process.stdout.write(JSON.stringify(bp, null, 2) + '\n');
    return;
  }
  const shape = (s: number[]): string => `[B, ${s.join(', ')}]`;
  const rows: string[][] = [['layer', 'position', 'type', 'activation', 'params', 'input', 'output']];
  const walk = (l: (typeof bp.layers)[number], depth: number): void => {
    const pos = l.position ? `z${l.position.z} y${l.position.y} x${l.position.x} l${l.position.l}` : '';
    const flags = [l.disabled ? 'disabled' : '', l.remote_link ? `<- z${l.remote_link.z} y${l.remote_link.y} x${l.remote_link.x} l${l.remote_link.l}` : ''].filter(Boolean).join(' ');
    rows.push([`${'  '.repeat(depth)}${l.name}`, pos, l.type + (flags ? ` (${flags})` : ''), l.activation ?? '', String(l.parameters), shape(l.input_shape), shape(l.output_shape)]);
    for (const c of l.children ?? []) walk(c, depth + 1);
  };
  for (const l of bp.layers) walk(l, 0);
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const lines = rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c])).join('  ').trimEnd());
  process.stdout.write(
    `network ${bp.id}: grid ${bp.grid.depth}x${bp.grid.rows}x${bp.grid.cols}, ${bp.grid.layers_per_cell} layer(s) per cell, ` +
      `input ${shape(bp.input_shape)}, output ${shape(bp.output_shape)}, ${bp.total_parameters} parameters\n` +
      lines.join('\n') + '\n',
  );
}

export function layersCommand(o: { json?: boolean }): void {
  const kinds = layerKinds().map((k) => ({ type: k.type, aliases: [...k.aliases] }));
  if (o.json) {
    process.stdout.write(JSON.stringify(kinds, null, 2) + '\n');
    return;
  }
  const w = Math.max(...kinds.map((k) => k.type.length));
  process.stdout.write(`${kinds.length} layer types (docs/layers.md has fields, shapes and parameters):\n`);
  for (const k of kinds) process.stdout.write(`  ${k.type.padEnd(w)}  ${k.aliases.length ? 'aliases: ' + k.aliases.join(', ') : ''}`.trimEnd() + '\n');
}
