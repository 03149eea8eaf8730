"""Uniform random sampling of points on the surface of a batch of meshes.

Shapes: ``N`` meshes, ``S`` samples per mesh, ``V``/``F`` packed vertex/face counts.

Convention (same as PyTorch3D's ``sample_points_from_meshes``, except empty meshes):

* Each sample picks a face of its mesh with probability proportional to the
  face's area, then a point uniformly inside that triangle using the
  square-root parameterisation of barycentric coordinates: with
  ``u, v ~ U[0, 1)`` and ``s = sqrt(u)`` the point is
  ``(1 - s) * a + s * (1 - v) * b + s * v * c`` for face corners ``a, b, c``.
* Normals are the unit normals of the sampled faces,
  ``normalize((b - a) x (c - a))`` (right-hand rule on the face's vertex
  order, i.e. counter-clockwise faces point outwards).
* Positions are differentiable w.r.t. the vertices (the random choices are
  constants; the point is a fixed barycentric combination of the corners), and
  so are the normals.  The face choice itself is not differentiable.
* Meshes without faces, or whose faces all have zero area, raise
  :class:`~geomgen.errors.InvalidInputError` naming the mesh index.  PyTorch3D
  instead returns all-zero samples for such meshes (and raises only when the
  whole batch is empty); zeros silently look like a point at the origin to any
  loss, so we refuse instead.
* Zero-area faces inside an otherwise valid mesh are never chosen.

Implementation: the face of a sample is the inverse CDF of the cumulative
face areas at ``u * total`` (``u ~ U[0, 1)`` in float64), i.e.
``searchsorted(cdf, u * total, right=True)``.  On CPU a serial numba kernel
(:mod:`geomgen.kernels.sample_points_numba`) computes the areas, finds the
face in O(1) with a guide table and writes positions and normals in one pass;
the torch reference (any device) uses ``torch.searchsorted``.  Random numbers
always come from torch (``generator``), so seeding works the same for both.
"""

from __future__ import annotations

from typing import Any

import torch

from geomgen import checks as V
from geomgen.backend import OP_BACKENDS, check_backend, resolve_backend

__all__ = ["sample_points_from_meshes", "SAMPLE_POINTS_BACKENDS"]

_FN = "sample_points_from_meshes"

#: Accepted values of ``sample_points_from_meshes(..., backend=...)`` (from :data:`geomgen.backend.OP_BACKENDS`).
SAMPLE_POINTS_BACKENDS = OP_BACKENDS[_FN].names

_NUMBA_DTYPES = (torch.float32, torch.float64)

_MESH_METHODS = (
    "verts_packed",
    "faces_packed",
    "num_faces_per_mesh",
    "mesh_to_faces_packed_first_idx",
)


