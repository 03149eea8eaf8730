"""3D-GAN-style voxel generator (Wu et al. 2016): :class:`VoxelGAN`.

Generator (:class:`VoxelGeneratorNet`): ``z ~ N(0, I)`` (``L`` values;
conditional models concatenate a learned class embedding) -> linear layer to
an ``S^3`` grid -> 3-D transposed convolutions (kernel 4, stride 2) with norm
+ ReLU -> a last transposed convolution to one channel -> sigmoid occupancy
``(N, 1, R, R, R)``.

Discriminator (:class:`VoxelDiscriminatorNet`): the occupancy mapped to
``[-1, 1]`` -> 3-D stride-2 convolutions with leaky ReLU (no batch norm, so
the WGAN-GP penalty stays per-sample) -> the last grid flattened -> leaky ReLU
features ``phi`` -> ``w . phi + b``; conditional models add the projection
term ``embed(y) . phi`` (Miyato & Koyama 2018).

Samples are occupancy probabilities in ``[0, 1]`` (``.occupancy(0.5)``
binarises); the generator's batch norm uses its running statistics when
sampling, so each sample only depends on its own noise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from geomgen import checks as V
from geomgen.generative import batch_voxels
from geomgen.nn import NORM_KINDS, Down3d, Up3d, init_weights, make_activation, make_norm

from geomgen_gan.adversarial import AdversarialGenerator
from geomgen_gan.config import VoxelGANConfig

__all__ = ["VoxelGAN", "VoxelGeneratorNet", "VoxelDiscriminatorNet"]


class VoxelGeneratorNet(nn.Module):
    """``z (N, L)`` (+ labels ``(N,)``) -> occupancy logits ``(N, 1, R, R, R)``.

    ``Linear -> (N, C_0, S, S, S) -> norm, ReLU -> Up3d(C_0 -> C_1) -> ... ->
    (N, C_{k-1}, R/2, R/2, R/2) -> ConvTranspose3d(k=4, s=2) -> (N, 1, R, R, R)``
    (3D-GAN's all-transposed-convolution generator).

    Args:
        latent_dim: ``L``.
        channels: ``(C_0, ..., C_{k-1})``, channels of the grids ``S, 2S, ..., R/2``.
        start_resolution: ``S``.
        up_mode: :class:`~geomgen.nn.Up3d` mode of the hidden up-samplings.
        norm: normalisation of the hidden grids.
        num_classes: ``K`` (0: unconditional).
        embed_dim: size of the class
            embedding concatenated to ``z``.
    """

    def __init__(self, latent_dim: int, channels: Sequence[int], start_resolution: int, up_mode: str, norm: str,
                 num_classes: int, embed_dim: int) -> None:
        super().__init__()
        self.latent_dim, self.channels, self.start_resolution = latent_dim, tuple(channels), start_resolution
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes else None
        in_dim = latent_dim + (embed_dim if num_classes else 0)
        c0, s = self.channels[0], start_resolution
        self.fc = nn.Linear(in_dim, c0 * s ** 3, bias=norm == "none")
        self.fc_norm = make_norm(norm, c0, dim=3)
        self.act = make_activation("relu")
        self.ups = nn.Sequential(*[Up3d(a, b, mode=up_mode, norm=norm, act="relu")
                                   for a, b in zip(self.channels[:-1], self.channels[1:])])
        self.head = nn.ConvTranspose3d(self.channels[-1], 1, 4, 2, 1)
        init_weights(self, "kaiming", nonlinearity="relu")
        if self.embed is not None:
            nn.init.normal_(self.embed.weight)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``(N, L)`` noise (+ ``(N,)`` labels) -> ``(N, 1, R, R, R)`` logits."""
        if self.embed is not None:
            z = torch.cat([z, self.embed(labels)], 1)
        s = self.start_resolution
        x = self.fc(z).view(z.shape[0], self.channels[0], s, s, s)
        return self.head(self.ups(self.act(self.fc_norm(x))))


class VoxelDiscriminatorNet(nn.Module):
    """Occupancy ``(N, 1, R, R, R)`` in ``[0, 1]`` (+ labels ``(N,)``) -> scores ``(N,)``.

    ``2 x - 1 -> Down3d(1 -> D_0) -> ... -> Down3d(D_{m-2} -> D_{m-1})`` (3x3x3
    stride-2 convolutions, leaky ReLU 0.2) ``-> flatten -> Linear -> leaky ReLU
    = phi (N, F) -> w . phi + b [+ embed(y) . phi]``.

    Args:
        resolution: ``R``.
        channels: ``(D_0, ..., D_{m-1})``; each layer halves the grid (rounding up).
        feat_dim: ``F``, size of the feature vector ``phi``.
        norm: ``"none"``, ``"layer"``, ``"group"`` or ``"instance"`` (per-sample norms only).
        num_classes: ``K`` (0: unconditional; else a projection embedding ``(K, F)``).
    """

    def __init__(self, resolution: int, channels: Sequence[int], feat_dim: int, norm: str, num_classes: int) -> None:
        super().__init__()
        chans = (1, *channels)
        self.body = nn.Sequential(*[Down3d(a, b, mode="conv", norm=norm, act="leaky_relu")
                                    for a, b in zip(chans[:-1], chans[1:])])
        side = resolution
        for _ in channels:
            side = -(-side // 2)
        self.fc = nn.Linear(chans[-1] * side ** 3, feat_dim)
        self.act = make_activation("leaky_relu")
        self.head = nn.Linear(feat_dim, 1)
        init_weights(self, "kaiming", nonlinearity="leaky_relu", a=0.2)
        self.project = nn.Embedding(num_classes, feat_dim) if num_classes else None
        if self.project is not None:
            nn.init.normal_(self.project.weight, std=feat_dim ** -0.5)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``(N, 1, R, R, R)`` occupancies (+ ``(N,)`` labels) -> ``(N,)`` scores."""
        phi = self.act(self.fc(self.body(2.0 * x - 1.0).flatten(1)))
        out = self.head(phi)[:, 0]
        if self.project is not None:
            out = out + (self.project(labels) * phi).sum(1)
        return out


class VoxelGAN(AdversarialGenerator):
    """GAN over ``R^3`` occupancy grids (module docstring).

    Args:
        config: a :class:`~geomgen_gan.config.VoxelGANConfig` (or a mapping of
            its keys); ``None``: the defaults.
        **overrides: :class:`~geomgen_gan.config.VoxelGANConfig` keys replacing
            those of ``config``.

    ``self.config`` is the plain dict of the validated config (saved with the
    weights).

    Shapes: ``forward(z (N, L), labels (N,) | None) -> (N, 1, R, R, R)``
    occupancy probabilities.

    Raises:
        InvalidInputError: a bad config key or value (named in the message).
    """

    output = "voxels"
    likelihood = None

    def __init__(self, config: VoxelGANConfig | Mapping[str, Any] | None = None, /, **overrides: Any) -> None:
        c = VoxelGANConfig.resolve(config, **overrides)
        c.check_choice("gen_norm", NORM_KINDS)
        c.check_choice("disc_norm", tuple(k for k in NORM_KINDS if k != "batch"))
        super().__init__(c.to_dict())
        self.gen_channels: list[int] = list(c.gen_channels) if c.gen_channels is not None else [
            max(8, 64 >> i) for i in range(c.levels)]
        self.generator_net = VoxelGeneratorNet(c.latent_dim, self.gen_channels, c.start_resolution, c.up_mode,
                                               c.gen_norm, self.num_classes, c.embed_dim)
        self.discriminator_net = VoxelDiscriminatorNet(c.resolution, c.disc_channels, c.disc_feat, c.disc_norm,
                                                       self.num_classes)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Occupancy probabilities ``(N, 1, R, R, R)`` of noise ``z (N, L)``
        (and ``(N,)`` labels for a conditional model).

        Raises:
            InvalidInputError: ``z`` not ``(N, L)`` floats; missing or bad labels.
        """
        fn = f"{type(self).__name__}.forward"
        V.check_tensor(z, "z", ndim=2, shape_desc="(N, L)", floating=True, fn=fn)
        if z.shape[1] != self.latent_dim:
            raise V.fail("z", f"must have L={self.latent_dim} columns, got {z.shape[1]}", fn)
        labels = self.check_labels(labels, z.shape[0], fn)
        return torch.sigmoid(self.generator_net(z, labels))

    # ------------------------------------------------------------------ adversarial hooks
    def real_input(self, batch: Mapping[str, Any], generator: torch.Generator | None = None) -> torch.Tensor:
        """The batch's ``voxels`` at ``R``: ``(B, 1, R, R, R)`` {0, 1} floats."""
        return batch_voxels(batch, self.resolution).to(self.device)

    def fake_input(self, n: int, labels: torch.Tensor | None,
                   generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` generated ``(n, 1, R, R, R)`` occupancies (noise from ``generator``
        or torch's global RNG)."""
        z = self.noise(n, generator)
        return torch.sigmoid(self.generator_net(z, labels))

    def critic(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``(N,)`` discriminator scores of ``(N, 1, R, R, R)`` occupancies."""
        return self.discriminator_net(x, labels)

    # ------------------------------------------------------------------ sampling
    def generate(self, n: int, labels: torch.Tensor | None, generator: torch.Generator,
                 temperature: float = 1.0, **options: Any) -> torch.Tensor:
        """``(n, R, R, R)`` occupancy probabilities from ``z ~ N(0, temperature^2 I)``.

        Args:
            n: number of shapes.
            labels: ``(n,)`` labels (conditional models) or None.
            generator: source of the noise.
            temperature: standard deviation of the noise (``> 0``; below 1
                trades diversity for typicality).

        Raises:
            InvalidInputError: a bad ``temperature`` or an unknown option.
        """
        fn = f"{type(self).__name__}.sample"
        if options:
            raise V.fail(sorted(options)[0], "is not a sampling option of this model (options: temperature)", fn)
        temperature = V.check_float(temperature, "temperature", positive=True, fn=fn)
        z = self.noise(n, generator) * temperature
        return torch.sigmoid(self.generator_net(z, labels))[:, 0]
