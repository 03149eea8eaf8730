"""Registers the 'depth' representation through geomgen's public hooks.

Importing this module is cheap: torch and the model code load in :func:`build_model`.
"""

from __future__ import annotations

from typing import Any

import geomgen
from geomgen.components import RepresentationSpec

__all__ = ["build_model", "DEFAULT_CONFIG", "geomgen_register_representations"]

#: Configuration of the shipped pretrained model (``geomgen.get_model("depth")``).
DEFAULT_CONFIG: dict[str, Any] = {
    "encoder": "tiny",
    "decoder_widths": None,
    "decoder_depth": 1,
    "upsample": "bilinear",
    "norm": "batch",
    "si_lambda": 0.5,
    "l1_weight": 0.5,
    "mask_weight": 1.0,
    "mask_threshold": 0.5,
    "rel_threshold": 0.1,
    "points_from": "mesh",
    "image_size": 64,
    "fov": 40.0,
}


def build_model(**config: Any) -> Any:
    """Build a :class:`geomgen_depth.model.DepthPredictor` (keyword arguments: its constructor's)."""
    from geomgen_depth.model import DepthPredictor

    return DepthPredictor(**config)


@geomgen.hookimpl
def geomgen_register_representations(register: Any) -> None:
    register(RepresentationSpec(
        name="depth", build=build_model, output="depth", default_config=dict(DEFAULT_CONFIG),
        description="U-Net depth + mask of the visible surface (camera frame); points by unprojection, "
                    "2.5D mesh by triangulating the pixel grid"))
