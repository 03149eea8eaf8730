"""Mesh regularisers: edge length, Laplacian smoothing, normal consistency.

Shape letters: ``N`` meshes in the batch; ``V``, ``E``, ``F`` packed
vertices, unique edges and faces (``sum`` over the batch).

All three follow PyTorch3D's ``pytorch3d.loss`` definitions and weighting
(numerically equal on meshes where PyTorch3D's are defined, see each
function): a per-element term is averaged within each mesh (weight
``1 / count`` of that mesh) and the per-mesh means are averaged over the
``N`` meshes of the batch, so every mesh counts equally whatever its size,
and a mesh with nothing to measure (no edges, ...) contributes 0 but still
counts in ``N``.  Each returns a 0-dim tensor in the vertices' dtype,
differentiable w.r.t. the vertices.  A batch without faces (or ``N = 0``)
gives a 0-dim zero connected to the vertices (PyTorch3D returns a
``(1,)``-shaped float32 zero there).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from geomgen import checks as V

__all__ = ["mesh_edge_loss", "mesh_laplacian_smoothing", "mesh_normal_consistency", "LAPLACIAN_METHODS"]

#: Accepted values of ``mesh_laplacian_smoothing(..., method=...)``.
LAPLACIAN_METHODS = ("uniform", "cot", "cotcurv")

#: Lower bound of ``area^2`` in the cotangent weights (PyTorch3D's ``eps``):
#: triangle areas below 1e-6 are raised to 1e-6, so degenerate faces give
#: large but finite cotangents.
_AREA2_EPS = 1e-12

_MESH_METHODS = (
    "verts_packed",
    "faces_packed",
    "edges_packed",
    "faces_packed_to_edges_packed",
    "num_verts_per_mesh",
    "num_edges_per_mesh",
    "verts_packed_to_mesh_idx",
    "edges_packed_to_mesh_idx",
    "isempty",
)


def _check_meshes(meshes: Any, fn: str) -> None:
    V.check_meshes(meshes, _MESH_METHODS, fn=fn)


def _rows(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``x[idx]`` for a 1-D index; ``index_select`` backpropagates with ``index_add``,
    several times faster on the CPU than advanced indexing's ``index_put``."""
    return x.index_select(0, idx)


def _zero(meshes: Any) -> torch.Tensor:
    """0-dim zero that still backpropagates (zeros) into the vertices."""
    return meshes.verts_packed().sum() * 0.0


def _per_mesh_mean(values: torch.Tensor, item_idx: torch.Tensor, n: int) -> torch.Tensor:
    """Mean over the batch of the per-item means of ``values``; items without
    values contribute 0 (and count in ``n``)."""
    counts = torch.bincount(item_idx, minlength=n).to(values.dtype)
    sums = values.new_zeros(n).index_add(0, item_idx, values)
    return (sums / counts.clamp(min=1)).sum() / n


def _pairs_after(later: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All ``(p, p + k)`` with ``1 <= k <= later[p]``, in order of ``p`` then ``k``."""
    dev = later.device
    kmax = int(later.max()) if later.numel() else 0
    if kmax <= 8:  # manifold meshes: kmax = 1; a small (P, kmax) grid, elementwise ops only
        k = torch.arange(1, kmax + 1, device=dev)
        keep = k[None, :] <= later[:, None]
        p = torch.arange(later.shape[0], device=dev)[:, None].expand(-1, kmax)[keep]
        return p, p + k[None, :].expand(later.shape[0], -1)[keep]
    p = torch.repeat_interleave(torch.arange(later.shape[0], device=dev), later)
    first = torch.cumsum(later, 0) - later
    return p, p + 1 + torch.arange(p.shape[0], device=dev) - first[p]


def mesh_edge_loss(meshes: Any, target_length: float = 0.0) -> torch.Tensor:
    """Squared deviation of edge lengths from ``target_length``.

    ``L = (1/N) sum_n (1/E_n) sum_{(a, b) in edges of n} (|v_a - v_b| - target_length)^2``
    over the unique edges (PyTorch3D's ``mesh_edge_loss``, same weighting:
    every mesh counts equally; a mesh without edges contributes 0 and counts
    in ``N``).

    Args:
        meshes: :class:`~geomgen.structures.Meshes` batch.
        target_length: rest length (>= 0, in the vertices' units).

    Returns:
        0-dim tensor (squared length units), mean over meshes.

    Raises:
        InvalidInputError: ``meshes`` is not a Meshes; negative ``target_length``.
    """
    fn = "mesh_edge_loss"
    _check_meshes(meshes, fn)
    target_length = V.check_float(target_length, "target_length", nonnegative=True, fn=fn)
    if meshes.isempty():
        return _zero(meshes)
    verts = meshes.verts_packed()
    edges = meshes.edges_packed()
    length = torch.linalg.vector_norm(_rows(verts, edges[:, 0]) - _rows(verts, edges[:, 1]), dim=1)
    return _per_mesh_mean((length - target_length).square(), meshes.edges_packed_to_mesh_idx(), len(meshes))


def _cot_weights(verts: torch.Tensor, faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(F, 3)`` cotangent of each corner angle and ``(F,)`` clamped areas."""
    t = verts[faces]  # (F, 3, 3)
    # squared length of the side opposite each corner k: between corners k+1, k+2
    opp = torch.stack([t[:, 2] - t[:, 1], t[:, 0] - t[:, 2], t[:, 1] - t[:, 0]], dim=1)
    l2 = opp.square().sum(-1)  # (F, 3)
    cross = torch.linalg.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0], dim=1)
    area = (0.25 * cross.square().sum(-1)).clamp(min=_AREA2_EPS).sqrt()
    # law of cosines: cot(angle k) = (sum of the two adjacent sides^2 - opposite^2) / (4 area)
    cot = (l2.sum(1, keepdim=True) - 2.0 * l2) / (4.0 * area[:, None])
    return cot, area


