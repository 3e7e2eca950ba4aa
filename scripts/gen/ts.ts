/**
 * TypeScript emitters: the verifier driver (one function per table) and the protocol
 * constants (ABI version, identifiers, calls, error codes). flatc writes the message code.
 */
import type { Protocol } from './protocol.ts';
import { BaseType, type SField, type SObject, type SchemaModel, scalarSize } from './schema.ts';

const FB = './fb/heddle/abi';

function fileOf(short: string): string {
  // flatc's TS file naming: CamelCase -> kebab-case.
  return short.replace(/([a-z0-9])([A-Z])/g, '$1-$2').replace(/([A-Z])([A-Z][a-z])/g, '$1-$2').toLowerCase();
}

function fieldCheck(m: SchemaModel, o: SObject, f: SField): string | null {
  if (f.deprecated) return null;
  const voff = f.offset;
  const req = f.required ? ', true' : '';
  const name = JSON.stringify(f.name);
  const t = f.type;
  switch (t.base) {
    case BaseType.UType:
      return null; // checked with its union
    case BaseType.Bool:
    case BaseType.Byte:
    case BaseType.UByte:
    case BaseType.Short:
    case BaseType.UShort:
    case BaseType.Int:
    case BaseType.UInt:
    case BaseType.Long:
    case BaseType.ULong:
    case BaseType.Float:
    case BaseType.Double:
      return `  v.inline(t, ${voff}, ${scalarSize(t.base)}, ${name});`;
    case BaseType.String:
      return `  v.string(t, ${voff}, ${name}${req});`;
    case BaseType.Obj: {
      const sub = m.objects[t.index];
      if (sub.isStruct) return `  v.inline(t, ${voff}, ${sub.bytesize}, ${name}${req});`;
      return `  {\n    const p = v.table(t, ${voff}, ${name}${req});\n    if (p !== 0) verify${sub.short}(v, p);\n  }`;
    }
    case BaseType.Vector: {
      const reqArg = f.required ? 'true' : 'false';
      if (t.element === BaseType.String) return `  v.strings(t, ${voff}, ${name}${req});`;
      if (t.element === BaseType.Obj) {
        const sub = m.objects[t.index];
        if (sub.isStruct) return `  v.vector(t, ${voff}, ${sub.bytesize}, ${name}${req});`;
        return `  v.tableVector(t, ${voff}, ${name}, ${reqArg}, (p) => verify${sub.short}(v, p));`;
      }
      const size = scalarSize(t.element);
      if (size === 0) throw new Error(`ts emitter: ${o.short}.${f.name}: vectors of ${BaseType[t.element]} are not supported`);
      return `  v.vector(t, ${voff}, ${size}, ${name}${req});`;
    }
    case BaseType.Union: {
      const u = m.enums[t.index];
      const cases = u.values
        .filter((x) => x.value !== 0n && x.unionType)
        .map((x) => `      case ${x.value}:\n        verify${m.objects[x.unionType!.index].short}(v, p);\n        break;`);
      return `  {\n    const [type, p] = v.union(t, ${voff}, ${name}${req});\n    switch (type) {\n${cases.join('\n')}\n      default:\n        break; // NONE or a type this version does not know: the caller decides\n    }\n  }`;
    }
    default:
      throw new Error(`ts emitter: ${o.short}.${f.name}: ${BaseType[t.base]} fields are not supported`);
  }
}

export function emitTsVerify(p: Protocol): string {
  const m = p.model;
  const out: string[] = [];
  out.push(`/**\n * Verifiers for every table of the Heddle ABI: one function per table, driving the\n * checks in abi/engine/verifier.ts.\n */`);
  out.push(`import { type TableRef, Verifier, type VerifierLimits } from '../verifier.ts';`);
  out.push('');
  out.push(`export { VerifyError } from '../verifier.ts';`);
  for (const o of m.objects) {
    if (o.isStruct || !o.name.startsWith('heddle.')) continue;
    out.push('');
    out.push(`export function verify${o.short}(v: Verifier, pos: number): void {`);
    out.push(`  const t: TableRef = v.enter(pos, ${JSON.stringify(o.short)});`);
    for (const f of o.fields) {
      const c = fieldCheck(m, o, f);
      if (c) out.push(c);
    }
    out.push('  v.leave();');
    out.push('}');
  }
  out.push('');
  out.push(`/** Verifies a whole Request buffer (file identifier ${JSON.stringify(p.requestIdentifier)}); throws VerifyError. */`);
  out.push(`export function verifyRequestBuffer(bytes: Uint8Array, limits?: VerifierLimits): void {`);
  out.push(`  const v = new Verifier(bytes, limits);`);
  out.push(`  verifyRequest(v, v.root(${JSON.stringify(p.requestIdentifier)}));`);
  out.push('}');
  out.push('');
  out.push(`/** Verifies a whole Response buffer (file identifier ${JSON.stringify(p.responseIdentifier)}); throws VerifyError. */`);
  out.push(`export function verifyResponseBuffer(bytes: Uint8Array, limits?: VerifierLimits): void {`);
  out.push(`  const v = new Verifier(bytes, limits);`);
  out.push(`  verifyResponse(v, v.root(${JSON.stringify(p.responseIdentifier)}));`);
  out.push('}');
  return out.join('\n') + '\n';
}

