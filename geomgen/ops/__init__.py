"""Geometric operators on batched point clouds, meshes, voxel grids and depth maps.

One op per module (``geomgen.ops.knn``, ``geomgen.ops.voxelize``, ...), each with a
pure-torch reference implementation; compiled kernels (``geomgen.kernels``) plug in
behind the same public function through its ``backend`` argument: ``"auto"`` picks
numba for CPU tensors and torch for CUDA tensors.  :mod:`geomgen.backend` holds the
rules, the PyTorch3D guard and the kernels' thread budget for every op.
"""

from geomgen.ops.cubify import cubify
from geomgen.ops.depth import project_points, unproject_depth
from geomgen.ops.graph_conv import GraphConv, gather_scatter
from geomgen.ops.ico_sphere import ico_sphere
from geomgen.ops.knn import KNN, knn_gather, knn_points
from geomgen.ops.marching_cubes import marching_cubes
from geomgen.ops.mesh_edges import GraphAdjacency, edges_to_adjacency, mesh_adjacency, mesh_edges
from geomgen.ops.points_in_meshes import points_in_meshes
from geomgen.ops.points_to_voxels import points_to_voxels
from geomgen.ops.reconstruct import reconstruct_surface
from geomgen.ops.sample_points import sample_points_from_meshes
from geomgen.ops.subdivide import SubdivideMeshes, subdivide_meshes
from geomgen.ops.vert_align import vert_align
from geomgen.ops.voxelize import voxelize

__all__ = [
    "KNN",
    "knn_points",
    "knn_gather",
    "sample_points_from_meshes",
    "voxelize",
    "points_in_meshes",
    "points_to_voxels",
    "cubify",
    "marching_cubes",
    "unproject_depth",
    "project_points",
    "mesh_edges",
    "GraphAdjacency",
    "edges_to_adjacency",
    "mesh_adjacency",
    "GraphConv",
    "gather_scatter",
    "vert_align",
    "subdivide_meshes",
    "SubdivideMeshes",
    "ico_sphere",
    "reconstruct_surface",
]
