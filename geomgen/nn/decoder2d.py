"""U-Net style 2-D decoder over an image-encoder feature pyramid: dense per-pixel outputs.

Shape letters: ``N`` batch, ``C`` channels, ``H``/``W`` the input image's
height/width, ``H_i``/``W_i`` the size of pyramid level ``i``.

::

    enc = ResNetEncoder.from_name("tiny")                 # strides 2, 4, 8, 16
    dec = UNetDecoder2d.from_encoder(enc, out_channels=2)  # widths (64, 32, 16, 16), 147,746 parameters
    feats, _ = enc(images)                                 # images (N, 3, 64, 64)
    out = dec(feats, size=(64, 64))                        # (N, 2, 64, 64)

The decoder starts at the coarsest level and, once per level, upsamples
(bilinear / nearest interpolation or a transposed convolution), concatenates
the next finer encoder map (the skip connection; U-Net, Ronneberger et al.,
MICCAI 2015) and applies ``depth`` :class:`~geomgen.nn.image_encoder.Conv2dBlock`
layers.  A last stage upsamples from the finest level (stride ``strides[0]``,
2 for the ResNet stems) to the output size, optionally concatenating a
full-resolution tensor (e.g. the input image, ``skip_channels``), and a 1x1
convolution with bias (no norm, no activation) maps to ``C_out`` channels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from geomgen import checks as V
from geomgen.nn.activation import activation_gain_name, make_activation
from geomgen.nn.conv_block import check_channels_first
from geomgen.nn.image_encoder import Conv2dBlock
from geomgen.nn.init import INIT_SCHEMES, init_weights
from geomgen.nn.norm import make_norm

__all__ = ["UNetDecoder2d", "UPSAMPLE_MODES"]

#: Accepted values of ``UNetDecoder2d(..., upsample=...)``.
UPSAMPLE_MODES: tuple[str, ...] = ("bilinear", "nearest", "transposed")

_FN = "UNetDecoder2d"


class _Stage(nn.Module):
    """One decoder stage: upsample ``x`` to the skip's size, concatenate, convolve.

    Shapes: ``x (N, C_x, h, w)``, ``skip (N, C_s, H', W')`` or None ->
    ``(N, C_out, H', W')`` (``size`` gives ``(H', W')`` when there is no skip).
    """

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, ratio: int, *, upsample: str,
                 depth: int, norm: str, groups: int, act: str) -> None:
        super().__init__()
        self.upsample, self.ratio = upsample, ratio
        self.in_channels, self.skip_channels, self.out_channels = in_channels, skip_channels, out_channels
        if upsample == "transposed" and ratio > 1:
            self.up: nn.Module = nn.Sequential(
                nn.ConvTranspose2d(in_channels, in_channels, ratio, ratio, bias=norm == "none"),
                make_norm(norm, in_channels, groups, dim=2, fn=_FN),
                make_activation(act, fn=_FN),
            )
        else:
            self.up = nn.Identity()
        cin = in_channels + skip_channels
        self.convs = nn.Sequential(*[
            Conv2dBlock(cin if i == 0 else out_channels, out_channels, 3, norm=norm, groups=groups, act=act)
            for i in range(depth)
        ])

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None, size: tuple[int, int]) -> torch.Tensor:
        if tuple(x.shape[-2:]) != size:
            if self.upsample == "transposed" and self.ratio > 1:
                x = self.up(x)
                if tuple(x.shape[-2:]) != size:  # ceil-sized levels: crop (or pad) to the target
                    x = x[..., : size[0], : size[1]]
                    ph, pw = size[0] - x.shape[-2], size[1] - x.shape[-1]
                    if ph > 0 or pw > 0:
                        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
            elif self.upsample == "nearest":
                x = F.interpolate(x, size=size, mode="nearest")
            else:
                x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.convs(x)


class UNetDecoder2d(nn.Module):
    """U-Net decoder: feature pyramid (finest first) -> ``(N, C_out, H, W)`` map.

    Args:
        encoder_channels: ``C_i`` of each pyramid level, finest first (e.g.
            :attr:`ResNetEncoder.feature_channels`).
        out_channels: ``C_out`` of the output map.
        widths: output channels of each decoder stage, coarse to fine, one per
            pyramid level: stage ``j`` produces the map at the stride of level
            ``L - 2 - j`` (the last stage: full resolution).  Default: the
            encoder channels of the next finer level (``encoder_channels[::-1][1:]``)
            followed by ``encoder_channels[0]`` for the full-resolution stage.
        strides: total stride of each level, finest first (e.g.
            :attr:`ResNetEncoder.feature_strides`); default ``2, 4, 8, ...``.
            Consecutive strides must divide each other (for ``"transposed"``).
        upsample: ``"bilinear"`` (default), ``"nearest"`` or ``"transposed"``
            (a learned ``ConvTranspose2d`` with kernel = stride = the stride
            ratio, followed by norm and activation; cropped to ceil-sized
            levels).
        depth: :class:`Conv2dBlock` layers per stage (3x3, "same" padding).
        skip_channels: channels of an optional full-resolution tensor
            concatenated in the last stage (e.g. 3 for the input image); 0 = none.
        norm: :func:`~geomgen.nn.norm.make_norm` kind of every block.
        groups: maximum group count of ``norm="group"``.
        act: activation of every block (the head has none).
        init: :func:`~geomgen.nn.init.init_weights` scheme (with the activation's gain).

    Attributes:
        out_channels: ``C_out``.
        widths: the stage widths.

    Shapes: ``forward(features, size=None, skip=None)``: ``features[i]`` of
    shape ``(N, C_i, H_i, W_i)``; returns ``(N, C_out, H, W)`` with
    ``(H, W) = size`` (default ``(H_0 * strides[0], W_0 * strides[0])``).
    """

    def __init__(
        self,
        encoder_channels: Sequence[int],
        out_channels: int,
        widths: Sequence[int] | None = None,
        *,
        strides: Sequence[int] | None = None,
        upsample: str = "bilinear",
        depth: int = 1,
        skip_channels: int = 0,
        norm: str = "batch",
        groups: int = 8,
        act: str = "relu",
        init: str = "kaiming",
    ) -> None:
        enc = tuple(V.check_int_list(encoder_channels, "encoder_channels", fn=_FN))
        out_channels = V.check_int(out_channels, "out_channels", min_value=1, fn=_FN)
        L = len(enc)
        if widths is None:
            widths = tuple(enc[::-1][1:]) + (enc[0],)
        widths = tuple(V.check_int_list(widths, "widths", fn=_FN))
        if len(widths) != L:
            raise V.fail("widths", f"must have {L} entries (one per pyramid level), got {len(widths)}", _FN)
        strides = tuple(2 ** (i + 1) for i in range(L)) if strides is None else tuple(V.check_int_list(strides, "strides", fn=_FN))
        if len(strides) != L:
            raise V.fail("strides", f"must have {L} entries (one per pyramid level), got {len(strides)}", _FN)
        for a, b in zip(strides[:-1], strides[1:]):
            if b < a or b % a:
                raise V.fail("strides", f"must be non-decreasing, each dividing the next, got {strides}", _FN)
        V.check_choice(upsample, "upsample", UPSAMPLE_MODES, fn=_FN)
        depth = V.check_int(depth, "depth", min_value=1, fn=_FN)
        skip_channels = V.check_int(skip_channels, "skip_channels", min_value=0, fn=_FN)
        V.check_choice(init, "init", INIT_SCHEMES, fn=_FN)
        make_norm(norm, 1, groups, fn=_FN)  # validates norm / groups before anything is built
        make_activation(act, fn=_FN)
        super().__init__()
        self.encoder_channels, self.out_channels, self.widths, self.strides = enc, out_channels, widths, strides
        self.skip_channels = skip_channels
        kw = dict(upsample=upsample, depth=depth, norm=norm, groups=groups, act=act)
        stages = []
        cin = enc[-1]
        for j in range(L - 1):  # coarse -> fine, with the encoder skips
            lvl = L - 2 - j
            stages.append(_Stage(cin, enc[lvl], widths[j], strides[lvl + 1] // strides[lvl], **kw))
            cin = widths[j]
        stages.append(_Stage(cin, skip_channels, widths[-1], strides[0], **kw))  # to full resolution
        self.stages = nn.ModuleList(stages)
        self.head = nn.Conv2d(widths[-1], out_channels, 1)
        nonlin, slope = activation_gain_name(act)
        init_weights(self, init, nonlinearity=nonlin, a=slope)
        init_weights(self.head, init, nonlinearity="linear")

    @classmethod
    def from_encoder(cls, encoder: Any, out_channels: int, widths: Sequence[int] | None = None,
                     **kwargs: Any) -> "UNetDecoder2d":
        """Decoder matching an encoder with ``feature_channels`` / ``feature_strides``
        attributes (e.g. :class:`~geomgen.nn.ResNetEncoder`); ``kwargs`` as in the constructor."""
        for attr in ("feature_channels", "feature_strides"):
            if not hasattr(encoder, attr):
                raise V.fail("encoder", f"must have a '{attr}' attribute (e.g. a ResNetEncoder)",
                             "UNetDecoder2d.from_encoder")
        return cls(encoder.feature_channels, out_channels, widths, strides=encoder.feature_strides, **kwargs)

    def forward(self, features: Sequence[torch.Tensor], size: Sequence[int] | None = None,
                skip: torch.Tensor | None = None) -> torch.Tensor:
        """Decode a feature pyramid.

        Args:
            features: ``L`` maps ``(N, C_i, H_i, W_i)``, finest first (an
                :class:`~geomgen.nn.EncoderOutput`'s ``features``).
            size: ``(H, W)`` of the output; default ``strides[0]`` times the
                finest level's size.  Intermediate stages take the size of the
                encoder map they concatenate.
            skip: ``(N, skip_channels, H, W)`` full-resolution tensor, required
                iff the decoder was built with ``skip_channels > 0``.

        Returns:
            ``(N, C_out, H, W)`` raw head output (no activation).

        Raises:
            InvalidInputError: wrong number of levels, channels, batch sizes, or
                a missing / unexpected / mis-sized ``skip``.
        """
        fn = "UNetDecoder2d.forward"
        if isinstance(features, torch.Tensor) or not isinstance(features, Sequence):
            raise V.fail("features", "must be a sequence of (N, C_i, H_i, W_i) tensors, finest first", fn)
        L = len(self.encoder_channels)
        if len(features) != L:
            raise V.fail("features", f"must have {L} levels, got {len(features)}", fn)
        for i, (f, c) in enumerate(zip(features, self.encoder_channels)):
            check_channels_first(f, f"features[{i}]", c, 2, fn)
            if f.shape[0] != features[0].shape[0]:
                raise V.fail(f"features[{i}]", f"has batch size {f.shape[0]}, expected {features[0].shape[0]}", fn)
        if size is None:
            size = (features[0].shape[-2] * self.strides[0], features[0].shape[-1] * self.strides[0])
        else:
            if isinstance(size, (str, bytes)) or not isinstance(size, Sequence) or len(size) != 2:
                raise V.fail("size", f"must be (H, W), got {size!r}", fn)
            size = tuple(V.check_int(s, "size", min_value=1, fn=fn) for s in size)
        size = (int(size[0]), int(size[1]))
        if self.skip_channels:
            if skip is None:
                raise V.fail("skip", f"is required: the decoder was built with skip_channels={self.skip_channels}", fn)
            check_channels_first(skip, "skip", self.skip_channels, 2, fn)
            if tuple(skip.shape[-2:]) != size or skip.shape[0] != features[0].shape[0]:
                raise V.fail("skip", f"must have shape (N, {self.skip_channels}, {size[0]}, {size[1]}), "
                             f"got {tuple(skip.shape)}", fn)
        elif skip is not None:
            raise V.fail("skip", "must be None: the decoder was built with skip_channels=0", fn)
        x = features[-1]
        for j, stage in enumerate(self.stages[:-1]):
            s = features[L - 2 - j]
            x = stage(x, s, (int(s.shape[-2]), int(s.shape[-1])))
        x = self.stages[-1](x, skip, size)
        return self.head(x)
