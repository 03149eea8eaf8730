"""Voxelize a batch of triangle meshes into dense occupancy grids.

Shapes: ``N`` meshes; ``D, H, W`` grid depth, height, width (voxels along z,
y, x); ``V``/``F`` packed vertex/face counts.

Grid layout follows :class:`geomgen.structures.Voxels`: ``grids[n, k, j, i]``
is voxel ``(x=i, y=j, z=k)``, ``origin`` is the world min corner of voxel
``(0, 0, 0)``, voxel ``(k, j, i)`` is the box ``origin + [i, i+1] x [j, j+1] x
[k, k+1] * voxel_size`` and its centre is ``origin + (i, j, k) + 0.5`` voxels.
Resolutions are given as ``(D, H, W)`` (the tensor's order); every other
triple (voxel sizes, bounds, origins) is in **x, y, z** order.

Definitions
-----------
``mode="surface"``: a voxel is occupied iff its **closed** box intersects a
triangle (exact triangle/box overlap by the separating axis theorem).  A
triangle lying exactly on a plane between two voxels therefore marks both, and
one touching a voxel only at an edge or corner marks it too.  To make this
hold despite rounding in the world -> grid transform, boxes are enlarged by
``1e-9`` voxel on each side.  Zero-area (degenerate) triangles are *not*
skipped: a triangle collapsed to a segment or a point marks exactly the voxels
that segment or point touches.  A triangle that is collinear up to rounding
(twice its area below ``1e-12`` times its longest edge squared) is tested as
the segment it is, since its computed normal would be rounding noise.

``mode="solid"``: the surface voxels plus every voxel whose **centre** is
inside the mesh, where "inside" means: of the three axis-aligned rays from the
centre (towards -x, -y and -z), at least two cross the surface an odd number
of times.  For a closed (watertight) mesh all three agree and this is the
usual inside; the vote makes the result robust to a ray grazing an edge or
vertex.  For open, self-intersecting or non-manifold meshes parity is not
well defined: a hole seen along only one axis is outvoted, a hole seen along
two or three axes lets the inside "leak" (those voxels come out empty), and
overlapping closed parts cancel (an even number of nested surfaces is
"outside").  Use a watertight mesh when the interior matters.  Rays are
computed against the whole mesh, so parity is right even when ``bounds`` clip
part of the mesh away.

Differences from the peers
--------------------------
* Open3D's ``VoxelGrid.create_from_triangle_mesh(mesh, voxel_size)`` also
  tests triangle/box overlap, but it places the grid at ``min_bound -
  voxel_size / 2`` (no choice of resolution), stores only occupied voxel
  indices and has no solid mode.  Given the same origin and voxel size the
  occupied sets agree up to triangles that only touch a box boundary (they
  are identical on the armadillo at 32^3 to 128^3).
* trimesh's ``mesh.voxelized(pitch)`` marks voxels containing points of a
  subdivided mesh (an approximation that can miss voxels a triangle only
  clips) and centres voxels on multiples of the pitch.
* PyTorch3D has no mesh voxelizer.

Backends: ``"auto"`` (numba kernels for CPU meshes, the pure-torch reference
otherwise, e.g. CUDA), ``"torch"`` or ``"numba"``.  They implement the same
arithmetic and agree except, at worst, on voxels decided by a rounding-level
tie.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import torch

from geomgen import checks as V
from geomgen.backend import OP_BACKENDS, check_backend, kernel_threads, resolve_backend
from geomgen.structures import Voxels

__all__ = ["voxelize", "VOXELIZE_BACKENDS", "VOXELIZE_MODES"]

#: Accepted values of ``voxelize(..., backend=...)``.
VOXELIZE_BACKENDS = OP_BACKENDS["voxelize"].names
#: Accepted values of ``voxelize(..., mode=...)``.
VOXELIZE_MODES = ("surface", "solid")

#: Largest batch grid (N * D * H * W voxels) the ops allocate.
MAX_VOXELS = 2**31

#: Voxel-box enlargement of the surface test (same as the kernel's).
_EPS = 1e-9
#: Collinearity threshold (same as the kernel's ``DEGENERATE``).
_DEGENERATE = 1e-12
#: Jobs with at most this many voxels and faces run the kernels on one thread.
_SERIAL_VOXELS = 48**3
_SERIAL_FACES = 1 << 17
#: Candidate (triangle, voxel) pairs per block in the torch reference.
_CHUNK = 1 << 20

_MESH_METHODS = ("verts_packed", "faces_packed", "num_faces_per_mesh")


# --------------------------------------------------------------------------- #
# Grid placement (shared with points_to_voxels)
# --------------------------------------------------------------------------- #


def _parse_resolution(resolution: Any, fn: str) -> tuple[int, int, int]:
    """``int`` R -> (R, R, R); a sequence of 3 ints -> (D, H, W)."""
    if isinstance(resolution, numbers.Integral) and not isinstance(resolution, bool):
        r = V.check_int(resolution, "resolution", min_value=1, fn=fn)
        return r, r, r
    if callable(getattr(resolution, "tolist", None)) and not isinstance(resolution, (str, bytes)):
        as_list = resolution.tolist()  # torch / numpy integers and arrays
        if as_list is not resolution and not isinstance(as_list, float):
            if isinstance(as_list, int):
                return _parse_resolution(as_list, fn)
            if isinstance(as_list, list) and all(isinstance(r, int) for r in as_list):
                resolution = as_list
    if isinstance(resolution, Sequence) and not isinstance(resolution, str) and len(resolution) == 3:
        out = tuple(V.check_int(r, "resolution", min_value=1, fn=fn) for r in resolution)
        return out  # type: ignore[return-value]
    raise V.fail("resolution", f"must be an int or a (D, H, W) triple of ints >= 1, got {resolution!r}", fn)


def _parse_xyz(value: Any, name: str, N: int, fn: str, positive: bool) -> torch.Tensor:
    """A scalar, ``(3,)`` or ``(N, 3)`` value -> ``(N, 3)`` float64 CPU tensor (finite)."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        v = V.check_float(value, name, positive=positive, fn=fn)
        t = torch.full((N, 3), v, dtype=torch.float64)
    else:
        try:
            t = torch.as_tensor(value.detach() if isinstance(value, torch.Tensor) else value)
        except Exception:
            raise V.fail(name, f"must be a number, a (3,) or an (N, 3) array, got {type(value).__name__}", fn) from None
        if t.dtype == torch.bool or t.is_complex():
            raise V.fail(name, f"must hold real numbers, got dtype {t.dtype}", fn)
        t = t.to("cpu", torch.float64)
        if t.dim() == 0:
            t = t.expand(N, 3)
        elif t.shape == (3,):
            t = t.expand(N, 3)
        elif t.shape != (N, 3):
            raise V.fail(name, f"must be a number, (3,) or ({N}, 3), got shape {tuple(t.shape)}", fn)
        t = t.contiguous()
        V.check_finite(t, name, fn=fn)
        if positive and bool((t <= 0).any()):
            raise V.fail(name, f"must be > 0, got {float(t.min())}", fn)
    return t