export function emitTsAbi(p: Protocol): string {
  const [maj, min, pat] = p.abiVersion;
  const out: string[] = [];
  out.push(`/** The Heddle ABI's protocol constants, from schemas/heddle.fbs. */`);
  out.push(`import { ErrorCode } from '${FB}/${fileOf('ErrorCode')}.ts';`);
  out.push(`import { RequestBody } from '${FB}/${fileOf('RequestBody')}.ts';`);
  out.push(`import { ResponseBody } from '${FB}/${fileOf('ResponseBody')}.ts';`);
  out.push('');
  out.push(`/** The ABI's semantic version (rpc_service Engine's abi_version): same major = compatible. */`);
  out.push(`export const ABI_VERSION = { major: ${maj}, minor: ${min}, patch: ${pat} } as const;`);
  out.push(`export const ABI_VERSION_STRING = '${maj}.${min}.${pat}';`);
  out.push(`/** File identifier of Request buffers (client -> engine). */`);
  out.push(`export const REQUEST_IDENTIFIER = ${JSON.stringify(p.requestIdentifier)};`);
  out.push(`/** File identifier of Response buffers (engine -> client). */`);
  out.push(`export const RESPONSE_IDENTIFIER = ${JSON.stringify(p.responseIdentifier)};`);
  out.push('');
  out.push(`export interface CallInfo {`);
  out.push(`  readonly name: string;`);
  out.push(`  readonly request: RequestBody;`);
  out.push(`  /** The final result's ResponseBody value (equal to request). */`);
  out.push(`  readonly response: ResponseBody;`);
  out.push(`  /** Streaming calls send progress frames (ResponseBody value \`progress\`) before the result. */`);
  out.push(`  readonly streaming: boolean;`);
  out.push(`  readonly progress: ResponseBody | null;`);
  out.push(`}`);
  out.push('');
  out.push(`/** Every call of rpc_service Engine, in schema order. */`);
  out.push(`export const CALLS: readonly CallInfo[] = [`);
  for (const c of p.calls) {
    out.push(
      `  { name: '${c.name}', request: RequestBody.${c.request.short}, response: ResponseBody.${c.response.short}, streaming: ${c.streaming}, progress: ${c.progress ? `ResponseBody.${c.progress.short}` : 'null'} },`,
    );
  }
  out.push(`];`);
  out.push('');
  out.push(`/** Calls by RequestBody value. */`);
  out.push(`export const CALL_BY_REQUEST: ReadonlyMap<number, CallInfo> = new Map(CALLS.map((c) => [c.request as number, c]));`);
  out.push('');
  out.push(`/** ResponseBody value of an Error. */`);
  out.push(`export const ERROR_TAG = ResponseBody.Error;`);
  out.push('');
  out.push(`/** Names of the error codes by value (ErrorCode[value] gives the same for known values). */`);
  out.push(`export const ERROR_CODE_NAMES: Readonly<Record<number, string>> = {`);
  for (const e of p.errorCodes) out.push(`  ${e.value}: '${e.name}',`);
  out.push(`};`);
  out.push('');
  out.push(`/** Error codes a client library raises itself (never sent by the engine). */`);
  out.push(`export const CLIENT_SIDE_ERROR_CODES: readonly ErrorCode[] = [${p.errorCodes.filter((e) => e.clientSide).map((e) => `ErrorCode.${e.name}`).join(', ')}];`);
  out.push('');
  out.push(`/** One line per error code, from the schema's doc comments. */`);
  out.push(`export const ERROR_CODE_DOCS: Readonly<Record<number, string>> = {`);
  for (const e of p.errorCodes) out.push(`  ${e.value}: ${JSON.stringify(e.docs.join(' '))},`);
  out.push(`};`);
  return out.join('\n') + '\n';
}
