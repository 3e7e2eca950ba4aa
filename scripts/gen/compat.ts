/**
 * The ABI's compatibility rule, checked mechanically. A released ABI version is frozen as a
 * snapshot (schemas/released/abi-X.Y.Z.json, written by `npm run gen:bindings -- --freeze`).
 * The current schema must stay compatible with every snapshot of its major version:
 * no table, field, enum value, union member or call removed, renumbered or retyped; structs
 * unchanged; and any addition needs a higher version than the snapshot's. docs/abi.md has
 * the rule in words.
 */
import type { Protocol } from './protocol.ts';
import { BaseType, type SType, type SchemaModel } from './schema.ts';

export interface FieldSnap {
  id: number;
  type: string;
  default: string;
  required: boolean;
}

export interface Snapshot {
  abi_version: string;
  request_identifier: string;
  response_identifier: string;
  tables: Record<string, { struct: boolean; bytesize: number; fields: Record<string, FieldSnap> }>;
  enums: Record<string, { union: boolean; underlying: string; values: Record<string, string> }>;
  calls: Record<string, { request: string; response: string; streaming: boolean }>;
}

function typeStr(m: SchemaModel, t: SType, elem = false): string {
  const b = elem ? t.element : t.base;
  if (b === BaseType.Vector) return `[${typeStr(m, t, true)}]`;
  if (b === BaseType.Obj) return m.objects[t.index].name;
  // Enum-typed scalars, union type fields and unions name their enum.
  if (t.index >= 0 && b !== BaseType.String) return `${BaseType[b]}:${m.enums[t.index].name}`;
  return BaseType[b];
}

export function snapshot(p: Protocol): Snapshot {
  const m = p.model;
  const tables: Snapshot['tables'] = {};
  for (const o of m.objects) {
    if (!o.name.startsWith('heddle.')) continue;
    const fields: Record<string, FieldSnap> = {};
    for (const f of o.fields) {
      const def = f.type.base === BaseType.Float || f.type.base === BaseType.Double ? String(f.defaultReal) : String(f.defaultInteger);
      fields[f.name] = { id: f.id, type: typeStr(m, f.type), default: f.optional ? 'null' : def, required: f.required };
    }
    tables[o.name] = { struct: o.isStruct, bytesize: o.isStruct ? o.bytesize : 0, fields };
  }
  const enums: Snapshot['enums'] = {};
  for (const e of m.enums) {
    if (!e.name.startsWith('heddle.')) continue;
    enums[e.name] = { union: e.isUnion, underlying: BaseType[e.underlying.base], values: Object.fromEntries(e.values.map((v) => [v.name, String(v.value)])) };
  }
  const calls: Snapshot['calls'] = {};
  for (const c of p.calls) calls[c.name] = { request: c.request.name, response: c.response.name, streaming: c.streaming };
  return {
    abi_version: p.abiVersion.join('.'),
    request_identifier: p.requestIdentifier,
    response_identifier: p.responseIdentifier,
    tables,
    enums,
    calls,
  };
}

function semver(v: string): number[] {
  return v.split('.').map(Number);
}

function newer(a: string, b: string): boolean {
  const [x, y] = [semver(a), semver(b)];
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] > y[i];
  return false;
}

/** Problems that make `cur` incompatible with the released `old` (empty: compatible). */
export function compatibilityProblems(old: Snapshot, cur: Snapshot): string[] {
  const out: string[] = [];
  const [om] = semver(old.abi_version);
  const [cm] = semver(cur.abi_version);
  if (cm !== om) return cm > om ? [] : [`ABI ${cur.abi_version} is older than the released ${old.abi_version}`];
  if (newer(old.abi_version, cur.abi_version)) out.push(`ABI ${cur.abi_version} is older than the released ${old.abi_version}`);
  if (old.request_identifier !== cur.request_identifier || old.response_identifier !== cur.response_identifier) out.push('file identifiers changed');
  let added = false;
  for (const [name, t] of Object.entries(old.tables)) {
    const c = cur.tables[name];
    if (!c) {
      out.push(`table ${name} was removed`);
      continue;
    }
    if (t.struct !== c.struct) out.push(`${name} changed between struct and table`);
    if (t.struct && JSON.stringify(t) !== JSON.stringify(c)) out.push(`struct ${name} changed (structs can never change)`);
    for (const [fname, f] of Object.entries(t.fields)) {
      const g = c.fields[fname];
      if (!g) out.push(`field ${name}.${fname} was removed (deprecate it instead)`);
      else if (g.id !== f.id || g.type !== f.type || g.default !== f.default) out.push(`field ${name}.${fname} changed: ${JSON.stringify(f)} -> ${JSON.stringify(g)}`);
      else if (g.required && !f.required) out.push(`field ${name}.${fname} became required`);
    }
    if (Object.keys(c.fields).length > Object.keys(t.fields).length) added = true;
  }
  for (const [name, e] of Object.entries(old.enums)) {
    const c = cur.enums[name];
    if (!c) {
      out.push(`enum ${name} was removed`);
      continue;
    }
    if (c.underlying !== e.underlying) out.push(`enum ${name} changed its type`);
    for (const [v, n] of Object.entries(e.values)) if (c.values[v] !== n) out.push(`${name}.${v} was ${n}, is ${c.values[v] ?? 'removed'}`);
    if (Object.keys(c.values).length > Object.keys(e.values).length) added = true;
  }
  for (const [name, call] of Object.entries(old.calls)) {
    const c = cur.calls[name];
    if (!c) out.push(`call ${name} was removed`);
    else if (JSON.stringify(c) !== JSON.stringify(call)) out.push(`call ${name} changed`);
  }
  if (Object.keys(cur.tables).length > Object.keys(old.tables).length || Object.keys(cur.enums).length > Object.keys(old.enums).length || Object.keys(cur.calls).length > Object.keys(old.calls).length) {
    added = true;
  }
  if (added && !newer(cur.abi_version, old.abi_version)) out.push(`the schema grew since ${old.abi_version} but abi_version is still ${cur.abi_version}; bump the minor version`);
  return out;
}
