/**
 * A small evaluator for the WGSL subset that wgslMathLibrary() emits, used by the tests as a
 * third, independent implementation: it runs the emitted *text* (not the IR) with f32
 * semantics per operation, so it checks what a GPU would be given. Adversarial modes model
 * what adapters may do on their own:
 * - `hwFlush`: the "hardware" flushes subnormal inputs and results of float + - * (NVIDIA,
 *   SwiftShader); off, it keeps them (llvmpipe). The library must give the same bits either way.
 * - `fuse`: the "compiler" contracts a raw product that feeds + or - into one FMA, even through
 *   `let` bindings and heddle_ftz() calls (what NVIDIA does). Barriered products are immune.
 * Not a general WGSL implementation: the grammar is the emitter's output.
 */

export interface EvalMode {
  hwFlush: boolean;
  fuse: boolean;
}

type Ty = 'f32' | 'u32' | 'i32' | 'bool';
type Val = number | boolean;

// ---------------------------------------------------------------- lexer

interface Tok {
  k: 'id' | 'num' | 'p';
  s: string;
}

function lex(src: string): Tok[] {
  const out: Tok[] = [];
  const re = /\s+|\/\/[^\n]*|(0x[0-9a-fA-F]+[ui]?|\d+\.\d*f?|\d+[uif]?)|([A-Za-z_][A-Za-z0-9_]*)|(->|==|!=|<=|>=|&&|\|\||<<|>>|[(){}<>,;:=+\-*\/!&|^@\[\]])/y;
  let m: RegExpExecArray | null;
  re.lastIndex = 0;
  while (re.lastIndex < src.length) {
    const at = re.lastIndex;
    m = re.exec(src);
    if (!m || re.lastIndex === at) throw new Error(`lex error at ${src.slice(at, at + 30)}`);
    if (m[1]) out.push({ k: 'num', s: m[1] });
    else if (m[2]) out.push({ k: 'id', s: m[2] });
    else if (m[3]) out.push({ k: 'p', s: m[3] });
  }
  return out;
}

// ---------------------------------------------------------------- AST

type Expr =
  | { e: 'lit'; ty: Ty; v: Val }
  | { e: 'var'; name: string }
  | { e: 'bin'; op: string; a: Expr; b: Expr }
  | { e: 'un'; op: string; a: Expr }
  | { e: 'call'; name: string; args: Expr[] }
  | { e: 'bitcast'; ty: Ty; a: Expr }
  | { e: 'conv'; ty: Ty; a: Expr };

type Stmt =
  | { s: 'let'; name: string; ty: Ty | null; init: Expr }
  | { s: 'if'; cond: Expr; body: Stmt[] }
  | { s: 'ret'; v: Expr };

interface FnDecl {
  name: string;
  params: { name: string; ty: Ty }[];
  ret: Ty;
  body: Stmt[];
}

const PREC: Record<string, number> = {
  '||': 1, '&&': 2, '|': 3, '^': 4, '&': 5, '==': 6, '!=': 6, '<': 7, '>': 7, '<=': 7, '>=': 7,
  '<<': 8, '>>': 8, '+': 9, '-': 9, '*': 10, '/': 10,
};

