"""Batched 3D structures: :class:`Meshes`, :class:`PointClouds`, :class:`Voxels`, :class:`DepthMaps`."""
