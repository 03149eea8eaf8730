"""Registers the 'implicit' representation through geomgen's public hooks.

Importing this module is cheap: the config imports no torch, and the model classes are named by
strings (``build="package.module:Class"``), imported only when a model is built.
"""

from __future__ import annotations

from typing import Any

import geomgen
from geomgen.components import RepresentationSpec
from geomgen_implicit.config import ImplicitConfig

__all__ = ["geomgen_register_representations"]


@geomgen.hookimpl
def geomgen_register_representations(register: Any) -> None:
    register(RepresentationSpec(
        name="implicit", build="geomgen_implicit.model:OccupancyPredictor", output="implicit", config=ImplicitConfig,
        description="occupancy network: ResNet code + conditional-batch-norm MLP f(p, c) (object frame, BCE); "
                    "meshes by multi-resolution refinement + marching cubes"))
