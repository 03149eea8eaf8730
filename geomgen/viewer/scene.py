"""Turn geomgen data into lists of Open3D geometries ("items") for viewing.

An **item** is what the viewer shows at once: a ``list`` of Open3D legacy
geometries (``TriangleMesh``, ``PointCloud``, ``VoxelGrid``).  Every input
gives one item per batch element:

* :class:`~geomgen.structures.Meshes` ``(N, V, 3)`` -> ``N`` items, each a
  ``TriangleMesh`` (vertex normals computed when none are stored, so that the
  lit shaders work; vertex colours kept, else a uniform colour).
* :class:`~geomgen.structures.PointClouds` ``(N, P, 3)`` -> ``N`` items, each a
  ``PointCloud`` (normals and 3/4-channel features in ``[0, 1]`` kept as colours).
* :class:`~geomgen.structures.Voxels` ``(N, D, H, W)`` -> ``N`` items: the
  occupied voxels (:meth:`Voxels.occupancy`) as a closed box mesh in world
  units (:func:`geomgen.ops.cubify`, ``voxels_as="mesh"``, the default) or as
  an Open3D ``VoxelGrid`` of the voxel centres (``voxels_as="grid"``; needs
  cubic voxels: the smallest edge length is used).
* :class:`~geomgen.structures.DepthMaps` ``(N, H, W)`` -> ``N`` point clouds:
  the masked-in pixels unprojected with the maps' own intrinsics ``K`` (a
  ``DepthMaps`` always carries ``K``).  The points are in the camera frame,
  shown in OpenGL axes ``(x, -y, -z)`` (x right, y up, z towards the viewer)
  so the depth map appears upright rather than upside down.
* a dataset sample ``dict`` with ``"verts"`` ``(V, 3)`` + ``"faces"`` ``(F, 3)``
  and/or ``"points"`` ``(P, 3)`` (+ ``"normals"``): the ground-truth mesh and
  its point samples, as two objects laid out side by side (see below).
  Collated batches (lists of tensors, or ``(N, V, 3)``) give ``N`` items.
* a file path (``str`` / :class:`~pathlib.Path`): meshes (OBJ, PLY, OFF, STL,
  GLB, GLTF) and point clouds (PLY without faces, XYZ, PWN, NPZ with a
  ``"points"`` array) through :mod:`geomgen.io`, depth maps (``.npz`` with
  ``"depth"`` and ``"K"``, :func:`geomgen.io.load_depthmaps`, as ``geomgen
  predict --repr depth -o X.npz`` writes them), ``.binvox`` voxel grids,
  ``.npz`` with a 3-D ``"voxels"`` / ``"occupancy"`` / ``"grid"`` array
  (occupancy in ``[0, 1]``, unit voxels at the origin) and ``.npy`` holding a
  ``(D, H, W)`` / ``(N, D, H, W)`` grid or ``(P, 3)`` / ``(N, P, 3)`` points.
  Anything else raises a :mod:`geomgen.errors` error naming the file.
* a tensor or array ``(P, 3)`` (one item) or ``(N, P, 3)`` (``N`` items) of points.
* Open3D geometries (one item) or lists of them, passed through (copied).

**Layout.**  :func:`build_items` takes several objects.  With
``layout="side-by-side"`` (default) item ``i`` holds element ``i`` of every
object (an object with one element is repeated), each object normalised to
the same scale (its bounding box centred, its longest edge 1) and translated
along ``+x`` in argument order with a gap of ``gap`` between neighbours; the
row is centred on the origin.  So ``build_items(pred, gt)`` puts the
prediction left of the ground truth.  With ``layout="batch"`` the objects'
elements are concatenated into one sequence of items (each normalised and
centred on its own).  ``normalize=False`` keeps world coordinates (objects
are still shifted apart in side-by-side layout, by their own widths).

Open3D is optional: it is imported by the functions that need it and a
missing install raises :class:`~geomgen.errors.BackendUnavailableError`
("pip install geomgen[viewer]").
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geomgen.errors import BackendUnavailableError, FileFormatError, InvalidInputError, MeshFileNotFoundError

__all__ = ["import_open3d", "to_items", "build_items", "items_bounds", "PALETTE", "LAYOUTS"]

#: Colours (RGB in [0, 1]) given to objects without colours, by position in the layout.
PALETTE: tuple[tuple[float, float, float], ...] = (
    (0.55, 0.65, 0.85),  # blue-grey
    (0.85, 0.60, 0.45),  # orange
    (0.55, 0.80, 0.55),  # green
    (0.80, 0.55, 0.80),  # violet
    (0.80, 0.78, 0.50),  # yellow
)

#: Accepted ``layout`` values of :func:`build_items`.
LAYOUTS: tuple[str, ...] = ("side-by-side", "batch")

_VOXEL_KEYS = ("voxels", "occupancy", "grid")
_POINT_SUFFIXES = {".xyz", ".pwn"}


def import_open3d(what: str = "geomgen.viewer") -> Any:
    """Import and return the ``open3d`` module.

    Raises:
        BackendUnavailableError: Open3D is not installed; the message says
            ``pip install geomgen[viewer]``.
    """
    try:
        import open3d
    except ImportError as exc:  # also a broken install (missing shared libraries)
        raise BackendUnavailableError(
            f"{what}: Open3D is not installed or cannot be imported ({exc}); "
            "install it with: pip install geomgen[viewer]"
        ) from exc
    return open3d


# ----------------------------------------------------------------------------- single objects
def _color(index: int) -> np.ndarray:
    return np.asarray(PALETTE[index % len(PALETTE)], dtype=np.float64)


def _mesh_geometry(o3d: Any, verts: np.ndarray, faces: np.ndarray, colors: np.ndarray | None = None) -> Any:
    mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(np.ascontiguousarray(verts, np.float64)),
                                     o3d.utility.Vector3iVector(np.ascontiguousarray(faces, np.int32)))
    if colors is not None:
        mesh.vertex_colors = o3d.utility.Vector3dVector(np.ascontiguousarray(colors[:, :3], np.float64))
    mesh.compute_vertex_normals()
    return mesh


def _points_geometry(o3d: Any, points: np.ndarray, normals: np.ndarray | None = None) -> Any:
    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.ascontiguousarray(points, np.float64)))
    if normals is not None:
        pc.normals = o3d.utility.Vector3dVector(np.ascontiguousarray(normals, np.float64))
    return pc


def _np(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def _voxel_items(o3d: Any, voxels: Any, voxels_as: str) -> list[list[Any]]:
    from geomgen.ops import cubify

    if voxels_as == "mesh":
        meshes = cubify(voxels)
        return [[_mesh_geometry(o3d, _np(v), f.cpu().numpy())] for v, f in zip(meshes.verts_list(),
                                                                              meshes.faces_list())]
    occ = voxels.occupancy()
    centres = voxels.voxel_centers()
    items = []
    for i in range(len(voxels)):
        pts = _points_geometry(o3d, _np(centres[i][occ[i]]))
        size = float(voxels.voxel_size[i].min())
        items.append([o3d.geometry.VoxelGrid.create_from_point_cloud(pts, voxel_size=size)])
    return items


def _sample_items(o3d: Any, sample: dict, voxels_as: str) -> list[list[list[Any]]]:
    """Objects (each a list of items) of a dataset sample: mesh, then points."""
    objects: list[list[list[Any]]] = []

    def as_list(x: Any) -> list[Any]:
        if isinstance(x, (list, tuple)):
            return list(x)
        t = torch.as_tensor(x)
        return list(t) if t.dim() == 3 else [t]

    if "verts" in sample and "faces" in sample:
        verts, faces = as_list(sample["verts"]), as_list(sample["faces"])
        objects.append([[_mesh_geometry(o3d, _np(v), np.asarray(torch.as_tensor(f).cpu(), np.int64))]
                        for v, f in zip(verts, faces)])
    if "points" in sample:
        points = as_list(sample["points"])
        normals = as_list(sample["normals"]) if "normals" in sample else [None] * len(points)
        objects.append([[_points_geometry(o3d, _np(p), None if n is None else _np(n))]
                        for p, n in zip(points, normals)])
    if not objects:
        raise InvalidInputError(f"geomgen.viewer: a sample dict needs 'verts' + 'faces' and/or 'points', "
                                f"got keys {sorted(map(str, sample))}")
    return objects


def _array_items(o3d: Any, array: np.ndarray, name: str, voxels_as: str) -> list[list[Any]]:
    """Items of an array: ``(P, 3)`` / ``(N, P, 3)`` points, or (files only) a voxel grid."""
    if array.ndim == 2 and array.shape[1] == 3:
        return [[_points_geometry(o3d, array)]]
    if array.ndim == 3 and array.shape[2] == 3:
        return [[_points_geometry(o3d, a)] for a in array]
    raise InvalidInputError(f"geomgen.viewer: {name}: expected points of shape (P, 3) or (N, P, 3), "
                            f"got {tuple(array.shape)}")


def _grid_items(o3d: Any, grid: np.ndarray, path: Path, voxels_as: str) -> list[list[Any]]:
    from geomgen.structures import Voxels

    try:
        grid = grid.astype(np.float32)
        return _voxel_items(o3d, Voxels(torch.from_numpy(grid if grid.ndim == 4 else grid[None])), voxels_as)
    except InvalidInputError as exc:
        raise FileFormatError(f"{path}: not a valid occupancy grid: {exc}") from exc


def _file_items(o3d: Any, path: Path, voxels_as: str) -> list[list[Any]]:
    from geomgen.io import load_binvox, load_depthmaps, load_mesh, load_pointcloud

    if not path.exists():
        raise MeshFileNotFoundError(f"{path}: no such file")
    if not path.is_file():
        raise FileFormatError(f"{path}: is not a file")
    suffix = path.suffix.lower()
    if suffix == ".binvox":
        return _voxel_items(o3d, load_binvox(path), voxels_as)
    if suffix in (".npy", ".npz"):
        try:
            loaded = np.load(path, allow_pickle=False)
            arrays = {k: loaded[k] for k in loaded.files} if suffix == ".npz" else {"array": loaded}
        except Exception as exc:  # noqa: BLE001 - numpy raises many types on corrupt files
            raise FileFormatError(f"{path}: cannot be read as {suffix[1:].upper()}: {exc}") from exc
        if suffix == ".npz" and "points" in arrays:
            return _structure_items(o3d, load_pointcloud(path), voxels_as)
        if suffix == ".npz" and "depth" in arrays:
            return _structure_items(o3d, load_depthmaps(path), voxels_as)
        keys = [k for k in (*_VOXEL_KEYS, "array") if k in arrays]
        for key in keys:
            a = arrays[key]
            if a.dtype.kind not in "fiub":
                break
            if a.ndim in (3, 4) and not (a.ndim == 3 and a.shape[-1] == 3 and key == "array"):
                return _grid_items(o3d, a, path, voxels_as)
            if a.ndim in (2, 3) and a.shape[-1] == 3:
                return _array_items(o3d, a.astype(np.float64), str(path), voxels_as)
        shapes = {k: tuple(v.shape) for k, v in arrays.items()}
        raise FileFormatError(f"{path}: holds no point cloud ('points' (P, 3)) or voxel grid "
                              f"({'/'.join(_VOXEL_KEYS)} (D, H, W)): arrays {shapes}")
    if suffix in _POINT_SUFFIXES:
        return _structure_items(o3d, load_pointcloud(path), voxels_as)
    try:
        return _structure_items(o3d, load_mesh(path), voxels_as)
    except FileFormatError as exc:
        if "no faces" not in str(exc):
            raise
        return _structure_items(o3d, load_pointcloud(path), voxels_as)


def _structure_items(o3d: Any, obj: Any, voxels_as: str) -> list[list[Any]]:
    from geomgen.io import to_open3d
    from geomgen.structures import DepthMaps, Meshes, PointClouds, Voxels

    lite = getattr(o3d, "lite", False)
    if isinstance(obj, Meshes):
        if lite:
            colors = obj.verts_colors_list()
            return [[_mesh_geometry(o3d, _np(v), f.cpu().numpy(), None if colors is None else _np(colors[i]))]
                    for i, (v, f) in enumerate(zip(obj.verts_list(), obj.faces_list()))]
        items = []
        for i in range(len(obj)):
            mesh = to_open3d(obj, i)
            if not mesh.has_vertex_normals():
                mesh.compute_vertex_normals()
            items.append([mesh])
        return items
    if isinstance(obj, PointClouds):
        if lite:
            return [[_points_geometry(o3d, _np(p))] for p in obj.points_list()]
        return [[to_open3d(obj, i)] for i in range(len(obj))]
    if isinstance(obj, Voxels):
        return _voxel_items(o3d, obj, voxels_as)
    if isinstance(obj, DepthMaps):
        from geomgen.render.cameras import opencv_to_y_up

        return [[_points_geometry(o3d, _np(opencv_to_y_up(p)))] for p in obj.to_pointclouds().points_list()]
    raise InvalidInputError(f"geomgen.viewer: cannot show a {type(obj).__name__}")


def _is_o3d_geometry(o3d: Any, obj: Any) -> bool:
    return isinstance(obj, o3d.geometry.Geometry)


def _objects(o3d: Any, obj: Any, voxels_as: str) -> list[list[list[Any]]]:
    """One input as a list of objects (a sample dict gives two), each a list of items."""
    if isinstance(obj, dict):
        return _sample_items(o3d, obj, voxels_as)
    return [_to_items(o3d, obj, voxels_as)]


def _backend_module(use_open3d: bool) -> Any:
    """Open3D, or the NumPy stand-in (:mod:`geomgen.viewer._lite`) when ``use_open3d`` is False."""
    if use_open3d:
        return import_open3d()
    from geomgen.viewer._lite import o3d_lite

    return o3d_lite


def to_items(obj: Any, *, voxels_as: str = "mesh") -> list[list[Any]]:
    """One object as a list of items (one per batch element), each a list of
    Open3D geometries, in the object's own coordinates (see the module
    docstring for what is accepted).

    Args:
        obj: ``Meshes`` (N, V, 3), ``PointClouds`` (N, P, 3), ``Voxels``
            (N, D, H, W), ``DepthMaps`` (N, H, W), a sample ``dict`` (its mesh
            and points overlaid in one item; use :func:`build_items` to lay
            them side by side), a file path, a ``(P, 3)`` / ``(N, P, 3)``
            tensor or array of points, or Open3D geometries.
        voxels_as: ``"mesh"`` (cubes as a box mesh) or ``"grid"`` (``VoxelGrid``).

    Returns:
        ``N`` items (``list`` of ``list`` of Open3D geometries).

    Raises:
        InvalidInputError: an unsupported type or shape.
        MeshFileNotFoundError / FileFormatError: a path that does not exist or
            cannot be read (the message names the file).
        BackendUnavailableError: Open3D is missing.
    """
    if voxels_as not in ("mesh", "grid"):
        raise InvalidInputError(f"voxels_as: expected 'mesh' or 'grid', got {voxels_as!r}")
    return _to_items(import_open3d(), obj, voxels_as)


def _to_items(o3d: Any, obj: Any, voxels_as: str) -> list[list[Any]]:
    if voxels_as == "grid" and getattr(o3d, "lite", False):
        raise InvalidInputError("voxels_as='grid' needs Open3D (pip install geomgen[viewer])")
    if isinstance(obj, (str, Path)):
        return _file_items(o3d, Path(obj).expanduser(), voxels_as)
    if isinstance(obj, dict):
        objects = _sample_items(o3d, obj, voxels_as)
        n = max(len(o) for o in objects)
        return [[g for o in objects for g in o[min(i, len(o) - 1)]] for i in range(n)]
    if isinstance(obj, (torch.Tensor, np.ndarray)):
        return _array_items(o3d, _np(obj), "points", voxels_as)
    if _is_o3d_geometry(o3d, obj):
        return [[copy.deepcopy(obj)]]
    if isinstance(obj, (list, tuple)) and obj and all(_is_o3d_geometry(o3d, g) for g in obj):
        return [[copy.deepcopy(g) for g in obj]]
    return _structure_items(o3d, obj, voxels_as)


# ----------------------------------------------------------------------------- layout
def items_bounds(geometries: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)``, each ``(3,)``: the axis-aligned bounding box of the
    geometries of one item (zeros for an empty item)."""
    los, his = [], []
    for g in geometries:
        if g.is_empty():
            continue
        box = g.get_axis_aligned_bounding_box()
        los.append(np.asarray(box.get_min_bound()))
        his.append(np.asarray(box.get_max_bound()))
    if not los:
        return np.zeros(3), np.zeros(3)
    return np.min(los, axis=0), np.max(his, axis=0)


