/**
 * File helpers for the server-side runtimes. Only `node:fs` and `node:path` are used, which
 * Node, Deno and Bun all provide, so one file serves the three. Synchronous on purpose:
 * the engine and the CLI handle one request at a time, and sync calls keep the atomic
 * write's steps in one uninterrupted sequence.
 *
 * Errors are HeddleError IO_ERROR with the path as `where`, e.g.
 * `/data/model.safetensors: cannot read: no such file (ENOENT)`.
 */
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { HeddleError, fail } from '../../core/errors.ts';
import {
  type LoadNetworkOptions,
  type LoadWeightsOptions,
  loadNetworkJSON,
  loadNetworkSafetensors,
  loadWeightsJSON,
  loadWeightsSafetensors,
  saveNetworkJSON,
  saveNetworkSafetensors,
} from '../../core/io/network_io.ts';
import type { Network } from '../../core/network.ts';

export interface WriteFileAtomicOptions {
  /**
   * Test hook: called with the temp file's path after it is written and synced, just
   * before the rename. Throwing from it aborts the write like any other failure.
   */
  beforeRename?: (tempPath: string) => void;
}

/**
 * Write `data` (bytes, or a string written as UTF-8) to `path` atomically: readers see the
 * old file or the complete new one, never a torn one. The data goes to a temp file in the
 * same directory (a rename is only atomic within one file system), is fsynced, then
 * renamed over the target. On any failure the temp file is removed and the target is left
 * as it was. An existing target's permission bits are kept; a symlink is written through.
 */
export function writeFileAtomic(path: string, data: Uint8Array | string, opts: WriteFileAtomicOptions = {}): void {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  const target = resolveTarget(path);
  const dir = nodePath.dirname(target);
  const tmp = nodePath.join(dir, `.${nodePath.basename(target)}.${randomHex()}.tmp`);
  let existingMode: number | null = null;
  try {
    existingMode = fs.statSync(target).mode & 0o7777;
  } catch {
    // No existing file (or not stat-able): the temp file's default mode stands.
  }
  let fd = -1;
  let created = false;
  try {
    fd = fs.openSync(tmp, 'wx');
    created = true;
    let off = 0;
    while (off < bytes.length) off += fs.writeSync(fd, bytes, off, bytes.length - off);
    if (existingMode !== null) {
      try {
        fs.fchmodSync(fd, existingMode);
      } catch {
        // Some file systems (and Windows) do not support modes; the content matters more.
      }
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = -1;
    opts.beforeRename?.(tmp);
    fs.renameSync(tmp, target);
  } catch (e) {
    if (fd >= 0) {
      try {
        fs.closeSync(fd);
      } catch {
        // Already failing; the original error is the one to report.
      }
    }
    if (created) {
      try {
        fs.unlinkSync(tmp);
      } catch {
        // Nothing more to do; the error below names the target.
      }
    }
    throw ioError(e, 'write', path);
  }
  // Make the rename itself durable. Best effort: directories cannot be opened on Windows.
  try {
    const dfd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  } catch {
    // The data is already safely in place.
  }
}

export interface ReadFileOptions {
  /** Refuse files larger than this many bytes (default: no limit beyond the runtime's). */
  maxBytes?: number;
}

/** The whole file as bytes (a plain Uint8Array). */
export function readFileBytes(path: string, opts: ReadFileOptions = {}): Uint8Array {
  try {
    if (opts.maxBytes !== undefined) {
      const size = fs.statSync(path).size;
      if (size > opts.maxBytes) fail('IO_ERROR', `cannot read: the file is ${size} bytes, over the limit of ${opts.maxBytes}`, path);
    }
    const b = fs.readFileSync(path);
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  } catch (e) {
    throw ioError(e, 'read', path);
  }
}

/** The network file format a path's extension names; UNSUPPORTED for any other extension. */
export function networkFileFormat(path: string): 'safetensors' | 'json' {
  const ext = nodePath.extname(path).toLowerCase();
  if (ext === '.safetensors') return 'safetensors';
  if (ext === '.json') return 'json';
  return fail('UNSUPPORTED', `cannot tell the network file format from the extension '${ext}'; use .safetensors or .json`, path);
}

/** Save the network (config + weights) to `path`, as safetensors or JSON by extension, atomically. */
export function saveNetworkFile(net: Network, path: string): void {
  const format = networkFileFormat(path);
  writeFileAtomic(path, format === 'safetensors' ? saveNetworkSafetensors(net) : saveNetworkJSON(net));
}

/** Load a network saved by saveNetworkFile (or any Heddle network file) from `path`. */
export function loadNetworkFile(path: string, opts: Omit<LoadNetworkOptions, 'source'> = {}): Network {
  const format = networkFileFormat(path);
  const bytes = readFileBytes(path);
  if (format === 'safetensors') return loadNetworkSafetensors(bytes, { ...opts, source: path });
  if (opts.config !== undefined) fail('INPUT_INVALID', 'a JSON network file carries its own config; opts.config applies to .safetensors files only', path);
  return loadNetworkJSON(bytes, { source: path });
}

/** Apply the weights stored in a network file to `net`. All-or-nothing. */
export function loadWeightsFile(net: Network, path: string, opts: Omit<LoadWeightsOptions, 'source'> = {}): void {
  const format = networkFileFormat(path);
  const bytes = readFileBytes(path);
  if (format === 'safetensors') loadWeightsSafetensors(net, bytes, { ...opts, source: path });
  else loadWeightsJSON(net, bytes, { source: path, complete: opts.complete });
}

const REASONS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'it is a directory',
  ENOTDIR: 'a component of the path is not a directory',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'the file system is read-only',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files',
  ENAMETOOLONG: 'the file name is too long',
  EBUSY: 'the file is busy',
  EIO: 'an I/O error occurred',
  ERR_FS_FILE_TOO_LARGE: 'the file is too large to read into memory at once',
};

function ioError(e: unknown, op: 'read' | 'write', path: string): HeddleError {
  if (e instanceof HeddleError) return e;
  const err = e as { code?: unknown; message?: unknown };
  const code = typeof err?.code === 'string' ? err.code : '';
  let reason = REASONS[code] ?? (typeof err?.message === 'string' ? err.message : String(e));
  // For a write, ENOENT means the directory is missing (the file itself is being created).
  if (op === 'write' && code === 'ENOENT') reason = `the directory '${nodePath.dirname(path)}' does not exist`;
  return new HeddleError('IO_ERROR', `cannot ${op}: ${reason}${code ? ` (${code})` : ''}`, path, typeof err?.message === 'string' ? err.message : '');
}

/** Follow a symlink so the rename replaces the file it points to, not the link. */
function resolveTarget(path: string): string {
  try {
    return fs.realpathSync(path);
  } catch {
    return path;
  }
}

function randomHex(): string {
  const b = new Uint8Array(6);
  globalThis.crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}
