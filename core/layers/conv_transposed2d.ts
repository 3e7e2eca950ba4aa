/**
 * conv_transposed2d — PyTorch nn.ConvTranspose2d followed by an activation (Loom's LayerConvTransposed2D).
 *
 * Per-sample input [C, H, W] (input_height, input_width), channels-first.
 * Shapes: [C, ...in] -> [F, ...out], out = (in - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1.
 * Parameters: weight [C, F, k...] (PyTorch's [in, out, k...]), bias [F].
 * Config fields, aliases, shape derivation and the layer class are shared by the six
 * convolution layers and documented in conv1d.ts; the canonical summation orders are in
 * kernels/conv.ts.
 */
import type { LayerKind } from './layer.ts';
import { convKind } from './conv1d.ts';

export const convTransposed2dKind: LayerKind = convKind({ type: 'conv_transposed2d', aliases: ['conv_transpose2d', 'convtransposed2d'], rank: 2, transposed: true });
