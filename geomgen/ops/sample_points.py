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
"""

from __future__ import annotations

from typing import Any

import torch

from geomgen import _validation as V

__all__ = ["sample_points_from_meshes"]

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
            identical results.

    Returns:
        ``samples`` ``(N, S, 3)`` in the vertices' dtype, or
        ``(samples, normals)`` with ``normals`` ``(N, S, 3)`` when
        ``return_normals`` is True.

    Raises:
        InvalidInputError: ``meshes`` is not a Meshes batch or is empty
            (``N == 0``); a mesh has no faces or zero total area (the message
            gives its index); a vertex is NaN/Inf; ``num_samples < 1``;
            ``return_textures=True``; a generator on another device.
    """
    fn = "sample_points_from_meshes"
    missing = [m for m in _MESH_METHODS if not callable(getattr(meshes, m, None))]
    if missing:
        raise V.fail(
            "meshes",
            f"must be a geomgen.structures.Meshes batch, got {type(meshes).__name__} "
            f"(missing {', '.join(missing)})",
            fn,
        )
    S = V.check_int(num_samples, "num_samples", min_value=1, fn=fn)
    V.check_bool(return_normals, "return_normals", fn=fn)
    V.check_bool(return_textures, "return_textures", fn=fn)
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
    V.check_finite(verts, "meshes (vertices)", fn=fn)

    F = faces.shape[0]
    face_mesh = torch.repeat_interleave(torch.arange(N, device=device), num_faces, output_size=F)

    # ---- area-weighted face choice (no autograd), inverse CDF over the packed faces
    with torch.no_grad():
        tri = verts.detach()[faces].to(torch.float64)  # (F, 3, 3)
        areas = 0.5 * torch.linalg.vector_norm(
            torch.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=1), dim=1
        )  # (F,)
        totals = torch.zeros(N, dtype=torch.float64, device=device).index_add_(0, face_mesh, areas)
        bad = (~(totals > 0)).nonzero().flatten()
        if bad.numel():
            i = int(bad[0])
            raise V.fail(
                "meshes",
                f"contains mesh {i}, whose faces have zero total area; cannot sample points "
                "from it",
                fn,
            )
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
        s = w[..., 0].sqrt()
        b0 = 1.0 - s
        b1 = s * (1.0 - w[..., 1])
        b2 = s * w[..., 1]

    # ---- differentiable positions (and normals) from the chosen faces
    corners = verts[faces[face_idx]]  # (N, S, 3, 3)
    a, b, c = corners[..., 0, :], corners[..., 1, :], corners[..., 2, :]
    samples = b0[..., None] * a + b1[..., None] * b + b2[..., None] * c
    if not return_normals:
        return samples
    normals = torch.cross(b - a, c - a, dim=-1)
    normals = normals / torch.linalg.vector_norm(normals, dim=-1, keepdim=True).clamp(min=1e-12)
    return samples, normals
