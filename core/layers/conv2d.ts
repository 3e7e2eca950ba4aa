/**
 * conv2d — PyTorch nn.Conv2d followed by an activation (Loom's Conv2D, LayerCNN2).
 *
 * Per-sample input [C, H, W] (input_height, input_width), channels-first.
 * Shapes: [C, ...in] -> [F, ...out], out = floor((in + 2 * padding - dilation * (k - 1) - 1) / stride) + 1.
 * Parameters: weight [F, C, k...], bias [F].
 * Config fields, aliases, shape derivation and the layer class are shared by the six
 * convolution layers and documented in conv1d.ts; the canonical summation orders are in
 * kernels/conv.ts.
 */
import type { LayerKind } from './layer.ts';
import { convKind } from './conv1d.ts';

export const conv2dKind: LayerKind = convKind({ type: 'conv2d', aliases: ['cnn2'], rank: 2, transposed: false });
