"""A NumPy stand-in for the few Open3D geometry features the viewer's scene code
uses, so that :mod:`geomgen.viewer.offscreen`'s ``"geomgen"`` backend works
without Open3D.  Only what :mod:`geomgen.viewer.scene` calls is implemented
(meshes and point clouds; no ``VoxelGrid``)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

__all__ = ["o3d_lite"]


class _Box:
    def __init__(self, lo: np.ndarray, hi: np.ndarray) -> None:
        self._lo, self._hi = lo, hi

    def get_min_bound(self) -> np.ndarray:
        return self._lo

    def get_max_bound(self) -> np.ndarray:
        return self._hi


class Geometry:
    """Base: an ``(V, 3)`` float64 coordinate array in ``_xyz``."""

    _xyz: np.ndarray

    def is_empty(self) -> bool:
        return len(self._xyz) == 0

    def get_axis_aligned_bounding_box(self) -> _Box:
        return _Box(self._xyz.min(0), self._xyz.max(0))

    def translate(self, offset: Any) -> "Geometry":
        self._xyz += np.asarray(offset, np.float64)
        return self

    def scale(self, s: float, center: Any) -> "Geometry":
        c = np.asarray(center, np.float64)
        self._xyz[:] = (self._xyz - c) * s + c
        return self


class TriangleMesh(Geometry):
    def __init__(self, vertices: Any = None, triangles: Any = None) -> None:
        self._xyz = np.zeros((0, 3)) if vertices is None else np.array(vertices, np.float64).reshape(-1, 3)
        self.triangles = np.zeros((0, 3), np.int64) if triangles is None else np.asarray(triangles).reshape(-1, 3)
        self.vertex_colors = np.zeros((0, 3))
        self.vertex_normals = np.zeros((0, 3))

    @property
    def vertices(self) -> np.ndarray:
        return self._xyz

    def has_vertex_colors(self) -> bool:
        return len(self.vertex_colors) > 0

    def has_vertex_normals(self) -> bool:
        return len(self.vertex_normals) > 0

    def compute_vertex_normals(self) -> "TriangleMesh":
        return self  # the geomgen rasterizer computes its own normals

    def paint_uniform_color(self, color: Any) -> "TriangleMesh":
        self.vertex_colors = np.tile(np.asarray(color, np.float64), (len(self._xyz), 1))
        return self


class PointCloud(Geometry):
    def __init__(self, points: Any = None) -> None:
        self._xyz = np.zeros((0, 3)) if points is None else np.array(points, np.float64).reshape(-1, 3)
        self.colors = np.zeros((0, 3))
        self.normals = np.zeros((0, 3))

    @property
    def points(self) -> np.ndarray:
        return self._xyz

    def has_colors(self) -> bool:
        return len(self.colors) > 0

    def has_normals(self) -> bool:
        return len(self.normals) > 0

    def paint_uniform_color(self, color: Any) -> "PointCloud":
        self.colors = np.tile(np.asarray(color, np.float64), (len(self._xyz), 1))
        return self


class VoxelGrid(Geometry):  # never built: voxels_as="grid" needs Open3D
    pass


def _array(x: Any) -> np.ndarray:
    return np.asarray(x)


#: Module-like namespace with ``geometry.{Geometry, TriangleMesh, PointCloud, VoxelGrid}`` and
#: ``utility.Vector3dVector`` / ``Vector3iVector`` / ``Vector2iVector`` (plain arrays).
o3d_lite = SimpleNamespace(
    geometry=SimpleNamespace(Geometry=Geometry, TriangleMesh=TriangleMesh, PointCloud=PointCloud, VoxelGrid=VoxelGrid),
    utility=SimpleNamespace(Vector3dVector=_array, Vector3iVector=_array, Vector2iVector=_array),
    lite=True,
)
