"""Read and write point clouds: PLY, XYZ, PWN and NPZ (mesh files give their vertices).

Shape letters: ``P`` points, ``C`` feature channels.

Formats:

* ``.ply`` (through trimesh): ``x y z``, optional ``nx ny nz`` (normals),
  and features: ``feature_0 .. feature_{C-1}`` float properties if present,
  else ``red green blue [alpha]`` colours as floats in ``[0, 1]`` (RGBA only
  when some alpha is below 255).  Other vertex properties are ignored.  A PLY
  with faces gives its vertices.  Writing is binary (little endian, float32
  coordinates).
* ``.xyz``: one point per line, ``x y z`` or ``x y z nx ny nz``, whitespace
  separated; ``#`` starts a comment.  Any other column count is an error.
* ``.pwn``: like ``.xyz`` but normals are required (6 columns).
* ``.npz``: arrays ``points`` ``(P, 3)``, optional ``normals`` ``(P, 3)`` and
  ``features`` ``(P, C)`` (``colors`` is accepted as a name for features on
  reading).
* ``.obj``, ``.off``, ``.stl``, ``.glb``, ``.gltf`` (read only, through
  trimesh): the vertices of every part, with the normals the file stores and
  vertex colours as features.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geomgen.errors import InvalidInputError
from geomgen.io import _common as C
from geomgen.io import meshes as _meshes
from geomgen.structures import PointClouds

__all__ = ["load_pointcloud", "save_pointcloud"]

#: What ``save_pointcloud`` accepts: a batch, or a ``(P, 3)`` tensor/array of points.
PointCloudsLike = PointClouds | torch.Tensor | np.ndarray

_WRITE_FORMATS: tuple[str, ...] = ("ply", "xyz", "pwn", "npz")


@dataclass
class PointArrays:
    """One point cloud as NumPy arrays (internal).

    Attributes:
        points: ``(P, 3)`` float64.
        normals: ``(P, 3)`` float64 or None.
        features: ``(P, C)`` float64 or None.
    """

    points: np.ndarray
    normals: np.ndarray | None = None
    features: np.ndarray | None = None


# ---------------------------------------------------------------------------
# readers
# ---------------------------------------------------------------------------


def _ply_column(data: Any, name: str) -> np.ndarray:
    return np.asarray(data[name]).reshape(-1)


def _ply_vertex_arrays(raw: dict) -> PointArrays | None:
    """Points, normals and features from trimesh's raw PLY elements (``_ply_raw``)."""
    element = raw.get("vertex")
    if not element or element.get("data") is None:
        return None
    props = list(element.get("properties", {}).keys())
    data = element["data"]
    if not all(k in props for k in "xyz"):
        return None
    points = np.stack([_ply_column(data, k) for k in "xyz"], axis=1).astype(np.float64)
    normals = None
    if all(k in props for k in ("nx", "ny", "nz")):
        normals = np.stack([_ply_column(data, k) for k in ("nx", "ny", "nz")], axis=1)
        normals = normals.astype(np.float64)
    features = None
    feature_props = sorted(
        (k for k in props if k.startswith("feature_") and k[8:].isdigit()), key=lambda k: int(k[8:])
    )
    if feature_props:
        features = np.stack([_ply_column(data, k) for k in feature_props], axis=1).astype(
            np.float64
        )
    elif all(k in props for k in ("red", "green", "blue")):
        names = ["red", "green", "blue"] + (["alpha"] if "alpha" in props else [])
        cols = np.stack([_ply_column(data, k) for k in names], axis=1)
        if cols.dtype.kind == "f":
            cols = np.clip(cols, 0.0, 1.0)
            if cols.shape[1] == 4 and (cols[:, 3] == 1.0).all():
                cols = cols[:, :3]
            features = cols.astype(np.float64)
        else:
            full = cols.astype(np.int64)
            if full.shape[1] == 3:
                full = np.concatenate([full, np.full((len(full), 1), 255)], axis=1)
            features = C.colors_from_uint8(np.clip(full, 0, 255).astype(np.uint8))
    return PointArrays(points, normals, features)


