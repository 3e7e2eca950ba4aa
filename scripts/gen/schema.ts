/**
 * Reads a binary FlatBuffers schema (`flatc --binary --schema --bfbs-comments
 * --bfbs-builtins`, a .bfbs file) into a plain model the emitters walk. The .bfbs is read
 * with the FlatBuffers TS runtime and the reader flatc generated from scripts/gen/reflection.fbs.
 */
import * as flatbuffers from 'flatbuffers';
import { BaseType } from './reflection/reflection/base-type.ts';
import type { KeyValue } from './reflection/reflection/key-value.ts';
import { Schema } from './reflection/reflection/schema.ts';
import type { Type } from './reflection/reflection/type.ts';

export { BaseType };

export interface SType {
  base: BaseType;
  /** Element type of a vector or array. */
  element: BaseType;
  /** Index into objects (Obj) or enums (enum-typed scalars, UType, Union); -1 otherwise. */
  index: number;
  fixedLength: number;
  baseSize: number;
  elementSize: number;
}

export interface SField {
  name: string;
  type: SType;
  id: number;
  /** vtable offset (tables) or byte offset (structs). */
  offset: number;
  defaultInteger: bigint;
  defaultReal: number;
  deprecated: boolean;
  required: boolean;
  optional: boolean;
  attributes: Record<string, string>;
  docs: string[];
}

export interface SObject {
  /** Fully qualified, e.g. `heddle.abi.Tensor`. */
  name: string;
  /** Without the namespace, e.g. `Tensor`. */
  short: string;
  /** In id order. */
  fields: SField[];
  isStruct: boolean;
  minalign: number;
  bytesize: number;
  attributes: Record<string, string>;
  docs: string[];
  file: string;
}

export interface SEnumVal {
  name: string;
  value: bigint;
  /** Union members: the member's type. */
  unionType: SType | null;
  docs: string[];
}

export interface SEnum {
  name: string;
  short: string;
  values: SEnumVal[];
  isUnion: boolean;
  underlying: SType;
  attributes: Record<string, string>;
  docs: string[];
  file: string;
}

export interface SCall {
  name: string;
  request: SObject;
  response: SObject;
  attributes: Record<string, string>;
  docs: string[];
}

export interface SService {
  name: string;
  short: string;
  calls: SCall[];
  attributes: Record<string, string>;
  docs: string[];
}

export interface SchemaModel {
  objects: SObject[];
  enums: SEnum[];
  fileIdent: string;
  fileExt: string;
  root: SObject | null;
  services: SService[];
}

function typeOf(t: Type | null): SType {
  if (!t) throw new Error('bfbs: field without a type');
  return {
    base: t.baseType(),
    element: t.element(),
    index: t.index(),
    fixedLength: t.fixedLength(),
    baseSize: t.baseSize(),
    elementSize: t.elementSize(),
  };
}

function attrs(n: number, at: (i: number) => KeyValue | null): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < n; i++) {
    const kv = at(i);
    if (kv) out[kv.key() ?? ''] = kv.value() ?? '';
  }
  return out;
}

function docs(n: number, at: (i: number) => string | null): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push((at(i) ?? '').replace(/^ /, ''));
  return out;
}

function shortName(name: string): string {
  const k = name.lastIndexOf('.');
  return k < 0 ? name : name.slice(k + 1);
}