def _transform(g: Any, offset: np.ndarray, scale: float, o3d: Any) -> None:
    """In place: ``x -> (x + offset) * scale`` (a VoxelGrid is rebuilt from its centres)."""
    if isinstance(g, o3d.geometry.VoxelGrid):
        return  # handled by the caller (VoxelGrid has no scale)
    g.translate(offset)
    if scale != 1.0:
        g.scale(scale, center=np.zeros(3))


def _moved(o3d: Any, geometries: list[Any], offset: np.ndarray, scale: float) -> list[Any]:
    out = []
    for g in geometries:
        if isinstance(g, o3d.geometry.VoxelGrid):
            centres = np.array([g.get_voxel_center_coordinate(v.grid_index) for v in g.get_voxels()])
            centres = (centres.reshape(-1, 3) + offset) * scale
            size = g.voxel_size * scale
            g = o3d.geometry.VoxelGrid.create_from_point_cloud(_points_geometry(o3d, centres), voxel_size=size)
        else:
            _transform(g, offset, scale, o3d)
        out.append(g)
    return out


def _colorize(o3d: Any, geometries: list[Any], index: int) -> None:
    for g in geometries:
        if isinstance(g, o3d.geometry.TriangleMesh) and not g.has_vertex_colors():
            g.paint_uniform_color(_color(index))
        elif isinstance(g, o3d.geometry.PointCloud) and not g.has_colors():
            g.paint_uniform_color(_color(index) * 0.8)


