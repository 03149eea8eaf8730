"""Midpoint (1-to-4) subdivision of a batch of triangle meshes.

Shape letters used in this module:

* ``N`` - meshes in the batch
* ``V``, ``E``, ``F`` - vertices, unique edges and faces of one mesh
  (``sum(V)`` etc. over the packed batch)
* ``D`` - channels of per-vertex features

Scheme (PyTorch3D's ``SubdivideMeshes``): every edge gets a new vertex at its
midpoint and every face ``(a, b, c)`` becomes four faces.  With ``m_a``,
``m_b``, ``m_c`` the midpoints of the edges opposite ``a``, ``b``, ``c``
(``m_a`` on ``bc``, ...), the children of face ``f`` are, in this order, rows
``4f .. 4f + 3`` of the new mesh's faces::

    (a, m_c, m_b), (b, m_a, m_c), (c, m_b, m_a), (m_a, m_b, m_c)

so each child keeps its parent's orientation (normal direction) and
``new_face // 4`` is the parent face.  The new mesh ``i`` has
``V_i + E_i`` vertices: first its old vertices in their order, then one per
edge of :meth:`Meshes.edges_packed` (sorted ``(a, b)``, ``a < b``) in that
order - the same vertex order as PyTorch3D's (its face order differs).
Counts: ``V' = V + E``, ``E' = 2E + 3F``, ``F' = 4F``.  Vertex positions,
colours and any extra features of a new vertex are the mean of the edge's two
endpoints (differentiable); given vertex normals are dropped (recomputed
from the new faces).
"""

from __future__ import annotations

from typing import Any, overload

import torch
from torch import nn

from geomgen import checks as V
from geomgen.structures import Meshes

__all__ = ["subdivide_meshes", "SubdivideMeshes"]


def _check_meshes(meshes: Any, fn: str) -> None:
    if not isinstance(meshes, Meshes):
        raise V.fail("meshes", f"must be a geomgen.structures.Meshes, got {type(meshes).__name__}", fn)


def _check_feats(feats: Any, rows: int, fn: str, padded: tuple[int, int] | None = None) -> torch.Tensor:
    if padded is None:
        V.check_tensor(feats, "feats", ndim=2, shape_desc="(sum(V), D)", fn=fn)
        if feats.shape[0] != rows:
            raise V.fail("feats", f"must have sum(V)={rows} rows (one per packed vertex), got {feats.shape[0]}", fn)
    else:
        n, vmax = padded
        V.check_tensor(feats, "feats", ndim=(2, 3), shape_desc="(N * V, D) or (N, V, D)", fn=fn)
        want = (n * vmax,) if feats.dim() == 2 else (n, vmax)
        if tuple(feats.shape[:-1]) != want:
            raise V.fail("feats", f"must have leading shape {want}, got {tuple(feats.shape)}", fn)
    return feats


def _child_faces(faces: torch.Tensor, mids: torch.Tensor) -> torch.Tensor:
    """``(4F, 3)`` children of ``faces (F, 3)`` given the new vertex indices
    ``mids (F, 3)`` of the midpoints opposite each corner (same index space)."""
    a, b, c = faces.unbind(1)
    ma, mb, mc = mids.unbind(1)
    kids = torch.stack(
        [
            torch.stack([a, mc, mb], 1),
            torch.stack([b, ma, mc], 1),
            torch.stack([c, mb, ma], 1),
            torch.stack([ma, mb, mc], 1),
        ],
        dim=1,
    )  # (F, 4, 3)
    return kids.reshape(-1, 3)


def _subdivide(meshes: Meshes, feats: torch.Tensor | None) -> tuple[Meshes, torch.Tensor | None]:
    """Heterogeneous batch: every mesh with its own topology (validated inputs)."""
    dev = meshes.device
    verts = meshes.verts_packed()
    with torch.no_grad():
        faces = meshes.faces_packed()
        edges = meshes.edges_packed()
        f2e = meshes.faces_packed_to_edges_packed()
        nv = meshes.num_verts_per_mesh()
        ne = meshes.num_edges_per_mesh()
        nf = meshes.num_faces_per_mesh()
        first_v = meshes.mesh_to_verts_packed_first_idx()
        first_e = torch.cumsum(ne, 0) - ne
        v2m = meshes.verts_packed_to_mesh_idx()
        e2m = meshes.edges_packed_to_mesh_idx()
        f2m = meshes.faces_packed_to_mesh_idx()
        # new packed positions: old vertex p of mesh m -> p + first_e[m];
        # midpoint of edge e of mesh m -> first_v[m] + V_m + e
        old_pos = torch.arange(verts.shape[0], device=dev) + first_e[v2m]
        mid_pos = (first_v + nv)[e2m] + torch.arange(edges.shape[0], device=dev)
        total = verts.shape[0] + edges.shape[0]
        gather = torch.empty(total, dtype=torch.int64, device=dev)
        gather[old_pos] = torch.arange(verts.shape[0], device=dev)
        gather[mid_pos] = torch.arange(edges.shape[0], device=dev) + verts.shape[0]
        # faces in local indices of the new meshes
        local_faces = faces - first_v[f2m][:, None]
        local_mids = (nv[f2m] - first_e[f2m])[:, None] + f2e
        new_faces = _child_faces(local_faces, local_mids)
    new_nv = (nv + ne).tolist()

    def split(x: torch.Tensor) -> torch.Tensor:
        mid = 0.5 * (x.index_select(0, edges[:, 0]) + x.index_select(0, edges[:, 1]))
        return torch.cat([x, mid], 0).index_select(0, gather)

    new_verts = split(verts)
    colors = meshes.verts_colors_packed()
    out = Meshes(
        list(torch.split(new_verts, new_nv)),
        list(torch.split(new_faces, (4 * nf).tolist())),
        verts_colors=None if colors is None else list(torch.split(split(colors), new_nv)),
        validate=meshes.validated,
    )
    return out, None if feats is None else split(feats)


