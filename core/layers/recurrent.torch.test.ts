/**
 * rnn / lstm / gru against PyTorch: every fixture in tests/fixtures/torch/recurrent/ (made by
 * scripts/torch_fixtures/recurrent.py, CPU float32) is rebuilt from its `heddle.config`
 * metadata, given the fixture's weights (and initial state of layers.0, when present), run
 * forward and backward, and compared tensor by tensor. Tolerance per tensor:
 * max |heddle - torch| <= 1e-5 * max |torch| + 1e-7 (the two use different summation orders and
 * transcendental routines, so equality of bits is not expected; the gradient checks and the
 * float64 forwards in the other tests cover exactness of the formulas).
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { decodeSafetensors } from '../io/safetensors.ts';
import { Network } from '../network.ts';
import type { Tensor, TensorData } from '../tensor.ts';
import { RecurrentLayer } from './rnn.ts';

const DIR = fileURLToPath(new URL('../../tests/fixtures/torch/recurrent/', import.meta.url));
const files = existsSync(DIR) ? readdirSync(DIR).filter((f) => f.endsWith('.safetensors')).sort() : [];
const RTOL = 1e-5;
const ATOL = 1e-7;

interface Compared {
  name: string;
  maxErr: number;
  scale: number;
  ok: boolean;
}

function compare(name: string, got: Float32Array, want: Tensor<TensorData> | undefined): Compared {
  if (!want) throw new Error(`fixture has no tensor '${name}'`);
  const w = want.data as Float32Array;
  if (w.length !== got.length) throw new Error(`${name}: Heddle has ${got.length} values, torch ${w.length}`);
  let maxErr = 0, scale = 0;
  for (let i = 0; i < w.length; i++) {
    const e = Math.abs(got[i] - w[i]);
    if (!(e <= maxErr)) maxErr = e; // NaN counts as a failure
    scale = Math.max(scale, Math.abs(w[i]));
  }
  return { name, maxErr, scale, ok: maxErr <= RTOL * scale + ATOL };
}

describe('recurrent layers vs PyTorch fixtures', () => {
  test('fixtures are present', () => {
    expect(
      files.length,
      `no fixtures in ${DIR}: generate them on a machine with PyTorch with \`bash scripts/torch-fixtures.sh OUT\` ` +
        '(runs scripts/torch_fixtures/recurrent.py) and unpack OUT/fixtures.tgz into tests/fixtures/torch',
    ).toBeGreaterThan(0);
  });

  for (const file of files) {
    test(file, () => {
      const { tensors, metadata } = decodeSafetensors(readFileSync(join(DIR, file)), { source: file });
      const raw = metadata['heddle.config'];
      if (!raw) throw new Error(`${file}: no heddle.config metadata`);
      const net = Network.fromJSON(JSON.parse(raw));
      const weights = new Map<string, Tensor>();
      for (const [name, t] of tensors) if (name.startsWith('layers.') && !name.endsWith('.grad')) weights.set(name, t as Tensor);
      net.setWeights(weights, { complete: true, source: file });

      const first = net.nodes[0].layer;
      const h0 = tensors.get('state.h0') as Tensor | undefined;
      const c0 = tensors.get('state.c0') as Tensor | undefined;
      if (h0 || c0) {
        if (!(first instanceof RecurrentLayer)) throw new Error(`${file}: an initial state for a ${first.type} layer`);
        first.setInitialState(h0 ?? null, c0 ?? null);
      }

      const input = tensors.get('input') as Tensor;
      const tape = net.forwardTape(input, { training: false, seed: 0 });
      const results: Compared[] = [compare('output', tape.outputs[tape.outputs.length - 1].data, tensors.get('output'))];
      net.zeroGrad();
      const dx = net.backward(tape, tensors.get('grad_output') as Tensor);
      results.push(compare('input.grad', dx.data, tensors.get('input.grad')));
      for (const { name, param } of net.parameters()) results.push(compare(`${name}.grad`, param.grad.data, tensors.get(`${name}.grad`)));
      if (first instanceof RecurrentLayer && (h0 || c0)) {
        const g = first.initialStateGrad()!;
        if (h0) results.push(compare('state.h0.grad', g.h.data, tensors.get('state.h0.grad')));
        if (c0) results.push(compare('state.c0.grad', g.c!.data, tensors.get('state.c0.grad')));
      }

      const report = results.map((r) => `  ${r.ok ? 'ok  ' : 'FAIL'} ${r.name}: max err ${r.maxErr.toExponential(2)}, scale ${r.scale.toExponential(2)}, rel ${(r.maxErr / Math.max(r.scale, 1e-30)).toExponential(2)}`).join('\n');
      console.log(`${file} (torch ${metadata['torch.version'] ?? '?'})\n${report}`);
      expect(results.every((r) => r.ok), `${file}\n${report}`).toBe(true);
    });
  }
});
