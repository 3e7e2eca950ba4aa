import { describe, expect, it } from 'vitest';
import { Tensor, type TensorData } from '../tensor.ts';
import { compareNames, decodeSafetensors, encodeSafetensors, readLittleEndian, writeLittleEndian } from './safetensors.ts';
import { expectError, hex, rawSafetensors, toHex } from './test_util.ts';

const SRC = 'model.safetensors';
const decode = (b: Uint8Array, maxHeaderBytes?: number) => decodeSafetensors(b, { source: SRC, ...(maxHeaderBytes ? { maxHeaderBytes } : {}) });

function f32Bits(t: Tensor<TensorData>): number[] {
  return Array.from(new Uint32Array((t.data as Float32Array).slice().buffer));
}

describe('safetensors: reference-writer compatibility', () => {
  /*
   * Captured output of the reference writer, safetensors 0.8.0 (Python, numpy):
   *   F1 = safetensors.numpy.save({"weight": np.array([[1, 2], [3, 4]], np.float32), "bias": np.array([0.5, -0.5], np.float32)})
   *   F2 = safetensors.numpy.save({"a": np.array([1.5], np.float32), "b": np.array([1, -2], np.int64)}, metadata={"format": "pt"})
   * The hand-built files below spell out the same bytes field by field.
   */
  const REF_F1 = '78000000000000007b2262696173223a7b226474797065223a22463332222c227368617065223a5b325d2c22646174615f6f666673657473223a5b302c385d7d2c22776569676874223a7b226474797065223a22463332222c227368617065223a5b322c325d2c22646174615f6f666673657473223a5b382c32345d7d7d20200000003f000000bf0000803f000000400000404000008040';
  const REF_F2 = '90000000000000007b225f5f6d657461646174615f5f223a7b22666f726d6174223a227074227d2c2262223a7b226474797065223a22493634222c227368617065223a5b325d2c22646174615f6f666673657473223a5b302c31365d7d2c2261223a7b226474797065223a22463332222c227368617065223a5b315d2c22646174615f6f666673657473223a5b31362c32305d7d7d2020200100000000000000feffffffffffffff0000c03f';
  /*
   * What safetensors' own writer (Rust crate >= 0.3, used by `safetensors.torch.save_file`
   * and `safetensors.numpy.save_file`) writes for
   *   save_file({"weight": [[1, 2], [3, 4]] (float32), "bias": [0.5, -0.5] (float32)})
   * Tensors sorted by (dtype alignment desc, name), compact JSON with fields in the order
   * dtype, shape, data_offsets, header padded with spaces to a multiple of 8:
   *   header = {"bias":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"weight":{"dtype":"F32","shape":[2,2],"data_offsets":[8,24]}}
   *   118 bytes + 2 spaces = 120 = 0x78
   */
  const header1 = '{"bias":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"weight":{"dtype":"F32","shape":[2,2],"data_offsets":[8,24]}}  ';
  const file1 = new Uint8Array([
    ...hex('7800000000000000'),
    ...new TextEncoder().encode(header1),
    ...hex('0000003f 000000bf'), // bias: 0.5, -0.5
    ...hex('0000803f 00000040 00004040 00008040'), // weight: 1, 2, 3, 4
  ]);

  it('decodes the bytes the reference writer produces', () => {
    expect(header1.length).toBe(120);
    expect(toHex(file1)).toBe(REF_F1);
    const { tensors, metadata } = decode(file1);
    expect(metadata).toEqual({});
    expect([...tensors.keys()]).toEqual(['bias', 'weight']);
    expect(tensors.get('weight')!.shape).toEqual([2, 2]);
    expect(Array.from(tensors.get('weight')!.data as Float32Array)).toEqual([1, 2, 3, 4]);
    expect(Array.from(tensors.get('bias')!.data as Float32Array)).toEqual([0.5, -0.5]);
    expect(tensors.get('bias')!.dtype).toBe('f32');
  });

  it('writes the same bytes as the reference writer for a single-dtype file', () => {
    const bytes = encodeSafetensors(
      new Map([
        ['weight', Tensor.from([2, 2], [1, 2, 3, 4])],
        ['bias', Tensor.from([2], [0.5, -0.5])],
      ]),
    );
    expect(toHex(bytes)).toBe(toHex(file1));
  });

  /*
   * Mixed dtypes with metadata, as written by the reference writer for
   *   save_file({"a": float32 [1.5], "b": int64 [1, -2]}, metadata={"format": "pt"})
   * The writer puts I64 before F32 (alignment first), so header and data order differ
   * from name order:
   *   {"__metadata__":{"format":"pt"},"b":{"dtype":"I64","shape":[2],"data_offsets":[0,16]},"a":{"dtype":"F32","shape":[1],"data_offsets":[16,20]}}
   *   141 bytes + 3 spaces = 144 = 0x90
   */
  it('decodes a mixed-dtype reference file whose data is not in name order', () => {
    const header = '{"__metadata__":{"format":"pt"},"b":{"dtype":"I64","shape":[2],"data_offsets":[0,16]},"a":{"dtype":"F32","shape":[1],"data_offsets":[16,20]}}   ';
    expect(header.length).toBe(144);
    const file = new Uint8Array([
      ...hex('9000000000000000'),
      ...new TextEncoder().encode(header),
      ...hex('0100000000000000 feffffffffffffff'), // b: 1, -2
      ...hex('0000c03f'), // a: 1.5
    ]);
    expect(toHex(file)).toBe(REF_F2);
    const { tensors, metadata } = decode(file);
    expect(metadata).toEqual({ format: 'pt' });
    expect([...tensors.keys()]).toEqual(['a', 'b']);
    expect(tensors.get('b')!.dtype).toBe('i64');
    expect(Array.from(tensors.get('b')!.data as BigInt64Array)).toEqual([1n, -2n]);
    expect(Array.from(tensors.get('a')!.data as Float32Array)).toEqual([1.5]);
  });

  it('accepts a header without padding (older writers) and JSON whitespace', () => {
    const file = rawSafetensors('{ "x" : { "shape" : [ ], "dtype" : "I32", "data_offsets" : [ 0 , 4 ] } }', [7, 0, 0, 0]);
    const { tensors } = decode(file);
    expect(tensors.get('x')!.shape).toEqual([]);
    expect(Array.from(tensors.get('x')!.data as Int32Array)).toEqual([7]);
  });
});

