"""Point-cloud variational auto-encoder (Achlioptas et al. 2018 with a VAE latent): :class:`PointVAE`.

Encoder ``q(z | x)``: :class:`~geomgen.nn.PointNetEncoder` (shared per-point
layers, ReLU, max pooling: invariant to the order and number of the points)
-> ReLU features ``(N, F)`` [+ the class embedding] -> linear -> ``(mu,
logvar)``, each ``(N, Z)``.

Decoder: ``z`` [+ the class embedding] -> :class:`~geomgen.nn.MLP` -> ``P * 3``
values -> ``0.5 tanh`` -> ``(N, P, 3)`` points in the object frame's cube
``[-0.5, 0.5]^3``.

Loss: ``chamfer(decode(z), x) + beta KL(q || N(0, I))`` with one
reparameterised ``z``.  The chamfer term is :func:`geomgen.losses.chamfer_distance`'s
convention: **squared** Euclidean distances to the nearest neighbour, averaged
over each cloud's points, summed over both directions (in squared object-frame
units), then averaged over the batch.  Its scale (``~1e-3`` for a good fit) is
far below a KL in nats, hence the small default ``beta = 1e-4``.

There is no likelihood: the chamfer distance is not the log-density of any
normalised distribution over point clouds, so :meth:`PointVAE.elbo` and
:meth:`PointVAE.log_prob` raise
:class:`~geomgen.generative.LikelihoodUnavailableError`; compare samples
with :func:`geomgen.metrics.generative_metrics`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from geomgen import checks as V
from geomgen.errors import InvalidInputError
from geomgen.generative import LikelihoodUnavailableError, batch_points
from geomgen.losses import chamfer_distance
from geomgen.losses.kl import gaussian_kl
from geomgen.nn import MLP, PointNetEncoder, make_activation

from geomgen_vae.common import LOGVAR_RANGE, VAEGenerator
from geomgen_vae.config import PointVAEConfig

__all__ = ["PointVAE", "PointEncoderNet", "PointDecoderNet"]


class PointEncoderNet(nn.Module):
    """Points ``(N, P', 3)`` (+ labels ``(N,)``) -> ``(mu, logvar)``, each ``(N, Z)``.

    Args:
        latent_dim: ``Z``.
        hidden: per-point layer sizes of the PointNet.
        feat_dim: ``F``, size of the pooled feature vector.
        num_classes: ``K`` (0: unconditional).
        embed_dim: size of the class
            embedding concatenated to the features.
    """

    def __init__(self, latent_dim: int, hidden: Sequence[int], feat_dim: int, num_classes: int,
                 embed_dim: int) -> None:
        super().__init__()
        self.body = PointNetEncoder(3, feat_dim, hidden_dims=tuple(hidden), norm="none", act="relu", pool="max")
        self.act = make_activation("relu")
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes else None
        self.head = nn.Linear(feat_dim + (embed_dim if num_classes else 0), 2 * latent_dim)
        nn.init.normal_(self.head.weight, std=0.01)   # start near q = N(0, I)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, P', 3)`` points (+ ``(N,)`` labels) -> ``(mu, logvar)`` ``(N, Z)`` each."""
        h = self.act(self.body(x))
        if self.embed is not None:
            h = torch.cat([h, self.embed(labels)], 1)
        mu, logvar = self.head(h).chunk(2, dim=1)
        return mu, logvar.clamp(*LOGVAR_RANGE)


class PointDecoderNet(nn.Module):
    """Latents ``z (N, Z)`` (+ labels ``(N,)``) -> points ``(N, P, 3)`` in ``[-0.5, 0.5]^3``.

    Args:
        latent_dim: ``Z``.
        num_points: ``P``.
        hidden: hidden layer sizes of the MLP.
        num_classes: ``K`` (0: unconditional).
        embed_dim: class embedding size.
    """

    def __init__(self, latent_dim: int, num_points: int, hidden: Sequence[int], num_classes: int,
                 embed_dim: int) -> None:
        super().__init__()
        self.num_points = num_points
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes else None
        self.mlp = MLP(latent_dim + (embed_dim if num_classes else 0), num_points * 3, tuple(hidden), act="relu")

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``(N, Z)`` latents (+ ``(N,)`` labels) -> ``(N, P, 3)`` points."""
        if self.embed is not None:
            z = torch.cat([z, self.embed(labels)], 1)
        return 0.5 * torch.tanh(self.mlp(z)).view(z.shape[0], self.num_points, 3)


class PointVAE(VAEGenerator):
    """VAE over point clouds of ``P`` points (module docstring).

    Args:
        config: a :class:`~geomgen_vae.config.PointVAEConfig` (or a mapping of
            its keys); ``None``: the defaults.
        **overrides: :class:`~geomgen_vae.config.PointVAEConfig` keys replacing
            those of ``config``.

    ``self.config`` is the plain dict of the validated config (saved with the
    weights).

    Raises:
        InvalidInputError: a bad config key or value (named in the message).
    """

    output = "pointcloud"
    likelihood = None

    def __init__(self, config: PointVAEConfig | Mapping[str, Any] | None = None, /, **overrides: Any) -> None:
        c = PointVAEConfig.resolve(config, **overrides)
        super().__init__(c.to_dict())
        self.encoder = PointEncoderNet(c.latent_dim, c.enc_hidden, c.enc_feat, self.num_classes, c.embed_dim)
        self.decoder = PointDecoderNet(c.latent_dim, c.num_points, c.dec_hidden, self.num_classes, c.embed_dim)

    # ------------------------------------------------------------------ networks
    def _encode(self, x: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(x, labels)

    def decode_shapes(self, z: torch.Tensor, labels: torch.Tensor | None, threshold: float = 0.5) -> torch.Tensor:
        """``(N, P, 3)`` points of latents ``z (N, Z)`` (``threshold`` is unused)."""
        return self.decoder(z, labels)

    def forward(self, x: Any, condition: Any = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruct ``x``: ``(points (N, P, 3), mu (N, Z), logvar (N, Z))`` with one
        reparameterised ``z`` from torch's global RNG."""
        fn = f"{type(self).__name__}.forward"
        pts = self.as_input(x, "forward")
        labels = self.labels_of(condition, pts.shape[0], fn)
        mu, logvar = self._encode(pts, labels)
        return self.decoder(self.reparameterize(mu, logvar), labels), mu, logvar

    # ------------------------------------------------------------------ likelihoods
    def _no_density(self, what: str) -> LikelihoodUnavailableError:
        return LikelihoodUnavailableError(
            f"{type(self).__name__}: {what} is not defined: this VAE is trained with a chamfer reconstruction "
            "loss, which is a distance and not the log-density of a distribution over point clouds, so there is "
            "no likelihood or ELBO; compare samples with geomgen.metrics.generative_metrics (MMD, COV, 1-NNA) "
            "instead (the voxel 'vae' has an ELBO)")

    def elbo(self, x: Any, condition: Any = None) -> torch.Tensor:
        """Not defined for this model.

        Raises:
            LikelihoodUnavailableError: always (chamfer is not a density).
        """
        raise self._no_density("elbo")

    def log_prob(self, x: Any, condition: Any = None) -> torch.Tensor:
        """Not defined for this model.

        Raises:
            LikelihoodUnavailableError: always (chamfer is not a density).
        """
        raise self._no_density("log_prob")

    # ------------------------------------------------------------------ training
    def compute_loss(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Training loss of a batch (``P`` points per cloud subsampled with torch's
        global RNG; ``label`` for conditional models).

        Returns:
            ``{"loss": chamfer + beta kl`` (batch means), ``"chamfer"``: squared
            chamfer distance (mean over points, summed over both directions),
            ``"kl"``: ``KL(q || p)`` in nats per shape``}``.

        Raises:
            InvalidInputError: a conditional model and a batch without labels.
        """
        pts = batch_points(batch, self.num_points).to(self.device)
        labels = self.batch_labels_of(batch, pts.shape[0])
        mu, logvar = self._encode(pts, labels)
        rec = self.decoder(self.reparameterize(mu, logvar), labels)
        cd, _ = chamfer_distance(rec, pts)
        kl = gaussian_kl(mu, logvar)
        return {"loss": cd + self.beta * kl, "chamfer": cd.detach(), "kl": kl.detach()}

    # ------------------------------------------------------------------ sampling
    def generate(self, n: int, labels: torch.Tensor | None, generator: torch.Generator,
                 temperature: float = 1.0, **options: Any) -> torch.Tensor:
        """``(n, P, 3)`` points decoded from ``z ~ N(0, temperature^2 I)``.

        Args:
            n: number of clouds.
            labels: ``(n,)`` (conditional models) or None.
            generator: source of the latents.
            temperature: standard deviation of the latents (``> 0``).

        Raises:
            InvalidInputError: a bad temperature or an unknown option.
        """
        fn = f"{type(self).__name__}.sample"
        if options:
            raise V.fail(sorted(options)[0], "is not a sampling option of this model (options: temperature)", fn)
        temperature = V.check_float(temperature, "temperature", positive=True, fn=fn)
        return self.decoder(self.noise(n, generator) * temperature, labels)

    # ------------------------------------------------------------------ interpolation
    def _one_shape(self, x: Any, name: str, fn: str) -> torch.Tensor:
        pts = x.points_padded() if hasattr(x, "points_padded") else x
        if isinstance(pts, torch.Tensor) and pts.dim() == 2:
            x = pts[None]
            pts = x
        if isinstance(pts, torch.Tensor) and pts.dim() == 3 and pts.shape[0] != 1:
            raise V.fail(name, f"must be one cloud, got a batch of {pts.shape[0]}", fn)
        try:
            return self.as_input(x, "interpolate")
        except InvalidInputError as e:  # name the argument (as_input calls it 'x')
            raise V.fail(name, str(e).split(": ", 1)[-1], fn) from None
