/**
 * A FlatBuffers verifier for the TS side (the npm runtime has none). The per-table
 * functions that drive it are generated from the schema (generated/verify.ts); this file
 * holds the checks they share. After a buffer passes, flatc's generated readers cannot
 * read outside it: every offset, vtable, string and vector lies inside the buffer, every
 * required field is present, nesting depth and table count are bounded.
 *
 * Alignment is not required (the TS readers read bytes); code that views a vector as a
 * typed array checks the alignment it needs and copies when it is not met.
 */

export class VerifyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VerifyError';
  }
}

/** A table being verified: its position and its vtable. */
export interface TableRef {
  readonly pos: number;
  readonly vt: number;
  readonly vtSize: number;
  readonly name: string;
}

export interface VerifierLimits {
  /** Deepest table nesting accepted (default 64). */
  maxDepth?: number;
  /** Most tables in one buffer (default 1,000,000). */
  maxTables?: number;
}

export class Verifier {
  readonly bytes: Uint8Array;
  private readonly dv: DataView;
  private readonly end: number;
  private depth = 0;
  private tables = 0;
  private readonly maxDepth: number;
  private readonly maxTables: number;

  constructor(bytes: Uint8Array, limits: VerifierLimits = {}) {
    this.bytes = bytes;
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.end = bytes.byteLength;
    this.maxDepth = limits.maxDepth ?? 64;
    this.maxTables = limits.maxTables ?? 1_000_000;
  }

  fail(msg: string): never {
    throw new VerifyError(msg);
  }

  private check(pos: number, size: number, what: string): void {
    if (!(pos >= 0 && size >= 0 && pos + size <= this.end)) {
      this.fail(`${what}: bytes ${pos}..${pos + size} lie outside the ${this.end}-byte buffer`);
    }
  }

  private u32(pos: number, what: string): number {
    this.check(pos, 4, what);
    return this.dv.getUint32(pos, true);
  }

  /** Checks the buffer's size and file identifier; returns the root table's position. */
  root(identifier: string): number {
    if (this.end < 8) this.fail(`buffer of ${this.end} bytes is too short for a FlatBuffer with a file identifier (8 bytes at least)`);
    let id = '';
    for (let i = 0; i < 4; i++) id += String.fromCharCode(this.bytes[4 + i]);
    if (id !== identifier) this.fail(`file identifier is ${JSON.stringify(id)}, expected ${JSON.stringify(identifier)}`);
    return this.u32(0, 'root offset');
  }

  /** Enters a table: checks its vtable and inline size. Pair with leave(). */
  enter(pos: number, name: string): TableRef {
    if (++this.depth > this.maxDepth) this.fail(`${name}: tables nested deeper than ${this.maxDepth}`);
    if (++this.tables > this.maxTables) this.fail(`more than ${this.maxTables} tables`);
    if ((pos & 3) !== 0) this.fail(`${name}: table at ${pos} is not 4-byte aligned`);
    this.check(pos, 4, `${name}: table`);
    const vt = pos - this.dv.getInt32(pos, true);
    if ((vt & 1) !== 0) this.fail(`${name}: vtable at ${vt} is not 2-byte aligned`);
    this.check(vt, 4, `${name}: vtable header`);
    const vtSize = this.dv.getUint16(vt, true);
    const tableSize = this.dv.getUint16(vt + 2, true);
    if (vtSize < 4 || (vtSize & 1) !== 0) this.fail(`${name}: vtable size ${vtSize} is invalid`);
    this.check(vt, vtSize, `${name}: vtable`);
    if (tableSize < 4) this.fail(`${name}: table size ${tableSize} is invalid`);
    this.check(pos, tableSize, `${name}: table`);
    return { pos, vt, vtSize, name };
  }

  leave(): void {
    this.depth--;
  }

  /** Absolute position of a field, 0 when absent. */
  private field(t: TableRef, voff: number): number {
    if (voff >= t.vtSize) return 0;
    const off = this.dv.getUint16(t.vt + voff, true);
    return off === 0 ? 0 : t.pos + off;
  }

  private missing(t: TableRef, name: string): never {
    return this.fail(`${t.name}.${name}: required field is missing`);
  }

