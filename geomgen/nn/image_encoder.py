"""ResNet-style 2-D image encoder returning a feature pyramid and a global vector.

Shape letters: ``N`` batch, ``C`` channels, ``H``/``W`` height/width,
``D`` size of the pooled global vector.

::

    enc = ResNetEncoder()                          # the "small" preset, 1.23 M parameters
    feats, vec = enc(images)                       # images (N, 3, H, W)
    # feats: [(N, 32, H/2, W/2), (N, 64, H/4, W/4), (N, 128, H/8, W/8), (N, 256, H/16, W/16)]
    # vec:   (N, 256)
    enc = ResNetEncoder.from_name("resnet18", stem="small", norm="group")

The blocks are the classic residual blocks of He et al. ("Deep Residual
Learning for Image Recognition", 2016): :class:`BasicBlock` (two 3x3
convolutions) and :class:`Bottleneck` (1x1, 3x3, 1x1 with expansion 4; the
stride sits on the 3x3 convolution), post-activation, with a projection
shortcut (1x1 convolution + norm) where the shape changes.  Spatial sizes are
``ceil(H / stride)`` at every level, so odd sizes work.

Parameter counts (``in_channels=3``, ``out_dim=None``):

============  =========  ====================  ========  =============
preset        widths     depths / block         stem      parameters
============  =========  ====================  ========  =============
``tiny``      16..128    1,1,1,1 basic          small     307,536
``small``     32..256    1,1,1,1 basic          small     1,226,400
``resnet10``  64..512    1,1,1,1 basic          imagenet  4,905,792
``resnet18``  64..512    2,2,2,2 basic          imagenet  11,176,512
``resnet34``  64..512    3,4,6,3 basic          imagenet  21,284,672
``resnet50``  64..512    3,4,6,3 bottleneck     imagenet  23,508,032
============  =========  ====================  ========  =============

(``resnet18``/``34``/``50`` have the parameter counts of torchvision's
models without their classifier.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import nn

from geomgen import checks as V
from geomgen.nn.activation import activation_gain_name, make_activation
from geomgen.nn.conv_block import check_channels_first, conv_norm_act
from geomgen.nn.init import INIT_SCHEMES, init_weights
from geomgen.nn.norm import make_norm

__all__ = ["Conv2dBlock", "BasicBlock", "Bottleneck", "ResNetEncoder", "EncoderOutput", "RESNET_PRESETS"]


def _norm_has_affine(norm: nn.Module) -> bool:
    return isinstance(getattr(norm, "weight", None), torch.Tensor)


def _zero_last(norm: nn.Module, conv: nn.Conv2d) -> None:
    """Make a residual branch output zeros: zero its last norm's scale (or, with
    no affine norm, its last convolution)."""
    with torch.no_grad():
        if _norm_has_affine(norm):
            norm.weight.zero_()
        else:
            conv.weight.zero_()
            if conv.bias is not None:
                conv.bias.zero_()


def _check_image(x: Any, name: str, channels: int, fn: str) -> torch.Tensor:
    return check_channels_first(x, name, channels, 2, fn)


class Conv2dBlock(nn.Sequential):
    """``Conv2d -> norm -> activation`` ("same" padding for odd kernels).

    Args:
        in_channels: ``C_in``.
        out_channels: ``C_out``.
        kernel_size: odd kernel size (default 3).
        stride: stride; the output is ``(N, C_out, ceil(H / stride), ceil(W / stride))``.
        norm: :func:`~geomgen.nn.norm.make_norm` kind.
        groups: maximum group count of ``norm="group"``.
        act: :func:`~geomgen.nn.activation.make_activation` name.
        bias: convolution bias; default: only when ``norm="none"``.

    Shapes: ``(N, C_in, H, W) -> (N, C_out, ceil(H / stride), ceil(W / stride))``.
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
        super().__init__(*conv_norm_act(2, in_channels, out_channels, kernel_size, stride, norm=norm, groups=groups,
                                        act=act, bias=bias, fn="Conv2dBlock"))
        self.in_channels, self.out_channels = self[0].in_channels, self[0].out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """``(N, C_in, H, W) -> (N, C_out, ceil(H / stride), ceil(W / stride))``."""
        _check_image(x, "x", self.in_channels, "Conv2dBlock.forward")
        return super().forward(x)


