// STUB: being implemented. See dense.ts for the layer file conventions.
import { fail } from '../errors.ts';
import type { LayerKind } from './layer.ts';

export const swigluKind: LayerKind = {
  type: 'swiglu',
  aliases: [],
  parse(f) {
    return fail('UNSUPPORTED', 'layer type swiglu is not implemented yet', f.where);
  },
  inferInputShape() {
    return null;
  },
  build() {
    return fail('UNSUPPORTED', 'layer type swiglu is not implemented yet');
  },
};
