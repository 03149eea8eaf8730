"""Registers the ``mesh`` representation (Mesh R-CNN-style mesh refinement) through geomgen's public hooks."""

from __future__ import annotations

from typing import Any

import geomgen
from geomgen.components import RepresentationSpec

#: The build config of the shipped pretrained model (see geomgen_mesh.model.MeshPredictor).
DEFAULT_CONFIG: dict[str, Any] = {"encoder": "tiny", "init": "sphere", "ico_level": 3, "stages": 3, "hidden": 64,
                                  "graph_convs": 2, "gt_points": 1024, "loss_points": 1024}


def build_model(**config: Any) -> Any:
    """``MeshPredictor(**config)`` (imported lazily: registering stays cheap)."""
    from geomgen_mesh.model import MeshPredictor

    return MeshPredictor(**config)


@geomgen.hookimpl
def geomgen_register_representations(register: Any) -> None:
    register(RepresentationSpec(
        name="mesh", build=build_model, output="mesh",
        description="Mesh R-CNN-style: ico-sphere or cubified voxels refined by vert_align + GraphConv "
                    "stages (camera frame)",
        default_config=DEFAULT_CONFIG))