/** Parses .bfbs bytes into a SchemaModel. */
export function readSchema(bytes: Uint8Array): SchemaModel {
  const bb = new flatbuffers.ByteBuffer(bytes);
  if (!Schema.bufferHasIdentifier(bb)) throw new Error('bfbs: not a binary schema (file identifier is not BFBS)');
  const s = Schema.getRootAsSchema(bb);
  const objects: SObject[] = [];
  for (let i = 0; i < s.objectsLength(); i++) {
    const o = s.objects(i)!;
    const fields: SField[] = [];
    for (let k = 0; k < o.fieldsLength(); k++) {
      const f = o.fields(k)!;
      fields.push({
        name: f.name()!,
        type: typeOf(f.type()),
        id: f.id(),
        offset: f.offset(),
        defaultInteger: f.defaultInteger(),
        defaultReal: f.defaultReal(),
        deprecated: f.deprecated(),
        required: f.required(),
        optional: f.optional(),
        attributes: attrs(f.attributesLength(), (j) => f.attributes(j)),
        docs: docs(f.documentationLength(), (j) => f.documentation(j)),
      });
    }
    fields.sort((a, b) => a.id - b.id);
    const name = o.name()!;
    objects.push({
      name,
      short: shortName(name),
      fields,
      isStruct: o.isStruct(),
      minalign: o.minalign(),
      bytesize: o.bytesize(),
      attributes: attrs(o.attributesLength(), (j) => o.attributes(j)),
      docs: docs(o.documentationLength(), (j) => o.documentation(j)),
      file: o.declarationFile() ?? '',
    });
  }
  const enums: SEnum[] = [];
  for (let i = 0; i < s.enumsLength(); i++) {
    const e = s.enums(i)!;
    const values: SEnumVal[] = [];
    for (let k = 0; k < e.valuesLength(); k++) {
      const v = e.values(k)!;
      const ut = v.unionType();
      values.push({ name: v.name()!, value: v.value(), unionType: ut ? typeOf(ut) : null, docs: docs(v.documentationLength(), (j) => v.documentation(j)) });
    }
    const name = e.name()!;
    enums.push({
      name,
      short: shortName(name),
      values,
      isUnion: e.isUnion(),
      underlying: typeOf(e.underlyingType()),
      attributes: attrs(e.attributesLength(), (j) => e.attributes(j)),
      docs: docs(e.documentationLength(), (j) => e.documentation(j)),
      file: e.declarationFile() ?? '',
    });
  }
  const byName = new Map(objects.map((o) => [o.name, o]));
  const services: SService[] = [];
  for (let i = 0; i < s.servicesLength(); i++) {
    const sv = s.services(i)!;
    const calls: SCall[] = [];
    for (let k = 0; k < sv.callsLength(); k++) {
      const c = sv.calls(k)!;
      const req = byName.get(c.request()!.name()!);
      const res = byName.get(c.response()!.name()!);
      if (!req || !res) throw new Error(`bfbs: rpc call ${c.name()} names an unknown table`);
      calls.push({ name: c.name()!, request: req, response: res, attributes: attrs(c.attributesLength(), (j) => c.attributes(j)), docs: docs(c.documentationLength(), (j) => c.documentation(j)) });
    }
    const name = sv.name()!;
    services.push({ name, short: shortName(name), calls, attributes: attrs(sv.attributesLength(), (j) => sv.attributes(j)), docs: docs(sv.documentationLength(), (j) => sv.documentation(j)) });
  }
  const rootName = s.rootTable()?.name() ?? null;
  return {
    objects,
    enums,
    fileIdent: s.fileIdent() ?? '',
    fileExt: s.fileExt() ?? '',
    root: rootName ? (byName.get(rootName) ?? null) : null,
    services,
  };
}

/** Looks an object up by short or full name. */
export function findObject(m: SchemaModel, name: string): SObject {
  const o = m.objects.find((x) => x.name === name || x.short === name);
  if (!o) throw new Error(`schema: no table or struct named ${name}`);
  return o;
}

export function findEnum(m: SchemaModel, name: string): SEnum {
  const e = m.enums.find((x) => x.name === name || x.short === name);
  if (!e) throw new Error(`schema: no enum or union named ${name}`);
  return e;
}

/** Size in bytes of a scalar base type. */
export function scalarSize(b: BaseType): number {
  switch (b) {
    case BaseType.UType:
    case BaseType.Bool:
    case BaseType.Byte:
    case BaseType.UByte:
      return 1;
    case BaseType.Short:
    case BaseType.UShort:
      return 2;
    case BaseType.Int:
    case BaseType.UInt:
    case BaseType.Float:
      return 4;
    case BaseType.Long:
    case BaseType.ULong:
    case BaseType.Double:
      return 8;
    default:
      return 0;
  }
}

/** `1.2.3` -> [1, 2, 3]; throws on anything else. */
export function parseSemver(v: string, where: string): [number, number, number] {
  const m = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$/.exec(v);
  if (!m) throw new Error(`${where}: "${v}" is not a semantic version MAJOR.MINOR.PATCH`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}
