"""Read and write triangle meshes: OBJ, PLY, OFF, STL, GLB and GLTF, through trimesh.

Shape letters: ``N`` meshes in a batch, ``V`` vertices, ``F`` triangles,
``C`` colour channels (3 = RGB, 4 = RGBA).

What is kept from a file:

* **Vertices and faces**, without merging or reordering vertices (unless
  ``process=True``), so face indices match the file: vertex ``i`` of the
  result is the file's vertex ``i``.  Polygons (quads, n-gons) are split into
  triangles by trimesh (a fan from the first corner).  STL has no shared
  vertices: a file with ``F`` triangles gives ``3F`` vertices.  trimesh may drop
  OBJ vertices after the last one any face uses.
* **Vertex normals** only when the file stores them (PLY ``nx ny nz``, OBJ
  ``vn`` referenced by faces, glTF ``NORMAL``); they are never computed on
  load.  OBJ normals are kept only when trimesh can map them one per vertex
  (files whose faces give one vertex different normals lose them).  OFF and
  STL never carry vertex normals.
* **Vertex colours** where trimesh reads them (PLY, OBJ ``v x y z r g b``,
  glTF ``COLOR_0``) as floats in ``[0, 1]``; RGBA only when some alpha is
  below 1.  trimesh does not read colours of COFF files, face colours or
  textures; those are dropped.

Multi-part files (glTF scenes, OBJ files with several groups) become one mesh:
every part is placed with its scene transform (normals follow the inverse
transpose; faces are flipped under mirroring transforms) and concatenated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geomgen.errors import InvalidInputError
from geomgen.io import _common as C
from geomgen.structures import Meshes

__all__ = ["load_mesh", "load_meshes", "save_mesh"]

#: What ``save_mesh`` accepts: a batch, or one ``(verts (V, 3), faces (F, 3))`` pair.
MeshesLike = Meshes | tuple[Any, Any]

_POINT_HINT = "use geomgen.io.load_pointcloud for point sets"


@dataclass
class MeshArrays:
    """One mesh as NumPy arrays (internal).

    Attributes:
        verts: ``(V, 3)`` float64.
        faces: ``(F, 3)`` int64, indices into ``verts``.
        normals: ``(V, 3)`` float64 or None.
        colors: ``(V, 3|4)`` float64 in ``[0, 1]`` or None.
    """

    verts: np.ndarray
    faces: np.ndarray
    normals: np.ndarray | None = None
    colors: np.ndarray | None = None


# ---------------------------------------------------------------------------
# trimesh scene -> arrays
# ---------------------------------------------------------------------------


def geometry_parts(geom: Any) -> MeshArrays:
    """Arrays of one ``trimesh.Trimesh`` (or ``PointCloud``: no faces).

    Normals are taken only when trimesh holds them in its cache, i.e. when
    they were given (read from a file or passed to the constructor), never
    computed here.
    """
    verts = np.asarray(geom.vertices, dtype=np.float64)
    faces = np.asarray(getattr(geom, "faces", np.zeros((0, 3))), dtype=np.int64).reshape(-1, 3)
    normals = None
    cache = getattr(geom, "_cache", None)
    if cache is not None and hasattr(geom, "faces") and "vertex_normals" in cache:
        n = np.asarray(geom.vertex_normals, dtype=np.float64)
        if n.shape == verts.shape:
            normals = n
    colors = None
    visual = getattr(geom, "visual", None)
    if visual is not None and getattr(visual, "kind", None) == "vertex":
        rgba = np.asarray(visual.vertex_colors)
        if rgba.ndim == 2 and len(rgba) == len(verts) and rgba.shape[1] in (3, 4):
            colors = C.colors_from_uint8(rgba)
    return MeshArrays(verts, faces, normals, colors)


def _transform(part: MeshArrays, matrix: np.ndarray) -> MeshArrays:
    """Apply a ``(4, 4)`` homogeneous transform to a part (no-op for identity)."""
    if np.allclose(matrix, np.eye(4), rtol=0.0, atol=1e-12):
        return part
    lin, shift = matrix[:3, :3], matrix[:3, 3]
    verts = part.verts @ lin.T + shift
    normals = None
    if part.normals is not None:
        # normals transform with the inverse transpose: n' = n @ inv(lin);
        # a singular transform flattens the part and its normals are dropped
        try:
            n = part.normals @ np.linalg.inv(lin)
        except np.linalg.LinAlgError:
            n = None
        if n is not None:
            length = np.linalg.norm(n, axis=1, keepdims=True)
            normals = np.divide(n, length, out=np.zeros_like(n), where=length > 0)
    faces = part.faces[:, ::-1].copy() if np.linalg.det(lin) < 0 else part.faces
    return MeshArrays(verts, faces, normals, part.colors)


def _merge_prefix_parts(parts: list[MeshArrays]) -> MeshArrays | None:
    """Merge OBJ parts that all carry a prefix of the same vertex list.

    trimesh reads an OBJ file with several groups (``usemtl``/``o``) into one
    geometry per group; with ``maintain_order`` each geometry holds the file's
    vertices ``0 .. k`` (no reindexing), so the faces can simply be pooled
    over the longest vertex list.  Returns None when the parts do not have
    that layout.
    """
    base = max(parts, key=lambda p: len(p.verts))
    for p in parts:
        if not np.array_equal(p.verts, base.verts[: len(p.verts)]):
            return None
    faces = np.concatenate([p.faces for p in parts], axis=0)
    normals = None
    if base.normals is not None and all(p.normals is not None for p in parts):
        if all(np.allclose(p.normals, base.normals[: len(p.verts)]) for p in parts):
            normals = base.normals
    colors = None
    if base.colors is not None and all(p.colors is not None for p in parts):
        if all(
            np.allclose(p.colors, base.colors[: len(p.verts), : p.colors.shape[1]]) for p in parts
        ):
            colors = base.colors
    return MeshArrays(base.verts, faces, normals, colors)


def concat_parts(parts: list[MeshArrays]) -> MeshArrays:
    """Concatenate parts into one mesh (face indices offset).  Normals and colours
    are kept only if every part has them; colours are widened to RGBA when
    the parts disagree on the channel count."""
    if len(parts) == 1:
        return parts[0]
    offsets = np.cumsum([0] + [len(p.verts) for p in parts[:-1]])
    verts = np.concatenate([p.verts for p in parts], axis=0)
    faces = np.concatenate([p.faces + o for p, o in zip(parts, offsets, strict=True)], axis=0)
    normals = None
    if all(p.normals is not None for p in parts):
        normals = np.concatenate([p.normals for p in parts], axis=0)
    colors = None
    if all(p.colors is not None for p in parts):
        width = max(p.colors.shape[1] for p in parts)
        colors = np.concatenate([_widen(p.colors, width) for p in parts], axis=0)
    return MeshArrays(verts, faces, normals, colors)


def _widen(colors: np.ndarray, width: int) -> np.ndarray:
    if colors.shape[1] >= width:
        return colors
    return np.concatenate([colors, np.ones((len(colors), width - colors.shape[1]))], axis=1)


def scene_parts(scene: Any) -> tuple[list[MeshArrays], int]:
    """Every mesh instance of a ``trimesh.Scene``, placed by its transform.

    Returns:
        The parts that have faces, and the number of vertices in geometries
        without faces (point clouds, faceless meshes), for error messages.
    """
    parts: list[MeshArrays] = []
    loose = 0
    for node in scene.graph.nodes_geometry:
        matrix, name = scene.graph[node]
        geom = scene.geometry[name]
        if not C.is_trimesh(geom):
            loose += len(getattr(geom, "vertices", ()))
            continue
        part = geometry_parts(geom)
        if len(part.faces) == 0:
            loose += len(part.verts)
            continue
        parts.append(_transform(part, np.asarray(matrix, dtype=np.float64)))
    return parts, loose


def read_mesh_arrays(path: Path, fmt: str, fn: str, process: bool = False) -> MeshArrays:
    """Read one mesh file (already path/extension-checked) into checked arrays."""
    scene = C.read_scene(path, fmt, fn)
    with C.reading(path, fn, fmt):
        parts, loose = scene_parts(scene)
    if not parts:
        if loose:
            held = "1 vertex" if loose == 1 else f"{loose} vertices"
            raise C.file_error(path, fn, f"has no faces (it holds {held} only); {_POINT_HINT}")
        raise C.file_error(
            path, fn, f"contains no geometry (empty, truncated or not a valid {fmt.upper()} file)"
        )
    merged = _merge_prefix_parts(parts) if fmt == "obj" and len(parts) > 1 else None
    mesh = merged if merged is not None else concat_parts(parts)
    mesh.verts = C.check_vertices(mesh.verts, path, fn)
    mesh.faces = C.check_faces(mesh.faces, len(mesh.verts), path, fn)
    if mesh.normals is not None and not np.isfinite(mesh.normals).all():
        raise C.file_error(path, fn, "its vertex normals contain NaN/Inf values")
    if process:
        mesh = _process(mesh)
    return mesh


def _process(mesh: MeshArrays) -> MeshArrays:
    """trimesh's processing: merge duplicate vertices (keeping distinct normals/colours apart)."""
    out = geometry_parts(arrays_to_trimesh(mesh, process=True))
    if mesh.normals is None:
        out.normals = None
    if mesh.colors is None:
        out.colors = None
    elif out.colors is not None:
        out.colors = _widen(out.colors, mesh.colors.shape[1])[:, : mesh.colors.shape[1]]
    return out


