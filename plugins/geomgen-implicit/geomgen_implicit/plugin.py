"""Registers the 'implicit' representation through geomgen's public hooks.

Importing this module is cheap: torch and the model code load in :func:`build_model`.
"""

from __future__ import annotations

from typing import Any

import geomgen
from geomgen.components import RepresentationSpec

__all__ = ["build_model", "DEFAULT_CONFIG", "geomgen_register_representations"]

#: Configuration of the shipped pretrained model (``geomgen.get_model("implicit")``).
DEFAULT_CONFIG: dict[str, Any] = {
    "encoder": "tiny",
    "code_dim": 128,
    "norm": "batch",
    "hidden": 64,
    "num_blocks": 4,
    "conditioning": "cbn",
    "train_points": 1024,
    "mesh_resolution0": 16,
    "mesh_resolution": 64,
    "mesh_bound": 0.55,
    "mesh_level": 0.5,
    "chunk_points": 16384,
    "image_size": 64,
    "fov": 40.0,
}


def build_model(**config: Any) -> Any:
    """Build a :class:`geomgen_implicit.model.OccupancyPredictor` (keyword arguments: its constructor's)."""
    from geomgen_implicit.model import OccupancyPredictor

    return OccupancyPredictor(**config)


@geomgen.hookimpl
def geomgen_register_representations(register: Any) -> None:
    register(RepresentationSpec(
        name="implicit", build=build_model, output="implicit", default_config=dict(DEFAULT_CONFIG),
        description="occupancy network: ResNet code + conditional-batch-norm MLP f(p, c) (object frame, BCE); "
                    "meshes by multi-resolution refinement + marching cubes"))