def _parse_bounds(bounds: Any, N: int, fn: str) -> torch.Tensor:
    """``(3, 2)`` or ``(N, 3, 2)`` xyz [min, max] boxes -> ``(N, 3, 2)`` float64."""
    try:
        t = torch.as_tensor(bounds.detach() if isinstance(bounds, torch.Tensor) else bounds)
    except Exception:
        raise V.fail("bounds", f"must be a (3, 2) or (N, 3, 2) array, got {type(bounds).__name__}", fn) from None
    if t.dtype == torch.bool or t.is_complex():
        raise V.fail("bounds", f"must hold real numbers, got dtype {t.dtype}", fn)
    t = t.to("cpu", torch.float64)
    if t.shape == (3, 2):
        t = t.expand(N, 3, 2)
    elif t.shape != (N, 3, 2):
        raise V.fail(
            "bounds", f"must have shape (3, 2) or ({N}, 3, 2) ([..., 0] = xyz min, [..., 1] = max), "
            f"got {tuple(t.shape)}", fn,
        )
    V.check_finite(t, "bounds", fn=fn)
    bad = (t[..., 1] <= t[..., 0]).any(dim=1).nonzero().flatten()
    if bad.numel():
        raise V.fail("bounds", f"must have max > min on every axis; box {int(bad[0])} does not", fn)
    return t.contiguous()