def arrays_to_meshes(
    items: Sequence[MeshArrays],
    paths: Sequence[Path] | None,
    fn: str,
    device: torch.device | str,
    dtype: torch.dtype,
) -> Meshes:
    """Build a :class:`~geomgen.structures.Meshes` batch from arrays.

    Normals are kept only if every item has them; colours likewise (widened to
    RGBA when the items disagree on the channel count).
    """
    C.check_dtype(dtype, fn)
    verts = [C.as_float_tensor(m.verts, device, dtype) for m in items]
    faces = [torch.from_numpy(np.array(m.faces, dtype=np.int64)).to(device) for m in items]
    normals = None
    if items and all(m.normals is not None for m in items):
        normals = [C.as_float_tensor(m.normals, device, dtype) for m in items]
    colors = None
    if items and all(m.colors is not None for m in items):
        width = max(m.colors.shape[1] for m in items)
        colors = [C.as_float_tensor(_widen(m.colors, width), device, dtype) for m in items]
    where = ", ".join(str(p) for p in paths or [])
    return C.build_structure(
        where, fn, Meshes, verts, faces, verts_normals=normals, verts_colors=colors
    )


# ---------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------


def _checked_mesh_path(path: C.PathLike, fn: str) -> tuple[Path, str]:
    p = C.as_path(path, fn)
    fmt_hint = ""
    if p.suffix.lower().lstrip(".") in C.POINT_ONLY_FORMATS:
        fmt_hint = f"'.{p.suffix.lower().lstrip('.')}' holds points only; {_POINT_HINT}"
    C.check_readable_file(p, fn)
    fmt = C.file_format(p, C.MESH_FORMATS, fn, fmt_hint)
    return p, fmt


