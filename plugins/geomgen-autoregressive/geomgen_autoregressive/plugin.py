"""Registers the 'autoregressive' generator through geomgen's public hooks.

Importing this module is cheap: the config imports no torch, and the model classes are named by
strings (``build="package.module:Class"``), imported only when a model is built.
"""

from __future__ import annotations

from typing import Any

import geomgen
from geomgen.components import GeneratorSpec
from geomgen_autoregressive.config import AutoregressiveConfig

__all__ = ["geomgen_register_generators"]


@geomgen.hookimpl
def geomgen_register_generators(register: Any) -> None:
    register(GeneratorSpec(
        name="autoregressive", build="geomgen_autoregressive.model:VoxelPixelCNN", output="voxels", config=AutoregressiveConfig,
        description="PixelCNN over 16^3 occupancy (masked 3-D convs, mask A then B, raster order z-y-x): exact "
                    "log-likelihood in nats per shape / bits per voxel, fast ancestral sampling (each step evaluates "
                    "every layer at the current voxel only, from cached receptive fields), optional class "
                    "conditioning"))
