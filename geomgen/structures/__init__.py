"""Batched 3D structures: :class:`Meshes`, :class:`PointClouds`, :class:`Voxels`, :class:`DepthMaps`.

``Meshes`` and ``PointClouds`` hold items of different sizes and offer list,
padded and packed views; ``Voxels`` and ``DepthMaps`` hold equally sized
items as one dense batch tensor.  Every constructor validates its inputs
(``validate=True``) and raises :class:`geomgen.errors.InvalidInputError` with
a message naming the argument and batch index at fault.
"""

from geomgen.structures._checks import BatchIndexError
from geomgen.structures.depthmaps import DepthMaps, join_depthmaps_as_batch
from geomgen.structures.meshes import Meshes, join_meshes_as_batch
from geomgen.structures.pointclouds import PointClouds, join_pointclouds_as_batch
from geomgen.structures.voxels import Voxels, join_voxels_as_batch

__all__ = [
    "Meshes",
    "PointClouds",
    "Voxels",
    "DepthMaps",
    "join_meshes_as_batch",
    "join_pointclouds_as_batch",
    "join_voxels_as_batch",
    "join_depthmaps_as_batch",
    "BatchIndexError",
]
