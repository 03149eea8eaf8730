"""Voxelize batches of point clouds: occupancy grids and per-voxel features.

Shapes: ``N`` clouds, ``P`` (padded) points per cloud, ``C`` feature
channels, ``D, H, W`` grid depth, height, width (voxels along z, y, x).

Grid layout as in :class:`geomgen.structures.Voxels`: ``grids[n, k, j, i]`` is
voxel ``(x=i, y=j, z=k)`` covering ``origin + [i, i+1) x [j, j+1) x [k, k+1)
* voxel_size``.  A point belongs to the voxel ``floor((p - origin) /
voxel_size)``; points exactly on the grid's max faces belong to the last
voxel (the grid box is closed).  Resolutions are ``(D, H, W)``; voxel sizes,
origins and bounds are x, y, z.

Result
------
:class:`~geomgen.structures.Voxels` holds one value per voxel, so the op
returns

* ``Voxels`` (occupancy 1. where a voxel holds at least one point) when
  ``features`` is None and ``reduction`` is not ``"count"``;
* ``(Voxels, values)`` otherwise, ``values`` of shape ``(N, C, D, H, W)``
  (channels first, ready for ``torch.nn.Conv3d``): the ``reduction`` of the
  features of the points in each voxel, or with ``reduction="count"`` the
  number of points, ``(N, 1, D, H, W)``.  Empty voxels hold 0 for every
  reduction (also "max", whose true value there would be undefined).

Gradients: ``values`` is differentiable w.r.t. ``features`` for "sum",
"mean" and "max" (ties in "max" share the gradient, as in
``torch.scatter_reduce``).  The assignment of points to voxels is a hard
decision: nothing is differentiable w.r.t. point positions.

Peers: Open3D's ``VoxelGrid.create_from_point_cloud(pcd, voxel_size)``
returns the occupied voxels only (no features, no choice of resolution or
origin; it places the grid at the cloud's min bound minus half a voxel).  PyTorch3D's
``add_pointclouds_to_volumes`` splats features into ``Volumes`` (trilinear or
nearest, weighted means with a separate density channel) in ``[-1, 1]``
volume coordinates; ``reduction="mean"`` here equals its ``mode="nearest"``
features where densities are non-zero, up to the placement convention.

Backends: ``"auto"`` uses serial numba kernels on CPU for occupancy, counts
and float32/float64 "sum"/"mean" features (a custom autograd function whose
backward gathers the output gradient back to the points), and the pure-torch
reference otherwise ("max", other dtypes, CUDA); ``"torch"`` / ``"numba"``
force one (``"numba"`` only where it applies).  Both give the same grids;
feature values agree to float rounding (summation order).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from geomgen import checks as V
from geomgen.backend import OP_BACKENDS, check_backend, resolve_backend
from geomgen.ops.voxelize import MAX_VOXELS, _grid_placement, _parse_resolution, _parse_xyz
from geomgen.structures import Voxels

__all__ = ["points_to_voxels", "POINTS_TO_VOXELS_REDUCTIONS", "POINTS_TO_VOXELS_BACKENDS"]

#: Accepted values of ``points_to_voxels(..., reduction=...)``.
POINTS_TO_VOXELS_REDUCTIONS = ("mean", "sum", "max", "count")
#: Accepted values of ``points_to_voxels(..., backend=...)`` (from :data:`geomgen.backend.OP_BACKENDS`).
POINTS_TO_VOXELS_BACKENDS = OP_BACKENDS["points_to_voxels"].names


def _parse_points(points: Any, lengths: Any, fn: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, P, 3)`` floating points and ``(N,)`` int64 lengths from a tensor
    ``(N, P, 3)`` / ``(P, 3)`` (with optional lengths) or a PointClouds."""
    if callable(getattr(points, "points_padded", None)) and callable(getattr(points, "num_points_per_cloud", None)):
        if lengths is not None:
            raise V.fail("lengths", "must be None when 'points' is a PointClouds (it has its own lengths)", fn)
        pts = points.points_padded()
        lengths = points.num_points_per_cloud()
        V.check_tensor(pts, "points", ndim=3, floating=True, fn=fn)
        return pts, lengths.to(torch.int64)
    V.check_tensor(points, "points", ndim=(2, 3), shape_desc="(N, P, 3) or (P, 3)", floating=True, fn=fn)
    if points.dim() == 2:
        points = points[None]
    if points.shape[-1] != 3:
        raise V.fail("points", f"must have 3 coordinates per point, got shape {tuple(points.shape)}", fn)
    N, P, _ = points.shape
    lengths = V.check_lengths(lengths, "lengths", batch_size=N, max_len=P, device=points.device, fn=fn)
    return points, lengths


