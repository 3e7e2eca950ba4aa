/**
 * C# emitters for bindings/csharp (the `Heddle` .NET library over libheddle):
 *
 *   Abi.g.cs         the ABI version and identifiers; enums Status (every ErrorCode), DType,
 *                    NetworkFormat, with their doc comments; status names and descriptions
 *   Exceptions.g.cs  one exception type per error code (HeddleException subclasses) and the
 *                    factory that maps a status to its type
 *   Native.g.cs      P/Invoke ([LibraryImport]) prototypes and struct layouts for every
 *                    HEDDLE_API function and struct of bindings/c/include/heddle.h
 *
 * The enums and exceptions come from the schema (the Protocol); the prototypes come from
 * libheddle's C header, parsed here (the header is the C ABI's one definition), so adding a
 * function to heddle.h without regenerating fails `npm run gen:bindings -- --check`. Every C
 * type in the header must have a mapping below; an unknown one stops the generator.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Protocol } from './protocol.ts';

/** Where the generated C# files go (every file there is generated). */
export const CSHARP_GENERATED_DIR = 'bindings/csharp/Heddle/Generated';
/** The header the prototypes are read from. */
export const HEDDLE_H = 'bindings/c/include/heddle.h';

// ------------------------------------------------------------------ naming and docs

/** CONFIG_INVALID -> ConfigInvalid; F32 stays F32 (short dtype names keep their case). */
export function pascal(name: string): string {
  if (/^[A-Z]+\d+$/.test(name)) return name;
  return name
    .toLowerCase()
    .split('_')
    .filter(Boolean)
    .map((w) => w[0].toUpperCase() + w.slice(1))
    .join('');
}

/** Exception type names that would shadow a System exception get the Heddle prefix. */
const SYSTEM_EXCEPTIONS = new Set([
  'TimeoutException', 'ArgumentException', 'InvalidOperationException', 'NotSupportedException', 'IOException',
  'FormatException', 'OverflowException', 'OperationCanceledException', 'ObjectDisposedException', 'Exception',
]);

export function exceptionName(code: string): string {
  const n = `${pascal(code)}Exception`;
  return SYSTEM_EXCEPTIONS.has(n) ? `Heddle${n}` : n;
}

function xml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function summary(text: string, indent: string): string[] {
  const t = text.replace(/\s+/g, ' ').trim();
  if (!t) return [];
  return [`${indent}/// <summary>${xml(t)}</summary>`];
}

function csString(s: string): string {
  return JSON.stringify(s);
}

// ------------------------------------------------------------------ heddle.h

export interface CParam {
  type: string;
  name: string;
}

export interface CFunction {
  name: string;
  ret: string;
  params: CParam[];
  doc: string;
}

export interface CStruct {
  name: string;
  doc: string;
  fields: { type: string; name: string; doc: string }[];
}

export interface CHeader {
  opaque: string[];
  structs: CStruct[];
  callbacks: { name: string; ret: string; params: CParam[] }[];
  functions: CFunction[];
}

/** A comment's text; section dividers (a comment of dashes and a word) are not docs. */
function commentText(c: string): string {
  const t = c
    .replace(/^\/\*+/, '')
    .replace(/\*+\/$/, '')
    .split('\n')
    .map((l) => l.replace(/^\s*\*\s?/, '').trim())
    .join(' ')
    .replace(/\s+/g, ' ')
    .trim();
  return /^-{4,}/.test(t) ? '' : t;
}

/** `const int64_t *shape` -> { type: 'const int64_t *', name: 'shape' }. */
function splitDecl(decl: string, where: string): CParam {
  const m = /^(.*?)(\w+)\s*$/.exec(decl.trim());
  if (!m || !m[1].trim()) throw new Error(`csharp emitter: cannot read the declaration '${decl}' (${where})`);
  return { type: normType(m[1]), name: m[2] };
}

/** Canonical spelling of a C type: single spaces, `*` attached as ` *`. */
function normType(t: string): string {
  return t
    .replace(/\*/g, ' * ')
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/ \* \*/g, ' **')
    .replace(/\* const \*/g, '*const *');
}

