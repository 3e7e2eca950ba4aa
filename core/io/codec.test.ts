import { describe, expect, it } from 'vitest';
import { Prng } from '../prng.ts';
import { base64Decode, base64Encode } from './base64.ts';
import { parseStrictJson } from './strict_json.ts';
import { expectError } from './test_util.ts';

describe('base64', () => {
  it('matches RFC 4648 test vectors', () => {
    const vectors: [string, string][] = [
      ['', ''], ['f', 'Zg=='], ['fo', 'Zm8='], ['foo', 'Zm9v'], ['foob', 'Zm9vYg=='], ['fooba', 'Zm9vYmE='], ['foobar', 'Zm9vYmFy'],
    ];
    for (const [plain, enc] of vectors) {
      const bytes = new TextEncoder().encode(plain);
      expect(base64Encode(bytes)).toBe(enc);
      expect(Array.from(base64Decode(enc, 'x'))).toEqual(Array.from(bytes));
    }
  });

  it('round-trips every byte value and random lengths, agreeing with the platform encoder', () => {
    const all = Uint8Array.from({ length: 256 }, (_, k) => k);
    expect(Array.from(base64Decode(base64Encode(all), 'x'))).toEqual(Array.from(all));
    const rng = new Prng(1);
    for (let n = 0; n < 200; n++) {
      const b = Uint8Array.from({ length: n * 7 + (n % 3) }, () => rng.int(256));
      const enc = base64Encode(b);
      expect(enc).toBe(Buffer.from(b).toString('base64'));
      expect(Array.from(base64Decode(enc, 'x'))).toEqual(Array.from(b));
    }
    // Longer than one String.fromCharCode chunk.
    const big = Uint8Array.from({ length: 200_001 }, (_, k) => (k * 31) & 255);
    expect(base64Encode(big)).toBe(Buffer.from(big).toString('base64'));
  });

  it('is strict: bad length, characters, padding and unused bits are FORMAT_INVALID at the given place', () => {
    expectError(() => base64Decode('Zm9', 'w'), 'FORMAT_INVALID', 'w: ', 'length 3');
    expectError(() => base64Decode('Zm9v\n', 'w'), 'FORMAT_INVALID', 'length 5');
    expectError(() => base64Decode('Zm 9', 'w'), 'FORMAT_INVALID', 'character " " at position 2');
    expectError(() => base64Decode('Zm-_', 'w'), 'FORMAT_INVALID', 'character "-"'); // base64url is not accepted
    expectError(() => base64Decode('Zg==Zg==', 'w'), 'FORMAT_INVALID', 'character "="');
    expectError(() => base64Decode('Z===', 'w'), 'FORMAT_INVALID', 'character "="');
    expectError(() => base64Decode('Zh==', 'w'), 'FORMAT_INVALID', 'non-zero unused bits');
    expectError(() => base64Decode('Zm9=', 'w'), 'FORMAT_INVALID', 'non-zero unused bits');
    expectError(() => base64Decode('Zm\u00e9v', 'w'), 'FORMAT_INVALID', 'position 2');
  });
});

describe('strict JSON', () => {
  const p = (s: string) => parseStrictJson(s, { where: 'f.json' });

  it('parses what JSON.parse parses, to equal values', () => {
    const samples = [
      '{"a":[1,-2.5e3,0.1,true,false,null,"x\\u00e9\\n\\"\\\\\\/"],"b":{},"c":[]}',
      ' [ ] ',
      '"\\ud83d\\ude00"',
      '-0',
      '1E+2',
      '{"nested":{"deep":[[[{"k":"v"}]]]}}',
    ];
    for (const s of samples) expect(p(s)).toEqual(JSON.parse(s));
    expect(Object.is(p('-0'), -0)).toBe(true);
  });

  it('rejects duplicate keys, naming the key', () => {
    expectError(() => p('{"a":1,"b":2,"a":3}'), 'FORMAT_INVALID', 'f.json', 'duplicate key "a"');
    expectError(() => p('{"x":{"k":1,"k":1}}'), 'FORMAT_INVALID', 'duplicate key "k"');
    // Escaped spellings of the same key are the same key.
    expectError(() => p('{"a":1,"\\u0061":2}'), 'FORMAT_INVALID', 'duplicate key "a"');
  });

  it('rejects what JSON rejects, with the character position', () => {
    for (const bad of ['', '{', '{"a"}', '{"a":1,}', '[1,]', "{'a':1}", '01', '1.', '.5', '+1', 'NaN', 'tru', '"\\x"', '"\\u12"', '"a\nb"', '{"a":1}}', '{"a" 1}', '[1 2]']) {
      expectError(() => p(bad), 'FORMAT_INVALID', 'f.json', 'invalid JSON');
    }
  });

  it('rejects integers beyond 2^53 and out-of-range numbers instead of rounding them', () => {
    expect(p('9007199254740991')).toBe(9007199254740991);
    expectError(() => p('9007199254740993'), 'FORMAT_INVALID', 'too large');
    expectError(() => p('1e400'), 'FORMAT_INVALID', 'out of range');
  });

  it('caps nesting depth', () => {
    expect(() => parseStrictJson('[[[]]]', { where: 'w', maxDepth: 3 })).not.toThrow();
    expectError(() => parseStrictJson('[[[[]]]]', { where: 'w', maxDepth: 3 }), 'FORMAT_INVALID', 'nesting deeper than 3');
    expectError(() => p('['.repeat(100000)), 'FORMAT_INVALID', 'nesting');
  });

  it('builds prototype-free objects: __proto__ is an ordinary key', () => {
    const v = p('{"__proto__":{"polluted":true}}') as Record<string, unknown>;
    expect(Object.keys(v)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
