"""Shared neural-network layers for geomgen's representation and generative plugins.

One concern per module; every block is configurable (widths, depths, norm,
activation, init) with small defaults that train quickly on CPU on 64x64
images and 32^3 grids.

* :mod:`~geomgen.nn.norm` - :func:`make_norm` (``"batch"``, ``"group"``,
  ``"instance"``, ``"layer"``, ``"none"``; 1-D/2-D/3-D).
* :mod:`~geomgen.nn.activation` - :func:`make_activation`.
* :mod:`~geomgen.nn.init` - :func:`init_weights`, :func:`kaiming_init_`, :func:`xavier_init_`.
* :mod:`~geomgen.nn.image_encoder` - :class:`ResNetEncoder` (feature pyramid +
  pooled vector), :class:`BasicBlock`, :class:`Bottleneck`, :class:`Conv2dBlock`.
* :mod:`~geomgen.nn.decoder2d` - :class:`UNetDecoder2d` (feature pyramid ->
  full-resolution maps, U-Net skips).
* :mod:`~geomgen.nn.conv3d` - :class:`Conv3dBlock`, :class:`ResBlock3d`,
  :class:`Down3d`, :class:`Up3d`, :class:`VoxelDecoder`, :class:`VoxelEncoder`.
* :mod:`~geomgen.nn.mlp` - :class:`MLP`, :class:`ResnetBlockFC`,
  :class:`ConditionalBatchNorm`, :class:`CondResnetBlockFC` (channels-last).
* :mod:`~geomgen.nn.pointnet` - :class:`PointNetEncoder` (padding-aware).
* :mod:`~geomgen.nn.graph_conv` - :class:`GraphConvBlock`.
* :mod:`~geomgen.nn.attention` - :class:`MultiHeadAttention`, :class:`TransformerBlock`.
* :mod:`~geomgen.nn.masked_conv` - :class:`MaskedConv3d` (``"A"``/``"B"``),
  :class:`MaskedResBlock3d`, :class:`PixelCNN3d`.

Bad arguments raise :class:`geomgen.errors.InvalidInputError` naming the argument.
"""

from geomgen.nn.activation import ACTIVATIONS, make_activation
from geomgen.nn.attention import MultiHeadAttention, TransformerBlock, lengths_to_padding_mask
from geomgen.nn.decoder2d import UNetDecoder2d
from geomgen.nn.conv3d import Conv3dBlock, Down3d, ResBlock3d, Up3d, VoxelDecoder, VoxelEncoder, doubling_levels
from geomgen.nn.graph_conv import GraphConvBlock
from geomgen.nn.image_encoder import (
    RESNET_PRESETS,
    BasicBlock,
    Bottleneck,
    Conv2dBlock,
    EncoderOutput,
    ResNetEncoder,
)
from geomgen.nn.init import INIT_SCHEMES, init_weights, kaiming_init_, xavier_init_
from geomgen.nn.masked_conv import MaskedConv3d, MaskedResBlock3d, PixelCNN3d, causal_mask_3d
from geomgen.nn.mlp import MLP, CondResnetBlockFC, ConditionalBatchNorm, ResnetBlockFC, RowNorm
from geomgen.nn.norm import NORM_KINDS, make_norm
from geomgen.nn.pointnet import PointNetEncoder, masked_pool

__all__ = [
    "NORM_KINDS",
    "make_norm",
    "ACTIVATIONS",
    "make_activation",
    "INIT_SCHEMES",
    "init_weights",
    "kaiming_init_",
    "xavier_init_",
    "Conv2dBlock",
    "UNetDecoder2d",
    "BasicBlock",
    "Bottleneck",
    "ResNetEncoder",
    "EncoderOutput",
    "RESNET_PRESETS",
    "Conv3dBlock",
    "ResBlock3d",
    "Down3d",
    "Up3d",
    "VoxelDecoder",
    "VoxelEncoder",
    "doubling_levels",
    "MLP",
    "RowNorm",
    "ResnetBlockFC",
    "ConditionalBatchNorm",
    "CondResnetBlockFC",
    "PointNetEncoder",
    "masked_pool",
    "GraphConvBlock",
    "MultiHeadAttention",
    "TransformerBlock",
    "lengths_to_padding_mask",
    "MaskedConv3d",
    "MaskedResBlock3d",
    "PixelCNN3d",
    "causal_mask_3d",
]
