import { describe, expect, it } from 'vitest';
import { parseNetworkConfig } from './config.ts';
import { HeddleError } from './errors.ts';
import { Network } from './network.ts';
import { Prng } from './prng.ts';
import { Tensor } from './tensor.ts';

const dense = (i: number, o: number, activation = 'linear', extra: object = {}) => ({ type: 'dense', input_height: i, output_height: o, activation, ...extra });

function expectError(f: () => unknown, code: string, ...parts: (string | RegExp)[]): HeddleError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(HeddleError);
    const he = e as HeddleError;
    expect(he.code).toBe(code);
    for (const p of parts) expect(he.message).toMatch(p);
    return he;
  }
  throw new Error('expected an error');
}

function randomInput(shape: number[], seed: number): Tensor {
  const r = new Prng(seed);
  const t = Tensor.zeros(shape);
  for (let i = 0; i < t.size; i++) t.data[i] = r.uniformRange(-1, 1);
  return t;
}

describe('config: grid and volumetric forms', () => {
  it('fills grid positions in reading order (row, col, layer-in-cell)', () => {
    const c = parseNetworkConfig({ grid_rows: 2, grid_cols: 2, layers_per_cell: 2, layers: Array.from({ length: 5 }, () => dense(3, 3)) });
    expect(c.nodes.map((n) => [n.pos.y, n.pos.x, n.pos.l])).toEqual([[0, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 1], [1, 0, 0]]);
  });

  it('orders volumetric layers by z, y, x, l whatever the JSON order', () => {
    const c = parseNetworkConfig({
      depth: 2, rows: 1, cols: 2, layers_per_cell: 1,
      layers: [
        { z: 1, y: 0, x: 0, l: 0, ...dense(4, 2) },
        { z: 0, y: 0, x: 1, l: 0, ...dense(3, 4) },
        { z: 0, y: 0, x: 0, l: 0, ...dense(5, 3) },
      ],
    });
    expect(c.nodes.map((n) => n.jsonIndex)).toEqual([2, 1, 0]);
    const net = new Network(c);
    expect(net.inputShape).toEqual([5]);
    expect(net.outputShape).toEqual([2]);
    expect(net.parameters().map((p) => p.name)).toEqual(['layers.0.weight', 'layers.0.bias', 'layers.1.weight', 'layers.1.bias', 'layers.2.weight', 'layers.2.bias']);
    expect(net.parameters()[0].param.value.shape).toEqual([3, 5]);
  });

  it('accepts Loom aliases and the canonical form round-trips', () => {
    const net = Network.fromJSON({ id: 'x', grid_rows: 1, grid_cols: 1, layers_per_cell: 1, layers: [{ type: 'Dense', input_size: 3, output_size: 2, activation: 'swish' }] });
    expect(net.nodes[0].layer.config).toMatchObject({ type: 'dense', input_height: 3, output_height: 2, activation: 'silu' });
    const again = Network.fromJSON(net.configJSON());
    expect(again.configJSON()).toEqual(net.configJSON());
  });
});