  /** A scalar or struct stored inline. */
  inline(t: TableRef, voff: number, size: number, name: string, required = false): void {
    const p = this.field(t, voff);
    if (p === 0) {
      if (required) this.missing(t, name);
      return;
    }
    this.check(p, size, `${t.name}.${name}`);
  }

  /** Follows an offset field; returns the target's position, 0 when absent. */
  private target(t: TableRef, voff: number, name: string, required: boolean): number {
    const p = this.field(t, voff);
    if (p === 0) {
      if (required) this.missing(t, name);
      return 0;
    }
    const off = this.u32(p, `${t.name}.${name}`);
    const at = p + off;
    if (off === 0 || at >= this.end) this.fail(`${t.name}.${name}: offset ${off} points outside the buffer`);
    return at;
  }

  /** A table-typed field: returns the sub-table's position (0 when absent) for its verifier. */
  table(t: TableRef, voff: number, name: string, required = false): number {
    return this.target(t, voff, name, required);
  }

  string(t: TableRef, voff: number, name: string, required = false): void {
    const at = this.target(t, voff, name, required);
    if (at !== 0) this.stringAt(at, `${t.name}.${name}`);
  }

  private stringAt(at: number, what: string): void {
    const len = this.u32(at, what);
    this.check(at + 4, len + 1, `${what}: string`);
    if (this.bytes[at + 4 + len] !== 0) this.fail(`${what}: string is not zero-terminated`);
  }

  /** A vector of scalars or structs; returns its element count (0 when absent). */
  vector(t: TableRef, voff: number, elemSize: number, name: string, required = false): number {
    const at = this.target(t, voff, name, required);
    if (at === 0) return 0;
    const len = this.u32(at, `${t.name}.${name}`);
    if (len * elemSize > this.end) this.fail(`${t.name}.${name}: vector of ${len} elements is larger than the buffer`);
    this.check(at + 4, len * elemSize, `${t.name}.${name}: vector`);
    return len;
  }

  /** A vector of strings. */
  strings(t: TableRef, voff: number, name: string, required = false): void {
    const at = this.target(t, voff, name, required);
    if (at === 0) return;
    const len = this.vectorHeader(at, `${t.name}.${name}`);
    for (let i = 0; i < len; i++) {
      const p = at + 4 + 4 * i;
      this.stringAt(p + this.u32(p, `${t.name}.${name}[${i}]`), `${t.name}.${name}[${i}]`);
    }
  }

  /** A vector of tables: calls `each` with every element's position. */
  tableVector(t: TableRef, voff: number, name: string, required: boolean, each: (pos: number) => void): void {
    const at = this.target(t, voff, name, required);
    if (at === 0) return;
    const len = this.vectorHeader(at, `${t.name}.${name}`);
    for (let i = 0; i < len; i++) {
      const p = at + 4 + 4 * i;
      const off = this.u32(p, `${t.name}.${name}[${i}]`);
      if (off === 0 || p + off >= this.end) this.fail(`${t.name}.${name}[${i}]: offset points outside the buffer`);
      each(p + off);
    }
  }

  private vectorHeader(at: number, what: string): number {
    const len = this.u32(at, what);
    if (len * 4 > this.end) this.fail(`${what}: vector of ${len} elements is larger than the buffer`);
    this.check(at + 4, len * 4, `${what}: vector`);
    return len;
  }

  /**
   * A union: its type field (voff - 2) and value. Returns [type, position] for the
   * caller's switch; position 0 when the type is NONE. A value without a type, or a type
   * without a value, fails.
   */
  union(t: TableRef, voff: number, name: string, required = false): [number, number] {
    const tp = this.field(t, voff - 2);
    let type = 0;
    if (tp !== 0) {
      this.check(tp, 1, `${t.name}.${name}_type`);
      type = this.bytes[tp];
    }
    const at = this.target(t, voff, name, required);
    if (type === 0 && at !== 0) this.fail(`${t.name}.${name}: value present but its type is NONE`);
    if (type !== 0 && at === 0) this.fail(`${t.name}.${name}: type ${type} given but the value is missing`);
    return [type, at];
  }
}