def load_mesh(
    path: C.PathLike,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    process: bool = False,
) -> Meshes:
    """Read a triangle mesh file into a :class:`~geomgen.structures.Meshes` batch of one.

    Formats (by extension, case-insensitive): ``.obj``, ``.ply``, ``.off``,
    ``.stl``, ``.glb``, ``.gltf``.  See the module docstring for what is kept
    (vertex order, normals, colours) and how polygons and scenes are handled.

    Args:
        path: the file.
        device: device of the returned tensors.
        dtype: floating dtype of vertices, normals and colours.
        process: let trimesh merge duplicate vertices and drop unreferenced
            ones (this renumbers vertices; vertices with different normals or
            colours stay apart).  Default False: vertices and face indices are
            as in the file.

    Returns:
        ``Meshes`` with ``N = 1``: verts ``(V, 3)``, faces ``(F, 3)`` int64,
        ``verts_normals`` ``(V, 3)`` if the file has them, ``verts_colors``
        ``(V, 3|4)`` in ``[0, 1]`` if the file has them.

    Raises:
        MeshFileNotFoundError: ``path`` does not exist or is a directory.
        FileFormatError: empty, truncated, corrupt or unsupported file; a file
            with vertices but no faces (use :func:`load_pointcloud`); NaN/Inf
            coordinates; face indices out of range.  The message names the file.
        InvalidInputError: bad ``path``/``dtype`` argument.
    """
    fn = "load_mesh"
    C.check_dtype(dtype, fn)
    p, fmt = _checked_mesh_path(path, fn)
    arrays = read_mesh_arrays(p, fmt, fn, process=bool(process))
    return arrays_to_meshes([arrays], [p], fn, device, dtype)


