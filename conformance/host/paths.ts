import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The repository root: the nearest ancestor of this module (source: conformance/host/, or the
 * bundled CLI: dist/) that holds conformance/vectors. HEDDLE_ROOT overrides it.
 */
export function repoRoot(): string {
  if (process.env.HEDDLE_ROOT) return path.resolve(process.env.HEDDLE_ROOT);
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'conformance', 'vectors'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('heddle conformance: cannot find the repository (a folder holding conformance/vectors) above ' + fileURLToPath(import.meta.url) + '; set HEDDLE_ROOT');
    dir = up;
  }
}

export const vectorsDir = (root: string): string => path.join(root, 'conformance', 'vectors');
export const goldenPath = (root: string): string => path.join(root, 'conformance', 'golden.json');
export const binPath = (root: string, name: string): string => path.join(root, 'node_modules', '.bin', name);