function parseParams(list: string, where: string): CParam[] {
  const l = list.trim();
  if (l === 'void' || l === '') return [];
  return l.split(',').map((p) => splitDecl(p, where));
}

/** Reads the declarations of libheddle's public header. */
export function parseHeddleHeader(text: string): CHeader {
  const h: CHeader = { opaque: [], structs: [], callbacks: [], functions: [] };
  for (const m of text.matchAll(/typedef struct (\w+) (\w+);/g)) {
    if (m[1] !== m[2]) throw new Error(`csharp emitter: typedef struct ${m[1]} ${m[2]}: names differ`);
    h.opaque.push(m[1]);
  }
  const comment = String.raw`(\/\*(?:(?!\*\/)[\s\S])*\*\/\s*)?`;
  for (const m of text.matchAll(new RegExp(`${comment}typedef struct (\\w+) \\{([\\s\\S]*?)\\} (\\w+);`, 'g'))) {
    const [, doc, name, body, name2] = m;
    if (name !== name2) throw new Error(`csharp emitter: struct ${name} is typedef'd as ${name2}`);
    const fields: CStruct['fields'] = [];
    let pending = '';
    // Comments: block comments before a field, or one after it on the same line.
    const lines = body.replace(/\/\*[\s\S]*?\*\//g, (c) => `\u0001${commentText(c).replace(/\n/g, ' ')}\u0002`).split('\n');
    for (const raw of lines) {
      const line = raw.trim();
      if (!line) continue;
      const fm = /^([^\u0001;]+);\s*(?:\u0001([^\u0002]*)\u0002)?$/.exec(line);
      if (fm) {
        const d = splitDecl(fm[1], `struct ${name}`);
        fields.push({ type: d.type, name: d.name, doc: [pending, fm[2] ?? ''].filter(Boolean).join(' ') });
        pending = '';
        continue;
      }
      const cm = /^\u0001([^\u0002]*)\u0002$/.exec(line);
      if (cm) {
        pending = [pending, cm[1]].filter(Boolean).join(' ');
        continue;
      }
      throw new Error(`csharp emitter: cannot read the line '${line}' of struct ${name}`);
    }
    h.structs.push({ name, doc: doc ? commentText(doc.trim()) : '', fields });
  }
  for (const m of text.matchAll(/typedef (\w[\w\s*]*?)\s*\(\*(\w+)\)\(([^)]*)\);/g)) {
    h.callbacks.push({ name: m[2], ret: normType(m[1]), params: parseParams(m[3], `callback ${m[2]}`) });
  }
  for (const m of text.matchAll(new RegExp(`${comment}HEDDLE_API ([^;(]*?)\\b(\\w+)\\(([^)]*)\\);`, 'g'))) {
    const [, doc, ret, name, params] = m;
    h.functions.push({ name, ret: normType(ret), params: parseParams(params, name), doc: doc ? commentText(doc.trim()) : '' });
  }
  if (!h.functions.length) throw new Error('csharp emitter: no HEDDLE_API functions found in heddle.h');
  return h;
}

// ------------------------------------------------------------------ C types -> C#

const SCALARS: Record<string, string> = {
  void: 'void',
  int: 'int',
  int32_t: 'int',
  uint32_t: 'uint',
  int64_t: 'long',
  uint64_t: 'ulong',
  size_t: 'nuint',
  float: 'float',
  double: 'double',
  char: 'byte',
  heddle_status: 'Status',
  heddle_dtype: 'DType',
  heddle_format: 'NetworkFormat',
};

/** heddle_engine_options -> HeddleEngineOptions (the native struct's C# name). */
export function structName(c: string): string {
  return c
    .split('_')
    .map((w) => w[0].toUpperCase() + w.slice(1))
    .join('');
}

type Ctx = 'param' | 'return' | 'field';

