"""Unproject depth maps to point clouds and project points to pixels.

Shape letters used in this module:

* ``N`` - batch size
* ``H``, ``W`` - image height and width
* ``P`` - (padded) number of points per item

Conventions (those of :class:`~geomgen.structures.DepthMaps`): metric
**z-depth**; OpenCV camera frame, ``x`` right, ``y`` down, ``z`` forward;
pixel ``(u, v)`` (column, row) covers ``[u, u+1) x [v, v+1)`` and has its
**centre at (u + 0.5, v + 0.5)``; intrinsics
``K = [[fx, s, cx], [0, fy, cy], [0, 0, 1]]`` map a camera-frame point
``(x, y, z)`` with ``z > 0`` to ``(fx x / z + s y / z + cx, fy y / z + cy)``.
So ``project_points(unproject_depth(d, K))`` gives back the pixel centres
``(u + 0.5, v + 0.5)`` and the depths.

Extrinsics, when given, are ``world_from_camera`` ``(N, 4, 4)`` matrices
``[[R, t], [0, 0, 0, 1]]`` mapping camera-frame points to the world:
``p_world = R p_cam + t`` (the camera-to-world pose; OpenCV's ``[R|t]`` is
the inverse, camera-from-world).
"""

from __future__ import annotations

import torch

from geomgen import checks as V
from geomgen.structures import DepthMaps, PointClouds

__all__ = ["unproject_depth", "project_points"]


def unproject_depth(
    depth: DepthMaps | torch.Tensor,
    K: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    *,
    world_from_camera: torch.Tensor | None = None,
) -> PointClouds:
    """Back-project the valid pixels of depth maps to 3D points, one cloud per map.

    Pixel ``(u, v)`` with depth ``z`` becomes the camera-frame point
    ``z * K^-1 (u + 0.5, v + 0.5, 1)`` (pixel centre, z-depth; computed by
    :meth:`DepthMaps.unproject`), then ``R p + t`` when ``world_from_camera``
    is given.  Points come in row-major pixel order (``v`` then ``u``).

    Args:
        depth: a :class:`~geomgen.structures.DepthMaps` (``K`` must then be
            None), or an ``(N, H, W)`` floating tensor of z-depth.
        K: with a tensor ``depth``: intrinsics ``(N, 3, 3)`` or ``(3, 3)``.
        mask: optional ``(N, H, W)`` bool of pixels to keep.  With a tensor
            ``depth`` it defaults to ``isfinite(depth) & (depth > 0)``, and
            every masked-in depth must be finite and > 0.  With a DepthMaps it
            is intersected with the maps' own masks.
        world_from_camera: optional ``(N, 4, 4)`` or ``(4, 4)`` camera-to-world
            poses (see the module docstring); default: camera frame.

    Returns:
        :class:`~geomgen.structures.PointClouds` of ``N`` clouds, cloud ``i``
        holding the ``mask[i].sum()`` kept pixels (possibly none).
        Differentiable w.r.t. depth, ``K`` and the pose.

    Raises:
        InvalidInputError: bad shapes/dtypes/devices; ``K`` with fx or fy <= 0
            or not upper triangular; masked-in depth NaN/Inf or <= 0; a pose
            whose bottom row is not ``[0, 0, 0, 1]``.
    """
    fn = "unproject_depth"
    if isinstance(depth, DepthMaps):
        if K is not None:
            raise V.fail("K", "must be None when 'depth' is a DepthMaps (its K is used)", fn)
        dm = depth
        if mask is not None:
            V.check_tensor(mask, "mask", shape=tuple(dm.depth.shape), shape_desc="(N, H, W)", dtype=torch.bool, fn=fn)
            if mask.device != dm.device:
                raise V.fail("mask", f"must be on device {dm.device}, got {mask.device}", fn)
            dm = DepthMaps(dm.depth, dm.K, masks=dm.masks & mask, validate=False)
    elif isinstance(depth, torch.Tensor):
        V.check_tensor(depth, "depth", ndim=3, shape_desc="(N, H, W)", floating=True, fn=fn)
        if K is None:
            raise V.fail("K", "is required when 'depth' is a tensor", fn)
        K = V.check_intrinsics(K, n=depth.shape[0], dtype=depth.dtype, device=depth.device, fn=fn)
        if mask is not None:
            V.check_tensor(mask, "mask", shape=tuple(depth.shape), shape_desc="(N, H, W)", dtype=torch.bool, fn=fn)
            if mask.device != depth.device:
                raise V.fail("mask", f"must be on device {depth.device}, got {mask.device}", fn)
            bad = mask & ~(torch.isfinite(depth.detach()) & (depth.detach() > 0))
            if bool(bad.any()):
                i = int(bad.reshape(bad.shape[0], -1).any(1).nonzero()[0, 0])
                raise V.fail(
                    "depth", f"has {int(bad[i].sum())} masked-in pixels in map {i} that are NaN/Inf or <= 0", fn
                )
        dm = DepthMaps(depth, K, masks=mask, validate=False)
    else:
        raise V.fail("depth", f"must be a DepthMaps or a (N, H, W) tensor, got {type(depth).__name__}", fn)
    n = len(dm)
    pose = None if world_from_camera is None else V.check_pose(world_from_camera, n=n, dtype=dm.dtype,
                                                               device=dm.device, fn=fn)
    pts = dm.unproject()  # (N, H, W, 3), zeros outside the masks
    if pose is not None:  # p_world = R p + t, one batched product over all pixels of each map
        pts = torch.baddbmm(pose[:, None, :3, 3], pts.reshape(n, -1, 3), pose[:, :3, :3].transpose(1, 2))
        pts = pts.reshape(dm.depth.shape + (3,))
    masks = dm.masks.reshape(n, -1)
    # (sum P, 3) in row-major pixel order within each map, maps in order; index_select on
    # the nonzero indices is several times faster than boolean-mask indexing on the CPU
    keep = masks.reshape(-1).nonzero().squeeze(1)
    flat = pts.reshape(-1, 3).index_select(0, keep)
    counts = masks.sum(1).tolist()
    return PointClouds(list(torch.split(flat, counts)), validate=False)


