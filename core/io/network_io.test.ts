import { describe, expect, it } from 'vitest';
import { Network } from '../network.ts';
import { Prng } from '../prng.ts';
import { Tensor, type TensorData } from '../tensor.ts';
import { base64Encode } from './base64.ts';
import {
  loadNetworkJSON,
  loadNetworkSafetensors,
  loadWeightsJSON,
  loadWeightsSafetensors,
  saveNetworkJSON,
  saveNetworkSafetensors,
} from './network_io.ts';
import { decodeSafetensors, encodeSafetensors } from './safetensors.ts';
import { expectError, toHex } from './test_util.ts';

const CONFIG = {
  id: 'mlp',
  layers: [
    { type: 'dense', input_height: 5, output_height: 7, activation: 'relu' },
    { type: 'dense', input_height: 7, output_height: 4, activation: 'tanh' },
    { type: 'dense', input_height: 4, output_height: 3, bias: false },
  ],
};

/** Special f32 values: signed zeros, subnormals, the extremes, values near 1. */
const SPECIAL = [-0, 0, 1e-45, -1e-45, 1.4e-40, -1.1754942e-38, 1.1754944e-38, 3.4028235e38, -3.4028235e38, 1e30, -7.5e-20, 1.0000001, 0.99999994];

/** A dense network whose weights are random, with the special values written over the first entries. */
function makeNet(seed = 3): Network {
  const net = Network.fromJSON(CONFIG, { seed });
  const rng = new Prng(seed + 100);
  const w = net.getWeights();
  let s = 0;
  for (const t of w.values()) {
    for (let k = 0; k < t.size; k++) {
      // Random exponents over most of the f32 range, random signs.
      const u = rng.uniform();
      const e = Math.floor(rng.uniform() * 200) - 100;
      t.data[k] = (rng.uniform() < 0.5 ? -1 : 1) * u * 2 ** e;
      if (s < SPECIAL.length && k % 3 === 0) t.data[k] = SPECIAL[s++];
    }
  }
  net.setWeights(w);
  return net;
}

function bits(net: Network): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, t] of net.getWeights()) out[name] = toHex(new Uint8Array(t.data.buffer));
  return out;
}

function outputBits(net: Network): string {
  const x = Tensor.from([2, 5], [0.1, -0.2, 0.3, 0.4, -0.5, 1, 2, -3, 0.25, 0]);
  return toHex(new Uint8Array(net.forward(x).data.buffer));
}

function withoutTensor(t: Map<string, Tensor<TensorData>>, name: string): Map<string, Tensor<TensorData>> {
  const m = new Map(t);
  m.delete(name);
  return m;
}

const SRC = 'net.safetensors';

describe('weight naming contract', () => {
  it('dense layers: layers.{i}.weight [out, in], layers.{i}.bias [out], in execution order', () => {
    const net = Network.fromJSON(CONFIG);
    expect(net.parameters().map((p) => [p.name, p.param.value.shape])).toEqual([
      ['layers.0.weight', [7, 5]],
      ['layers.0.bias', [7]],
      ['layers.1.weight', [4, 7]],
      ['layers.1.bias', [4]],
      ['layers.2.weight', [3, 4]],
    ]);
  });
});

