/**
 * Every failure Heddle reports is a HeddleError: a stable machine-readable code, a
 * message a person can act on, and `where` (a path such as `layers[3] (z0 y0 x0 l3).output_height`
 * or `file.safetensors: header`) so the error says what and where.
 */
export type ErrorCode =
  | 'CONFIG_INVALID' // a network config that cannot be built (unknown type, bad field, ...)
  | 'SHAPE_MISMATCH' // shapes that do not chain, or a tensor of the wrong shape
  | 'INPUT_INVALID' // a bad input tensor (NaN/Inf, wrong dtype, ...)
  | 'WEIGHTS_INVALID' // missing, extra or wrong-shaped weights
  | 'FORMAT_INVALID' // a corrupt or malformed file (safetensors, JSON)
  | 'UNSUPPORTED' // a valid request Heddle does not implement (yet)
  | 'BACKEND_UNAVAILABLE' // the requested backend cannot run here (no adapter, not built)
  | 'IO_ERROR' // file system failure
  | 'INTERNAL'; // a bug in Heddle

export class HeddleError extends Error {
  readonly code: ErrorCode;
  readonly where: string;
  readonly detail: string;

  constructor(code: ErrorCode, message: string, where = '', detail = '') {
    super(where ? `${where}: ${message}` : message);
    this.name = 'HeddleError';
    this.code = code;
    this.where = where;
    this.detail = detail;
  }
}

export function fail(code: ErrorCode, message: string, where = '', detail = ''): never {
  throw new HeddleError(code, message, where, detail);
}
