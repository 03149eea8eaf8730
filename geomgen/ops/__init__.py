"""Geometric operators on batched point clouds and meshes.

Each op lives in its own module (``geomgen.ops.knn``, ``geomgen.ops.sample_points``,
...) with a pure-torch reference implementation; faster kernels plug in behind
the same public function through its ``backend`` argument.
"""

from geomgen.ops.knn import KNN, knn_gather, knn_points
from geomgen.ops.sample_points import sample_points_from_meshes

__all__ = ["KNN", "knn_gather", "knn_points", "sample_points_from_meshes"]
