/**
 * The `heddle` CLI contracts, run as a real process on the built bundle (`npm test` builds
 * it first through the pretest script).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeSafetensors, encodeSafetensors } from '../core/io/safetensors.ts';
import { Network } from '../core/network.ts';
import { Prng } from '../core/prng.ts';
import { Tensor, type TensorData } from '../core/tensor.ts';
import { train } from '../core/train/index.ts';

const CLI = join(__dirname, '..', 'dist', 'cli.js');
let dir = '';

const MODEL = {
  id: 'cli-test', batch_size: 4, grid_rows: 1, grid_cols: 1, layers_per_cell: 2,
  layers: [
    { type: 'dense', input_height: 3, output_height: 5, activation: 'tanh' },
    { type: 'dense', input_height: 5, output_height: 2, activation: 'linear' },
  ],
};

/** A network mixing many layer types. */
const MIXED = {
  id: 'mixed', input_shape: [2, 6, 6], layers_per_cell: 12,
  layers: [
    { type: 'conv2d', input_channels: 2, filters: 3, kernel_size: 3, padding: 1, activation: 'relu' },
    { type: 'conv_transposed2d', input_channels: 3, filters: 2, kernel_size: 3, padding: 1 },
    { type: 'dense', input_height: 72, output_height: 24, activation: 'gelu' },
    { type: 'lstm', input_size: 6, hidden_size: 8, seq_length: 4 },
    { type: 'multi_head_attention', d_model: 8, num_heads: 2, num_kv_heads: 1, causal: true, rope_freq_base: 10000 },
    { type: 'residual' },
    { type: 'rms_norm', norm_size: 8 },
    { type: 'swiglu', input_height: 8, output_height: 16 },
    { type: 'gru', input_size: 8, hidden_size: 6 },
    { type: 'parallel', combine_mode: 'add', branches: [{ type: 'dense', input_height: 6, output_height: 5 }, { type: 'kmeans', num_clusters: 5, input_height: 6 }] },
    { type: 'layer_norm', norm_size: 5 },
    { type: 'softmax', softmax_type: 'sparsemax' },
  ],
};

function heddle(...args: string[]): { code: number; stdout: string; stderr: string } {
  return heddleEnv({}, ...args);
}

/** `heddle` with extra environment variables (the Vulkan ICD for --backend webgpu). */
function heddleEnv(env: Record<string, string>, ...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...env } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function random(shape: number[], seed: number): Tensor {
  const r = new Prng(seed);
  const t = Tensor.zeros(shape);
  for (let i = 0; i < t.size; i++) t.data[i] = r.uniformRange(-1, 1);
  return t;
}

function writeTensors(name: string, tensors: Record<string, Tensor<TensorData>>): string {
  const p = join(dir, name);
  writeFileSync(p, encodeSafetensors(new Map(Object.entries(tensors))));
  return p;
}

function readTensors(name: string): Map<string, Tensor<TensorData>> {
  return decodeSafetensors(new Uint8Array(readFileSync(join(dir, name)))).tensors;
}

