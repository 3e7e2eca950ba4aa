/**
 * libheddle through vitest: builds bindings/c with CMake (incrementally, under
 * node_modules/.cache/heddle/c-build), runs its ctest suite (api, example, bits, webgpu), and checks
 * that forward/grad/save/train/load through the C library give the TS core's bits, with the
 * engine on Node, Deno and Bun.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { saveNetworkJSON, saveNetworkSafetensors, loadNetworkSafetensors } from '../../core/io/network_io.ts';
import { Network } from '../../core/network.ts';
import { Tensor } from '../../core/tensor.ts';
import { computeLoss } from '../../core/train/losses.ts';
import { train } from '../../core/train/trainer.ts';
import { REPO, type RuntimeName, engineBundle, engineCommandFor, testValues } from '../../abi/engine/testing.ts';

const BUILD = join(REPO, 'node_modules/.cache/heddle/c-build');
let bundle = '';

function hex(data: Uint8Array | Float32Array): string {
  const b = data instanceof Uint8Array ? data : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(b).toString('hex');
}

/** What tests/bits.c prints, computed in-process with the core. */
function reference(): Record<string, string> {
  const config = {
    layers: [
      { type: 'dense', input_height: 5, output_height: 7, activation: 'tanh' },
      { type: 'dense', input_height: 7, output_height: 6, activation: 'relu' },
      { type: 'dense', input_height: 6, output_height: 3 },
    ],
  };
  const x = new Tensor([4, 5], testValues(20, 11));
  const dy = new Tensor([4, 3], testValues(12, 12));
  const net = Network.fromJSON(config, { seed: 7 });
  const out: Record<string, string> = { forward: hex(net.forward(x).data as Float32Array) };
  const tape = net.forwardTape(x, { training: false, seed: 0 });
  net.zeroGrad();
  out.input_grad = hex(net.backward(tape, dy).data as Float32Array);
  out.weight_grads = net.parameters().map((p) => hex(p.param.grad.data)).join('');
  out.save_safetensors = hex(saveNetworkSafetensors(net));
  out.save_json = hex(new TextEncoder().encode(saveNetworkJSON(net)));
  const t = Network.fromJSON(config, { seed: 7 });
  const data = { inputs: new Tensor([6, 5], testValues(30, 13)), targets: new Tensor([6, 3], testValues(18, 14)) };
  const r = train(t, data, { epochs: 3, batchSize: 4, loss: 'mse', optimizer: { type: 'adamw', lr: 0.01 }, shuffle: true, seed: 5 });
  out.train_losses = hex(new Float32Array(r.epochLosses));
  const trained = saveNetworkSafetensors(t);
  out.trained_safetensors = hex(trained);
  out.loaded_forward = hex(loadNetworkSafetensors(trained).forward(x).data as Float32Array);
  const fresh = Network.fromJSON(config, { seed: 7 });
  const l = computeLoss('mse', fresh.forward(x), new Tensor([4, 3], testValues(12, 15)));
  out.loss = hex(Float32Array.of(l.loss));
  out.loss_output_grad = hex(l.grad.data as Float32Array);
  fresh.setWeights(new Map(fresh.parameters().map(({ name, param }, i) => [name, new Tensor(param.value.shape, testValues(param.value.size, 50 + i))])), { complete: true });
  out.set_weights_forward = hex(fresh.forward(x).data as Float32Array);
  return out;
}

function parseLines(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.trim().split('\n')) {
    const [k, v] = line.split(' ');
    out[k] = v ?? '';
  }
  return out;
}

describe('libheddle (bindings/c)', () => {
  beforeAll(() => {
    mkdirSync(BUILD, { recursive: true });
    execFileSync('cmake', ['-S', join(REPO, 'bindings/c'), '-B', BUILD, '-DCMAKE_BUILD_TYPE=Release', '-DHEDDLE_TEST_BUNDLE_ENV=OFF'], { stdio: 'pipe' });
    execFileSync('cmake', ['--build', BUILD, '-j', '2'], { stdio: 'pipe' });
    return engineBundle().then((b) => {
      bundle = b;
    });
  });

  it('passes its ctest suite (api, example, bits, webgpu)', () => {
    let out = '';
    try {
      const env: Record<string, string | undefined> = { ...process.env, HEDDLE_ENGINE_BUNDLE: bundle };
      delete env.HEDDLE_ENGINE;
      out = execFileSync('ctest', ['--test-dir', BUILD, '--output-on-failure'], { env, encoding: 'utf8' });
    } catch (e) {
      throw new Error(`ctest failed:\n${(e as { stdout?: string }).stdout ?? ''}${(e as { stderr?: string }).stderr ?? ''}`);
    }
    expect(out).toMatch(/100% tests passed/);
  });

  for (const rt of ['node', 'deno', 'bun'] as RuntimeName[]) {
    it(`gives the TS core's bits with the engine on ${rt}`, async () => {
      const cmd = await engineCommandFor(rt);
      const out = execFileSync(join(BUILD, 'heddle_bits'), { env: { ...process.env, HEDDLE_ENGINE: cmd.join(' ') }, encoding: 'utf8', maxBuffer: 64 << 20 });
      expect(parseLines(out)).toEqual(reference());
    });
  }

  // On node, ctest runs it (above).
  for (const rt of ['deno', 'bun'] as RuntimeName[]) {
    it(`set_backend("webgpu") gives the cpu's bits with the engine on ${rt}`, async () => {
      const cmd = await engineCommandFor(rt);
      const r = spawnSync(join(BUILD, 'heddle_webgpu'), { env: { ...process.env, HEDDLE_ENGINE: cmd.join(' ') }, encoding: 'utf8', timeout: 300_000 });
      expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
      expect(r.stdout).toMatch(/trained_forward: same bits/);
    }, 300_000);
  }
});
