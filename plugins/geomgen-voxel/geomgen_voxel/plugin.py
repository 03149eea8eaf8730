"""Registers the 'voxel' representation through geomgen's public hooks.

Importing this module is cheap: the config imports no torch, and the model classes are named by
strings (``build="package.module:Class"``), imported only when a model is built.
"""

from __future__ import annotations

from typing import Any

import geomgen
from geomgen.components import RepresentationSpec
from geomgen_voxel.config import VoxelConfig

__all__ = ["geomgen_register_representations"]


@geomgen.hookimpl
def geomgen_register_representations(register: Any) -> None:
    register(RepresentationSpec(
        name="voxel", build="geomgen_voxel.model:VoxelPredictor", output="voxels", config=VoxelConfig,
        description="ResNet code -> 3-D up-convolutions + voxel shuffle -> 32^3 occupancy (object frame, BCE); "
                    "meshes by marching cubes or cubify"))
