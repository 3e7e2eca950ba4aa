/**
 * Bit equality: forward, grad, train, save and load through the engine (on Node, Deno and
 * Bun) give the same bits as the TS core run in-process here (same SHA-256 of the bytes).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadNetworkSafetensors, saveNetworkJSON, saveNetworkSafetensors } from '../../core/io/network_io.ts';
import { Network } from '../../core/network.ts';
import { Tensor } from '../../core/tensor.ts';
import { computeLoss } from '../../core/train/losses.ts';
import { createOptimizer } from '../../core/train/optimizers.ts';
import { train } from '../../core/train/trainer.ts';
import { Engine, NetworkFormat } from '../client/client.ts';
import { type RuntimeName, engineCommandFor, sha256, testValues } from './testing.ts';

const CONFIG = {
  layers: [
    { type: 'dense', input_height: 5, output_height: 7, activation: 'tanh' },
    { type: 'dense', input_height: 7, output_height: 6, activation: 'relu' },
    { type: 'dense', input_height: 6, output_height: 3 },
  ],
};
const SEED = 7;
const X = new Tensor([4, 5], testValues(20, 11));
const DY = new Tensor([4, 3], testValues(12, 12));
const DATA = { inputs: new Tensor([6, 5], testValues(30, 13)), targets: new Tensor([6, 3], testValues(18, 14)) };
const TRAIN = { epochs: 3, batchSize: 4, loss: 'mse', optimizer: { type: 'adamw', lr: 0.01 }, shuffle: true, seed: 5 } as const;

interface Hashes {
  forward: string;
  inputGrad: string;
  weightGrads: string[];
  lossGradLoss: number;
  lossGradInput: string;
  saveSafetensors: string;
  saveJSON: string;
  trainLosses: number[];
  trainedSafetensors: string;
  loadedForward: string;
  manualStep: string;
  loss: number;
  lossOutputGrad: string;
  trainedWeights: string[];
  optimizerStep: number;
  optimizerState: string[];
  setWeightsForward: string;
}

/** Replacement weights: every parameter from the test generator. */
function replacement(net: Network): Map<string, Tensor> {
  return new Map(net.parameters().map(({ name, param }, i) => [name, new Tensor(param.value.shape, testValues(param.value.size, 50 + i))]));
}

function reference(): Hashes {
  const net = Network.fromJSON(CONFIG, { seed: SEED });
  const forward = sha256(net.forward(X).data);
  const tape = net.forwardTape(X, { training: false, seed: 0 });
  net.zeroGrad();
  const dx = net.backward(tape, DY);
  const weightGrads = net.parameters().map((p) => sha256(p.param.grad.data));
  const tape2 = net.forwardTape(X, { training: false, seed: 0 });
  const target = new Tensor([4, 3], testValues(12, 15));
  const lg = computeLoss('mse', tape2.outputs[tape2.outputs.length - 1], target);
  net.zeroGrad();
  const ldx = net.backward(tape2, lg.grad);
  const saveSafetensors = sha256(saveNetworkSafetensors(net));
  const saveJSON = sha256(new TextEncoder().encode(saveNetworkJSON(net)));
  const trainedNet = Network.fromJSON(CONFIG, { seed: SEED });
  const r = train(trainedNet, DATA, { ...TRAIN, optimizer: { ...TRAIN.optimizer } });
  const trained = saveNetworkSafetensors(trainedNet);
  const loaded = loadNetworkSafetensors(trained);
  // Manual step: grad (loss) + optimizer step on a fresh network.
  const m = Network.fromJSON(CONFIG, { seed: SEED });
  const opt = createOptimizer({ type: 'sgd', lr: 0.05, momentum: 0.9 }, m.parameters());
  for (let i = 0; i < 2; i++) {
    const t = m.forwardTape(X, { training: false, seed: 0 });
    const l = computeLoss('mse', t.outputs[t.outputs.length - 1], target);
    m.zeroGrad();
    m.backward(t, l.grad);
    opt.step();
  }
  const lossNet = Network.fromJSON(CONFIG, { seed: SEED });
  const l2 = computeLoss('mse', lossNet.forward(X), target);
  const stated = Network.fromJSON(CONFIG, { seed: SEED });
  const sopt = createOptimizer({ type: 'adamw', lr: 0.01 }, stated.parameters());
  train(stated, DATA, { ...TRAIN, optimizer: sopt });
  const st = sopt.exportState();
  const replaced = Network.fromJSON(CONFIG, { seed: SEED });
  replaced.setWeights(replacement(replaced), { complete: true });
  return {
    loss: l2.loss,
    lossOutputGrad: sha256(l2.grad.data),
    trainedWeights: stated.parameters().map((p) => sha256(p.param.value.data)),
    optimizerStep: st.step,
    optimizerState: [...st.tensors].map(([k, t]) => `${k}:${sha256(t.data)}`),
    setWeightsForward: sha256(replaced.forward(X).data),
    forward,
    inputGrad: sha256(dx.data),
    weightGrads,
    lossGradLoss: lg.loss,
    lossGradInput: sha256(ldx.data),
    saveSafetensors,
    saveJSON,
    trainLosses: r.epochLosses,
    trainedSafetensors: sha256(trained),
    loadedForward: sha256(loaded.forward(X).data),
    manualStep: sha256(saveNetworkSafetensors(m)),
  };
}