function mapType(h: CHeader, cType: string, ctx: Ctx, where: string): string {
  const t = cType.replace(/^const /, '').replace(/ const\b/g, '');
  const base = t.replace(/[\s*]+$/, '').replace(/\*const/g, '').trim();
  const stars = (t.match(/\*/g) ?? []).length;
  const fail = (): never => {
    throw new Error(`csharp emitter: no C# mapping for the C type '${cType}' (${where}); add one to scripts/gen/csharp.ts`);
  };
  // Strings in: UTF-8 marshalled by the generated stub (parameters only).
  if (base === 'char' && stars === 1 && ctx === 'param' && cType.startsWith('const ')) return 'string?';
  if (h.opaque.includes(base)) {
    if (stars === 1) return 'nint';
    if (stars === 2) return 'nint*';
    return fail();
  }
  const cb = h.callbacks.find((c) => c.name === base);
  if (cb) {
    if (stars !== 0) return fail();
    const ps = cb.params.map((p) => mapType(h, p.type, 'field', `${cb.name}.${p.name}`));
    return `delegate* unmanaged<${[...ps, mapType(h, cb.ret, 'return', cb.name)].join(', ')}>`;
  }
  const st = h.structs.find((s) => s.name === base);
  if (st) {
    if (stars === 0 && ctx !== 'return') return structName(base);
    return structName(base) + '*'.repeat(stars);
  }
  const s = SCALARS[base];
  if (s === undefined) return fail();
  if (s === 'void' && stars === 0 && ctx !== 'return') return fail();
  return s + '*'.repeat(stars);
}

// ------------------------------------------------------------------ emitters

const HEADER = ['// <auto-generated/>', '#nullable enable'];

export function emitCSharpAbi(p: Protocol): string {
  const [maj, min, pat] = p.abiVersion;
  const out: string[] = [...HEADER, 'namespace Heddle;', ''];
  out.push('/// <summary>The Heddle ABI this library speaks (schemas/heddle.fbs).</summary>');
  out.push('public static class Abi');
  out.push('{');
  out.push('    /// <summary>The ABI\'s semantic version: an engine serves clients of the same major version.</summary>');
  out.push(`    public const int VersionMajor = ${maj};`);
  out.push(`    public const int VersionMinor = ${min};`);
  out.push(`    public const int VersionPatch = ${pat};`);
  out.push(`    public const string Version = "${maj}.${min}.${pat}";`);
  out.push('    /// <summary>File identifier of request buffers (client to engine).</summary>');
  out.push(`    public const string RequestIdentifier = ${csString(p.requestIdentifier)};`);
  out.push('    /// <summary>File identifier of response buffers (engine to client).</summary>');
  out.push(`    public const string ResponseIdentifier = ${csString(p.responseIdentifier)};`);
  out.push('');
  out.push('    /// <summary>The ABI name of a status ("CONFIG_INVALID"), or null for a number this version does not know.</summary>');
  out.push('    public static string? StatusName(int code) => code switch');
  out.push('    {');
  for (const e of p.errorCodes) out.push(`        ${e.value} => ${csString(e.name)},`);
  out.push('        _ => null,');
  out.push('    };');
  out.push('');
  out.push('    /// <summary>The schema\'s one-line description of a status, or null for a number this version does not know.</summary>');
  out.push('    public static string? StatusDoc(int code) => code switch');
  out.push('    {');
  for (const e of p.errorCodes) out.push(`        ${e.value} => ${csString(e.docs.join(' '))},`);
  out.push('        _ => null,');
  out.push('    };');
  out.push('}');
  out.push('');
  out.push('/// <summary>');
  out.push('/// The result of every libheddle call: <see cref="Ok"/> or an error code. Codes 1..599 come from the');
  out.push('/// engine; 600 and up are raised by the client library itself. The numbers are the ABI\'s');
  out.push('/// ErrorCode values and never change; a number this version does not know is still an error.');
  out.push('/// </summary>');
  out.push('public enum Status');
  out.push('{');
  for (const e of p.errorCodes) {
    out.push(...summary(e.docs.join(' '), '    '));
    out.push(`    ${pascal(e.name)} = ${e.value},`);
  }
  out.push('}');
  out.push('');
  out.push('/// <summary>Element type of a tensor.</summary>');
  out.push('public enum DType');
  out.push('{');
  for (const d of p.dtypes) {
    out.push(...summary(d.docs.join(' '), '    '));
    out.push(`    ${pascal(d.name)} = ${d.value},`);
  }
  out.push('}');
  out.push('');
  out.push('/// <summary>How a whole network (config and weights) is serialized.</summary>');
  out.push('public enum NetworkFormat');
  out.push('{');
  for (const f of p.formats) {
    out.push(...summary(f.docs.join(' '), '    '));
    out.push(`    ${pascal(f.name)} = ${f.value},`);
  }
  out.push('}');
  return out.join('\n') + '\n';
}

