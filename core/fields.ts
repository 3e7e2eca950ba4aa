import { fail } from './errors.ts';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

interface NumOpts {
  min?: number;
  max?: number;
  default?: number;
}

/**
 * Reads one JSON object's fields with aliases and type checks. Every error names the
 * object (`where`) and the field, e.g. `layers[2] (z0 y0 x0 l2, dense).output_height: ...`.
 * Fields are looked up under their canonical name first, then each alias; giving two
 * spellings of one field with different values is an error.
 */
export class FieldReader {
  readonly raw: JsonObject;
  readonly where: string;

  constructor(raw: unknown, where: string) {
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      fail('CONFIG_INVALID', `expected a JSON object, got ${describeJson(raw)}`, where);
    }
    this.raw = raw as JsonObject;
    this.where = where;
  }

  /** The value under the first present name, or undefined. */
  lookup(names: string | readonly string[]): { name: string; value: Json } | undefined {
    const list = typeof names === 'string' ? [names] : names;
    let found: { name: string; value: Json } | undefined;
    for (const n of list) {
      if (Object.prototype.hasOwnProperty.call(this.raw, n) && this.raw[n] !== undefined) {
        const v = this.raw[n];
        if (found && JSON.stringify(found.value) !== JSON.stringify(v)) {
          fail('CONFIG_INVALID', `'${found.name}' and its alias '${n}' disagree (${JSON.stringify(found.value)} vs ${JSON.stringify(v)})`, this.where);
        }
        found ??= { name: n, value: v };
      }
    }
    return found;
  }

  has(names: string | readonly string[]): boolean {
    return this.lookup(names) !== undefined;
  }

  at(name: string): string {
    return `${this.where}.${name}`;
  }

  int(names: string | readonly string[], opts: NumOpts = {}): number {
    const f = this.lookup(names);
    const primary = typeof names === 'string' ? names : names[0];
    if (!f || f.value === null) {
      if (opts.default !== undefined) return opts.default;
      fail('CONFIG_INVALID', `missing required integer field`, this.at(primary));
    }
    const v = f.value;
    if (typeof v !== 'number' || !Number.isInteger(v)) {
      fail('CONFIG_INVALID', `expected an integer, got ${describeJson(v)}`, this.at(f.name));
    }
    checkRange(v, opts, this.at(f.name));
    return v;
  }

  /** An integer that may be absent (returns undefined); 0 counts as absent when zeroIsAbsent (Loom writes 0 for unset). */
  optInt(names: string | readonly string[], opts: NumOpts & { zeroIsAbsent?: boolean } = {}): number | undefined {
    const f = this.lookup(names);
    if (!f || f.value === null) return undefined;
    if (opts.zeroIsAbsent && f.value === 0) return undefined;
    return this.int(f.name, opts);
  }

  num(names: string | readonly string[], opts: NumOpts = {}): number {
    const f = this.lookup(names);
    const primary = typeof names === 'string' ? names : names[0];
    if (!f || f.value === null) {
      if (opts.default !== undefined) return opts.default;
      fail('CONFIG_INVALID', `missing required number field`, this.at(primary));
    }
    const v = f.value;
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      fail('CONFIG_INVALID', `expected a finite number, got ${describeJson(v)}`, this.at(f.name));
    }
    checkRange(v, opts, this.at(f.name));
    return v;
  }

  str<T extends string>(names: string | readonly string[], opts: { oneOf?: readonly T[]; default?: T } = {}): T {
    const f = this.lookup(names);
    const primary = typeof names === 'string' ? names : names[0];
    if (!f || f.value === null || f.value === '') {
      if (opts.default !== undefined) return opts.default;
      fail('CONFIG_INVALID', `missing required string field`, this.at(primary));
    }
    const v = f.value;
    if (typeof v !== 'string') fail('CONFIG_INVALID', `expected a string, got ${describeJson(v)}`, this.at(f.name));
    if (opts.oneOf && !opts.oneOf.includes(v as T)) {
      fail('CONFIG_INVALID', `unknown value '${v}'; expected one of ${opts.oneOf.join(', ')}`, this.at(f.name));
    }
    return v as T;
  }

  bool(names: string | readonly string[], def: boolean): boolean {
    const f = this.lookup(names);
    if (!f || f.value === null) return def;
    if (typeof f.value !== 'boolean') fail('CONFIG_INVALID', `expected true or false, got ${describeJson(f.value)}`, this.at(f.name));
    return f.value;
  }

  array(names: string | readonly string[], opts: { required?: boolean } = {}): Json[] | undefined {
    const f = this.lookup(names);
    const primary = typeof names === 'string' ? names : names[0];
    if (!f || f.value === null) {
      if (opts.required) fail('CONFIG_INVALID', `missing required array field`, this.at(primary));
      return undefined;
    }
    if (!Array.isArray(f.value)) fail('CONFIG_INVALID', `expected an array, got ${describeJson(f.value)}`, this.at(f.name));
    return f.value;
  }

  intArray(names: string | readonly string[], opts: { required?: boolean; min?: number } = {}): number[] | undefined {
    const arr = this.array(names, opts);
    if (!arr) return undefined;
    const name = this.lookup(names)!.name;
    return arr.map((v, i) => {
      if (typeof v !== 'number' || !Number.isInteger(v)) fail('CONFIG_INVALID', `expected an integer, got ${describeJson(v)}`, `${this.at(name)}[${i}]`);
      checkRange(v, { min: opts.min }, `${this.at(name)}[${i}]`);
      return v;
    });
  }
}

function checkRange(v: number, opts: NumOpts, where: string): void {
  if (opts.min !== undefined && v < opts.min) fail('CONFIG_INVALID', `must be >= ${opts.min}, got ${v}`, where);
  if (opts.max !== undefined && v > opts.max) fail('CONFIG_INVALID', `must be <= ${opts.max}, got ${v}`, where);
}

export function describeJson(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '...' : v)}`;
  return `${typeof v} ${String(v)}`;
}