function bits(t: Tensor<TensorData>): number[] {
  return Array.from(new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.byteLength / 4));
}

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build (npm test does it in pretest)`);
  dir = mkdtempSync(join(tmpdir(), 'heddle-cli-'));
  writeFileSync(join(dir, 'model.json'), JSON.stringify(MODEL));
  writeTensors('in.safetensors', { input: random([4, 3], 1) });
  writeTensors('gout.safetensors', { grad_output: random([4, 2], 2) });
});

describe('heddle run', () => {
  it('writes `output` equal to the in-process forward, weights from --seed', () => {
    const r = heddle('run', '--model', 'model.json', '--input', 'in.safetensors', '--output', 'out.safetensors', '--seed', '7');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const expected = Network.fromJSON(MODEL, { seed: 7 }).forward(random([4, 3], 1));
    const out = readTensors('out.safetensors').get('output')!;
    expect(out.shape).toEqual([4, 2]);
    expect(bits(out)).toEqual(bits(expected));
  });

  it('uses --weights when given', () => {
    const net = Network.fromJSON(MODEL, { seed: 99 });
    writeTensors('w.safetensors', Object.fromEntries(net.getWeights()));
    expect(heddle('run', '--model', 'model.json', '--weights', 'w.safetensors', '--input', 'in.safetensors', '--output', 'out2.safetensors').code).toBe(0);
    expect(bits(readTensors('out2.safetensors').get('output')!)).toEqual(bits(net.forward(random([4, 3], 1))));
  });
});

describe('heddle grad', () => {
  it('writes input.grad and <param>.grad for every weight', () => {
    const r = heddle('grad', '--model', 'model.json', '--input', 'in.safetensors', '--grad-output', 'gout.safetensors', '--output', 'g.safetensors', '--seed', '3');
    expect(r.code).toBe(0);
    const g = readTensors('g.safetensors');
    expect([...g.keys()].sort()).toEqual(['input.grad', 'layers.0.bias.grad', 'layers.0.weight.grad', 'layers.1.bias.grad', 'layers.1.weight.grad']);
    const net = Network.fromJSON(MODEL, { seed: 3 });
    const dx = net.backward(net.forwardTape(random([4, 3], 1), { training: false, seed: 0 }), random([4, 2], 2));
    expect(bits(g.get('input.grad')!)).toEqual(bits(dx));
    expect(bits(g.get('layers.0.weight.grad')!)).toEqual(bits(net.parameters()[0].param.grad));
  });
});

describe('heddle train', () => {
  it('trains, saves, prints final_loss last, and matches the in-process trainer bit for bit', () => {
    const inputs = random([10, 3], 5);
    const targets = new Tensor([10], Int32Array.from({ length: 10 }, (_, i) => i % 2));
    writeTensors('data.safetensors', { inputs, targets });
    const r = heddle('train', '--model', 'model.json', '--data', 'data.safetensors', '--epochs', '3', '--batch-size', '4', '--optimizer', 'adamw', '--lr', '0.01', '--loss', 'cross_entropy', '--seed', '2', '--save', 'trained.safetensors');
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[lines.length - 1]).toMatch(/^final_loss=[0-9.e-]+$/);
    expect(r.stderr).toMatch(/train/); // the progress bar goes to stderr

    const net = Network.fromJSON(MODEL, { seed: 2 });
    const res = train(net, { inputs, targets }, { epochs: 3, batchSize: 4, loss: 'cross_entropy', optimizer: { type: 'adamw', lr: 0.01 }, seed: 2 });
    // Printed as the shortest decimal that reads back as the same f32.
    expect(Math.fround(Number(lines[lines.length - 1].slice('final_loss='.length)))).toBe(res.finalLoss);
    const saved = readTensors('trained.safetensors');
    for (const [name, w] of net.getWeights()) expect(bits(saved.get(name)!), name).toEqual(bits(w));
  });

  it('runs mse with sgd and --shuffle', () => {
    writeTensors('reg.safetensors', { inputs: random([8, 3], 6), targets: random([8, 2], 7) });
    const r = heddle('train', '--model', 'model.json', '--data', 'reg.safetensors', '--epochs', '2', '--batch-size', '3', '--optimizer', 'sgd', '--momentum', '0.9', '--lr', '0.1', '--loss', 'mse', '--shuffle', '--seed', '1', '--save', 'reg.json', '--no-progress');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n').pop()).toMatch(/^final_loss=/);
    expect(JSON.parse(readFileSync(join(dir, 'reg.json'), 'utf8')).format).toBe('heddle-network');
  });
});

describe('heddle info', () => {
  it('prints the blueprint as a table and as JSON', () => {
    const t = heddle('info', '--model', 'model.json');
    expect(t.code).toBe(0);
    expect(t.stdout).toMatch(/layers\.0\s+z0 y0 x0 l0\s+dense\s+tanh\s+20\s+\[B, 3\]\s+\[B, 5\]/);
    const j = JSON.parse(heddle('info', '--model', 'model.json', '--json').stdout);
    expect(j.total_parameters).toBe(3 * 5 + 5 + 5 * 2 + 2);
    expect(j.layers[1]).toMatchObject({ type: 'dense', parameters: 12, input_shape: [5], output_shape: [2] });
  });
});

describe('every layer type through the CLI', () => {
  it('`heddle layers` lists all 20 types', () => {
    const r = heddle('layers', '--json');
    expect(r.code).toBe(0);
    const types = JSON.parse(r.stdout).map((k: { type: string }) => k.type);
    expect(types).toHaveLength(20);
    for (const t of ['dense', 'conv2d', 'conv_transposed3d', 'lstm', 'gru', 'multi_head_attention', 'swiglu', 'embedding', 'kmeans', 'parallel']) expect(types).toContain(t);
  });

  it('info and run work on a network mixing many layer types', () => {
    writeFileSync(join(dir, 'mixed.json'), JSON.stringify(MIXED));
    const info = heddle('info', '--model', 'mixed.json');
    expect(info.code, info.stderr).toBe(0);
    for (const t of ['conv2d', 'conv_transposed2d', 'lstm', 'multi_head_attention', 'swiglu', 'gru', 'parallel', 'kmeans', 'softmax']) expect(info.stdout).toContain(t);
    writeTensors('mixed-in.safetensors', { input: random([2, 2, 6, 6], 9) });
    const run = heddle('run', '--model', 'mixed.json', '--input', 'mixed-in.safetensors', '--output', 'mixed-out.safetensors', '--seed', '4');
    expect(run.code, run.stderr).toBe(0);
    const out = readTensors('mixed-out.safetensors').get('output')!;
    expect(out.shape).toEqual([2, 4, 5]);
    expect(bits(out)).toEqual(bits(Network.fromJSON(MIXED, { seed: 4 }).forward(random([2, 2, 6, 6], 9))));
  });

  it('embedding models take integer ids', () => {
    writeFileSync(join(dir, 'lm.json'), JSON.stringify({ input_shape: [5], layers_per_cell: 2, layers: [{ type: 'embedding', vocab_size: 11, embedding_dim: 4 }, { type: 'dense', input_height: 4, output_height: 11 }] }));
    writeTensors('ids.safetensors', { input: new Tensor([2, 5], BigInt64Array.from([1n, 2n, 3n, 4n, 5n, 10n, 0n, 7n, 7n, 1n])) });
    const r = heddle('run', '--model', 'lm.json', '--input', 'ids.safetensors', '--output', 'lm-out.safetensors');
    expect(r.code, r.stderr).toBe(0);
    expect(readTensors('lm-out.safetensors').get('output')!.shape).toEqual([2, 5, 11]);
    writeTensors('badids.safetensors', { input: new Tensor([1, 5], BigInt64Array.from([1n, 2n, 11n, 4n, 5n])) });
    const bad = heddle('run', '--model', 'lm.json', '--input', 'badids.safetensors', '--output', 'lm-bad.safetensors');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/INPUT_INVALID.*11/);
  });
});

/**
 * --backend webgpu on SwiftShader (Debian's chromium; scripts/setup.sh installs it, a missing
 * one is a failure, not a skip): every output file byte for byte the --backend cpu one.
 */
describe('--backend webgpu: the same files as --backend cpu', () => {
  const SWIFTSHADER = { VK_ICD_FILENAMES: '/usr/lib/chromium/vk_swiftshader_icd.json' };

  /** Runs `args` on both backends (the output file named by `out` gets a -cpu / -webgpu suffix) and returns both results. */
  function both(out: string, args: string[]): Record<'cpu' | 'webgpu', { code: number; stdout: string; stderr: string; file: Buffer }> {
    const res = {} as Record<'cpu' | 'webgpu', { code: number; stdout: string; stderr: string; file: Buffer }>;
    for (const b of ['cpu', 'webgpu'] as const) {
      const file = out.replace('.', `-${b}.`);
      const r = heddleEnv(b === 'webgpu' ? SWIFTSHADER : {}, ...args.map((a) => (a === out ? file : a)), '--backend', b);
      expect(r.code, r.stderr).toBe(0);
      res[b] = { ...r, file: readFileSync(join(dir, file)) };
    }
    expect(res.webgpu.stderr).toMatch(/^webgpu: adapter .*SwiftShader/m);
    expect(res.cpu.stderr).not.toMatch(/webgpu/);
    return res;
  }

  beforeAll(() => {
    expect(existsSync(SWIFTSHADER.VK_ICD_FILENAMES), 'SwiftShader (Debian chromium) is needed for the webgpu CLI cases').toBe(true);
    writeFileSync(join(dir, 'gpu-model.json'), JSON.stringify(MODEL));
    writeFileSync(join(dir, 'gpu-mixed.json'), JSON.stringify(MIXED));
    writeTensors('gpu-mixed-in.safetensors', { input: random([2, 2, 6, 6], 9) });
    writeTensors('gpu-mixed-gout.safetensors', { grad_output: random([2, 4, 5], 8) });
    writeTensors('gpu-data.safetensors', { inputs: random([10, 3], 5), targets: new Tensor([10], Int32Array.from({ length: 10 }, (_, i) => i % 3 === 0 ? 1 : 0)) });
    writeTensors('gpu-reg.safetensors', { inputs: random([8, 3], 6), targets: random([8, 2], 7) });
  });

  it('run', () => {
    const r = both('gpu-out.safetensors', ['run', '--model', 'gpu-model.json', '--input', 'in.safetensors', '--output', 'gpu-out.safetensors', '--seed', '7']);
    expect(r.webgpu.file.equals(r.cpu.file)).toBe(true);
    expect(bits(readTensors('gpu-out-webgpu.safetensors').get('output')!)).toEqual(bits(Network.fromJSON(MODEL, { seed: 7 }).forward(random([4, 3], 1))));
  });

  it('run and grad on a network mixing many layer types', () => {
    const run = both('gpu-mixed-out.safetensors', ['run', '--model', 'gpu-mixed.json', '--input', 'gpu-mixed-in.safetensors', '--output', 'gpu-mixed-out.safetensors', '--seed', '4']);
    expect(run.webgpu.file.equals(run.cpu.file)).toBe(true);
    const grad = both('gpu-mixed-g.safetensors', ['grad', '--model', 'gpu-mixed.json', '--input', 'gpu-mixed-in.safetensors', '--grad-output', 'gpu-mixed-gout.safetensors', '--output', 'gpu-mixed-g.safetensors', '--seed', '4']);
    expect(grad.webgpu.file.equals(grad.cpu.file)).toBe(true);
    expect(readTensors('gpu-mixed-g-webgpu.safetensors').size).toBe(1 + Network.fromJSON(MIXED).parameters().length);
  });

  it('grad', () => {
    const r = both('gpu-g.safetensors', ['grad', '--model', 'gpu-model.json', '--input', 'in.safetensors', '--grad-output', 'gout.safetensors', '--output', 'gpu-g.safetensors', '--seed', '3']);
    expect(r.webgpu.file.equals(r.cpu.file)).toBe(true);
  });

  it('train: adamw + cross_entropy, with the progress bar', () => {
    const r = both('gpu-trained.safetensors', ['train', '--model', 'gpu-model.json', '--data', 'gpu-data.safetensors', '--epochs', '3', '--batch-size', '4', '--optimizer', 'adamw', '--lr', '0.01', '--loss', 'cross_entropy', '--seed', '2', '--save', 'gpu-trained.safetensors']);
    expect(r.webgpu.file.equals(r.cpu.file)).toBe(true);
    expect(r.webgpu.stdout).toBe(r.cpu.stdout.replace('-cpu.', '-webgpu.'));
    expect(r.webgpu.stdout.trim().split('\n').pop()).toMatch(/^final_loss=[0-9.e-]+$/);
    expect(r.webgpu.stderr).toMatch(/train \|/);
  });

  it('train: sgd with nesterov momentum, mse, --shuffle, --clip-norm, a schedule, saved as JSON', () => {
    const r = both('gpu-reg.json', ['train', '--model', 'gpu-model.json', '--data', 'gpu-reg.safetensors', '--epochs', '2', '--batch-size', '3', '--optimizer', 'sgd', '--momentum', '0.9', '--nesterov', '--lr', '0.1', '--loss', 'mse', '--shuffle', '--clip-norm', '0.5', '--schedule', '{"type":"step","step_size":1,"gamma":0.5}', '--seed', '1', '--save', 'gpu-reg.json', '--no-progress']);
    expect(r.webgpu.file.equals(r.cpu.file)).toBe(true);
    expect(r.webgpu.stdout).toBe(r.cpu.stdout.replace('-cpu.', '-webgpu.'));
  });

  it('no adapter: BACKEND_UNAVAILABLE with the core\'s reason, exit 1, no output file', () => {
    for (const args of [
      ['run', '--model', 'gpu-model.json', '--input', 'in.safetensors', '--output', 'gpu-none.safetensors'],
      ['train', '--model', 'gpu-model.json', '--data', 'gpu-reg.safetensors', '--epochs', '1', '--batch-size', '4', '--lr', '0.1', '--save', 'gpu-none.safetensors'],
    ]) {
      const before = new Set(readdirSync(dir));
      const r = heddleEnv({ VK_ICD_FILENAMES: '/nonexistent/x.json' }, ...args, '--backend', 'webgpu');
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^heddle: BACKEND_UNAVAILABLE: backend webgpu: .*no adapter/m);
      expect(r.stderr).not.toMatch(/at .*\.js:\d+/);
      expect(readdirSync(dir).filter((f) => !before.has(f))).toEqual([]);
    }
  });
});

describe('bad input: clear error, non-zero exit, nothing half-written', () => {
  const cases: [string, () => string[], RegExp][] = [
    ['invalid JSON', () => { writeFileSync(join(dir, 'bad.json'), '{"layers": [ {"type": "dense",'); return ['run', '--model', 'bad.json', '--input', 'in.safetensors', '--output', 'x1.safetensors']; }, /bad\.json.*invalid JSON/],
    ['unknown layer type', () => { writeFileSync(join(dir, 'unk.json'), JSON.stringify({ layers: [{ type: 'conv9d' }] })); return ['run', '--model', 'unk.json', '--input', 'in.safetensors', '--output', 'x2.safetensors']; }, /CONFIG_INVALID.*unk\.json: layers\[0\].*conv9d/],
    ['unknown activation', () => { writeFileSync(join(dir, 'act.json'), JSON.stringify({ layers: [{ type: 'dense', input_height: 3, output_height: 2, activation: 'swoosh' }] })); return ['info', '--model', 'act.json']; }, /activation.*swoosh/],
    ['shapes that do not chain', () => { writeFileSync(join(dir, 'chain.json'), JSON.stringify({ layers: [{ type: 'dense', input_height: 3, output_height: 4 }, { type: 'dense', input_height: 5, output_height: 1 }] })); return ['info', '--model', 'chain.json']; }, /SHAPE_MISMATCH.*layers\[1\].*input_height/],
    ['missing weights file', () => ['run', '--model', 'model.json', '--weights', 'nope.safetensors', '--input', 'in.safetensors', '--output', 'x3.safetensors'], /IO_ERROR.*nope\.safetensors/],
    ['wrong-shaped weights', () => { writeTensors('ws.safetensors', { ...Object.fromEntries(Network.fromJSON(MODEL).getWeights()), 'layers.0.weight': Tensor.zeros([5, 4]) }); return ['run', '--model', 'model.json', '--weights', 'ws.safetensors', '--input', 'in.safetensors', '--output', 'x4.safetensors']; }, /WEIGHTS_INVALID.*layers\.0\.weight.*\[5, 4\]/],
    ['missing weights', () => { const w = Network.fromJSON(MODEL).getWeights(); w.delete('layers.1.bias'); writeTensors('wm.safetensors', Object.fromEntries(w)); return ['run', '--model', 'model.json', '--weights', 'wm.safetensors', '--input', 'in.safetensors', '--output', 'x5.safetensors']; }, /WEIGHTS_INVALID.*layers\.1\.bias/],
    ['truncated safetensors', () => { const b = readFileSync(join(dir, 'in.safetensors')); writeFileSync(join(dir, 'trunc.safetensors'), b.subarray(0, b.length - 5)); return ['run', '--model', 'model.json', '--input', 'trunc.safetensors', '--output', 'x6.safetensors']; }, /FORMAT_INVALID.*trunc\.safetensors/],
    ['NaN in the input', () => { const t = random([4, 3], 1); t.data[5] = NaN; writeTensors('nan.safetensors', { input: t }); return ['run', '--model', 'model.json', '--input', 'nan.safetensors', '--output', 'x7.safetensors']; }, /INPUT_INVALID.*element 5 is NaN/],
    ['input of the wrong shape', () => { writeTensors('shape.safetensors', { input: random([4, 7], 1) }); return ['run', '--model', 'model.json', '--input', 'shape.safetensors', '--output', 'x8.safetensors']; }, /SHAPE_MISMATCH.*\[4, 7\]/],
    ['input tensor missing', () => { writeTensors('noinput.safetensors', { other: random([4, 3], 1) }); return ['run', '--model', 'model.json', '--input', 'noinput.safetensors', '--output', 'x9.safetensors']; }, /no tensor 'input'.*other/],
    ['bad optimizer option value', () => ['train', '--model', 'model.json', '--data', 'in.safetensors', '--epochs', '0', '--batch-size', '2', '--lr', '0.1', '--save', 'x11.safetensors'], /epochs/],
  ];
  for (const [name, setup, pattern] of cases) {
    it(name, () => {
      const args = setup();
      const before = new Set(readdirSync(dir));
      const r = heddle(...args);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(pattern);
      expect(r.stderr).not.toMatch(/at .*\.js:\d+/); // no stack traces for bad input
      const created = readdirSync(dir).filter((f) => !before.has(f));
      expect(created).toEqual([]);
    });
  }

  it('usage errors exit 2', () => {
    const r = heddle('run', '--model', 'model.json');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/required option/);
  });
});
