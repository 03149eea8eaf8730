"""Batched triangle meshes of different sizes.

Shape letters used in this module:

* ``N`` - number of meshes in the batch
* ``V`` - vertices of one mesh (``V_i`` for mesh ``i``); ``max(V)`` / ``sum(V)``
  over the batch
* ``F`` - faces (triangles) of one mesh, likewise ``max(F)`` / ``sum(F)``
* ``E`` - unique undirected edges, ``sum(E)`` over the batch
* ``C`` - colour channels (3 = RGB or 4 = RGBA)

Three views of every per-vertex / per-face quantity are offered:

* **list** - a Python list of ``N`` tensors ``(V_i, 3)`` / ``(F_i, 3)``; face
  indices are local to their mesh.
* **padded** - one ``(N, max(V), 3)`` tensor, zero padded; faces are padded
  with rows of ``-1``.
* **packed** - the list concatenated into ``(sum(V), 3)``; packed faces index
  into packed vertices (local index + ``mesh_to_verts_packed_first_idx``).

The list view is the source of truth.  Padded and packed views are computed on
first use and cached; a cached view is recomputed automatically when a source
tensor was modified in place (e.g. an optimiser step on leaf ``verts``) or when
the caller wrote into a returned view.  All vertex views are differentiable
with respect to the ``verts`` given to the constructor.

A ``Meshes`` built with ``validate=True`` (the default) guarantees that every
face index lies in ``[0, V_i)``; kernels may rely on it.  If face tensors are
modified in place afterwards, they are re-checked before any face view is
served.  Coordinates are checked to be finite at construction; vertices
produced later (``offset_verts``, ``update_padded``...) are not re-checked.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from geomgen import checks as V
from geomgen.errors import InvalidInputError
from geomgen.structures._base import _RaggedBatch, check_join_items
from geomgen.structures._checks import (
    ViewCache,
    check_finite_list,
    check_index_list,
    check_num_items,
    check_range_list,
    first_device,
    first_idx_from_counts,
    format_counts,
    list_to_packed,
    list_to_padded,
    parse_batch_arg,
    parse_item_attr,
    ragged_items,
    safe_normalize,
    segment_bounding_boxes,
    segment_sum,
    tensor_versions,
)

__all__ = ["Meshes", "join_meshes_as_batch"]

_ArrayLike = Any  # torch.Tensor | numpy.ndarray


class Meshes(_RaggedBatch):
    """A batch of ``N`` triangle meshes, each with its own number of vertices
    and faces.

    Args:
        verts: list of ``N`` float tensors ``(V_i, 3)``, or a padded float
            tensor ``(N, max(V), 3)``.  NumPy arrays are accepted (copied).
        faces: list of ``N`` integer tensors ``(F_i, 3)`` of local vertex
            indices, or a padded ``(N, max(F), 3)`` tensor whose padding rows
            are all ``-1``.  int32 is accepted; stored as int64.
        verts_normals: optional per-vertex normals, same layout as ``verts``.
            When omitted they are computed from the faces.
        verts_colors: optional per-vertex colours ``(V_i, C)`` with ``C`` 3
            (RGB) or 4 (RGBA), floats in ``[0, 1]``, same layout as ``verts``.
        validate: check values (finite coordinates, face indices in range,
            colours in ``[0, 1]``).  Shapes, dtypes, devices and counts are
            always checked.  Pass ``False`` only for data already known valid.
        num_verts: with padded ``verts`` only: ``N`` vertex counts.  When
            omitted, mesh ``i`` has ``max(faces[i]) + 1`` vertices, or all
            ``max(V)`` rows if it has no faces.

    Meshes with no faces (and even no vertices) are allowed, as is an empty
    batch (``N = 0``).  All tensors are on one device (that of ``verts``).

    Raises:
        InvalidInputError: naming the argument (and mesh index) at fault.
    """

    def __init__(
        self,
        verts: Sequence[_ArrayLike] | _ArrayLike,
        faces: Sequence[_ArrayLike] | _ArrayLike,
        verts_normals: Sequence[_ArrayLike] | _ArrayLike | None = None,
        verts_colors: Sequence[_ArrayLike] | _ArrayLike | None = None,
        validate: bool = True,
        *,
        num_verts: Sequence[int] | torch.Tensor | None = None,
    ) -> None:
        device = first_device(verts)
        v_items, v_padded = parse_batch_arg(verts, "verts", ("V", 3), "float", device)
        f_items, f_padded = parse_batch_arg(faces, "faces", ("F", 3), "int", device)
        n = len(v_items) if v_items is not None else v_padded.shape[0]

        # faces -> list
        if f_padded is not None:
            check_num_items("faces", f_padded, "verts", n)
            if f_padded.device != device:
                raise InvalidInputError(f"faces: on device {f_padded.device}, expected {device}")
            keep = ~(f_padded == -1).all(dim=-1)
            f_counts = keep.sum(dim=1).tolist()
            f_items = list(torch.split(f_padded[keep], f_counts))
        else:
            check_num_items("faces", f_items, "verts", n)
            V.check_same_device({f"faces[{i}]": t for i, t in enumerate(f_items)}, device=device)

        def counts_from_faces() -> list[int]:
            # padded verts without num_verts: max(faces[i]) + 1, or all rows of a mesh without faces
            vmax = v_padded.shape[1]
            fpad = f_padded if f_padded is not None else list_to_padded(f_items, -1, (3,), torch.int64, device)
            if fpad.shape[1] == 0:
                return [vmax] * n
            fmax = fpad.reshape(n, -1).amax(dim=1).tolist()
            counts = [vmax if m < 0 else m + 1 for m in fmax]
            for i, c in enumerate(counts):
                if c > vmax:
                    raise InvalidInputError(f"faces[{i}]: index {c - 1} out of range for {vmax} vertices")
            return counts

        v_items, counts, dtype = ragged_items(
            v_items, v_padded, "verts", ("V", 3), num_verts, "num_verts", counts_from_faces, device
        )

        per_vertex = (counts, "verts", "mesh", "vertices", dtype, device)
        normals = parse_item_attr(verts_normals, "verts_normals", ("V", 3), *per_vertex)
        colors = parse_item_attr(verts_colors, "verts_colors", ("V", (3, 4)), *per_vertex)

        if validate:
            check_finite_list(v_items, "verts")
            check_index_list(f_items, "faces", counts)
            if normals is not None:
                check_finite_list(normals, "verts_normals")
            if colors is not None:
                check_range_list(colors, "verts_colors", 0.0, 1.0)
        self._setup(v_items, f_items, normals, colors, bool(validate), device, dtype)

    # ------------------------------------------------------------------ setup

    def _setup(
        self,
        verts: list[torch.Tensor],
        faces: list[torch.Tensor],
        normals: list[torch.Tensor] | None,
        colors: list[torch.Tensor] | None,
        validated: bool,
        device: torch.device,
        dtype: torch.dtype,
        topo: ViewCache | None = None,
    ) -> None:
        self._verts_list = list(verts)
        self._faces_list = list(faces)
        self._normals_list = None if normals is None else list(normals)
        self._colors_list = None if colors is None else list(colors)
        self._N = len(self._verts_list)
        self._num_verts = [int(v.shape[0]) for v in self._verts_list]
        self._num_faces = [int(f.shape[0]) for f in self._faces_list]
        self._device = device
        self._dtype = dtype
        self._validated = validated
        self._faces_stamp = tensor_versions(self._faces_list)
        self._geo = ViewCache()
        self._topo = topo.copy() if topo is not None else ViewCache()

    def _lists(self) -> tuple[list[torch.Tensor] | None, ...]:
        self._ts()  # never hand on faces that were corrupted in place
        return self._verts_list, self._faces_list, self._normals_list, self._colors_list

    def _derive(self, verts: list[torch.Tensor], normals: list[torch.Tensor] | None) -> "Meshes":
        """Same topology (faces shared, topology cache reused), new vertices."""
        self._ts()  # never hand on faces that were corrupted in place
        return Meshes._build(
            verts, self._faces_list, normals, self._colors_list, self._validated,
            self._device, self._dtype, self._topo,
        )

    def _gs(self) -> Any:
        return tensor_versions((self._verts_list, self._normals_list, self._colors_list))

    def _ts(self) -> Any:
        stamp = tensor_versions(self._faces_list)
        if stamp != self._faces_stamp:
            if self._validated:
                check_index_list(self._faces_list, "faces", self._num_verts)
            self._faces_stamp = stamp
        return stamp

    def _get(self, key: str, compute: Any, topo: bool = False) -> Any:
        stamp = (self._gs(), self._ts()) if topo else self._gs()
        return self._geo.get(key, stamp, compute)

    def _topo_get(self, key: str, compute: Any) -> Any:
        return self._topo.get(key, self._ts(), compute)

    # ------------------------------------------------------------ basic info

    def __repr__(self) -> str:
        return (
            f"Meshes(N={self._N}, num_verts={format_counts(self._num_verts)}, "
            f"num_faces={format_counts(self._num_faces)}, device={self._device}, dtype={self._dtype}"
            f"{', verts_normals' if self._normals_list is not None else ''}"
            f"{', verts_colors' if self._colors_list is not None else ''})"
        )

    @property
    def valid(self) -> torch.Tensor:
        """``(N,)`` bool: mesh has at least one face."""
        return self.num_faces_per_mesh() > 0

    def isempty(self) -> bool:
        """True when the batch holds no faces at all (also for ``N = 0``)."""
        return sum(self._num_faces) == 0

    # ------------------------------------------------------------ list views

    def verts_list(self) -> list[torch.Tensor]:
        """``N`` tensors ``(V_i, 3)`` (the stored tensors, not copies)."""
        return list(self._verts_list)

    def faces_list(self) -> list[torch.Tensor]:
        """``N`` int64 tensors ``(F_i, 3)`` of local vertex indices."""
        self._ts()
        return list(self._faces_list)

    def has_verts_normals(self) -> bool:
        """Whether vertex normals were given (by the caller or a file) rather than
        computed from the faces by :meth:`verts_normals_list`."""
        return self._normals_list is not None

    def verts_colors_list(self) -> list[torch.Tensor] | None:
        """``N`` tensors ``(V_i, C)``, or None when no colours were given."""
        return None if self._colors_list is None else list(self._colors_list)

    # --------------------------------------------------------- padded/packed

    def verts_packed(self) -> torch.Tensor:
        """``(sum(V), 3)`` all vertices concatenated."""
        return self._packed("verts_packed", self._verts_list, 3)

    def verts_padded(self) -> torch.Tensor:
        """``(N, max(V), 3)`` zero-padded vertices."""
        return self._padded("verts_padded", self._verts_list, 3)

    def faces_packed(self) -> torch.Tensor:
        """``(sum(F), 3)`` int64 faces indexing into :meth:`verts_packed`."""

        def compute() -> torch.Tensor:
            local = list_to_packed(self._faces_list, (3,), torch.int64, self._device)
            offs = torch.repeat_interleave(self.mesh_to_verts_packed_first_idx(), self.num_faces_per_mesh())
            return local + offs[:, None]

        return self._topo_get("faces_packed", compute)

    def faces_padded(self) -> torch.Tensor:
        """``(N, max(F), 3)`` int64 local faces, padding rows are ``-1``."""
        return self._topo_get(
            "faces_padded", lambda: list_to_padded(self._faces_list, -1, (3,), torch.int64, self._device)
        )

    def verts_colors_packed(self) -> torch.Tensor | None:
        """``(sum(V), C)`` colours, or None."""
        return self._packed("colors_packed", self._colors_list, self._num_colors())

    def verts_colors_padded(self) -> torch.Tensor | None:
        """``(N, max(V), C)`` zero-padded colours, or None."""
        return self._padded("colors_padded", self._colors_list, self._num_colors())

    def _num_colors(self) -> int:
        return self._colors_list[0].shape[1] if self._colors_list else 3

    # ------------------------------------------------------------ index maps

    def num_verts_per_mesh(self) -> torch.Tensor:
        """``(N,)`` int64 vertex counts."""
        return self._row_index("num", "verts", self._num_verts, self._topo_get)

    def num_faces_per_mesh(self) -> torch.Tensor:
        """``(N,)`` int64 face counts."""
        return self._row_index("num", "faces", self._num_faces, self._topo_get)

    def mesh_to_verts_packed_first_idx(self) -> torch.Tensor:
        """``(N,)`` index of each mesh's first vertex in :meth:`verts_packed`."""
        return self._row_index("first", "verts", self._num_verts, self._topo_get)

    def mesh_to_faces_packed_first_idx(self) -> torch.Tensor:
        """``(N,)`` index of each mesh's first face in :meth:`faces_packed`."""
        return self._row_index("first", "faces", self._num_faces, self._topo_get)

    def verts_packed_to_mesh_idx(self) -> torch.Tensor:
        """``(sum(V),)`` mesh index of each packed vertex."""
        return self._row_index("item", "verts", self._num_verts, self._topo_get)

    def faces_packed_to_mesh_idx(self) -> torch.Tensor:
        """``(sum(F),)`` mesh index of each packed face."""
        return self._row_index("item", "faces", self._num_faces, self._topo_get)

    def verts_padded_to_packed_idx(self) -> torch.Tensor:
        """``(sum(V),)`` index such that
        ``verts_padded().reshape(-1, 3)[idx] == verts_packed()``."""
        return self._row_index("pad2pack", "verts", self._num_verts, self._topo_get)

    def faces_padded_to_packed_idx(self) -> torch.Tensor:
        """``(sum(F),)`` index such that ``faces_padded().reshape(-1, 3)[idx]``
        are the (local) faces in packed order."""
        return self._row_index("pad2pack", "faces", self._num_faces, self._topo_get)

    # ------------------------------------------------------------------ edges

    def _edges(self) -> tuple[torch.Tensor, torch.Tensor]:
        def compute() -> tuple[torch.Tensor, torch.Tensor]:
            f = self.faces_packed()
            # edge k of a face joins vertices (k+1, k+2) mod 3: the one opposite vertex k
            a, b = f[:, [1, 2, 0]].reshape(-1), f[:, [2, 0, 1]].reshape(-1)
            vtot = max(sum(self._num_verts), 1)
            key = torch.minimum(a, b) * vtot + torch.maximum(a, b)  # unique int64 per undirected edge
            uniq, inverse = torch.unique(key, sorted=True, return_inverse=True)
            edges = torch.stack([uniq // vtot, uniq % vtot], dim=1)
            return edges, inverse.reshape(-1, 3)

        return self._topo_get("edges", compute)

    def edges_packed(self) -> torch.Tensor:
        """``(sum(E), 2)`` int64 unique undirected edges in packed vertex
        indices, each row ``(a, b)`` with ``a < b``, rows sorted
        lexicographically (hence grouped by mesh)."""
        return self._edges()[0]

    def faces_packed_to_edges_packed(self) -> torch.Tensor:
        """``(sum(F), 3)`` index into :meth:`edges_packed` of each face's
        edges; column ``k`` is the edge opposite the face's vertex ``k``."""
        return self._edges()[1]

    def edges_packed_to_mesh_idx(self) -> torch.Tensor:
        """``(sum(E),)`` mesh index of each packed edge."""
        return self._topo_get("e2m", lambda: self.verts_packed_to_mesh_idx()[self.edges_packed()[:, 0]])

    def num_edges_per_mesh(self) -> torch.Tensor:
        """``(N,)`` int64 number of unique edges per mesh."""
        return self._topo_get(
            "num_edges", lambda: torch.bincount(self.edges_packed_to_mesh_idx(), minlength=self._N)
        )

    def mesh_to_edges_packed_first_idx(self) -> torch.Tensor:
        """``(N,)`` index of each mesh's first edge in :meth:`edges_packed`."""
        return self._topo_get("e_first", lambda: first_idx_from_counts(self.num_edges_per_mesh()))

    # -------------------------------------------------------------- geometry

    def _face_cross(self) -> torch.Tensor:
        """``(sum(F), 3)`` un-normalised ``(v1 - v0) x (v2 - v0)``."""

        def compute() -> torch.Tensor:
            v = self.verts_packed()
            f = self.faces_packed()
            v0, v1, v2 = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
            return torch.linalg.cross(v1 - v0, v2 - v0, dim=1)

        return self._get("face_cross", compute, topo=True)

    def faces_areas_packed(self) -> torch.Tensor:
        """``(sum(F),)`` triangle areas."""
        return self._get(
            "face_areas", lambda: 0.5 * torch.linalg.vector_norm(self._face_cross(), dim=1), topo=True
        )

    def faces_normals_packed(self) -> torch.Tensor:
        """``(sum(F), 3)`` unit face normals following the right-hand rule
        (counter-clockwise faces seen from outside point out); zero for
        degenerate faces, never NaN."""
        return self._get("face_normals", lambda: safe_normalize(self._face_cross()), topo=True)

    def faces_normals_list(self) -> list[torch.Tensor]:
        """``N`` tensors ``(F_i, 3)`` of unit face normals."""
        return list(torch.split(self.faces_normals_packed(), self._num_faces))

    def faces_normals_padded(self) -> torch.Tensor:
        """``(N, max(F), 3)`` zero-padded unit face normals."""
        return self._get(
            "face_normals_padded",
            lambda: list_to_padded(self.faces_normals_list(), 0.0, (3,), self._dtype, self._device),
            topo=True,
        )

    def verts_normals_packed(self) -> torch.Tensor:
        """``(sum(V), 3)`` vertex normals: the given ones, else the normalised
        area-weighted sum of adjacent face normals (zero for vertices in no
        face)."""
        if self._normals_list is not None:
            return self._packed("verts_normals", self._normals_list, 3)

        def compute() -> torch.Tensor:
            cross = self._face_cross()  # |cross| = 2 * area: area weighting for free
            f = self.faces_packed()
            acc = torch.zeros((sum(self._num_verts), 3), dtype=cross.dtype, device=self._device)
            for k in range(3):
                acc = acc.index_add(0, f[:, k], cross)
            return safe_normalize(acc)

        return self._get("verts_normals", compute, topo=True)

    def verts_normals_list(self) -> list[torch.Tensor]:
        """``N`` tensors ``(V_i, 3)`` of vertex normals."""
        if self._normals_list is not None:
            return list(self._normals_list)
        return list(torch.split(self.verts_normals_packed(), self._num_verts))

    def verts_normals_padded(self) -> torch.Tensor:
        """``(N, max(V), 3)`` zero-padded vertex normals."""
        return self._get(
            "verts_normals_padded",
            lambda: list_to_padded(self.verts_normals_list(), 0.0, (3,), self._dtype, self._device),
            topo=True,
        )

    def get_bounding_boxes(self) -> torch.Tensor:
        """``(N, 3, 2)`` per-mesh axis-aligned box, ``[..., 0]`` = min and
        ``[..., 1]`` = max over xyz; zeros for a mesh without vertices."""
        return self._get(
            "bbox",
            lambda: segment_bounding_boxes(self.verts_packed(), self.verts_packed_to_mesh_idx(), self._N),
        )

    def surface_area(self) -> torch.Tensor:
        """``(N,)`` total triangle area per mesh."""
        return segment_sum(self.faces_areas_packed(), self.faces_packed_to_mesh_idx(), self._N)

    def volume(self) -> torch.Tensor:
        """``(N,)`` signed enclosed volume by the divergence theorem,
        ``sum(v0 . (v1 x v2)) / 6`` over faces.  Positive for a closed mesh
        whose faces are counter-clockwise seen from outside (outward normals);
        only meaningful for closed (watertight) meshes."""
        v = self.verts_packed()
        f = self.faces_packed()
        v0, v1, v2 = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
        per_face = (v0 * torch.linalg.cross(v1, v2, dim=1)).sum(dim=1) / 6.0
        return segment_sum(per_face, self.faces_packed_to_mesh_idx(), self._N)

    # -------------------------------------------------------------- updates

    def offset_verts(self, vert_offsets_packed: torch.Tensor) -> "Meshes":
        """New ``Meshes`` with vertices moved by ``vert_offsets_packed``:
        ``(sum(V), 3)`` per vertex, or ``(3,)`` for every vertex.  Faces are
        shared.  Given vertex normals are kept for a uniform ``(3,)``
        translation and dropped (recomputed from faces) otherwise."""
        verts, uniform = self._offset_items(
            vert_offsets_packed, "vert_offsets_packed", "V", self.verts_packed, self._num_verts
        )
        return self._derive(verts, self._normals_list if uniform else None)

    def offset_verts_(self, vert_offsets_packed: torch.Tensor) -> "Meshes":
        """In-place :meth:`offset_verts` (replaces the stored vertex tensors;
        the caller's tensors are not written to).  Returns ``self``."""
        other = self.offset_verts(vert_offsets_packed)
        self._verts_list, self._normals_list = other._verts_list, other._normals_list
        self._geo.clear()
        return self

    def scale_verts(self, scale: float | torch.Tensor) -> "Meshes":
        """New ``Meshes`` with vertices multiplied by ``scale``: a scalar or
        ``(N,)`` per mesh (about the origin).  Given normals are kept, flipped
        where the scale is negative."""
        return self._derive(*self._scale_items(scale, self._verts_list, self._normals_list))

    def scale_verts_(self, scale: float | torch.Tensor) -> "Meshes":
        """In-place :meth:`scale_verts`.  Returns ``self``."""
        other = self.scale_verts(scale)
        self._verts_list, self._normals_list = other._verts_list, other._normals_list
        self._geo.clear()
        return self

    def update_padded(self, new_verts_padded: torch.Tensor) -> "Meshes":
        """New ``Meshes`` with the same faces (shared) and vertices taken from
        ``new_verts_padded`` ``(N, max(V), 3)``; autograd links to it are
        kept.  Given vertex normals are dropped (recomputed from faces)."""
        return self._derive(self._unpad(new_verts_padded, "new_verts_padded", self._num_verts, 3), None)


def join_meshes_as_batch(meshes: Sequence[Meshes]) -> Meshes:
    """Concatenate several ``Meshes`` batches into one (tensors shared, not
    copied).  All must be on one device and share the vertex dtype.  Vertex
    colours must be present in all or none, with the same number of channels;
    if some batches carry explicit vertex normals, the others contribute their
    computed normals."""
    if isinstance(meshes, Meshes) or not isinstance(meshes, (list, tuple)):
        raise InvalidInputError(f"meshes: expected a list of Meshes, got {type(meshes).__name__}")
    check_join_items(meshes, "meshes", Meshes)
    if not meshes:
        return Meshes([], [])
    dev, dtype = meshes[0].device, meshes[0].dtype
    for i, m in enumerate(meshes):
        if m.device != dev:
            raise InvalidInputError(f"meshes[{i}]: on device {m.device} but meshes[0] is on {dev}")
        if m.dtype != dtype:
            raise InvalidInputError(f"meshes[{i}]: dtype {m.dtype} differs from meshes[0] ({dtype})")
    has_colors = [m._colors_list is not None for m in meshes]
    if any(has_colors) and not all(has_colors):
        i = has_colors.index(not has_colors[0])
        what = "has verts_colors" if has_colors[i] else "has no verts_colors"
        raise InvalidInputError(f"meshes[{i}]: {what} but meshes[0] does{'' if has_colors[0] else ' not'}")
    verts, faces, normals, colors = [], [], [], []
    any_normals = any(m._normals_list is not None for m in meshes)
    for m in meshes:
        verts += m._verts_list
        faces += m.faces_list()
        if any_normals:
            normals += m.verts_normals_list()
        if all(has_colors):
            colors += m._colors_list
    if all(has_colors):
        chans = {c.shape[1] for c in colors}
        if len(chans) > 1:
            raise InvalidInputError(f"meshes: verts_colors channel counts differ across batches: {sorted(chans)}")
    return Meshes._build(
        verts, faces, normals if any_normals else None, colors if all(has_colors) else None,
        all(m.validated for m in meshes), dev, dtype,
    )
