"""Registers the 'pointcloud' representation through geomgen's public hooks.

Importing this module is cheap: the config imports no torch, and the model classes are named by
strings (``build="package.module:Class"``), imported only when a model is built.
"""

from __future__ import annotations

from typing import Any

import geomgen
from geomgen.components import RepresentationSpec
from geomgen_pointcloud.config import PointCloudConfig

__all__ = ["geomgen_register_representations"]


@geomgen.hookimpl
def geomgen_register_representations(register: Any) -> None:
    register(RepresentationSpec(
        name="pointcloud", build="geomgen_pointcloud.model:PointCloudPredictor", output="pointcloud", config=PointCloudConfig,
        description="ResNet code -> folded point set (object frame, chamfer loss); PCA normals, "
                    "watertight mesh by splat + fill + marching cubes"))
