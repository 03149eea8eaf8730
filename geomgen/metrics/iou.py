"""Intersection over union of batches of voxel grids.

Shapes: ``N`` grids per batch, ``D``, ``H``, ``W`` grid resolution (the
layout of :class:`geomgen.structures.Voxels`).

Convention
----------
* A voxel is **inside** when ``value >= threshold`` (default 0.5) for
  occupancy/probability grids -- the same rule as
  :meth:`geomgen.structures.Voxels.occupancy`, so ``voxel_iou(v, w)`` is the
  IoU of ``v.occupancy()`` and ``w.occupancy()``.  Kaolin's older
  ``iou(pred, gt, thresh=0.5)`` binarised with a strict ``value > thresh``
  (and PyTorch3D's ``cubify`` also keeps ``> thresh``); the two rules only
  differ for values exactly equal to the threshold.  Kaolin's current
  ``kaolin.metrics.voxelgrid.iou`` does not threshold at all (it expects
  binary grids).
* Signed-distance :class:`~geomgen.structures.Voxels` (``kind="sdf"``) are
  inside where ``sdf <= threshold`` (default 0, the surface level), again as
  in :meth:`Voxels.occupancy`.
* IoU = ``|pred AND gt| / |pred OR gt|``, a **fraction** in ``[0, 1]`` (not
  percent), one value per grid pair.
* **Two empty grids give 1.0**: the prediction matches the ground truth
  exactly, which is the convention of most reconstruction papers.  Kaolin
  divides without a guard and returns NaN there.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from geomgen import checks as V

__all__ = ["voxel_iou"]

_FN = "voxel_iou"


def _is_voxels(obj: Any) -> bool:
    return callable(getattr(obj, "occupancy", None)) and hasattr(obj, "grids") and hasattr(obj, "kind")


#: CPU dtypes whose thresholding and finiteness check go through zero-copy numpy
#: views (about 3x faster than torch's comparison kernels on large grids).
_NUMPY_DTYPES = (torch.float32, torch.float64)
_NUMPY_MIN = 4096


def _threshold(values: torch.Tensor, thr: float, below: bool) -> torch.Tensor:
    """Bool mask ``values >= thr`` (``values <= thr`` when ``below``), the threshold
    rounded to the values' dtype first (as torch does with a Python scalar)."""
    if values.device.type == "cpu" and values.dtype in _NUMPY_DTYPES and values.numel() >= _NUMPY_MIN:
        x = values.detach().numpy()
        t = np.asarray(thr, dtype=x.dtype)
        return torch.from_numpy(np.less_equal(x, t) if below else np.greater_equal(x, t))
    return values <= thr if below else values >= thr


def _sum_is_finite(values: torch.Tensor) -> bool:
    if values.device.type == "cpu" and values.dtype in _NUMPY_DTYPES and values.numel() >= _NUMPY_MIN:
        with np.errstate(over="ignore", invalid="ignore"):
            return bool(np.isfinite(values.detach().numpy().sum()))
    return bool(torch.isfinite(values.detach().sum()))


def _inside(grid: Any, name: str, threshold: float | None) -> torch.Tensor:
    """``(N, D, H, W)`` bool inside mask of a Voxels batch or a grid tensor."""
    if _is_voxels(grid):
        # Same rule as Voxels.occupancy(threshold), with the faster comparison.
        sdf = grid.kind == "sdf"
        default = 0.0 if sdf else 0.5
        return _threshold(grid.grids, default if threshold is None else threshold, sdf)
    V.check_tensor(grid, name, ndim=4, shape_desc="(N, D, H, W)", fn=_FN)
    if grid.dtype == torch.bool:
        return grid
    if grid.is_complex():
        raise V.fail(name, f"must have a real or bool dtype, got {grid.dtype}", _FN)
    if grid.is_floating_point() and grid.numel() and not _sum_is_finite(grid):
        # One cheap reduction pass; the element-wise check (with its message) only when the
        # sum is not finite (NaN/Inf somewhere, or a float overflow of the sum itself).
        V.check_finite(grid, name, fn=_FN)
    return _threshold(grid, 0.5 if threshold is None else threshold, False)


