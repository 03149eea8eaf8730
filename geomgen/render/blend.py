"""Blending the fragments of :func:`~geomgen.render.soft_rasterize_meshes` into images.

Shape letters: ``B`` images, ``H``, ``W`` image size, ``K`` fragments per
pixel, ``C`` colour channels.

Every function starts from the probability that fragment ``k`` of a pixel
covers it, a sigmoid of its signed squared distance ``d_k`` (``dists``, NDC
units, negative inside the face; SoftRas, Liu et al. 2019)::

    p_k = sigmoid(-d_k / sigma)      (0 for unused slots, pix_to_face = -1)

so ``sigma`` is in the units of ``dists`` (squared NDC distance): ``p_k`` is
1/2 on the face's edge and falls to ``eps`` at ``d_k = log(1 / eps - 1) * sigma``,
which is why PyTorch3D's tutorials pass ``blur_radius = log(1 / 1e-4 - 1) *
sigma`` to the rasterizer.  As ``sigma -> 0`` the silhouette tends to the hard
mask of :func:`~geomgen.render.rasterize_meshes`.

All functions are finite for any input they accept: pixels without
fragments, slots of ``-1`` and tiny ``sigma`` (the products are taken in log
space and every division has a positive floor), and their gradients too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from geomgen import checks as V
from geomgen.render.soft_rasterize import SoftFragments

__all__ = ["soft_silhouette", "soft_depth", "softmax_rgb_blend"]

#: Floor of the softmax blend's background weight and depth range (PyTorch3D's value).
_EPS = 1e-10


def _check_frags(frags: Any, fn: str) -> SoftFragments:
    if not isinstance(frags, SoftFragments):
        raise V.fail("frags", f"must be geomgen.render.SoftFragments (from soft_rasterize_meshes), got "
                     f"{type(frags).__name__}", fn)
    return frags


def _log_transmittance(frags: SoftFragments, sigma: float) -> torch.Tensor:
    """``log(1 - p) (B, H, W, K)``, 0 on unused slots."""
    x = frags.dists / sigma
    return torch.where(frags.pix_to_face >= 0, F.logsigmoid(x), torch.zeros_like(x))


def _coverage(frags: SoftFragments, sigma: float) -> torch.Tensor:
    """``p (B, H, W, K)``, 0 on unused slots."""
    x = frags.dists / sigma
    return torch.where(frags.pix_to_face >= 0, torch.sigmoid(-x), torch.zeros_like(x))


def soft_silhouette(frags: SoftFragments, sigma: float = 1e-4) -> torch.Tensor:
    """Soft silhouette: the probability that at least one fragment covers the pixel.

    ``alpha = 1 - prod_k (1 - p_k)`` over the used slots, with ``p_k =
    sigmoid(-dists_k / sigma)`` (SoftRas's aggregation; PyTorch3D's
    ``sigmoid_alpha_blend`` / ``SoftSilhouetteShader`` alpha channel).

    Args:
        frags: :class:`~geomgen.render.SoftFragments` of ``B`` images.
        sigma: ``> 0``, in the units of ``dists`` (squared NDC distance).

    Returns:
        ``(B, H, W)`` alpha in ``[0, 1]``, 0 where no face is within the blur
        radius; differentiable w.r.t. ``frags.dists``.

    Raises:
        InvalidInputError: ``frags`` is not a SoftFragments, ``sigma`` not a
            finite number ``> 0``.
    """
    fn = "soft_silhouette"
    frags = _check_frags(frags, fn)
    sigma = V.check_float(sigma, "sigma", positive=True, fn=fn)
    return -torch.expm1(_log_transmittance(frags, sigma).sum(-1))


def soft_depth(frags: SoftFragments, sigma: float = 1e-4, *, background: float = 0.0) -> torch.Tensor:
    """Soft depth: the fragments' depths composited front to back by their coverage.

    With the slots sorted near to far (as the rasterizer returns them)::

        w_k   = p_k * prod_{j < k} (1 - p_j)
        depth = sum_k w_k * zbuf_k + prod_k (1 - p_k) * background

    so the weights ``w_k`` sum to :func:`soft_silhouette`'s alpha and a pixel
    fully covered by its nearest face gets that face's depth.  (PyTorch3D's
    ``SoftDepthShader`` differs: it accumulates ``p_k`` until their sum
    reaches 1 and puts ``zfar`` behind.)

    Args:
        frags: :class:`~geomgen.render.SoftFragments`.
        sigma: ``> 0``, units of ``dists``.
        background: depth of the uncovered remainder (0 = the hard
            renderer's background depth).

    Returns:
        ``(B, H, W)`` depth, differentiable w.r.t. ``frags.zbuf`` and ``frags.dists``.

    Raises:
        InvalidInputError: bad ``frags``, ``sigma`` or ``background``.
    """
    fn = "soft_depth"
    frags = _check_frags(frags, fn)
    sigma = V.check_float(sigma, "sigma", positive=True, fn=fn)
    background = V.check_float(background, "background", fn=fn)
    p, log_t = _coverage(frags, sigma), _log_transmittance(frags, sigma)
    before = torch.cumsum(log_t, -1) - log_t  # log prod_{j < k} (1 - p_j)
    w = p * torch.exp(before)
    z = torch.where(frags.pix_to_face >= 0, frags.zbuf, torch.zeros_like(frags.zbuf))
    return (w * z).sum(-1) + torch.exp(log_t.sum(-1)) * background


def softmax_rgb_blend(
    colors: torch.Tensor,
    frags: SoftFragments,
    sigma: float = 1e-4,
    gamma: float = 1e-4,
    *,
    background: Sequence[float] | torch.Tensor = (1.0, 1.0, 1.0),
    znear: float = 1.0,
    zfar: float = 100.0,
) -> torch.Tensor:
    """RGB by SoftRas's softmax over depth, weighted by coverage; alpha = soft silhouette.

    Per pixel, with ``p_k = sigmoid(-dists_k / sigma)`` and the normalised
    inverse depth ``s_k = (zfar - zbuf_k) / (zfar - znear)`` (1 at ``znear``,
    0 at ``zfar``) of the used slots::

        m     = max(max_k s_k, eps)
        w_k   = p_k * exp((s_k - m) / gamma)
        w_bg  = max(exp((eps - m) / gamma), eps)          eps = 1e-10
        rgb   = (sum_k w_k * colors_k + w_bg * background) / (sum_k w_k + w_bg)
        alpha = 1 - prod_k (1 - p_k)

    ``gamma -> 0`` keeps only the nearest covering fragment (a z-buffer),
    larger ``gamma`` mixes fragments through depth.  This is PyTorch3D's
    ``softmax_rgb_blend`` (``BlendParams(sigma, gamma, background_color)``,
    the cameras' ``znear``/``zfar``), whose defaults are used here too.

    Args:
        colors: ``(B, H, W, K, C)`` colour of every fragment (e.g. shaded vertex
            colours interpolated with ``frags.bary_coords``).
        frags: :class:`~geomgen.render.SoftFragments` with ``(B, H, W, K)`` slots.
        sigma: ``> 0``, units of ``dists``.
        gamma: ``> 0`` softmax temperature on the normalised inverse depth.
        background: ``(C,)`` colour (or one number for every channel).
        znear: near end of the depth normalisation, ``> 0`` (need not be the
            rasterizer's clipping plane).
        zfar: far end, finite and ``> znear``.

    Returns:
        ``(B, H, W, C + 1)``: the blended colour channels then alpha, in the
        dtype of ``colors``; differentiable w.r.t. ``colors``, ``zbuf``,
        ``dists`` and ``background`` (when a tensor).

    Raises:
        InvalidInputError: bad ``frags``, ``colors`` not a floating ``(B, H,
            W, K, C)`` tensor matching the fragments, ``sigma`` or ``gamma``
            not ``> 0``, a ``background`` of the wrong length, ``znear``,
            ``zfar`` not ``0 < znear < zfar < inf``.
    """
    fn = "softmax_rgb_blend"
    frags = _check_frags(frags, fn)
    V.check_tensor(colors, "colors", ndim=5, shape_desc="(B, H, W, K, C)", floating=True, fn=fn)
    if tuple(colors.shape[:4]) != tuple(frags.pix_to_face.shape) or colors.shape[4] < 1:
        raise V.fail("colors", f"must have shape (B, H, W, K, C) = {tuple(frags.pix_to_face.shape)} + (C,), "
                     f"got {tuple(colors.shape)}", fn)
    V.check_same_device({"colors": colors}, device=frags.dists.device, fn=fn)
    sigma = V.check_float(sigma, "sigma", positive=True, fn=fn)
    gamma = V.check_float(gamma, "gamma", positive=True, fn=fn)
    zn = V.check_float(znear, "znear", positive=True, fn=fn)
    zf = V.check_float(zfar, "zfar", fn=fn)
    if not zf > zn:
        raise V.fail("zfar", f"must be > znear ({zn:g}), got {zf:g}", fn)
    C = colors.shape[4]
    bg = _background(background, C, colors, fn)

    valid = frags.pix_to_face >= 0
    p, log_t = _coverage(frags, sigma).to(colors.dtype), _log_transmittance(frags, sigma)
    s = torch.where(valid, (zf - frags.zbuf) / (zf - zn), torch.zeros_like(frags.zbuf)).to(colors.dtype)
    m = s.amax(-1, keepdim=True).clamp(min=_EPS) if s.shape[-1] else torch.full_like(s[..., :1], _EPS)
    w = p * torch.exp((s - m) / gamma)
    w_bg = torch.exp((_EPS - m) / gamma).clamp(min=_EPS)
    rgb = ((w[..., None] * colors).sum(-2) + w_bg * bg) / (w.sum(-1, keepdim=True) + w_bg)
    alpha = -torch.expm1(log_t.sum(-1)).to(colors.dtype)
    return torch.cat([rgb, alpha[..., None]], dim=-1)


def _background(background: Any, C: int, colors: torch.Tensor, fn: str) -> torch.Tensor:
    """``(C,)`` background colour in the dtype and on the device of ``colors``."""
    if isinstance(background, torch.Tensor):
        bg = background
    else:
        try:
            bg = torch.as_tensor(background, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            raise V.fail("background", f"must be a number or a sequence of {C} numbers, got "
                         f"{type(background).__name__}", fn) from None
    if bg.dim() == 0:
        bg = bg.expand(C)
    if bg.dim() != 1 or bg.shape[0] != C or bg.dtype == torch.bool or bg.is_complex():
        raise V.fail("background", f"must be a number or {C} numbers (one per colour channel), got shape "
                     f"{tuple(bg.shape)}", fn)
    if bg.device != colors.device and isinstance(background, torch.Tensor):
        raise V.fail("background", f"must be on the device of colors ({colors.device}), got {bg.device}", fn)
    V.check_finite(bg, "background", fn=fn)
    return bg.to(colors.device, colors.dtype)
