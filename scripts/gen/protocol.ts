/**
 * The protocol facts every emitter needs, derived from the schema model and checked for
 * consistency: the ABI version, the two file identifiers, the calls with their union
 * values, and the error codes.
 */
import { BaseType, type SEnum, type SObject, type SchemaModel, findEnum, findObject, parseSemver } from './schema.ts';

export interface CallSpec {
  name: string;
  request: SObject;
  response: SObject;
  /** RequestBody value == ResponseBody value of the result. */
  tag: number;
  streaming: boolean;
  /** The progress table a streaming call sends before its result. */
  progress: SObject | null;
  progressTag: number | null;
  docs: string[];
}

export interface ErrorCodeSpec {
  name: string;
  value: number;
  docs: string[];
  clientSide: boolean;
}

export interface Protocol {
  model: SchemaModel;
  abiVersion: [number, number, number];
  requestIdentifier: string;
  responseIdentifier: string;
  request: SObject;
  response: SObject;
  requestBody: SEnum;
  responseBody: SEnum;
  errorTag: number;
  calls: CallSpec[];
  errorCodes: ErrorCodeSpec[];
  dtypes: { name: string; value: number; docs: string[] }[];
  formats: { name: string; value: number; docs: string[] }[];
}

function unionValue(u: SEnum, table: SObject): number | null {
  for (const v of u.values) {
    if (v.unionType && v.unionType.base === BaseType.Obj && v.unionType.index >= 0) {
      // index refers to the model's objects array (same order as the .bfbs).
      if (v.name === table.short || v.name === table.name) return Number(v.value);
    }
  }
  return null;
}

export function deriveProtocol(model: SchemaModel): Protocol {
  const svc = model.services.find((s) => s.short === 'Engine');
  if (!svc) throw new Error('schema: no rpc_service Engine');
  const abiVersion = parseSemver(svc.attributes.abi_version ?? '', 'rpc_service Engine (abi_version)');
  if (!model.root || model.root.short !== 'Request') throw new Error('schema: root_type must be Request');
  if (model.fileIdent.length !== 4) throw new Error('schema: file_identifier must be 4 characters');
  const request = findObject(model, 'Request');
  const response = findObject(model, 'Response');
  const responseIdentifier = response.attributes.heddle_identifier ?? '';
  if (responseIdentifier.length !== 4 || responseIdentifier === model.fileIdent) {
    throw new Error('schema: table Response needs (heddle_identifier: "XXXX"), 4 characters, unlike the file_identifier');
  }
  const requestBody = findEnum(model, 'RequestBody');
  const responseBody = findEnum(model, 'ResponseBody');
  for (const [env, u] of [[request, requestBody], [response, responseBody]] as const) {
    const names = env.fields.map((f) => f.name).join(',');
    if (names !== 'call_id,body_type,body') throw new Error(`schema: table ${env.short} must have exactly call_id, body (got ${names})`);
    if (!u.isUnion) throw new Error(`schema: ${u.short} must be a union`);
  }
  const err = findObject(model, 'Error');
  const errorTag = unionValue(responseBody, err);
  if (errorTag === null) throw new Error('schema: ResponseBody must include Error');

  const calls: CallSpec[] = svc.calls.map((c) => {
    const tag = unionValue(requestBody, c.request);
    const rtag = unionValue(responseBody, c.response);
    if (tag === null) throw new Error(`schema: ${c.request.short} (rpc ${c.name}) is not in RequestBody`);
    if (rtag === null) throw new Error(`schema: ${c.response.short} (rpc ${c.name}) is not in ResponseBody`);
    if (tag !== rtag) throw new Error(`schema: rpc ${c.name}: ${c.request.short} = ${tag} in RequestBody but ${c.response.short} = ${rtag} in ResponseBody; they must match`);
    if (c.request.short !== `${c.name}Request` || c.response.short !== `${c.name}Response`) {
      throw new Error(`schema: rpc ${c.name} must take ${c.name}Request and return ${c.name}Response`);
    }
    const streaming = c.attributes.streaming === 'server';
    let progress: SObject | null = null;
    let progressTag: number | null = null;
    if (streaming) {
      progress = findObject(model, `${c.name}Progress`);
      progressTag = unionValue(responseBody, progress);
      if (progressTag === null) throw new Error(`schema: streaming rpc ${c.name} needs ${c.name}Progress in ResponseBody`);
    } else if (c.attributes.streaming !== undefined) {
      throw new Error(`schema: rpc ${c.name}: only streaming: "server" is supported`);
    }
    return { name: c.name, request: c.request, response: c.response, tag, streaming, progress, progressTag, docs: c.docs };
  });
  const reqMembers = requestBody.values.filter((v) => v.value !== 0n).length;
  if (reqMembers !== calls.length) throw new Error(`schema: RequestBody has ${reqMembers} members but rpc_service Engine has ${calls.length} calls`);

  const codes = findEnum(model, 'ErrorCode');
  const errorCodes = codes.values.map((v) => ({ name: v.name, value: Number(v.value), docs: v.docs, clientSide: Number(v.value) >= 600 }));
  const simple = (name: string) => findEnum(model, name).values.map((v) => ({ name: v.name, value: Number(v.value), docs: v.docs }));
  return {
    model,
    abiVersion,
    requestIdentifier: model.fileIdent,
    responseIdentifier,
    request,
    response,
    requestBody,
    responseBody,
    errorTag,
    calls,
    errorCodes,
    dtypes: simple('DType'),
    formats: simple('NetworkFormat'),
  };
}