def load_meshes(
    paths: Sequence[C.PathLike],
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    process: bool = False,
) -> Meshes:
    """Read several mesh files into one :class:`~geomgen.structures.Meshes` batch.

    Each file is read as by :func:`load_mesh`; mesh ``i`` of the batch comes
    from ``paths[i]``.  Vertex normals (colours) are kept only if every file
    has them; colours become RGBA if some files have alpha and others not.

    Args:
        paths: a sequence of files (not a single path).
        device: as for :func:`load_mesh`.
        dtype: as for :func:`load_mesh`.
        process: as for :func:`load_mesh`.

    Returns:
        ``Meshes`` with ``N = len(paths)``.

    Raises:
        The errors of :func:`load_mesh`, for the first file that fails.
    """
    fn = "load_meshes"
    if isinstance(paths, (str, bytes)) or not isinstance(paths, Sequence):
        raise InvalidInputError(
            f"{fn}: argument 'paths' must be a sequence of paths, got {type(paths).__name__}"
        )
    C.check_dtype(dtype, fn)
    checked = [_checked_mesh_path(p, fn) for p in paths]
    items = [read_mesh_arrays(p, fmt, fn, process=bool(process)) for p, fmt in checked]
    return arrays_to_meshes(items, [p for p, _ in checked], fn, device, dtype)


def _given_normals(meshes: Meshes, index: int) -> torch.Tensor | None:
    """Normals stored in a Meshes (given by the user or read from a file), else None."""
    return meshes.verts_normals_list()[index] if meshes.has_verts_normals() else None


def mesh_to_arrays(
    meshes: MeshesLike, index: int, fn: str, normals: bool | None = None
) -> MeshArrays:
    """Arrays of mesh ``index`` of a ``Meshes`` or of a ``(verts, faces)`` pair.

    ``normals``: None keeps stored normals only, True always exports normals
    (computed from faces when none are stored), False drops them.
    """
    if isinstance(meshes, Meshes):
        i = C.check_index(index, len(meshes), fn, "meshes")
        verts = C.to_numpy(meshes.verts_list()[i], np.float64)
        faces = C.to_numpy(meshes.faces_list()[i], np.int64)
        if normals is False:
            n = None
        elif normals is True:
            n = meshes.verts_normals_list()[i]
        else:
            n = _given_normals(meshes, i)
        cols = meshes.verts_colors_list()
        colors = None if cols is None else C.to_numpy(cols[i], np.float64)
        return MeshArrays(verts, faces, None if n is None else C.to_numpy(n, np.float64), colors)
    if isinstance(meshes, (tuple, list)) and len(meshes) == 2:
        verts = C.to_numpy(meshes[0])
        faces = C.to_numpy(meshes[1])
        if verts.ndim != 2 or verts.shape[1] != 3 or verts.dtype.kind not in "fiu":
            raise InvalidInputError(
                f"{fn}: verts must be a (V, 3) float tensor, got shape {tuple(verts.shape)} "
                f"dtype {verts.dtype}"
            )
        if faces.size and (faces.ndim != 2 or faces.shape[1] != 3 or faces.dtype.kind not in "iu"):
            raise InvalidInputError(
                f"{fn}: faces must be a (F, 3) integer tensor, got shape {tuple(faces.shape)} "
                f"dtype {faces.dtype}"
            )
        built = Meshes(
            [torch.as_tensor(verts.astype(np.float64))],
            [torch.as_tensor(faces.reshape(-1, 3).astype(np.int64))],
        )
        return mesh_to_arrays(built, 0, fn, normals=normals)
    raise InvalidInputError(
        f"{fn}: argument 'meshes' must be a Meshes or a (verts, faces) pair, got {type(meshes).__name__}"
    )


