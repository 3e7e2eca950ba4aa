/**
 * Python emitter: the thin generated layer of the `heddle` package (bindings/python), which
 * reaches the engine through libheddle with ctypes.
 *
 *   bindings/python/src/heddle/_generated/abi.py   ABI version, identifiers, calls, Status /
 *                                                 DType / Format enums and one exception class
 *                                                 per ErrorCode (from the schema)
 *   bindings/python/src/heddle/_generated/ffi.py   ctypes structures, callback type and the
 *                                                 prototype of every libheddle function (from
 *                                                 bindings/c/include/heddle.h)
 *
 * The prototypes come from heddle.h itself (a small parser for the C99 subset that header
 * uses), so a changed C signature changes the generated Python and `gen:bindings --check`
 * fails until it is regenerated; a declaration the parser cannot map is a generator error.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Protocol } from './protocol.ts';

export const PYTHON_GENERATED_DIR = 'bindings/python/src/heddle/_generated';
const HEADER = 'bindings/c/include/heddle.h';

// ------------------------------------------------------------------ helpers

function pyStr(s: string): string {
  return JSON.stringify(s);
}

/** A docstring body: the lines joined, quotes made safe. */
function docText(lines: string[]): string {
  return lines.join(' ').replace(/\s+/g, ' ').trim().replace(/\\/g, '\\\\').replace(/"""/g, '\\"\\"\\"');
}

function wrap(text: string, indent: string, width = 96): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && indent.length + line.length + 1 + word.length > width) {
      out.push(indent + line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) out.push(indent + line);
  return out;
}

function docstring(lines: string[], indent: string): string[] {
  const text = docText(lines);
  if (!text) return [];
  if (indent.length + text.length + 6 <= 96) return [`${indent}"""${text}"""`];
  return [`${indent}"""`, ...wrap(text, indent), `${indent}"""`];
}

/** CONFIG_INVALID -> ConfigInvalid. */
export function pythonClassName(code: string): string {
  return code
    .toLowerCase()
    .split('_')
    .filter(Boolean)
    .map((w) => w[0].toUpperCase() + w.slice(1))
    .join('');
}

// ------------------------------------------------------------------ abi.py

const BASES = ['HeddleError', 'EngineError', 'ClientError'];

export function emitPythonAbi(p: Protocol): string {
  const [maj, min, pat] = p.abiVersion;
  const o: string[] = [];
  o.push('"""The Heddle ABI for Python, from schemas/heddle.fbs: version, status codes, dtypes,');
  o.push('formats and one exception class per error code."""');
  o.push('');
  o.push('from __future__ import annotations');
  o.push('');
  o.push('import enum');
  o.push('from typing import Dict, Optional, Tuple, Type');
  o.push('');
  o.push('#: The ABI\'s semantic version: an engine serves clients of the same major version.');
  o.push(`ABI_VERSION: Tuple[int, int, int] = (${maj}, ${min}, ${pat})`);
  o.push(`ABI_VERSION_STRING = ${pyStr(`${maj}.${min}.${pat}`)}`);
  o.push('#: File identifiers of request (client -> engine) and response buffers.');
  o.push(`REQUEST_IDENTIFIER = b${pyStr(p.requestIdentifier)}`);
  o.push(`RESPONSE_IDENTIFIER = b${pyStr(p.responseIdentifier)}`);
  o.push('#: The calls of `rpc_service Engine`: (name, union value, streams progress).');
  o.push('CALLS: Tuple[Tuple[str, int, bool], ...] = (');
  for (const c of p.calls) o.push(`    (${pyStr(c.name)}, ${c.tag}, ${c.streaming ? 'True' : 'False'}),`);
  o.push(')');
  o.push('');
  o.push('');
  o.push('class Status(enum.IntEnum):');
  o.push('    """The result of a libheddle call: OK (0) or an error code. Codes 1..599 come from the');
  o.push('    engine; 600 and up are raised by the client library. The numbers never change."""');
  o.push('');
  for (const e of p.errorCodes) {
    o.push(`    ${e.value === 0 ? 'OK' : e.name} = ${e.value}`);
    o.push(...docstring(e.docs, '    '));
  }
  o.push('');
  o.push('');
  o.push('#: One line describing each status.');
  o.push('STATUS_DOCS: Dict[int, str] = {');
  for (const e of p.errorCodes) o.push(`    ${e.value}: ${pyStr(docText(e.docs))},`);
  o.push('}');
  o.push('');
  o.push('');
  o.push('class DType(enum.IntEnum):');
  o.push('    """Element type of a tensor."""');
  o.push('');
  for (const d of p.dtypes) {
    o.push(`    ${d.name} = ${d.value}`);
    o.push(...docstring(d.docs, '    '));
  }
  o.push('');
  o.push('');
  o.push('class Format(enum.IntEnum):');
  o.push('    """How a whole network (config and weights) is serialized."""');
  o.push('');
  for (const f of p.formats) {
    o.push(`    ${f.name} = ${f.value}`);
    o.push(...docstring(f.docs, '    '));
  }
  o.push('');
  o.push('');
  o.push('class HeddleError(Exception):');
  o.push('    """A failed Heddle call. `code` is its status (a Status, or the bare number of a code');
  o.push('    this client does not know), `name` the code\'s name, `message` what went wrong and where."""');
  o.push('');
  o.push('    code: int = -1');
  o.push('');
  o.push('    def __init__(self, message: str = "", code: Optional[int] = None) -> None:');
  o.push('        if code is not None:');
  o.push('            self.code = Status(code) if code in Status._value2member_map_ else code');
  o.push('        self.message = message');
  o.push('        super().__init__(f"{self.name}: {message}" if message else self.name)');
  o.push('');
  o.push('    @property');
  o.push('    def name(self) -> str:');
  o.push('        return self.code.name if isinstance(self.code, Status) else f"ERROR_{self.code}"');
  o.push('');
  o.push('    @property');
  o.push('    def doc(self) -> str:');
  o.push('        """One line describing the error code."""');
  o.push('        return STATUS_DOCS.get(int(self.code), "an error code this client does not know")');
  o.push('');
  o.push('');
  o.push('class EngineError(HeddleError):');
  o.push('    """An error the engine answered (codes 1..599). The connection keeps serving."""');
  o.push('');
  o.push('');
  o.push('class ClientError(HeddleError):');
  o.push('    """An error raised on the client side (codes 600 and up): the engine exited, could not be');
  o.push('    started or reached, timed out, or an argument was refused before sending."""');
  o.push('');
  const classes: [string, number][] = [];
  const seen = new Set(BASES);
  for (const e of p.errorCodes) {
    if (e.value === 0) continue;
    const cls = pythonClassName(e.name);
    if (seen.has(cls)) throw new Error(`python: error code ${e.name} maps to class ${cls}, which is taken`);
    seen.add(cls);
    classes.push([cls, e.value]);
    o.push('');
    o.push(`class ${cls}(${e.clientSide ? 'ClientError' : 'EngineError'}):`);
    o.push(...docstring([...e.docs, `(code ${e.value}, ${e.name})`], '    '));
    o.push('');
    o.push(`    code = Status.${e.name}`);
    o.push('');
  }
  o.push('');
  o.push('#: The exception class of each error code.');
  o.push('ERROR_CLASSES: Dict[int, Type[HeddleError]] = {');
  for (const [cls, v] of classes) o.push(`    ${v}: ${cls},`);
  o.push('}');
  o.push('');
  o.push('');
  o.push('def error_for(code: int, message: str = "") -> HeddleError:');
  o.push('    """The exception for an error code; a code this client does not know is still an error of');
  o.push('    that number (EngineError below 600, ClientError from 600)."""');
  o.push('    cls = ERROR_CLASSES.get(int(code))');
  o.push('    if cls is not None:');
  o.push('        return cls(message)');
  o.push(`    return (ClientError if int(code) >= ${p.errorCodes.find((e) => e.clientSide)?.value ?? 600} else EngineError)(message, int(code))`);
  o.push('');
  o.push('');
  const exported = ['ABI_VERSION', 'ABI_VERSION_STRING', 'REQUEST_IDENTIFIER', 'RESPONSE_IDENTIFIER', 'CALLS', 'Status', 'STATUS_DOCS', 'DType', 'Format', ...BASES, ...classes.map(([c]) => c), 'ERROR_CLASSES', 'error_for'];
  o.push('__all__ = [');
  for (const n of exported) o.push(`    ${pyStr(n)},`);
  o.push(']');
  return o.join('\n') + '\n';
}

// ------------------------------------------------------------------ heddle.h -> ffi.py

interface CDecl {
  base: string;
  /** `const` before the base type. */
  constBase: boolean;
  pointers: number;
  name: string;
}

interface CStruct {
  name: string;
  fields: CDecl[];
}

interface CFunction {
  name: string;
  ret: CDecl;
  params: CDecl[];
}

interface CCallback {
  name: string;
  ret: CDecl;
  params: CDecl[];
}

export interface CHeader {
  opaque: string[];
  /** Structs, callbacks in declaration order (a callback may use an earlier struct). */
  types: ({ kind: 'struct'; s: CStruct } | { kind: 'callback'; c: CCallback })[];
  functions: CFunction[];
}

const SCALARS: Record<string, string> = {
  void: 'None',
  char: 'c_char',
  int: 'c_int',
  size_t: 'c_size_t',
  int32_t: 'c_int32',
  uint32_t: 'c_uint32',
  int64_t: 'c_int64',
  uint64_t: 'c_uint64',
  float: 'c_float',
  double: 'c_double',
};

/** `const char *const *argv` -> {base char, constBase, pointers 2, name argv}. */
function parseDecl(text: string, where: string, named = true): CDecl {
  const t = text.replace(/\*/g, ' * ').trim().split(/\s+/);
  let name = '';
  if (named) {
    name = t.pop() ?? '';
    if (!/^\w+$/.test(name)) throw new Error(`python: cannot read the declaration '${text}' (${where})`);
  }
  let constBase = false;
  let base = '';
  let pointers = 0;
  for (const tok of t) {
    if (tok === 'const') {
      if (!base) constBase = true;
    } else if (tok === '*') {
      pointers++;
    } else if (/^\w+$/.test(tok)) {
      if (base) throw new Error(`python: two type names in '${text}' (${where})`);
      base = tok;
    } else {
      throw new Error(`python: cannot read the declaration '${text}' (${where})`);
    }
  }
  if (!base) throw new Error(`python: no type in '${text}' (${where})`);
  return { base, constBase, pointers, name };
}

function parseParams(text: string, where: string): CDecl[] {
  const t = text.trim();
  if (t === 'void' || t === '') return [];
  return t.split(',').map((s) => parseDecl(s, where));
}

/** Reads the declarations of heddle.h that Python binds. */
export function parseHeader(src: string): CHeader {
  const text = src
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .replace(/\/\/[^\n]*/g, ' ')
    .replace(/^\s*#[^\n]*$/gm, ' ')
    .replace(/\s+/g, ' ');
  const h: CHeader = { opaque: [], types: [], functions: [] };
  const re =
    /typedef struct (\w+) (\w+);|typedef struct (\w+) \{([^}]*)\} (\w+);|typedef ([\w\s*]+?)\(\s*\*\s*(\w+)\s*\)\s*\(([^)]*)\);|HEDDLE_API ([\w\s*]+?)\b(\w+)\s*\(([^)]*)\);/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m[1]) {
      if (m[1] !== m[2]) throw new Error(`python: typedef struct ${m[1]} ${m[2]}: names differ`);
      h.opaque.push(m[2]);
    } else if (m[3]) {
      if (m[3] !== m[5]) throw new Error(`python: typedef struct ${m[3]} {...} ${m[5]}: names differ`);
      const fields = m[4]
        .split(';')
        .map((f) => f.trim())
        .filter(Boolean)
        .map((f) => parseDecl(f, `struct ${m![3]}`));
      h.types.push({ kind: 'struct', s: { name: m[3], fields } });
    } else if (m[7]) {
      h.types.push({ kind: 'callback', c: { name: m[7], ret: parseDecl(m[6], m[7], false), params: parseParams(m[8], m[7]) } });
    } else {
      h.functions.push({ name: m[10], ret: parseDecl(m[9], m[10], false), params: parseParams(m[11], m[10]) });
    }
  }
  if (!h.functions.length) throw new Error(`python: found no HEDDLE_API functions in ${HEADER}`);
  return h;
}

