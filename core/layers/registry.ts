import { fail } from '../errors.ts';
import { FieldReader } from '../fields.ts';
import type { LayerConfig, LayerKind, ParseContext } from './layer.ts';
import { denseKind } from './dense.ts';
import { layerNormKind } from './layer_norm.ts';
import { rmsNormKind } from './rms_norm.ts';
import { softmaxKind } from './softmax.ts';
import { residualKind } from './residual.ts';
import { sequentialKind } from './sequential.ts';
import { parallelKind } from './parallel.ts';

/** Every layer type Heddle knows, one file each. Order is the order `heddle info` documents them in. */
export const LAYER_KINDS: readonly LayerKind[] = [denseKind, layerNormKind, rmsNormKind, softmaxKind, residualKind, sequentialKind, parallelKind];

const byName = new Map<string, LayerKind>();
for (const k of LAYER_KINDS) {
  for (const n of [k.type, ...k.aliases]) {
    if (byName.has(n)) throw new Error(`layer type name ${n} registered twice`);
    byName.set(n, k);
  }
}

export function findKind(type: string): LayerKind | undefined {
  return byName.get(type.toLowerCase());
}

export function kindOf(cfg: LayerConfig): LayerKind {
  const k = findKind(cfg.type);
  if (!k) fail('INTERNAL', `no layer kind for normalized type ${cfg.type}`);
  return k;
}

const parseContext: ParseContext = { parseChild: parseLayer };

/** Parse one layer object (any nesting depth): resolves the type name and the kind's fields. */
export function parseLayer(raw: unknown, where: string): LayerConfig {
  const f = new FieldReader(raw, where);
  const type = f.str<string>('type');
  const kind = findKind(type);
  if (!kind) {
    const known = LAYER_KINDS.map((k) => k.type).join(', ');
    fail('CONFIG_INVALID', `unknown layer type '${type}'; known types: ${known}`, f.at('type'));
  }
  const typed = where.endsWith(')') ? `${where.slice(0, -1)}, ${kind.type})` : `${where} (${kind.type})`;
  return kind.parse(new FieldReader(raw, typed), parseContext);
}