def mesh_laplacian_smoothing(meshes: Any, method: str = "uniform") -> torch.Tensor:
    """Laplacian smoothing: mean norm of each vertex's Laplacian.

    With ``S(i)`` the neighbours of vertex ``i`` and ``alpha_ij``, ``beta_ij``
    the angles opposite edge ``ij`` in its (one or two, or more) faces, the
    per-vertex term is ``|delta_i|`` where (PyTorch3D's three variants):

    - ``"uniform"``: ``delta_i = (1/|S(i)|) sum_j v_j - v_i`` (neighbours via
      the unique edges);
    - ``"cot"``: ``delta_i = sum_j w_ij v_j / sum_j w_ij - v_i`` with
      ``w_ij = cot alpha_ij + cot beta_ij`` (summed over all faces holding
      the edge);
    - ``"cotcurv"``: ``delta_i = (sum_j w_ij (v_j - v_i)) / (4 A_i)`` with
      ``A_i`` the summed area of the faces around ``i`` (mean-curvature
      normal scaled as PyTorch3D does).

    The weights (``1/|S(i)|``, ``w_ij``, ``A_i``) are treated as constants:
    no gradient flows through them, only through the positions in the sums,
    exactly as in PyTorch3D.  Areas below 1e-6 are raised to 1e-6 in the
    cotangents (PyTorch3D's eps).  Reduction: mean over each mesh's vertices
    (weight ``1 / V_n``), then mean over the ``N`` meshes.

    Differences from PyTorch3D, only where its value is not a smoothness
    measure: a vertex in no edge/face, or whose cotangent weights sum to
    exactly 0 (``"cot"``), contributes 0 here; PyTorch3D adds ``|v_i|``,
    its distance to the origin.  With ``"cot"``, a negative weight sum
    (very obtuse fans) is divided by here as any other; PyTorch3D multiplies
    by it instead.

    Args:
        meshes: :class:`~geomgen.structures.Meshes` batch.
        method: ``"uniform"`` (default), ``"cot"`` or ``"cotcurv"``.

    Returns:
        0-dim tensor: length units for ``"uniform"``/``"cot"``, 1/length for
        ``"cotcurv"``; mean over meshes.

    Raises:
        InvalidInputError: ``meshes`` is not a Meshes; unknown ``method``.
    """
    fn = "mesh_laplacian_smoothing"
    _check_meshes(meshes, fn)
    V.check_choice(method, "method", LAPLACIAN_METHODS, fn=fn)
    if meshes.isempty():
        return _zero(meshes)
    verts = meshes.verts_packed()
    nv = verts.shape[0]
    if method == "uniform":
        edges = meshes.edges_packed()
        dst = torch.cat([edges[:, 0], edges[:, 1]])
        src = torch.cat([edges[:, 1], edges[:, 0]])
        weight = None
        norm = torch.bincount(dst, minlength=nv).to(verts.dtype)
    else:
        faces = meshes.faces_packed()
        with torch.no_grad():
            cot, area = _cot_weights(verts.detach(), faces)
        # edge opposite corner k joins corners k+1 and k+2; weight it both ways
        a, b = faces[:, [1, 2, 0]].reshape(-1), faces[:, [2, 0, 1]].reshape(-1)
        dst, src = torch.cat([a, b]), torch.cat([b, a])
        weight = cot.reshape(-1).repeat(2)
        wsum = verts.new_zeros(nv).index_add(0, dst, weight)
        if method == "cot":
            norm = wsum
        else:
            norm = 4.0 * verts.new_zeros(nv).index_add(0, faces.reshape(-1), area.repeat_interleave(3))
    nbr = _rows(verts, src) if weight is None else _rows(verts, src) * weight[:, None]
    acc = verts.new_zeros(verts.shape).index_add(0, dst, nbr)  # sum_j w_ij v_j
    ok = (norm != 0)[:, None]
    safe = torch.where(ok, norm[:, None], torch.ones_like(norm[:, None]))
    if method == "cotcurv":
        delta = (acc - wsum[:, None] * verts) / safe
    else:
        delta = acc / safe - verts
    delta = torch.where(ok, delta, torch.zeros_like(delta))
    per_vert = torch.linalg.vector_norm(delta, dim=1)
    return _per_mesh_mean(per_vert, meshes.verts_packed_to_mesh_idx(), len(meshes))


