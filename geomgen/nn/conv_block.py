"""``conv -> norm -> activation`` layers shared by the 2-D and 3-D blocks of
:mod:`geomgen.nn` (:class:`~geomgen.nn.image_encoder.Conv2dBlock`,
:class:`~geomgen.nn.conv3d.Conv3dBlock`), and the channels-first input check
their ``forward`` uses."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from geomgen import checks as V
from geomgen.nn.activation import make_activation
from geomgen.nn.norm import make_norm

__all__ = ["conv_norm_act", "check_channels_first"]

_CONV = {2: nn.Conv2d, 3: nn.Conv3d}
_SHAPES = {2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}


def conv_norm_act(
    dim: int,
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int,
    *,
    norm: str,
    groups: int,
    act: str,
    bias: bool | None,
    fn: str,
) -> list[nn.Module]:
    """``[Conv{dim}d, norm, activation]`` with "same" padding for the odd
    ``kernel_size`` (so the output size is ``ceil(size / stride)``); the
    convolution has a bias by default only when ``norm="none"``.

    Raises:
        InvalidInputError: non-positive channels/kernel/stride, an even kernel,
            an unknown norm or activation (naming the argument and ``fn``).
    """
    in_channels = V.check_int(in_channels, "in_channels", min_value=1, fn=fn)
    out_channels = V.check_int(out_channels, "out_channels", min_value=1, fn=fn)
    kernel_size = V.check_int(kernel_size, "kernel_size", min_value=1, fn=fn)
    if kernel_size % 2 == 0:
        raise V.fail("kernel_size", f"must be odd, got {kernel_size}", fn)
    stride = V.check_int(stride, "stride", min_value=1, fn=fn)
    if bias is None:
        bias = norm == "none"
    return [
        _CONV[dim](in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=bias),
        make_norm(norm, out_channels, groups, dim=dim, fn=fn),
        make_activation(act, fn=fn),
    ]


def check_channels_first(x: Any, name: str, channels: int, dim: int, fn: str) -> torch.Tensor:
    """Require a floating ``(N, C, H, W)`` (``dim=2``) or ``(N, C, D, H, W)``
    (``dim=3``) tensor with ``C == channels``; returns ``x``."""
    V.check_tensor(x, name, ndim=dim + 2, shape_desc=_SHAPES[dim], floating=True, fn=fn)
    if x.shape[1] != channels:
        raise V.fail(name, f"must have C={channels} channels, got {x.shape[1]}", fn)
    return x