def _scene_points(scene: Any, fmt: str) -> list[PointArrays]:
    """Vertices of every geometry in a ``trimesh.Scene``, placed by its transform."""
    parts: list[PointArrays] = []
    for node in scene.graph.nodes_geometry:
        matrix, name = scene.graph[node]
        geom = scene.geometry[name]
        if not hasattr(geom, "vertices"):
            continue
        raw = getattr(geom, "metadata", {}).get("_ply_raw") if fmt == "ply" else None
        arrays = _ply_vertex_arrays(raw) if raw else None
        if arrays is None:
            m = _meshes.geometry_parts(geom)
            arrays = PointArrays(m.verts, m.normals, m.colors)
        if arrays.points.ndim != 2 or arrays.points.shape[1] != 3:
            continue
        matrix = np.asarray(matrix, dtype=np.float64)
        if not np.allclose(matrix, np.eye(4), rtol=0.0, atol=1e-12):
            moved = _meshes._transform(
                _meshes.MeshArrays(arrays.points, np.zeros((0, 3), np.int64), arrays.normals),
                matrix,
            )
            arrays = PointArrays(moved.verts, moved.normals, arrays.features)
        parts.append(arrays)
    return parts


def _concat_points(parts: list[PointArrays]) -> PointArrays:
    if len(parts) == 1:
        return parts[0]
    points = np.concatenate([p.points for p in parts], axis=0)
    normals = None
    if all(p.normals is not None for p in parts):
        normals = np.concatenate([p.normals for p in parts], axis=0)
    features = None
    widths = {p.features.shape[1] for p in parts if p.features is not None}
    if all(p.features is not None for p in parts) and len(widths) == 1:
        features = np.concatenate([p.features for p in parts], axis=0)
    return PointArrays(points, normals, features)


def _read_text_columns(path: Path, fmt: str, fn: str) -> PointArrays:
    """``.xyz`` / ``.pwn``: whitespace-separated columns, 3 (points) or 6 (+ normals)."""
    with C.reading(path, fn, fmt), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # numpy warns on files without data
        table = np.loadtxt(path, dtype=np.float64, comments="#", ndmin=2)
    if table.size == 0:
        raise C.file_error(path, fn, "contains no points")
    cols = table.shape[1]
    allowed = (6,) if fmt == "pwn" else (3, 6)
    if cols not in allowed:
        want = (
            "6 columns (x y z nx ny nz)"
            if fmt == "pwn"
            else "3 (x y z) or 6 (x y z nx ny nz) columns"
        )
        raise C.file_error(path, fn, f"has {cols} columns per line, expected {want}")
    normals = table[:, 3:6] if cols == 6 else None
    return PointArrays(table[:, :3], normals, None)


def _read_npz(path: Path, fn: str) -> PointArrays:
    with C.reading(path, fn, "npz"):
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    if "points" not in arrays:
        raise C.file_error(path, fn, f"has no 'points' array (arrays: {sorted(arrays) or 'none'})")
    points = arrays["points"]
    n = len(points) if points.ndim >= 1 else -1

    def numeric(name: str, width: int | None) -> np.ndarray:
        a = arrays[name]
        if (
            a.dtype.kind not in "fiub"
            or a.ndim != 2
            or len(a) != n
            or (width and a.shape[1] != width)
        ):
            shape = f"({n}, {width})" if width else f"({n}, C)"
            raise C.file_error(
                path,
                fn,
                f"array '{name}' has shape {tuple(a.shape)} dtype {a.dtype}, expected {shape} numbers",
            )
        return a.astype(np.float64)

    pts = numeric("points", 3)
    normals = numeric("normals", 3) if "normals" in arrays else None
    key = "features" if "features" in arrays else ("colors" if "colors" in arrays else None)
    features = numeric(key, None) if key else None
    return PointArrays(pts, normals, features)


def read_point_arrays(path: Path, fmt: str, fn: str) -> PointArrays:
    """Read one point file (already path/extension-checked) into checked arrays."""
    if fmt in ("xyz", "pwn"):
        arrays = _read_text_columns(path, fmt, fn)
    elif fmt == "npz":
        arrays = _read_npz(path, fn)
    else:
        scene = C.read_scene(path, fmt, fn)
        with C.reading(path, fn, fmt):
            parts = _scene_points(scene, fmt)
        if not parts:
            raise C.file_error(
                path, fn, f"contains no points (empty, truncated or not a valid {fmt.upper()} file)"
            )
        arrays = _concat_points(parts)
    if len(arrays.points) == 0:
        raise C.file_error(path, fn, "contains no points")
    arrays.points = C.check_vertices(arrays.points, path, fn, what="point")
    for name in ("normals", "features"):
        a = getattr(arrays, name)
        if a is not None and not np.isfinite(a).all():
            raise C.file_error(path, fn, f"its {name} contain NaN/Inf values")
    return arrays


