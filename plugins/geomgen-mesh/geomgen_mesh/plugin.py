"""Registers the ``mesh`` representation (Mesh R-CNN-style mesh refinement) through geomgen's public hooks.

Importing this module is cheap: the config imports no torch, and the model classes are named by
strings (``build="package.module:Class"``), imported only when a model is built.
"""

from __future__ import annotations

from typing import Any

import geomgen
from geomgen.components import RepresentationSpec
from geomgen_mesh.config import MeshConfig

__all__ = ["geomgen_register_representations"]


@geomgen.hookimpl
def geomgen_register_representations(register: Any) -> None:
    register(RepresentationSpec(
        name="mesh", build="geomgen_mesh.model:MeshPredictor", output="mesh", config=MeshConfig,
        description="Mesh R-CNN-style: ico-sphere or cubified voxels refined by vert_align + GraphConv "
                    "stages (camera frame)"))
