/** Loading the vector files and the golden file. */
import fs from 'node:fs';
import path from 'node:path';
import { parseStrictJson } from '../../core/io/strict_json.ts';
import { type Vector, parseVector } from '../runner/spec.ts';
import { sha256Hex } from '../runner/sha256.ts';
import { goldenPath, vectorsDir } from './paths.ts';

export interface LoadedVector {
  vector: Vector;
  /** SHA-256 of the file's content (compact JSON): a golden made from another version of it is stale. */
  fileSha256: string;
}

/** Every vector under conformance/vectors/<group>/<name>.json, sorted by id. `only`: id prefixes (`layers/`, `layers/dense`). */
export function loadVectors(root: string, only: readonly string[] = []): LoadedVector[] {
  const dir = vectorsDir(root);
  const out: LoadedVector[] = [];
  for (const group of fs.readdirSync(dir).sort()) {
    const gdir = path.join(dir, group);
    if (!fs.statSync(gdir).isDirectory()) continue;
    for (const file of fs.readdirSync(gdir).sort()) {
      if (!file.endsWith('.json')) continue;
      const id = `${group}/${file.slice(0, -5)}`;
      if (only.length && !only.some((p) => id.startsWith(p))) continue;
      const text = fs.readFileSync(path.join(gdir, file), 'utf8');
      const raw = parseStrictJson(text, { where: `conformance/vectors/${id}.json` });
      // Over the content, not the bytes: whitespace and line endings do not make a golden stale.
      out.push({ vector: parseVector(id, raw), fileSha256: sha256Hex(new TextEncoder().encode(JSON.stringify(raw))) });
    }
  }
  return out.sort((a, b) => (a.vector.id < b.vector.id ? -1 : a.vector.id > b.vector.id ? 1 : 0));
}

export interface GoldenOp {
  sha256?: string;
  /** The error code the op raised (no message: wording may change, the code may not). */
  error?: string;
  /** Per-array digests (diagnostics only; the op's sha256 decides). */
  arrays?: Record<string, string>;
}

export interface GoldenVector {
  /** SHA-256 of the vector file the goldens were made from. */
  vector_sha256: string;
  ops: Record<string, GoldenOp>;
}

export interface Golden {
  format: 'heddle-conformance-golden/1';
  /** Which cell made it: always node / cpu / ts. */
  produced_by: string;
  /** Why it last changed (the commit changing it says the same). */
  reason: string;
  vectors: Record<string, GoldenVector>;
}

export function emptyGolden(): Golden {
  return { format: 'heddle-conformance-golden/1', produced_by: '', reason: '', vectors: {} };
}

export function readGolden(root: string): Golden {
  const p = goldenPath(root);
  if (!fs.existsSync(p)) return emptyGolden();
  const g = JSON.parse(fs.readFileSync(p, 'utf8')) as Golden;
  if (g.format !== 'heddle-conformance-golden/1') throw new Error(`${p}: unknown golden format ${JSON.stringify(g.format)}`);
  return g;
}

/** Stable text: vectors and ops sorted, two-space indent, one trailing newline. */
export function goldenText(g: Golden): string {
  const vectors: Record<string, GoldenVector> = {};
  for (const id of Object.keys(g.vectors).sort()) {
    const v = g.vectors[id];
    const ops: Record<string, GoldenOp> = {};
    for (const k of Object.keys(v.ops).sort((a, b) => parseInt(a) - parseInt(b))) ops[k] = v.ops[k];
    vectors[id] = { vector_sha256: v.vector_sha256, ops };
  }
  return JSON.stringify({ format: g.format, produced_by: g.produced_by, reason: g.reason, vectors }, null, 2) + '\n';
}

export function writeGolden(root: string, g: Golden): void {
  const p = goldenPath(root);
  const tmp = `${p}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, goldenText(g));
  fs.renameSync(tmp, p);
}
