"""Depth-map conversions of the ``depth`` representation: points, normals, 2.5D meshes.

Shape letters: ``N`` maps, ``H``/``W`` image rows/columns, ``P`` points.

Conventions are those of :class:`geomgen.structures.DepthMaps`: metric
**z-depth** in the OpenCV camera frame (+X right, +Y down, +Z forward, the
camera at the origin), pixel ``(u, v)`` centred at ``(u + 0.5, v + 0.5)``.
Everything here stays in the camera frame.

* :func:`depth_grid_normals` - per-pixel normals from the unprojected
  neighbours (cross product of the image-grid tangents, facing the camera).
* :func:`depth_to_points` - foreground pixels as a ``PointClouds`` with those
  normals, optionally subsampled deterministically.
* :func:`depth_to_meshes` - the foreground pixel grid triangulated into a
  2.5D surface, triangles across depth discontinuities dropped.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from geomgen import checks as V
from geomgen.errors import InvalidInputError
from geomgen.structures import DepthMaps, Meshes, PointClouds

__all__ = ["depth_grid_normals", "depth_to_points", "depth_to_meshes", "continuous_neighbours"]


def _check_depthmaps(depth: object, fn: str) -> DepthMaps:
    if not isinstance(depth, DepthMaps):
        raise InvalidInputError(f"{fn}: argument 'depth' must be a geomgen.structures.DepthMaps, "
                                f"got {type(depth).__name__}")
    return depth


def _check_rel(rel_threshold: object, fn: str) -> float:
    return V.check_float(rel_threshold, "rel_threshold", positive=True, finite=False, fn=fn)


def continuous_neighbours(z: torch.Tensor, mask: torch.Tensor, rel_threshold: float) -> tuple[torch.Tensor, ...]:
    """Which 4-neighbours of each pixel lie on the same surface.

    Two pixels are *continuous* when both are in the mask and their depths
    differ by less than ``rel_threshold`` times the smaller one.

    Args:
        z: ``(N, H, W)`` depth (any value outside ``mask``).
        mask: ``(N, H, W)`` bool.
        rel_threshold: relative depth jump that separates surfaces (> 0).

    Returns:
        ``(right, down)``: ``(N, H, W - 1)`` bool (pixel ``(v, u)`` and
        ``(v, u + 1)`` continuous) and ``(N, H - 1, W)`` bool (``(v, u)`` and
        ``(v + 1, u)``).
    """
    zs = torch.where(mask, z, torch.ones_like(z))

    def close(a: torch.Tensor, b: torch.Tensor, ma: torch.Tensor, mb: torch.Tensor) -> torch.Tensor:
        return ma & mb & ((a - b).abs() < rel_threshold * torch.minimum(a, b).abs())

    right = close(zs[:, :, :-1], zs[:, :, 1:], mask[:, :, :-1], mask[:, :, 1:])
    down = close(zs[:, :-1, :], zs[:, 1:, :], mask[:, :-1, :], mask[:, 1:, :])
    return right, down


def _tangent(p: torch.Tensor, link: torch.Tensor, dim: int) -> torch.Tensor:
    """``(N, H, W, 3)`` tangent of the unprojected grid ``p`` ``(N, H, W, 3)`` along
    tensor axis ``dim`` (2: columns ``u``, 1: rows ``v``): the central difference
    when both neighbours are linked, else the one-sided difference, else zero.
    ``link`` is the continuity of each pixel with its successor along that axis
    (one entry shorter along it)."""
    # forward difference p[i+1] - p[i] where linked, padded to the grid size
    if dim == 2:  # along u (columns)
        fwd = (p[:, :, 1:] - p[:, :, :-1]) * link[..., None]
        fwd_at = F.pad(fwd, (0, 0, 0, 1))  # difference to the next pixel, stored at i
        bwd_at = F.pad(fwd, (0, 0, 1, 0))  # difference from the previous pixel, stored at i
        has_f = F.pad(link, (0, 1))
        has_b = F.pad(link, (1, 0))
    else:  # along v (rows)
        fwd = (p[:, 1:] - p[:, :-1]) * link[..., None]
        fwd_at = F.pad(fwd, (0, 0, 0, 0, 0, 1))
        bwd_at = F.pad(fwd, (0, 0, 0, 0, 1, 0))
        has_f = F.pad(link, (0, 0, 0, 1))
        has_b = F.pad(link, (0, 0, 1, 0))
    both = (has_f & has_b)[..., None]
    return torch.where(both, 0.5 * (fwd_at + bwd_at), fwd_at + bwd_at)  # one of the two is zero if not both


def depth_grid_normals(depth: DepthMaps, rel_threshold: float = 0.05) -> torch.Tensor:
    """Per-pixel unit normals of depth maps, estimated from the unprojected neighbours.

    At every pixel the tangents along the image columns (``u``) and rows
    (``v``) are central differences of the unprojected neighbours (one-sided
    when only one neighbour is on the same surface, see
    :func:`continuous_neighbours`); the normal is their cross product, oriented
    towards the camera (``n . p < 0`` for the camera-frame point ``p``).
    Pixels without a usable neighbour in one direction get the unit vector
    towards the camera, ``-p / |p|``.

    Args:
        depth: :class:`~geomgen.structures.DepthMaps` of ``N`` maps.
        rel_threshold: relative depth jump between neighbours that counts as a
            discontinuity (not used for the tangents).

    Returns:
        ``(N, H, W, 3)`` camera-frame unit normals (zeros outside the masks).

    Raises:
        InvalidInputError: ``depth`` not a DepthMaps, ``rel_threshold <= 0``.
    """
    fn = "depth_grid_normals"
    dm = _check_depthmaps(depth, fn)
    rel = _check_rel(rel_threshold, fn)
    p = dm.unproject()  # (N, H, W, 3), zeros outside the masks
    right, down = continuous_neighbours(dm.depth, dm.masks, rel)
    tu = _tangent(p, right, 2)
    tv = _tangent(p, down, 1)
    n = torch.cross(tu, tv, dim=-1)
    norm = n.norm(dim=-1, keepdim=True)
    view = -p / p.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    ok = norm > 1e-12 * p.norm(dim=-1, keepdim=True).square().clamp(min=1e-30)
    n = torch.where(ok, n / norm.clamp(min=1e-30), view)
    flip = (n * p).sum(-1, keepdim=True) > 0
    n = torch.where(flip, -n, n)
    return n * dm.masks[..., None].to(n.dtype)


def depth_to_points(depth: DepthMaps, num_points: int | None = None, rel_threshold: float = 0.05) -> PointClouds:
    """Foreground pixels of depth maps as camera-frame points with normals.

    Every masked-in pixel becomes its unprojected pixel centre (row-major
    order, as :func:`geomgen.ops.unproject_depth`) with the normal of
    :func:`depth_grid_normals`.  A map with more than ``num_points``
    foreground pixels is subsampled deterministically (evenly spaced in
    row-major order); fewer pixels give fewer points (no duplication).

    Args:
        depth: :class:`~geomgen.structures.DepthMaps` of ``N`` maps.
        num_points: maximum points per cloud (>= 1); None = every pixel.
        rel_threshold: see :func:`depth_grid_normals`.

    Returns:
        :class:`~geomgen.structures.PointClouds` of ``N`` clouds with normals,
        cloud ``i`` holding ``min(mask[i].sum(), num_points)`` points.

    Raises:
        InvalidInputError: bad ``depth``, ``num_points`` or ``rel_threshold``.
    """
    fn = "depth_to_points"
    dm = _check_depthmaps(depth, fn)
    if num_points is not None:
        num_points = V.check_int(num_points, "num_points", min_value=1, fn=fn)
    normals = depth_grid_normals(dm, rel_threshold)
    pts = dm.unproject()
    out_p, out_n = [], []
    for i in range(len(dm)):
        m = dm.masks[i]
        p, n = pts[i][m], normals[i][m]
        if num_points is not None and p.shape[0] > num_points:
            idx = torch.linspace(0, p.shape[0] - 1, num_points, device=p.device).round().long()
            p, n = p[idx], n[idx]
        out_p.append(p)
        out_n.append(n)
    return PointClouds(out_p, normals=out_n, validate=False)


def depth_to_meshes(depth: DepthMaps, rel_threshold: float = 0.05) -> Meshes:
    """Triangulate the foreground pixel grid of depth maps: a 2.5D camera-frame surface.

    Vertices are the unprojected centres of the masked-in pixels.  Each 2x2
    block of pixels ``a = (v, u)``, ``b = (v, u + 1)``, ``c = (v + 1, u)``,
    ``d = (v + 1, u + 1)`` contributes up to two triangles, ``(a, c, b)``
    and ``(b, c, d)``; a triangle is kept only when its three pixels are in
    the mask and every pair of them differs in depth by less than
    ``rel_threshold`` times the smaller depth (so surfaces are not bridged
    across depth discontinuities; a block with three valid pixels still gives
    one triangle).  Faces are counter-clockwise seen from the camera: their
    right-hand normals point towards it.  Unused vertices are dropped.

    Args:
        depth: :class:`~geomgen.structures.DepthMaps` of ``N`` maps.
        rel_threshold: relative depth jump that separates surfaces (> 0).

    Returns:
        :class:`~geomgen.structures.Meshes` of ``N`` meshes (a map without a
        valid triangle gives a mesh with no vertices and no faces).

    Raises:
        InvalidInputError: bad ``depth`` or ``rel_threshold``.
    """
    fn = "depth_to_meshes"
    dm = _check_depthmaps(depth, fn)
    rel = _check_rel(rel_threshold, fn)
    n, h, w = dm.depth.shape
    pts = dm.unproject()
    right, down = continuous_neighbours(dm.depth, dm.masks, rel)
    z = torch.where(dm.masks, dm.depth, torch.ones_like(dm.depth))
    # diagonal b-c (v, u+1) <-> (v+1, u), both triangles share it
    mb, mc = dm.masks[:, :-1, 1:], dm.masks[:, 1:, :-1]
    zb, zc = z[:, :-1, 1:], z[:, 1:, :-1]
    diag = mb & mc & ((zb - zc).abs() < rel * torch.minimum(zb, zc).abs())
    tri1 = right[:, :-1, :] & down[:, :, :-1] & diag  # a-b, a-c, b-c
    tri2 = down[:, :, 1:] & right[:, 1:, :] & diag  # b-d, c-d, b-c
    ids = torch.arange(h * w, device=dm.device).reshape(h, w)
    a, b, c, d = ids[:-1, :-1], ids[:-1, 1:], ids[1:, :-1], ids[1:, 1:]
    face1 = torch.stack([a, c, b], -1)  # (H-1, W-1, 3)
    face2 = torch.stack([b, c, d], -1)
    verts, faces = [], []
    for i in range(n):
        f = torch.cat([face1[tri1[i]], face2[tri2[i]]])  # (F, 3) pixel ids
        used = torch.zeros(h * w, dtype=torch.bool, device=dm.device)
        used[f.reshape(-1)] = True
        remap = torch.cumsum(used.long(), 0) - 1
        verts.append(pts[i].reshape(-1, 3)[used])
        faces.append(remap[f])
    return Meshes(verts, faces)
