"""Hyper-parameters of the ``vae`` and ``vae-points`` generators: :class:`VoxelVAEConfig`,
:class:`PointVAEConfig`.

Imports no torch, so the registry lists the schemas without loading the models.
"""

from __future__ import annotations

from geomgen.config import GeneratorConfig, param

__all__ = ["VoxelVAEConfig", "PointVAEConfig"]


class VoxelVAEConfig(GeneratorConfig):
    """Hyper-parameters of :class:`geomgen_vae.voxel.VoxelVAE` (``geomgen.get_model("vae", **config)``).

    ``R = resolution = S 2^k`` with ``S = start_resolution``, ``k >= 1``.  The
    defaults have about 0.5 M parameters (2 MB in float32); the shipped
    pretrained model uses ``latent_dim=16, beta=100`` (see the pretrained manifest).
    """

    model_name = "vae"

    resolution: int = param(32, "R, voxels per axis (data grids are downsampled to it by volume fraction)", ge=2)
    latent_dim: int = param(64, "Z, size of the latent vector", ge=1)
    enc_channels: tuple[int, ...] = param((8, 16, 32, 32), "encoder channels; each entry after the first halves "
                                          "the grid", ge=1, min_length=1)
    enc_feat: int = param(128, "F, size of the encoder's feature vector", ge=1)
    dec_channels: tuple[int, ...] | None = param(
        None, "decoder channels of the grids S, 2S, ..., R (k + 1 entries; None: max(8, 32 / 2^(i-1)))", ge=1,
        min_length=1)
    start_resolution: int = param(4, "S, side of the decoder's first grid", ge=1)
    norm: str = param("group", "norm of both networks (per-sample norms keep each ELBO batch-independent)",
                         vocabulary="geomgen.nn.NORM_KINDS")
    embed_dim: int = param(16, "size of the class embedding of a conditional model", ge=1)
    beta: float = param(1.0, "weight of the KL term in the training loss (1: the ELBO)", ge=0.0)

    @property
    def levels(self) -> int:
        """``k``: doublings from the decoder's first grid to ``R``."""
        return self.doubling_levels("resolution", "start_resolution")

    def check(self) -> None:
        super().check()
        R, S = self.resolution, self.start_resolution
        k = self.levels
        if self.dec_channels is not None and len(self.dec_channels) != k + 1:
            raise self.fail("dec_channels", f"must have {k + 1} entries (grids {S}..{R}), "
                            f"got {len(self.dec_channels)}")


class PointVAEConfig(GeneratorConfig):
    """Hyper-parameters of :class:`geomgen_vae.points.PointVAE` (``geomgen.get_model("vae-points", **config)``).

    The chamfer term's scale (about ``1e-3`` for a good fit) is far below a KL in
    nats, hence the small default ``beta``.
    """

    model_name = "vae-points"

    num_points: int = param(1024, "P, points per decoded cloud (and per training cloud)", ge=1)
    latent_dim: int = param(64, "Z, size of the latent vector", ge=1)
    enc_hidden: tuple[int, ...] = param((64, 128, 256), "per-point layer sizes of the PointNet encoder", ge=1,
                                        min_length=1)
    enc_feat: int = param(256, "F, size of the pooled encoder features", ge=1)
    dec_hidden: tuple[int, ...] = param((256, 256), "hidden layer sizes of the decoder MLP", ge=1, min_length=1)
    embed_dim: int = param(16, "size of the class embedding of a conditional model", ge=1)
    beta: float = param(1e-4, "weight of the KL term (nats per shape) against the chamfer term", ge=0.0)
