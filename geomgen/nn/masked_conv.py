"""Masked 3-D convolutions for PixelCNN-style autoregressive models of voxel grids.

Shape letters: ``N`` batch, ``C`` channels, ``D``/``H``/``W`` the grid's
z/y/x sizes (grids are indexed ``grid[n, z, y, x]``).

Voxels are ordered in raster order ``z``, then ``y``, then ``x`` (the
flattening order of ``grid.reshape(N, C, -1)``): voxel ``(z', y', x')``
precedes ``(z, y, x)`` iff ``(z', y', x') < (z, y, x)`` lexicographically.
A :class:`MaskedConv3d` of type

* ``"A"`` sees only voxels strictly before the output voxel (first layer: the
  prediction of voxel ``i`` must not see voxel ``i``);
* ``"B"`` also sees the output voxel itself (later layers, whose input at
  ``i`` already only depends on voxels before ``i``).

So an ``"A"`` layer followed by any number of ``"B"`` layers and pointwise
layers (1x1x1 convolutions, activations) is causal: output ``i`` depends on
inputs ``< i`` only (van den Oord et al., "Pixel Recurrent Neural Networks",
2016, in 3-D and without the per-colour channel masks, as voxel occupancy has
one channel).  Norms that pool over positions or the batch (batch, group,
layer norm) break this, so none are offered here.

::

    net = PixelCNN3d()                            # 37,121 parameters
    logits = net(grid)                            # (N, 1, D, H, W) -> (N, 1, D, H, W)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from geomgen import checks as V
from geomgen.nn.activation import activation_gain_name, make_activation
from geomgen.nn.init import kaiming_init_

__all__ = ["MaskedConv3d", "MaskedResBlock3d", "PixelCNN3d", "causal_mask_3d"]


def _kernel3(kernel_size: Any, fn: str) -> tuple[int, int, int]:
    if isinstance(kernel_size, Sequence) and not isinstance(kernel_size, (str, bytes)):
        ks = tuple(V.check_int(k, "kernel_size", min_value=1, fn=fn) for k in kernel_size)
        if len(ks) != 3:
            raise V.fail("kernel_size", f"must be an int or 3 ints, got {kernel_size!r}", fn)
    else:
        ks = (V.check_int(kernel_size, "kernel_size", min_value=1, fn=fn),) * 3
    if any(k % 2 == 0 for k in ks):
        raise V.fail("kernel_size", f"must be odd, got {kernel_size!r}", fn)
    return ks  # type: ignore[return-value]


def causal_mask_3d(kernel_size: int | Sequence[int], mask_type: str) -> torch.Tensor:
    """The ``(kD, kH, kW)`` 0/1 float mask of a raster-order (z, y, x) causal kernel.

    Tap ``(a, b, c)`` is kept iff it lies before the centre in raster order
    (``"A"``), or before or at it (``"B"``).

    Raises:
        InvalidInputError: even or non-positive kernel sizes, unknown ``mask_type``.
    """
    fn = "causal_mask_3d"
    ks = _kernel3(kernel_size, fn)
    V.check_choice(mask_type, "mask_type", ("A", "B"), fn=fn)
    n = ks[0] * ks[1] * ks[2]
    centre = n // 2  # raster index of (kD // 2, kH // 2, kW // 2) for odd sizes
    idx = torch.arange(n)
    keep = idx < centre if mask_type == "A" else idx <= centre
    return keep.to(torch.float32).view(ks)


class MaskedConv3d(nn.Conv3d):
    """3-D convolution whose kernel only sees voxels before (``"A"``) or up to (``"B"``) the output voxel.

    Stride 1 and "same" padding (zeros), so the output grid has the input's size.

    Args:
        in_channels: ``C_in``.
        out_channels: ``C_out``.
        kernel_size: odd int or three odd ints ``(kD, kH, kW)``.
        mask_type: ``"A"`` or ``"B"`` (see the module docstring).
        bias: learn a bias.
        dilation: kernel dilation (padding follows).

    The masked taps are zero in the effective kernel ``weight * mask`` (the
    stored ``weight`` keeps values there but gets no gradient through them).
    :meth:`reset_parameters` draws Kaiming-normal weights (ReLU gain) with
    ``fan_in = C_in * (unmasked taps)`` and a zero bias.

    Shapes: ``(N, C_in, D, H, W) -> (N, C_out, D, H, W)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int] = 3,
        mask_type: str = "B",
        *,
        bias: bool = True,
        dilation: int = 1,
    ) -> None:
        fn = "MaskedConv3d"
        in_channels = V.check_int(in_channels, "in_channels", min_value=1, fn=fn)
        out_channels = V.check_int(out_channels, "out_channels", min_value=1, fn=fn)
        ks = _kernel3(kernel_size, fn)
        V.check_choice(mask_type, "mask_type", ("A", "B"), fn=fn)
        dilation = V.check_int(dilation, "dilation", min_value=1, fn=fn)
        if mask_type == "A" and ks == (1, 1, 1):
            raise V.fail("kernel_size", "must be larger than 1 for mask_type='A' (the mask would be empty)", fn)
        self.mask_type = mask_type
        padding = tuple(dilation * (k // 2) for k in ks)
        super().__init__(in_channels, out_channels, ks, 1, padding, dilation, bias=bias)
        self.register_buffer("mask", causal_mask_3d(ks, mask_type)[None, None], persistent=False)
        self.reset_parameters()

    def extra_repr(self) -> str:
        return super().extra_repr() + f", mask_type={self.mask_type!r}"

    def effective_fan_in(self) -> int:
        """``C_in / groups`` times the number of unmasked kernel taps."""
        return self.in_channels // self.groups * int(self.mask.sum())

    def reset_parameters(self) -> None:
        """Kaiming-normal weights (ReLU gain) with the masked fan-in, zero bias."""
        if getattr(self, "mask", None) is None:  # called by nn.Conv3d.__init__ before the mask exists
            super().reset_parameters()
            return
        kaiming_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """``(N, C_in, D, H, W) -> (N, C_out, D, H, W)``.

        Raises:
            InvalidInputError: ``x`` not a floating 5-D tensor with ``C_in`` channels.
        """
        fn = "MaskedConv3d.forward"
        V.check_tensor(x, "x", ndim=5, shape_desc="(N, C_in, D, H, W)", floating=True, fn=fn)
        if x.shape[1] != self.in_channels:
            raise V.fail("x", f"must have C_in={self.in_channels} channels, got {x.shape[1]}", fn)
        return F.conv3d(x, self.weight * self.mask, self.bias, self.stride, self.padding, self.dilation, self.groups)


class MaskedResBlock3d(nn.Module):
    """PixelCNN residual block: ``x + conv1x1(act(maskB(act(conv1x1(act(x))))))``.

    The bottleneck has ``C / 2`` channels (at least 1); the middle convolution
    is a type-``"B"`` :class:`MaskedConv3d`, the others are pointwise, so the
    block keeps causality.  Its last convolution starts at zero (the block
    starts as the identity).

    Args:
        channels: ``C``.
        kernel_size: of the masked convolution.
        act: activation name.

    Shapes: ``(N, C, D, H, W) -> (N, C, D, H, W)``.
    """

    def __init__(self, channels: int, kernel_size: int | Sequence[int] = 3, *, act: str = "relu") -> None:
        fn = "MaskedResBlock3d"
        channels = V.check_int(channels, "channels", min_value=1, fn=fn)
        super().__init__()
        self.channels = channels
        h = max(1, channels // 2)
        self.act = make_activation(act, fn=fn)
        self.conv_in = nn.Conv3d(channels, h, 1)
        self.conv_mid = MaskedConv3d(h, h, kernel_size, "B")
        self.conv_out = nn.Conv3d(h, channels, 1)
        nonlin, slope = activation_gain_name(act)
        nn.init.kaiming_normal_(self.conv_in.weight, a=slope, nonlinearity=nonlin)
        nn.init.zeros_(self.conv_in.bias)
        self.reset_special_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, D, H, W) -> (N, C, D, H, W)``."""
        V.check_tensor(x, "x", ndim=5, shape_desc="(N, C, D, H, W)", floating=True, fn="MaskedResBlock3d.forward")
        y = self.conv_in(self.act(x))
        y = self.conv_mid(self.act(y))
        return x + self.conv_out(self.act(y))

    def reset_special_parameters(self) -> None:
        """Zero the last convolution (the block starts as the identity)."""
        with torch.no_grad():
            self.conv_out.weight.zero_()
            self.conv_out.bias.zero_()


class PixelCNN3d(nn.Module):
    """A small autoregressive network over voxel grids: masked ``"A"`` stem, residual ``"B"`` blocks, 1x1 head.

    Output ``[n, :, z, y, x]`` depends only on input voxels before
    ``(z, y, x)`` in raster order, so it can parameterise
    ``p(v_i | v_<i)`` (e.g. Bernoulli logits for occupancy, ``out_channels = 1``,
    or ``K`` logits of a categorical).

    Args:
        in_channels: ``C_in`` (1 for occupancy).
        out_channels: ``C_out`` per voxel.
        hidden: channels of the hidden grids.
        num_blocks: :class:`MaskedResBlock3d` blocks.
        stem_kernel: kernel of the ``"A"`` stem (odd).
        block_kernel: of the blocks.
        act: activation name.

    The defaults (``hidden=32``, 4 blocks, stem 5, blocks 3) have 37,121 parameters.

    Shapes: ``forward(grid (N, C_in, D, H, W)) -> (N, C_out, D, H, W)`` (logits).
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        *,
        hidden: int = 32,
        num_blocks: int = 4,
        stem_kernel: int = 5,
        block_kernel: int = 3,
        act: str = "relu",
    ) -> None:
        fn = "PixelCNN3d"
        in_channels = V.check_int(in_channels, "in_channels", min_value=1, fn=fn)
        out_channels = V.check_int(out_channels, "out_channels", min_value=1, fn=fn)
        hidden = V.check_int(hidden, "hidden", min_value=1, fn=fn)
        num_blocks = V.check_int(num_blocks, "num_blocks", min_value=0, fn=fn)
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.stem = MaskedConv3d(in_channels, hidden, stem_kernel, "A")
        self.blocks = nn.Sequential(*[MaskedResBlock3d(hidden, block_kernel, act=act) for _ in range(num_blocks)])
        self.act = make_activation(act, fn=fn)
        self.head = nn.Sequential(nn.Conv3d(hidden, hidden, 1), make_activation(act, fn=fn), nn.Conv3d(hidden, out_channels, 1))
        nonlin, slope = activation_gain_name(act)
        for m in self.head:
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, a=slope, nonlinearity=nonlin)
                nn.init.zeros_(m.bias)

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        """``(N, C_in, D, H, W) -> (N, C_out, D, H, W)`` logits.

        Raises:
            InvalidInputError: ``grid`` not a floating 5-D tensor with ``C_in`` channels.
        """
        fn = "PixelCNN3d.forward"
        V.check_tensor(grid, "grid", ndim=5, shape_desc="(N, C_in, D, H, W)", floating=True, fn=fn)
        if grid.shape[1] != self.in_channels:
            raise V.fail("grid", f"must have C_in={self.in_channels} channels, got {grid.shape[1]}", fn)
        return self.head(self.act(self.blocks(self.stem(grid))))
