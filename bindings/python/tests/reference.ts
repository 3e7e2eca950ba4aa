/**
 * The TS core's bits for the Python tests (tests/test_bits.py): the same calls the tests make
 * through the engine, run in-process with the core, each result as the SHA-256 of its bytes
 * (little-endian f32 / i32, or the saved file). Inputs come from the xorshift32 generator of
 * abi/engine/testing.ts (`testValues`), which the tests port to Python.
 *
 *   vite-node bindings/python/tests/print-reference.ts     prints the JSON object
 *
 * bindings/python/python.test.ts imports reference() and hands the result to pytest in a file
 * ($HEDDLE_PY_REFERENCE); pytest run by hand runs this script itself.
 */
import { createHash } from 'node:crypto';
import { loadNetworkJSON, loadNetworkSafetensors, saveNetworkJSON, saveNetworkSafetensors } from '../../../core/io/network_io.ts';
import { Network } from '../../../core/network.ts';
import { Tensor } from '../../../core/tensor.ts';
import { computeLoss } from '../../../core/train/losses.ts';
import { createOptimizer } from '../../../core/train/optimizers.ts';
import { train } from '../../../core/train/trainer.ts';

/** The xorshift32 generator of abi/engine/testing.ts (kept here so this file imports only the core). */
export function testValues(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

export const CONFIG = {
  layers: [
    { type: 'dense', input_height: 5, output_height: 7, activation: 'tanh' },
    { type: 'dense', input_height: 7, output_height: 6, activation: 'relu' },
    { type: 'dense', input_height: 6, output_height: 3 },
  ],
};

/** A sequence network (input [4, 3]) with an LSTM and a layer norm: multi-dim shapes through the ABI. */
export const SEQ_CONFIG = {
  input_shape: [4, 3],
  layers: [
    { type: 'lstm', input_size: 3, hidden_size: 5, seq_length: 4 },
    { type: 'layer_norm', norm_size: 5 },
    { type: 'dense', input_height: 5, output_height: 2 },
  ],
};

function sha(data: Uint8Array | Float32Array | Int32Array): string {
  const b = data instanceof Uint8Array ? data : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return createHash('sha256').update(b).digest('hex');
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) out.set(p, (o += p.length) - p.length);
  return out;
}

export function reference(): Record<string, string> {
  const out: Record<string, string> = {};
  const x = new Tensor([4, 5], testValues(20, 11));
  const dy = new Tensor([4, 3], testValues(12, 12));

  const net = Network.fromJSON(CONFIG, { seed: 7 });
  out.forward = sha(net.forward(x).data as Float32Array);
  const tape = net.forwardTape(x, { training: false, seed: 0 });
  net.zeroGrad();
  out.input_grad = sha(net.backward(tape, dy).data as Float32Array);
  out.weight_grads = sha(concat(net.parameters().map((p) => p.param.grad.data as Float32Array)));
  out.save_safetensors = sha(saveNetworkSafetensors(net));
  out.save_json = sha(new TextEncoder().encode(saveNetworkJSON(net)));

  // Optimizer made apart from training: one SGD-momentum step from the grads above.
  const opt = createOptimizer({ type: 'sgd', lr: 0.1, momentum: 0.9 } as never, net.parameters());
  opt.step();
  out.optimizer_weights = sha(concat(net.parameters().map((p) => p.param.value.data as Float32Array)));
  out.optimizer_state = sha(concat([...opt.exportState().tensors.values()].map((t) => t.data as Float32Array)));

  const t = Network.fromJSON(CONFIG, { seed: 7 });
  const data = { inputs: new Tensor([6, 5], testValues(30, 13)), targets: new Tensor([6, 3], testValues(18, 14)) };
  const steps: number[] = [];
  const lrs: number[] = [];
  const r = train(t, data, {
    epochs: 3,
    batchSize: 4,
    loss: 'mse',
    optimizer: { type: 'adamw', lr: 0.01 } as never,
    schedule: { type: 'cosine', T_max: 6 } as never,
    shuffle: true,
    seed: 5,
    onProgress: (p) => {
      steps.push(p.loss);
      lrs.push(p.lr);
    },
  });
  out.train_epoch_losses = sha(Float32Array.from(r.epochLosses));
  out.train_step_losses = sha(Float32Array.from(steps));
  out.train_step_lrs = sha(new Uint8Array(Float64Array.from(lrs).buffer));
  const trained = saveNetworkSafetensors(t);
  out.trained_safetensors = sha(trained);
  out.loaded_forward = sha(loadNetworkSafetensors(trained).forward(x).data as Float32Array);
  out.loaded_json_forward = sha(loadNetworkJSON(new TextEncoder().encode(saveNetworkJSON(t))).forward(x).data as Float32Array);

  const fresh = Network.fromJSON(CONFIG, { seed: 7 });
  const l = computeLoss('mse', fresh.forward(x), new Tensor([4, 3], testValues(12, 15)));
  out.loss = sha(Float32Array.of(l.loss));
  out.loss_output_grad = sha(l.grad.data as Float32Array);
  const ce = computeLoss('cross_entropy', fresh.forward(x), new Tensor([4], Int32Array.of(0, 2, 1, 2), 'i32'));
  out.ce_loss = sha(Float32Array.of(ce.loss));
  out.ce_output_grad = sha(ce.grad.data as Float32Array);
  fresh.setWeights(new Map(fresh.parameters().map(({ name, param }, i) => [name, new Tensor(param.value.shape, testValues(param.value.size, 50 + i))])), { complete: true });
  out.set_weights_forward = sha(fresh.forward(x).data as Float32Array);

  const seq = Network.fromJSON(SEQ_CONFIG, { seed: 3 });
  const sx = new Tensor([2, 4, 3], testValues(24, 21));
  out.seq_forward = sha(seq.forward(sx).data as Float32Array);
  const stape = seq.forwardTape(sx, { training: false, seed: 0 });
  seq.zeroGrad();
  out.seq_input_grad = sha(seq.backward(stape, new Tensor([2, 4, 2], testValues(16, 22))).data as Float32Array);
  out.seq_weight_grads = sha(concat(seq.parameters().map((p) => p.param.grad.data as Float32Array)));
  return out;
}

