"""Registers the 'gan' and 'gan-points' generators through geomgen's public hooks.

Importing this module is cheap: the configs import no torch, and the model classes are named by
strings (``build="package.module:Class"``), imported only when a model is built.
"""

from __future__ import annotations

from typing import Any

import geomgen
from geomgen.components import GeneratorSpec
from geomgen_gan.config import PointGANConfig, VoxelGANConfig

__all__ = ["geomgen_register_generators"]


@geomgen.hookimpl
def geomgen_register_generators(register: Any) -> None:
    register(GeneratorSpec(
        name="gan", build="geomgen_gan.voxel:VoxelGAN", output="voxels", config=VoxelGANConfig,
        description="3D-GAN: z ~ N(0, I) -> 3-D up-convolutions -> sigmoid occupancy; 3-D conv discriminator "
                    "(leaky ReLU, no batch norm); non-saturating, WGAN-GP or hinge loss; optional class "
                    "conditioning (projection discriminator); no likelihood"))
    register(GeneratorSpec(
        name="gan-points", build="geomgen_gan.points:PointGAN", output="pointcloud", config=PointGANConfig,
        description="point-cloud GAN: z ~ N(0, I) -> MLP -> (P, 3) points in [-0.5, 0.5]^3; PointNet discriminator "
                    "(leaky ReLU, no norm); non-saturating, WGAN-GP or hinge loss; optional class conditioning; "
                    "no likelihood"))
