/**
 * The convolution layers against PyTorch: every fixture in tests/fixtures/torch/conv/ (written by
 * scripts/torch_fixtures/conv.py on a machine with torch, see scripts/torch-fixtures.sh) is
 * loaded, its network built from the `heddle.config` metadata, its parameters set, and Heddle's
 * forward output and gradients (input and every parameter) compared with torch's.
 *
 * Tolerance: torch sums in another order (and may use other algorithms), so results agree up to
 * f32 rounding: max |heddle - torch| <= 1e-5 * scale + 1e-6, where scale is the largest |torch|
 * value of that tensor. The worst errors are printed per case.
 *
 * An empty or missing fixture folder is a failure, not a skip. HEDDLE_CONV_FIXTURES=dir points
 * the test at another folder.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { decodeSafetensors } from '../io/safetensors.ts';
import { Network } from '../network.ts';
import { Tensor, type TensorData } from '../tensor.ts';

const DIR = process.env.HEDDLE_CONV_FIXTURES ?? fileURLToPath(new URL('../../tests/fixtures/torch/conv/', import.meta.url));
const RTOL = 1e-5;
const ATOL = 1e-6;
const CONV_TYPES = ['conv1d', 'conv2d', 'conv3d', 'conv_transposed1d', 'conv_transposed2d', 'conv_transposed3d'];

const files = existsSync(DIR) ? readdirSync(DIR).filter((f) => f.endsWith('.safetensors')).sort() : [];

interface Diff {
  maxAbs: number;
  scale: number;
  rel: number;
  ok: boolean;
}

function compare(got: Float32Array, want: Float32Array): Diff {
  if (got.length !== want.length) return { maxAbs: Infinity, scale: 0, rel: Infinity, ok: false };
  let maxAbs = 0, scale = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (!(d <= maxAbs)) maxAbs = d; // NaN becomes the max
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return { maxAbs, scale, rel: maxAbs / Math.max(scale, 1e-30), ok: maxAbs <= RTOL * scale + ATOL };
}

describe('conv vs PyTorch fixtures', () => {
  test('the fixture folder is filled', () => {
    expect(
      files.length,
      `no fixtures in ${DIR}: generate them with scripts/torch_fixtures/conv.py on the device machine (bash scripts/torch-fixtures.sh OUTDIR, then tar xzf OUTDIR/fixtures.tgz -C tests/fixtures/torch)`,
    ).toBeGreaterThan(0);
  });

  test('the fixtures cover every convolution type', () => {
    const seen = new Set<string>();
    for (const f of files) {
      const meta = decodeSafetensors(readFileSync(join(DIR, f)), { source: f }).metadata;
      for (const l of (JSON.parse(meta['heddle.config']) as { layers: { type: string }[] }).layers) seen.add(l.type.toLowerCase());
    }
    expect(CONV_TYPES.filter((t) => !seen.has(t)), `types without a fixture in ${DIR}`).toEqual([]);
  });

  for (const file of files) {
    test(file, () => {
      const { tensors, metadata } = decodeSafetensors(readFileSync(join(DIR, file)), { source: file });
      const get = (name: string): Tensor => {
        const t = tensors.get(name) as Tensor<TensorData> | undefined;
        if (!t) throw new Error(`${file}: no tensor '${name}'`);
        if (t.dtype !== 'f32') throw new Error(`${file}: tensor '${name}' is ${t.dtype}`);
        return t as Tensor;
      };
      const config = metadata['heddle.config'];
      expect(config, `${file}: metadata heddle.config`).toBeTypeOf('string');
      const net = Network.fromJSON(JSON.parse(config));
      const names = net.parameters().map((p) => p.name);
      net.setWeights(new Map(names.map((n) => [n, get(n)])), { complete: true, source: file });
      const x = get('input');
      const tape = net.forwardTape(x, { training: false, seed: 0 });
      const y = tape.outputs[tape.outputs.length - 1];
      net.zeroGrad();
      const dx = net.backward(tape, get('grad_output'));

      const rows: [string, Diff][] = [['output', compare(y.data, get('output').data)], ['input.grad', compare(dx.data, get('input.grad').data)]];
      expect(y.shape, `${file}: output shape`).toEqual(get('output').shape);
      for (const p of net.parameters()) rows.push([`${p.name}.grad`, compare(p.param.grad.data, get(`${p.name}.grad`).data)]);
      const report = rows.map(([n, d]) => `  ${d.ok ? 'ok  ' : 'FAIL'} ${n.padEnd(22)} max abs ${d.maxAbs.toExponential(2)}  scale ${d.scale.toExponential(2)}  rel ${d.rel.toExponential(2)}`).join('\n');
      console.log(`${file} (${metadata.case ?? ''}, torch ${metadata['torch.version'] ?? '?'})\n${report}`);
      expect(rows.every(([, d]) => d.ok), `${file}: Heddle vs torch beyond ${RTOL} * scale + ${ATOL}\n${report}`).toBe(true);
    });
  }
});
