import { describe, expect, test } from 'vitest';
import { Network } from '../../core/network.ts';
import type { Backwarded, Layer, RunContext } from '../../core/layers/layer.ts';
import { Tensor } from '../../core/tensor.ts';
import { gradcheck, layerNet } from './gradcheck.ts';

const dense = { input_shape: [5], layers: [{ type: 'dense', input_height: 5, output_height: 4, activation: 'tanh' }, { type: 'dense', input_height: 4, output_height: 3 }] };

/** Wrap one node's backward so its result is altered. */
function sabotage(net: Network, node: number, alter: (r: Backwarded, layer: Layer) => Backwarded): void {
  const layer = net.nodes[node].layer as Layer & { backward: Layer['backward'] };
  const orig = layer.backward.bind(layer);
  layer.backward = (saved: unknown, dy: Tensor, ctx: RunContext) => alter(orig(saved, dy, ctx), layer);
}

describe('gradcheck harness', () => {
  test('passes a correct network and checks every coordinate it should', () => {
    const r = gradcheck(dense, { seed: 3, batch: 2 });
    expect(r.ok, r.report()).toBe(true);
    // input 2x5, weights 4x5 + 4, 3x4 + 3
    expect(r.checked).toBe(10 + 24 + 15);
    expect(r.worstRatio).toBeLessThan(1);
  });

  test('catches an input gradient that is 5% off', () => {
    const net = Network.fromJSON(dense, { seed: 3 });
    sabotage(net, 0, (r) => ({ dx: new Tensor(r.dx.shape, r.dx.data.map((v) => Math.fround(v * 1.05))) }));
    const r = gradcheck(net, { seed: 3 });
    expect(r.ok).toBe(false);
    expect(r.failures.every((f) => f.tensor === 'input')).toBe(true);
    expect(r.failures.length).toBeGreaterThan(0);
  });

  test('catches a parameter gradient that was overwritten instead of accumulated', () => {
    const net = Network.fromJSON(dense, { seed: 3 });
    sabotage(net, 1, (r, layer) => {
      layer.params[1].grad.data[0] = Math.fround(layer.params[1].grad.data[0] + 0.05);
      return r;
    });
    const r = gradcheck(net, { seed: 3 });
    expect(r.ok).toBe(false);
    expect(r.failures.map((f) => `${f.tensor}[${f.index}]`)).toEqual(['layers.1.bias[0]']);
  });

  test('catches a missing activation derivative', () => {
    const net = Network.fromJSON(layerNet({ type: 'layer_norm', norm_size: 6 }, [6]), { seed: 1 });
    sabotage(net, 0, (r) => ({ dx: r.dx.clone() })); // identity: still right
    expect(gradcheck(net, { seed: 1 }).ok).toBe(true);
    sabotage(net, 0, (r) => ({ dx: new Tensor(r.dx.shape, r.dx.data.map((v, i) => (i === 3 ? Math.fround(v + 1e-2) : v))) }));
    const bad = gradcheck(net, { seed: 1 });
    expect(bad.ok).toBe(false);
    expect(bad.failures.map((f) => f.index)).toEqual([3]);
  });

  test('kinks are recognised, not reported as failures', () => {
    // relu network with inputs spread over the kink region: some coordinates straddle a kink.
    const cfg = layerNet({ type: 'dense', input_height: 8, output_height: 8, activation: 'relu' }, [8]);
    const r = gradcheck(cfg, { seed: 4, batch: 4, h: 0.2 });
    expect(r.failures, r.report()).toEqual([]);
  });
});
