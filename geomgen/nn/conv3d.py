"""3-D convolution blocks for voxel grids, a latent-to-grid decoder and a grid encoder.

Shape letters: ``N`` batch, ``C`` channels, ``D``/``H``/``W`` grid depth,
height and width (geomgen indexes grids ``grid[n, z, y, x]``, so ``D`` runs
along z, ``H`` along y, ``W`` along x), ``L`` latent size.

::

    dec = VoxelDecoder(latent_dim=128, resolution=32)     # 696,777 parameters
    logits = dec(z)                                        # z (N, 128) -> (N, 1, 32, 32, 32)
    enc = VoxelEncoder(out_dim=128)                        # 81,352 parameters
    h = enc(grid)                                          # (N, 1, D, H, W) -> (N, 128)

Down-sampling halves sizes rounding up (``ceil(D / 2)``), up-sampling doubles
them exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from geomgen import checks as V
from geomgen.nn.activation import activation_gain_name, make_activation
from geomgen.nn.conv_block import check_channels_first, conv_norm_act
from geomgen.nn.init import INIT_SCHEMES, init_weights
from geomgen.nn.norm import make_norm

__all__ = ["Conv3dBlock", "ResBlock3d", "Down3d", "Up3d", "VoxelDecoder", "VoxelEncoder", "doubling_levels"]


def _check_grid(x: Any, name: str, channels: int, fn: str) -> torch.Tensor:
    return check_channels_first(x, name, channels, 3, fn)


class Conv3dBlock(nn.Sequential):
    """``Conv3d -> norm -> activation`` with "same" padding (odd kernels).

    Args:
        in_channels: ``C_in``.
        out_channels: ``C_out``.
        kernel_size: odd kernel size (default 3).
        stride: stride.
        norm: :func:`~geomgen.nn.norm.make_norm` kind.
        groups: its maximum group count.
        act: activation name.
        bias: convolution bias; default only when ``norm="none"``.

    Shapes: ``(N, C_in, D, H, W) -> (N, C_out, ceil(D / s), ceil(H / s), ceil(W / s))``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        *,
        norm: str = "batch",
        groups: int = 8,
        act: str = "relu",
        bias: bool | None = None,
    ) -> None:
        super().__init__(*conv_norm_act(3, in_channels, out_channels, kernel_size, stride, norm=norm, groups=groups,
                                        act=act, bias=bias, fn="Conv3dBlock"))
        self.in_channels, self.out_channels = self[0].in_channels, self[0].out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """``(N, C_in, D, H, W) -> (N, C_out, ceil(D / s), ceil(H / s), ceil(W / s))``."""
        return super().forward(_check_grid(x, "x", self.in_channels, "Conv3dBlock.forward"))


class ResBlock3d(nn.Module):
    """3-D residual block of two 3x3x3 convolutions (the 3-D :class:`~geomgen.nn.image_encoder.BasicBlock`).

    ``out = act(norm(conv(act(norm(conv(x))))) + shortcut(x))``; the shortcut
    is a strided 1x1x1 convolution + norm when the shape changes.

    Args:
        in_channels: ``C_in``.
        out_channels: ``C_out`` (default ``C_in``).
        stride: stride of the first convolution.
        norm: as :class:`Conv3dBlock`.
        groups: as :class:`Conv3dBlock`.
        act: as :class:`Conv3dBlock`.
        zero_init_residual: start with the residual branch at zero (kept by
            :func:`~geomgen.nn.init.init_weights`).

    Shapes: ``(N, C_in, D, H, W) -> (N, C_out, ceil(D / s), ceil(H / s), ceil(W / s))``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int | None = None,
        stride: int = 1,
        *,
        norm: str = "batch",
        groups: int = 8,
        act: str = "relu",
        zero_init_residual: bool = False,
    ) -> None:
        fn = "ResBlock3d"
        in_channels = V.check_int(in_channels, "in_channels", min_value=1, fn=fn)
        out_channels = in_channels if out_channels is None else V.check_int(out_channels, "out_channels", min_value=1, fn=fn)
        stride = V.check_int(stride, "stride", min_value=1, fn=fn)
        V.check_bool(zero_init_residual, "zero_init_residual", fn=fn)
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.zero_init_residual = zero_init_residual
        bias = norm == "none"
        self.conv1 = Conv3dBlock(in_channels, out_channels, 3, stride, norm=norm, groups=groups, act=act)
        self.conv2 = nn.Conv3d(out_channels, out_channels, 3, 1, 1, bias=bias)
        self.norm2 = make_norm(norm, out_channels, groups, dim=3, fn=fn)
        if stride != 1 or in_channels != out_channels:
            self.shortcut: nn.Module = nn.Sequential(
                nn.Conv3d(in_channels, out_channels, 1, stride, bias=bias),
                make_norm(norm, out_channels, groups, dim=3, fn=fn),
            )
        else:
            self.shortcut = nn.Identity()
        self.act = make_activation(act, fn=fn)
        self.reset_special_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C_in, D, H, W) -> (N, C_out, ceil(D / s), ceil(H / s), ceil(W / s))``."""
        _check_grid(x, "x", self.in_channels, "ResBlock3d.forward")
        return self.act(self.norm2(self.conv2(self.conv1(x))) + self.shortcut(x))

    def reset_special_parameters(self) -> None:
        """Zero the residual branch when built with ``zero_init_residual=True``."""
        if self.zero_init_residual:
            with torch.no_grad():
                if isinstance(getattr(self.norm2, "weight", None), torch.Tensor):
                    self.norm2.weight.zero_()
                else:
                    self.conv2.weight.zero_()
                    if self.conv2.bias is not None:
                        self.conv2.bias.zero_()


