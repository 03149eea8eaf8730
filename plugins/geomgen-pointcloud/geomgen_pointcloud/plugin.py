"""Registers the 'pointcloud' representation through geomgen's public hooks.

Importing this module is cheap: torch and the model code load in :func:`build_model`.
"""

from __future__ import annotations

from typing import Any

import geomgen
from geomgen.components import RepresentationSpec

__all__ = ["build_model", "DEFAULT_CONFIG", "geomgen_register_representations"]

#: Configuration of the shipped pretrained model (``geomgen.get_model("pointcloud")``).
DEFAULT_CONFIG: dict[str, Any] = {
    "encoder": "tiny",
    "code_dim": 256,
    "norm": "batch",
    "decoder": "folding",
    "num_points": 1024,
    "num_patches": 8,
    "hidden": 128,
    "layers": 2,
    "normal_k": 16,
    "mesh_points": 30000,
    "mesh_resolution": 48,
    "mesh_level": 0.75,
    "image_size": 64,
    "fov": 40.0,
}


def build_model(**config: Any) -> Any:
    """Build a :class:`geomgen_pointcloud.model.PointCloudPredictor` (keyword arguments: its constructor's)."""
    from geomgen_pointcloud.model import PointCloudPredictor

    return PointCloudPredictor(**config)


@geomgen.hookimpl
def geomgen_register_representations(register: Any) -> None:
    register(RepresentationSpec(
        name="pointcloud", build=build_model, output="pointcloud", default_config=dict(DEFAULT_CONFIG),
        description="ResNet code -> folded point set (object frame, chamfer loss); PCA normals, "
                    "watertight mesh by splat + fill + marching cubes"))
