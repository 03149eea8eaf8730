"""Edges of a batch of meshes, and vertex adjacency for graph convolutions.

Shape letters used in this module:

* ``N`` - number of meshes in the batch
* ``V`` - vertices (``sum(V)`` over a packed batch)
* ``E`` - unique undirected edges of one mesh (``sum(E)`` over the batch)
* ``T`` - neighbour terms of an adjacency: ``2 E`` for undirected edges,
  ``E`` for directed ones (repeated edges counted with multiplicity)

:func:`mesh_edges` is a thin view over
:meth:`geomgen.structures.Meshes.edges_packed` (unique undirected edges
``(a, b)`` with ``a < b``, sorted lexicographically, hence grouped by mesh -
the same set and order as PyTorch3D's ``Meshes.edges_packed()``), with list
and padded views in local vertex indices.

:func:`edges_to_adjacency` turns an edge list into a :class:`GraphAdjacency`,
the neighbour lists that :class:`geomgen.ops.graph_conv.GraphConv` and
:func:`geomgen.ops.graph_conv.gather_scatter` sum over.  Neighbour convention
(PyTorch3D's ``gather_scatter``): an edge ``(i, j)`` makes ``j`` a neighbour
of ``i``; when undirected it also makes ``i`` a neighbour of ``j``.  An edge
listed twice counts twice, a self-loop ``(i, i)`` makes ``i`` its own
neighbour (twice when undirected).  Building the adjacency once and passing
it to several layers saves the sort (a few ms for 10^5 edges) each layer would
otherwise do; :class:`GraphConv` also caches the adjacency of the last edge
tensors it saw.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from geomgen import checks as V

__all__ = ["mesh_edges", "MESH_EDGES_VIEWS", "GraphAdjacency", "edges_to_adjacency", "mesh_adjacency"]

#: Accepted values of ``mesh_edges(..., view=...)``.
MESH_EDGES_VIEWS = ("packed", "list", "padded")

_MESH_METHODS = (
    "edges_packed", "num_edges_per_mesh", "edges_packed_to_mesh_idx", "mesh_to_verts_packed_first_idx", "verts_packed"
)


def _check_meshes(meshes: Any, fn: str) -> None:
    V.check_meshes(meshes, _MESH_METHODS, fn=fn)


def mesh_edges(meshes: Any, view: str = "packed") -> torch.Tensor | list[torch.Tensor]:
    """Unique undirected edges of every mesh of a batch.

    Args:
        meshes: a :class:`geomgen.structures.Meshes` batch of ``N`` meshes.
        view: ``"packed"`` (default), ``"list"`` or ``"padded"``.

    Returns:
        The edges in the requested ``view``:

            - ``"packed"``: ``(sum(E), 2)`` int64 edges in *packed* vertex indices
              (the tensor :meth:`Meshes.edges_packed` returns, not a copy); each
              row ``(a, b)`` has ``a < b``, rows sorted lexicographically, so the
              edges of mesh ``i`` are the rows
              ``[mesh_to_edges_packed_first_idx[i], + num_edges_per_mesh[i])``.
            - ``"list"``: ``N`` int64 tensors ``(E_i, 2)`` in *local* vertex
              indices (``0 <= a < b < V_i``), same order.
            - ``"padded"``: ``(N, max(E), 2)`` int64 in local indices, padding
              rows are ``-1`` (as ``Meshes.faces_padded``).

    Raises:
        InvalidInputError: ``meshes`` is not a Meshes; unknown ``view``.
    """
    fn = "mesh_edges"
    _check_meshes(meshes, fn)
    V.check_choice(view, "view", MESH_EDGES_VIEWS, fn=fn)
    edges = meshes.edges_packed()
    if view == "packed":
        return edges
    counts = meshes.num_edges_per_mesh()
    first_v = meshes.mesh_to_verts_packed_first_idx()
    e2m = meshes.edges_packed_to_mesh_idx()
    local = edges - first_v[e2m][:, None]
    sizes = counts.tolist()
    if view == "list":
        return list(torch.split(local, sizes))
    n, emax = len(sizes), max(sizes, default=0)
    out = torch.full((n, emax, 2), -1, dtype=torch.int64, device=edges.device)
    if local.numel():
        first_e = torch.cumsum(counts, 0) - counts
        slot = torch.arange(local.shape[0], device=edges.device) - first_e[e2m]
        out[e2m, slot] = local
    return out


class GraphAdjacency:
    """Neighbour lists of a graph on ``V`` vertices, in compressed sparse row
    (CSR) form: the neighbours of vertex ``i`` are
    ``col_indices[crow_indices[i]:crow_indices[i + 1]]`` (sorted, unique),
    each with its multiplicity in ``counts``.

    Build it with :func:`edges_to_adjacency` or :func:`mesh_adjacency`; pass
    it wherever an ``edges`` argument of
    :class:`~geomgen.ops.graph_conv.GraphConv` /
    :func:`~geomgen.ops.graph_conv.gather_scatter` is expected.

    Attributes:
        crow_indices: ``(V + 1,)`` int64 row pointers.
        col_indices: ``(U,)`` int64 neighbour indices (``U`` distinct
            (vertex, neighbour) pairs).
        counts: ``(U,)`` int64 multiplicities (1 unless edges repeat).
        row_indices: ``(U,)`` int64 vertex of each (vertex, neighbour) pair
            (the expanded ``crow_indices``).
        num_verts: ``V``.
        directed: whether it was built from directed edges.
    """

    def __init__(
        self,
        crow_indices: torch.Tensor,
        col_indices: torch.Tensor,
        counts: torch.Tensor,
        num_verts: int,
        directed: bool,
        row_indices: torch.Tensor | None = None,
        _transpose: "GraphAdjacency | None" = None,
    ) -> None:
        self.crow_indices = crow_indices
        self.col_indices = col_indices
        self.counts = counts
        self.num_verts = int(num_verts)
        self.directed = bool(directed)
        if row_indices is None:  # expand the row pointers (searchsorted: no thread pool start-up)
            row_indices = torch.searchsorted(
                crow_indices[1:], torch.arange(col_indices.numel(), device=col_indices.device), right=True
            )
        self.row_indices = row_indices
        self._transpose = _transpose
        self._matrices: dict[torch.dtype, torch.Tensor] = {}
        self._degree: torch.Tensor | None = None
        self._unit: bool | None = None

    def __repr__(self) -> str:
        return (
            f"GraphAdjacency(num_verts={self.num_verts}, num_terms={self.num_terms}, "
            f"directed={self.directed}, device={self.device})"
        )

    @property
    def device(self) -> torch.device:
        """Device of the index tensors."""
        return self.col_indices.device

    @property
    def num_terms(self) -> int:
        """``T``: number of neighbour terms summed over all vertices
        (``2 E`` for ``E`` undirected edges, ``E`` when directed)."""
        return int(self.counts.sum()) if self.counts.numel() else 0

    def degree(self) -> torch.Tensor:
        """``(V,)`` int64: number of neighbour terms of each vertex (with
        multiplicity) - the number of rows :func:`gather_scatter` sums into
        each output row.  Cached."""
        if self._degree is None:
            self._degree = torch.zeros(self.num_verts, dtype=torch.int64, device=self.device).index_add_(
                0, self.row_indices, self.counts
            )
        return self._degree

    def has_repeats(self) -> bool:
        """Whether some neighbour appears more than once (repeated edges, or
        an undirected self-loop).  Cached."""
        if self._unit is None:
            self._unit = bool((self.counts == 1).all())
        return not self._unit

    def matrix(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``(V, V)`` sparse CSR matrix ``A`` with ``A[i, j]`` = multiplicity
        of ``j`` among the neighbours of ``i`` (cached per dtype), so that
        ``A @ x`` sums neighbour rows of ``x``."""
        mat = self._matrices.get(dtype)
        if mat is None:
            with warnings.catch_warnings():  # "sparse CSR support is in beta"
                warnings.simplefilter("ignore", UserWarning)
                mat = torch.sparse_csr_tensor(
                    self.crow_indices, self.col_indices, self.counts.to(dtype),
                    (self.num_verts, self.num_verts), dtype=dtype, device=self.device,
                )
            self._matrices[dtype] = mat
        return mat

    def transpose(self) -> "GraphAdjacency":
        """Adjacency of the reversed edges (``A^T``); ``self`` when undirected
        (symmetric).  Computed once and cached."""
        if not self.directed:
            return self
        if self._transpose is None:
            rows = self.row_indices
            # the pairs are unique already: re-sorting by (col, row) gives A^T in CSR form
            key = self.col_indices * max(self.num_verts, 1) + rows
            order = torch.argsort(key)
            t_rows = self.col_indices[order]
            self._transpose = GraphAdjacency(
                _row_pointers(t_rows, self.num_verts), rows[order], self.counts[order], self.num_verts, True,
                row_indices=t_rows, _transpose=self,
            )
        return self._transpose