function parse(src: string): { fns: Map<string, FnDecl>; globals: Map<string, Ty> } {
  const t = lex(src);
  let i = 0;
  const peek = (o = 0): Tok | undefined => t[i + o];
  const next = (): Tok => {
    const x = t[i++];
    if (!x) throw new Error('unexpected end');
    return x;
  };
  const expect = (s: string): void => {
    const x = next();
    if (x.s !== s) throw new Error(`expected '${s}', got '${x.s}' near token ${i}`);
  };
  const type = (): Ty => {
    const x = next().s;
    if (x !== 'f32' && x !== 'u32' && x !== 'i32' && x !== 'bool') throw new Error(`unknown type ${x}`);
    return x;
  };
  const numLit = (s: string): Expr => {
    if (s.startsWith('0x')) {
      const ty: Ty = s.endsWith('i') ? 'i32' : 'u32';
      return { e: 'lit', ty, v: Number.parseInt(s.replace(/[ui]$/, ''), 16) };
    }
    if (s.includes('.') || s.endsWith('f')) return { e: 'lit', ty: 'f32', v: Math.fround(Number.parseFloat(s.replace(/f$/, ''))) };
    if (s.endsWith('u')) return { e: 'lit', ty: 'u32', v: Number.parseInt(s, 10) };
    if (s.endsWith('i')) return { e: 'lit', ty: 'i32', v: Number.parseInt(s, 10) };
    throw new Error(`untyped integer literal ${s}`);
  };
  const primary = (): Expr => {
    const x = next();
    if (x.k === 'num') return numLit(x.s);
    if (x.s === '(') {
      const e = expression(0);
      expect(')');
      return e;
    }
    if (x.s === '-' || x.s === '!') {
      const a = primary();
      // Fold negative literals (emitted as (-5i), (-88.0f)).
      if (x.s === '-' && a.e === 'lit' && typeof a.v === 'number') return { e: 'lit', ty: a.ty, v: -a.v };
      return { e: 'un', op: x.s, a };
    }
    if (x.k === 'id') {
      if (x.s === 'true' || x.s === 'false') return { e: 'lit', ty: 'bool', v: x.s === 'true' };
      if (x.s === 'bitcast') {
        expect('<');
        const ty = type();
        expect('>');
        expect('(');
        const a = expression(0);
        expect(')');
        return { e: 'bitcast', ty, a };
      }
      if ((x.s === 'f32' || x.s === 'i32' || x.s === 'u32') && peek()?.s === '(') {
        next();
        const a = expression(0);
        expect(')');
        return { e: 'conv', ty: x.s, a };
      }
      if (peek()?.s === '(') {
        next();
        const args: Expr[] = [];
        while (peek()?.s !== ')') {
          args.push(expression(0));
          if (peek()?.s === ',') next();
        }
        expect(')');
        return { e: 'call', name: x.s, args };
      }
      return { e: 'var', name: x.s };
    }
    throw new Error(`unexpected '${x.s}'`);
  };
  const expression = (minPrec: number): Expr => {
    let a = primary();
    for (;;) {
      const op = peek()?.s;
      const p = op !== undefined ? PREC[op] : undefined;
      if (p === undefined || p <= minPrec) return a;
      next();
      const b = expression(p);
      a = { e: 'bin', op: op!, a, b };
    }
  };
  const block = (): Stmt[] => {
    expect('{');
    const body: Stmt[] = [];
    while (peek()?.s !== '}') {
      const x = next();
      if (x.s === 'let') {
        const name = next().s;
        let ty: Ty | null = null;
        if (peek()?.s === ':') {
          next();
          ty = type();
        }
        expect('=');
        body.push({ s: 'let', name, ty, init: expression(0) });
        expect(';');
      } else if (x.s === 'if') {
        const cond = expression(0);
        body.push({ s: 'if', cond, body: block() });
      } else if (x.s === 'return') {
        body.push({ s: 'ret', v: expression(0) });
        expect(';');
      } else throw new Error(`unexpected statement '${x.s}'`);
    }
    expect('}');
    return body;
  };
  const fns = new Map<string, FnDecl>();
  const globals = new Map<string, Ty>();
  while (i < t.length) {
    const x = next();
    if (x.s === 'var') {
      expect('<');
      expect('private');
      expect('>');
      const name = next().s;
      expect(':');
      globals.set(name, type());
      expect(';');
    } else if (x.s === 'fn') {
      const name = next().s;
      expect('(');
      const params: { name: string; ty: Ty }[] = [];
      while (peek()?.s !== ')') {
        const pn = next().s;
        expect(':');
        params.push({ name: pn, ty: type() });
        if (peek()?.s === ',') next();
      }
      expect(')');
      expect('->');
      const ret = type();
      fns.set(name, { name, params, ret, body: block() });
    } else throw new Error(`unexpected top-level '${x.s}'`);
  }
  return { fns, globals };
}

// ---------------------------------------------------------------- compile to closures

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);
const I32 = new Int32Array(F32.buffer);
const MIN = 1.1754943508222875e-38;

type Env = Val[];
type Code = (env: Env) => Val;

/** Evaluates the emitted WGSL library. `call(name, ...args)` runs one function on f32 inputs. */
export class WgslEvaluator {
  private readonly compiled = new Map<string, (args: number[]) => number>();
  readonly globals = new Map<string, Val>();
  /** Names of builtins the source used (tests assert none are forbidden). */
  readonly builtinsUsed = new Set<string>();

  constructor(src: string, private readonly mode: EvalMode) {
    const { fns, globals } = parse(src);
    for (const [g] of globals) this.globals.set(g, 0);
    for (const f of fns.values()) this.compileFn(f, fns);
  }

  call(name: string, ...args: number[]): number {
    const f = this.compiled.get(name);
    if (!f) throw new Error(`no function ${name}`);
    return f(args);
  }

  private hw(v: number): number {
    return this.mode.hwFlush && v > -MIN && v < MIN ? v * 0 : v;
  }

