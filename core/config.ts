import { fail } from './errors.ts';
import { FieldReader, type Json, type JsonObject, describeJson } from './fields.ts';
import type { LayerConfig } from './layers/layer.ts';
import { parseLayer } from './layers/registry.ts';

/** A grid position: depth z, row y, column x, layer-in-cell l. */
export interface GridPos {
  z: number;
  y: number;
  x: number;
  l: number;
}

export interface NodeConfig {
  /** Index of this layer in the JSON `layers` array (for error messages). */
  jsonIndex: number;
  pos: GridPos;
  layer: LayerConfig;
  disabled: boolean;
  /** Take input from the output of this earlier position instead of the preceding layer. */
  remote: GridPos | null;
}

/** A normalized network config. `toJSON` gives Heddle's canonical (volumetric) form. */
export interface NetworkConfig {
  id: string;
  batch_size: number;
  depth: number;
  rows: number;
  cols: number;
  layers_per_cell: number;
  /** Per-sample input shape; inferred from the first layer when absent. */
  input_shape: number[] | null;
  nodes: NodeConfig[]; // execution (reading) order
}

export const MAX_GRID_SLOTS = 1 << 20;

export function posStr(p: GridPos): string {
  return `z${p.z} y${p.y} x${p.x} l${p.l}`;
}

export function comparePos(a: GridPos, b: GridPos): number {
  return a.z - b.z || a.y - b.y || a.x - b.x || a.l - b.l;
}

/**
 * Parse Loom's JSON config in either form:
 *  - grid: `{id, batch_size, grid_rows, grid_cols, layers_per_cell, layers: [...]}`; layers fill
 *    positions in reading order (row, col, layer-in-cell);
 *  - volumetric: `{id, depth, rows, cols, layers_per_cell, layers: [{z, y, x, l, ...}]}`.
 * Per-layer grid fields: `disabled` (alias `is_disabled`), and a remote link as
 * `remote_link: {z, y, x, l}` or Loom's `is_remote_link` + `target_z/y/x/l`.
 */
