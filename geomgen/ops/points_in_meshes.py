"""Inside/outside labels of query points against a batch of triangle meshes.

Shapes: ``N`` meshes; ``P`` query points per mesh (``P_n`` for mesh ``n`` in
the list form); ``V``/``F`` packed vertex/face counts; ``Q`` packed points.

Definition
----------
A point is **inside** mesh ``n`` when, of the three axis-aligned rays from
the point towards ``-x``, ``-y`` and ``-z``, at least two cross the mesh's
surface an odd number of times.  This is exactly the rule
``geomgen.ops.voxelize(mode="solid")`` applies to voxel centres, so a voxel
centre gets the same label from both (the code is shared).

* For a closed (watertight) mesh all three parities agree and this is the
  usual inside, whatever the orientation of the faces.
* Rays through shared edges and vertices are counted consistently: each
  triangle's projection along the ray owns the points of its interior and
  of its "top-left" edges, with edge functions evaluated in a canonical
  vertex order (see :func:`geomgen.kernels.voxelize_numba.ray_crossing`),
  which amounts to moving the ray by an infinitesimal ``(+e, -e**2)`` across
  its axis.  A ray through an edge or a vertex of a watertight mesh thus never
  miscounts, and neither does one grazing a silhouette.  Triangles parallel to
  the ray are skipped.
* A point *on* the surface may be labelled either way (the crossing at the
  point itself is not counted: the rule is half-open along each ray).
* Open, self-intersecting or non-manifold meshes (real scans, meshes with
  holes): a hole seen by one of the three rays is outvoted by the other two;
  holes seen by two rays, or nested/overlapping closed parts (an even number
  of surfaces around the point), give "outside".  Prefer watertight meshes
  where the interior matters; see the tests for the error on a mesh with holes.

Backends: ``"auto"`` (numba for CPU inputs, torch otherwise, e.g. CUDA),
``"numba"`` (CPU only) or ``"torch"`` (any device; a vectorised reference).
Both bin the triangles of every (mesh, axis) in a uniform 2D grid over the
mesh's projected bounding box and test a point only against the triangles of
its cell; they use the same float64 arithmetic and return identical labels.
The numba path runs in parallel (``torch.get_num_threads()`` threads, see
:func:`geomgen.backend.kernel_threads`); in a process forked after numba's
thread pool started (a DataLoader worker) the torch path runs instead
(:func:`geomgen.backend.resolve_backend`).

Cost (numba): about 40 ms for 100k points against the 52k-face armadillo on
one core of the 2-core development machine, of which about 12 ms build the
grids (once per call, so batch the queries of a mesh into one call).  The
torch path is about 20x slower on the CPU; it is the reference and the CUDA
path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from geomgen import checks as V
from geomgen.backend import OP_BACKENDS, check_backend, kernel_threads, resolve_backend
from geomgen.ops.voxelize import _candidates, _ray_crossing_torch

__all__ = ["points_in_meshes", "POINTS_IN_MESHES_BACKENDS"]

_FN = "points_in_meshes"

#: Accepted values of ``points_in_meshes(..., backend=...)`` (from :data:`geomgen.backend.OP_BACKENDS`).
POINTS_IN_MESHES_BACKENDS = OP_BACKENDS[_FN].names

_MESH_METHODS = ("verts_packed", "faces_packed", "num_faces_per_mesh")
#: Grid cells per face and sliver cap of the torch path (as the kernel's).
_CELLS_PER_FACE = 0.5
_MAX_ENTRIES_PER_FACE = 24
#: (point, face) pairs per block of the torch path.
_CHUNK = 1 << 21
#: (u, v, a) columns of xyz for the ray along axis 0 (x), 1 (y), 2 (z); the
#: kernel's ``_project`` uses the same cyclic orders.
_PERMS = {0: (1, 2, 0), 1: (2, 0, 1), 2: (0, 1, 2)}


def points_in_meshes(
    meshes: Any,
    points: torch.Tensor | Sequence[torch.Tensor],
    *,
    backend: str = "auto",
) -> torch.Tensor | list[torch.Tensor]:
    """Label query points as inside or outside their meshes.

    Point ``p`` of mesh ``n`` is inside when at least two of the three rays
    from ``p`` towards ``-x``, ``-y``, ``-z`` cross mesh ``n`` an odd number of
    times (the rule of ``voxelize(mode="solid")``; see the module docstring
    for edges, vertices, points on the surface and open meshes).

    Args:
        meshes: :class:`geomgen.structures.Meshes` batch of ``N`` meshes (padded
            or not; a mesh without faces has nothing inside).
        points: ``(N, P, 3)`` floating tensor (points ``[n]`` are tested against
            mesh ``n``), or a list of ``N`` floating tensors ``(P_n, 3)``; on
            the meshes' device, finite, in the meshes' world units.
        backend: ``"auto"``, ``"numba"`` (CPU only) or ``"torch"``.

    Returns:
        ``(N, P)`` bool tensor for tensor ``points``, or a list of ``N`` bool
        tensors ``(P_n,)`` for a list; on the points' device.  Not
        differentiable (labels).

    Raises:
        InvalidInputError: ``meshes`` is not a Meshes batch, has NaN/Inf
            vertices or face indices out of range (batches built with
            ``validate=False``); ``points`` has the wrong type, shape, dtype,
            length or device, or holds NaN/Inf; unknown ``backend``.
        BackendUnavailableError: ``backend="numba"`` with CUDA tensors.
    """
    inside, _ = _points_in_meshes(meshes, points, backend, full=False)
    return inside


def _points_in_meshes(
    meshes: Any, points: Any, backend: str, full: bool
) -> tuple[torch.Tensor | list[torch.Tensor], torch.Tensor | list[torch.Tensor] | None]:
    """:func:`points_in_meshes` plus, with ``full``, the three parities of
    every point (uint8, bit ``a`` = ray towards ``-a``; same layout)."""
    fn = _FN
    V.check_meshes(meshes, _MESH_METHODS, fn=fn)
    check_backend(fn, backend)
    N = len(meshes)
    verts = meshes.verts_packed()
    faces = meshes.faces_packed()
    device = verts.device
    pts, counts, as_list = _parse_points(points, N, device, fn)
    out_device = pts.device

    # GNU OpenMP kills a process forked after numba's pool started: such a process takes the torch path
    use_numba = resolve_backend(fn, backend, device=device) == "numba"
    vk = verts.detach()
    if use_numba:
        from geomgen.kernels.sample_points_numba import all_finite

        vk = vk.to(torch.float64).contiguous()
        if not all_finite(vk.numpy()):
            V.check_finite(verts, "meshes (vertices)", fn=fn)  # raises with the details
    else:
        V.check_finite(verts, "meshes (vertices)", fn=fn)
    if faces.numel() and not getattr(meshes, "validated", True):
        lo, hi = int(faces.min()), int(faces.max())
        if lo < 0 or hi >= verts.shape[0]:
            bad = lo if lo < 0 else hi
            raise V.fail("meshes", f"has face indices outside [0, {verts.shape[0] - 1}] (got {bad})", fn)

    num_faces = meshes.num_faces_per_mesh().to(device=device, dtype=torch.int64)
    face_mesh = torch.repeat_interleave(torch.arange(N, device=device), num_faces, output_size=faces.shape[0])
    pmesh = torch.repeat_interleave(torch.arange(N, device=device), counts.to(device), output_size=pts.shape[0])
    with torch.no_grad():
        if use_numba:
            from geomgen.kernels import points_in_meshes_numba as K

            with kernel_threads(pts.shape[0] + faces.shape[0]) as threads:
                inside_np, bits_np = K.points_in_meshes(
                    vk.numpy(), faces.contiguous().numpy(), face_mesh.numpy(), N,
                    pts.to(torch.float64).contiguous().numpy(), pmesh.numpy(),
                    threads=threads, full=full,
                )
            inside = torch.from_numpy(inside_np)
            bits = torch.from_numpy(bits_np) if full else None
        else:
            bits = _parities_torch(vk, faces, face_mesh, N, pts.to(torch.float64), pmesh)
            inside = _majority(bits)
    inside = inside.to(out_device)
    bits = bits.to(out_device) if bits is not None and full else None
    if as_list:
        sizes = counts.tolist()
        return list(inside.split(sizes)), (list(bits.split(sizes)) if bits is not None else None)
    P = int(points.shape[1])
    return inside.view(N, P), (bits.view(N, P) if bits is not None else None)


def _majority(bits: torch.Tensor) -> torch.Tensor:
    """(Q,) bool: at least two of the three parity bits set."""
    b = bits.to(torch.int32)
    return ((b & 1) + ((b >> 1) & 1) + ((b >> 2) & 1)) >= 2


def _parse_points(points: Any, N: int, device: torch.device, fn: str) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Packed ``(Q, 3)`` detached points, per-mesh counts ``(N,)`` (CPU int64)
    and whether ``points`` was a list."""
    if isinstance(points, torch.Tensor):
        V.check_tensor(points, "points", ndim=3, shape_desc="(N, P, 3)", fn=fn)
        if points.shape[0] != N or points.shape[2] != 3:
            raise V.fail(
                "points", f"must have shape (N, P, 3) with N = {N} (the number of meshes), got "
                f"{tuple(points.shape)}", fn,
            )
        _check_values(points, "points", device, fn)
        P = points.shape[1]
        return points.detach().reshape(N * P, 3), torch.full((N,), P, dtype=torch.int64), False
    if isinstance(points, (list, tuple)):
        if len(points) != N:
            raise V.fail("points", f"must hold one (P_n, 3) tensor per mesh ({N}), got {len(points)}", fn)
        items = []
        for n, p in enumerate(points):
            name = f"points[{n}]"
            V.check_tensor(p, name, ndim=2, shape_desc="(P_n, 3)", fn=fn)
            if p.shape[1] != 3:
                raise V.fail(name, f"must have shape (P_n, 3), got {tuple(p.shape)}", fn)
            _check_values(p, name, device, fn)
            items.append(p.detach())
        counts = torch.tensor([p.shape[0] for p in items], dtype=torch.int64)
        pts = torch.cat(items) if items else torch.zeros(0, 3, device=device)
        return pts, counts, True
    raise V.fail(
        "points", f"must be an (N, P, 3) tensor or a list of N (P_n, 3) tensors, got {type(points).__name__}", fn
    )