  private compileFn(f: FnDecl, fns: Map<string, FnDecl>): void {
    const slots = new Map<string, number>();
    const types = new Map<string, Ty>();
    /** let-bound raw f32 products (for the fusing adversary): name -> operand codes. */
    const products = new Map<string, [Code, Code]>();
    for (const p of f.params) {
      slots.set(p.name, slots.size);
      types.set(p.name, p.ty);
    }
    const self = this;
    const typeOf = (e: Expr): Ty => {
      switch (e.e) {
        case 'lit': return e.ty;
        case 'var': {
          const t = types.get(e.name) ?? (this.globals.has(e.name) ? 'f32' : undefined);
          if (!t) throw new Error(`unknown name ${e.name} in ${f.name}`);
          return t;
        }
        case 'bin': return ['==', '!=', '<', '>', '<=', '>=', '&&', '||'].includes(e.op) ? 'bool' : typeOf(e.a);
        case 'un': return typeOf(e.a);
        case 'bitcast': case 'conv': return e.ty;
        case 'call': {
          if (e.name === 'select') return typeOf(e.args[1]!);
          const d = fns.get(e.name);
          if (!d) throw new Error(`unknown function ${e.name}`);
          return d.ret;
        }
      }
    };
    /** If e is (possibly through heddle_ftz and let names) a raw f32 product, its operands. */
    const rawProduct = (e: Expr): [Code, Code] | null => {
      if (e.e === 'bin' && e.op === '*' && typeOf(e) === 'f32') return [compile(e.a), compile(e.b)];
      if (e.e === 'call' && e.name === 'heddle_ftz') return rawProduct(e.args[0]!);
      if (e.e === 'var') return products.get(e.name) ?? null;
      return null;
    };
    const compile = (e: Expr): Code => {
      switch (e.e) {
        case 'lit': {
          const v = e.v;
          return () => v;
        }
        case 'var': {
          const s = slots.get(e.name);
          if (s !== undefined) return (env) => env[s]!;
          const name = e.name;
          if (!self.globals.has(name)) throw new Error(`unknown name ${name}`);
          return () => self.globals.get(name)!;
        }
        case 'un': {
          const a = compile(e.a);
          const ty = typeOf(e.a);
          if (e.op === '!') return (env) => !a(env);
          if (ty === 'f32') return (env) => -(a(env) as number);
          if (ty === 'i32') return (env) => -(a(env) as number) | 0;
          return (env) => (-(a(env) as number)) >>> 0;
        }
        case 'bitcast': {
          const a = compile(e.a);
          const from = typeOf(e.a);
          const to = e.ty;
          return (env) => {
            const v = a(env) as number;
            if (from === 'f32') F32[0] = v;
            else if (from === 'u32') U32[0] = v;
            else I32[0] = v;
            return to === 'f32' ? F32[0]! : to === 'u32' ? U32[0]! : I32[0]!;
          };
        }
        case 'conv': {
          const a = compile(e.a);
          const from = typeOf(e.a);
          if (e.ty === 'f32') return (env) => Math.fround(a(env) as number);
          if (from !== 'f32') throw new Error('integer conversions not emitted');
          // WGSL f32 -> i32: truncate toward zero, saturating.
          return (env) => {
            const v = a(env) as number;
            if (Number.isNaN(v)) return 0;
            return Math.max(-2147483648, Math.min(2147483647, Math.trunc(v)));
          };
        }
        case 'call': {
          if (e.name === 'select') {
            const [fa, ta, ca] = e.args.map(compile) as [Code, Code, Code];
            return (env) => (ca(env) ? ta(env) : fa(env));
          }
          const d = fns.get(e.name);
          if (!d) {
            self.builtinsUsed.add(e.name);
            throw new Error(`builtin ${e.name} is not part of the emitted subset`);
          }
          const args = e.args.map(compile);
          const name = e.name;
          return (env) => {
            const fn = self.compiled.get(name);
            if (!fn) throw new Error(`${name} not compiled yet`);
            return fn(args.map((a) => a(env) as number));
          };
        }
        case 'bin': {
          const ty = typeOf(e.a);
          const op = e.op;
          if (ty === 'bool') {
            const a = compile(e.a), b = compile(e.b);
            if (op === '&&') return (env) => (a(env) as boolean) && (b(env) as boolean);
            if (op === '||') return (env) => (a(env) as boolean) || (b(env) as boolean);
            if (op === '==') return (env) => a(env) === b(env);
            if (op === '!=') return (env) => a(env) !== b(env);
            throw new Error(`bool op ${op}`);
          }
          if (ty === 'f32') {
            if (op === '/') throw new Error('float division is forbidden in the library');
            if ((op === '+' || op === '-') && this.mode.fuse) {
              const pa = rawProduct(e.a);
              const pb = op === '+' ? rawProduct(e.b) : null;
              const fused = pa ?? pb;
              if (fused) {
                const [x, y] = fused;
                const other = compile(pa ? e.b : e.a);
                const sign = op === '-' && !pa ? -1 : 1;
                const oSign = op === '-' && pa ? -1 : 1;
                // fma: the exact product (exact in f64) plus the addend, rounded once
                // (f64 then f32: close enough to a true fma to show that fusion happened).
                return (env) => {
                  const p = self.hw(x(env) as number) * self.hw(y(env) as number);
                  return self.hw(Math.fround(sign * p + oSign * self.hw(other(env) as number)));
                };
              }
            }
            const a = compile(e.a), b = compile(e.b);
            const hw = (v: number): number => self.hw(v);
            switch (op) {
              case '+': return (env) => hw(Math.fround(hw(a(env) as number) + hw(b(env) as number)));
              case '-': return (env) => hw(Math.fround(hw(a(env) as number) - hw(b(env) as number)));
              case '*': return (env) => hw(Math.fround(hw(a(env) as number) * hw(b(env) as number)));
              case '<': return (env) => (a(env) as number) < (b(env) as number);
              case '>': return (env) => (a(env) as number) > (b(env) as number);
              case '<=': return (env) => (a(env) as number) <= (b(env) as number);
              case '>=': return (env) => (a(env) as number) >= (b(env) as number);
              case '==': return (env) => a(env) === b(env);
              case '!=': return (env) => a(env) !== b(env);
            }
            throw new Error(`f32 op ${op}`);
          }
          const a = compile(e.a), b = compile(e.b);
          const wrap = ty === 'u32' ? (v: number): number => v >>> 0 : (v: number): number => v | 0;
          switch (op) {
            case '+': return (env) => wrap((a(env) as number) + (b(env) as number));
            case '-': return (env) => wrap((a(env) as number) - (b(env) as number));
            case '*': return (env) => wrap(Math.imul(a(env) as number, b(env) as number));
            case '&': return (env) => wrap((a(env) as number) & (b(env) as number));
            case '|': return (env) => wrap((a(env) as number) | (b(env) as number));
            case '^': return (env) => wrap((a(env) as number) ^ (b(env) as number));
            case '<<': return (env) => wrap((a(env) as number) << ((b(env) as number) & 31));
            case '>>':
              return ty === 'u32'
                ? (env) => (a(env) as number) >>> ((b(env) as number) & 31)
                : (env) => (a(env) as number) >> ((b(env) as number) & 31);
            case '<': return (env) => (a(env) as number) < (b(env) as number);
            case '>': return (env) => (a(env) as number) > (b(env) as number);
            case '<=': return (env) => (a(env) as number) <= (b(env) as number);
            case '>=': return (env) => (a(env) as number) >= (b(env) as number);
            case '==': return (env) => a(env) === b(env);
            case '!=': return (env) => a(env) !== b(env);
          }
          throw new Error(`int op ${op}`);
        }
      }
    };
    type Exec = (env: Env) => { ret: true; v: Val } | null;
    const compileBlock = (list: Stmt[]): Exec[] =>
      list.map((st): Exec => {
        if (st.s === 'let') {
          const slot = slots.size;
          const init = compile(st.init);
          const ty = st.ty ?? typeOf(st.init);
          if (this.mode.fuse && ty === 'f32') {
            const p = rawProduct(st.init);
            if (p) products.set(st.name, p);
          }
          slots.set(st.name, slot);
          types.set(st.name, ty);
          return (env) => {
            env[slot] = init(env);
            return null;
          };
        }
        if (st.s === 'ret') {
          const v = compile(st.v);
          return (env) => ({ ret: true, v: v(env) });
        }
        const cond = compile(st.cond);
        const body = compileBlock(st.body);
        return (env) => {
          if (!cond(env)) return null;
          for (const x of body) {
            const r = x(env);
            if (r) return r;
          }
          return null;
        };
      });
    const body = compileBlock(f.body);
    const nParams = f.params.length;
    const isF32 = f.params.map((p) => p.ty === 'f32');
    this.compiled.set(f.name, (args) => {
      if (args.length !== nParams) throw new Error(`${f.name}: ${nParams} arguments expected`);
      const env: Env = args.map((a, k) => (isF32[k] ? Math.fround(a) : a));
      for (const x of body) {
        const r = x(env);
        if (r) return r.v as number;
      }
      throw new Error(`${f.name} fell off the end`);
    });
  }
}
