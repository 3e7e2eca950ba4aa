/**
 * A strict JSON parser for the files Heddle reads. JSON.parse silently keeps the last of
 * two equal keys, so a file with `"layers.0.weight"` twice would load whichever came
 * last; this parser rejects duplicate keys instead. It also builds objects without a
 * prototype (a key named `__proto__` is an ordinary key), caps nesting depth (no stack
 * overflow on hostile input) and rejects numbers JavaScript cannot hold exactly when they
 * are integers beyond 2^53 (a shape or offset must never be silently rounded).
 */
import { fail } from '../errors.ts';
import type { Json } from '../fields.ts';

export interface StrictJsonOptions {
  /** Names the text in errors, e.g. `model.safetensors: header`. */
  where: string;
  /** Deepest array/object nesting accepted (default 256). */
  maxDepth?: number;
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

/** Parse `text` as one JSON value (whitespace around it allowed). Errors are FORMAT_INVALID at `where`. */
export function parseStrictJson(text: string, opts: StrictJsonOptions): Json {
  const where = opts.where;
  const maxDepth = opts.maxDepth ?? 256;
  let i = 0;

  const bad = (msg: string): never => fail('FORMAT_INVALID', `invalid JSON at character ${i}: ${msg}`, where);

  const skipWs = (): void => {
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else return;
    }
  };

  const parseString = (): string => {
    // At the opening quote.
    i++;
    let out = '';
    let runStart = i;
    for (;;) {
      if (i >= text.length) bad('unterminated string');
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        out += text.slice(runStart, i);
        i++;
        return out;
      }
      if (c < 0x20) bad(`control character U+${c.toString(16).padStart(4, '0')} inside a string`);
      if (c !== 0x5c) {
        i++;
        continue;
      }
      out += text.slice(runStart, i);
      const e = text[i + 1];
      i += 2;
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          const hex = text.slice(i, i + 4);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) bad('bad \\u escape');
          out += String.fromCharCode(parseInt(hex, 16));
          i += 4;
          break;
        }
        default:
          i -= 2;
          bad(`bad escape \\${e ?? ''}`);
      }
      runStart = i;
    }
  };

  const parseValue = (depth: number): Json => {
    skipWs();
    const c = text[i];
    if (c === '"') return parseString();
    if (c === '{' || c === '[') {
      if (depth >= maxDepth) bad(`nesting deeper than ${maxDepth}`);
      return c === '{' ? parseObject(depth + 1) : parseArray(depth + 1);
    }
    if (text.startsWith('true', i)) { i += 4; return true; }
    if (text.startsWith('false', i)) { i += 5; return false; }
    if (text.startsWith('null', i)) { i += 4; return null; }
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (!m) return bad(c === undefined ? 'unexpected end of text' : `unexpected character ${JSON.stringify(c)}`);
    const s = m[0];
    const v = Number(s);
    if (!Number.isFinite(v)) bad(`number ${s} is out of range`);
    if (/^-?[0-9]+$/.test(s) && !Number.isSafeInteger(v)) bad(`integer ${s} is too large to represent exactly`);
    i += s.length;
    return v;
  };

  const parseArray = (depth: number): Json[] => {
    i++;
    const out: Json[] = [];
    skipWs();
    if (text[i] === ']') { i++; return out; }
    for (;;) {
      out.push(parseValue(depth));
      skipWs();
      const c = text[i];
      if (c === ',') { i++; continue; }
      if (c === ']') { i++; return out; }
      bad("expected ',' or ']'");
    }
  };

  const parseObject = (depth: number): { [k: string]: Json } => {
    i++;
    const out = Object.create(null) as { [k: string]: Json };
    const seen = new Set<string>();
    skipWs();
    if (text[i] === '}') { i++; return out; }
    for (;;) {
      skipWs();
      if (text[i] !== '"') bad('expected a string key');
      const keyAt = i;
      const key = parseString();
      if (seen.has(key)) {
        i = keyAt;
        fail('FORMAT_INVALID', `duplicate key ${JSON.stringify(key)} at character ${keyAt}`, where);
      }
      seen.add(key);
      skipWs();
      if (text[i] !== ':') bad("expected ':'");
      i++;
      out[key] = parseValue(depth);
      skipWs();
      const c = text[i];
      if (c === ',') { i++; continue; }
      if (c === '}') { i++; return out; }
      bad("expected ',' or '}'");
    }
  };

  const v = parseValue(0);
  skipWs();
  if (i < text.length) bad('unexpected text after the JSON value');
  return v;
}

/** True for a JSON object (not null, not an array). */
export function isJsonObject(v: unknown): v is { [k: string]: Json } {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
