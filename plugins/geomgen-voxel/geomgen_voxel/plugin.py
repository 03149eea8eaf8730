"""Registers the 'voxel' representation through geomgen's public hooks.

Importing this module is cheap: torch and the model code load in :func:`build_model`.
"""

from __future__ import annotations

from typing import Any

import geomgen
from geomgen.components import RepresentationSpec

__all__ = ["build_model", "DEFAULT_CONFIG", "geomgen_register_representations"]

#: Configuration of the shipped pretrained model (``geomgen.get_model("voxel")``).
DEFAULT_CONFIG: dict[str, Any] = {
    "encoder": "tiny",
    "code_dim": 128,
    "norm": "batch",
    "decoder_channels": [32, 32, 16],
    "start_resolution": 4,
    "decoder_resolution": 16,
    "up_mode": "transpose",
    "blocks_per_level": 0,
    "pos_weight": 1.0,
    "mesh_method": "marching-cubes",
    "mesh_level": 0.5,
    "surface_offset": 0.5,
    "image_size": 64,
    "fov": 40.0,
}


def build_model(**config: Any) -> Any:
    """Build a :class:`geomgen_voxel.model.VoxelPredictor` (keyword arguments: its constructor's)."""
    from geomgen_voxel.model import VoxelPredictor

    return VoxelPredictor(**config)


@geomgen.hookimpl
def geomgen_register_representations(register: Any) -> None:
    register(RepresentationSpec(
        name="voxel", build=build_model, output="voxels", default_config=dict(DEFAULT_CONFIG),
        description="ResNet code -> 3-D up-convolutions + voxel shuffle -> 32^3 occupancy (object frame, BCE); "
                    "meshes by marching cubes or cubify"))
