/**
 * The math IR: every deterministic routine is written once with these builder calls and
 * then emitted as TypeScript (emit-js.ts) and as WGSL (wgsl.ts), so the two cannot drift.
 *
 * Semantics (the canonical arithmetic, identical in every back-end):
 * - f32 values. `add`, `sub`, `mul` round to f32 (round-to-nearest-even) and then flush a
 *   result with |v| < 2^-126 to a zero of the same sign (FTZ). `neg`, `abs` are exact sign-bit
 *   operations. Routine parameters are rounded to f32 and flushed on entry.
 * - No fused multiply-add: each product is rounded before it is added (WGSL: barrier).
 * - u32 / i32 integers with 32-bit wrapping add, sub, mul; `shr` is logical on u32 and
 *   arithmetic on i32; shift amounts are u32 constants or values below 32.
 * - Bitcasts: f32 <-> u32 (`bits`, `fromBits`), u32 <-> i32. `fromBits` flushes a pattern
 *   whose exponent field is 0 to a signed zero; `fromBitsNormal` promises it never is one.
 * - `toF32` converts an integer with |v| <= 2^24 (exact); `toI32` converts an integer-valued
 *   f32 with |v| < 2^31 (exact). Both preconditions are the author's to keep.
 * - `select` evaluates both operands (pure, total expressions, so a back-end may branch).
 * - `guard(cond, value)`: return `value` now if `cond` holds. Pure code makes this the same
 *   as a select at the end, so it is an optimisation, not a semantic difference.
 * - No data-dependent loops: TypeScript loops in the builder unroll.
 *
 * Constants are exact f32 bit patterns (`c(bits)`) or numbers that are exactly f32.
 */

export type Ty = 'f32' | 'u32' | 'i32' | 'bool';

export type Op =
  | 'param'
  | 'const'
  | 'fadd' | 'fsub' | 'fmul' | 'fneg' | 'fabs'
  | 'flt' | 'fle' | 'fgt' | 'fge' | 'feq' | 'fne'
  | 'iadd' | 'isub' | 'imul' | 'iand' | 'ior' | 'ixor' | 'ishl' | 'ishr'
  | 'ilt' | 'ile' | 'igt' | 'ige' | 'ieq' | 'ine'
  | 'band' | 'bor' | 'bnot'
  | 'select'
  | 'bits' | 'fromBits' | 'fromBitsNormal' | 'u2i' | 'i2u' | 'i2f' | 'f2i'
  | 'call';

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** Exact f32 bits of a number that must already be an f32 value. */
export function f32Bits(v: number): number {
  F32[0] = v;
  if (!Number.isNaN(v) && F32[0] !== v) throw new Error(`constant ${v} is not exactly representable in f32`);
  return U32[0];
}
export function bitsToF32(b: number): number {
  U32[0] = b >>> 0;
  return F32[0];
}

export type Operand = V | number;

/** One value in a routine: a node of the routine's DAG. Methods build new nodes. */
export class V {
  constructor(
    readonly fn: Fn,
    readonly id: number,
    readonly op: Op,
    readonly ty: Ty,
    readonly args: readonly V[],
    /** const: f32 bits (f32), integer value (u32 / i32), 0|1 (bool). */
    readonly k = 0,
    readonly callee = '',
    /** Block the value was created in (0 = function body); usable there and in nested blocks. */
    readonly block = 0,
  ) {}

  /**
   * Author's promise about an f32 add/sub/mul (checked on every sweep by the tests' checked
   * build): 'exact' = the exact result is an f32 that is 0 or normal (JS may skip rounding and
   * FTZ); 'normal' = after rounding it is 0 or normal (JS may skip the FTZ test). The canonical
   * semantics do not change, so WGSL ignores it.
   */
  flag: 'exact' | 'normal' | null = null;
  exact(): V { return this.promise('exact'); }
  normal(): V { return this.promise('normal'); }
  private promise(f: 'exact' | 'normal'): V {
    if (this.op !== 'fadd' && this.op !== 'fsub' && this.op !== 'fmul') throw new Error(`${f}() on ${this.op}`);
    this.flag = f;
    return this;
  }

