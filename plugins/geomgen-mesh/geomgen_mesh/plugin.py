"""Registers the ``mesh`` representation (Mesh R-CNN-style mesh refinement) through geomgen's public hooks.

Importing this module is cheap: the config imports no torch, and the model code loads in
:func:`build_model`.
"""

from __future__ import annotations

from typing import Any

import geomgen
from geomgen.components import RepresentationSpec
from geomgen_mesh.config import MeshConfig

__all__ = ["build_model", "geomgen_register_representations"]


def build_model(**config: Any) -> Any:
    """``MeshPredictor(**config)`` with :class:`MeshConfig` keys (imported lazily: registering stays cheap)."""
    from geomgen_mesh.model import MeshPredictor

    return MeshPredictor(**config)


@geomgen.hookimpl
def geomgen_register_representations(register: Any) -> None:
    register(RepresentationSpec(
        name="mesh", build=build_model, output="mesh", config=MeshConfig,
        description="Mesh R-CNN-style: ico-sphere or cubified voxels refined by vert_align + GraphConv "
                    "stages (camera frame)"))
