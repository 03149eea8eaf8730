"""Point-cloud GAN (Achlioptas et al. 2018, "raw" r-GAN): :class:`PointGAN`.

Generator: ``z ~ N(0, I)`` (``L`` values; conditional models concatenate a
learned class embedding) -> :class:`~geomgen.nn.MLP` (hidden layers with norm
+ ReLU) -> ``P * 3`` values -> ``0.5 tanh`` -> ``(N, P, 3)`` points in the
object frame's cube ``[-0.5, 0.5]^3``.

Discriminator: :class:`~geomgen.nn.PointNetEncoder` (shared per-point
layers, leaky ReLU, no norm, max pooling: invariant to the order of the
points) -> leaky ReLU features ``phi`` -> ``w . phi + b``; conditional models
add the projection term ``embed(y) . phi``.  Real clouds are random subsets
of ``P`` points of the batch's surface samples
(:func:`~geomgen.generative.batch_points`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from geomgen import checks as V
from geomgen.generative import batch_points
from geomgen.nn import MLP, PointNetEncoder, make_activation

from geomgen_gan.adversarial import AdversarialGenerator
from geomgen_gan.config import PointGANConfig

__all__ = ["PointGAN", "PointGeneratorNet", "PointDiscriminatorNet"]


class PointGeneratorNet(nn.Module):
    """``z (N, L)`` (+ labels ``(N,)``) -> points ``(N, P, 3)`` in ``[-0.5, 0.5]^3``.

    Args:
        latent_dim: ``L``.
        num_points: ``P``.
        hidden: hidden layer sizes of the MLP.
        norm: norm of the hidden layers (``"batch"``, ``"layer"``, ``"none"`` ...).
        num_classes: ``K`` (0: unconditional).
        embed_dim: class embedding size.
    """

    def __init__(self, latent_dim: int, num_points: int, hidden: Sequence[int], norm: str, num_classes: int,
                 embed_dim: int) -> None:
        super().__init__()
        self.num_points = num_points
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes else None
        in_dim = latent_dim + (embed_dim if num_classes else 0)
        self.mlp = MLP(in_dim, num_points * 3, tuple(hidden), act="relu", norm=norm)
        if self.embed is not None:
            nn.init.normal_(self.embed.weight)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``(N, L)`` noise (+ ``(N,)`` labels) -> ``(N, P, 3)`` points."""
        if self.embed is not None:
            z = torch.cat([z, self.embed(labels)], 1)
        return 0.5 * torch.tanh(self.mlp(z)).view(z.shape[0], self.num_points, 3)


class PointDiscriminatorNet(nn.Module):
    """Points ``(N, P, 3)`` (+ labels ``(N,)``) -> scores ``(N,)``.

    Args:
        hidden: per-point layer sizes of the PointNet.
        feat_dim: ``F``, size of the pooled feature vector ``phi``.
        num_classes: ``K`` (0: unconditional; else a projection embedding ``(K, F)``).
    """

    def __init__(self, hidden: Sequence[int], feat_dim: int, num_classes: int) -> None:
        super().__init__()
        self.encoder = PointNetEncoder(3, feat_dim, hidden_dims=tuple(hidden), norm="none", act="leaky_relu",
                                       pool="max")
        self.act = make_activation("leaky_relu")
        self.head = nn.Linear(feat_dim, 1)
        self.project = nn.Embedding(num_classes, feat_dim) if num_classes else None
        if self.project is not None:
            nn.init.normal_(self.project.weight, std=feat_dim ** -0.5)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``(N, P, 3)`` points (+ ``(N,)`` labels) -> ``(N,)`` scores."""
        phi = self.act(self.encoder(x))
        out = self.head(phi)[:, 0]
        if self.project is not None:
            out = out + (self.project(labels) * phi).sum(1)
        return out


class PointGAN(AdversarialGenerator):
    """GAN over point clouds of ``P`` points (module docstring).

    Args:
        config: a :class:`~geomgen_gan.config.PointGANConfig` (or a mapping of
            its keys); ``None``: the defaults.
        **overrides: :class:`~geomgen_gan.config.PointGANConfig` keys replacing
            those of ``config``.

    ``self.config`` is the plain dict of the validated config (saved with the
    weights).

    Shapes: ``forward(z (N, L), labels (N,) | None) -> (N, P, 3)``.

    Raises:
        InvalidInputError: a bad config key or value (named in the message).
    """

    output = "pointcloud"
    likelihood = None

    def __init__(self, config: PointGANConfig | Mapping[str, Any] | None = None, /, **overrides: Any) -> None:
        c = PointGANConfig.resolve(config, **overrides)
        super().__init__(c.to_dict())
        self.generator_net = PointGeneratorNet(c.latent_dim, c.num_points, c.gen_hidden, c.gen_norm,
                                               self.num_classes, c.embed_dim)
        self.discriminator_net = PointDiscriminatorNet(c.disc_hidden, c.disc_feat, self.num_classes)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Points ``(N, P, 3)`` of noise ``z (N, L)`` (and ``(N,)`` labels for a conditional model).

        Raises:
            InvalidInputError: ``z`` not ``(N, L)`` floats; missing or bad labels.
        """
        fn = f"{type(self).__name__}.forward"
        V.check_tensor(z, "z", ndim=2, shape_desc="(N, L)", floating=True, fn=fn)
        if z.shape[1] != self.latent_dim:
            raise V.fail("z", f"must have L={self.latent_dim} columns, got {z.shape[1]}", fn)
        return self.generator_net(z, self.check_labels(labels, z.shape[0], fn))

    # ------------------------------------------------------------------ adversarial hooks
    def real_input(self, batch: Mapping[str, Any], generator: torch.Generator | None = None) -> torch.Tensor:
        """``P`` random surface points of each shape of the batch: ``(B, P, 3)``."""
        return batch_points(batch, self.num_points, generator).to(self.device).float()

    def fake_input(self, n: int, labels: torch.Tensor | None,
                   generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` generated clouds ``(n, P, 3)`` (noise from ``generator`` or torch's global RNG)."""
        return self.generator_net(self.noise(n, generator), labels)

    def critic(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``(N,)`` discriminator scores of ``(N, P, 3)`` clouds."""
        return self.discriminator_net(x, labels)

    # ------------------------------------------------------------------ sampling
    def generate(self, n: int, labels: torch.Tensor | None, generator: torch.Generator,
                 temperature: float = 1.0, **options: Any) -> torch.Tensor:
        """``(n, P, 3)`` points from ``z ~ N(0, temperature^2 I)`` (see
        :meth:`geomgen_gan.voxel.VoxelGAN.generate`)."""
        fn = f"{type(self).__name__}.sample"
        if options:
            raise V.fail(sorted(options)[0], "is not a sampling option of this model (options: temperature)", fn)
        temperature = V.check_float(temperature, "temperature", positive=True, fn=fn)
        return self.generator_net(self.noise(n, generator) * temperature, labels)