  private lift(b: Operand): V {
    if (b instanceof V) return b;
    if (this.ty === 'f32') return this.fn.f(b);
    if (this.ty === 'u32') return this.fn.u(b);
    if (this.ty === 'i32') return this.fn.i(b);
    throw new Error(`cannot lift ${b} to ${this.ty}`);
  }
  private bin(fop: Op, iop: Op | null, bop: Op | null, b: Operand, out?: Ty): V {
    const r = this.lift(b);
    if (r.ty !== this.ty) throw new Error(`type mismatch ${this.ty} vs ${r.ty} in ${fop}`);
    let op: Op | null = null;
    if (this.ty === 'f32') op = fop;
    else if (this.ty === 'u32' || this.ty === 'i32') op = iop;
    else op = bop;
    if (!op) throw new Error(`operation ${fop} not defined on ${this.ty}`);
    return this.fn.node(op, out ?? this.ty, [this, r]);
  }
  add(b: Operand): V { return this.bin('fadd', 'iadd', null, b); }
  sub(b: Operand): V { return this.bin('fsub', 'isub', null, b); }
  mul(b: Operand): V { return this.bin('fmul', 'imul', null, b); }
  lt(b: Operand): V { return this.bin('flt', 'ilt', null, b, 'bool'); }
  le(b: Operand): V { return this.bin('fle', 'ile', null, b, 'bool'); }
  gt(b: Operand): V { return this.bin('fgt', 'igt', null, b, 'bool'); }
  ge(b: Operand): V { return this.bin('fge', 'ige', null, b, 'bool'); }
  eq(b: Operand): V { return this.bin('feq', 'ieq', null, b, 'bool'); }
  ne(b: Operand): V { return this.bin('fne', 'ine', null, b, 'bool'); }
  and(b: Operand): V { return this.bin('fadd', 'iand', 'band', b).checkNotF('and'); }
  or(b: Operand): V { return this.bin('fadd', 'ior', 'bor', b).checkNotF('or'); }
  xor(b: Operand): V { return this.bin('fadd', 'ixor', null, b).checkNotF('xor'); }
  shl(s: number): V { return this.shift('ishl', s); }
  shr(s: number): V { return this.shift('ishr', s); }
  shlV(s: V): V { return this.shiftV('ishl', s); }
  shrV(s: V): V { return this.shiftV('ishr', s); }
  private shift(op: Op, s: number): V {
    if (!Number.isInteger(s) || s < 0 || s > 31) throw new Error(`shift ${s}`);
    return this.shiftV(op, this.fn.u(s));
  }
  private shiftV(op: Op, s: V): V {
    if (this.ty !== 'u32' && this.ty !== 'i32') throw new Error(`shift on ${this.ty}`);
    if (s.ty !== 'u32') throw new Error('shift amount must be u32');
    return this.fn.node(op, this.ty, [this, s]);
  }
  private checkNotF(what: string): V {
    if (this.ty === 'f32') throw new Error(`${what} on f32`);
    return this;
  }
  neg(): V { return this.unF('fneg'); }
  abs(): V { return this.unF('fabs'); }
  not(): V {
    if (this.ty !== 'bool') throw new Error('not on non-bool');
    return this.fn.node('bnot', 'bool', [this]);
  }
  private unF(op: Op): V {
    if (this.ty !== 'f32') throw new Error(`${op} on ${this.ty}`);
    return this.fn.node(op, 'f32', [this]);
  }
  /** f32 -> u32 bit pattern. */
  bits(): V { return this.conv('f32', 'bits', 'u32'); }
  /** u32 pattern -> f32, flushing exponent-0 patterns to signed zero. */
  asF32(): V { return this.conv('u32', 'fromBits', 'f32'); }
  /** u32 pattern -> f32 where the author guarantees a nonzero exponent field (or zero bits). */
  asF32Normal(): V { return this.conv('u32', 'fromBitsNormal', 'f32'); }
  asI32(): V { return this.conv('u32', 'u2i', 'i32'); }
  asU32(): V { return this.conv('i32', 'i2u', 'u32'); }
  /** Exact integer -> f32 (|v| <= 2^24). */
  toF32(): V {
    if (this.ty !== 'i32') throw new Error('toF32 needs i32');
    return this.fn.node('i2f', 'f32', [this]);
  }
  /** Exact integer-valued f32 -> i32. */
  toI32(): V { return this.conv('f32', 'f2i', 'i32'); }
  private conv(from: Ty, op: Op, to: Ty): V {
    if (this.ty !== from) throw new Error(`${op} needs ${from}, got ${this.ty}`);
    return this.fn.node(op, to, [this]);
  }
}

export type Stmt =
  | { kind: 'let'; v: V }
  | { kind: 'guard'; cond: V; value: V }
  /** Early return of a value computed only on that path: `if (cond) { body; return value; }`. */
  | { kind: 'when'; cond: V; body: Stmt[]; value: V };

/** A routine under construction: its parameters, statements in creation order, and result. */
export class Fn {
  readonly params: V[] = [];
  readonly stmts: Stmt[] = [];
  result: V | null = null;
  readonly calls = new Set<string>();
  private nextId = 0;
  private consts = new Map<string, V>();
  /** Open blocks, innermost last: [block id, its statement list]. */
  private blocks: [number, Stmt[]][] = [[0, this.stmts]];
  private nextBlock = 1;

  constructor(readonly name: string, readonly doc: string) {}