def _row_pointers(rows: torch.Tensor, num_verts: int) -> torch.Tensor:
    """``(V + 1,)`` CSR row pointers of sorted row indices."""
    crow = torch.zeros(num_verts + 1, dtype=torch.int64, device=rows.device)
    crow[1:] = torch.cumsum(torch.bincount(rows, minlength=num_verts), 0)
    return crow


def _build_adjacency(edges: torch.Tensor, num_verts: int, directed: bool) -> GraphAdjacency:
    """:func:`edges_to_adjacency` on validated inputs (int64 edges in range)."""
    dev = edges.device
    if directed:
        dst, src = edges[:, 0], edges[:, 1]
    else:
        dst = torch.cat([edges[:, 0], edges[:, 1]])
        src = torch.cat([edges[:, 1], edges[:, 0]])
    vv = max(num_verts, 1)
    key, _ = torch.sort(dst * vv + src)
    if key.numel() > 1 and bool((key[1:] == key[:-1]).any()):
        key, counts = torch.unique_consecutive(key, return_counts=True)
    else:
        counts = torch.ones(key.shape[0], dtype=torch.int64, device=dev)
    rows = torch.div(key, vv, rounding_mode="floor")
    cols = key - rows * vv
    crow = _row_pointers(rows, num_verts)
    return GraphAdjacency(crow, cols, counts, num_verts, directed, row_indices=rows)


