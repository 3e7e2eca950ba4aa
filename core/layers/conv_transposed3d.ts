/**
 * conv_transposed3d — PyTorch nn.ConvTranspose3d followed by an activation (Loom's LayerConvTransposed3D).
 *
 * Per-sample input [C, D, H, W] (input_depth, input_height, input_width), channels-first.
 * Shapes: [C, ...in] -> [F, ...out], out = (in - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1.
 * Parameters: weight [C, F, k...] (PyTorch's [in, out, k...]), bias [F].
 * Config fields, aliases, shape derivation and the layer class are shared by the six
 * convolution layers and documented in conv1d.ts; the canonical summation orders are in
 * kernels/conv.ts.
 */
import type { LayerKind } from './layer.ts';
import { convKind } from './conv1d.ts';

export const convTransposed3dKind: LayerKind = convKind({ type: 'conv_transposed3d', aliases: ['conv_transpose3d', 'convtransposed3d'], rank: 3, transposed: true });
