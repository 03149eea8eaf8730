"""Registers the 'vae' and 'vae-points' generators through geomgen's public hooks.

* ``vae`` - :class:`geomgen_vae.voxel.VoxelVAE`: 3-D convolutional VAE over
  occupancy grids with a Bernoulli decoder; ELBO and IWAE likelihood estimates.
* ``vae-points`` - :class:`geomgen_vae.points.PointVAE`: PointNet encoder, MLP
  decoder, chamfer reconstruction loss; no likelihood.

Importing this module is cheap: torch and the model code load in :func:`build_model`
/ :func:`build_points_model`.
"""

from __future__ import annotations

from typing import Any

import geomgen
from geomgen.components import GeneratorSpec

__all__ = ["build_model", "build_points_model", "DEFAULT_CONFIG", "POINTS_DEFAULT_CONFIG",
           "geomgen_register_generators"]

#: Configuration of ``geomgen.get_model("vae")`` (about 0.5 M parameters, 2 MB in float32).
DEFAULT_CONFIG: dict[str, Any] = {
    "resolution": 32,
    "latent_dim": 64,
    "enc_channels": [8, 16, 32, 32],
    "enc_feat": 128,
    "dec_channels": None,
    "start_resolution": 4,
    "norm": "group",
    "embed_dim": 16,
    "beta": 1.0,
    "num_classes": 0,
    "categories": [],
}

#: Configuration of ``geomgen.get_model("vae-points")``.
POINTS_DEFAULT_CONFIG: dict[str, Any] = {
    "num_points": 1024,
    "latent_dim": 64,
    "enc_hidden": [64, 128, 256],
    "enc_feat": 256,
    "dec_hidden": [256, 256],
    "embed_dim": 16,
    "beta": 1e-4,
    "num_classes": 0,
    "categories": [],
}


def build_model(**config: Any) -> Any:
    """Build a :class:`geomgen_vae.voxel.VoxelVAE` (keyword arguments: its constructor's)."""
    from geomgen_vae.voxel import VoxelVAE

    return VoxelVAE(**config)


def build_points_model(**config: Any) -> Any:
    """Build a :class:`geomgen_vae.points.PointVAE` (keyword arguments: its constructor's)."""
    from geomgen_vae.points import PointVAE

    return PointVAE(**config)


@geomgen.hookimpl
def geomgen_register_generators(register: Any) -> None:
    register(GeneratorSpec(
        name="vae", build=build_model, output="voxels", default_config=dict(DEFAULT_CONFIG),
        description="voxel VAE: 3-D conv encoder -> q(z|x) = N(mu, sigma^2) -> 3-D up-conv decoder -> Bernoulli "
                    "occupancy logits; loss = BCE + beta KL per voxel; ELBO and IWAE log-likelihood estimates; "
                    "latent interpolation; optional class conditioning"))
    register(GeneratorSpec(
        name="vae-points", build=build_points_model, output="pointcloud",
        default_config=dict(POINTS_DEFAULT_CONFIG),
        description="point-cloud VAE: PointNet encoder (max pool) -> q(z|x) -> MLP decoder -> (P, 3) points in "
                    "[-0.5, 0.5]^3; loss = chamfer (squared) + beta KL; latent interpolation; optional class "
                    "conditioning; no likelihood (chamfer is not a density)"))