def build_items(*objects: Any, layout: str = "side-by-side", gap: float = 0.25, normalize: bool = True,
                voxels_as: str = "mesh", colorize: bool = True, use_open3d: bool = True) -> list[list[Any]]:
    """The items a viewer pages through: one list of Open3D geometries per shown frame.

    Args:
        objects: anything :func:`to_items` accepts; a sample ``dict`` counts as
            two objects (its mesh, then its points).
        layout: ``"side-by-side"``: item ``i`` = element ``i`` of every object
            (objects with one element repeat), objects placed left to right
            along ``+x`` in argument order; ``"batch"``: every element of
            every object is its own item.
        gap: space between neighbours, in units of the normalised size (1).
        normalize: centre each object's bounding box and scale its longest
            edge to 1 (else keep world coordinates).
        voxels_as: ``"mesh"`` or ``"grid"`` (see :func:`to_items`).
        colorize: paint geometries without colours with :data:`PALETTE`
            (by position in the row).
        use_open3d: False builds NumPy stand-ins of Open3D's ``TriangleMesh``
            / ``PointCloud`` (:mod:`geomgen.viewer._lite`, attributes
            ``vertices``, ``triangles``, ``vertex_colors``, ``points``,
            ``colors`` as arrays) so that no Open3D is needed (used by the
            ``"geomgen"`` render backend).

    Returns:
        A non-empty list of items; geometries are new objects (inputs are not modified).

    Raises:
        InvalidInputError: no objects, bad ``layout`` / ``gap``, an empty
            batch, or unsupported inputs (see :func:`to_items`).
    """
    if layout not in LAYOUTS:
        raise InvalidInputError(f"layout: expected one of {LAYOUTS}, got {layout!r}")
    if not objects:
        raise InvalidInputError("geomgen.viewer: nothing to show (give at least one object)")
    if not (isinstance(gap, (int, float)) and np.isfinite(gap) and gap >= 0):
        raise InvalidInputError(f"gap: expected a finite number >= 0, got {gap!r}")
    o3d = _backend_module(use_open3d)
    groups: list[list[list[Any]]] = []
    for obj in objects:
        groups.extend(_objects(o3d, obj, voxels_as))
    for k, group in enumerate(groups):
        if not group:
            raise InvalidInputError(f"geomgen.viewer: object {k} is an empty batch")
    if layout == "batch":
        items = []
        for k, group in enumerate(groups):
            for geoms in group:
                placed = _placed(o3d, geoms, normalize, False)
                if colorize:
                    _colorize(o3d, placed[0], k)
                items.append(placed[0])
        return items
    n = max(len(g) for g in groups)
    items = []
    for i in range(n):
        row = [_placed(o3d, group[min(i, len(group) - 1)], normalize, len(groups) > 1) for group in groups]
        item: list[Any] = []
        if len(row) == 1:  # a single object stays where _placed put it
            if colorize:
                _colorize(o3d, row[0][0], 0)
            items.append(row[0][0])
            continue
        widths = [w for _, w in row]
        step_gap = gap * (1.0 if normalize else max(max(widths), 1e-9))
        x = -(sum(widths) + step_gap * (len(row) - 1)) / 2
        for k, (geoms, w) in enumerate(row):
            geoms = _moved(o3d, geoms, np.array([x + w / 2, 0.0, 0.0]), 1.0)
            if colorize:
                _colorize(o3d, geoms, k)
            item.extend(geoms)
            x += w + step_gap
        items.append(item)
    return items


def _placed(o3d: Any, geometries: list[Any], normalize: bool, centre: bool) -> tuple[list[Any], float]:
    """Copies of one object's geometries, centred on the origin when ``normalize``
    or ``centre`` and scaled to a longest edge of 1 when ``normalize``, with their x extent."""
    geoms = [copy.deepcopy(g) for g in geometries]
    lo, hi = items_bounds(geoms)
    centre = (lo + hi) / 2
    extent = float((hi - lo).max())
    scale = 1.0 / extent if normalize and extent > 0 else 1.0
    if normalize or centre:
        geoms = _moved(o3d, geoms, -centre, scale)
    return geoms, float(hi[0] - lo[0]) * scale
