"""Icospheres: subdivided icosahedra projected onto the unit sphere.

``ico_sphere(level)`` has ``V = 10 * 4^level + 2`` vertices,
``E = 30 * 4^level`` edges and ``F = 20 * 4^level`` faces (level 4: 2562 /
7680 / 5120), all vertices at distance 1 from the origin, faces
counter-clockwise seen from outside (right-hand normals point outwards).

Construction (PyTorch3D's ``ico_sphere``): level 0 is the regular
icosahedron whose 12 vertices are the cyclic permutations of
``(0, +-1, +-phi)`` (``phi`` the golden ratio), scaled to unit length; each
further level applies :func:`geomgen.ops.subdivide.subdivide_meshes` (1-to-4
midpoint split) and pushes every vertex back onto the sphere.  The vertex
*set* of every level equals PyTorch3D's; the order of vertices and faces
differs.  The first ``V(level - 1)`` vertices of a level are those of the
previous level, in the same order.
"""

from __future__ import annotations

import functools
import math

import torch

from geomgen import checks as V
from geomgen.ops.subdivide import subdivide_meshes
from geomgen.structures import Meshes
from geomgen.structures._checks import resolve_device

__all__ = ["ico_sphere"]


def _icosahedron() -> tuple[torch.Tensor, torch.Tensor]:
    """(12, 3) float64 unit vertices and (20, 3) outward faces."""
    phi = (1.0 + math.sqrt(5.0)) / 2.0
    base = [(0.0, s1, s2 * phi) for s1 in (-1.0, 1.0) for s2 in (-1.0, 1.0)]
    pts = [p for q in base for p in (q, (q[1], q[2], q[0]), (q[2], q[0], q[1]))]
    verts = torch.tensor(pts, dtype=torch.float64)
    # edges join vertices at distance 2 (before scaling); faces are mutually adjacent triples
    adj = (torch.cdist(verts, verts) - 2.0).abs() < 1e-9
    faces = []
    for i in range(12):
        for j in range(i + 1, 12):
            for k in range(j + 1, 12):
                if adj[i, j] and adj[j, k] and adj[i, k]:
                    a, b, c = verts[i], verts[j], verts[k]
                    outward = torch.dot(torch.linalg.cross(b - a, c - a), a + b + c) > 0
                    faces.append((i, j, k) if outward else (i, k, j))
    return verts / torch.linalg.vector_norm(verts, dim=1, keepdim=True), torch.tensor(faces, dtype=torch.int64)


@functools.lru_cache(maxsize=None)
def _ico_cpu(level: int) -> tuple[torch.Tensor, torch.Tensor]:
    """float64 vertices and faces of ``level`` on the CPU (cached, never handed out)."""
    if level == 0:
        return _icosahedron()
    verts, faces = _ico_cpu(level - 1)
    sub = subdivide_meshes(Meshes([verts], [faces], validate=False))
    v = sub.verts_packed()
    return v / torch.linalg.vector_norm(v, dim=1, keepdim=True), sub.faces_packed()


def ico_sphere(level: int = 0, device: str | torch.device | None = None) -> Meshes:
    """A unit icosphere as a batch of one mesh.

    Same signature and vertex set as PyTorch3D's ``ico_sphere(level, device)``
    (vertex/face order differs, see the module docstring).

    Args:
        level: subdivision level ``>= 0`` (0 is the icosahedron; level 4 has
            2562 vertices and 5120 faces).
        device: device of the result (default CPU).

    Returns:
        :class:`~geomgen.structures.Meshes` with one mesh: float32 vertices
        on the unit sphere (computed in float64, then rounded), int64 faces
        with outward (counter-clockwise) orientation.  Fresh tensors on every
        call.

    Raises:
        InvalidInputError: negative or non-integer ``level``, bad ``device``.
    """
    fn = "ico_sphere"
    level = V.check_int(level, "level", min_value=0, fn=fn)
    dev = resolve_device(device) if device is not None else torch.device("cpu")
    verts, faces = _ico_cpu(level)
    return Meshes([verts.to(device=dev, dtype=torch.float32)], [faces.to(dev, copy=True)])