def _check_values(p: torch.Tensor, name: str, device: torch.device, fn: str) -> None:
    if not p.is_floating_point():
        raise V.fail(name, f"must have a floating dtype, got {p.dtype}", fn)
    if p.device != device:
        raise V.fail(name, f"must be on the meshes' device ({device}), got {p.device}", fn)
    V.check_finite(p, name, fn=fn)


# --------------------------------------------------------------------------- #
# Pure-torch reference (any device)
# --------------------------------------------------------------------------- #


def _cell_torch(x: torch.Tensor, lo: torch.Tensor, inv: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """floor((x - lo) * inv) clamped to [0, g - 1] (the kernel's ``_cell``)."""
    return torch.minimum(((x - lo) * inv).clamp(min=0.0), (g - 1).to(x.dtype)).long()


def _grid_dims_torch(ext: torch.Tensor, cnt: torch.Tensor, cpf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(gu, gv) int64 cell counts (M, 2) and inverse cell sizes (M, 2) of grids
    over boxes of extent ``ext`` (M, 2) holding ``cnt`` faces (any grid gives the
    same labels; this one mirrors the kernel's)."""
    cells = torch.clamp(torch.floor(cpf * cnt.to(torch.float64)), min=1.0)  # (M,)
    good = (ext > 0).all(dim=1)
    safe = torch.where(ext > 0, ext, torch.ones_like(ext))
    log_ratio = torch.where(good, safe[:, 0].log() - safe[:, 1].log(), torch.zeros_like(cells))
    gu = torch.exp(torch.minimum((0.5 * (cells.log() + log_ratio)).clamp(min=0.0), cells.log())).floor()
    gu = torch.where(good, torch.minimum(gu.clamp(min=1.0), cells), torch.ones_like(cells))
    gv = torch.where(good, torch.minimum(torch.floor(cells / gu).clamp(min=1.0), cells), torch.ones_like(cells))
    dims = torch.stack([gu, gv], dim=1)
    inv = dims / safe
    inv = torch.where(torch.isfinite(inv) & (ext > 0), inv, torch.zeros_like(inv))
    return dims.long(), inv


def _parities_torch(
    verts: torch.Tensor, faces: torch.Tensor, face_mesh: torch.Tensor, N: int, pts: torch.Tensor, pmesh: torch.Tensor
) -> torch.Tensor:
    """(Q,) uint8 crossing parities of every point, bit ``a`` for the ray
    towards ``-a``; same grid binning and arithmetic as the kernel."""
    dev = pts.device
    Q = pts.shape[0]
    bits = torch.zeros(Q, dtype=torch.uint8, device=dev)
    if Q == 0 or faces.shape[0] == 0:
        return bits
    tris = verts.to(torch.float64)[faces]  # (F, 3 corners, 3 xyz)
    for axis in (0, 1, 2):
        pu, pv, pa = _PERMS[axis]
        u, v, a = tris[..., pu], tris[..., pv], tris[..., pa]  # (F, 3)
        area = (u[:, 1] - u[:, 0]) * (v[:, 2] - v[:, 0]) - (v[:, 1] - v[:, 0]) * (u[:, 2] - u[:, 0])
        sw = area < 0  # counter-clockwise in (u, v): swap corners 1 and 2
        idx = torch.stack([torch.zeros_like(sw, dtype=torch.long), torch.where(sw, 2, 1), torch.where(sw, 1, 2)], 1)
        u, v, a = u.gather(1, idx), v.gather(1, idx), a.gather(1, idx)
        ok = area != 0
        fidx = ok.nonzero().flatten()
        if fidx.numel() == 0:
            continue
        fm = face_mesh[fidx]
        umin, umax = u[fidx].amin(1), u[fidx].amax(1)
        vmin, vmax = v[fidx].amin(1), v[fidx].amax(1)
        # per-mesh projected boxes of the non-parallel faces
        inf = torch.full((N,), float("inf"), dtype=torch.float64, device=dev)
        blo_u = inf.scatter_reduce(0, fm, umin, reduce="amin")
        blo_v = inf.scatter_reduce(0, fm, vmin, reduce="amin")
        bhi_u = (-inf).scatter_reduce(0, fm, umax, reduce="amax")
        bhi_v = (-inf).scatter_reduce(0, fm, vmax, reduce="amax")
        cnt = torch.bincount(fm, minlength=N)
        ext = torch.stack([bhi_u - blo_u, bhi_v - blo_v], 1)
        ext = torch.where(torch.isfinite(ext) & (ext > 0), ext, torch.zeros_like(ext))
        budget = _MAX_ENTRIES_PER_FACE * cnt + 64  # (N,) entries allowed per grid
        cpf = torch.full((N,), _CELLS_PER_FACE, dtype=torch.float64, device=dev)
        while True:
            dims, inv = _grid_dims_torch(ext, cnt, cpf)
            sizes = dims[:, 0] * dims[:, 1]
            base = torch.cumsum(sizes, 0) - sizes
            gu, gv = dims[fm, 0], dims[fm, 1]
            cu0 = _cell_torch(umin, blo_u[fm], inv[fm, 0], gu)
            cu1 = _cell_torch(umax, blo_u[fm], inv[fm, 0], gu)
            cv0 = _cell_torch(vmin, blo_v[fm], inv[fm, 1], gv)
            cv1 = _cell_torch(vmax, blo_v[fm], inv[fm, 1], gv)
            wu = cu1 - cu0 + 1
            per_face = wu * (cv1 - cv0 + 1)
            over = (torch.zeros_like(cnt).index_add_(0, fm, per_face) > budget) & (cpf >= 1e-3)
            if not bool(over.any()):
                break
            cpf = torch.where(over, cpf * 0.25, cpf)  # long slivers in these grids: coarser bins
        total = int(per_face.sum())
        # CSR of (cell, face) entries, faces ascending within a cell
        owner, rank = _candidates(per_face, 0, total)
        cell = base[fm[owner]] + (cv0[owner] + rank // wu[owner]) * gu[owner] + cu0[owner] + rank % wu[owner]
        cell, order = torch.sort(cell, stable=True)
        cell_face = fidx[owner[order]]
        ncell = int(sizes.sum())
        start = torch.zeros(ncell + 1, dtype=torch.long, device=dev)
        start[1:] = torch.cumsum(torch.bincount(cell, minlength=ncell), 0)
        # the cell of every point (none outside its mesh's box)
        qu, qv, qa = pts[:, pu], pts[:, pv], pts[:, pa]
        lo_u, lo_v = blo_u[pmesh], blo_v[pmesh]
        in_box = (qu >= lo_u) & (qu <= bhi_u[pmesh]) & (qv >= lo_v) & (qv <= bhi_v[pmesh])
        qdims, qinv = dims[pmesh], inv[pmesh]
        qc = base[pmesh] + _cell_torch(qv, lo_v, qinv[:, 1], qdims[:, 1]) * qdims[:, 0] + _cell_torch(
            qu, lo_u, qinv[:, 0], qdims[:, 0]
        )
        qc = torch.where(in_box, qc, torch.zeros_like(qc))
        ncand = torch.where(in_box, start[qc + 1] - start[qc], torch.zeros_like(qc))
        crossings = torch.zeros(Q, dtype=torch.int32, device=dev)
        total = int(ncand.sum())
        for q0 in range(0, total, _CHUNK):
            q, r = _candidates(ncand, q0, min(total, q0 + _CHUNK))
            f = cell_face[start[qc[q]] + r]
            hit, ac = _ray_crossing_torch(
                u[f, 0], v[f, 0], a[f, 0], u[f, 1], v[f, 1], a[f, 1], u[f, 2], v[f, 2], a[f, 2], qu[q], qv[q]
            )
            hit &= ac < qa[q]
            crossings.index_add_(0, q[hit], torch.ones_like(q[hit], dtype=torch.int32))
        bits |= ((crossings & 1) << axis).to(torch.uint8)
    return bits