async function throughEngine(engine: Engine): Promise<Hashes> {
  const net = await engine.createNetwork(CONFIG, { seed: SEED });
  const forward = sha256((await net.forward(X)).data);
  const g = await net.grad(X, { gradOutput: DY });
  const target = new Tensor([4, 3], testValues(12, 15));
  const lg = await net.grad(X, { target, loss: 'mse' }, { weightGrads: false });
  const saveSafetensors = sha256(await net.save(NetworkFormat.SAFETENSORS));
  const saveJSON = sha256(await net.save(NetworkFormat.JSON));
  const t = await engine.createNetwork(CONFIG, { seed: SEED });
  const progress: number[] = [];
  const r = await t.train(DATA, { ...TRAIN, optimizer: { ...TRAIN.optimizer }, onProgress: (p) => progress.push(p.step) });
  expect(progress).toEqual([1, 2, 3, 4, 5, 6]);
  const trained = await t.save(NetworkFormat.SAFETENSORS);
  const loaded = await engine.loadNetwork(trained, NetworkFormat.SAFETENSORS);
  const m = await engine.createNetwork(CONFIG, { seed: SEED });
  const opt = await m.createOptimizer({ type: 'sgd', lr: 0.05, momentum: 0.9 });
  for (let i = 0; i < 2; i++) {
    await m.grad(X, { target, loss: 'mse' }, { weightGrads: false });
    await opt.step();
  }
  const ln = await engine.createNetwork(CONFIG, { seed: SEED });
  const l2 = await ln.loss(X, target, 'mse');
  const stated = await engine.createNetwork(CONFIG, { seed: SEED });
  const sopt = await stated.createOptimizer({ type: 'adamw', lr: 0.01 });
  await stated.train(DATA, { ...TRAIN, optimizer: sopt });
  const st = await sopt.state();
  const replaced = await engine.createNetwork(CONFIG, { seed: SEED });
  await replaced.setWeights(replacement(Network.fromJSON(CONFIG, { seed: SEED })), { complete: true });
  const out: Hashes = {
    loss: l2.loss,
    lossOutputGrad: sha256(l2.outputGrad.data),
    trainedWeights: [...(await stated.getWeights()).values()].map((w) => sha256(w.data)),
    optimizerStep: st.step,
    optimizerState: [...st.tensors].map(([k, t]) => `${k}:${sha256(t.data)}`),
    setWeightsForward: sha256((await replaced.forward(X)).data),
    forward,
    inputGrad: sha256(g.inputGrad.data),
    weightGrads: [...g.weightGrads.values()].map((w) => sha256(w.data)),
    lossGradLoss: lg.loss!,
    lossGradInput: sha256(lg.inputGrad.data),
    saveSafetensors,
    saveJSON,
    trainLosses: r.epochLosses,
    trainedSafetensors: sha256(trained),
    loadedForward: sha256((await loaded.forward(X)).data),
    manualStep: sha256(await m.save(NetworkFormat.SAFETENSORS)),
  };
  for (const n of [net, t, loaded, m, ln, stated, replaced]) await n.free();
  return out;
}

describe('engine results equal the in-process core, bit for bit', () => {
  let ref: Hashes;
  beforeAll(() => {
    ref = reference();
  });

  for (const rt of ['node', 'deno', 'bun'] as RuntimeName[]) {
    describe(`on ${rt}`, () => {
      let engine: Engine;
      beforeAll(async () => {
        engine = await Engine.spawn({ command: await engineCommandFor(rt) });
      });
      afterAll(async () => engine?.close());

      it('forward, grad, train, save, load and optimizer steps hash the same', async () => {
        expect(engine.info.runtime).toBe(rt);
        const got = await throughEngine(engine);
        expect(got).toEqual(ref);
      });

      it('saved bytes load back in-process to the same network', async () => {
        const net = await engine.createNetwork(CONFIG, { seed: SEED });
        const bytes = await net.save(NetworkFormat.SAFETENSORS);
        expect(sha256(bytes)).toBe(sha256(saveNetworkSafetensors(Network.fromJSON(CONFIG, { seed: SEED }))));
        const json = await net.save(NetworkFormat.JSON);
        const fromJson = await engine.loadNetwork(json, NetworkFormat.JSON);
        expect(sha256((await fromJson.forward(X)).data)).toBe(ref.forward);
        await net.free();
        await fromJson.free();
      });
    });
  }
});
