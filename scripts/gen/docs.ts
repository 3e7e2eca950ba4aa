/** Emits schemas/REFERENCE.md: every call, table and error code with the schema's doc comments. */
import type { Protocol } from './protocol.ts';
import { BaseType, type SField, type SObject, type SType, type SchemaModel, scalarSize } from './schema.ts';

function typeName(m: SchemaModel, t: SType, elem = false): string {
  const b = elem ? t.element : t.base;
  switch (b) {
    case BaseType.Vector:
      return `[${typeName(m, t, true)}]`;
    case BaseType.Obj:
      return m.objects[t.index].short;
    case BaseType.Union:
    case BaseType.UType:
      return m.enums[t.index].short;
    case BaseType.String:
      return 'string';
    default: {
      if (t.index >= 0 && !elem) return m.enums[t.index].short;
      if (t.index >= 0 && elem) return m.enums[t.index].short;
      return BaseType[b].toLowerCase();
    }
  }
}

function fieldRow(m: SchemaModel, f: SField): string {
  const flags = [f.required ? 'required' : '', f.optional && scalarSize(f.type.base) > 0 ? 'optional: may be absent' : '', f.attributes.force_align ? `aligned ${f.attributes.force_align}` : ''].filter(Boolean).join(', ');
  return `| \`${f.name}\` | ${typeName(m, f.type)}${flags ? ` (${flags})` : ''} | ${f.docs.join(' ').replace(/\|/g, '\\|')} |`;
}

function table(m: SchemaModel, o: SObject): string[] {
  const fields = o.fields.filter((f) => f.type.base !== BaseType.UType && !f.deprecated);
  const out = [`#### ${o.short}${o.isStruct ? ' (struct)' : ''}`, ''];
  if (o.docs.length) out.push(o.docs.join(' '), '');
  if (!fields.length) return [...out, '(no fields)', ''];
  out.push('| field | type | meaning |', '|---|---|---|', ...fields.map((f) => fieldRow(m, f)), '');
  return out;
}

export function emitReference(p: Protocol): string {
  const m = p.model;
  const [maj, min, pat] = p.abiVersion;
  const out: string[] = [];
  out.push('# Heddle ABI reference');
  out.push('');
  out.push(`ABI version **${maj}.${min}.${pat}**. Requests carry file identifier \`${p.requestIdentifier}\`, responses \`${p.responseIdentifier}\`.`);
  out.push('The wire format, the handshake, handles and the versioning rule are in [docs/abi.md](../docs/abi.md).');
  out.push('');
  out.push('## Calls');
  out.push('');
  out.push('| value | call | request | response | streams |');
  out.push('|---|---|---|---|---|');
  for (const c of p.calls) out.push(`| ${c.tag} | ${c.name} | ${c.request.short} | ${c.response.short} | ${c.progress ? c.progress.short : ''} |`);
  out.push('');
  for (const c of p.calls) {
    out.push(`### ${c.name}`, '');
    out.push(...table(m, c.request), ...table(m, c.response));
    if (c.progress) out.push(...table(m, c.progress));
  }
  out.push('## Envelopes and value types', '');
  const used = new Set(p.calls.flatMap((c) => [c.request.name, c.response.name, c.progress?.name ?? '']));
  for (const o of m.objects) if (o.name.startsWith('heddle.') && !used.has(o.name)) out.push(...table(m, o));
  out.push('## Error codes', '');
  out.push('| code | name | meaning |', '|---|---|---|');
  for (const e of p.errorCodes) out.push(`| ${e.value} | ${e.name} | ${e.docs.join(' ')} |`);
  out.push('');
  out.push('## DType', '', '| value | name | |', '|---|---|---|');
  for (const d of p.dtypes) out.push(`| ${d.value} | ${d.name} | ${d.docs.join(' ')} |`);
  out.push('');
  return out.join('\n');
}