class Down3d(nn.Module):
    """Halve a grid's resolution (rounding up) and change its channels.

    Args:
        in_channels: ``C_in``.
        out_channels: ``C_out``.
        mode: ``"conv"`` (3x3x3 stride-2 :class:`Conv3dBlock`), ``"pool"``
            (2x2x2 max pool with ``ceil_mode``, then a 3x3x3 :class:`Conv3dBlock`)
            or ``"res"`` (stride-2 :class:`ResBlock3d`).
        norm: as :class:`Conv3dBlock`.
        groups: as :class:`Conv3dBlock`.
        act: as :class:`Conv3dBlock`.

    Shapes: ``(N, C_in, D, H, W) -> (N, C_out, ceil(D / 2), ceil(H / 2), ceil(W / 2))``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, *, mode: str = "conv", norm: str = "batch", groups: int = 8,
        act: str = "relu",
    ) -> None:
        fn = "Down3d"
        in_channels = V.check_int(in_channels, "in_channels", min_value=1, fn=fn)
        out_channels = V.check_int(out_channels, "out_channels", min_value=1, fn=fn)
        V.check_choice(mode, "mode", ("conv", "pool", "res"), fn=fn)
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        kw: dict[str, Any] = {"norm": norm, "groups": groups, "act": act}
        if mode == "conv":
            self.body: nn.Module = Conv3dBlock(in_channels, out_channels, 3, 2, **kw)
        elif mode == "pool":
            self.body = nn.Sequential(nn.MaxPool3d(2, ceil_mode=True), Conv3dBlock(in_channels, out_channels, 3, **kw))
        else:
            self.body = ResBlock3d(in_channels, out_channels, 2, **kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C_in, D, H, W) -> (N, C_out, ceil(D / 2), ceil(H / 2), ceil(W / 2))``."""
        return self.body(_check_grid(x, "x", self.in_channels, "Down3d.forward"))


class Up3d(nn.Module):
    """Double a grid's resolution and change its channels.

    Args:
        in_channels: ``C_in``.
        out_channels: ``C_out``.
        mode: ``"transpose"`` (``ConvTranspose3d`` kernel 4, stride 2, padding
            1, then norm and act), ``"trilinear"`` or ``"nearest"`` (upsample
            by 2, then a 3x3x3 :class:`Conv3dBlock`).
        norm: as :class:`Conv3dBlock`.
        groups: as :class:`Conv3dBlock`.
        act: as :class:`Conv3dBlock`.

    Shapes: ``(N, C_in, D, H, W) -> (N, C_out, 2 D, 2 H, 2 W)``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, *, mode: str = "transpose", norm: str = "batch", groups: int = 8,
        act: str = "relu",
    ) -> None:
        fn = "Up3d"
        in_channels = V.check_int(in_channels, "in_channels", min_value=1, fn=fn)
        out_channels = V.check_int(out_channels, "out_channels", min_value=1, fn=fn)
        V.check_choice(mode, "mode", ("transpose", "trilinear", "nearest"), fn=fn)
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        if mode == "transpose":
            self.body: nn.Module = nn.Sequential(
                nn.ConvTranspose3d(in_channels, out_channels, 4, 2, 1, bias=norm == "none"),
                make_norm(norm, out_channels, groups, dim=3, fn=fn),
                make_activation(act, fn=fn),
            )
        else:
            up = nn.Upsample(scale_factor=2, mode=mode, align_corners=False if mode == "trilinear" else None)
            self.body = nn.Sequential(up, Conv3dBlock(in_channels, out_channels, 3, norm=norm, groups=groups, act=act))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C_in, D, H, W) -> (N, C_out, 2 D, 2 H, 2 W)``."""
        return self.body(_check_grid(x, "x", self.in_channels, "Up3d.forward"))