  private visible(v: V): boolean {
    return v.op === 'const' || v.op === 'param' || this.blocks.some(([id]) => id === v.block);
  }
  node(op: Op, ty: Ty, args: V[], k = 0, callee = ''): V {
    for (const a of args) {
      if (a.fn !== this) throw new Error(`value from routine ${a.fn.name} used in ${this.name}`);
      if (!this.visible(a)) throw new Error(`value t${a.id} used outside its block in ${this.name}`);
    }
    const [blockId, list] = this.blocks[this.blocks.length - 1]!;
    const v = new V(this, this.nextId++, op, ty, args, k, callee, op === 'const' || op === 'param' ? 0 : blockId);
    if (op !== 'const' && op !== 'param') list.push({ kind: 'let', v });
    return v;
  }
  private push(s: Stmt): void {
    this.blocks[this.blocks.length - 1]![1].push(s);
  }
  /** If `cond` holds, compute `body()` (only on that path) and return it. */
  when(cond: V, body: () => Operand): void {
    if (cond.ty !== 'bool') throw new Error('when condition must be bool');
    if (!this.visible(cond)) throw new Error('condition used outside its block');
    const list: Stmt[] = [];
    this.blocks.push([this.nextBlock++, list]);
    const r = body();
    const value = r instanceof V ? r : this.f(r);
    this.blocks.pop();
    if (value.ty !== 'f32') throw new Error('routines return f32');
    this.push({ kind: 'when', cond, body: list, value });
  }
  param(): V {
    const v = this.node('param', 'f32', []);
    this.params.push(v);
    return v;
  }
  private constant(ty: Ty, k: number): V {
    const key = `${ty}:${k}`;
    let v = this.consts.get(key);
    if (!v) {
      v = this.node('const', ty, [], k);
      this.consts.set(key, v);
    }
    return v;
  }
  /** f32 constant from an exact f32 bit pattern. */
  c(bits: number): V {
    if (!Number.isInteger(bits) || bits < 0 || bits > 0xffffffff) throw new Error(`bad bits ${bits}`);
    const e = (bits >>> 23) & 0xff;
    if (e === 0 && (bits & 0x7fffff) !== 0) throw new Error(`subnormal constant 0x${bits.toString(16)}`);
    return this.constant('f32', bits >>> 0);
  }
  /** f32 constant from a number that is exactly an f32 value. */
  f(v: number): V { return this.c(f32Bits(v)); }
  u(v: number): V {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`bad u32 ${v}`);
    return this.constant('u32', v);
  }
  i(v: number): V {
    if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) throw new Error(`bad i32 ${v}`);
    return this.constant('i32', v);
  }
  bool(b: boolean): V { return this.constant('bool', b ? 1 : 0); }

  sel(cond: V, a: Operand, b: Operand): V {
    if (cond.ty !== 'bool') throw new Error('select condition must be bool');
    const av = a instanceof V ? a : b instanceof V ? this.liftLike(b, a) : this.f(a);
    const bv = b instanceof V ? b : this.liftLike(av, b);
    if (av.ty !== bv.ty) throw new Error(`select arms differ: ${av.ty} vs ${bv.ty}`);
    return this.node('select', av.ty, [cond, av, bv]);
  }
  private liftLike(like: V, k: number): V {
    if (like.ty === 'f32') return this.f(k);
    if (like.ty === 'u32') return this.u(k);
    if (like.ty === 'i32') return this.i(k);
    throw new Error('cannot lift to bool');
  }
  /** Return `value` early when `cond` holds. */
  guard(cond: V, value: Operand): void {
    if (cond.ty !== 'bool') throw new Error('guard condition must be bool');
    const v = value instanceof V ? value : this.f(value);
    if (v.ty !== 'f32') throw new Error('routines return f32');
    if (!this.visible(cond) || !this.visible(v)) throw new Error('guard uses a value outside its block');
    this.push({ kind: 'guard', cond, value: v });
  }
  call(name: string, ...args: V[]): V {
    this.calls.add(name);
    return this.node('call', 'f32', args, 0, name);
  }
  ret(v: V): void {
    if (v.ty !== 'f32') throw new Error('routines return f32');
    if (v.block !== 0 && v.op !== 'const' && v.op !== 'param') throw new Error('result must come from the function body');
    this.result = v;
  }

  /** The body with dead values dropped (nested `when` bodies filtered the same way). */
  live(): Stmt[] {
    if (!this.result) throw new Error(`routine ${this.name} has no result`);
    const liveIds = new Set<number>();
    const mark = (v: V): void => {
      if (liveIds.has(v.id)) return;
      liveIds.add(v.id);
      for (const a of v.args) mark(a);
    };
    const markStmts = (list: Stmt[]): void => {
      for (const s of list) {
        if (s.kind === 'guard') { mark(s.cond); mark(s.value); }
        if (s.kind === 'when') { mark(s.cond); mark(s.value); markStmts(s.body); }
      }
    };
    mark(this.result);
    markStmts(this.stmts);
    const filter = (list: Stmt[]): Stmt[] =>
      list
        .filter((s) => s.kind !== 'let' || liveIds.has(s.v.id))
        .map((s) => (s.kind === 'when' ? { ...s, body: filter(s.body) } : s));
    return filter(this.stmts);
  }
}

export interface Routine {
  readonly name: string;
  readonly arity: number;
  readonly doc: string;
  readonly fn: Fn;
}

/** Build a routine: `body` receives the routine and its (already rounded, flushed) parameters. */
export function routine(name: string, arity: number, doc: string, body: (b: Fn, ...p: V[]) => V): Routine {
  const fn = new Fn(name, doc);
  const ps: V[] = [];
  for (let i = 0; i < arity; i++) ps.push(fn.param());
  fn.ret(body(fn, ...ps));
  return { name, arity, doc, fn };
}
