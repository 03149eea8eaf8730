"""Datasets of 3D shapes with renders, voxels, surface samples and occupancy labels.

* :class:`ShapesDataset` (registered as ``"shapes"``) - procedural shapes of
  ten categories (:mod:`geomgen.data.procedural`), generated from a seed.
* :class:`MeshFolderDataset` (``"mesh-folder"``) - any folder of OBJ/OFF/PLY/STL files.
* :class:`~geomgen.data.shapenet.ShapeNetCore` (``"shapenet"``) and
  :class:`~geomgen.data.r2n2.R2N2` (``"r2n2"``).
* :func:`collate_samples` - batches sample dicts into geomgen structures
  (``Meshes``, ``PointClouds``, ``Voxels``, ``PerspectiveCameras``).
* :class:`SampleConfig` / :func:`build_sample` - the mesh -> sample pipeline;
  :class:`MeshSampleDataset` / :class:`MeshRecord` - the base of the mesh datasets;
  :mod:`geomgen.data.cache` - the verified on-disk sample cache.

The sample dict is documented in :mod:`geomgen.data.base`.  Names are
imported on first access, so ``import geomgen.data`` is cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "SampleConfig",
    "build_sample",
    "normalize_mesh",
    "MeshRecord",
    "MeshSampleDataset",
    "ShapesDataset",
    "MeshFolderDataset",
    "ShapeNetCore",
    "R2N2",
    "collate_samples",
    "cache_root",
    "FORMAT_VERSION",
    "make_contact_sheet",
]

_WHERE: dict[str, str] = {
    "SampleConfig": "geomgen.data.pipeline",
    "build_sample": "geomgen.data.pipeline",
    "normalize_mesh": "geomgen.data.pipeline",
    "MeshRecord": "geomgen.data.base",
    "MeshSampleDataset": "geomgen.data.base",
    "ShapesDataset": "geomgen.data.shapes",
    "MeshFolderDataset": "geomgen.data.mesh_folder",
    "ShapeNetCore": "geomgen.data.shapenet",
    "R2N2": "geomgen.data.r2n2",
    "collate_samples": "geomgen.data.collate",
    "cache_root": "geomgen.data.cache",
    "FORMAT_VERSION": "geomgen.data.cache",
    "make_contact_sheet": "geomgen.data.preview",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'geomgen.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