def doubling_levels(resolution: int, start: int, min_levels: int = 0, fn: str | None = None) -> int:
    """``k`` with ``resolution = start * 2^k`` and ``k >= min_levels``: how many
    2x up-samplings take a ``start^3`` grid to ``resolution^3``.

    Raises:
        InvalidInputError: ``resolution`` is not such a multiple (the message
            names ``resolution`` and ``fn``).
    """
    ratio = resolution // start
    if resolution % start or ratio < 1 or ratio & (ratio - 1) or ratio < 2 ** min_levels:
        at_least = f" (>= {2 ** min_levels})" if min_levels else ""
        raise V.fail(
            "resolution", f"must be start_resolution ({start}) times a power of 2{at_least}, got {resolution}", fn
        )
    return int(math.log2(ratio))


class VoxelDecoder(nn.Module):
    """Decode a latent vector to a cubic grid: linear layer to a coarse grid, then up-sampling.

    ``z -> Linear -> (N, C_0, S, S, S) -> norm, act -> Up3d ... -> (N, C_k, R, R, R) -> Conv3d -> out``
    with ``S = start_resolution``, ``R = resolution = S * 2^k``.  The output
    has no final activation (logits for occupancy; apply sigmoid/tanh yourself).

    Args:
        latent_dim: ``L``.
        out_channels: ``C_out`` of the output grid (1 for occupancy logits).
        resolution: output side ``R``; must be ``start_resolution * 2^k``.
        channels: channels ``(C_0, ..., C_k)`` of the ``k + 1`` grids from
            ``S`` to ``R``; default ``max(8, 64 / 2^i)``, i.e. ``(64, 32, 16, 8)``
            for ``R = 32``, ``S = 4``.
        start_resolution: side ``S`` of the first grid.
        up_mode: :class:`Up3d` mode.
        blocks_per_level: :class:`ResBlock3d` blocks after each up-sampling.
        norm: as :class:`Conv3dBlock`.
        groups: as :class:`Conv3dBlock`.
        act: as :class:`Conv3dBlock`.
        init: :func:`~geomgen.nn.init.init_weights` scheme.

    The defaults have 696,777 parameters.

    Shapes: ``forward(z (N, L)) -> (N, C_out, R, R, R)``.
    """

    def __init__(
        self,
        latent_dim: int = 128,
        out_channels: int = 1,
        resolution: int = 32,
        *,
        channels: Sequence[int] | None = None,
        start_resolution: int = 4,
        up_mode: str = "transpose",
        blocks_per_level: int = 0,
        norm: str = "batch",
        groups: int = 8,
        act: str = "relu",
        init: str = "kaiming",
    ) -> None:
        fn = "VoxelDecoder"
        latent_dim = V.check_int(latent_dim, "latent_dim", min_value=1, fn=fn)
        out_channels = V.check_int(out_channels, "out_channels", min_value=1, fn=fn)
        resolution = V.check_int(resolution, "resolution", min_value=1, fn=fn)
        start_resolution = V.check_int(start_resolution, "start_resolution", min_value=1, fn=fn)
        blocks_per_level = V.check_int(blocks_per_level, "blocks_per_level", min_value=0, fn=fn)
        V.check_choice(init, "init", INIT_SCHEMES, fn=fn)
        n_up = doubling_levels(resolution, start_resolution, fn=fn)
        if channels is None:
            chans = tuple(max(8, 64 >> i) for i in range(n_up + 1))
        else:
            chans = tuple(V.check_int_list(channels, "channels", fn=fn))
            if len(chans) != n_up + 1:
                raise V.fail(
                    "channels",
                    f"must have {n_up + 1} entries (grids {start_resolution}..{resolution}), got {len(chans)}",
                    fn,
                )
        super().__init__()
        self.latent_dim, self.out_channels, self.resolution = latent_dim, out_channels, resolution
        self.start_resolution = start_resolution
        self.channels = chans
        self.fc = nn.Linear(latent_dim, chans[0] * start_resolution**3, bias=norm == "none")
        self.fc_norm = make_norm(norm, chans[0], groups, dim=3, fn=fn)
        self.fc_act = make_activation(act, fn=fn)
        kw: dict[str, Any] = {"norm": norm, "groups": groups, "act": act}
        layers: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers.append(Up3d(cin, cout, mode=up_mode, **kw))
            layers += [ResBlock3d(cout, **kw) for _ in range(blocks_per_level)]
        self.ups = nn.Sequential(*layers)
        self.head = nn.Conv3d(chans[-1], out_channels, 3, 1, 1)
        nonlin, slope = activation_gain_name(act)
        init_weights(self, init, nonlinearity=nonlin, a=slope)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Decode ``z (N, L)`` to ``(N, C_out, R, R, R)`` (no output activation).

        Raises:
            InvalidInputError: ``z`` not a floating ``(N, L)`` tensor.
        """
        fn = "VoxelDecoder.forward"
        V.check_tensor(z, "z", ndim=2, shape_desc="(N, L)", floating=True, fn=fn)
        if z.shape[1] != self.latent_dim:
            raise V.fail("z", f"must have L={self.latent_dim} features, got {z.shape[1]}", fn)
        s = self.start_resolution
        x = self.fc(z).view(z.shape[0], self.channels[0], s, s, s)
        return self.head(self.ups(self.fc_act(self.fc_norm(x))))


class VoxelEncoder(nn.Module):
    """Encode a grid ``(N, C_in, D, H, W)`` to a vector ``(N, out_dim)``.

    ``Conv3dBlock(C_in -> C_0) -> Down3d(C_0 -> C_1) -> ... -> pool -> Linear``.

    Args:
        in_channels: ``C_in`` (1 for occupancy).
        out_dim: ``F`` of the output vector.
        channels: channels of the successive grids; each entry after the
            first halves the resolution.  Default ``(8, 16, 32, 64)``.
        down_mode: :class:`Down3d` mode.
        pool: ``"avg"`` or ``"max"`` global pooling (any input size), or
            ``"flatten"`` (the whole last grid feeds the linear layer; needs
            ``resolution``, the input side, and only takes that size).
        resolution: input side ``R`` for ``pool="flatten"``.
        norm: as :class:`Conv3dBlock` (``"none"`` suits GAN discriminators).
        groups: as :class:`Conv3dBlock`.
        act: as :class:`Conv3dBlock` (``"leaky_relu"`` suits GAN discriminators).
        init: :func:`~geomgen.nn.init.init_weights` scheme.

    The defaults have 81,352 parameters.

    Shapes: ``forward(grid (N, C_in, D, H, W)) -> (N, F)``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_dim: int = 128,
        *,
        channels: Sequence[int] = (8, 16, 32, 64),
        down_mode: str = "conv",
        pool: str = "avg",
        resolution: int | None = None,
        norm: str = "batch",
        groups: int = 8,
        act: str = "relu",
        init: str = "kaiming",
    ) -> None:
        fn = "VoxelEncoder"
        in_channels = V.check_int(in_channels, "in_channels", min_value=1, fn=fn)
        out_dim = V.check_int(out_dim, "out_dim", min_value=1, fn=fn)
        chans = tuple(V.check_int_list(channels, "channels", fn=fn))
        V.check_choice(pool, "pool", ("avg", "max", "flatten"), fn=fn)
        V.check_choice(init, "init", INIT_SCHEMES, fn=fn)
        flat = 1
        if pool == "flatten":
            if resolution is None:
                raise V.fail("resolution", "must be given with pool='flatten'", fn)
            resolution = V.check_int(resolution, "resolution", min_value=1, fn=fn)
            side = resolution
            for _ in chans[1:]:
                side = math.ceil(side / 2)
            flat = side**3
        super().__init__()
        self.in_channels, self.out_dim, self.pool, self.resolution = in_channels, out_dim, pool, resolution
        kw: dict[str, Any] = {"norm": norm, "groups": groups, "act": act}
        layers: list[nn.Module] = [Conv3dBlock(in_channels, chans[0], 3, **kw)]
        layers += [Down3d(cin, cout, mode=down_mode, **kw) for cin, cout in zip(chans[:-1], chans[1:])]
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(chans[-1] * flat, out_dim)
        nonlin, slope = activation_gain_name(act)
        init_weights(self, init, nonlinearity=nonlin, a=slope)

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        """Encode ``grid (N, C_in, D, H, W)`` to ``(N, F)``.

        Raises:
            InvalidInputError: ``grid`` not a floating 5-D tensor with ``C_in``
                channels (of side ``resolution`` for ``pool="flatten"``).
        """
        fn = "VoxelEncoder.forward"
        _check_grid(grid, "grid", self.in_channels, fn)
        if self.pool == "flatten" and tuple(grid.shape[2:]) != (self.resolution,) * 3:
            r = self.resolution
            raise V.fail("grid", f"must have spatial size ({r}, {r}, {r}) with pool='flatten', got {tuple(grid.shape[2:])}", fn)
        x = self.body(grid)
        if self.pool == "avg":
            x = x.mean(dim=(2, 3, 4))
        elif self.pool == "max":
            x = x.amax(dim=(2, 3, 4))
        else:
            x = x.flatten(1)
        return self.fc(x)
