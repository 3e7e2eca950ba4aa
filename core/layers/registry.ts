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
import { conv1dKind } from './conv1d.ts';
import { conv2dKind } from './conv2d.ts';
import { conv3dKind } from './conv3d.ts';
import { convTransposed1dKind } from './conv_transposed1d.ts';
import { convTransposed2dKind } from './conv_transposed2d.ts';
import { convTransposed3dKind } from './conv_transposed3d.ts';
import { rnnKind } from './rnn.ts';
import { lstmKind } from './lstm.ts';
import { gruKind } from './gru.ts';
import { multiHeadAttentionKind } from './multi_head_attention.ts';
import { swigluKind } from './swiglu.ts';
import { embeddingKind } from './embedding.ts';
import { kmeansKind } from './kmeans.ts';

/**
 * Every layer type Heddle knows, one file each, in the order `heddle info` documents them.
 * Built on first use: container layers (sequential, parallel) import this module, so it must
 * not touch their exports while the import graph is still being evaluated.
 */
export function layerKinds(): readonly LayerKind[] {
  return registry().kinds;
}

let built: { kinds: readonly LayerKind[]; byName: Map<string, LayerKind> } | null = null;

function registry(): { kinds: readonly LayerKind[]; byName: Map<string, LayerKind> } {
  if (built) return built;
  const kinds = [
    denseKind, layerNormKind, rmsNormKind, softmaxKind, residualKind, sequentialKind, parallelKind,
    conv1dKind, conv2dKind, conv3dKind, convTransposed1dKind, convTransposed2dKind, convTransposed3dKind,
    rnnKind, lstmKind, gruKind, multiHeadAttentionKind, swigluKind, embeddingKind, kmeansKind,
  ];
  const byName = new Map<string, LayerKind>();
  for (const k of kinds) {
    for (const n of [k.type, ...k.aliases]) {
      if (byName.has(n)) throw new Error(`layer type name ${n} registered twice`);
      byName.set(n, k);
    }
  }
  built = { kinds, byName };
  return built;
}

export function findKind(type: string): LayerKind | undefined {
  return registry().byName.get(type.toLowerCase());
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
    const known = layerKinds().map((k) => k.type).join(', ');
    fail('CONFIG_INVALID', `unknown layer type '${type}'; known types: ${known}`, f.at('type'));
  }
  const typed = where.endsWith(')') ? `${where.slice(0, -1)}, ${kind.type})` : `${where} (${kind.type})`;
  return kind.parse(new FieldReader(raw, typed), parseContext);
}