describe('network safetensors files', () => {
  it('round trip is bit-exact and byte-stable', () => {
    const net = makeNet();
    expect(Object.values(bits(net)).join('')).toContain('00000080'); // -0 is really in there
    const bytes = saveNetworkSafetensors(net);
    const back = loadNetworkSafetensors(bytes, { source: SRC });
    expect(bits(back)).toEqual(bits(net));
    expect(back.configJSON()).toEqual(net.configJSON());
    expect(outputBits(back)).toBe(outputBits(net));
    expect(toHex(saveNetworkSafetensors(back))).toBe(toHex(bytes));
  });

  it('stores the canonical config, the format version and format=pt in __metadata__', () => {
    const net = makeNet();
    const { metadata, tensors } = decodeSafetensors(saveNetworkSafetensors(net));
    expect(metadata).toEqual({
      format: 'pt',
      'heddle.config': JSON.stringify(net.configJSON()),
      'heddle.format_version': '1',
    });
    expect([...tensors.keys()]).toEqual(['layers.0.bias', 'layers.0.weight', 'layers.1.bias', 'layers.1.weight', 'layers.2.weight']);
  });

  it('a Loom grid-form config is stored in canonical form and loads to the same network', () => {
    const grid = { grid_rows: 1, grid_cols: 2, layers_per_cell: 2, input_shape: [5], layers: CONFIG.layers.concat([{ type: 'dense', input_height: 3, output_height: 3, activation: 'sigmoid' }]) };
    const net = Network.fromJSON(grid, { seed: 9 });
    const back = loadNetworkSafetensors(saveNetworkSafetensors(net));
    expect(back.configJSON()).toEqual(net.configJSON());
    expect(back.configJSON()).toHaveProperty('cols', 2);
    expect(bits(back)).toEqual(bits(net));
  });

  it('loads a plain (non-Heddle) safetensors file when the config is given', () => {
    const net = makeNet();
    const plain = encodeSafetensors(net.getWeights());
    expectError(() => loadNetworkSafetensors(plain, { source: SRC }), 'FORMAT_INVALID', `${SRC}: __metadata__`, "no 'heddle.config'", 'opts.config');
    const back = loadNetworkSafetensors(plain, { source: SRC, config: CONFIG });
    expect(bits(back)).toEqual(bits(net));
    // Config as JSON text, too; and opts.config wins over the stored one.
    const other = { layers: [{ type: 'dense', input_height: 5, output_height: 7 }, { type: 'dense', input_height: 7, output_height: 4 }, { type: 'dense', input_height: 4, output_height: 3, bias: false }] };
    const b2 = loadNetworkSafetensors(saveNetworkSafetensors(net), { config: JSON.stringify(other) });
    expect(bits(b2)).toEqual(bits(net));
    expect((b2.configJSON().layers as { activation: string }[])[0].activation).toBe('linear');
  });

  it('missing, extra, wrong-shaped, wrong-dtype and non-finite tensors are WEIGHTS_INVALID naming file and tensor', () => {
    const net = makeNet();
    const w = net.getWeights() as Map<string, Tensor<TensorData>>;
    const meta = decodeSafetensors(saveNetworkSafetensors(net)).metadata;
    const file = (m: Map<string, Tensor<TensorData>>) => encodeSafetensors(m, meta);
    expectError(() => loadNetworkSafetensors(file(withoutTensor(w, 'layers.1.bias')), { source: SRC }), 'WEIGHTS_INVALID', SRC, 'missing 1 tensor(s): layers.1.bias');
    const extra = new Map(w).set('layers.2.bias', Tensor.zeros([3]));
    expectError(() => loadNetworkSafetensors(file(extra), { source: SRC }), 'WEIGHTS_INVALID', SRC, "'layers.2.bias' does not belong");
    const shape = new Map(w).set('layers.0.weight', Tensor.zeros([5, 7]));
    expectError(() => loadNetworkSafetensors(file(shape), { source: SRC }), 'WEIGHTS_INVALID', SRC, "'layers.0.weight' has shape [5, 7]", '[7, 5]');
    const dtype = new Map(w).set('layers.1.bias', new Tensor([4], new Int32Array(4)));
    expectError(() => loadNetworkSafetensors(file(dtype), { source: SRC }), 'WEIGHTS_INVALID', SRC, "'layers.1.bias' has dtype i32");
    for (const bad of [NaN, Infinity, -Infinity]) {
      const t = w.get('layers.1.weight')!.clone();
      t.data[5] = bad as never;
      const nan = new Map(w).set('layers.1.weight', t);
      expectError(() => loadNetworkSafetensors(file(nan), { source: SRC }), 'WEIGHTS_INVALID', `${SRC}: tensor 'layers.1.weight'`, `element 5 is ${bad}`);
    }
  });

  it('format version: newer is UNSUPPORTED, malformed or missing is FORMAT_INVALID', () => {
    const net = makeNet();
    const { tensors, metadata } = decodeSafetensors(saveNetworkSafetensors(net));
    const withMeta = (m: Record<string, string>) => encodeSafetensors(tensors, m);
    expectError(() => loadNetworkSafetensors(withMeta({ ...metadata, 'heddle.format_version': '2' }), { source: SRC }), 'UNSUPPORTED', SRC, 'heddle.format_version', 'version 2', 'newer');
    expectError(() => loadNetworkSafetensors(withMeta({ ...metadata, 'heddle.format_version': 'one' }), { source: SRC }), 'FORMAT_INVALID', SRC, 'heddle.format_version', '"one"');
    const noVersion = { ...metadata };
    delete noVersion['heddle.format_version'];
    expectError(() => loadNetworkSafetensors(withMeta(noVersion), { source: SRC }), 'FORMAT_INVALID', `${SRC}: __metadata__`, "no 'heddle.format_version'");
  });

  it('a corrupt or invalid stored config is reported inside the file', () => {
    const net = makeNet();
    const { tensors, metadata } = decodeSafetensors(saveNetworkSafetensors(net));
    const withConfig = (c: string) => encodeSafetensors(tensors, { ...metadata, 'heddle.config': c });
    expectError(() => loadNetworkSafetensors(withConfig('{"layers": ['), { source: SRC }), 'FORMAT_INVALID', `${SRC}: __metadata__ heddle.config`, 'invalid JSON');
    const cfg = JSON.parse(metadata['heddle.config']);
    cfg.layers[1].output_height = 0;
    expectError(() => loadNetworkSafetensors(withConfig(JSON.stringify(cfg)), { source: SRC }), 'CONFIG_INVALID', `${SRC}: heddle.config.layers[1]`, 'output_height', '>= 1');
    cfg.layers[1].output_height = 4;
    cfg.layers[1].input_height = 6;
    expectError(() => loadNetworkSafetensors(withConfig(JSON.stringify(cfg)), { source: SRC }), 'SHAPE_MISMATCH', `${SRC}: heddle.config.layers[1]`);
  });

  it('corrupt files surface the safetensors error with the source', () => {
    const bytes = saveNetworkSafetensors(makeNet());
    expectError(() => loadNetworkSafetensors(bytes.subarray(0, bytes.length - 1), { source: SRC }), 'FORMAT_INVALID', SRC, 'run past the end');
    expectError(() => loadNetworkSafetensors(bytes, { source: SRC, maxHeaderBytes: 64 }), 'FORMAT_INVALID', SRC, 'exceeds the limit of 64');
  });

  it('loadWeightsSafetensors applies all weights, or none on any error', () => {
    const src = makeNet(3);
    const dst = makeNet(4);
    const before = bits(dst);
    expect(before).not.toEqual(bits(src));
    const w = src.getWeights() as Map<string, Tensor<TensorData>>;
    // Every tensor but the last one is fine: nothing may change.
    const badLast = new Map(w).set('layers.2.weight', Tensor.zeros([4, 3]));
    expectError(() => loadWeightsSafetensors(dst, encodeSafetensors(badLast), { source: SRC }), 'WEIGHTS_INVALID', SRC, 'layers.2.weight');
    expect(bits(dst)).toEqual(before);
    const nan = w.get('layers.2.weight')!.clone();
    nan.data[11] = NaN;
    expectError(() => loadWeightsSafetensors(dst, encodeSafetensors(new Map(w).set('layers.2.weight', nan)), { source: SRC }), 'WEIGHTS_INVALID', 'element 11');
    expect(bits(dst)).toEqual(before);
    expectError(() => loadWeightsSafetensors(dst, encodeSafetensors(withoutTensor(w, 'layers.0.bias')), { source: SRC }), 'WEIGHTS_INVALID', 'missing', 'layers.0.bias');
    expect(bits(dst)).toEqual(before);
    expectError(() => loadWeightsSafetensors(dst, encodeSafetensors(w, { 'heddle.format_version': '7' }), { source: SRC }), 'UNSUPPORTED', SRC);
    expect(bits(dst)).toEqual(before);
    // complete: false allows a subset.
    loadWeightsSafetensors(dst, encodeSafetensors(new Map([['layers.0.bias', w.get('layers.0.bias')!]])), { complete: false });
    expect(bits(dst)['layers.0.bias']).toBe(bits(src)['layers.0.bias']);
    expect(bits(dst)['layers.0.weight']).toBe(before['layers.0.weight']);
    loadWeightsSafetensors(dst, saveNetworkSafetensors(src));
    expect(bits(dst)).toEqual(bits(src));
    expect(outputBits(dst)).toBe(outputBits(src));
  });
});