describe('safetensors: round trips', () => {
  it('keeps every f32 bit, i32 and i64 values, and metadata; bytes are stable', () => {
    const f = new Float32Array([0, -0, 1e-45, -1e-45, 1.1754942e-38, 3.4028235e38, -3.4028235e38, 1 / 3, Math.PI]);
    const nanBits = new Uint32Array([0x7fc00001, 0xffa00000]); // NaN payloads survive a byte copy
    const tensors = new Map<string, Tensor<TensorData>>([
      ['f', new Tensor([3, 3], f)],
      ['nan', new Tensor([2], new Float32Array(nanBits.buffer))],
      ['i32', new Tensor([4], new Int32Array([0, -1, 2147483647, -2147483648]))],
      ['i64', new Tensor([2, 1], new BigInt64Array([9223372036854775807n, -9223372036854775808n]))],
      ['empty', new Tensor([0, 5], new Float32Array(0))],
      ['scalar', new Tensor([], new Float32Array([2.5]))],
    ]);
    const meta = { 'zeta': 'last', 'alpha': 'first', 'unicode ✓': 'ünï "quoted" \n' };
    const bytes = encodeSafetensors(tensors, meta);
    const headerLen = new DataView(bytes.buffer).getUint32(0, true);
    expect(headerLen % 8).toBe(0);
    const { tensors: back, metadata } = decode(bytes);
    expect(metadata).toEqual(meta);
    expect(Object.keys(metadata)).toEqual(['alpha', 'unicode ✓', 'zeta']);
    expect([...back.keys()]).toEqual(['empty', 'f', 'i32', 'i64', 'nan', 'scalar']);
    expect(f32Bits(back.get('f')!)).toEqual(f32Bits(tensors.get('f')!));
    expect(Array.from(new Uint32Array((back.get('nan')!.data as Float32Array).buffer))).toEqual(Array.from(nanBits));
    expect(back.get('i32')!.data).toEqual(tensors.get('i32')!.data);
    expect(back.get('i64')!.data).toEqual(tensors.get('i64')!.data);
    expect(back.get('i64')!.shape).toEqual([2, 1]);
    expect(back.get('empty')!.shape).toEqual([0, 5]);
    expect(back.get('scalar')!.shape).toEqual([]);
    expect(toHex(encodeSafetensors(back, metadata))).toBe(toHex(bytes));
  });

  it('is independent of Map insertion order and metadata key order', () => {
    const a = Tensor.from([1], [1]);
    const b = Tensor.from([1], [2]);
    const x = encodeSafetensors(new Map([['a', a], ['b', b]]), { k1: 'v', k2: 'w' });
    const y = encodeSafetensors(new Map([['b', b], ['a', a]]), { k2: 'w', k1: 'v' });
    expect(toHex(x)).toBe(toHex(y));
  });

  it('omits __metadata__ when there is none, and writes an empty file as a valid header', () => {
    const empty = encodeSafetensors(new Map());
    expect(new TextDecoder().decode(empty.subarray(8))).toBe('{}      ');
    expect(decode(empty).tensors.size).toBe(0);
    expect(toHex(encodeSafetensors(new Map(), {}))).toBe(toHex(empty));
  });

  it('reads tensors at unaligned offsets into aligned arrays, and from a subarray input', () => {
    // An I32 of 1 element puts the following F32 at an odd offset relative to the buffer's 8-byte start.
    const header = '{"a":{"dtype":"I32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}';
    const file = rawSafetensors(header + ' ', [1, 0, 0, 0, ...hex('0000803f 000000c0')]);
    const shifted = new Uint8Array(file.length + 3);
    shifted.set(file, 3);
    const { tensors } = decode(shifted.subarray(3));
    const b = tensors.get('b')!.data as Float32Array;
    expect(b.byteOffset % 4).toBe(0);
    expect(Array.from(b)).toEqual([1, -2]);
    // The result does not alias the input.
    shifted.fill(0);
    expect(Array.from(b)).toEqual([1, -2]);
  });

  it('big-endian path: DataView reads and writes give the same values as the byte copy', () => {
    const f = new Float32Array([1.5, -0, 1e-40]);
    const le = new Uint8Array(12);
    writeLittleEndian(f, le, 0, true);
    const be = new Uint8Array(12);
    writeLittleEndian(f, be, 0, false);
    expect(toHex(be)).toBe(toHex(le));
    const i64 = new BigInt64Array([-5n, 1n << 40n]);
    const a = new Uint8Array(16);
    const b = new Uint8Array(16);
    writeLittleEndian(i64, a, 0, true);
    writeLittleEndian(i64, b, 0, false);
    expect(toHex(a)).toBe(toHex(b));
    expect(readLittleEndian('i64', a, 2, false)).toEqual(i64);
    expect(Array.from(new Uint32Array((readLittleEndian('f32', le, 3, false) as Float32Array).buffer))).toEqual(Array.from(new Uint32Array(f.buffer)));
    const i32 = new Int32Array([-7, 65536]);
    const c = new Uint8Array(8);
    writeLittleEndian(i32, c, 0, false);
    expect(readLittleEndian('i32', c, 2, true)).toEqual(i32);
  });

  it('sorts names by code point (UTF-8 byte order), not UTF-16 code unit', () => {
    const names = ['\u{1F600}', '\uFF01', 'b', 'a', 'B', '_'];
    expect(names.sort(compareNames)).toEqual(['B', '_', 'a', 'b', '\uFF01', '\u{1F600}']);
  });

  it('rejects a tensor named __metadata__ and non-string metadata when writing', () => {
    expectError(() => encodeSafetensors(new Map([['__metadata__', Tensor.from([1], [1])]])), 'INPUT_INVALID', '__metadata__');
    expectError(() => encodeSafetensors(new Map(), { n: 5 as unknown as string }), 'INPUT_INVALID', "'n'", 'string');
  });
});