class BasicBlock(nn.Module):
    """Residual block of two 3x3 convolutions (ResNet-18/34).

    ``out = act(norm(conv(act(norm(conv(x))))) + shortcut(x))`` where the
    shortcut is the identity, or a strided 1x1 convolution + norm when the
    stride or channel count changes.

    Args:
        in_channels: ``C_in``.
        channels: width ``C``; the output has ``C * expansion = C`` channels.
        stride: stride of the first convolution (and of the shortcut).
        norm: norm kind.
        groups: its maximum group count.
        act: activation.
        zero_init_residual: start with the residual branch at zero (its last
            norm's scale, or last convolution with ``norm="none"``), so the
            block starts as ``act(shortcut(x))``; kept by :func:`init_weights`.

    Shapes: ``(N, C_in, H, W) -> (N, C, ceil(H / stride), ceil(W / stride))``.
    """

    expansion = 1

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        *,
        norm: str = "batch",
        groups: int = 8,
        act: str = "relu",
        zero_init_residual: bool = False,
    ) -> None:
        fn = type(self).__name__
        in_channels = V.check_int(in_channels, "in_channels", min_value=1, fn=fn)
        channels = V.check_int(channels, "channels", min_value=1, fn=fn)
        stride = V.check_int(stride, "stride", min_value=1, fn=fn)
        V.check_bool(zero_init_residual, "zero_init_residual", fn=fn)
        super().__init__()
        out = channels * self.expansion
        self.in_channels, self.out_channels, self.stride = in_channels, out, stride
        self.zero_init_residual = zero_init_residual
        bias = norm == "none"
        self._build(in_channels, channels, out, stride, norm, groups, act, bias, fn)
        if stride != 1 or in_channels != out:
            self.shortcut: nn.Module = nn.Sequential(
                nn.Conv2d(in_channels, out, 1, stride, bias=bias), make_norm(norm, out, groups, dim=2, fn=fn)
            )
        else:
            self.shortcut = nn.Identity()
        self.act = make_activation(act, fn=fn)
        self.reset_special_parameters()

    def _build(
        self, cin: int, c: int, out: int, stride: int, norm: str, groups: int, act: str, bias: bool, fn: str
    ) -> None:
        self.conv1 = nn.Conv2d(cin, c, 3, stride, 1, bias=bias)
        self.norm1 = make_norm(norm, c, groups, dim=2, fn=fn)
        self.act1 = make_activation(act, fn=fn)
        self.conv2 = nn.Conv2d(c, out, 3, 1, 1, bias=bias)
        self.norm2 = make_norm(norm, out, groups, dim=2, fn=fn)

    def _last(self) -> tuple[nn.Module, nn.Conv2d]:
        return self.norm2, self.conv2

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm2(self.conv2(self.act1(self.norm1(self.conv1(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C_in, H, W) -> (N, C_out, ceil(H / stride), ceil(W / stride))``."""
        _check_image(x, "x", self.in_channels, f"{type(self).__name__}.forward")
        return self.act(self._residual(x) + self.shortcut(x))

    def reset_special_parameters(self) -> None:
        """Zero the residual branch when built with ``zero_init_residual=True``."""
        if self.zero_init_residual:
            _zero_last(*self._last())


class Bottleneck(BasicBlock):
    """Bottleneck residual block ``1x1 -> 3x3 (stride) -> 1x1`` (ResNet-50).

    Same arguments as :class:`BasicBlock`; the output has ``4 * channels``
    channels (``expansion = 4``).

    Shapes: ``(N, C_in, H, W) -> (N, 4 C, ceil(H / stride), ceil(W / stride))``.
    """

    expansion = 4

    def _build(
        self, cin: int, c: int, out: int, stride: int, norm: str, groups: int, act: str, bias: bool, fn: str
    ) -> None:
        self.conv1 = nn.Conv2d(cin, c, 1, bias=bias)
        self.norm1 = make_norm(norm, c, groups, dim=2, fn=fn)
        self.act1 = make_activation(act, fn=fn)
        self.conv2 = nn.Conv2d(c, c, 3, stride, 1, bias=bias)
        self.norm2 = make_norm(norm, c, groups, dim=2, fn=fn)
        self.act2 = make_activation(act, fn=fn)
        self.conv3 = nn.Conv2d(c, out, 1, bias=bias)
        self.norm3 = make_norm(norm, out, groups, dim=2, fn=fn)

    def _last(self) -> tuple[nn.Module, nn.Conv2d]:
        return self.norm3, self.conv3

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act1(self.norm1(self.conv1(x)))
        y = self.act2(self.norm2(self.conv2(y)))
        return self.norm3(self.conv3(y))


class EncoderOutput(NamedTuple):
    """What :class:`ResNetEncoder` returns; unpacks as ``feats, vec = enc(x)``.

    Attributes:
        features: one ``(N, C_i, H_i, W_i)`` map per stage, finest first.
        pooled: ``(N, D)`` global vector.
    """

    features: list[torch.Tensor]
    pooled: torch.Tensor


_BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}

#: Named configurations of :meth:`ResNetEncoder.from_name` (constructor keyword arguments).
RESNET_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"widths": (16, 32, 64, 128), "depths": (1, 1, 1, 1)},
    "small": {"widths": (32, 64, 128, 256), "depths": (1, 1, 1, 1)},
    "resnet10": {"widths": (64, 128, 256, 512), "depths": (1, 1, 1, 1), "stem": "imagenet"},
    "resnet18": {"widths": (64, 128, 256, 512), "depths": (2, 2, 2, 2), "stem": "imagenet"},
    "resnet34": {"widths": (64, 128, 256, 512), "depths": (3, 4, 6, 3), "stem": "imagenet"},
    "resnet50": {"widths": (64, 128, 256, 512), "depths": (3, 4, 6, 3), "stem": "imagenet", "block": "bottleneck"},
}


def _int_tuple(value: Any, name: str, fn: str, *, min_value: int, length: int | None = None) -> tuple[int, ...]:
    out = tuple(V.check_int_list(value, name, min_value=min_value, fn=fn))
    if length is not None and len(out) != length:
        raise V.fail(name, f"must have {length} entries (one per stage), got {len(out)}", fn)
    return out


class ResNetEncoder(nn.Module):
    """ResNet-style image encoder: stem, stages of residual blocks, global pooling.

    Args:
        in_channels: ``C_in`` of the images (3 for RGB, 1 for depth, 4 for RGB-D).
        widths: block width of each stage; stage ``i`` outputs
            ``widths[i] * expansion`` channels (expansion 1 for ``"basic"``, 4
            for ``"bottleneck"``).  Default ``(32, 64, 128, 256)``.
        depths: number of blocks per stage (same length as ``widths``).
        block: ``"basic"`` (:class:`BasicBlock`) or ``"bottleneck"`` (:class:`Bottleneck`).
        stem: ``"small"`` (one 3x3 convolution with stride ``stem_stride``,
            norm, act: for small images such as 64x64) or ``"imagenet"``
            (7x7 stride-2 convolution, norm, act, 3x3 stride-2 max pool:
            stride 4, as torchvision's ResNets).
        stem_channels: stem output channels; default ``widths[0]``.
        stem_stride: stride of the ``"small"`` stem (1 or 2; default 2).
        strides: stride of the first block of each stage; default 1 for the
            first stage, 2 for the others.
        norm: :func:`~geomgen.nn.norm.make_norm` kind for every norm.
        groups: maximum group count of ``norm="group"``.
        act: activation name.
        pool: global pooling of the last map: ``"avg"`` or ``"max"``.
        out_dim: if given, a linear layer maps the pooled vector to ``D = out_dim``;
            otherwise ``D`` is the last stage's channel count.
        zero_init_residual: start every residual branch at zero.
        init: :func:`~geomgen.nn.init.init_weights` scheme, applied with the
            activation's gain (``"kaiming"``: ``std = sqrt(2 / fan_in)`` for ReLU).

    Attributes:
        feature_channels: ``C_i`` of each pyramid level.
        feature_strides: total stride of each level: ``H_i = ceil(H / stride_i)``,
            ``W_i = ceil(W / stride_i)``.
        out_dim: ``D``.

    Shapes: ``forward(images (N, C_in, H, W))`` returns an
    :class:`EncoderOutput` ``(features, pooled)`` with ``features[i]`` of shape
    ``(N, C_i, H_i, W_i)`` and ``pooled`` of shape ``(N, D)``.

    The defaults (the ``"small"`` preset) have 1,226,400 parameters; see the
    module docstring for the other presets.
    """

    def __init__(
        self,
        in_channels: int = 3,
        *,
        widths: Sequence[int] = (32, 64, 128, 256),
        depths: Sequence[int] = (1, 1, 1, 1),
        block: str = "basic",
        stem: str = "small",
        stem_channels: int | None = None,
        stem_stride: int = 2,
        strides: Sequence[int] | None = None,
        norm: str = "batch",
        groups: int = 8,
        act: str = "relu",
        pool: str = "avg",
        out_dim: int | None = None,
        zero_init_residual: bool = False,
        init: str = "kaiming",
    ) -> None:
        fn = "ResNetEncoder"
        in_channels = V.check_int(in_channels, "in_channels", min_value=1, fn=fn)
        widths = _int_tuple(widths, "widths", fn, min_value=1)
        depths = _int_tuple(depths, "depths", fn, min_value=1, length=len(widths))
        strides = (
            (1,) + (2,) * (len(widths) - 1)
            if strides is None
            else _int_tuple(strides, "strides", fn, min_value=1, length=len(widths))
        )
        V.check_choice(block, "block", tuple(_BLOCKS), fn=fn)
        V.check_choice(stem, "stem", ("small", "imagenet"), fn=fn)
        stem_channels = widths[0] if stem_channels is None else V.check_int(stem_channels, "stem_channels", min_value=1, fn=fn)
        stem_stride = V.check_int(stem_stride, "stem_stride", min_value=1, max_value=2, fn=fn)
        V.check_choice(pool, "pool", ("avg", "max"), fn=fn)
        if out_dim is not None:
            out_dim = V.check_int(out_dim, "out_dim", min_value=1, fn=fn)
        V.check_choice(init, "init", INIT_SCHEMES, fn=fn)
        V.check_bool(zero_init_residual, "zero_init_residual", fn=fn)
        make_norm(norm, 1, groups, fn=fn)  # validates norm/groups before anything is built
        make_activation(act, fn=fn)
        super().__init__()
        self.in_channels = in_channels
        self.pool = pool
        if stem == "small":
            self.stem: nn.Module = Conv2dBlock(
                in_channels, stem_channels, 3, stem_stride, norm=norm, groups=groups, act=act
            )
            total = stem_stride
        else:
            self.stem = nn.Sequential(
                Conv2dBlock(in_channels, stem_channels, 7, 2, norm=norm, groups=groups, act=act),
                nn.MaxPool2d(3, 2, 1),
            )
            total = 4
        cls = _BLOCKS[block]
        stages = []
        chans, fstrides = [], []
        cin = stem_channels
        for width, depth, stride in zip(widths, depths, strides):
            blocks = []
            for b in range(depth):
                blk = cls(
                    cin, width, stride if b == 0 else 1,
                    norm=norm, groups=groups, act=act, zero_init_residual=zero_init_residual,
                )
                blocks.append(blk)
                cin = blk.out_channels
            stages.append(nn.Sequential(*blocks))
            total *= stride
            chans.append(cin)
            fstrides.append(total)
        self.stages = nn.ModuleList(stages)
        self.feature_channels: tuple[int, ...] = tuple(chans)
        self.feature_strides: tuple[int, ...] = tuple(fstrides)
        self.head: nn.Module = nn.Linear(cin, out_dim) if out_dim is not None else nn.Identity()
        self.out_dim: int = out_dim if out_dim is not None else cin
        nonlin, slope = activation_gain_name(act)
        init_weights(self, init, nonlinearity=nonlin, a=slope)

    @classmethod
    def from_name(cls, name: str, **overrides: Any) -> "ResNetEncoder":
        """Build a preset of :data:`RESNET_PRESETS` (``"tiny"``, ``"small"``,
        ``"resnet10"``, ``"resnet18"``, ``"resnet34"``, ``"resnet50"``); keyword
        ``overrides`` replace any constructor argument (e.g. ``stem="small"``,
        ``in_channels=1``, ``norm="group"``).

        Raises:
            InvalidInputError: unknown ``name`` or bad overrides.
        """
        V.check_choice(name, "name", tuple(RESNET_PRESETS), fn="ResNetEncoder.from_name")
        kwargs = dict(RESNET_PRESETS[name])
        kwargs.update(overrides)
        return cls(**kwargs)

    def forward(self, images: torch.Tensor) -> EncoderOutput:
        """Encode a batch of images.

        Args:
            images: ``(N, C_in, H, W)`` floating tensor.

        Returns:
            :class:`EncoderOutput` ``(features, pooled)``: ``features[i]`` is
            ``(N, C_i, H_i, W_i)`` (finest first), ``pooled`` is ``(N, D)``.

        Raises:
            InvalidInputError: ``images`` not a 4-D floating tensor with ``C_in`` channels.
        """
        fn = "ResNetEncoder.forward"
        _check_image(images, "images", self.in_channels, fn)
        x = self.stem(images)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        if self.pool == "avg":
            g = x.mean(dim=(2, 3))
        else:
            g = x.amax(dim=(2, 3))
        return EncoderOutput(feats, self.head(g))

    def feature_sizes(self, height: int, width: int) -> list[tuple[int, int]]:
        """``(H_i, W_i)`` of each level for an ``H x W`` input."""
        h, w = height, width
        out = []
        convs: list[tuple[int, int, int]] = []  # (kernel, stride, padding) of the down-sampling layers
        stem = self.stem
        if isinstance(stem, Conv2dBlock):
            c = stem[0]
            convs.append((c.kernel_size[0], c.stride[0], c.padding[0]))
        else:
            c = stem[0][0]
            convs += [(c.kernel_size[0], c.stride[0], c.padding[0]), (3, 2, 1)]
        for k, s, p in convs:
            h, w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        for stage in self.stages:
            s = stage[0].stride
            h, w = math.ceil(h / s), math.ceil(w / s)
            out.append((h, w))
        return out
