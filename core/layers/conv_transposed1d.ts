/**
 * conv_transposed1d — PyTorch nn.ConvTranspose1d followed by an activation (Loom's LayerConvTransposed1D).
 *
 * Per-sample input [C, L] (L = input_height, alias input_length), channels-first.
 * Shapes: [C, ...in] -> [F, ...out], out = (in - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1.
 * Parameters: weight [C, F, k...] (PyTorch's [in, out, k...]), bias [F].
 * Config fields, aliases, shape derivation and the layer class are shared by the six
 * convolution layers and documented in conv1d.ts; the canonical summation orders are in
 * kernels/conv.ts.
 */
import type { LayerKind } from './layer.ts';
import { convKind } from './conv1d.ts';

export const convTransposed1dKind: LayerKind = convKind({ type: 'conv_transposed1d', aliases: ['conv_transpose1d', 'convtransposed1d'], rank: 1, transposed: true });
