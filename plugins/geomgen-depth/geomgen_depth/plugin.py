"""Registers the 'depth' representation through geomgen's public hooks.

Importing this module is cheap: the config imports no torch, and the model classes are named by
strings (``build="package.module:Class"``), imported only when a model is built.
"""

from __future__ import annotations

from typing import Any

import geomgen
from geomgen.components import RepresentationSpec
from geomgen_depth.config import DepthConfig

__all__ = ["geomgen_register_representations"]


@geomgen.hookimpl
def geomgen_register_representations(register: Any) -> None:
    register(RepresentationSpec(
        name="depth", build="geomgen_depth.model:DepthPredictor", output="depth", config=DepthConfig,
        description="U-Net depth + mask of the visible surface (camera frame); points by unprojection, "
                    "2.5D mesh by triangulating the pixel grid"))
