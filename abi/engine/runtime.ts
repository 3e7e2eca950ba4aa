/**
 * Which JavaScript runtime the engine runs on. Read through globalThis so the engine needs
 * no runtime-specific import (and never imports `node:process`, which in ESM switches
 * Node's stdio file descriptors to non-blocking mode).
 */
export interface RuntimeInfo {
  name: 'node' | 'deno' | 'bun';
  version: string;
}

interface RuntimeGlobals {
  Deno?: { version?: { deno?: string } };
  Bun?: { version?: string };
  process?: { versions?: { node?: string } };
}

export function detectRuntime(): RuntimeInfo {
  const g = globalThis as unknown as RuntimeGlobals;
  if (g.Deno?.version?.deno) return { name: 'deno', version: g.Deno.version.deno };
  if (g.Bun?.version) return { name: 'bun', version: g.Bun.version };
  return { name: 'node', version: g.process?.versions?.node ?? 'unknown' };
}