describe('config: errors name the layer and the field', () => {
  it('invalid JSON', () => expectError(() => parseNetworkConfig('{"layers": [}'), 'CONFIG_INVALID', /invalid JSON/));
  it('unknown layer type', () => expectError(() => Network.fromJSON({ layers: [dense(2, 2), { type: 'dense3d' }] }), 'CONFIG_INVALID', /layers\[1\]/, /unknown layer type 'dense3d'/));
  it('unknown activation', () => expectError(() => Network.fromJSON({ layers: [dense(2, 2, 'relux')] }), 'CONFIG_INVALID', /layers\[0\] \(z0 y0 x0 l0, dense\)\.activation/, /relux/));
  it('missing field', () => expectError(() => Network.fromJSON({ layers: [{ type: 'dense', input_height: 2 }] }), 'CONFIG_INVALID', /\.output_height/));
  it('wrong field type', () => expectError(() => Network.fromJSON({ layers: [dense(2, 2, 'linear', { output_height: '2' })] }), 'CONFIG_INVALID', /output_height/, /integer/));
  it('zero-sized dimension', () => expectError(() => Network.fromJSON({ layers: [dense(2, 0)] }), 'CONFIG_INVALID', /output_height/, />= 1/));
  it('shapes that do not chain', () =>
    expectError(() => Network.fromJSON({ layers: [dense(4, 3), dense(5, 2)] }), 'SHAPE_MISMATCH', /layers\[1\] \(z0 y0 x0 l1, dense\)\.input_height/, /\[3\]/));
  it('too many layers for the grid', () => expectError(() => Network.fromJSON({ grid_rows: 1, grid_cols: 1, layers_per_cell: 1, layers: [dense(2, 2), dense(2, 2)] }), 'CONFIG_INVALID', /do not fit/));
  it('duplicate position', () =>
    expectError(() => Network.fromJSON({ rows: 1, cols: 1, layers_per_cell: 2, layers: [{ z: 0, l: 0, ...dense(2, 2) }, { z: 0, l: 0, ...dense(2, 2) }] }), 'CONFIG_INVALID', /already taken/));
  it('position out of range', () => expectError(() => Network.fromJSON({ rows: 1, cols: 1, layers_per_cell: 1, layers: [{ y: 3, ...dense(2, 2) }] }), 'CONFIG_INVALID', /layers\[0\]\.y/));
  it('mixed positional and non-positional layers', () => expectError(() => Network.fromJSON({ layers_per_cell: 2, layers: [{ l: 0, ...dense(2, 2) }, dense(2, 2)] }), 'CONFIG_INVALID', /all carry grid positions/));
  it('remote link to a later position', () =>
    expectError(() => Network.fromJSON({ layers_per_cell: 3, layers: [dense(2, 2), dense(2, 2, 'linear', { remote_link: { l: 2 } }), dense(2, 2)] }), 'CONFIG_INVALID', /layers\[1\].*remote_link/, /earlier/));
  it('remote link to a missing position', () =>
    expectError(() => Network.fromJSON({ layers_per_cell: 3, layers: [dense(2, 2), dense(2, 2, 'linear', { is_remote_link: true, target_l: 2 })] }), 'CONFIG_INVALID', /no layer/));
  it('disabled layer that changes shape', () => expectError(() => Network.fromJSON({ layers: [dense(2, 3, 'linear', { disabled: true })] }), 'SHAPE_MISMATCH', /disabled/));
  it('no layers', () => expectError(() => Network.fromJSON({ layers: [] }), 'CONFIG_INVALID', /at least one layer/));
  it('bad input tensor shape and non-finite inputs', () => {
    const net = Network.fromJSON({ layers: [dense(3, 2)] });
    expectError(() => net.forward(Tensor.zeros([2, 4])), 'SHAPE_MISMATCH', /\[batch, 3\]/);
    const x = Tensor.zeros([2, 3]);
    x.data[4] = NaN;
    expectError(() => net.forward(x), 'INPUT_INVALID', /element 4 is NaN/);
    x.data[4] = Infinity;
    expectError(() => net.forward(x), 'INPUT_INVALID', /element 4 is Infinity/);
  });
});

