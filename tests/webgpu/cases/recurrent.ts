/** GPU check cases: recurrent (gathered by buildCases in tests/webgpu/checks.ts). */
import type { WebGpuContext } from '../../../core/backend/webgpu/device.ts';
import type { RecurrentLayer } from '../../../core/layers/rnn.ts';
import { Network } from '../../../core/network.ts';
import { Prng } from '../../../core/prng.ts';
import { Tensor } from '../../../core/tensor.ts';
import { type CheckCase, type ValueKind, compareBits } from '../checks.ts';

type Cfg = Record<string, unknown>;

const rec = (type: string, i: number, h: number, extra: Cfg = {}): Cfg => ({ type, input_size: i, hidden_size: h, ...extra });
const dense = (i: number, o: number, activation = 'linear'): Cfg => ({ type: 'dense', input_height: i, output_height: o, activation });

export function recurrentCases(quick: boolean, large: boolean): CheckCase[] {
  const cases: CheckCase[] = [];
  const add = (name: string, kernel: string, inputShape: number[], layers: Cfg[], o: { batches?: number[]; values?: ValueKind; scenario?: CheckCase['scenario']; train?: CheckCase['train'] } = {}): void => {
    const v = o.values ?? 'random';
    cases.push({ name, kernel, config: { input_shape: inputShape, layers }, batches: o.batches ?? [3, 1], inputs: v, weights: v, scenario: o.scenario, train: o.train });
  };

  // ---- forward: every type and config, random / hard / tiny values, seq 1 and > 1 ----
  for (const type of ['rnn', 'lstm', 'gru']) {
    for (const v of ['random', 'hard', 'tiny'] as const) {
      add(`${type} ${v} values S5 6->7`, type, [5, 6], [rec(type, 6, 7)], { values: v });
    }
    add(`${type} seq 1, no bias, 4->9`, type, [1, 4], [rec(type, 4, 9, { bias: false })], { batches: [2, 1] });
    add(`${type} flat input with seq_length 3 (3x5 -> 2)`, type, [15], [rec(type, 5, 2, { seq_length: 3 })], { batches: [4] });
    add(`${type} hidden 1, input 1, S7`, type, [7, 1], [rec(type, 1, 1)], { batches: [5], values: 'hard' });
  }
  add('rnn relu random values S6 5->8', 'rnn', [6, 5], [rec('rnn', 5, 8, { nonlinearity: 'relu' })]);
  add('rnn relu hard values, no bias', 'rnn', [4, 5], [rec('rnn', 5, 6, { nonlinearity: 'relu', bias: false })], { values: 'hard' });
  add('rnn relu tiny values', 'rnn', [4, 5], [rec('rnn', 5, 6, { nonlinearity: 'relu' })], { values: 'tiny' });
  add('lstm d_model 6, S4', 'lstm', [4, 6], [{ type: 'lstm', d_model: 6 }], { batches: [2] });
  // more hidden units than invocations per workgroup (each owns two units), tiled input projection
  add('gru hidden 260 (strided units), S3, 40 rows', 'gru', [3, 8], [rec('gru', 8, 260)], { batches: [quick ? 2 : 14] });
  add('lstm hidden 257, S2', 'lstm', [2, 3], [rec('lstm', 3, 257)], { batches: [2], values: 'hard' });
  // nested and stacked
  add('dense tanh -> lstm -> dense', 'recurrent:nested', [4, 6], [dense(6, 6, 'tanh'), rec('lstm', 6, 5), dense(5, 7)]);
  add('lstm -> lstm -> gru -> rnn (stacked)', 'recurrent:nested', [5, 3], [rec('lstm', 3, 6), rec('lstm', 6, 4), rec('gru', 4, 5), rec('rnn', 5, 3)], { batches: [2, 1] });
  add('sequential [gru, dense relu], residual, layer_norm', 'recurrent:nested', [4, 6], [
    { type: 'sequential', layers: [rec('gru', 6, 6), dense(6, 6, 'relu')] },
    { type: 'residual' },
    { type: 'layer_norm', norm_size: 6 },
  ]);
  add('parallel concat [rnn, lstm, gru]', 'recurrent:nested', [3, 4], [{ type: 'parallel', combine_mode: 'concat', branches: [rec('rnn', 4, 2), rec('lstm', 4, 3), rec('gru', 4, 2)] }], { batches: [2] });

  // ---- training: BPTT bit for bit (dL/dx and every parameter gradient), then trainAsync ----
  for (const type of ['rnn', 'lstm', 'gru']) {
    for (const v of ['random', 'hard', 'tiny'] as const) {
      add(`${type} grad ${v} values S4 5->6`, `${type}:grad`, [4, 5], [rec(type, 5, 6)], { values: v, scenario: 'grad' });
    }
    add(`${type} grad seq 1, no bias`, `${type}:grad`, [1, 3], [rec(type, 3, 4, { bias: false })], { scenario: 'grad', batches: [2] });
  }
  // tiny values without biases: products flush to +-0, so every sum is a sum of signed zeros
  // that must start from +0 (a compiler folding 0.0 + p keeps a -0 the CPU does not have)
  for (const type of ['rnn', 'lstm', 'gru']) {
    add(`${type} grad tiny values, no bias, 1->1`, `${type}:grad`, [6, 1], [rec(type, 1, 1, { bias: false })], { values: 'tiny', scenario: 'grad', batches: [4] });
    add(`${type} grad tiny values, no bias, 2->3`, `${type}:grad`, [3, 2], [rec(type, 2, 3, { bias: false })], { values: 'tiny', scenario: 'grad', batches: [3] });
  }
  add('rnn relu grad', 'rnn:grad', [5, 4], [rec('rnn', 4, 5, { nonlinearity: 'relu' })], { scenario: 'grad' });
  add('gru grad hidden 260 (strided units)', 'gru:grad', [2, 3], [rec('gru', 3, 260)], { scenario: 'grad', batches: [2] });
  add('grad dense -> lstm -> gru -> dense', 'recurrent:grad', [4, 5], [dense(5, 5, 'tanh'), rec('lstm', 5, 4), rec('gru', 4, 3), dense(3, 2)], { scenario: 'grad', batches: [3] });
  add('train lstm -> dense, mse, adamw', 'recurrent:train', [4, 3], [rec('lstm', 3, 5), dense(20, 2)], { scenario: 'train', batches: [2], train: { loss: 'mse', optimizer: { type: 'adamw', lr: 0.01 }, epochs: 2, batchSize: 4, samples: 6 } });
  add('train gru -> rnn -> dense, mse, sgd, clipped', 'recurrent:train', [3, 2], [rec('gru', 2, 4), rec('rnn', 4, 3), dense(9, 2)], { scenario: 'train', batches: [2], train: { loss: 'mse', optimizer: { type: 'sgd', lr: 0.05 }, epochs: 2, batchSize: 3, samples: 6, clipNorm: 0.5 } });

  if (large) {
    add('large: lstm S64 128->256 x16', 'large', [64, 128], [rec('lstm', 128, 256)], { batches: [16] });
    add('large: gru S32 64->512 x8 (strided units)', 'large', [32, 64], [rec('gru', 64, 512)], { batches: [8] });
    add('large: rnn grad S50 32->300 x4', 'large', [50, 32], [rec('rnn', 32, 300)], { batches: [4], scenario: 'grad' });
    add('large: lstm grad S32 64->128 x8', 'large', [32, 64], [rec('lstm', 64, 128)], { batches: [8], scenario: 'grad' });
  }
  return cases;
}