def points_to_voxels(
    points: Any,
    resolution: int | Sequence[int] | None = None,
    voxel_size: float | Sequence[float] | torch.Tensor | None = None,
    *,
    lengths: torch.Tensor | None = None,
    bounds: torch.Tensor | Sequence[Sequence[float]] | None = None,
    origin: torch.Tensor | Sequence[float] | None = None,
    features: torch.Tensor | None = None,
    reduction: str = "mean",
    padding: float = 0.0,
    backend: str = "auto",
) -> Voxels | tuple[Voxels, torch.Tensor]:
    """Voxelize point clouds into occupancy grids (and per-voxel features).

    Grid placement, one of:

    * ``origin`` (``(3,)`` or ``(N, 3)`` xyz world min corner) with both
      ``resolution`` and ``voxel_size``: a fully explicit grid.
    * ``bounds`` (``(3, 2)`` / ``(N, 3, 2)``, ``[..., 0]`` = xyz min, ``[...,
      1]`` = max) with one of ``resolution`` / ``voxel_size``: as in
      :func:`geomgen.ops.voxelize` (the grid starts at the min corner; with
      ``voxel_size`` it has ``ceil(extent / voxel_size)`` voxels per axis).
    * neither: fitted to each cloud's bounding box with one of ``resolution``
      / ``voxel_size`` and ``padding`` voxels of margin, exactly as
      :func:`geomgen.ops.voxelize` fits meshes.

    With ``origin`` or ``bounds``, points outside the closed grid box are
    **dropped** (never written out of range); points on its max faces go to
    the last voxel.  A fitted grid contains every point (none is dropped).

    Args:
        points: ``(N, P, 3)`` padded clouds (``(P, 3)`` is one cloud), or a
            :class:`geomgen.structures.PointClouds`.
        resolution: ``R`` (cubic) or ``(D, H, W)``.
        voxel_size: scalar, xyz ``(3,)`` or ``(N, 3)``, world units.
        lengths: ``(N,)`` valid points per cloud (tensors only; default all
            ``P``).  Padding points are ignored (they may hold anything
            finite).
        bounds: see above.
        origin: see above.
        features: optional ``(N, P, C)`` (or ``(P, C)`` with ``(P, 3)``
            points) per-point features, same device; any floating dtype.
        reduction: ``"mean"``, ``"sum"`` or ``"max"`` of the features in each
            voxel, or ``"count"`` (number of points; ``features`` must be
            None).
        padding: margin in voxels for fitted grids (>= 0).
        backend: ``"auto"``, ``"torch"`` or ``"numba"``.

    Returns:
        ``voxels`` (:class:`~geomgen.structures.Voxels`, occupancy 0./1. in
        the points' dtype, per-cloud ``origin`` / ``voxel_size``), or
        ``(voxels, values)`` with ``values`` ``(N, C, D, H, W)`` in the
        features' dtype (``(N, 1, D, H, W)`` counts in the points' dtype for
        "count") when ``features`` is given or ``reduction="count"``.

    Raises:
        InvalidInputError: bad shapes or dtypes, NaN/Inf valid points or
            features, lengths out of range, an unknown ``reduction`` or
            ``backend``, an invalid placement combination (see above), an
            empty cloud with a fitted grid, ``"numba"`` with "max" /
            non-float32/64 features, more than ``MAX_VOXELS`` voxels.
        BackendUnavailableError: ``backend="numba"`` on a non-CPU device.
    """
    fn = "points_to_voxels"
    V.check_choice(reduction, "reduction", POINTS_TO_VOXELS_REDUCTIONS, fn=fn)
    check_backend(fn, backend)
    pts, lengths = _parse_points(points, lengths, fn)
    N, P, _ = pts.shape
    device = pts.device
    if N == 0:
        raise V.fail("points", "must contain at least one cloud, got an empty batch", fn)
    # (N, P) mask of the real points; None when every point is real
    valid = None if bool((lengths == P).all()) else torch.arange(P, device=device)[None, :] < lengths[:, None]
    feats = None
    if features is not None:
        if reduction == "count":
            raise V.fail("features", "must be None with reduction='count' (counts do not use features)", fn)
        V.check_tensor(features, "features", ndim=(2, 3), shape_desc="(N, P, C)", floating=True, fn=fn)
        feats = features[None] if features.dim() == 2 else features
        if feats.shape[:2] != (N, P):
            raise V.fail(
                "features", f"must have shape ({N}, {P}, C) to match 'points', got {tuple(features.shape)}", fn
            )
        V.check_same_device({"points": pts, "features": feats}, fn=fn)
        V.check_finite(feats.detach() if valid is None else feats.detach()[valid], "features", fn=fn)
    kernel_ok = feats is None or (reduction in ("sum", "mean") and feats.dtype in (torch.float32, torch.float64))
    use_numba = resolve_backend(fn, backend, device=device, numba_ok=kernel_ok) == "numba"
    if backend == "numba" and not use_numba:
        raise V.fail(
            "backend", "'numba' handles occupancy, counts and float32/float64 'sum'/'mean' features; "
            f"use 'torch' or 'auto' for reduction={reduction!r} with {feats.dtype} features", fn,
        )
    pk = pts.detach()
    if use_numba:
        from geomgen.kernels.points_to_voxels_numba import cloud_bounds

        if pk.dtype not in (torch.float32, torch.float64):
            pk = pk.to(torch.float64)
        pk = pk.contiguous()
        boxes, finite = cloud_bounds(pk.numpy(), lengths.contiguous().numpy())
        boxes = torch.from_numpy(boxes)
    else:
        with torch.no_grad():
            p64 = pk.to(torch.float64)
            inf = torch.tensor(float("inf"), dtype=torch.float64, device=device)
            if valid is None:
                lo, hi = p64.amin(dim=1), p64.amax(dim=1)  # NaN propagates
            else:
                lo = torch.where(valid[..., None], p64, inf).amin(dim=1)
                hi = torch.where(valid[..., None], p64, -inf).amax(dim=1)
            boxes = torch.stack([lo, hi], dim=-1).cpu()
        finite = bool(torch.isfinite(boxes[lengths.cpu() > 0]).all())
    if not finite:
        V.check_finite(pk if valid is None else pk[valid], "points", fn=fn)  # raises with the details

    # ---- grid placement (float64, CPU)
    clamp = origin is None and bounds is None
    if origin is not None:
        if bounds is not None:
            raise V.fail("origin", "and 'bounds' cannot both be given", fn)
        if resolution is None or voxel_size is None:
            raise V.fail("origin", "needs both 'resolution' and 'voxel_size' (a fully explicit grid)", fn)
        pad = V.check_float(padding, "padding", nonnegative=True, fn=fn)
        if pad != 0:
            raise V.fail(
                "padding", f"applies only to grids fitted to the data; with 'origin' it must be 0, got {pad}", fn
            )
        res = _parse_resolution(resolution, fn)
        vs = _parse_xyz(voxel_size, "voxel_size", N, fn, positive=True)
        org = _parse_xyz(origin, "origin", N, fn, positive=False)
        if N * res[0] * res[1] * res[2] > MAX_VOXELS:
            raise V.fail("resolution", f"gives {N} grids of {res} voxels, more than the limit of {MAX_VOXELS}", fn)
    else:
        if clamp:
            empty = (lengths == 0).nonzero().flatten()
            if empty.numel():
                raise V.fail(
                    "points", f"cloud {int(empty[0])} is empty: a grid cannot be fitted to it "
                    "(give 'bounds' or 'origin')", fn,
                )
        res, org, vs = _grid_placement(boxes, resolution, voxel_size, bounds, padding, fn, "cloud")

    D, H, W = res
    M = D * H * W
    dtype = pts.dtype
    counts = values = None
    if use_numba and feats is not None:
        occupancy, values = _features_numba(pk, lengths, org, vs, res, clamp, dtype, feats, reduction == "mean")
    elif use_numba:
        occupancy, counts = _counts_numba(pk, lengths, org, vs, res, clamp, dtype, reduction == "count")
    else:
        flat, keep = _voxel_index_torch(pts, valid, org, vs, res, clamp)
        idx = flat[keep]
        occ = torch.zeros(N * M, dtype=dtype, device=device)
        occ[idx] = 1
        occupancy = occ.view(N, D, H, W)
        if reduction == "count":
            counts = torch.bincount(idx, minlength=N * M).view(N, D, H, W).to(dtype)
        if feats is not None:
            values = _reduce_torch(feats.reshape(N * P, -1)[keep], idx, N, M, reduction)
    voxels = Voxels._build(occupancy, "occupancy", org.to(device, dtype), vs.to(device, dtype), True)
    if values is not None:
        return voxels, values.view(N, -1, D, H, W)
    if counts is not None:
        return voxels, counts[:, None]
    return voxels