export function emitCSharpExceptions(p: Protocol): string {
  const out: string[] = [...HEADER, 'namespace Heddle;', ''];
  const codes = p.errorCodes.filter((e) => e.value !== 0);
  out.push('public partial class HeddleException');
  out.push('{');
  out.push('    /// <summary>The exception for a failed status: the type of its code, or a plain HeddleException for a code this version does not know.</summary>');
  out.push('    public static HeddleException FromStatus(int code, string message) => code switch');
  out.push('    {');
  for (const e of codes) out.push(`        ${e.value} => new ${exceptionName(e.name)}(message),`);
  out.push('        _ => new HeddleException(code, message),');
  out.push('    };');
  out.push('}');
  for (const e of codes) {
    const n = exceptionName(e.name);
    out.push('');
    out.push(...summary(`${e.name} (${e.value}): ${e.docs.join(' ')}`, ''));
    out.push(`public sealed class ${n} : HeddleException`);
    out.push('{');
    out.push(`    public ${n}(string message) : base(${e.value}, message) { }`);
    out.push('}');
  }
  return out.join('\n') + '\n';
}

export function emitCSharpNative(h: CHeader): string {
  const out: string[] = [...HEADER, `// The prototypes and structs below are read from ${HEDDLE_H} (libheddle's C API).`, 'using System.Runtime.InteropServices;', '', 'namespace Heddle.Interop;', ''];
  for (const s of h.structs) {
    out.push(...summary(s.doc || `The C struct ${s.name} (heddle.h).`, ''));
    out.push('[StructLayout(LayoutKind.Sequential)]');
    out.push(`internal unsafe struct ${structName(s.name)}`);
    out.push('{');
    for (const f of s.fields) {
      out.push(...summary(f.doc, '    '));
      out.push(`    public ${mapType(h, f.type, 'field', `${s.name}.${f.name}`)} ${f.name};`);
    }
    out.push('}');
    out.push('');
  }
  out.push('/// <summary>libheddle\'s C functions (bindings/c/include/heddle.h), one to one.</summary>');
  out.push('internal static unsafe partial class Native');
  out.push('{');
  out.push('    /// <summary>The native library\'s name: libheddle.so, found next to the assembly or under runtimes/linux-x64/native.</summary>');
  out.push('    public const string Library = "heddle";');
  for (const f of h.functions) {
    const params = f.params.map((p) => `${mapType(h, p.type, 'param', `${f.name}(${p.name})`)} ${p.name === 'out' ? '@out' : p.name}`);
    out.push('');
    out.push(...summary(f.doc, '    '));
    out.push('    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]');
    out.push(`    internal static partial ${mapType(h, f.ret, 'return', f.name)} ${f.name}(${params.join(', ')});`);
  }
  out.push('}');
  return out.join('\n') + '\n';
}

/** Every generated C# file: repo-relative path -> contents (the generator adds its mark line). */
export function emitCSharp(p: Protocol, root: string): Map<string, string> {
  return emitCSharpFiles(p, readFileSync(join(root, HEDDLE_H), 'utf8'));
}

export function emitCSharpFiles(p: Protocol, heddleHeader: string): Map<string, string> {
  const h = parseHeddleHeader(heddleHeader);
  return new Map([
    [`${CSHARP_GENERATED_DIR}/Abi.g.cs`, emitCSharpAbi(p)],
    [`${CSHARP_GENERATED_DIR}/Exceptions.g.cs`, emitCSharpExceptions(p)],
    [`${CSHARP_GENERATED_DIR}/Native.g.cs`, emitCSharpNative(h)],
  ]);
}