export function parseNetworkConfig(input: string | unknown): NetworkConfig {
  let raw: unknown = input;
  if (typeof input === 'string') {
    try {
      raw = JSON.parse(input);
    } catch (e) {
      fail('CONFIG_INVALID', `invalid JSON: ${(e as Error).message}`, 'config');
    }
  }
  const f = new FieldReader(raw, 'config');
  const depth = f.int(['depth', 'grid_depth'], { min: 1, default: 1 });
  const rows = f.int(['rows', 'grid_rows'], { min: 1, default: 1 });
  const cols = f.int(['cols', 'grid_cols'], { min: 1, default: 1 });
  const layersRaw = f.array('layers', { required: true })!;
  const lpc = f.int('layers_per_cell', { min: 1, default: Math.max(1, Math.ceil(layersRaw.length / (depth * rows * cols))) });
  const slots = depth * rows * cols * lpc;
  if (slots > MAX_GRID_SLOTS) fail('CONFIG_INVALID', `grid has ${slots} slots; at most ${MAX_GRID_SLOTS}`, 'config');
  if (layersRaw.length === 0) fail('CONFIG_INVALID', 'a network needs at least one layer', 'config.layers');
  if (layersRaw.length > slots) {
    fail('CONFIG_INVALID', `${layersRaw.length} layers do not fit a grid of ${depth}x${rows}x${cols} cells with ${layers_per_cell_text(lpc)}`, 'config.layers');
  }
  const id = f.lookup('id') ? String(f.lookup('id')!.value) : 'network';
  const batch = f.int('batch_size', { min: 1, default: 1 });
  const inputShape = f.intArray('input_shape', { min: 1 }) ?? null;

  const positional = layersRaw.map((l) => l !== null && typeof l === 'object' && !Array.isArray(l) && ['z', 'y', 'x', 'l'].some((k) => k in (l as JsonObject)));
  const anyPositional = positional.some(Boolean);
  const nodes: NodeConfig[] = [];
  const seen = new Map<string, number>();
  layersRaw.forEach((lr, i) => {
    let pos: GridPos;
    if (anyPositional) {
      const lf = new FieldReader(lr, `layers[${i}]`);
      if (!positional[i]) fail('CONFIG_INVALID', 'layers must all carry grid positions (z, y, x, l) or none', `layers[${i}]`);
      pos = {
        z: lf.int('z', { min: 0, max: depth - 1, default: 0 }),
        y: lf.int('y', { min: 0, max: rows - 1, default: 0 }),
        x: lf.int('x', { min: 0, max: cols - 1, default: 0 }),
        l: lf.int('l', { min: 0, max: lpc - 1, default: 0 }),
      };
    } else {
      let s = i;
      const l = s % lpc; s = (s - l) / lpc;
      const x = s % cols; s = (s - x) / cols;
      const y = s % rows; s = (s - y) / rows;
      pos = { z: s, y, x, l };
    }
    const where = `layers[${i}] (${posStr(pos)})`;
    const key = posStr(pos);
    if (seen.has(key)) fail('CONFIG_INVALID', `position ${key} is already taken by layers[${seen.get(key)}]`, where);
    seen.set(key, i);
    const lf = new FieldReader(lr, where);
    const layer = parseLayer(lr, where);
    const disabled = lf.bool(['disabled', 'is_disabled'], false);
    nodes.push({ jsonIndex: i, pos, layer, disabled, remote: parseRemote(lf, { depth, rows, cols, lpc }) });
  });
  nodes.sort((a, b) => comparePos(a.pos, b.pos));
  nodes.forEach((n, k) => {
    if (!n.remote) return;
    const where = `layers[${n.jsonIndex}] (${posStr(n.pos)}, ${n.layer.type}).remote_link`;
    const target = nodes.findIndex((m) => comparePos(m.pos, n.remote!) === 0);
    if (target < 0) fail('CONFIG_INVALID', `links to ${posStr(n.remote)}, where there is no layer`, where);
    if (target >= k) fail('CONFIG_INVALID', `links to ${posStr(n.remote)}, which does not run before this layer; a remote link must point to an earlier position`, where);
  });
  return { id, batch_size: batch, depth, rows, cols, layers_per_cell: lpc, input_shape: inputShape, nodes };
}

function layers_per_cell_text(lpc: number): string {
  return `${lpc} layer${lpc === 1 ? '' : 's'} per cell`;
}

function parseRemote(f: FieldReader, g: { depth: number; rows: number; cols: number; lpc: number }): GridPos | null {
  const link = f.lookup('remote_link');
  let src: FieldReader | null = null;
  let prefix = '';
  if (link && link.value !== null && link.value !== false) {
    src = new FieldReader(link.value, f.at('remote_link'));
  } else if (f.bool('is_remote_link', false)) {
    src = f;
    prefix = 'target_';
  }
  if (!src) return null;
  return {
    z: src.int(prefix + 'z', { min: 0, max: g.depth - 1, default: 0 }),
    y: src.int(prefix + 'y', { min: 0, max: g.rows - 1, default: 0 }),
    x: src.int(prefix + 'x', { min: 0, max: g.cols - 1, default: 0 }),
    l: src.int(prefix + 'l', { min: 0, max: g.lpc - 1, default: 0 }),
  };
}

/** Heddle's canonical JSON for a config: volumetric form, canonical field names, defaults filled. */
export function configToJSON(c: NetworkConfig): JsonObject {
  const out: JsonObject = {
    id: c.id,
    batch_size: c.batch_size,
    depth: c.depth,
    rows: c.rows,
    cols: c.cols,
    layers_per_cell: c.layers_per_cell,
  };
  if (c.input_shape) out.input_shape = c.input_shape;
  out.layers = c.nodes.map((n) => {
    const o: JsonObject = { z: n.pos.z, y: n.pos.y, x: n.pos.x, l: n.pos.l, ...n.layer };
    if (n.disabled) o.disabled = true;
    if (n.remote) o.remote_link = { ...n.remote } as unknown as Json;
    return o;
  });
  return out;
}

export { describeJson };