def project_points(
    points: torch.Tensor,
    K: torch.Tensor,
    *,
    world_from_camera: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Project 3D points to pixel coordinates with pinhole intrinsics.

    ``(u, v) = (fx x / z + s y / z + cx, fy y / z + cy)`` for the point
    ``(x, y, z)`` in the camera frame, in the pixel convention of the module
    docstring (pixel centres at ``+0.5``; truncate with ``floor`` to get the
    integer column/row).

    Args:
        points: ``(N, P, 3)`` points in the camera frame, or in the world frame
            when ``world_from_camera`` is given (they are then mapped by its
            inverse first).
        K: intrinsics ``(N, 3, 3)`` or ``(3, 3)`` (fx, fy > 0, upper
            triangular, bottom row ``[0, 0, 1]``).
        world_from_camera: optional ``(N, 4, 4)`` or ``(4, 4)`` camera-to-world
            poses, the same matrices :func:`unproject_depth` takes.

    Returns:
        ``(uv, depth)``: ``uv`` ``(N, P, 2)`` pixel coordinates ``(u, v)``
        (column, row) and ``depth`` ``(N, P)`` the camera-frame ``z``.
        **Points with z <= 0** (on or behind the camera plane) have no
        projection: their ``uv`` is NaN (their gradient is zero), their
        ``depth`` is still returned, so ``depth > 0`` is the validity mask.
        Differentiable w.r.t. points, ``K`` and the pose.

    Raises:
        InvalidInputError: bad shapes/dtypes/devices, non-finite inputs, an
            invalid ``K`` or pose.
    """
    fn = "project_points"
    V.check_tensor(points, "points", ndim=3, shape_desc="(N, P, 3)", floating=True, fn=fn)
    if points.shape[2] != 3:
        raise V.fail("points", f"must have shape (N, P, 3), got {tuple(points.shape)}", fn)
    V.check_finite(points, "points", fn=fn)
    n = points.shape[0]
    K = V.check_intrinsics(K, n=n, dtype=points.dtype, device=points.device, fn=fn)
    if world_from_camera is not None:
        pose = V.check_pose(world_from_camera, n=n, dtype=points.dtype, device=points.device, fn=fn)
        inv = torch.linalg.inv(pose)  # camera_from_world
        points = points @ inv[:, :3, :3].transpose(1, 2) + inv[:, None, :3, 3]
    x, y, z = points.unbind(-1)
    front = z > 0
    zs = torch.where(front, z, torch.ones_like(z))
    xn, yn = x / zs, y / zs
    u = K[:, None, 0, 0] * xn + K[:, None, 0, 1] * yn + K[:, None, 0, 2]
    v = K[:, None, 1, 1] * yn + K[:, None, 1, 2]
    uv = torch.stack([u, v], dim=-1)
    uv = torch.where(front[..., None], uv, torch.full_like(uv, float("nan")))
    return uv, z
