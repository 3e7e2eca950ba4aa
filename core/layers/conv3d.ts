/**
 * conv3d — PyTorch nn.Conv3d followed by an activation (Loom's LayerCNN3).
 *
 * Per-sample input [C, D, H, W] (input_depth, input_height, input_width), channels-first.
 * Shapes: [C, ...in] -> [F, ...out], out = floor((in + 2 * padding - dilation * (k - 1) - 1) / stride) + 1.
 * Parameters: weight [F, C, k...], bias [F].
 * Config fields, aliases, shape derivation and the layer class are shared by the six
 * convolution layers and documented in conv1d.ts; the canonical summation orders are in
 * kernels/conv.ts.
 */
import type { LayerKind } from './layer.ts';
import { convKind } from './conv1d.ts';

export const conv3dKind: LayerKind = convKind({ type: 'conv3d', aliases: ['cnn3'], rank: 3, transposed: false });
