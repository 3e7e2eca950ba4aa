import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { add, cos, div, mul, sin } from '../../core/math/index.ts';
import { Network } from '../../core/network.ts';
import { Prng } from '../../core/prng.ts';
import { Tensor } from '../../core/tensor.ts';
import { train } from '../../core/train/index.ts';
import { loadNetworkFile, saveNetworkFile } from '../node/files.ts';
import { formatF32 } from './format.ts';
import { ProgressReporter } from './progress.ts';

/** Three interleaved spiral arms in 2-D, one class each (a classic non-linear toy problem). */
export function spiralDataset(perClass: number, seed: number): { inputs: Tensor; targets: Tensor<Int32Array> } {
  const rng = new Prng(seed);
  const n = perClass * 3;
  const xs = new Float32Array(n * 2);
  const ys = new Int32Array(n);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < perClass; i++) {
      const k = c * perClass + i;
      const r = div(i, perClass);
      const t = add(add(c * 4, mul(4, r)), mul(rng.normal(), 0.2));
      xs[2 * k] = mul(r, sin(t));
      xs[2 * k + 1] = mul(r, cos(t));
      ys[k] = c;
    }
  }
  return { inputs: new Tensor([n, 2], xs), targets: new Tensor([n], ys) };
}

export const DEMO_CONFIG = {
  id: 'spiral-mlp',
  batch_size: 32,
  grid_rows: 1,
  grid_cols: 1,
  layers_per_cell: 3,
  layers: [
    { type: 'dense', input_height: 2, output_height: 32, activation: 'tanh' },
    { type: 'dense', input_height: 32, output_height: 32, activation: 'tanh' },
    { type: 'dense', input_height: 32, output_height: 3, activation: 'linear' },
  ],
};

function sha256(t: Tensor): string {
  return createHash('sha256').update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)).digest('hex');
}

export function runDemo(o: { out: string; epochs: number; seed: number; progress: boolean }): void {
  const log = (s: string): boolean => process.stdout.write(s + '\n');
  const data = spiralDataset(100, o.seed);
  const net = Network.fromJSON(DEMO_CONFIG, { seed: o.seed });
  log(`Heddle demo: ${net.parameterCount()}-parameter MLP on a 3-class spiral (${data.inputs.shape[0]} samples), CPU backend`);
  const progress = new ProgressReporter(o.progress);
  const result = train(net, data, {
    epochs: o.epochs,
    batchSize: 32,
    loss: 'cross_entropy',
    optimizer: { type: 'adamw', lr: 0.02 },
    shuffle: true,
    seed: o.seed,
    onProgress: (p) => progress.update(p),
  } as Parameters<typeof train>[2]);
  progress.stop();

  const logits = net.forward(data.inputs);
  let correct = 0;
  for (let i = 0; i < data.targets.size; i++) {
    const row = logits.data.subarray(i * 3, i * 3 + 3);
    const pred = row.indexOf(Math.max(...row));
    if (pred === data.targets.data[i]) correct++;
  }
  log(`final_loss=${formatF32(result.finalLoss)}  train accuracy ${((100 * correct) / data.targets.size).toFixed(1)}%`);

  mkdirSync(o.out, { recursive: true });
  const reference = sha256(logits);
  let allMatch = true;
  for (const file of [join(o.out, 'spiral.safetensors'), join(o.out, 'spiral.json')]) {
    saveNetworkFile(net, file);
    const reloaded = loadNetworkFile(file);
    const hash = sha256(reloaded.forward(data.inputs));
    const same = hash === reference;
    allMatch &&= same;
    log(`saved and reloaded ${file}: outputs ${same ? 'match bit for bit' : 'DIFFER'} (sha256 ${hash.slice(0, 16)}...)`);
  }
  log(`output sha256 ${reference}`);
  if (!allMatch) {
    process.exitCode = 1;
  }
}