describe('safetensors: malformed files are FORMAT_INVALID naming the file and the place', () => {
  const ok = '{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
  const data8 = [0, 0, 128, 63, 0, 0, 0, 64];

  it('file shorter than 8 bytes', () => {
    expectError(() => decode(new Uint8Array(5)), 'FORMAT_INVALID', SRC, 'header', '5 bytes');
  });

  it('header length over the cap', () => {
    const b = rawSafetensors(ok, data8);
    expectError(() => decode(b, 16), 'FORMAT_INVALID', SRC, 'header length 54 exceeds the limit of 16');
    const huge = new Uint8Array(16);
    new DataView(huge.buffer).setUint32(4, 0xffffffff, true);
    expectError(() => decode(huge), 'FORMAT_INVALID', SRC, 'exceeds the limit of 104857600');
  });

  it('header length past the end of the file', () => {
    const b = rawSafetensors(ok, data8);
    new DataView(b.buffer).setUint32(0, 1000, true);
    expectError(() => decode(b), 'FORMAT_INVALID', SRC, 'header length 1000 runs past the end of the file');
  });

  it('invalid JSON, invalid UTF-8, non-object headers', () => {
    expectError(() => decode(rawSafetensors('{"w":', data8)), 'FORMAT_INVALID', `${SRC}: header`, 'invalid JSON');
    expectError(() => decode(rawSafetensors('{"w":{}} x')), 'FORMAT_INVALID', `${SRC}: header`, 'after the JSON value');
    expectError(() => decode(rawSafetensors('')), 'FORMAT_INVALID', `${SRC}: header`, 'end of text');
    expectError(() => decode(rawSafetensors('[1, 2]')), 'FORMAT_INVALID', `${SRC}: header`, 'must be a JSON object, got an array');
    expectError(() => decode(rawSafetensors('null')), 'FORMAT_INVALID', `${SRC}: header`, 'got null');
    const bad = rawSafetensors('{"w\u00e9":1}');
    bad[8 + 3] = 0xff; // break the UTF-8 of é
    expectError(() => decode(bad), 'FORMAT_INVALID', `${SRC}: header`, 'UTF-8');
    expectError(() => decode(rawSafetensors('{"a":' + '['.repeat(100) + ']'.repeat(100) + '}')), 'FORMAT_INVALID', SRC, 'nesting');
  });

  it('entry that is not an object, missing or invalid dtype/shape/data_offsets', () => {
    const cases: [string, string][] = [
      ['{"w":[1]}', 'entry must be an object'],
      ['{"w":{"shape":[2],"data_offsets":[0,8]}}', "non-string 'dtype'"],
      ['{"w":{"dtype":5,"shape":[2],"data_offsets":[0,8]}}', "non-string 'dtype'"],
      ['{"w":{"dtype":"F32","data_offsets":[0,8]}}', "'shape' must be"],
      ['{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}', "'shape' must be"],
      ['{"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}', "'shape' must be"],
      ['{"w":{"dtype":"F32","shape":"2","data_offsets":[0,8]}}', "'shape' must be"],
      ['{"w":{"dtype":"F32","shape":[2]}}', "'data_offsets' must be"],
      ['{"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}}', "'data_offsets' must be"],
      ['{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8,9]}}', "'data_offsets' must be"],
      ['{"w":{"dtype":"F32","shape":[2],"data_offsets":[-1,8]}}', "'data_offsets' must be"],
      ['{"w":{"dtype":"F32","shape":[2],"data_offsets":["0","8"]}}', "'data_offsets' must be"],
      ['{"w":{"dtype":"F32","shape":[99999999999999999],"data_offsets":[0,8]}}', 'too large'],
      ['{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}', 'too large'],
    ];
    for (const [header, msg] of cases) {
      expectError(() => decode(rawSafetensors(header, data8)), 'FORMAT_INVALID', SRC, msg);
    }
    // Every entry-level error names the tensor.
    expectError(() => decode(rawSafetensors(cases[1][0], data8)), 'FORMAT_INVALID', `${SRC}: tensor 'w'`);
  });

  it('unknown dtype is FORMAT_INVALID; a known dtype Heddle does not hold is UNSUPPORTED', () => {
    expectError(() => decode(rawSafetensors('{"w":{"dtype":"f32","shape":[2],"data_offsets":[0,8]}}', data8)), 'FORMAT_INVALID', `${SRC}: tensor 'w'`, 'unknown dtype "f32"');
    expectError(() => decode(rawSafetensors('{"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}}', data8)), 'FORMAT_INVALID', `${SRC}: tensor 'w'`, 'unknown dtype "Q4"');
    for (const [dt, n] of [['F16', 4], ['BF16', 4], ['F64', 1], ['U8', 8], ['BOOL', 8], ['I16', 4], ['U64', 1], ['F8_E4M3', 8]] as const) {
      const h = `{"h":{"dtype":"${dt}","shape":[${n}],"data_offsets":[0,8]}}`;
      expectError(() => decode(rawSafetensors(h, data8)), 'UNSUPPORTED', `${SRC}: tensor 'h'`, `dtype ${dt} is not supported`);
    }
  });

  it('a corrupt file with an unsupported dtype is reported as corrupt first', () => {
    const h = '{"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}';
    expectError(() => decode(rawSafetensors(h, data8)), 'FORMAT_INVALID', SRC);
  });

  it('offsets past the end of the buffer (truncated file)', () => {
    expectError(() => decode(rawSafetensors(ok, data8.slice(0, 6))), 'FORMAT_INVALID', `${SRC}: tensor 'w'`, 'data_offsets [0, 8] run past the end of the data buffer (6 bytes');
  });

  it('begin after end', () => {
    expectError(() => decode(rawSafetensors('{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}', data8)), 'FORMAT_INVALID', `${SRC}: tensor 'w'`, 'begin is after end');
  });

  it('byte length that does not match the shape and dtype', () => {
    expectError(() => decode(rawSafetensors('{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', data8)), 'FORMAT_INVALID', `${SRC}: tensor 'w'`, 'hold 8 bytes, but F32 shape [3] needs 12');
    expectError(() => decode(rawSafetensors('{"w":{"dtype":"I64","shape":[2],"data_offsets":[0,8]}}', data8)), 'FORMAT_INVALID', `${SRC}: tensor 'w'`, 'I64 shape [2] needs 16');
  });

  it('overlapping tensors', () => {
    const h = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}';
    expectError(() => decode(rawSafetensors(h, data8)), 'FORMAT_INVALID', `${SRC}: tensor 'b'`, "overlap tensor 'a' [0, 8]");
    const same = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
    expectError(() => decode(rawSafetensors(same, data8)), 'FORMAT_INVALID', "tensor 'b'", 'overlap');
  });

  it('gaps and trailing bytes not covered by any tensor', () => {
    const gap = '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[0],"data_offsets":[8,8]}}';
    expectError(() => decode(rawSafetensors(gap, data8)), 'FORMAT_INVALID', `${SRC}: tensor 'b'`, 'bytes [4, 8) of the data buffer before this tensor belong to no tensor');
    const lead = '{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}';
    expectError(() => decode(rawSafetensors(lead, data8)), 'FORMAT_INVALID', `${SRC}: tensor 'a'`, 'bytes [0, 4)');
    const tail = '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}';
    expectError(() => decode(rawSafetensors(tail, data8)), 'FORMAT_INVALID', `${SRC}: data`, 'the last 4 bytes of the data buffer (from offset 4) belong to no tensor');
    expectError(() => decode(rawSafetensors('{}', data8)), 'FORMAT_INVALID', `${SRC}: data`, 'last 8 bytes');
  });

  it('duplicate tensor names and duplicate fields', () => {
    const dup = '{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}';
    expectError(() => decode(rawSafetensors(dup, data8)), 'FORMAT_INVALID', `${SRC}: header`, 'duplicate key "w"');
    const dupField = '{"w":{"dtype":"F32","dtype":"I32","shape":[2],"data_offsets":[0,8]}}';
    expectError(() => decode(rawSafetensors(dupField, data8)), 'FORMAT_INVALID', `${SRC}: header`, 'duplicate key "dtype"');
  });

  it('metadata that is not an object of strings', () => {
    const m = (meta: string) => `{"__metadata__":${meta},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`;
    expectError(() => decode(rawSafetensors(m('{"epoch":3}'), data8)), 'FORMAT_INVALID', `${SRC}: __metadata__`, "value of 'epoch' must be a string, got number 3");
    expectError(() => decode(rawSafetensors(m('{"a":{"b":"c"}}'), data8)), 'FORMAT_INVALID', `${SRC}: __metadata__`, "'a'");
    expectError(() => decode(rawSafetensors(m('["x"]'), data8)), 'FORMAT_INVALID', `${SRC}: __metadata__`, 'an array');
    expectError(() => decode(rawSafetensors(m('"x"'), data8)), 'FORMAT_INVALID', `${SRC}: __metadata__`);
    // null is what a reference reader accepts as "no metadata".
    expect(decode(rawSafetensors(m('null'), data8)).metadata).toEqual({});
  });

  it('a key named __proto__ is an ordinary name', () => {
    const h = '{"__metadata__":{"__proto__":"x"},"__proto__":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
    const { tensors, metadata } = decode(rawSafetensors(h, data8));
    expect(Object.getOwnPropertyNames(metadata)).toEqual(['__proto__']);
    expect(metadata['__proto__']).toBe('x');
    expect(tensors.has('__proto__')).toBe(true);
  });

  it('uses a default source name when none is given', () => {
    expectError(() => decodeSafetensors(new Uint8Array(3)), 'FORMAT_INVALID', 'safetensors data: header');
  });
});
