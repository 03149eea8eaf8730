"""Registers the 'gan' and 'gan-points' generators through geomgen's public hooks.

Importing this module is cheap: torch and the model code load in :func:`build_model`.
"""

from __future__ import annotations

from typing import Any

import geomgen
from geomgen.components import GeneratorSpec

__all__ = ["build_model", "build_points_model", "DEFAULT_CONFIG", "POINTS_DEFAULT_CONFIG",
           "geomgen_register_generators"]

#: Configuration of the shipped pretrained model (``geomgen.get_model("gan")``).
DEFAULT_CONFIG: dict[str, Any] = {
    "resolution": 32,
    "latent_dim": 64,
    "gen_channels": None,
    "start_resolution": 4,
    "up_mode": "transpose",
    "gen_norm": "batch",
    "disc_channels": [16, 32, 64, 128],
    "disc_feat": 128,
    "disc_norm": "none",
    "embed_dim": 16,
    "loss": "wgan-gp",
    "gp_weight": None,
    "d_steps": 1,
    "lr_d": None,
    "betas": [0.5, 0.9],
    "num_classes": 0,
    "categories": [],
}


#: Configuration of ``geomgen.get_model("gan-points")``.
POINTS_DEFAULT_CONFIG: dict[str, Any] = {
    "num_points": 1024,
    "latent_dim": 64,
    "gen_hidden": [128, 256],
    "gen_norm": "batch",
    "disc_hidden": [64, 128, 256],
    "disc_feat": 256,
    "embed_dim": 16,
    "loss": "wgan-gp",
    "gp_weight": None,
    "d_steps": 1,
    "lr_d": None,
    "betas": [0.5, 0.9],
    "num_classes": 0,
    "categories": [],
}


def build_model(**config: Any) -> Any:
    """Build a :class:`geomgen_gan.voxel.VoxelGAN` (keyword arguments: its constructor's)."""
    from geomgen_gan.voxel import VoxelGAN

    return VoxelGAN(**config)


def build_points_model(**config: Any) -> Any:
    """Build a :class:`geomgen_gan.points.PointGAN` (keyword arguments: its constructor's)."""
    from geomgen_gan.points import PointGAN

    return PointGAN(**config)


@geomgen.hookimpl
def geomgen_register_generators(register: Any) -> None:
    register(GeneratorSpec(
        name="gan", build=build_model, output="voxels", default_config=dict(DEFAULT_CONFIG),
        description="3D-GAN: z ~ N(0, I) -> 3-D up-convolutions -> sigmoid occupancy; 3-D conv discriminator "
                    "(leaky ReLU, no batch norm); non-saturating, WGAN-GP or hinge loss; optional class "
                    "conditioning (projection discriminator); no likelihood"))
    register(GeneratorSpec(
        name="gan-points", build=build_points_model, output="pointcloud", default_config=dict(POINTS_DEFAULT_CONFIG),
        description="point-cloud GAN: z ~ N(0, I) -> MLP -> (P, 3) points in [-0.5, 0.5]^3; PointNet discriminator "
                    "(leaky ReLU, no norm); non-saturating, WGAN-GP or hinge loss; optional class conditioning; "
                    "no likelihood"))