describe('network JSON files', () => {
  const J = 'net.json';

  it('round trip is bit-exact and text-stable, from text, bytes or a parsed object', () => {
    const net = makeNet();
    const text = saveNetworkJSON(net);
    for (const input of [text, new TextEncoder().encode(text), JSON.parse(text)]) {
      const back = loadNetworkJSON(input, { source: J });
      expect(bits(back)).toEqual(bits(net));
      expect(outputBits(back)).toBe(outputBits(net));
      expect(saveNetworkJSON(back)).toBe(text);
    }
  });

  it('has the documented layout and key order', () => {
    const net = Network.fromJSON({ layers: [{ type: 'dense', input_height: 1, output_height: 2 }] });
    net.setWeights(new Map([['layers.0.weight', Tensor.from([2, 1], [1, -0])], ['layers.0.bias', Tensor.from([2], [0.5, -2])]]));
    const text = saveNetworkJSON(net);
    const cfg = JSON.stringify(net.configJSON());
    expect(text).toBe(
      `{"format":"heddle-network","version":1,"config":${cfg},"weights":{` +
        `"layers.0.bias":{"dtype":"F32","shape":[2],"data":"AAAAPwAAAMA="},` +
        `"layers.0.weight":{"dtype":"F32","shape":[2,1],"data":"AACAPwAAAIA="}}}`,
    );
  });

  it('the two formats hold the same network', () => {
    const net = makeNet();
    const a = loadNetworkJSON(saveNetworkJSON(net));
    const b = loadNetworkSafetensors(saveNetworkSafetensors(net));
    expect(bits(a)).toEqual(bits(b));
    expect(toHex(saveNetworkSafetensors(a))).toBe(toHex(saveNetworkSafetensors(net)));
  });

  it('rejects documents that are not Heddle network files', () => {
    expectError(() => loadNetworkJSON('{"format": "heddle-network",', { source: J }), 'FORMAT_INVALID', J, 'invalid JSON');
    expectError(() => loadNetworkJSON(new Uint8Array([0x7b, 0xff, 0x7d]), { source: J }), 'FORMAT_INVALID', J, 'UTF-8');
    expectError(() => loadNetworkJSON('[]', { source: J }), 'FORMAT_INVALID', J, 'expected a JSON object');
    expectError(() => loadNetworkJSON(JSON.stringify(CONFIG), { source: J }), 'FORMAT_INVALID', `${J}: format`, 'missing', 'bare network config');
    expectError(() => loadNetworkJSON('{"format":"loom","version":1}', { source: J }), 'FORMAT_INVALID', `${J}: format`, '"loom"');
  });

  function doc(): Record<string, unknown> & { weights: Record<string, Record<string, unknown>> } {
    return JSON.parse(saveNetworkJSON(makeNet()));
  }

  it('checks version, top-level keys, config and weights', () => {
    const d = doc();
    expectError(() => loadNetworkJSON({ ...d, version: 2 }, { source: J }), 'UNSUPPORTED', `${J}: version`, 'newer');
    expectError(() => loadNetworkJSON({ ...d, version: '1' }, { source: J }), 'FORMAT_INVALID', `${J}: version`, 'integer');
    expectError(() => loadNetworkJSON({ ...d, version: 0 }, { source: J }), 'FORMAT_INVALID', `${J}: version`);
    expectError(() => loadNetworkJSON({ ...d, extra: true }, { source: J }), 'FORMAT_INVALID', J, 'unknown key "extra"');
    expectError(() => loadNetworkJSON({ ...d, config: 'x' }, { source: J }), 'FORMAT_INVALID', `${J}: config`);
    expectError(() => loadNetworkJSON({ ...d, weights: undefined }, { source: J }), 'FORMAT_INVALID', `${J}: weights`);
    expectError(() => loadNetworkJSON({ ...d, weights: [] }, { source: J }), 'FORMAT_INVALID', `${J}: weights`);
    expectError(() => loadNetworkJSON({ ...d, weights: {} }, { source: J }), 'WEIGHTS_INVALID', J, 'missing 5 tensor(s)');
    const badCfg = structuredClone(d) as unknown as { config: { layers: { output_height: number }[] } };
    badCfg.config.layers[2].output_height = -1;
    expectError(() => loadNetworkJSON(badCfg, { source: J }), 'CONFIG_INVALID', `${J}: config.layers[2]`, 'output_height');
  });

  it('checks every tensor entry and names it', () => {
    const T = `${J}: tensor 'layers.1.bias'`;
    const entry = (patch: Record<string, unknown>) => {
      const d = doc();
      d.weights['layers.1.bias'] = { ...d.weights['layers.1.bias'], ...patch };
      return d;
    };
    expectError(() => loadNetworkJSON(entry({ extra: 1 }), { source: J }), 'FORMAT_INVALID', T, 'unknown key "extra"');
    expectError(() => loadNetworkJSON(entry({ dtype: undefined }), { source: J }), 'FORMAT_INVALID', T, 'dtype');
    expectError(() => loadNetworkJSON(entry({ dtype: 'F16' }), { source: J }), 'UNSUPPORTED', T, 'F16');
    expectError(() => loadNetworkJSON(entry({ dtype: 'float' }), { source: J }), 'FORMAT_INVALID', T, 'unknown dtype "float"');
    expectError(() => loadNetworkJSON(entry({ shape: [4.5] }), { source: J }), 'FORMAT_INVALID', T, 'shape');
    expectError(() => loadNetworkJSON(entry({ shape: [2] }), { source: J }), 'FORMAT_INVALID', T, 'holds 16 bytes, but F32 shape [2] needs 8');
    expectError(() => loadNetworkJSON(entry({ data: 5 }), { source: J }), 'FORMAT_INVALID', T, 'base64 string');
    expectError(() => loadNetworkJSON(entry({ data: 'AAAA*AAA' }), { source: J }), 'FORMAT_INVALID', `${T}.data`, 'invalid base64 character "*" at position 4');
    expectError(() => loadNetworkJSON(entry({ data: 'AAAAA' }), { source: J }), 'FORMAT_INVALID', `${T}.data`, 'multiple of 4');
    expectError(() => loadNetworkJSON(entry({ data: 'AAAAAAB=' }), { source: J }), 'FORMAT_INVALID', `${T}.data`, 'non-zero unused bits');
    expectError(() => loadNetworkJSON(entry({ dtype: 'I32' }), { source: J }), 'WEIGHTS_INVALID', J, "'layers.1.bias' has dtype i32");
    const nan = new Float32Array([1, 2, NaN, 4]);
    expectError(() => loadNetworkJSON(entry({ data: base64Encode(new Uint8Array(nan.buffer)) }), { source: J }), 'WEIGHTS_INVALID', T, 'element 2 is NaN');
  });

  it('rejects duplicate weight names in the text', () => {
    const text = saveNetworkJSON(makeNet());
    const i = text.indexOf('"layers.0.weight"');
    const j = text.indexOf('}', i) + 1;
    const dup = text.slice(0, j) + ',' + text.slice(i, j) + text.slice(j);
    expectError(() => loadNetworkJSON(dup, { source: J }), 'FORMAT_INVALID', J, 'duplicate key "layers.0.weight"');
  });

  it('loadWeightsJSON applies all or nothing', () => {
    const src = makeNet(3);
    const dst = makeNet(4);
    const before = bits(dst);
    const d = JSON.parse(saveNetworkJSON(src));
    d.weights['layers.2.weight'].shape = [4, 3];
    expectError(() => loadWeightsJSON(dst, d, { source: J }), 'WEIGHTS_INVALID', J, "'layers.2.weight' has shape [4, 3]");
    expect(bits(dst)).toEqual(before);
    loadWeightsJSON(dst, saveNetworkJSON(src));
    expect(bits(dst)).toEqual(bits(src));
  });
});
