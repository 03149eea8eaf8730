"""Registers the 'autoregressive' generator through geomgen's public hooks.

Importing this module is cheap: the config imports no torch, and the model code loads in
:func:`build_model`.
"""

from __future__ import annotations

from typing import Any

import geomgen
from geomgen.components import GeneratorSpec
from geomgen_autoregressive.config import AutoregressiveConfig

__all__ = ["build_model", "geomgen_register_generators"]


def build_model(**config: Any) -> Any:
    """Build a :class:`geomgen_autoregressive.model.VoxelPixelCNN` (keyword arguments:
    :class:`AutoregressiveConfig` keys)."""
    from geomgen_autoregressive.model import VoxelPixelCNN

    return VoxelPixelCNN(**config)


@geomgen.hookimpl
def geomgen_register_generators(register: Any) -> None:
    register(GeneratorSpec(
        name="autoregressive", build=build_model, output="voxels", config=AutoregressiveConfig,
        description="PixelCNN over 16^3 occupancy (masked 3-D convs, mask A then B, raster order z-y-x): exact "
                    "log-likelihood in nats per shape / bits per voxel, fast ancestral sampling (each step evaluates "
                    "every layer at the current voxel only, from cached receptive fields), optional class "
                    "conditioning"))