type Use = 'arg' | 'ret' | 'field';

/**
 * The ctypes type of a C declaration. Data pointers (numbers, void, a non-const char
 * buffer) are c_void_p in arguments and fields, so callers pass numpy addresses, byref()
 * results or ctypes buffers; a returned pointer to numbers is POINTER(T) so it can be read.
 */
function ctypeOf(d: CDecl, use: Use, h: CHeader, enums: Set<string>, where: string): string {
  const structs = new Set(h.types.filter((t) => t.kind === 'struct').map((t) => (t as { s: CStruct }).s.name));
  const callbacks = new Set(h.types.filter((t) => t.kind === 'callback').map((t) => (t as { c: CCallback }).c.name));
  const opaque = new Set(h.opaque);
  const fail = (): never => {
    throw new Error(`python: no ctypes mapping for '${d.constBase ? 'const ' : ''}${d.base}${' *'.repeat(d.pointers)}' (${where})`);
  };
  const scalar = (): string => {
    if (d.base in SCALARS) return SCALARS[d.base];
    if (enums.has(d.base)) return 'c_int';
    if (structs.has(d.base)) return d.base;
    if (callbacks.has(d.base)) return d.base;
    return fail();
  };
  if (d.pointers === 0) {
    if (opaque.has(d.base)) return fail();
    const s = scalar();
    if (s === 'None' && use !== 'ret') return fail();
    return s;
  }
  if (d.pointers === 1) {
    if (opaque.has(d.base)) return 'c_void_p';
    if (structs.has(d.base)) return `POINTER(${d.base})`;
    if (d.base === 'char') return d.constBase ? 'c_char_p' : 'c_void_p';
    if (d.base === 'void') return 'c_void_p';
    if (d.base in SCALARS || enums.has(d.base)) return use === 'ret' ? `POINTER(${scalar()})` : 'c_void_p';
    return fail();
  }
  if (d.pointers === 2) {
    if (opaque.has(d.base) && use === 'arg') return 'POINTER(c_void_p)';
    if (d.base === 'char' && d.constBase && use === 'arg') return 'POINTER(c_char_p)';
  }
  return fail();
}