def subdivide_meshes(
    meshes: Meshes, feats: torch.Tensor | None = None
) -> Meshes | tuple[Meshes, torch.Tensor]:
    """Subdivide every mesh of a batch 1-to-4 at its edge midpoints (see the
    module docstring for the vertex and face order).

    Same result as PyTorch3D's ``SubdivideMeshes()(meshes, feats)`` up to the
    order of the faces (PyTorch3D groups the children by corner, we keep the
    four children of a face together).

    Args:
        meshes: :class:`~geomgen.structures.Meshes` batch; meshes may differ in
            topology.  Meshes without faces are kept (no new vertices).
        feats: optional ``(sum(V), D)`` per-vertex features parallel to
            ``meshes.verts_packed()``; subdivided alongside (mean of the two
            endpoints for new vertices).

    Returns:
        The subdivided ``Meshes`` (``V_i + E_i`` vertices, ``4 F_i`` faces per
        mesh; vertex colours carried over, given normals dropped), or
        ``(meshes, new_feats)`` with ``new_feats`` ``(sum(V + E), D)``
        parallel to the new packed vertices when ``feats`` is given.
        Differentiable w.r.t. the vertices and ``feats``.

    Raises:
        InvalidInputError: ``meshes`` is not a Meshes; ``feats`` of the wrong
            shape or device.
    """
    fn = "subdivide_meshes"
    _check_meshes(meshes, fn)
    if feats is not None:
        _check_feats(feats, int(meshes.num_verts_per_mesh().sum()), fn)
        V.check_same_device({"meshes": meshes.verts_packed(), "feats": feats}, fn=fn)
    new, new_feats = _subdivide(meshes, feats)
    return new if feats is None else (new, new_feats)


class SubdivideMeshes(nn.Module):
    """Module form of :func:`subdivide_meshes` (PyTorch3D's ``SubdivideMeshes``).

    Args:
        meshes: optional template.  When given, the subdivided topology of its
            **first** mesh is computed once and stored (buffers
            ``subdivided_faces`` ``(4F, 3)`` and ``edges`` ``(E, 2)``, local
            indices); every later call must then get a batch whose meshes all
            have exactly that mesh's faces (checked), which skips the edge
            computation.  Without a template each call handles any batch.

    ``forward(meshes, feats=None)``: as :func:`subdivide_meshes`.  With a
    template, ``feats`` may also be padded ``(N, V, D)``; the result keeps the
    layout it was given (PyTorch3D returns padded features in that mode even
    for packed input).
    """

    subdivided_faces: torch.Tensor | None
    edges: torch.Tensor | None

    def __init__(self, meshes: Meshes | None = None) -> None:
        super().__init__()
        self.precomputed = meshes is not None
        self.register_buffer("subdivided_faces", None)
        self.register_buffer("edges", None)
        self.register_buffer("template_faces", None)
        if meshes is not None:
            fn = "SubdivideMeshes"
            _check_meshes(meshes, fn)
            if len(meshes) == 0:
                raise V.fail("meshes", "must hold at least one mesh to serve as template", fn)
            first = meshes[0]
            with torch.no_grad():
                faces = first.faces_packed()
                mids = first.faces_packed_to_edges_packed() + first.num_verts_per_mesh()[0]
                self.subdivided_faces = _child_faces(faces, mids)
                self.edges = first.edges_packed().clone()
                self.template_faces = faces.clone()
            self._num_verts = int(first.num_verts_per_mesh()[0])

    @overload
    def forward(self, meshes: Meshes, feats: None = None) -> Meshes: ...

    @overload
    def forward(self, meshes: Meshes, feats: torch.Tensor) -> tuple[Meshes, torch.Tensor]: ...

    def forward(self, meshes: Meshes, feats: torch.Tensor | None = None) -> Meshes | tuple[Meshes, torch.Tensor]:
        """Subdivide ``meshes`` (and ``feats``); see the class docstring."""
        if not self.precomputed:
            return subdivide_meshes(meshes, feats)
        fn = "SubdivideMeshes.forward"
        _check_meshes(meshes, fn)
        n, nv = len(meshes), self._num_verts
        tf = self.template_faces
        same = bool((meshes.num_verts_per_mesh() == nv).all()) and bool(
            (meshes.num_faces_per_mesh() == tf.shape[0]).all()
        )
        if same and n:
            fp = meshes.faces_padded()
            same = fp.device == tf.device and bool((fp == tf.unsqueeze(0)).all())
        if not same:
            raise V.fail(
                "meshes",
                "must all have the faces of the template mesh given to SubdivideMeshes(meshes) "
                "(build SubdivideMeshes() without a template for other topologies)",
                fn,
            )
        if feats is not None:
            _check_feats(feats, n * nv, fn, padded=(n, nv))
        e = self.edges

        def split(x: torch.Tensor) -> torch.Tensor:  # (N, V, D) -> (N, V + E, D)
            return torch.cat([x, 0.5 * (x.index_select(1, e[:, 0]) + x.index_select(1, e[:, 1]))], 1)

        verts = split(meshes.verts_padded())
        colors = meshes.verts_colors_padded()
        new = Meshes(
            list(verts.unbind(0)),
            [self.subdivided_faces] * n,
            verts_colors=None if colors is None else list(split(colors).unbind(0)),
            validate=meshes.validated,
        )
        if feats is None:
            return new
        if feats.dim() == 2:
            return new, split(feats.reshape(n, nv, -1)).reshape(-1, feats.shape[-1])
        return new, split(feats)