# ---------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------


def load_pointcloud(
    path: C.PathLike,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> PointClouds:
    """Read a point cloud file into a :class:`~geomgen.structures.PointClouds` batch of one.

    Formats (by extension, case-insensitive): ``.ply``, ``.xyz``, ``.pwn``,
    ``.npz``, and the vertices of mesh files ``.obj``, ``.off``, ``.stl``,
    ``.glb``, ``.gltf``; see the module docstring for the layouts.

    Args:
        path: the file.
        device: device of the returned tensors.
        dtype: floating dtype of points, normals and features.

    Returns:
        ``PointClouds`` with ``N = 1``: points ``(P, 3)``, normals ``(P, 3)``
        if the file has them, features ``(P, C)`` if the file has them
        (colours as floats in ``[0, 1]``).

    Raises:
        MeshFileNotFoundError: ``path`` does not exist or is a directory.
        FileFormatError: empty, truncated, corrupt or unsupported file, a
            wrong column count, NaN/Inf values.  The message names the file.
        InvalidInputError: bad ``path``/``dtype`` argument.
    """
    fn = "load_pointcloud"
    C.check_dtype(dtype, fn)
    p = C.as_path(path, fn)
    C.check_readable_file(p, fn)
    fmt = C.file_format(p, C.POINT_FORMATS, fn)
    arrays = read_point_arrays(p, fmt, fn)
    return arrays_to_pointclouds([arrays], str(p), fn, device, dtype)


def arrays_to_pointclouds(
    items: Sequence[PointArrays],
    where: str,
    fn: str,
    device: torch.device | str,
    dtype: torch.dtype,
) -> PointClouds:
    """Build a :class:`~geomgen.structures.PointClouds` batch; normals/features kept
    only if every item has them (features also need one channel count)."""
    C.check_dtype(dtype, fn)
    points = [C.as_float_tensor(a.points, device, dtype) for a in items]
    normals = None
    if items and all(a.normals is not None for a in items):
        normals = [C.as_float_tensor(a.normals, device, dtype) for a in items]
    features = None
    if items and all(a.features is not None for a in items):
        if len({a.features.shape[1] for a in items}) == 1:
            features = [C.as_float_tensor(a.features, device, dtype) for a in items]
    return C.build_structure(where, fn, PointClouds, points, normals=normals, features=features)


def pointcloud_to_arrays(pointclouds: PointCloudsLike, index: int, fn: str) -> PointArrays:
    """Arrays of cloud ``index`` of a ``PointClouds``, or of a ``(P, 3)`` tensor/array
    (floating dtypes are kept, so ``.npz`` files store what was given)."""
    if isinstance(pointclouds, PointClouds):
        i = C.check_index(index, len(pointclouds), fn, "point clouds")
        normals = pointclouds.normals_list()
        features = pointclouds.features_list()
        return PointArrays(
            C.to_numpy(pointclouds.points_list()[i]),
            None if normals is None else C.to_numpy(normals[i]),
            None if features is None else C.to_numpy(features[i]),
        )
    if isinstance(pointclouds, (torch.Tensor, np.ndarray)):
        pts = C.to_numpy(pointclouds)
        if pts.ndim != 2 or pts.shape[1] != 3 or pts.dtype.kind not in "fiu":
            raise InvalidInputError(
                f"{fn}: points must be a (P, 3) numeric tensor, got shape {tuple(pts.shape)} dtype {pts.dtype}"
            )
        return PointArrays(pts if pts.dtype.kind == "f" else pts.astype(np.float64))
    raise InvalidInputError(
        f"{fn}: argument 'pointclouds' must be a PointClouds or a (P, 3) tensor, got "
        f"{type(pointclouds).__name__}"
    )


def _ply_bytes(arrays: PointArrays, features_as_colors: bool | None, fn: str, path: Path) -> bytes:
    trimesh = C.import_trimesh()
    feats = arrays.features
    colors = None
    attributes: dict[str, np.ndarray] = {}
    if feats is not None:
        colorable = C.features_fit_colors(feats)
        if features_as_colors is None:
            as_colors = colorable
        elif features_as_colors:
            if not colorable:
                raise InvalidInputError(
                    f"{fn}: cannot write features of shape {tuple(feats.shape)} to '{path}' as colours: "
                    "they must have 3 or 4 channels with values in [0, 1]"
                )
            as_colors = True
        else:
            as_colors = False
        if as_colors:
            colors = C.colors_to_uint8(feats)
        else:
            attributes = {
                f"feature_{k}": np.ascontiguousarray(feats[:, k], dtype=np.float32)
                for k in range(feats.shape[1])
            }
    tm = trimesh.Trimesh(
        vertices=arrays.points,
        faces=None,
        vertex_normals=arrays.normals,
        vertex_colors=colors,
        process=False,
    )
    tm.vertex_attributes.update(attributes)
    return trimesh.exchange.ply.export_ply(
        tm, encoding="binary", vertex_normal=arrays.normals is not None
    )


def save_pointcloud(
    path: C.PathLike,
    pointclouds: PointCloudsLike,
    index: int = 0,
    *,
    features_as_colors: bool | None = None,
) -> None:
    """Write one point cloud of a batch; the format comes from the extension.

    ``.ply`` (binary, float32) stores points, normals and features: as
    ``red green blue [alpha]`` colours (quantised to 8 bits) when
    ``features_as_colors`` is True, or is None and the features have 3 or 4
    channels in ``[0, 1]``; otherwise as float32 properties
    ``feature_0 ..``.  ``.xyz`` stores points and normals; ``.pwn`` needs
    normals; neither can hold features (they are dropped with a
    ``UserWarning``).  ``.npz`` stores everything exactly.

    Args:
        path: file to create or overwrite; its folder must exist.
        pointclouds: a :class:`~geomgen.structures.PointClouds`, or a
            ``(P, 3)`` tensor/array of points.
        index: which cloud of the batch to write (negative counts from the end).
        features_as_colors: PLY only, see above.

    Raises:
        FileFormatError: unsupported extension.
        MeshFileNotFoundError: the folder of ``path`` does not exist.
        InvalidInputError: bad arguments, NaN/Inf points, ``.pwn`` without
            normals, features that cannot be colours with
            ``features_as_colors=True``.
    """
    fn = "save_pointcloud"
    p = C.as_path(path, fn)
    fmt = C.file_format(p, _WRITE_FORMATS, fn)
    C.check_writable_file(p, fn)
    arrays = pointcloud_to_arrays(pointclouds, index, fn)
    if not np.isfinite(arrays.points).all():
        raise InvalidInputError(f"{fn}: cannot write '{p}': points contain NaN/Inf values")
    if fmt == "npz":
        out = {"points": arrays.points}
        if arrays.normals is not None:
            out["normals"] = arrays.normals
        if arrays.features is not None:
            out["features"] = arrays.features
        buf = io.BytesIO()
        np.savez(buf, **out)
        p.write_bytes(buf.getvalue())
        return
    if fmt == "ply":
        p.write_bytes(_ply_bytes(arrays, features_as_colors, fn, p))
        return
    # xyz / pwn
    if fmt == "pwn" and arrays.normals is None:
        raise InvalidInputError(
            f"{fn}: '{p}': the .pwn format needs normals, but the point cloud has none"
        )
    if arrays.features is not None:
        warnings.warn(
            f"{fn}: '{p}': the .{fmt} format cannot store features; they are not written "
            "(use .ply or .npz to keep them)",
            UserWarning,
            stacklevel=2,
        )
    table = (
        arrays.points
        if arrays.normals is None
        else np.concatenate([arrays.points, arrays.normals], axis=1)
    )
    buf = io.StringIO()
    # enough digits for the values to read back exactly
    np.savetxt(buf, table, fmt="%.9g" if table.dtype == np.float32 else "%.17g")
    p.write_text(buf.getvalue())
