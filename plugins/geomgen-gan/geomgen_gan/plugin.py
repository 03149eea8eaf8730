"""Registers the 'gan' and 'gan-points' generators through geomgen's public hooks.

Importing this module is cheap: the configs import no torch, and the model code loads in
:func:`build_model` / :func:`build_points_model`.
"""

from __future__ import annotations

from typing import Any

import geomgen
from geomgen.components import GeneratorSpec
from geomgen_gan.config import PointGANConfig, VoxelGANConfig

__all__ = ["build_model", "build_points_model", "geomgen_register_generators"]


def build_model(**config: Any) -> Any:
    """Build a :class:`geomgen_gan.voxel.VoxelGAN` (keyword arguments: :class:`VoxelGANConfig` keys)."""
    from geomgen_gan.voxel import VoxelGAN

    return VoxelGAN(**config)


def build_points_model(**config: Any) -> Any:
    """Build a :class:`geomgen_gan.points.PointGAN` (keyword arguments: :class:`PointGANConfig` keys)."""
    from geomgen_gan.points import PointGAN

    return PointGAN(**config)


@geomgen.hookimpl
def geomgen_register_generators(register: Any) -> None:
    register(GeneratorSpec(
        name="gan", build=build_model, output="voxels", config=VoxelGANConfig,
        description="3D-GAN: z ~ N(0, I) -> 3-D up-convolutions -> sigmoid occupancy; 3-D conv discriminator "
                    "(leaky ReLU, no batch norm); non-saturating, WGAN-GP or hinge loss; optional class "
                    "conditioning (projection discriminator); no likelihood"))
    register(GeneratorSpec(
        name="gan-points", build=build_points_model, output="pointcloud", config=PointGANConfig,
        description="point-cloud GAN: z ~ N(0, I) -> MLP -> (P, 3) points in [-0.5, 0.5]^3; PointNet discriminator "
                    "(leaky ReLU, no norm); non-saturating, WGAN-GP or hinge loss; optional class conditioning; "
                    "no likelihood"))
