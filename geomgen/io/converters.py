"""Convert geomgen structures to and from trimesh, Open3D and PyTorch3D objects.

Shape letters: ``N`` items in a batch, ``V`` vertices, ``F`` triangles, ``P``
points, ``C`` colour/feature channels.

Conventions:

* Vertex order and face indices are kept as they are (nothing is merged).
* Vertex normals are passed on only when they are stored (given to the
  structure or read from a file), never computed for the conversion.
* Colours are floats in ``[0, 1]`` on the geomgen side (``C`` = 3 or 4).
  trimesh holds ``uint8`` RGBA (8-bit quantisation); Open3D holds RGB floats
  (alpha is dropped).
* Point cloud features map to colours where the other library only has
  colours (trimesh, Open3D): features with 3 or 4 channels in ``[0, 1]`` are
  converted, others are dropped with a ``UserWarning``.
* Open3D and PyTorch3D are optional: they are imported when a function needs
  them, and :class:`~geomgen.errors.BackendUnavailableError` says how to
  install them when they are missing.  trimesh is a dependency of geomgen.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from geomgen.backend import require_pytorch3d
from geomgen.errors import FileFormatError, InvalidInputError
from geomgen.io import _common as C
from geomgen.io import meshes as _meshes
from geomgen.io import pointclouds as _points
from geomgen.structures import Meshes, PointClouds

if TYPE_CHECKING:  # optional backends, for annotations only
    import open3d
    import trimesh

#: A geomgen batch that the converters accept.
Structure = Meshes | PointClouds

__all__ = [
    "to_trimesh",
    "from_trimesh",
    "to_open3d",
    "from_open3d",
    "to_pytorch3d",
    "from_pytorch3d",
]


def _kind(obj: Any) -> str:
    """'meshes' / 'pointclouds' for geomgen structures, else ''."""
    if isinstance(obj, Meshes):
        return "meshes"
    if isinstance(obj, PointClouds):
        return "pointclouds"
    return ""


def _type_error(fn: str, name: str, want: str, obj: Any) -> InvalidInputError:
    return InvalidInputError(f"{fn}: argument '{name}' must be {want}, got {type(obj).__name__}")


def _rewrap(fn: str, e: InvalidInputError) -> InvalidInputError:
    return InvalidInputError(f"{fn}: the converted data is invalid: {e}")


def _features_as_colors(features: np.ndarray | None, fn: str, target: str) -> np.ndarray | None:
    """``(P, 3|4)`` colours in ``[0, 1]`` from features, or None (with a warning if dropped)."""
    if features is None:
        return None
    if not C.features_fit_colors(features):
        warnings.warn(
            f"{fn}: {target} point clouds hold colours only; features of shape "
            f"{tuple(features.shape)} (not 3 or 4 channels in [0, 1]) are not converted",
            UserWarning,
            stacklevel=3,
        )
        return None
    return features


# ---------------------------------------------------------------------------
# trimesh
# ---------------------------------------------------------------------------


def to_trimesh(meshes: Structure, index: int = 0) -> trimesh.Trimesh | trimesh.PointCloud:
    """Convert one item of a batch to trimesh.

    Args:
        meshes: :class:`~geomgen.structures.Meshes` (gives a
            ``trimesh.Trimesh`` with vertices ``(V, 3)``, faces ``(F, 3)``,
            stored vertex normals and colours as ``uint8`` RGBA), or
            :class:`~geomgen.structures.PointClouds` (gives a
            ``trimesh.PointCloud``; trimesh point clouds have no normals, and
            features become colours, see the module docstring).
        index: which item of the batch (negative counts from the end).

    Returns:
        An unprocessed trimesh object (vertex order as in ``meshes``).

    Raises:
        InvalidInputError: wrong type or ``index`` out of range.
    """
    fn = "to_trimesh"
    kind = _kind(meshes)
    if kind == "meshes":
        return _meshes.arrays_to_trimesh(_meshes.mesh_to_arrays(meshes, index, fn))
    if kind == "pointclouds":
        trimesh = C.import_trimesh()
        arrays = _points.pointcloud_to_arrays(meshes, index, fn)
        colors = _features_as_colors(arrays.features, fn, "trimesh")
        return trimesh.PointCloud(
            np.asarray(arrays.points, dtype=np.float64),
            colors=None if colors is None else C.colors_to_uint8(colors),
        )
    raise _type_error(fn, "meshes", "a Meshes or PointClouds", meshes)


def from_trimesh(
    obj: Any,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> Structure:
    """Convert trimesh objects to geomgen structures.

    Args:
        obj: a ``trimesh.Trimesh`` (a batch of one), a sequence of them (a
            batch of ``N``), a ``trimesh.Scene`` (every mesh instance placed by
            its transform and concatenated into one mesh), or a
            ``trimesh.PointCloud`` (gives ``PointClouds``, colours as features).
        device: device of the returned tensors.
        dtype: floating dtype of vertices/points, normals and colours.

    Returns:
        :class:`~geomgen.structures.Meshes` (vertex normals only if the trimesh
        object holds given normals in its cache, colours only for vertex
        colours) or :class:`~geomgen.structures.PointClouds`.

    Raises:
        InvalidInputError: wrong type, or invalid data (NaN/Inf vertices, face
            indices out of range), naming the problem.
    """
    fn = "from_trimesh"
    trimesh = C.import_trimesh()
    try:
        if isinstance(obj, trimesh.PointCloud):
            pts = _meshes.geometry_parts(obj)
            arrays = _points.PointArrays(pts.verts, None, pts.colors)
            return _points.arrays_to_pointclouds([arrays], "trimesh.PointCloud", fn, device, dtype)
        if isinstance(obj, trimesh.Scene):
            parts, _ = _meshes.scene_parts(obj)
            if not parts:
                raise InvalidInputError(f"{fn}: the trimesh.Scene holds no mesh with faces")
            items = [_meshes.concat_parts(parts)]
        elif isinstance(obj, trimesh.Trimesh):
            items = [_meshes.geometry_parts(obj)]
        elif (
            isinstance(obj, Sequence)
            and not isinstance(obj, (str, bytes))
            and all(isinstance(t, trimesh.Trimesh) for t in obj)
        ):
            items = [_meshes.geometry_parts(t) for t in obj]
        else:
            raise _type_error(
                fn,
                "obj",
                "a trimesh.Trimesh, a sequence of them, a trimesh.Scene or a trimesh.PointCloud",
                obj,
            )
        return _meshes.arrays_to_meshes(items, None, fn, device, dtype)
    except FileFormatError as e:  # build_structure names a "file"; here it is an object
        raise InvalidInputError(f"{fn}: invalid trimesh data: {e.__cause__ or e}") from e


# ---------------------------------------------------------------------------
# Open3D
# ---------------------------------------------------------------------------


def to_open3d(
    obj: Structure, index: int = 0
) -> open3d.geometry.TriangleMesh | open3d.geometry.PointCloud:
    """Convert one item of a batch to an Open3D legacy geometry.

    Args:
        obj: :class:`~geomgen.structures.Meshes` (gives
            ``open3d.geometry.TriangleMesh`` with vertices, triangles, stored
            vertex normals, RGB vertex colours) or
            :class:`~geomgen.structures.PointClouds` (gives
            ``open3d.geometry.PointCloud`` with points, normals, and features
            as RGB colours, see the module docstring).
        index: which item of the batch (negative counts from the end).

    Returns:
        The Open3D geometry (float64 coordinates).

    Raises:
        BackendUnavailableError: Open3D is not installed.
        InvalidInputError: wrong type or ``index`` out of range.
    """
    fn = "to_open3d"
    kind = _kind(obj)
    if not kind:
        raise _type_error(fn, "obj", "a Meshes or PointClouds", obj)
    o3d = C.import_open3d(fn)
    vec3 = o3d.utility.Vector3dVector
    if kind == "meshes":
        m = _meshes.mesh_to_arrays(obj, index, fn)
        out = o3d.geometry.TriangleMesh()
        out.vertices = vec3(np.ascontiguousarray(m.verts, dtype=np.float64))
        out.triangles = o3d.utility.Vector3iVector(np.ascontiguousarray(m.faces, dtype=np.int32))
        if m.normals is not None:
            out.vertex_normals = vec3(np.ascontiguousarray(m.normals, dtype=np.float64))
        if m.colors is not None:
            out.vertex_colors = vec3(np.ascontiguousarray(m.colors[:, :3], dtype=np.float64))
        return out
    p = _points.pointcloud_to_arrays(obj, index, fn)
    out = o3d.geometry.PointCloud()
    out.points = vec3(np.ascontiguousarray(p.points, dtype=np.float64))
    if p.normals is not None:
        out.normals = vec3(np.ascontiguousarray(p.normals, dtype=np.float64))
    colors = _features_as_colors(
        None if p.features is None else np.asarray(p.features, np.float64), fn, "Open3D"
    )
    if colors is not None:
        out.colors = vec3(np.ascontiguousarray(colors[:, :3], dtype=np.float64))
    return out


def from_open3d(
    obj: Any,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> Structure:
    """Convert an Open3D legacy geometry to a geomgen structure (a batch of one).

    Args:
        obj: ``open3d.geometry.TriangleMesh`` (gives ``Meshes``; normals and
            colours if the mesh has them) or ``open3d.geometry.PointCloud``
            (gives ``PointClouds``; colours become ``(P, 3)`` features).
        device: device of the returned tensors.
        dtype: floating dtype of the returned tensors.

    Raises:
        BackendUnavailableError: Open3D is not installed.
        InvalidInputError: another type, or invalid data.
    """
    fn = "from_open3d"
    o3d = C.import_open3d(fn)
    try:
        if isinstance(obj, o3d.geometry.TriangleMesh):
            verts = np.asarray(obj.vertices, dtype=np.float64).reshape(-1, 3)
            faces = np.asarray(obj.triangles, dtype=np.int64).reshape(-1, 3)
            normals = (
                np.asarray(obj.vertex_normals, dtype=np.float64)
                if obj.has_vertex_normals()
                else None
            )
            colors = (
                np.asarray(obj.vertex_colors, dtype=np.float64) if obj.has_vertex_colors() else None
            )
            arrays = _meshes.MeshArrays(verts, faces, normals, colors)
            return _meshes.arrays_to_meshes([arrays], None, fn, device, dtype)
        if isinstance(obj, o3d.geometry.PointCloud):
            points = np.asarray(obj.points, dtype=np.float64).reshape(-1, 3)
            normals = np.asarray(obj.normals, dtype=np.float64) if obj.has_normals() else None
            colors = np.asarray(obj.colors, dtype=np.float64) if obj.has_colors() else None
            arrays = _points.PointArrays(points, normals, colors)
            return _points.arrays_to_pointclouds(
                [arrays], "open3d.geometry.PointCloud", fn, device, dtype
            )
    except FileFormatError as e:
        raise InvalidInputError(f"{fn}: invalid Open3D data: {e.__cause__ or e}") from e
    raise _type_error(
        fn, "obj", "an open3d.geometry.TriangleMesh or open3d.geometry.PointCloud", obj
    )


# ---------------------------------------------------------------------------
# PyTorch3D
# ---------------------------------------------------------------------------


def _texture_vertex_class(fn: str) -> Any:
    return require_pytorch3d(fn, "pytorch3d.renderer.mesh.textures").TexturesVertex


def to_pytorch3d(obj: Structure) -> Any:
    """Convert a whole batch to PyTorch3D (tensors are shared, not copied).

    Args:
        obj: :class:`~geomgen.structures.Meshes` (gives
            ``pytorch3d.structures.Meshes``; stored vertex normals are passed
            as ``verts_normals``, vertex colours as a ``TexturesVertex``) or
            :class:`~geomgen.structures.PointClouds` (gives
            ``pytorch3d.structures.Pointclouds`` with normals and features).

    Raises:
        BackendUnavailableError: PyTorch3D is not installed.
        InvalidInputError: another type.
    """
    fn = "to_pytorch3d"
    kind = _kind(obj)
    if not kind:
        raise _type_error(fn, "obj", "a Meshes or PointClouds", obj)
    structures = require_pytorch3d(fn, "pytorch3d.structures")
    if kind == "pointclouds":
        return structures.Pointclouds(
            points=obj.points_list(), normals=obj.normals_list(), features=obj.features_list()
        )
    colors = obj.verts_colors_list()
    textures = None
    if colors is not None:
        textures = _texture_vertex_class(fn)(verts_features=colors)
    normals = [_meshes._given_normals(obj, i) for i in range(len(obj))]
    verts, faces = obj.verts_list(), obj.faces_list()
    if len(obj) > 0 and all(n is not None for n in normals):
        try:
            return structures.Meshes(
                verts=verts, faces=faces, textures=textures, verts_normals=normals
            )
        except TypeError:  # PyTorch3D < 0.7 has no verts_normals argument
            pass
    return structures.Meshes(verts=verts, faces=faces, textures=textures)


def from_pytorch3d(
    obj: Any,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> Structure:
    """Convert a PyTorch3D ``Meshes`` / ``Pointclouds`` batch to geomgen.

    ``Meshes`` give :class:`~geomgen.structures.Meshes` with vertex colours
    when the textures are a ``TexturesVertex`` with 3 or 4 channels in
    ``[0, 1]`` (other textures are dropped, with a warning for other
    ``TexturesVertex`` features).  Vertex normals are not taken (PyTorch3D does not
    record whether they were given or computed; geomgen computes them from
    the faces on demand).  ``Pointclouds`` give
    :class:`~geomgen.structures.PointClouds` with normals and features.

    Args:
        obj: the PyTorch3D structure.
        device: device of the result; default: that of ``obj``.
        dtype: floating dtype of the result; default: that of ``obj``.

    Raises:
        BackendUnavailableError: PyTorch3D is not installed.
        InvalidInputError: another type, or invalid data.
    """
    fn = "from_pytorch3d"
    structures = require_pytorch3d(fn, "pytorch3d.structures")

    def move(items: list[torch.Tensor] | None) -> list[torch.Tensor] | None:
        if items is None:
            return None
        return [t.to(device=device, dtype=dtype) for t in items]

    try:
        if isinstance(obj, structures.Pointclouds):
            return PointClouds(
                move(obj.points_list()),
                normals=move(obj.normals_list()),
                features=move(obj.features_list()),
            )
        if isinstance(obj, structures.Meshes):
            colors = None
            tex = getattr(obj, "textures", None)
            if tex is not None and type(tex).__name__ == "TexturesVertex":
                feats = tex.verts_features_list()
                shaped = all(f.ndim == 2 and f.shape[1] in (3, 4) for f in feats)
                if (
                    feats
                    and shaped
                    and all(f.numel() == 0 or (f.min() >= 0 and f.max() <= 1) for f in feats)
                ):
                    colors = move(feats)
                elif feats:
                    warnings.warn(
                        f"{fn}: TexturesVertex features are not 3 or 4 channels in [0, 1]; "
                        "they are not converted to vertex colours",
                        UserWarning,
                        stacklevel=2,
                    )
            faces = [f.to(device=device) for f in obj.faces_list()]
            return Meshes(move(obj.verts_list()), faces, verts_colors=colors)
    except InvalidInputError as e:
        raise _rewrap(fn, e) from e
    raise _type_error(fn, "obj", "a pytorch3d.structures.Meshes or Pointclouds", obj)