def _check_edges(edges: Any, num_verts: int, name: str, fn: str) -> torch.Tensor:
    """Validate an ``(E, 2)`` integer edge list with values in ``[0, num_verts)``;
    return it as int64."""
    V.check_tensor(edges, name, shape=(None, 2), shape_desc="(E, 2)", integer=True, fn=fn)
    if edges.numel():
        lo, hi = int(edges.min()), int(edges.max())
        if lo < 0 or hi >= num_verts:
            bad = lo if lo < 0 else hi
            raise V.fail(name, f"values must lie in [0, {num_verts - 1}] (V={num_verts}), got {bad}", fn)
    return edges.to(torch.int64)


def edges_to_adjacency(edges: torch.Tensor, num_verts: int, directed: bool = False) -> GraphAdjacency:
    """Neighbour lists (CSR) of a graph given as an edge list.

    Args:
        edges: ``(E, 2)`` integer tensor of vertex indices in ``[0, V)``.
            Edge ``(i, j)`` makes ``j`` a neighbour of ``i`` (and, when
            undirected, ``i`` a neighbour of ``j``) - PyTorch3D's
            ``gather_scatter`` convention.  Repeated edges count repeatedly.
        num_verts: ``V >= 0``, number of vertices of the (packed) graph.
        directed: treat each edge as one-way.

    Returns:
        :class:`GraphAdjacency` on the device of ``edges``.

    Raises:
        InvalidInputError: wrong shape/dtype of ``edges``, index out of range,
            negative ``num_verts``.
    """
    fn = "edges_to_adjacency"
    num_verts = V.check_int(num_verts, "num_verts", min_value=0, fn=fn)
    V.check_bool(directed, "directed", fn=fn)
    edges = _check_edges(edges, num_verts, "edges", fn)
    return _build_adjacency(edges, num_verts, directed)


def mesh_adjacency(meshes: Any) -> GraphAdjacency:
    """Undirected vertex adjacency of a batch of meshes over its packed
    vertices: the neighbours of a vertex are the vertices it shares an edge
    with (each once).  Equivalent to
    ``edges_to_adjacency(meshes.edges_packed(), sum(V))``.

    Args:
        meshes: a :class:`geomgen.structures.Meshes` batch.

    Raises:
        InvalidInputError: ``meshes`` is not a Meshes.
    """
    fn = "mesh_adjacency"
    _check_meshes(meshes, fn)
    nv = int(meshes.verts_packed().shape[0])
    return _build_adjacency(meshes.edges_packed(), nv, False)