def arrays_to_trimesh(mesh: MeshArrays, *, process: bool = False) -> Any:
    """A ``trimesh.Trimesh`` holding the arrays, normals and colours (unprocessed
    unless ``process``)."""
    trimesh = C.import_trimesh()
    return trimesh.Trimesh(
        vertices=mesh.verts,
        faces=mesh.faces,
        vertex_normals=mesh.normals,
        vertex_colors=None if mesh.colors is None else C.colors_to_uint8(mesh.colors),
        process=process,
    )


def _export_bytes(tm: Any, fmt: str, has_normals: bool, binary: bool) -> bytes | str:
    trimesh = C.import_trimesh()
    ex = trimesh.exchange
    if fmt == "ply":
        return ex.ply.export_ply(
            tm, encoding="binary" if binary else "ascii", vertex_normal=has_normals
        )
    if fmt == "obj":
        return ex.obj.export_obj(tm, include_normals=has_normals, include_color=True, header=None)
    if fmt == "off":
        return ex.off.export_off(tm)
    if fmt == "stl":
        return ex.stl.export_stl(tm) if binary else ex.stl.export_stl_ascii(tm)
    scene = trimesh.Scene(tm)
    if fmt == "glb":
        return ex.gltf.export_glb(scene, include_normals=has_normals)
    # gltf: one self-contained file (buffers embedded as data URIs)
    files = ex.gltf.export_gltf(scene, include_normals=has_normals, embed_buffers=True)
    return files["model.gltf"]


def save_mesh(
    path: C.PathLike,
    meshes: MeshesLike,
    index: int = 0,
    *,
    normals: bool | None = None,
    binary: bool = True,
) -> None:
    """Write one mesh of a batch to a file; the format comes from the extension.

    What each format stores: ``.ply`` vertices (float32), faces, normals,
    RGBA colours; ``.obj`` vertices (8 decimal places), faces, normals, RGB
    colours (alpha is dropped); ``.off`` vertices and faces only; ``.stl`` triangles only
    (vertices are not shared); ``.glb``/``.gltf`` vertices (float32), faces,
    normals, RGBA colours (``.gltf`` embeds its buffers, so it is one file).

    Args:
        path: file to create or overwrite; its folder must exist.
        meshes: a :class:`~geomgen.structures.Meshes`, or a pair
            ``(verts (V, 3) float, faces (F, 3) int)`` of tensors or arrays.
        index: which mesh of the batch to write (negative counts from the end).
        normals: None (default) writes normals only when the mesh stores them
            (given or read from a file); True also writes normals computed from
            the faces; False never writes them.
        binary: PLY and STL: binary (default) or ASCII encoding.

    Raises:
        FileFormatError: unsupported extension.
        MeshFileNotFoundError: the folder of ``path`` does not exist.
        InvalidInputError: bad ``meshes``/``index``, or NaN/Inf vertices.
    """
    fn = "save_mesh"
    p = C.as_path(path, fn)
    fmt = C.file_format(p, C.MESH_FORMATS, fn)
    C.check_writable_file(p, fn)
    mesh = mesh_to_arrays(meshes, index, fn, normals=normals)
    if not np.isfinite(mesh.verts).all():
        raise InvalidInputError(f"{fn}: cannot write '{p}': vertices contain NaN/Inf values")
    tm = arrays_to_trimesh(mesh)
    data = _export_bytes(tm, fmt, mesh.normals is not None, bool(binary))
    if isinstance(data, str):
        data = data.encode("utf-8")
    p.write_bytes(data)
