"""Hyper-parameters of the ``gan`` and ``gan-points`` generators: :class:`VoxelGANConfig`,
:class:`PointGANConfig` and their shared training options, :class:`AdversarialConfig`.

Imports no torch, so the registry lists the schemas without loading the models.
"""

from __future__ import annotations

from geomgen.config import GeneratorConfig, param

__all__ = ["AdversarialConfig", "VoxelGANConfig", "PointGANConfig", "LOSSES", "UP_MODES", "POINT_GEN_NORMS"]

#: Adversarial losses understood by :func:`geomgen_gan.losses.discriminator_loss` / ``generator_loss``.
LOSSES: tuple[str, ...] = ("nonsaturating", "wgan-gp", "hinge")
#: ``up_mode`` values of the voxel generator (:class:`geomgen.nn.Up3d` modes).
UP_MODES: tuple[str, ...] = ("transpose", "trilinear", "nearest")
#: ``gen_norm`` values of the point generator's MLP.
POINT_GEN_NORMS: tuple[str, ...] = ("batch", "layer", "group", "none")


class AdversarialConfig(GeneratorConfig):
    """The adversarial training options both GANs share (read by
    :class:`geomgen_gan.adversarial.AdversarialGenerator`)."""

    loss: str = param("wgan-gp", "adversarial loss", choices=LOSSES)
    gp_weight: float | None = param(None, "gradient-penalty weight (None: 10 for 'wgan-gp', else 0)", ge=0.0)
    d_steps: int = param(1, "discriminator updates per generator update", ge=1)
    lr_d: float | None = param(None, "discriminator learning rate (None: the TrainConfig's lr)", gt=0.0)
    betas: tuple[float, ...] | None = param((0.5, 0.9), "AdamW betas of both optimizers (None: the TrainConfig's)",
                                            ge=0.0, lt=1.0, length=2)


class VoxelGANConfig(AdversarialConfig):
    """Hyper-parameters of :class:`geomgen_gan.voxel.VoxelGAN` (``geomgen.get_model("gan", **config)``);
    the defaults are the shipped model's.

    ``R = resolution = S 2^k`` with ``S = start_resolution``, ``k >= 1``.
    """

    model_name = "gan"

    resolution: int = param(32, "R, voxels per axis (data grids are downsampled to it by volume fraction)", ge=2)
    latent_dim: int = param(64, "L, size of the noise z ~ N(0, I)", ge=1)
    gen_channels: tuple[int, ...] | None = param(
        None, "generator channels of the grids S, 2S, ..., R/2 (k entries; None: max(8, 64 / 2^i))", ge=1,
        min_length=1)
    start_resolution: int = param(4, "S, side of the generator's first grid", ge=1)
    up_mode: str = param("transpose", "up-sampling of the generator's hidden grids", choices=UP_MODES)
    gen_norm: str = param("batch", "generator norm ('batch' as in 3D-GAN, or a per-sample one)",
                         vocabulary="geomgen.nn.NORM_KINDS")
    disc_channels: tuple[int, ...] = param((16, 32, 64, 128), "discriminator channels; each stride-2 layer halves "
                                           "the grid (rounding up)", ge=1, min_length=1)
    disc_feat: int = param(128, "F, discriminator feature size", ge=1)
    disc_norm: str = param("none", "discriminator norm, per-sample only (not 'batch')",
                          vocabulary="geomgen.nn.NORM_KINDS")
    embed_dim: int = param(16, "class embedding size of a conditional generator", ge=1)

    @property
    def levels(self) -> int:
        """``k``: doublings from the generator's first grid to ``R``."""
        return self.doubling_levels("resolution", "start_resolution")

    def check(self) -> None:
        super().check()
        R, S = self.resolution, self.start_resolution
        k = self.levels
        if self.gen_channels is not None and len(self.gen_channels) != k:
            raise self.fail("gen_channels", f"must have {k} entries (grids {S}..{R // 2}), "
                            f"got {len(self.gen_channels)}")


class PointGANConfig(AdversarialConfig):
    """Hyper-parameters of :class:`geomgen_gan.points.PointGAN` (``geomgen.get_model("gan-points", **config)``)."""

    model_name = "gan-points"

    num_points: int = param(1024, "P, points per generated cloud", ge=1)
    latent_dim: int = param(64, "L, size of the noise z ~ N(0, I)", ge=1)
    gen_hidden: tuple[int, ...] = param((128, 256), "hidden layer sizes of the generator MLP", ge=1, min_length=1)
    gen_norm: str = param("batch", "norm of the generator's hidden layers", choices=POINT_GEN_NORMS)
    disc_hidden: tuple[int, ...] = param((64, 128, 256), "per-point layer sizes of the PointNet discriminator",
                                         ge=1, min_length=1)
    disc_feat: int = param(256, "F, discriminator feature size", ge=1)
    embed_dim: int = param(16, "class embedding size of a conditional generator", ge=1)