def _counts(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(|a AND b|, |a OR b|)`` per row of two ``(N, M)`` bool tensors, as int64 ``(N,)``."""
    N, M = a.shape
    if a.device.type != "cpu" or N == 0 or M < 4096:
        return torch.count_nonzero(a & b, dim=1), torch.count_nonzero(a | b, dim=1)
    # CPU: numpy counts the True bytes of a contiguous bool row with a vectorised
    # byte count, 10-20x faster than torch's integer reduction of bools (zero-copy views).
    x, y = a.numpy(), b.numpy()
    both = np.logical_and(x, y)
    inter = np.fromiter((np.count_nonzero(both[n]) for n in range(N)), dtype=np.int64, count=N)
    cx = np.fromiter((np.count_nonzero(x[n]) for n in range(N)), dtype=np.int64, count=N)
    cy = np.fromiter((np.count_nonzero(y[n]) for n in range(N)), dtype=np.int64, count=N)
    return torch.from_numpy(inter), torch.from_numpy(cx + cy - inter)


def voxel_iou(
    pred: torch.Tensor | Any,
    gt: torch.Tensor | Any,
    threshold: float | None = None,
    *,
    reduction: str | None = None,
) -> torch.Tensor:
    """Intersection over union of predicted and ground-truth voxel grids, per grid pair.

    See the module docstring for the convention (inside = ``>= threshold``,
    a fraction in [0, 1], two empty grids give 1.0 where Kaolin gives NaN).

    Args:
        pred: ``(N, D, H, W)`` tensor of occupancies or probabilities (any
            real dtype; ``bool`` grids are used as they are), or a
            :class:`~geomgen.structures.Voxels` batch (occupancy or sdf).
            Tensors are never interpreted as signed distances: wrap an SDF in
            ``Voxels(..., kind="sdf")`` or pass ``sdf <= 0``.
        gt: the same for the ground truth; must have the same ``(N, D, H, W)``
            shape (after taking each side's inside mask) and device.
        threshold: inside level.  ``None`` (default) means 0.5 for occupancy
            grids and tensors (inside: ``value >= 0.5``) and 0.0 for sdf
            Voxels (inside: ``sdf <= 0``).  A number is used for both sides
            with the same rule (``>=`` for occupancies, ``<=`` for SDFs).
            Ignored for bool tensors.  No range check is made on float tensors,
            so logits work with ``threshold=0.0``.
        reduction: ``None`` (default) for the ``(N,)`` per-pair values, or
            ``"mean"`` for their mean (a 0-d tensor; needs ``N >= 1``).

    Returns:
        ``(N,)`` IoU per pair (or a 0-d mean), in the dtype of ``pred`` when
        that is floating, else of ``gt`` when floating, else the default
        float dtype.  Not differentiable (thresholding).

    Raises:
        InvalidInputError: a tensor that is not 4-D, NaN/Inf values, shapes or
            devices that differ, a bad ``threshold`` or ``reduction``; the
            message names the argument.
    """
    V.check_choice(reduction, "reduction", (None, "mean"), fn=_FN)
    if threshold is not None:
        threshold = V.check_float(threshold, "threshold", fn=_FN)
    for name, g in (("pred", pred), ("gt", gt)):
        if not (_is_voxels(g) or isinstance(g, torch.Tensor)):
            raise V.fail(
                name,
                f"must be a (N, D, H, W) tensor or a geomgen.structures.Voxels, got {type(g).__name__}",
                _FN,
            )
    a = _inside(pred, "pred", threshold)
    b = _inside(gt, "gt", threshold)
    if a.shape != b.shape:
        raise V.fail(
            "gt",
            f"must have the same (N, D, H, W) shape as 'pred' {tuple(a.shape)}, got {tuple(b.shape)}",
            _FN,
        )
    V.check_same_device({"pred": a, "gt": b}, fn=_FN)

    dtype = torch.get_default_dtype()
    for g in (pred, gt):
        t = g.grids if _is_voxels(g) else g
        if t.is_floating_point():
            dtype = t.dtype
            break

    with torch.no_grad():
        inter, union = _counts(a.flatten(1), b.flatten(1))
        # float64 division of exact integer counts, then cast: exact to the last bit.
        iou = torch.where(union > 0, inter.double() / union.clamp(min=1).double(), 1.0).to(dtype)
    if reduction == "mean":
        if iou.numel() == 0:
            raise V.fail("pred", "must hold at least one grid for reduction='mean', got N=0", _FN)
        return iou.mean()
    return iou
