/**
 * PyTorch reference fixtures for multi_head_attention, swiglu, embedding and small transformer
 * networks (scripts/torch_fixtures/attention.py, generated on the device machine's CPU in
 * float32 and committed under tests/fixtures/torch/attention/). Each fixture holds a Heddle
 * network config, its weights under Heddle names, an input, the output, a grad_output and every
 * gradient; Heddle must reproduce them up to f32 rounding.
 *
 * Tolerance per tensor: max |heddle - torch| <= 1e-5 * scale, scale = max |torch| over the
 * tensor (at least 1e-6). The max errors are printed.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { decodeSafetensors } from '../io/safetensors.ts';
import { Network } from '../network.ts';
import type { Tensor, TensorData } from '../tensor.ts';

const DIR = fileURLToPath(new URL('../../tests/fixtures/torch/attention/', import.meta.url));
const RTOL = 1e-5;

function files(): string[] {
  if (!existsSync(DIR)) return [];
  return readdirSync(DIR).filter((f) => f.endsWith('.safetensors')).sort();
}

/**
 * max |a - b| / scale, scale = max(max |b|, 0.1): an absolute floor of 1e-6 at RTOL, like the
 * conv and recurrent fixtures. Needed for gradients that are analytically zero, e.g. the key
 * bias (softmax ignores a shift shared by all keys), where both sides hold rounding noise.
 */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): { err: number; scale: number } {
  let scale = 0.1;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= worst)) worst = d; // NaN propagates
  }
  return { err: worst / scale, scale };
}

describe('attention family vs PyTorch fixtures', () => {
  const list = files();

  test('fixtures are present', () => {
    expect(
      list.length,
      `no fixtures in ${DIR}: generate them with scripts/torch-fixtures.sh on the device machine (scripts/torch_fixtures/attention.py) and commit tests/fixtures/torch/attention/*.safetensors`,
    ).toBeGreaterThan(0);
  });

  for (const file of list) {
    test(file, () => {
      const { tensors, metadata } = decodeSafetensors(new Uint8Array(readFileSync(DIR + file)), { source: file });
      const config = JSON.parse(metadata['heddle.config']);
      const net = Network.fromJSON(config);
      const weights = new Map<string, Tensor>();
      for (const [name, t] of tensors) {
        if (name === 'input' || name === 'output' || name === 'grad_output' || name.endsWith('.grad')) continue;
        weights.set(name, t as Tensor);
      }
      net.setWeights(weights, { complete: true, source: file });
      const input = tensors.get('input') as Tensor<TensorData>;
      const report: string[] = [];
      const check = (what: string, got: ArrayLike<number>, ref: Tensor<TensorData> | undefined) => {
        expect(ref, `${file}: tensor ${what} missing`).toBeDefined();
        expect(got.length, `${file}: ${what} size`).toBe(ref!.size);
        const { err, scale } = relErr(got, ref!.data as Float32Array);
        report.push(`${what}: max err ${err.toExponential(2)} of scale ${scale.toPrecision(3)}`);
        expect(err, `${file}: ${what}: max |heddle - torch| = ${(err * scale).toExponential(3)}, scale ${scale}`).toBeLessThanOrEqual(RTOL);
      };

      const tape = net.forwardTape(input, { training: false, seed: 0 });
      const y = tape.outputs[tape.outputs.length - 1];
      check('output', y.data, tensors.get('output'));
      net.zeroGrad();
      const dx = net.backward(tape, tensors.get('grad_output') as Tensor);
      if (tensors.has('input.grad')) check('input.grad', dx.data, tensors.get('input.grad'));
      for (const { name, param } of net.parameters()) check(`${name}.grad`, param.grad.data, tensors.get(`${name}.grad`));
      console.log(`${file} (${metadata['heddle.case'] ?? ''}, torch ${metadata['heddle.torch'] ?? '?'}):\n  ${report.join('\n  ')}`);
    });
  }
});
