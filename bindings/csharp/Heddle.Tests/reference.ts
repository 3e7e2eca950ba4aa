/**
 * The TS core's in-process results for the C# bit-equality test (BitsTests.cs): runs the same
 * network, inputs and calls as the test, in this Node process without an engine, and prints one
 * JSON object of SHA-256 digests (hex) of each result's bytes. Run by the test with
 * `node_modules/.bin/vite-node bindings/csharp/Heddle.Tests/reference.ts`.
 */
import { createHash } from 'node:crypto';
import { loadNetworkSafetensors, saveNetworkJSON, saveNetworkSafetensors } from '../../../core/io/network_io.ts';
import { Network } from '../../../core/network.ts';
import { Tensor } from '../../../core/tensor.ts';
import { computeLoss } from '../../../core/train/losses.ts';
import { train } from '../../../core/train/trainer.ts';
import { testValues } from '../../../abi/engine/testing.ts';

function sha(data: Uint8Array | Float32Array): string {
  const b = data instanceof Uint8Array ? data : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return createHash('sha256').update(b).digest('hex');
}

/** Kept in step with BitsTests.Config. */
export const CONFIG = {
  layers: [
    { type: 'dense', input_height: 5, output_height: 7, activation: 'tanh' },
    { type: 'dense', input_height: 7, output_height: 6, activation: 'relu' },
    { type: 'dense', input_height: 6, output_height: 3 },
  ],
};

function reference(): Record<string, string> {
  const x = new Tensor([4, 5], testValues(20, 11));
  const dy = new Tensor([4, 3], testValues(12, 12));
  const net = Network.fromJSON(CONFIG, { seed: 7 });
  const out: Record<string, string> = { forward: sha(net.forward(x).data as Float32Array) };
  const tape = net.forwardTape(x, { training: false, seed: 0 });
  net.zeroGrad();
  out.input_grad = sha(net.backward(tape, dy).data as Float32Array);
  const grads = net.parameters().map((p) => p.param.grad.data as Float32Array);
  const flat = new Float32Array(grads.reduce((n, g) => n + g.length, 0));
  let o = 0;
  for (const g of grads) {
    flat.set(g, o);
    o += g.length;
  }
  out.weight_grads = sha(flat);
  out.save_safetensors = sha(saveNetworkSafetensors(net));
  out.save_json = sha(new TextEncoder().encode(saveNetworkJSON(net)));

  const t = Network.fromJSON(CONFIG, { seed: 7 });
  const data = { inputs: new Tensor([6, 5], testValues(30, 13)), targets: new Tensor([6, 3], testValues(18, 14)) };
  const losses: number[] = [];
  const r = train(t, data, {
    epochs: 3, batchSize: 4, loss: 'mse', optimizer: { type: 'adamw', lr: 0.01 }, shuffle: true, seed: 5,
    onProgress: (p) => void losses.push(p.loss),
  });
  out.train_epoch_losses = sha(new Float32Array(r.epochLosses));
  out.train_step_losses = sha(new Float32Array(losses));
  const trained = saveNetworkSafetensors(t);
  out.trained_safetensors = sha(trained);
  out.loaded_forward = sha(loadNetworkSafetensors(trained).forward(x).data as Float32Array);

  const fresh = Network.fromJSON(CONFIG, { seed: 7 });
  const l = computeLoss('mse', fresh.forward(x), new Tensor([4, 3], testValues(12, 15)));
  out.loss = sha(Float32Array.of(l.loss));
  out.loss_output_grad = sha(l.grad.data as Float32Array);
  fresh.setWeights(new Map(fresh.parameters().map(({ name, param }, i) => [name, new Tensor(param.value.shape, testValues(param.value.size, 50 + i))])), { complete: true });
  out.set_weights_forward = sha(fresh.forward(x).data as Float32Array);
  return out;
}

process.stdout.write(`${JSON.stringify(reference())}\n`);