def _grid_placement(
    boxes: torch.Tensor,
    resolution: Any,
    voxel_size: Any,
    bounds: Any,
    padding: Any,
    fn: str,
    item: str,
) -> tuple[tuple[int, int, int], torch.Tensor, torch.Tensor]:
    """Resolution ``(D, H, W)``, origins ``(N, 3)`` and voxel sizes ``(N, 3)``
    (float64, CPU) of the batch grid.

    ``boxes`` ``(N, 3, 2)``: per-item content boxes (xyz, [min, max]) used when
    ``bounds`` is None.  See :func:`voxelize` for the rules; ``item`` names
    one element of the batch in messages ("mesh", "cloud").
    """
    N = boxes.shape[0]
    if (resolution is None) == (voxel_size is None):
        raise V.fail(
            "resolution", "and 'voxel_size': give exactly one of them "
            f"(got {'both' if resolution is not None else 'neither'})", fn,
        )
    pad = V.check_float(padding, "padding", nonnegative=True, fn=fn)
    res = _parse_resolution(resolution, fn) if resolution is not None else None
    vs = _parse_xyz(voxel_size, "voxel_size", N, fn, positive=True) if voxel_size is not None else None
    if bounds is not None:
        if pad != 0:
            raise V.fail(
                "padding", f"applies only to grids fitted to the data; with 'bounds' it must be 0, got {pad}", fn
            )
        b = _parse_bounds(bounds, N, fn)
        lo, ext = b[..., 0], b[..., 1] - b[..., 0]
        if res is not None:
            res_xyz = torch.tensor(res[::-1], dtype=torch.float64)
            vs = ext / res_xyz
            origin = lo.clone()
        else:
            assert vs is not None
            cells = torch.ceil(ext / vs - 1e-9).clamp(min=1).amax(dim=0)  # (3,) xyz
            res = _checked_res(cells, "voxel_size", fn)
            origin = lo.clone()
    else:
        lo, hi = boxes[..., 0].to(torch.float64), boxes[..., 1].to(torch.float64)
        ext = hi - lo
        centre = 0.5 * (lo + hi)
        if res is not None:
            res_xyz = torch.tensor(res[::-1], dtype=torch.float64)
            if float(res_xyz.min()) <= 2 * pad:
                raise V.fail(
                    "padding", f"must leave room for the data: 2 * padding = {2 * pad} >= resolution {res}", fn
                )
            size = (ext / (res_xyz - 2 * pad)).amax(dim=1)  # (N,) isotropic
            flat = (~(size > 0)).nonzero().flatten()
            if flat.numel():
                raise V.fail(
                    "resolution", f"cannot fit a grid to {item} {int(flat[0])}: its bounding box has zero "
                    "extent on every axis (give 'voxel_size' or 'bounds' instead)", fn,
                )
            vs = size[:, None].expand(N, 3).contiguous()
            origin = centre - 0.5 * res_xyz * vs
        else:
            assert vs is not None
            cells = (torch.floor(ext / vs + 2 * pad) + 1).amax(dim=0)
            res = _checked_res(cells, "voxel_size", fn)
            res_xyz = torch.tensor(res[::-1], dtype=torch.float64)
            origin = centre - 0.5 * res_xyz * vs
    total = N * res[0] * res[1] * res[2]
    if total > MAX_VOXELS:
        raise V.fail(
            "resolution" if resolution is not None else "voxel_size",
            f"gives {N} grids of {res} = {total} voxels, more than the limit of {MAX_VOXELS}", fn,
        )
    return res, origin.contiguous(), vs.contiguous()


