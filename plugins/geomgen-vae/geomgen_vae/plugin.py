"""Registers the 'vae' and 'vae-points' generators through geomgen's public hooks.

* ``vae`` - :class:`geomgen_vae.voxel.VoxelVAE`: 3-D convolutional VAE over
  occupancy grids with a Bernoulli decoder; ELBO and IWAE likelihood estimates.
* ``vae-points`` - :class:`geomgen_vae.points.PointVAE`: PointNet encoder, MLP
  decoder, chamfer reconstruction loss; no likelihood.

Importing this module is cheap: the configs import no torch, and the model classes are named by
strings (``build="package.module:Class"``), imported only when a model is built.
"""

from __future__ import annotations

from typing import Any

import geomgen
from geomgen.components import GeneratorSpec
from geomgen_vae.config import PointVAEConfig, VoxelVAEConfig

__all__ = ["geomgen_register_generators"]


@geomgen.hookimpl
def geomgen_register_generators(register: Any) -> None:
    register(GeneratorSpec(
        name="vae", build="geomgen_vae.voxel:VoxelVAE", output="voxels", config=VoxelVAEConfig,
        description="voxel VAE: 3-D conv encoder -> q(z|x) = N(mu, sigma^2) -> 3-D up-conv decoder -> Bernoulli "
                    "occupancy logits; loss = BCE + beta KL per voxel; ELBO and IWAE log-likelihood estimates; "
                    "latent interpolation; optional class conditioning"))
    register(GeneratorSpec(
        name="vae-points", build="geomgen_vae.points:PointVAE", output="pointcloud", config=PointVAEConfig,
        description="point-cloud VAE: PointNet encoder (max pool) -> q(z|x) -> MLP decoder -> (P, 3) points in "
                    "[-0.5, 0.5]^3; loss = chamfer (squared) + beta KL; latent interpolation; optional class "
                    "conditioning; no likelihood (chamfer is not a density)"))
