"""Scale-invariant depth loss (Eigen, Puhrsch and Fergus, NIPS 2014).

Shape letters: ``N`` images; ``H``, ``W`` image size (any trailing shape
works: every dimension after the first belongs to one image).
"""

from __future__ import annotations

from typing import Any

import torch

from geomgen import checks as V
from geomgen.structures import DepthMaps

__all__ = ["scale_invariant_depth_loss"]

_FN = "scale_invariant_depth_loss"


def _depth_of(x: Any, name: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(x, DepthMaps):
        return x.depth, x.masks
    V.check_tensor(x, name, ndim=(2, 3, 4), shape_desc="(N, H, W)", floating=True, fn=_FN)
    return x, None


def scale_invariant_depth_loss(
    pred: torch.Tensor | DepthMaps,
    target: torch.Tensor | DepthMaps,
    mask: torch.Tensor | None = None,
    lam: float = 0.5,
    eps: float = 1e-6,
    reduction: str = "mean",
) -> torch.Tensor:
    """Scale-invariant log-depth error of Eigen et al.

    Per image, with ``d_i = log(max(pred_i, eps)) - log(target_i)`` over its
    ``n`` valid pixels::

        L = (1/n) sum_i d_i^2 - (lam / n^2) (sum_i d_i)^2

    computed in the equivalent, cancellation-free form
    ``mean((d - mean d)^2) + (1 - lam) mean(d)^2``.  ``lam = 0`` is the plain
    mean squared log error, ``lam = 0.5`` the paper's training loss (default),
    ``lam = 1`` is fully scale invariant (``pred -> s * pred`` shifts every
    ``d_i`` by ``log s`` and leaves ``L`` unchanged) and equals the variance of
    ``d``.  No square root is taken (some code reports ``sqrt(L)``).

    Valid pixels: ``mask`` (default all) and the masks of DepthMaps inputs,
    always intersected with ``isfinite(target) & (target > 0)``, so missing
    ground truth (0 or NaN) is skipped.  Predictions are clamped to ``>= eps``
    before the log (no gradient where ``pred < eps``).

    Args:
        pred: predicted depth ``(N, H, W)`` (or ``(N, 1, H, W)`` / ``(N, P)``),
            or a :class:`~geomgen.structures.DepthMaps`.
        target: ground-truth depth, same shape (or a DepthMaps).
        mask: optional bool tensor of ``pred``'s shape; True = use the pixel.
        lam: ``lambda`` in ``[0, 1]``.
        eps: lower clamp of ``pred`` (> 0, depth units).
        reduction: ``"mean"`` (default): mean over the images that have at
            least one valid pixel (0 if none has); ``"sum"``: sum of the
            per-image losses; ``"none"``: ``(N,)`` per-image losses, 0 for
            images without valid pixels.

    Returns:
        0-dim tensor (``(N,)`` for ``reduction="none"``) in squared log-depth
        units, differentiable w.r.t. ``pred``.

    Raises:
        InvalidInputError: shapes, dtypes or devices that differ; ``lam``
            outside ``[0, 1]``; ``eps <= 0``; unknown ``reduction``.
    """
    p, pmask = _depth_of(pred, "pred")
    t, tmask = _depth_of(target, "target")
    if t.shape != p.shape:
        raise V.fail("target", f"must have the shape of 'pred' {tuple(p.shape)}, got {tuple(t.shape)}", _FN)
    V.check_same_device({"pred": p, "target": t, "mask": mask}, fn=_FN)
    lam = V.check_float(lam, "lam", nonnegative=True, fn=_FN)
    if lam > 1.0:
        raise V.fail("lam", f"must lie in [0, 1], got {lam}", _FN)
    eps = V.check_float(eps, "eps", positive=True, fn=_FN)
    V.check_choice(reduction, "reduction", ("mean", "sum", "none"), fn=_FN)
    td = t.detach()
    valid = torch.isfinite(td) & (td > 0)
    if mask is not None:
        V.check_tensor(mask, "mask", shape=tuple(p.shape), shape_desc=str(tuple(p.shape)), dtype=torch.bool, fn=_FN)
        valid = valid & mask
    for m in (pmask, tmask):
        if m is not None:
            valid = valid & m
    n_img = p.shape[0]
    valid = valid.reshape(n_img, -1)
    safe_t = torch.where(valid, t.reshape(n_img, -1), torch.ones_like(t.reshape(n_img, -1)))
    d = torch.log(p.reshape(n_img, -1).clamp(min=eps)) - torch.log(safe_t)
    w = valid.to(d.dtype)
    d = d * w  # zero (and gradient-free) outside the valid pixels
    cnt = w.sum(1)
    has = cnt > 0
    c = cnt.clamp(min=1)
    mean = d.sum(1) / c
    var = ((d - mean[:, None]).square() * w).sum(1) / c
    per_image = torch.where(has, var + (1.0 - lam) * mean.square(), torch.zeros_like(mean))
    if reduction == "none":
        return per_image
    if reduction == "sum":
        return per_image.sum()
    return per_image.sum() / has.sum().clamp(min=1).to(per_image.dtype)
