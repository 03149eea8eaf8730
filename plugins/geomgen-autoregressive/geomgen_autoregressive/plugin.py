"""Registers the 'autoregressive' generator through geomgen's public hooks.

Importing this module is cheap: torch and the model code load in :func:`build_model`.
"""

from __future__ import annotations

from typing import Any

import geomgen
from geomgen.components import GeneratorSpec

__all__ = ["build_model", "DEFAULT_CONFIG", "geomgen_register_generators"]

#: Configuration of the shipped pretrained model (``geomgen.get_model("autoregressive")``).
DEFAULT_CONFIG: dict[str, Any] = {
    "resolution": 16,
    "hidden": 32,
    "num_blocks": 4,
    "stem_kernel": 5,
    "block_kernel": 3,
    "act": "relu",
    "position_bias": True,
    "num_classes": 0,
    "categories": [],
}


def build_model(**config: Any) -> Any:
    """Build a :class:`geomgen_autoregressive.model.VoxelPixelCNN` (keyword arguments: its constructor's)."""
    from geomgen_autoregressive.model import VoxelPixelCNN

    return VoxelPixelCNN(**config)


@geomgen.hookimpl
def geomgen_register_generators(register: Any) -> None:
    register(GeneratorSpec(
        name="autoregressive", build=build_model, output="voxels", default_config=dict(DEFAULT_CONFIG),
        description="PixelCNN over 16^3 occupancy (masked 3-D convs, mask A then B, raster order z-y-x): exact "
                    "log-likelihood in nats per shape / bits per voxel, fast ancestral sampling (each step evaluates "
                    "every layer at the current voxel only, from cached receptive fields), optional class "
                    "conditioning"))
