/**
 * Standard base64 (RFC 4648 §4, `+` `/`, `=` padding) without Buffer or atob, so it runs
 * unchanged in browsers, Node, Deno and Bun. Decoding is strict — padding required, no
 * whitespace, unused trailing bits must be zero — so every byte string has exactly one
 * accepted text form and a damaged string is reported rather than half-read.
 */
import { fail } from '../errors.ts';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const ENC = new Uint8Array(64);
const DEC = new Int16Array(128).fill(-1);
for (let k = 0; k < 64; k++) {
  ENC[k] = ALPHABET.charCodeAt(k);
  DEC[ALPHABET.charCodeAt(k)] = k;
}
const PAD = 0x3d; // '='

export function base64Encode(bytes: Uint8Array): string {
  const n = bytes.length;
  const out = new Uint8Array(Math.ceil(n / 3) * 4);
  let o = 0;
  let k = 0;
  for (; k + 2 < n; k += 3) {
    const v = (bytes[k] << 16) | (bytes[k + 1] << 8) | bytes[k + 2];
    out[o++] = ENC[v >> 18];
    out[o++] = ENC[(v >> 12) & 63];
    out[o++] = ENC[(v >> 6) & 63];
    out[o++] = ENC[v & 63];
  }
  if (k < n) {
    const two = k + 1 < n;
    const v = (bytes[k] << 16) | (two ? bytes[k + 1] << 8 : 0);
    out[o++] = ENC[v >> 18];
    out[o++] = ENC[(v >> 12) & 63];
    out[o++] = two ? ENC[(v >> 6) & 63] : PAD;
    out[o++] = PAD;
  }
  return asciiToString(out);
}

/** Decode strict base64; errors are FORMAT_INVALID at `where` and give the character position. */
export function base64Decode(text: string, where: string): Uint8Array {
  const len = text.length;
  if (len % 4 !== 0) fail('FORMAT_INVALID', `base64 text has length ${len}, not a multiple of 4`, where);
  if (len === 0) return new Uint8Array(0);
  let pad = 0;
  if (text.charCodeAt(len - 1) === PAD) pad = text.charCodeAt(len - 2) === PAD ? 2 : 1;
  const out = new Uint8Array((len / 4) * 3 - pad);
  const sextet = (pos: number): number => {
    const c = text.charCodeAt(pos);
    const v = c < 128 ? DEC[c] : -1;
    if (v < 0) fail('FORMAT_INVALID', `invalid base64 character ${JSON.stringify(text[pos])} at position ${pos}`, where);
    return v;
  };
  let o = 0;
  const full = pad ? len - 4 : len;
  for (let k = 0; k < full; k += 4) {
    const v = (sextet(k) << 18) | (sextet(k + 1) << 12) | (sextet(k + 2) << 6) | sextet(k + 3);
    out[o++] = v >> 16;
    out[o++] = (v >> 8) & 255;
    out[o++] = v & 255;
  }
  if (pad) {
    const k = len - 4;
    const a = sextet(k);
    const b = sextet(k + 1);
    if (pad === 2) {
      if (b & 15) fail('FORMAT_INVALID', `base64 text has non-zero unused bits at position ${k + 1}`, where);
      out[o++] = (a << 2) | (b >> 4);
    } else {
      const c = sextet(k + 2);
      if (c & 3) fail('FORMAT_INVALID', `base64 text has non-zero unused bits at position ${k + 2}`, where);
      out[o++] = (a << 2) | (b >> 4);
      out[o++] = ((b & 15) << 4) | (c >> 2);
    }
  }
  return out;
}

/** Bytes known to be ASCII -> string, in chunks (String.fromCharCode has an argument limit). */
function asciiToString(a: Uint8Array): string {
  const parts: string[] = [];
  const CHUNK = 0x8000;
  for (let k = 0; k < a.length; k += CHUNK) {
    parts.push(String.fromCharCode.apply(null, a.subarray(k, k + CHUNK) as unknown as number[]));
  }
  return parts.join('');
}
