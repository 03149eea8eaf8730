"""Registers the 'voxel' representation through geomgen's public hooks.

Importing this module is cheap: the config imports no torch, and the model code loads in
:func:`build_model`.
"""

from __future__ import annotations

from typing import Any

import geomgen
from geomgen.components import RepresentationSpec
from geomgen_voxel.config import VoxelConfig

__all__ = ["build_model", "geomgen_register_representations"]


def build_model(**config: Any) -> Any:
    """Build a :class:`geomgen_voxel.model.VoxelPredictor` (keyword arguments: :class:`VoxelConfig` keys)."""
    from geomgen_voxel.model import VoxelPredictor

    return VoxelPredictor(**config)


@geomgen.hookimpl
def geomgen_register_representations(register: Any) -> None:
    register(RepresentationSpec(
        name="voxel", build=build_model, output="voxels", config=VoxelConfig,
        description="ResNet code -> 3-D up-convolutions + voxel shuffle -> 32^3 occupancy (object frame, BCE); "
                    "meshes by marching cubes or cubify"))
