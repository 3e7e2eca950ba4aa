/**
 * Errors as the engine reports them: an ABI ErrorCode, a message, where, and detail. Core
 * HeddleErrors map one to one onto the ABI's codes; anything else is INTERNAL (or
 * RESOURCE_LIMIT for a failed allocation).
 */
import { HeddleError, type ErrorCode as CoreCode } from '../../core/errors.ts';
import { ErrorCode } from './generated/fb/heddle/abi/error-code.ts';

export class EngineError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly where = '',
    readonly detail = '',
  ) {
    super(message);
    this.name = 'EngineError';
  }
}

const CORE_CODES: Record<CoreCode, ErrorCode> = {
  CONFIG_INVALID: ErrorCode.CONFIG_INVALID,
  SHAPE_MISMATCH: ErrorCode.SHAPE_MISMATCH,
  INPUT_INVALID: ErrorCode.INPUT_INVALID,
  WEIGHTS_INVALID: ErrorCode.WEIGHTS_INVALID,
  FORMAT_INVALID: ErrorCode.FORMAT_INVALID,
  UNSUPPORTED: ErrorCode.UNSUPPORTED,
  BACKEND_UNAVAILABLE: ErrorCode.BACKEND_UNAVAILABLE,
  IO_ERROR: ErrorCode.IO_ERROR,
  INTERNAL: ErrorCode.INTERNAL,
};

export interface WireError {
  code: ErrorCode;
  message: string;
  where: string;
  detail: string;
}

/** Whatever was thrown, as the Error the client gets. */
export function toWireError(e: unknown): WireError {
  if (e instanceof EngineError) return { code: e.code, message: e.message, where: e.where, detail: e.detail };
  if (e instanceof HeddleError) {
    return { code: CORE_CODES[e.code] ?? ErrorCode.INTERNAL, message: e.message, where: e.where, detail: e.detail };
  }
  if (e instanceof RangeError && /allocation failed|invalid (typed )?array length|array buffer/i.test(e.message)) {
    return { code: ErrorCode.RESOURCE_LIMIT, message: `the request needs more memory than the engine can allocate (${e.message})`, where: '', detail: '' };
  }
  const err = e instanceof Error ? e : new Error(String(e));
  return { code: ErrorCode.INTERNAL, message: `internal error: ${err.message}`, where: '', detail: err.stack ?? '' };
}
