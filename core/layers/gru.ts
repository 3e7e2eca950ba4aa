// STUB: being implemented. See dense.ts for the layer file conventions.
import { fail } from '../errors.ts';
import type { LayerKind } from './layer.ts';

export const gruKind: LayerKind = {
  type: 'gru',
  aliases: [],
  parse(f) {
    return fail('UNSUPPORTED', 'layer type gru is not implemented yet', f.where);
  },
  inferInputShape() {
    return null;
  },
  build() {
    return fail('UNSUPPORTED', 'layer type gru is not implemented yet');
  },
};
