"""Registers the 'pointcloud' representation through geomgen's public hooks.

Importing this module is cheap: the config imports no torch, and the model code loads in
:func:`build_model`.
"""

from __future__ import annotations

from typing import Any

import geomgen
from geomgen.components import RepresentationSpec
from geomgen_pointcloud.config import PointCloudConfig

__all__ = ["build_model", "geomgen_register_representations"]


def build_model(**config: Any) -> Any:
    """Build a :class:`geomgen_pointcloud.model.PointCloudPredictor` (keyword arguments:
    :class:`PointCloudConfig` keys)."""
    from geomgen_pointcloud.model import PointCloudPredictor

    return PointCloudPredictor(**config)


@geomgen.hookimpl
def geomgen_register_representations(register: Any) -> None:
    register(RepresentationSpec(
        name="pointcloud", build=build_model, output="pointcloud", config=PointCloudConfig,
        description="ResNet code -> folded point set (object frame, chamfer loss); PCA normals, "
                    "watertight mesh by splat + fill + marching cubes"))
