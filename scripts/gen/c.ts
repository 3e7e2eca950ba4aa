/**
 * C emitters: heddle_abi.h (status codes, dtypes, formats and the ABI version for
 * bindings/c/include/heddle.h) and an X-macro table of status names and descriptions for
 * libheddle's heddle_status_name / heddle_status_doc. flatc --cpp writes the message code.
 */
import type { Protocol } from './protocol.ts';

function cdoc(lines: string[], indent: string): string[] {
  const text = lines.join(' ').trim();
  if (!text) return [];
  return [`${indent}/** ${text.replace(/\*\//g, '* /')} */`];
}

function cstr(s: string): string {
  return JSON.stringify(s).replace(/\?\?/g, '?\\?');
}

export function emitCAbiHeader(p: Protocol): string {
  const [maj, min, pat] = p.abiVersion;
  const out: string[] = [];
  out.push('/* The Heddle ABI constants for C, from schemas/heddle.fbs. Included by heddle.h. */');
  out.push('#ifndef HEDDLE_ABI_H');
  out.push('#define HEDDLE_ABI_H');
  out.push('');
  out.push('/* The ABI\'s semantic version: an engine serves clients of the same major version. */');
  out.push(`#define HEDDLE_ABI_VERSION_MAJOR ${maj}`);
  out.push(`#define HEDDLE_ABI_VERSION_MINOR ${min}`);
  out.push(`#define HEDDLE_ABI_VERSION_PATCH ${pat}`);
  out.push(`#define HEDDLE_ABI_VERSION_STRING "${maj}.${min}.${pat}"`);
  out.push('');
  out.push('/* File identifiers of request (client -> engine) and response buffers. */');
  out.push(`#define HEDDLE_REQUEST_IDENTIFIER ${cstr(p.requestIdentifier)}`);
  out.push(`#define HEDDLE_RESPONSE_IDENTIFIER ${cstr(p.responseIdentifier)}`);
  out.push('');
  out.push('/**');
  out.push(' * The result of every libheddle call: HEDDLE_OK (0) or an error code. Codes 1..599 come');
  out.push(' * from the engine; 600 and up are raised by libheddle itself. The numbers are the ABI\'s');
  out.push(' * ErrorCode values and never change.');
  out.push(' */');
  out.push('typedef enum heddle_status {');
  for (const e of p.errorCodes) {
    out.push(...cdoc(e.docs, '  '));
    out.push(`  ${e.value === 0 ? 'HEDDLE_OK' : `HEDDLE_E_${e.name}`} = ${e.value},`);
  }
  out.push('} heddle_status;');
  out.push('');
  out.push('/** Element type of a tensor. */');
  out.push('typedef enum heddle_dtype {');
  for (const d of p.dtypes) {
    out.push(...cdoc(d.docs, '  '));
    out.push(`  HEDDLE_DTYPE_${d.name} = ${d.value},`);
  }
  out.push('} heddle_dtype;');
  out.push('');
  out.push('/** How a whole network (config and weights) is serialized. */');
  out.push('typedef enum heddle_format {');
  for (const f of p.formats) {
    out.push(...cdoc(f.docs, '  '));
    out.push(`  HEDDLE_FORMAT_${f.name} = ${f.value},`);
  }
  out.push('} heddle_format;');
  out.push('');
  out.push('#endif /* HEDDLE_ABI_H */');
  return out.join('\n') + '\n';
}

/** `HEDDLE_STATUS_ENTRY(value, "NAME", "description")`, one line per code. */
export function emitCStatusTable(p: Protocol): string {
  const out: string[] = ['/* X-macro table of heddle_status values: define HEDDLE_STATUS_ENTRY(value, name, doc) and include. */'];
  for (const e of p.errorCodes) out.push(`HEDDLE_STATUS_ENTRY(${e.value}, ${cstr(e.name)}, ${cstr(e.docs.join(' '))})`);
  return out.join('\n') + '\n';
}