describe('network execution', () => {
  it('disabled layers pass through and keep their parameters', () => {
    const a = Network.fromJSON({ layers: [dense(3, 3, 'tanh'), dense(3, 3, 'tanh', { disabled: true }), dense(3, 2)] }, { seed: 3 });
    const b = Network.fromJSON({ layers: [dense(3, 3, 'tanh'), dense(3, 2)] }, { seed: 3 });
    b.setWeights(new Map([['layers.0.weight', a.getWeights().get('layers.0.weight')!], ['layers.0.bias', a.getWeights().get('layers.0.bias')!], ['layers.1.weight', a.getWeights().get('layers.2.weight')!], ['layers.1.bias', a.getWeights().get('layers.2.bias')!]]));
    const x = randomInput([4, 3], 1);
    expect(Array.from(a.forward(x).data)).toEqual(Array.from(b.forward(x).data));
    expect(a.parameters().map((p) => p.name)).toContain('layers.1.weight');
  });

  it('a remote link feeds a later layer from an earlier output', () => {
    const net = Network.fromJSON({ layers_per_cell: 3, layers: [dense(3, 4, 'tanh'), dense(4, 5, 'tanh'), dense(4, 2, 'linear', { remote_link: { l: 0 } })] }, { seed: 1 });
    expect(net.nodes[2].source).toBe(0);
    const x = randomInput([2, 3], 2);
    const tape = net.forwardTape(x, { training: false, seed: 0 });
    expect(tape.inputs[2]).toBe(tape.outputs[0]);
  });

  it('same seed gives the same weights and outputs; another seed does not', () => {
    const cfg = { layers: [dense(5, 7, 'tanh'), dense(7, 3)] };
    const x = randomInput([3, 5], 4);
    const y1 = Network.fromJSON(cfg, { seed: 11 }).forward(x);
    const y2 = Network.fromJSON(cfg, { seed: 11 }).forward(x);
    const y3 = Network.fromJSON(cfg, { seed: 12 }).forward(x);
    expect(Array.from(y1.data)).toEqual(Array.from(y2.data));
    expect(Array.from(y1.data)).not.toEqual(Array.from(y3.data));
  });

  it('gradients through remote links and a dead branch match finite differences', () => {
    // l1's output is unused (l2 reads l0 via the remote link), so l1 gets zero gradients;
    // l0's output feeds l2, l3 reads l2.
    const cfg = { layers_per_cell: 4, layers: [dense(3, 4, 'tanh'), dense(4, 4, 'tanh'), dense(4, 3, 'tanh', { remote_link: { l: 0 } }), dense(3, 2)] };
    const net = Network.fromJSON(cfg, { seed: 5 });
    const x = randomInput([2, 3], 6);
    const r = randomInput([2, 2], 7);
    const loss = (n: Network, xi: Tensor): number => n.forward(xi).data.reduce((s, v, i) => s + v * r.data[i], 0);
    net.zeroGrad();
    const dx = net.backward(net.forwardTape(x, { training: false, seed: 0 }), r);
    const h = 1e-2;
    for (let i = 0; i < x.size; i++) {
      const xp = x.clone(); xp.data[i] += h;
      const xm = x.clone(); xm.data[i] -= h;
      const fd = (loss(net, xp) - loss(net, xm)) / (2 * h);
      expect(Math.abs(fd - dx.data[i])).toBeLessThan(2e-3 + 1e-2 * Math.abs(fd));
    }
    for (const { name, param } of net.parameters()) {
      for (let i = 0; i < param.value.size; i++) {
        const old = param.value.data[i];
        param.value.data[i] = old + h; const lp = loss(net, x);
        param.value.data[i] = old - h; const lm = loss(net, x);
        param.value.data[i] = old;
        const fd = (lp - lm) / (2 * h);
        expect(Math.abs(fd - param.grad.data[i]), `${name}[${i}]`).toBeLessThan(2e-3 + 1e-2 * Math.abs(fd));
      }
      if (name.startsWith('layers.1.')) expect(param.grad.data.every((v) => v === 0)).toBe(true);
    }
  });

  it('flushes subnormal inputs and weights at entry (a flushing GPU reads them as zero)', () => {
    const net = Network.fromJSON({ layers: [dense(2, 1, 'linear', { bias: false })] });
    const sub = Math.fround(1e-39);
    expect(sub).not.toBe(0);
    net.setWeights(new Map([['layers.0.weight', Tensor.from([1, 2], [1e30, sub])]]));
    expect(net.getWeights().get('layers.0.weight')!.data[1]).toBe(0);
    // Unflushed, 1e-39 * 1e30 would be 1e-9: a normal number.
    const y = net.forward(Tensor.from([1, 2], [sub, 1e20]));
    expect(y.data[0]).toBe(0);
  });

  it('setWeights is all-or-nothing', () => {
    const net = Network.fromJSON({ layers: [dense(2, 2)] }, { seed: 1 });
    const before = net.getWeights();
    expectError(() => net.setWeights(new Map([['layers.0.weight', Tensor.zeros([2, 2])], ['layers.0.bias', Tensor.zeros([3])]])), 'WEIGHTS_INVALID', /layers\.0\.bias/, /\[3\]/);
    expectError(() => net.setWeights(new Map([['layers.9.weight', Tensor.zeros([2, 2])]])), 'WEIGHTS_INVALID', /layers\.9\.weight/);
    expectError(() => net.setWeights(new Map([['layers.0.weight', Tensor.zeros([2, 2])]]), { complete: true }), 'WEIGHTS_INVALID', /missing.*layers\.0\.bias/);
    expect(Array.from(net.getWeights().get('layers.0.weight')!.data)).toEqual(Array.from(before.get('layers.0.weight')!.data));
  });

  it('describe() reports positions, parameter counts and shapes', () => {
    const bp = Network.fromJSON({ id: 'm', layers: [dense(4, 3, 'relu'), dense(3, 2)] }).describe();
    expect(bp.total_parameters).toBe(4 * 3 + 3 + 3 * 2 + 2);
    expect(bp.layers[0]).toMatchObject({ name: 'layers.0', type: 'dense', activation: 'relu', parameters: 15, input_shape: [4], output_shape: [3], position: { z: 0, y: 0, x: 0, l: 0 } });
  });

  it('dense applies to the last dim or flattens the sample', () => {
    const last = Network.fromJSON({ input_shape: [5, 4], layers: [dense(4, 2)] });
    expect(last.outputShape).toEqual([5, 2]);
    const flat = Network.fromJSON({ input_shape: [2, 3], layers: [dense(6, 2)] });
    expect(flat.outputShape).toEqual([2]);
  });
});
