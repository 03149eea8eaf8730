"""Watertight surface reconstruction from point clouds by voxel splatting, hole filling
and marching cubes (used by the ``pointcloud`` representation and point-cloud generators).

Shape letters: ``N`` clouds, ``P`` (padded) points, ``R`` voxels per axis
(grids ``(N, R, R, R)`` indexed ``[n, k, j, i]`` = ``(z, y, x)`` as in
:class:`geomgen.structures.Voxels`).

Pipeline of :func:`reconstruct_surface`, all vectorised torch ops over the batch:

1. **Splat**: every point marks its voxel in a cubic grid over
   ``[-bound, bound]^3`` (:func:`geomgen.ops.points_to_voxels`; points
   outside are dropped).
2. **Dilate** the marked voxels by ``dilation`` voxels (a ``3^3`` max pool per
   step), closing the gaps between samples of one surface.
3. **Fill** (:func:`fill_interior`): flood the free space from the grid's
   border with 6-connected steps (``max_pool`` along one axis at a time,
   masked by the free voxels, until nothing changes); whatever the flood
   cannot reach is inside.
4. **Erode** the solid by the same ``dilation`` (undoing step 2's growth: a
   morphological closing, which always keeps the splatted voxels).
5. **Marching cubes** on the solid, padded with one empty voxel on every side
   (so nothing is cut open at the grid's border): a closed, outward-oriented
   mesh.  At ``level`` 0.5 the surface runs half a voxel outside the
   outermost splatted voxel centres; a higher level pulls it in.

A cloud whose samples are too sparse for ``dilation`` leaves holes in the
splatted shell; the flood then leaks inside and the result is the closed
surface of a thick shell rather than a solid (still watertight).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from geomgen import checks as V
from geomgen.errors import InvalidInputError
from geomgen.ops.knn import knn_points
from geomgen.ops.marching_cubes import marching_cubes
from geomgen.ops.points_to_voxels import points_to_voxels
from geomgen.structures import Meshes, Voxels

__all__ = ["splat_points", "dilate", "fill_interior", "solid_occupancy", "reconstruct_surface", "auto_dilation"]


def _check_grid(grid: Any, fn: str) -> torch.Tensor:
    if not isinstance(grid, torch.Tensor) or grid.dim() != 4 or grid.dtype != torch.bool:
        desc = f"{tuple(grid.shape)} {grid.dtype}" if isinstance(grid, torch.Tensor) else type(grid).__name__
        raise InvalidInputError(f"{fn}: argument 'grid' must be an (N, D, H, W) bool tensor, got {desc}")
    return grid


def splat_points(points: torch.Tensor, lengths: torch.Tensor | None = None, resolution: int = 48,
                 bound: float = 0.55) -> torch.Tensor:
    """``(N, R, R, R)`` bool grid over ``[-bound, bound]^3``: True where a voxel holds a point.

    Args:
        points: ``(N, P, 3)`` padded clouds (object-frame xyz).
        lengths: ``(N,)`` valid points per cloud (default all ``P``).
        resolution: ``R`` voxels per axis (>= 2); voxel size ``2 bound / R``.
        bound: half the grid's edge (> 0); points outside are dropped.
    """
    fn = "splat_points"
    resolution = V.check_int(resolution, "resolution", min_value=2, max_value=512, fn=fn)
    bound = V.check_float(bound, "bound", positive=True, fn=fn)
    vox = points_to_voxels(points.detach(), resolution, 2.0 * bound / resolution, lengths=lengths,
                           origin=(-bound, -bound, -bound))
    return vox.grids > 0.5


def dilate(grid: torch.Tensor, steps: int = 1, connectivity: int = 26) -> torch.Tensor:
    """Binary dilation of ``(N, D, H, W)`` bool grids by ``steps`` voxels.

    ``connectivity=26``: each step adds the ``3^3`` neighbourhood (one max pool);
    ``6``: only the face neighbours (three axis-aligned max pools).  Voxels
    beyond the grid count as empty.
    """
    fn = "dilate"
    grid = _check_grid(grid, fn)
    steps = V.check_int(steps, "steps", min_value=0, fn=fn)
    V.check_choice(connectivity, "connectivity", (6, 26), fn=fn)
    x = grid[:, None].to(torch.float32)
    for _ in range(steps):
        x = _dilate_once(x, connectivity)
    return x[:, 0] > 0.5


def _dilate_once(x: torch.Tensor, connectivity: int) -> torch.Tensor:
    """One dilation step of ``(N, 1, D, H, W)`` float 0/1 grids."""
    if connectivity == 26:
        return F.max_pool3d(x, 3, 1, 1)
    return torch.maximum(torch.maximum(F.max_pool3d(x, (3, 1, 1), 1, (1, 0, 0)),
                                       F.max_pool3d(x, (1, 3, 1), 1, (0, 1, 0))),
                         F.max_pool3d(x, (1, 1, 3), 1, (0, 0, 1)))


def fill_interior(grid: torch.Tensor) -> torch.Tensor:
    """Fill the cavities of ``(N, D, H, W)`` bool grids: ``grid`` plus every empty voxel
    that the outside cannot reach through face-adjacent (6-connected) empty voxels.

    The outside is flooded from the empty voxels on the grid's border (the grid
    is padded by one empty voxel on every side first, so the border counts as
    outside), iterating a 6-connected dilation masked by the empty voxels until
    it stops growing (at most one step per empty voxel; in practice about the
    grid's diameter).

    Returns:
        ``(N, D, H, W)`` bool: True inside or on the shape.
    """
    grid = _check_grid(grid, "fill_interior")
    free = F.pad(~grid, (1, 1, 1, 1, 1, 1), value=True)[:, None].to(torch.float32)  # (N, 1, D+2, H+2, W+2)
    outside = torch.zeros_like(free)
    outside[..., 0, :, :] = 1.0
    outside[..., -1, :, :] = 1.0
    outside[..., :, 0, :] = 1.0
    outside[..., :, -1, :] = 1.0
    outside[..., :, :, 0] = 1.0
    outside[..., :, :, -1] = 1.0
    outside = outside * free
    count = outside.sum()
    for _ in range(int(free.sum().item()) + 1):
        outside = _dilate_once(outside, 6) * free
        new = outside.sum()
        if bool(new == count):
            break
        count = new
    return outside[:, 0, 1:-1, 1:-1, 1:-1] < 0.5


def solid_occupancy(grid: torch.Tensor, dilation: int = 1) -> torch.Tensor:
    """Closed solid of splatted ``(N, D, H, W)`` bool grids: dilate by ``dilation``,
    :func:`fill_interior`, erode by ``dilation`` (26-connected).  The result
    always contains ``grid``."""
    fn = "solid_occupancy"
    grid = _check_grid(grid, fn)
    dilation = V.check_int(dilation, "dilation", min_value=0, fn=fn)
    solid = fill_interior(dilate(grid, dilation))
    if dilation:
        # erosion = complement of the dilated complement; the grid's outside counts as empty
        pad = F.pad(~solid, (1, 1, 1, 1, 1, 1), value=True)
        solid = ~dilate(pad, dilation)[:, 1:-1, 1:-1, 1:-1]
    return solid | grid


def auto_dilation(points: torch.Tensor, lengths: torch.Tensor | None, voxel_size: float,
                  max_dilation: int = 3) -> int:
    """Dilation (voxels) that closes the gaps of the sparsest cloud: the 95th percentile of
    the nearest-neighbour distances divided by ``voxel_size``, rounded up, in ``[1, max_dilation]``."""
    pts = points.detach()
    knn = knn_points(pts, pts, lengths, lengths, K=2)
    d = knn.dists[..., 1].clamp(min=0).sqrt()  # (N, P); the first neighbour is the point itself
    valid = knn.idx[..., 1] >= 0
    if not bool(valid.any()):
        return 1
    q = torch.quantile(d[valid].float(), 0.95).item()
    return int(min(max_dilation, max(1, math.ceil(q / voxel_size))))


def reconstruct_surface(points: torch.Tensor, lengths: torch.Tensor | None = None, resolution: int = 48,
                        bound: float = 0.55, dilation: int | None = None, level: float = 0.5) -> Meshes:
    """Watertight meshes of point clouds (module docstring).

    Args:
        points: ``(N, P, 3)`` padded object-frame clouds (e.g. a PointClouds'
            ``points_padded()``).
        lengths: ``(N,)`` valid points per cloud (default all ``P``).
        resolution: ``R`` voxels per axis over ``[-bound, bound]^3``
            (voxel size ``2 bound / R``; 48 gives 0.023 for the default bound).
        bound: half-edge of the grid (0.55: the unit cube of the ``shapes``
            dataset plus a margin).
        dilation: voxels of dilation (and erosion) that close the splatted
            shell; None = :func:`auto_dilation`.
        level: marching-cubes level in ``(0, 1)`` on the binary solid: the
            vertex on an edge between an outside and an inside voxel centre
            sits ``level`` of the way towards the inside one (0.5: half a
            voxel beyond the outermost occupied centres; larger values pull the
            surface in; the topology does not change).

    Returns:
        :class:`~geomgen.structures.Meshes` of ``N`` closed, outward-oriented
        meshes in the points' frame (a cloud with no point inside the grid gives
        an empty mesh).

    Raises:
        InvalidInputError: bad shapes or arguments.
    """
    fn = "reconstruct_surface"
    if not isinstance(points, torch.Tensor) or points.dim() != 3 or points.shape[-1] != 3:
        desc = tuple(points.shape) if isinstance(points, torch.Tensor) else type(points).__name__
        raise InvalidInputError(f"{fn}: argument 'points' must be an (N, P, 3) tensor, got {desc}")
    resolution = V.check_int(resolution, "resolution", min_value=2, max_value=512, fn=fn)
    bound = V.check_float(bound, "bound", positive=True, fn=fn)
    size = 2.0 * bound / resolution
    if dilation is None:
        dilation = auto_dilation(points, lengths, size)
    dilation = V.check_int(dilation, "dilation", min_value=0, fn=fn)
    level = V.check_float(level, "level", gt=0, lt=1, fn=fn)
    shell = splat_points(points, lengths, resolution, bound)
    solid = solid_occupancy(shell, dilation)
    grid = F.pad(solid.to(points.dtype if points.is_floating_point() else torch.float32), (1, 1, 1, 1, 1, 1))
    origin = -bound - size
    return marching_cubes(Voxels(grid, origin=(origin,) * 3, voxel_size=size, validate=False),
                          level=level)
