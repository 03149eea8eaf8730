"""Registers the 'depth' representation through geomgen's public hooks.

Importing this module is cheap: the config imports no torch, and the model code loads in
:func:`build_model`.
"""

from __future__ import annotations

from typing import Any

import geomgen
from geomgen.components import RepresentationSpec
from geomgen_depth.config import DepthConfig

__all__ = ["build_model", "geomgen_register_representations"]


def build_model(**config: Any) -> Any:
    """Build a :class:`geomgen_depth.model.DepthPredictor` (keyword arguments: :class:`DepthConfig` keys)."""
    from geomgen_depth.model import DepthPredictor

    return DepthPredictor(**config)


@geomgen.hookimpl
def geomgen_register_representations(register: Any) -> None:
    register(RepresentationSpec(
        name="depth", build=build_model, output="depth", config=DepthConfig,
        description="U-Net depth + mask of the visible surface (camera frame); points by unprojection, "
                    "2.5D mesh by triangulating the pixel grid"))
