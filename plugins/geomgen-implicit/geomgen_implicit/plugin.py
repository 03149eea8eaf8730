"""Registers the 'implicit' representation through geomgen's public hooks.

Importing this module is cheap: the config imports no torch, and the model code loads in
:func:`build_model`.
"""

from __future__ import annotations

from typing import Any

import geomgen
from geomgen.components import RepresentationSpec
from geomgen_implicit.config import ImplicitConfig

__all__ = ["build_model", "geomgen_register_representations"]


def build_model(**config: Any) -> Any:
    """Build a :class:`geomgen_implicit.model.OccupancyPredictor` (keyword arguments: :class:`ImplicitConfig` keys)."""
    from geomgen_implicit.model import OccupancyPredictor

    return OccupancyPredictor(**config)


@geomgen.hookimpl
def geomgen_register_representations(register: Any) -> None:
    register(RepresentationSpec(
        name="implicit", build=build_model, output="implicit", config=ImplicitConfig,
        description="occupancy network: ResNet code + conditional-batch-norm MLP f(p, c) (object frame, BCE); "
                    "meshes by multi-resolution refinement + marching cubes"))