export function emitPythonFfi(p: Protocol, header: string): string {
  const h = parseHeader(header);
  const enums = new Set(['heddle_status', 'heddle_dtype', 'heddle_format']);
  const o: string[] = [];
  o.push('"""ctypes declarations of libheddle, read from bindings/c/include/heddle.h: its structs, the');
  o.push('progress callback type and every function\'s prototype. `bind(lib)` sets argtypes and restype');
  o.push('on a loaded library. Data pointers are c_void_p: pass numpy addresses or ctypes buffers."""');
  o.push('');
  o.push('from __future__ import annotations');
  o.push('');
  o.push('import ctypes');
  o.push('from ctypes import (  # noqa: F401');
  o.push('    CFUNCTYPE,');
  o.push('    POINTER,');
  o.push('    Structure,');
  o.push('    c_char,');
  o.push('    c_char_p,');
  o.push('    c_double,');
  o.push('    c_float,');
  o.push('    c_int,');
  o.push('    c_int32,');
  o.push('    c_int64,');
  o.push('    c_size_t,');
  o.push('    c_uint32,');
  o.push('    c_uint64,');
  o.push('    c_void_p,');
  o.push(')');
  o.push('from typing import Any, Dict, List, Tuple');
  o.push('');
  o.push('#: The libheddle version these declarations were generated against (HEDDLE_LIB_VERSION).');
  const ver = /#define HEDDLE_LIB_VERSION "([^"]+)"/.exec(header)?.[1];
  if (!ver) throw new Error(`python: no HEDDLE_LIB_VERSION in ${HEADER}`);
  o.push(`LIB_VERSION = ${pyStr(ver)}`);
  o.push('#: Opaque handle types (passed as c_void_p).');
  o.push(`OPAQUE = (${h.opaque.map(pyStr).join(', ')}${h.opaque.length === 1 ? ',' : ''})`);
  const names: string[] = [];
  for (const t of h.types) {
    o.push('');
    o.push('');
    if (t.kind === 'struct') {
      o.push(`class ${t.s.name}(Structure):`);
      o.push('    _fields_ = [');
      for (const f of t.s.fields) o.push(`        (${pyStr(f.name)}, ${ctypeOf(f, 'field', h, enums, `${t.s.name}.${f.name}`)}),`);
      o.push('    ]');
      names.push(t.s.name);
    } else {
      const args = [ctypeOf(t.c.ret, 'ret', h, enums, t.c.name), ...t.c.params.map((a) => ctypeOf(a, 'arg', h, enums, `${t.c.name}(${a.name})`))];
      o.push(`${t.c.name} = CFUNCTYPE(${args.join(', ')})`);
      names.push(t.c.name);
    }
  }
  o.push('');
  o.push('');
  o.push('#: name -> (restype, argtypes, parameter names), in header order.');
  o.push('FUNCTIONS: Dict[str, Tuple[Any, List[Any], Tuple[str, ...]]] = {');
  for (const f of h.functions) {
    const ret = ctypeOf(f.ret, 'ret', h, enums, f.name);
    const args = f.params.map((a) => ctypeOf(a, 'arg', h, enums, `${f.name}(${a.name})`));
    const pnames = f.params.map((a) => pyStr(a.name));
    o.push(`    ${pyStr(f.name)}: (${ret}, [${args.join(', ')}], (${pnames.join(', ')}${pnames.length === 1 ? ',' : ''})),`);
  }
  o.push('}');
  o.push('');
  o.push('');
  o.push('def bind(lib: ctypes.CDLL) -> ctypes.CDLL:');
  o.push('    """Declares every libheddle function on `lib`; raises AttributeError if one is missing."""');
  o.push('    for name, (restype, argtypes, _) in FUNCTIONS.items():');
  o.push('        fn = getattr(lib, name)');
  o.push('        fn.restype = restype');
  o.push('        fn.argtypes = argtypes');
  o.push('    return lib');
  o.push('');
  o.push('');
  o.push(`__all__ = [${['LIB_VERSION', 'OPAQUE', ...names, 'FUNCTIONS', 'bind'].map(pyStr).join(', ')}]`);
  return o.join('\n') + '\n';
}

/** Every Python file, repo-relative path -> contents (without the generated mark). */
export function emitPython(p: Protocol, root: string): [string, string][] {
  const header = readFileSync(join(root, HEADER), 'utf8');
  return [
    [`${PYTHON_GENERATED_DIR}/__init__.py`, '"""Code generated from schemas/heddle.fbs and bindings/c/include/heddle.h (see scripts/gen/python.ts)."""\n'],
    [`${PYTHON_GENERATED_DIR}/abi.py`, emitPythonAbi(p)],
    [`${PYTHON_GENERATED_DIR}/ffi.py`, emitPythonFfi(p, header)],
  ];
}