def _checked_res(cells_xyz: torch.Tensor, name: str, fn: str) -> tuple[int, int, int]:
    if float(cells_xyz.max()) > MAX_VOXELS:
        raise V.fail(name, f"is too small for the data: it would need {cells_xyz.tolist()} voxels (x, y, z)", fn)
    w, h, d = (int(c) for c in cells_xyz.tolist())
    return d, h, w


# --------------------------------------------------------------------------- #
# Pure-torch reference (any device)
# --------------------------------------------------------------------------- #


def _grid_tris(
    verts: torch.Tensor, faces: torch.Tensor, face_mesh: torch.Tensor, origin: torch.Tensor, vs: torch.Tensor
) -> torch.Tensor:
    """(F, 3, 3) float64 triangle corners in grid coordinates (corner, xyz)."""
    o = origin.to(verts.device)[face_mesh][:, None, :]
    s = vs.to(verts.device)[face_mesh][:, None, :]
    return (verts.to(torch.float64)[faces] - o) / s


def _candidates(counts: torch.Tensor, q0: int, q1: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For the flat candidate range [q0, q1) over per-item ``counts``: the item
    of every candidate and its rank within the item."""
    ends = torch.cumsum(counts, 0)
    q = torch.arange(q0, q1, device=counts.device)
    item = torch.searchsorted(ends, q, right=True)
    return item, q - (ends - counts)[item]


def _surface_torch(
    tris: torch.Tensor, face_mesh: torch.Tensor, res: tuple[int, int, int], N: int
) -> torch.Tensor:
    """(N, D, H, W) bool surface voxels; candidates = every voxel in each
    triangle's (clamped) bounding box, tested in blocks with the same SAT
    arithmetic as the kernel."""
    D, H, W = res
    dev = tris.device
    dims = torch.tensor([W, H, D], device=dev, dtype=torch.float64)
    out = torch.zeros(N * D * H * W, dtype=torch.bool, device=dev)
    if tris.shape[0] == 0:
        return out.view(N, D, H, W)
    tmin, tmax = tris.amin(dim=1), tris.amax(dim=1)  # (F, 3)
    # voxels whose enlarged closed box meets the bounding box (clamped in float first)
    lo = torch.ceil(torch.minimum((tmin - _EPS).clamp(min=-2.0), dims + 2)) - 1
    hi = torch.floor(torch.minimum((tmax + _EPS).clamp(min=-2.0), dims + 2))
    lo = torch.minimum(lo.clamp(min=0.0), dims).long()
    hi = torch.minimum(hi.clamp(min=-1.0), dims - 1).long()
    ext = (hi - lo + 1).clamp(min=0)  # (F, 3)
    counts = ext.prod(dim=1)
    total = int(counts.sum())
    h = 0.5 + _EPS
    for q0 in range(0, total, _CHUNK):
        f, r = _candidates(counts, q0, min(total, q0 + _CHUNK))
        ex = ext[f]
        i = lo[f, 0] + r % ex[:, 0]
        j = lo[f, 1] + (r // ex[:, 0]) % ex[:, 1]
        k = lo[f, 2] + r // (ex[:, 0] * ex[:, 1])
        t = tris[f]
        c = torch.stack([i, j, k], dim=1).to(torch.float64) + 0.5
        keep = _sat_torch(t, c, h)
        n = face_mesh[f]
        flat = ((n * D + k) * H + j) * W + i
        out[flat[keep]] = True
    return out.view(N, D, H, W)


def _sat_torch(t: torch.Tensor, c: torch.Tensor, h: float) -> torch.Tensor:
    """Triangle (M, 3, 3) / box (centres c (M, 3), half size h) overlap; the
    box-normal axes are assumed tested (candidates lie in the bounding box)."""
    v0, v1, v2 = t[:, 0], t[:, 1], t[:, 2]
    e0, e1, e2 = v1 - v0, v2 - v1, v0 - v2
    n = torch.linalg.cross(e0, -e2)
    lmax = torch.stack([e0.square().sum(1), e1.square().sum(1), e2.square().sum(1)], 1).amax(1)
    degenerate = n.square().sum(1) <= _DEGENERATE * _DEGENERATE * lmax * lmax
    n = torch.where(degenerate[:, None], torch.zeros_like(n), n)
    # kernel: nx = e0y*(-e2z) - e0z*(-e2y) ... identical products
    nd = n[:, 0] * v0[:, 0] + n[:, 1] * v0[:, 1] + n[:, 2] * v0[:, 2]
    nrad = h * (n[:, 0].abs() + n[:, 1].abs() + n[:, 2].abs())
    ok = (nd - (n[:, 0] * c[:, 0] + n[:, 1] * c[:, 1] + n[:, 2] * c[:, 2])).abs() <= nrad
    x, y, z = 0, 1, 2
    for e, pa, pb in ((e0, v0, v2), (e1, v1, v0), (e2, v2, v1)):
        ex, ey, ez = e[:, x], e[:, y], e[:, z]
        pa_x = -ez * pa[:, y] + ey * pa[:, z]
        pb_x = -ez * pb[:, y] + ey * pb[:, z]
        pa_y = ez * pa[:, x] - ex * pa[:, z]
        pb_y = ez * pb[:, x] - ex * pb[:, z]
        pa_z = -ey * pa[:, x] + ex * pa[:, y]
        pb_z = -ey * pb[:, x] + ex * pb[:, y]
        for qa, qb, cen, rad in (
            (pa_x, pb_x, -ez * c[:, y] + ey * c[:, z], h * (ez.abs() + ey.abs())),
            (pa_y, pb_y, ez * c[:, x] - ex * c[:, z], h * (ez.abs() + ex.abs())),
            (pa_z, pb_z, -ey * c[:, x] + ex * c[:, y], h * (ey.abs() + ex.abs())),
        ):
            lo_ = torch.minimum(qa, qb) - cen
            hi_ = torch.maximum(qa, qb) - cen
            ok &= ~((lo_ > rad) | (hi_ < -rad))
    return ok


def _edge_fn_torch(ax, ay, bx, by, px, py):  # noqa: ANN001, ANN202 - tensors
    """Edge function of a->b at p in canonical vertex order (see the kernel)."""
    first = (ax < bx) | ((ax == bx) & (ay < by))
    fwd = (bx - ax) * (py - ay) - (by - ay) * (px - ax)
    bwd = -((ax - bx) * (py - by) - (ay - by) * (px - bx))
    return torch.where(first, fwd, bwd)


def _owns_torch(e, dx, dy):  # noqa: ANN001, ANN202 - tensors
    return (e > 0) | ((e == 0) & ((dy < 0) | ((dy == 0) & (dx < 0))))


def _ray_crossing_torch(u0, v0, a0, u1, v1, a1, u2, v2, a2, px, py):  # noqa: ANN001, ANN202 - tensors
    """Torch twin of :func:`geomgen.kernels.voxelize_numba.ray_crossing` for
    counter-clockwise projected triangles (elementwise over broadcast
    tensors): ``(hit, a)``, whether the line through ``(px, py)`` along the
    ray axis crosses the triangle (tie rules included) and where along the
    axis (meaningless where ``hit`` is False).  Shared with
    :mod:`geomgen.ops.points_in_meshes`."""
    w0 = _edge_fn_torch(u1, v1, u2, v2, px, py)
    w1 = _edge_fn_torch(u2, v2, u0, v0, px, py)
    w2 = _edge_fn_torch(u0, v0, u1, v1, px, py)
    hit = _owns_torch(w0, u2 - u1, v2 - v1) & _owns_torch(w1, u0 - u2, v0 - v2) & _owns_torch(w2, u1 - u0, v1 - v0)
    ws = w0 + w1 + w2
    hit &= ws > 0
    ac = (w0 * a0 + w1 * a1 + w2 * a2) / torch.where(hit, ws, torch.ones_like(ws))
    return hit, ac


def _parity_votes_torch(
    tris: torch.Tensor, face_mesh: torch.Tensor, res: tuple[int, int, int], N: int
) -> torch.Tensor:
    """(N, D, H, W) uint8 number of axes (x, y, z) along which each voxel
    centre has odd crossing parity; same rules as the kernel."""
    D, H, W = res
    dev = tris.device
    votes = torch.zeros(N, D, H, W, dtype=torch.uint8, device=dev)
    perms = {2: (0, 1, 2), 1: (2, 0, 1), 0: (1, 2, 0)}  # (u, v, a) columns of xyz
    sizes = {0: W, 1: H, 2: D}
    for axis in (0, 1, 2):
        pu, pv, pa = perms[axis]
        nu, nv, na = sizes[pu], sizes[pv], sizes[pa]
        u, v, a = tris[..., pu], tris[..., pv], tris[..., pa]  # (F, 3)
        lou = torch.ceil(u.amin(1) - 0.5).clamp(0, nu).long()
        hiu = torch.floor(u.amax(1) - 0.5).clamp(-1, nu - 1).long()
        lov = torch.ceil(v.amin(1) - 0.5).clamp(0, nv).long()
        hiv = torch.floor(v.amax(1) - 0.5).clamp(-1, nv - 1).long()
        cu = (hiu - lou + 1).clamp(min=0)
        cv = (hiv - lov + 1).clamp(min=0)
        counts = cu * cv
        # counter-clockwise in (u, v): swap corners 1 and 2 where needed
        area = (u[:, 1] - u[:, 0]) * (v[:, 2] - v[:, 0]) - (v[:, 1] - v[:, 0]) * (u[:, 2] - u[:, 0])
        sw = area < 0
        idx = torch.stack([torch.zeros_like(sw, dtype=torch.long), torch.where(sw, 2, 1), torch.where(sw, 1, 2)], 1)
        u, v, a = u.gather(1, idx), v.gather(1, idx), a.gather(1, idx)
        counts = torch.where(area == 0, torch.zeros_like(counts), counts)
        hits = torch.zeros(N * D * H * W, dtype=torch.int32, device=dev)
        total = int(counts.sum())
        for q0 in range(0, total, _CHUNK):
            f, r = _candidates(counts, q0, min(total, q0 + _CHUNK))
            iu = lou[f] + r // cv[f]
            iv = lov[f] + r % cv[f]
            px, py = iu.to(torch.float64) + 0.5, iv.to(torch.float64) + 0.5
            inside, ac = _ray_crossing_torch(
                u[f, 0], v[f, 0], a[f, 0], u[f, 1], v[f, 1], a[f, 1], u[f, 2], v[f, 2], a[f, 2], px, py
            )
            t = torch.floor((ac + 0.5).clamp(-1.0, na + 1.0)).long()
            inside &= t < na
            t = t.clamp(min=0)
            ijk = {pu: iu, pv: iv, pa: t}
            n = face_mesh[f]
            flat = ((n * D + ijk[2]) * H + ijk[1]) * W + ijk[0]
            hits.index_add_(0, flat[inside], torch.ones_like(flat[inside], dtype=torch.int32))
        dim = {0: 3, 1: 2, 2: 1}[axis]
        parity = torch.cumsum(hits.view(N, D, H, W), dim=dim) % 2
        votes += parity.to(torch.uint8)
    return votes


# --------------------------------------------------------------------------- #
# Public API
# --------------------------------------------------------------------------- #


def voxelize(
    meshes: Any,
    resolution: int | Sequence[int] | None = None,
    voxel_size: float | Sequence[float] | torch.Tensor | None = None,
    *,
    mode: str = "surface",
    bounds: torch.Tensor | Sequence[Sequence[float]] | None = None,
    padding: float = 0.0,
    backend: str = "auto",
) -> Voxels:
    """Voxelize every mesh of a batch into an occupancy grid.

    Exact surface voxelization (closed voxel boxes that intersect a triangle)
    and, with ``mode="solid"``, the interior too; see the module docstring for
    the precise definitions and the differences from Open3D and trimesh.

    Grid placement (give exactly one of ``resolution`` and ``voxel_size``):

    * ``resolution=R`` (int) or ``(D, H, W)``, no ``bounds``: each mesh gets
      its own isotropic voxel size, the smallest that fits its bounding box
      into the grid leaving ``padding`` voxels on each side (for an int ``R``:
      the box's longest side spans ``R - 2 * padding`` voxels); the box is
      centred in the grid.
    * ``voxel_size`` (scalar, xyz ``(3,)`` or per mesh ``(N, 3)``), no
      ``bounds``: the batch resolution is the smallest that holds every mesh's
      box plus ``padding`` voxels, per axis ``max_n floor(extent / voxel_size
      + 2 * padding) + 1``; each box is centred in its grid.
    * ``bounds`` ``(3, 2)`` or ``(N, 3, 2)`` (xyz, ``[..., 0]`` = min,
      ``[..., 1]`` = max; the layout of ``Meshes.get_bounding_boxes()``): the
      grid starts at the min corner.  With ``resolution`` it covers the box
      exactly (voxel sizes ``extent / (W, H, D)``, anisotropic if the box is
      not proportional to the resolution); with ``voxel_size`` it has
      ``max_n ceil(extent / voxel_size)`` voxels per axis (so it may reach past
      the max corner).  Geometry outside the grid is not marked (solid-mode
      rays still see it).  ``padding`` must be 0.

    Args:
        meshes: :class:`geomgen.structures.Meshes` batch of ``N >= 1`` meshes,
            each with at least one face.
        resolution: see above; ``(D, H, W)`` is in the tensor's order.
        voxel_size: see above; world units, in x, y, z order.
        mode: ``"surface"`` or ``"solid"``.
        bounds: see above.
        padding: margin (in voxels, >= 0, may be fractional) around each
            mesh's bounding box when the grid is fitted to the data.  Voxel
            boxes are closed, so a face lying on the box's boundary also marks
            the voxel just outside it when the margin is a whole number: use
            e.g. ``padding=1.5`` to be sure of one empty layer all around.
        backend: ``"auto"``, ``"torch"`` or ``"numba"`` (CPU only).  In a
            process forked after numba's thread pool started (e.g. a DataLoader
            worker) the torch path runs instead: OpenMP would kill the process.

    Returns:
        :class:`~geomgen.structures.Voxels` of kind ``"occupancy"``: ``grids``
        ``(N, D, H, W)`` with values 0. / 1. in the vertices' dtype (default
        dtype for non-floating vertices), ``origin`` and ``voxel_size``
        ``(N, 3)`` per mesh, on the meshes' device.  Placement is computed in
        float64; origins and voxel sizes are stored in the grid's dtype.

    Raises:
        InvalidInputError: not a Meshes batch, an empty batch, a mesh without
            faces, NaN/Inf vertices, face indices out of range (for batches
            built with ``validate=False``), both or neither of ``resolution``
            and ``voxel_size``, non-positive sizes, bad ``bounds`` (max <= min),
            ``padding`` with ``bounds``, a mesh whose box has zero extent on
            all axes with ``resolution``, more than ``MAX_VOXELS`` voxels, an
            unknown ``mode`` or ``backend``.
        BackendUnavailableError: ``backend="numba"`` with CUDA meshes.
    """
    fn = "voxelize"
    V.check_meshes(meshes, _MESH_METHODS, fn=fn)
    V.check_choice(mode, "mode", VOXELIZE_MODES, fn=fn)
    check_backend(fn, backend)
    N = len(meshes)
    if N == 0:
        raise V.fail("meshes", "must contain at least one mesh, got an empty batch", fn)
    verts = meshes.verts_packed()
    faces = meshes.faces_packed()
    num_faces = meshes.num_faces_per_mesh().to(torch.int64)
    device = verts.device
    empty = (num_faces == 0).nonzero().flatten()
    if empty.numel():
        raise V.fail("meshes", f"contains mesh {int(empty[0])}, which has no faces; cannot voxelize it", fn)
    # GNU OpenMP kills a process forked after numba's pool started (a DataLoader
    # worker) on its first parallel region: such a process takes the torch path.
    use_numba = resolve_backend(fn, backend, device=device) == "numba"
    vk = verts.detach()
    if use_numba:  # one kernel signature: float64 vertices, float32 grid
        from geomgen.kernels.sample_points_numba import all_finite

        vk = vk.to(torch.float64).contiguous()
        if not all_finite(vk.numpy()):
            V.check_finite(verts, "meshes (vertices)", fn=fn)  # raises with the details
    else:
        V.check_finite(verts, "meshes (vertices)", fn=fn)
    if not getattr(meshes, "validated", True):
        lo, hi = int(faces.min()), int(faces.max())
        if lo < 0 or hi >= verts.shape[0]:
            bad = lo if lo < 0 else hi
            raise V.fail("meshes", f"has face indices outside [0, {verts.shape[0] - 1}] (got {bad})", fn)

    # bounding boxes of the faces' vertices (unreferenced vertices do not count)
    face_mesh = torch.repeat_interleave(torch.arange(N, device=device), num_faces, output_size=faces.shape[0])
    dtype = verts.dtype if verts.is_floating_point() else torch.get_default_dtype()
    with torch.no_grad():
        if use_numba:
            from geomgen.kernels.voxelize_numba import face_bounds

            boxes = torch.from_numpy(face_bounds(vk.numpy(), faces.contiguous().numpy(), face_mesh.numpy(), N))
        else:
            fv = vk[faces.reshape(-1)].to(torch.float64).view(-1, 3, 3)
            idx = face_mesh[:, None].expand(-1, 3)
            lo_b = torch.full((N, 3), float("inf"), dtype=torch.float64, device=device)
            hi_b = torch.full((N, 3), float("-inf"), dtype=torch.float64, device=device)
            lo_b = lo_b.scatter_reduce(0, idx, fv.amin(1), reduce="amin")
            hi_b = hi_b.scatter_reduce(0, idx, fv.amax(1), reduce="amax")
            boxes = torch.stack([lo_b, hi_b], dim=-1).cpu()
    res, origin, vs = _grid_placement(boxes, resolution, voxel_size, bounds, padding, fn, "mesh")

    with torch.no_grad():
        if use_numba:
            grid = _voxelize_numba(vk, faces, face_mesh, origin, vs, res, N, mode, dtype)
        else:
            tris = _grid_tris(verts.detach(), faces, face_mesh, origin, vs)
            occ = _surface_torch(tris, face_mesh, res, N)
            if mode == "solid":
                occ |= _parity_votes_torch(tris, face_mesh, res, N) >= 2
            grid = occ.to(dtype)
    return Voxels._build(grid, "occupancy", origin.to(device, dtype), vs.to(device, dtype), True)


def _voxelize_numba(
    verts: torch.Tensor,
    faces: torch.Tensor,
    face_mesh: torch.Tensor,
    origin: torch.Tensor,
    vs: torch.Tensor,
    res: tuple[int, int, int],
    N: int,
    mode: str,
    dtype: torch.dtype,
) -> torch.Tensor:
    """CPU kernels: float grid (N, D, H, W) of 0/1 in ``dtype``.  The kernels
    are compiled for one signature only (float64 vertices, float32 grid) to
    keep the cold-cache compile short; other dtypes are converted."""
    import numpy as np

    from geomgen.kernels import voxelize_numba as K

    args = (
        verts.contiguous().numpy(), faces.contiguous().numpy(), face_mesh.contiguous().numpy(),
        origin.numpy(), vs.numpy(),
    )
    grid = np.zeros((N, *res), np.float32)  # lazily zeroed pages
    # Small jobs (a few ms) run on one thread: on a busy machine each parallel
    # region can cost a scheduler tick waiting for a descheduled worker.  The
    # kernels only exist in parallel form, so one thread is set in numba's pool
    # (pool=True) for the call and numba's setting is restored after it.
    small = grid.size <= _SERIAL_VOXELS and faces.shape[0] <= _SERIAL_FACES
    with kernel_threads(0 if small else grid.size + faces.shape[0], min_work=1, pool=True):
        K.surface_grid(*args, grid)
        if mode == "solid":
            K.solid_fill(*args, grid)
    return torch.from_numpy(grid).to(dtype)