/**
 * Initial-state checks (RecurrentLayer.setInitialState): CheckCase has no hook to set it, so
 * these run here: forward (and, when the backend has gradAsync, backward) with h0 (and c0)
 * set, compared bit for bit with the CPU, plus finalState() and initialStateGrad() after the
 * GPU run, and the batch mismatch error. Returns one line per check; `ok` false on any mismatch.
 */
export async function recurrentStateChecks(ctx: WebGpuContext, log: (line: string) => void = () => {}): Promise<{ ok: boolean; values: number; mismatches: number }> {
  let values = 0;
  let mismatches = 0;
  const rng = new Prng(5);
  const vals = (n: number, kind: 'random' | 'tiny'): Float32Array => Float32Array.from({ length: n }, () => (kind === 'tiny' ? (rng.int(2) ? 1 : -1) * 2 ** (-67 + rng.int(7)) * (1 + rng.uniform()) : Math.fround(rng.uniformRange(-2, 2))));
  for (const type of ['rnn', 'lstm', 'gru']) {
    for (const kind of ['random', 'tiny'] as const) {
      const name = `${type} initial state (${kind})`;
      let bad = 0;
      let n = 0;
      let first = '';
      const cmp = (a: Tensor | null | undefined, b: Tensor | null | undefined, what: string): void => {
        if (!a || !b) {
          if (a || b) {
            bad++;
            first ||= `${what}: present on one side only`;
          }
          return;
        }
        const r = compareBits(a.data as Float32Array, b.data as Float32Array);
        n += a.size;
        bad += r.mismatches;
        if (r.first) first ||= `${what}: ${r.first}`;
      };
      const net = Network.fromJSON({ input_shape: [3, 4], layers: [rec(type, 4, 5), dense(5, 3)] }, { seed: 3 });
      const w = new Map<string, Tensor>();
      for (const { name: pn, param } of net.parameters()) w.set(pn, new Tensor(param.value.shape, vals(param.value.size, kind === 'tiny' && pn.includes('weight_ih') ? 'tiny' : 'random')));
      net.setWeights(w);
      const layer = net.nodes[0].layer as unknown as RecurrentLayer;
      try {
        await net.useBackend('webgpu', { context: ctx });
        for (const batch of [2, 3]) {
          const h0 = new Tensor([batch, 5], vals(batch * 5, kind));
          const c0 = type === 'lstm' ? new Tensor([batch, 5], vals(batch * 5, kind)) : null;
          layer.setInitialState(h0, c0);
          const x = new Tensor([batch, 3, 4], vals(batch * 12, kind));
          const yc = net.forward(x);
          const fc = layer.finalState();
          const yg = await net.forwardAsync(x);
          const fg = layer.finalState();
          cmp(yc, yg, `batch ${batch} output`);
          cmp(fc?.h, fg?.h, `batch ${batch} finalState h`);
          cmp(fc?.c, fg?.c, `batch ${batch} finalState c`);
          if (fg === fc) {
            bad++;
            first ||= 'forwardAsync did not record finalState()';
          }
          if (typeof (net as { gradAsync?: unknown }).gradAsync === 'function') {
            const dy = new Tensor(yc.shape, vals(yc.size, 'random'));
            net.zeroGrad();
            const dxc = net.backward(net.forwardTape(x, { training: false, seed: 0 }), dy);
            const gc = layer.initialStateGrad();
            const pc = net.parameters().map(({ param }) => param.grad.clone());
            net.zeroGrad();
            const dxg = await net.gradAsync(x, dy);
            const gg = layer.initialStateGrad();
            cmp(dxc, dxg, `batch ${batch} dL/dx`);
            cmp(gc?.h, gg?.h, `batch ${batch} dL/dh0`);
            cmp(gc?.c, gg?.c, `batch ${batch} dL/dc0`);
            if (gg === gc) {
              bad++;
              first ||= 'gradAsync did not record initialStateGrad()';
            }
            net.parameters().forEach(({ name: pn, param }, j) => cmp(pc[j], param.grad, `batch ${batch} ${pn}.grad`));
          }
        }
        // only h0 for lstm (c0 zeros), then cleared state: zeros again
        if (type === 'lstm') {
          layer.setInitialState(new Tensor([2, 5], vals(10, kind)));
          const x = new Tensor([2, 3, 4], vals(24, kind));
          cmp(net.forward(x), await net.forwardAsync(x), 'lstm h0 only');
        }
        layer.setInitialState(null);
        const x = new Tensor([2, 3, 4], vals(24, kind));
        cmp(net.forward(x), await net.forwardAsync(x), 'state cleared');
        // a state set for another batch: the CPU's error
        layer.setInitialState(new Tensor([4, 5], vals(20, kind)));
        let cpuErr = '';
        let gpuErr = '';
        try {
          net.forward(x);
        } catch (e) {
          cpuErr = (e as Error).message;
        }
        try {
          await net.forwardAsync(x);
        } catch (e) {
          gpuErr = (e as Error).message;
        }
        if (!cpuErr || cpuErr !== gpuErr) {
          bad++;
          first ||= `batch mismatch error: cpu '${cpuErr}' gpu '${gpuErr}'`;
        }
        layer.setInitialState(null);
      } catch (e) {
        bad++;
        first ||= `error: ${(e as Error).message}`;
      } finally {
        net.releaseBackend();
      }
      values += n;
      mismatches += bad;
      log(`${bad === 0 ? 'ok  ' : 'FAIL'} ${name} (${n} values)${first ? ` ${first}` : ''}`);
    }
  }
  return { ok: mismatches === 0, values, mismatches };
}
