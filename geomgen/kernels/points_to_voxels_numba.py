"""Numba kernels behind :func:`geomgen.ops.points_to_voxels` (CPU).

The op validates everything first (finite points, lengths in range, positive
voxel sizes); the kernel clamps coordinates in floating point before any
integer conversion, so no index can leave the grid.  Serial: one pass over
the points costs well under a millisecond per 100k points, less than thread
start-up on a busy 2-core machine.  ``scatter_features`` / ``gather_grad``
are the forward and backward of the "sum" and "mean" feature reductions.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["cloud_bounds", "voxel_counts", "point_voxels", "scatter_features", "gather_grad"]


@numba.njit(cache=True, nogil=True)
def cloud_bounds(points, lengths):  # pragma: no cover - compiled
    """((N, 3, 2) float64 xyz [min, max] of each cloud's valid points, all
    valid points finite?).  Empty clouds get [+inf, -inf]."""
    N = points.shape[0]
    out = np.empty((N, 3, 2), np.float64)
    finite = True
    for n in range(N):
        for d in range(3):
            out[n, d, 0] = np.inf
            out[n, d, 1] = -np.inf
        for p in range(lengths[n]):
            for d in range(3):
                x = np.float64(points[n, p, d])
                if not math.isfinite(x):
                    finite = False
                if x < out[n, d, 0]:
                    out[n, d, 0] = x
                if x > out[n, d, 1]:
                    out[n, d, 1] = x
    return out, finite


@numba.njit(cache=True, nogil=True)
def voxel_counts(points, lengths, origin, voxel_size, D, H, W, clamp, occ, counts):  # pragma: no cover
    """Mark occupied voxels in ``occ`` and count points into ``counts``.

    Args:
        points: (N, P, 3) float32/float64, x, y, z.
        lengths: (N,) int64 valid points per cloud.
        origin, voxel_size: (N, 3) float64 grid placement.
        D, H, W: grid resolution.
        clamp: True: every point is assigned to the nearest voxel (grid fitted
            to the data); False: points outside the closed grid box are
            dropped, points on its max faces go to the last voxel.
        occ: (N, D, H, W) float array, set to 1 where a point falls.
        counts: (N, D, H, W) float array incremented per point, or an empty
            (0, 0, 0, 0) array to skip counting.

    Returns:
        The number of points dropped.
    """
    N = points.shape[0]
    dims_x = float(W)
    dims_y = float(H)
    dims_z = float(D)
    dropped = 0
    do_count = counts.size > 0
    for n in range(N):
        ox, oy, oz = origin[n, 0], origin[n, 1], origin[n, 2]
        sx, sy, sz = voxel_size[n, 0], voxel_size[n, 1], voxel_size[n, 2]
        for p in range(lengths[n]):
            gx = (points[n, p, 0] - ox) / sx
            gy = (points[n, p, 1] - oy) / sy
            gz = (points[n, p, 2] - oz) / sz
            if not clamp and (
                gx < 0.0 or gy < 0.0 or gz < 0.0 or gx > dims_x or gy > dims_y or gz > dims_z
            ):
                dropped += 1
                continue
            i = int(math.floor(min(max(gx, 0.0), dims_x - 1.0)))
            j = int(math.floor(min(max(gy, 0.0), dims_y - 1.0)))
            k = int(math.floor(min(max(gz, 0.0), dims_z - 1.0)))
            occ[n, k, j, i] = 1
            if do_count:
                counts[n, k, j, i] += 1
    return dropped


@numba.njit(cache=True, nogil=True)
def point_voxels(points, lengths, origin, voxel_size, D, H, W, clamp):  # pragma: no cover
    """(N, P) int64 voxel of every point, flat over (D, H, W) within its
    cloud's grid, or -1 for padding and dropped points (same rules as
    :func:`voxel_counts`)."""
    N, P = points.shape[0], points.shape[1]
    out = np.full((N, P), -1, np.int64)
    for n in range(N):
        ox, oy, oz = origin[n, 0], origin[n, 1], origin[n, 2]
        sx, sy, sz = voxel_size[n, 0], voxel_size[n, 1], voxel_size[n, 2]
        for p in range(lengths[n]):
            gx = (points[n, p, 0] - ox) / sx
            gy = (points[n, p, 1] - oy) / sy
            gz = (points[n, p, 2] - oz) / sz
            if not clamp and (gx < 0.0 or gy < 0.0 or gz < 0.0 or gx > W or gy > H or gz > D):
                continue
            i = int(math.floor(min(max(gx, 0.0), W - 1.0)))
            j = int(math.floor(min(max(gy, 0.0), H - 1.0)))
            k = int(math.floor(min(max(gz, 0.0), D - 1.0)))
            out[n, p] = (k * H + j) * W + i
    return out


@numba.njit(cache=True, nogil=True)
def scatter_features(feats, vox, M, mean, occ):  # pragma: no cover - compiled
    """Sum (or mean) of the features of the points of each voxel.

    Accumulates into a compact buffer of the occupied voxels (in the order
    they are first met) and writes them into the channels-first output at the
    end, so the big output is touched once per occupied voxel and channel.

    Args:
        feats: (N, P, C) float32/float64.
        vox: (N, P) int64 voxel per point from :func:`point_voxels` (-1: skip).
        M: voxels per grid (D * H * W).
        mean: divide each occupied voxel's sum by its number of points.
        occ: (N, M) float array, set to 1 where a point falls.

    Returns:
        values (N, C, M) in the features' dtype (0 in empty voxels), slot
        (N, P) int64 compact index of each point's voxel (-1: skipped) and
        counts (U,) float64 points per occupied voxel.
    """
    N, P, C = feats.shape
    slot_of = np.full(N * M, -1, np.int32)
    slot = np.full((N, P), -1, np.int64)
    acc = np.zeros((N * P, C), feats.dtype)
    counts = np.zeros(N * P, np.float64)
    key_of = np.empty(N * P, np.int64)
    U = 0
    for n in range(N):
        for p in range(P):
            v = vox[n, p]
            if v < 0:
                continue
            key = n * M + v
            s = slot_of[key]
            if s < 0:
                s = U
                slot_of[key] = s
                key_of[s] = key
                occ[n, v] = 1
                U += 1
            slot[n, p] = s
            counts[s] += 1.0
            for c in range(C):
                acc[s, c] += feats[n, p, c]
    out = np.zeros((N, C, M), feats.dtype)
    for s in range(U):
        key = key_of[s]
        n = key // M
        v = key - n * M
        for c in range(C):
            out[n, c, v] = acc[s, c] / counts[s] if mean else acc[s, c]
    return out, slot, counts[:U].copy()


@numba.njit(cache=True, nogil=True)
def gather_grad(grad, vox, slot, counts, mean):  # pragma: no cover - compiled
    """Gradient of :func:`scatter_features` w.r.t. the features: (N, P, C)
    with ``grad[n, :, vox[n, p]]`` (divided by the voxel's count for the
    mean), 0 for skipped points."""
    N, C, M = grad.shape
    P = vox.shape[1]
    out = np.zeros((N, P, C), grad.dtype)
    for n in range(N):
        for p in range(P):
            v = vox[n, p]
            if v < 0:
                continue
            for c in range(C):
                out[n, p, c] = grad[n, c, v] / counts[slot[n, p]] if mean else grad[n, c, v]
    return out