def sample_points_from_meshes(
    meshes: Any,
    num_samples: int = 10000,
    return_normals: bool = False,
    return_textures: bool = False,
    *,
    generator: torch.Generator | None = None,
    backend: str = "auto",
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Sample ``num_samples`` points uniformly (by area) on each mesh's surface.

    Same signature and results as PyTorch3D's
    ``sample_points_from_meshes(meshes, num_samples, return_normals)`` for
    non-empty meshes; see the module docstring for the exact sampling scheme.

    Args:
        meshes: a :class:`geomgen.structures.Meshes` batch of ``N`` meshes.
        num_samples: ``S >= 1``, points per mesh.
        return_normals: also return the unit normal of each sampled point's face.
        return_textures: not supported (textures are not sampled); must be False.
        generator: optional ``torch.Generator`` on the meshes' device, for
            reproducible samples.  Two calls with generators seeded alike give
            identical results (for a given ``backend``; see below).
        backend: ``"auto"`` (numba kernels for float32/float64 CPU meshes,
            the torch reference otherwise, e.g. on CUDA), ``"torch"`` or
            ``"numba"`` (CPU only).  Both draw the same random numbers in the
            same order and compute positions with the same formulas, so they
            agree to float rounding (not bitwise: torch's vectorised float32
            ``sqrt`` is not always correctly rounded, the kernel's is); the face choice can differ only for a target
            that falls within rounding of a boundary between two faces'
            cumulative areas (the torch reference sums areas over the whole
            packed batch, the kernel per mesh).  When autograd needs them
            (``verts.requires_grad`` and grad mode on) positions and normals
            are computed by torch ops from the kernel's face choice.

    Returns:
        ``samples`` ``(N, S, 3)`` in the vertices' dtype, or
        ``(samples, normals)`` with ``normals`` ``(N, S, 3)`` when
        ``return_normals`` is True.

    Raises:
        InvalidInputError: ``meshes`` is not a Meshes batch or is empty
            (``N == 0``); a mesh has no faces or zero total area (the message
            gives its index); a vertex is NaN/Inf; ``num_samples < 1``;
            ``return_textures=True``; a generator on another device; an
            unknown ``backend`` or ``"numba"`` with float16/bfloat16 vertices.
        BackendUnavailableError: ``backend="numba"`` for non-CPU meshes.
    """
    fn = _FN
    V.check_meshes(meshes, _MESH_METHODS, fn=fn)
    S = V.check_int(num_samples, "num_samples", min_value=1, fn=fn)
    V.check_bool(return_normals, "return_normals", fn=fn)
    V.check_bool(return_textures, "return_textures", fn=fn)
    check_backend(fn, backend)
    if return_textures:
        raise V.fail("return_textures", "is not supported: geomgen does not sample textures", fn)

    N = len(meshes)
    if N == 0:
        raise V.fail("meshes", "must contain at least one mesh, got an empty batch", fn)
    verts = meshes.verts_packed()  # (V, 3)
    faces = meshes.faces_packed()  # (F, 3), indices into verts_packed
    num_faces = meshes.num_faces_per_mesh().to(torch.int64)  # (N,)
    first = meshes.mesh_to_faces_packed_first_idx().to(torch.int64)  # (N,)
    device = verts.device
    if not verts.is_floating_point():
        raise V.fail("meshes", f"must have floating vertices, got {verts.dtype}", fn)
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise V.fail("generator", f"must be a torch.Generator or None, got {type(generator).__name__}", fn)
        if generator.device.type != device.type:
            raise V.fail(
                "generator",
                f"must be on the meshes' device type '{device.type}', got '{generator.device.type}'",
                fn,
            )

    empty = (num_faces == 0).nonzero().flatten()
    if empty.numel():
        i = int(empty[0])
        raise V.fail(
            "meshes", f"contains mesh {i}, which has no faces; cannot sample points from it", fn
        )
    F = faces.shape[0]
    use_numba = resolve_backend(fn, backend, device=device, numba_ok=verts.dtype in _NUMBA_DTYPES) == "numba"
    if backend == "numba" and not use_numba:
        raise V.fail("backend", f"'numba' needs float32/float64 vertices, got {verts.dtype}", fn)
    if use_numba:
        from geomgen.kernels.sample_points_numba import all_finite

        if not all_finite(verts.detach().contiguous().numpy()):
            V.check_finite(verts, "meshes (vertices)", fn=fn)  # raises with the details
    else:
        V.check_finite(verts, "meshes (vertices)", fn=fn)
    if not getattr(meshes, "validated", True) and F:
        # kernels index raw memory: never let an out-of-range face reach them
        lo, hi = int(faces.min()), int(faces.max())
        if lo < 0 or hi >= verts.shape[0]:
            raise V.fail(
                "meshes", f"has face indices outside [0, {verts.shape[0] - 1}] (got {lo if lo < 0 else hi})", fn
            )
    grad = verts.requires_grad and torch.is_grad_enabled()
    if use_numba:
        face_idx, w, pts, nrm = _sample_numba(
            verts, faces, num_faces, first, N, S, generator, not grad, return_normals and not grad, fn
        )
        if not grad:
            return (pts, nrm) if return_normals else pts
    else:
        face_idx, w = _choose_torch(verts, faces, num_faces, first, N, S, generator, fn)
    return _positions_torch(verts, faces, face_idx, w, return_normals)


def _zero_area_error(totals: torch.Tensor, fn: str) -> None:
    bad = (~(totals > 0)).nonzero().flatten()
    if bad.numel():
        i = int(bad[0])
        raise V.fail(
            "meshes",
            f"contains mesh {i}, whose faces have zero total area; cannot sample points from it",
            fn,
        )


def _choose_torch(
    verts: torch.Tensor,
    faces: torch.Tensor,
    num_faces: torch.Tensor,
    first: torch.Tensor,
    N: int,
    S: int,
    generator: torch.Generator | None,
    fn: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pure-torch face choice (any device): ``(face_idx (N, S) int64 packed,
    w (N, S, 2) uniforms in the vertices' dtype)``.

    Inverse CDF over the packed faces: ``searchsorted(cdf, start + u * total,
    right=True)`` clamped to the mesh's faces of positive area."""
    device = verts.device
    F = faces.shape[0]
    face_mesh = torch.repeat_interleave(torch.arange(N, device=device), num_faces, output_size=F)
    with torch.no_grad():
        tri = verts.detach()[faces].to(torch.float64)  # (F, 3, 3)
        areas = 0.5 * torch.linalg.vector_norm(
            torch.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=1), dim=1
        )  # (F,)
        totals = torch.zeros(N, dtype=torch.float64, device=device).index_add_(0, face_mesh, areas)
        _zero_area_error(totals, fn)
        cdf = torch.cumsum(areas, 0)  # (F,)
        start = (cdf - areas)[first]  # (N,) cumulative area before each mesh
        # Last face of positive area in each mesh, so rounding at a mesh's upper
        # end can neither pick a zero-area face nor spill into the next mesh.
        pos_idx = torch.where(areas > 0, torch.arange(F, device=device), -1)
        last_pos = torch.full((N,), -1, dtype=torch.int64, device=device).scatter_reduce_(
            0, face_mesh, pos_idx, reduce="amax"
        )
        u = torch.rand(N, S, dtype=torch.float64, device=device, generator=generator)
        target = start[:, None] + u * totals[:, None]
        face_idx = torch.searchsorted(cdf, target, right=True)  # (N, S)
        face_idx = torch.minimum(torch.maximum(face_idx, first[:, None]), last_pos[:, None])
        w = torch.rand(N, S, 2, dtype=verts.dtype, device=device, generator=generator)
    return face_idx, w


def _sample_numba(
    verts: torch.Tensor,
    faces: torch.Tensor,
    num_faces: torch.Tensor,
    first: torch.Tensor,
    N: int,
    S: int,
    generator: torch.Generator | None,
    want_points: bool,
    want_normals: bool,
    fn: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """CPU kernels: ``(face_idx (N, S), w (N, S, 2), samples, normals)``.

    Same face choice as :func:`_choose_torch` (per-mesh cumulative areas and
    an O(1) guide-table inverse CDF instead of a binary search), drawing the
    same random numbers from ``generator`` in the same order.  ``samples`` /
    ``normals`` are (N, S, 3) when asked for, empty otherwise (no autograd)."""
    from geomgen.kernels.sample_points_numba import face_cdf, sample_faces

    with torch.no_grad():
        vd = verts.detach().contiguous().numpy()
        fd = faces.contiguous().numpy()
        first_np = first.contiguous().numpy()
        counts_np = num_faces.contiguous().numpy()
        cdf, total, last_pos = face_cdf(vd, fd, first_np, counts_np)
        _zero_area_error(torch.from_numpy(total), fn)
        u = torch.rand(N, S, dtype=torch.float64, generator=generator)
        w = torch.rand(N, S, 2, dtype=verts.dtype, generator=generator)
        face_idx, pts, nrm = sample_faces(
            vd, fd, cdf, total, last_pos, first_np, counts_np, u.numpy(), w.numpy(), want_points, want_normals
        )
    return torch.from_numpy(face_idx), w, torch.from_numpy(pts), torch.from_numpy(nrm)


def _positions_torch(
    verts: torch.Tensor,
    faces: torch.Tensor,
    face_idx: torch.Tensor,
    w: torch.Tensor,
    return_normals: bool,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Differentiable positions (and normals) of the samples from the chosen
    faces ``face_idx`` (N, S) and uniforms ``w`` (N, S, 2)."""
    with torch.no_grad():
        s = w[..., 0].sqrt()
        b0 = 1.0 - s
        b1 = s * (1.0 - w[..., 1])
        b2 = s * w[..., 1]
    corners = verts[faces[face_idx]]  # (N, S, 3, 3)
    a, b, c = corners[..., 0, :], corners[..., 1, :], corners[..., 2, :]
    samples = b0[..., None] * a + b1[..., None] * b + b2[..., None] * c
    if not return_normals:
        return samples
    normals = torch.cross(b - a, c - a, dim=-1)
    normals = normals / torch.linalg.vector_norm(normals, dim=-1, keepdim=True).clamp(min=1e-12)
    return samples, normals