def mesh_normal_consistency(meshes: Any) -> torch.Tensor:
    """Normal consistency: ``1 - cos`` of the dihedral angle at every edge.

    For every pair of faces ``f0 = (v0, v1, a)``, ``f1 = (v0, v1, b)`` sharing
    an edge ``(v0, v1)`` (``v0 < v1`` as in ``edges_packed``), with
    ``n0 = (v1 - v0) x (a - v0)`` and ``n1 = (b - v0) x (v1 - v0)``, the term
    is ``1 - cos(n0, n1)``: 0 where the two faces are coplanar (folded open),
    2 where they fold onto each other.  The normals are built from the edge
    and the opposite vertices, so the result does not depend on the faces'
    winding (PyTorch3D's ``mesh_normal_consistency``, same definition).  An
    edge shared by ``k > 2`` faces contributes all ``k (k - 1) / 2`` pairs.

    Reduction: mean over each mesh's face pairs (weight ``1 / pairs_n``),
    then mean over the ``N`` meshes (a mesh without shared edges contributes
    0 and counts in ``N``).  ``cos`` uses :func:`torch.cosine_similarity`
    (eps 1e-8), so degenerate faces give a finite value.

    Args:
        meshes: :class:`~geomgen.structures.Meshes` batch.

    Returns:
        0-dim tensor in ``[0, 2]``, mean over meshes.

    Raises:
        InvalidInputError: ``meshes`` is not a Meshes.
    """
    fn = "mesh_normal_consistency"
    _check_meshes(meshes, fn)
    if meshes.isempty():
        return _zero(meshes)
    verts = meshes.verts_packed()
    faces = meshes.faces_packed()
    edges = meshes.edges_packed()
    with torch.no_grad():
        # one incidence per (face, corner k): the edge opposite k and the vertex k
        edge_of = meshes.faces_packed_to_edges_packed().reshape(-1)
        edge_of, order = torch.sort(edge_of, stable=True)
        opp = faces.reshape(-1)[order]
        # all pairs (p, q), p < q, of incidences of the same edge
        num = torch.bincount(edge_of, minlength=edges.shape[0])
        start = torch.cumsum(num, 0) - num
        rank = torch.arange(edge_of.shape[0], device=faces.device) - start[edge_of]
        later = num[edge_of] - 1 - rank  # partners after each incidence
        p, q = _pairs_after(later)
    if p.numel() == 0:
        return _zero(meshes)
    e = edges[edge_of[p]]
    v0, v1 = _rows(verts, e[:, 0]), _rows(verts, e[:, 1])
    d = v1 - v0
    n0 = torch.linalg.cross(d, _rows(verts, opp[p]) - v0, dim=1)
    n1 = torch.linalg.cross(_rows(verts, opp[q]) - v0, d, dim=1)
    loss = 1.0 - F.cosine_similarity(n0, n1, dim=1)
    pair_mesh = meshes.edges_packed_to_mesh_idx()[edge_of[p]]
    return _per_mesh_mean(loss, pair_mesh, len(meshes))
