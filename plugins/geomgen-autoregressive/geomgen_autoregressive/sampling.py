"""Ancestral samplers of :class:`~geomgen_autoregressive.model.VoxelPixelCNN`.

Both visit the voxels in raster order (z, y, x) and draw voxel ``i`` of every
shape as ``u_i < sigmoid(logit_i / T)`` with one ``torch.rand(n)`` per voxel
from the given generator, so for the same seed they return the same grids
(up to float rounding of the logits, which only matters when a uniform falls
within rounding distance of a probability):

* :func:`sample_full` - the reference: the whole network on the whole grid at
  every step, ``R^3`` full forward passes.
* :func:`sample_incremental` - the fast one, using the bounded receptive field
  of the masked convolutions.  Every hidden feature at voxel ``j`` depends
  only on voxels before ``j``, so once voxel ``i - 1`` is drawn the features
  of every layer at voxel ``i`` are final.  Each step therefore evaluates
  every layer at voxel ``i`` only: a masked convolution reads the unmasked
  taps of its kernel window around ``i`` from a zero-padded cache of its
  input grid (the drawn voxels for the stem, the blocks' inner features,
  filled in as the steps go), and the pointwise layers act on one vector per
  shape.  The receptive field is cropped to exactly the taps the kernels use,
  so a step costs ``O(taps * C^2)`` per shape, independent of ``R``, instead
  of the ``O(R^3 * taps * C^2)`` of a full pass.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["sample_full", "sample_incremental"]


def _draw(logits: torch.Tensor, generator: torch.Generator, temperature: float) -> torch.Tensor:
    """``(n,)`` logits -> ``(n,)`` {0, 1} draws ``u < sigmoid(logits / T)``, one uniform per shape."""
    u = torch.rand(logits.shape[0], generator=generator, device=logits.device, dtype=logits.dtype)
    return (u < torch.sigmoid(logits / temperature)).to(logits.dtype)


def sample_full(model: Any, n: int, labels: torch.Tensor | None, generator: torch.Generator,
                temperature: float = 1.0) -> torch.Tensor:
    """``(n, R, R, R)`` {0, 1} samples, one whole-grid forward pass per voxel (the slow reference)."""
    R = model.resolution
    dtype = model.head_out.weight.dtype
    x = torch.zeros(n, 1, R, R, R, device=model.device, dtype=dtype)
    for z in range(R):
        for y in range(R):
            for w in range(R):
                logit = model.logits(x, labels)[:, 0, z, y, w]
                x[:, 0, z, y, w] = _draw(logit, generator, temperature)
    return x[:, 0]


class _TapCache:
    """The zero-padded ``(n, C, (R + 2 pD) (R + 2 pH) (R + 2 pW))`` input grid of a
    masked convolution (kernel ``(kD, kH, kW)``, ``p = k // 2``) and the flat
    offsets of its unmasked taps.

    ``read(z, y, x)`` gathers the taps of the window centred on voxel
    ``(z, y, x)`` as ``(n, C * T)``; ``write(z, y, x, v)`` stores ``(n, C)``
    values at that voxel.  ``weight`` is the convolution's masked kernel
    restricted to those taps, ``(C_out, C * T)`` (channel-major, like ``read``).
    """

    def __init__(self, conv: Any, n: int, R: int) -> None:
        kd, kh, kw = conv.kernel_size
        if conv.dilation != (1, 1, 1):
            raise NotImplementedError("incremental sampling needs undilated masked kernels")
        self.pad = (kd // 2, kh // 2, kw // 2)
        self.dims = D, H, W = tuple(R + 2 * p for p in self.pad)
        w = conv.weight * conv.mask
        taps = torch.nonzero(conv.mask.flatten()).flatten()
        a, b, c = taps // (kh * kw), (taps // kw) % kh, taps % kw
        self.offsets = ((a * H + b) * W + c).to(w.device)
        self.weight = w.flatten(2)[:, :, taps.to(w.device)].reshape(w.shape[0], -1)
        self.bias = conv.bias
        self.buf = torch.zeros(n, conv.in_channels, D * H * W, device=w.device, dtype=w.dtype)

    def read(self, z: int, y: int, x: int) -> torch.Tensor:
        _, H, W = self.dims
        base = (z * H + y) * W + x  # window corner, in padded coordinates
        return self.buf.index_select(2, self.offsets + base).flatten(1)

    def write(self, z: int, y: int, x: int, value: torch.Tensor) -> None:
        (pd, ph, pw), (_, H, W) = self.pad, self.dims
        self.buf[:, :, ((z + pd) * H + y + ph) * W + x + pw] = value

    def conv(self, z: int, y: int, x: int) -> torch.Tensor:
        """The convolution's ``(n, C_out)`` output at voxel ``(z, y, x)``."""
        return F.linear(self.read(z, y, x), self.weight, self.bias)

    def grid(self, R: int) -> torch.Tensor:
        """The stored ``(n, C, R, R, R)`` grid without its padding."""
        (pd, ph, pw), (D, H, W) = self.pad, self.dims
        return self.buf.view(self.buf.shape[0], -1, D, H, W)[..., pd:pd + R, ph:ph + R, pw:pw + R]


def _flat(conv: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A 1x1x1 convolution as ``(weight (C_out, C_in), bias)`` of :func:`torch.nn.functional.linear`."""
    return conv.weight.flatten(1), conv.bias


def sample_incremental(model: Any, n: int, labels: torch.Tensor | None, generator: torch.Generator,
                       temperature: float = 1.0) -> torch.Tensor:
    """``(n, R, R, R)`` {0, 1} samples; every layer is evaluated at the current voxel only
    (see the module docstring)."""
    R = model.resolution
    stem = _TapCache(model.stem, n, R)
    bias = model.class_bias(labels, n)
    blocks = [(block.act, _flat(block.conv_in), _TapCache(block.conv_mid, n, R), _flat(block.conv_out), bias[k + 1])
              for k, block in enumerate(model.blocks)]
    act = model.act
    (wh, bh), (wo, bo) = _flat(model.head_hidden), _flat(model.head_out)
    b0, pos = bias[0], model.pos
    for z in range(R):
        for y in range(R):
            for x in range(R):
                h = stem.conv(z, y, x)
                if pos is not None:
                    h = h + pos[:, z, y, x]
                if b0 is not None:
                    h = h + b0
                for block_act, (wi, bi), mid, (wu, bu), bk in blocks:
                    if bk is not None:
                        h = h + bk
                    mid.write(z, y, x, block_act(F.linear(block_act(h), wi, bi)))
                    h = h + F.linear(block_act(mid.conv(z, y, x)), wu, bu)
                logit = F.linear(act(F.linear(act(h), wh, bh)), wo, bo)[:, 0]
                stem.write(z, y, x, _draw(logit, generator, temperature)[:, None])
    return stem.grid(R)[:, 0].contiguous()