def _voxel_index_torch(
    pts: torch.Tensor,
    valid: torch.Tensor | None,
    origin: torch.Tensor,
    vs: torch.Tensor,
    res: tuple[int, int, int],
    clamp: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat (n, D, H, W) voxel index ``(N * P,)`` of every point and the mask
    of points that are kept (valid and, unless ``clamp``, inside the closed
    grid box).  Same rules as the kernel."""
    D, H, W = res
    device = pts.device
    N = pts.shape[0]
    with torch.no_grad():
        g = (pts.detach().to(torch.float64) - origin.to(device)[:, None]) / vs.to(device)[:, None]  # (N, P, 3)
        dims = torch.tensor([W, H, D], dtype=torch.float64, device=device)
        keep = valid if valid is not None else torch.ones(g.shape[:2], dtype=torch.bool, device=device)
        if not clamp:
            keep = keep & ((g >= 0) & (g <= dims)).all(dim=-1)
        idx = torch.floor(torch.minimum(g.clamp(min=0), dims - 1)).long()
        n = torch.arange(N, device=device)[:, None]
        flat = ((n * D + idx[..., 2]) * H + idx[..., 1]) * W + idx[..., 0]
    return flat.reshape(-1), keep.reshape(-1)


def _reduce_torch(f: torch.Tensor, idx: torch.Tensor, N: int, M: int, reduction: str) -> torch.Tensor:
    """``(N, C, D*H*W)``-shaped reduction (returned as ``(N, C, M)``) of the
    kept features ``f`` ``(K, C)`` into their voxels ``idx`` ``(K,)`` (flat
    over ``N * M``); empty voxels hold 0.  Works on the occupied voxels only,
    then scatters them into the channels-first output (differentiable)."""
    C = f.shape[-1]
    uniq, inv, cnt = torch.unique(idx, return_inverse=True, return_counts=True)
    U = uniq.shape[0]
    if reduction == "max":
        vals = f.new_zeros(U, C).scatter_reduce(0, inv[:, None].expand(-1, C), f, reduce="amax", include_self=False)
    else:
        vals = f.new_zeros(U, C).index_add(0, inv, f)
        if reduction == "mean":
            vals = vals / cnt.to(f.dtype)[:, None]
    out = f.new_zeros(N, C, M)
    out[uniq // M, :, uniq % M] = vals
    return out


def _counts_numba(
    pts: torch.Tensor,
    lengths: torch.Tensor,
    origin: torch.Tensor,
    vs: torch.Tensor,
    res: tuple[int, int, int],
    clamp: bool,
    dtype: torch.dtype,
    want_counts: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(N, D, H, W) occupancy and (with ``want_counts``) point counts, in
    ``dtype``, from the CPU kernel (``pts`` float32/float64 contiguous)."""
    import numpy as np

    from geomgen.kernels.points_to_voxels_numba import voxel_counts

    N = pts.shape[0]
    kd = np.float32 if pts.dtype == torch.float32 else np.float64
    occ = np.zeros((N, *res), kd)
    counts = np.zeros((N, *res) if want_counts else (0, 0, 0, 0), kd)
    voxel_counts(pts.numpy(), lengths.contiguous().numpy(), origin.numpy(), vs.numpy(), *res, clamp, occ, counts)
    occ_t = torch.from_numpy(occ).to(dtype)
    return occ_t, (torch.from_numpy(counts).to(dtype) if want_counts else None)


class _ScatterFeatures(torch.autograd.Function):
    """Sum / mean of point features per voxel with the numba kernels; the
    backward gathers the output gradient back to the points."""

    @staticmethod
    def forward(ctx: Any, feats: torch.Tensor, vox: torch.Tensor, M: int, mean: bool, occ: torch.Tensor) -> torch.Tensor:
        from geomgen.kernels.points_to_voxels_numba import scatter_features

        out, slot, counts = scatter_features(feats.detach().contiguous().numpy(), vox.numpy(), M, mean, occ.numpy())
        ctx.save_for_backward(vox, torch.from_numpy(slot), torch.from_numpy(counts))
        ctx.mean = mean
        return torch.from_numpy(out)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        from geomgen.kernels.points_to_voxels_numba import gather_grad

        vox, slot, counts = ctx.saved_tensors
        g = gather_grad(grad.contiguous().numpy(), vox.numpy(), slot.numpy(), counts.numpy(), ctx.mean)
        return torch.from_numpy(g), None, None, None, None


def _features_numba(
    pts: torch.Tensor,
    lengths: torch.Tensor,
    origin: torch.Tensor,
    vs: torch.Tensor,
    res: tuple[int, int, int],
    clamp: bool,
    dtype: torch.dtype,
    feats: torch.Tensor,
    mean: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, D, H, W) occupancy in ``dtype`` and (N, C, D*H*W) "sum"/"mean"
    feature values (differentiable w.r.t. ``feats``) from the CPU kernels."""
    from geomgen.kernels.points_to_voxels_numba import point_voxels

    N = pts.shape[0]
    D, H, W = res
    vox = torch.from_numpy(
        point_voxels(pts.numpy(), lengths.contiguous().numpy(), origin.numpy(), vs.numpy(), D, H, W, clamp)
    )
    occ = torch.zeros(N, D * H * W, dtype=torch.float32 if pts.dtype == torch.float32 else torch.float64)
    values = _ScatterFeatures.apply(feats, vox, D * H * W, mean, occ)
    return occ.view(N, D, H, W).to(dtype), values
