"""Variational auto-encoder over occupancy grids (Kingma & Welling 2014; Brock et al. 2016): :class:`VoxelVAE`.

Encoder ``q(z | x)``: the ``(N, 1, R, R, R)`` occupancy (mapped to
``[-1, 1]``) -> :class:`~geomgen.nn.VoxelEncoder` (3-D convolutions, stride-2
down-sampling, the last grid flattened) -> ReLU features ``(N, F)`` [+ the
class embedding] -> linear -> ``(mu, logvar)``, each ``(N, Z)``.

Decoder ``p(x | z)``: ``z`` [+ the class embedding] ->
:class:`~geomgen.nn.VoxelDecoder` (linear layer to an ``S^3`` grid, 3-D
transposed convolutions) -> Bernoulli logits ``(N, 1, R, R, R)``, one
independent Bernoulli per voxel.

Training minimises the negative ELBO per voxel with one reparameterised
sample ``z = mu + sigma * eps``: ``(BCE(x, decode(z)) + beta KL(q || N(0, I))) / R^3``.
``beta = 1`` is the ELBO; ``beta < 1`` trades prior match for sharper
reconstructions.

Likelihoods (nats per shape, summed over the ``R^3`` voxels):

* :meth:`VoxelVAE.elbo` - ``E_q[log p(x | z)] - KL(q || p)`` estimated with one
  ``z`` sample (unbiased for the ELBO, a lower bound on ``log p(x)`` in expectation);
* :meth:`VoxelVAE.log_prob` - the importance-weighted (IWAE, Burda et al.
  2016) estimate with ``K`` samples, ``log (1/K) sum_k p(x, z_k) / q(z_k | x)``:
  a stochastic lower bound on ``log p(x)`` whose expectation is ``>= ELBO``
  and increases to ``log p(x)`` as ``K`` grows.  It is an estimate, not the exact
  likelihood.

Both draw their ``z`` from torch's global RNG (seed it for reproducible values).
Normalisation is per-sample (group norm by default), so each shape's value does
not depend on the rest of the batch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from geomgen import checks as V
from geomgen.errors import InvalidInputError
from geomgen.generative import batch_voxels
from geomgen.losses.kl import gaussian_kl
from geomgen.nn import NORM_KINDS, VoxelDecoder, VoxelEncoder, make_activation

from geomgen_vae.common import LOGVAR_RANGE, VAEGenerator
from geomgen_vae.config import VoxelVAEConfig

__all__ = ["VoxelVAE", "VoxelEncoderNet", "VoxelDecoderNet", "GENERATE_MODES"]

#: ``mode`` options of :meth:`VoxelVAE.generate` (via ``sample(..., mode=...)``).
GENERATE_MODES: tuple[str, ...] = ("mean", "sample", "probs")

#: Largest number of ``(shape, z)`` pairs :meth:`VoxelVAE.log_prob` decodes at once.
_IWAE_CHUNK: int = 64


class VoxelEncoderNet(nn.Module):
    """Occupancy ``(N, 1, R, R, R)`` in ``{0, 1}`` (+ labels ``(N,)``) -> ``(mu, logvar)``, each ``(N, Z)``.

    Args:
        resolution: ``R``.
        latent_dim: ``Z``.
        channels: :class:`~geomgen.nn.VoxelEncoder` channels; each entry after
            the first halves the grid (rounding up).
        feat_dim: ``F``, size of the flattened-grid features.
        norm: normalisation of the convolutions.
        num_classes: ``K`` (0: unconditional).
        embed_dim: size of the class
            embedding concatenated to the features.
    """

    def __init__(self, resolution: int, latent_dim: int, channels: Sequence[int], feat_dim: int, norm: str,
                 num_classes: int, embed_dim: int) -> None:
        super().__init__()
        self.body = VoxelEncoder(1, feat_dim, channels=tuple(channels), pool="flatten", resolution=resolution,
                                 norm=norm)
        self.act = make_activation("relu")
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes else None
        self.head = nn.Linear(feat_dim + (embed_dim if num_classes else 0), 2 * latent_dim)
        nn.init.normal_(self.head.weight, std=0.01)   # start near q = N(0, I): small KL, stable first steps
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, 1, R, R, R)`` occupancies (+ ``(N,)`` labels) -> ``(mu, logvar)`` ``(N, Z)`` each."""
        h = self.act(self.body(2.0 * x - 1.0))
        if self.embed is not None:
            h = torch.cat([h, self.embed(labels)], 1)
        mu, logvar = self.head(h).chunk(2, dim=1)
        return mu, logvar.clamp(*LOGVAR_RANGE)


class VoxelDecoderNet(nn.Module):
    """Latents ``z (N, Z)`` (+ labels ``(N,)``) -> Bernoulli logits ``(N, 1, R, R, R)``.

    Args:
        resolution: ``R`` (``start_resolution * 2^k``).
        latent_dim: ``Z``.
        channels: :class:`~geomgen.nn.VoxelDecoder` channels of the ``k + 1``
            grids ``S, 2S, ..., R``.
        start_resolution: ``S``.
        norm: normalisation of the hidden grids.
        num_classes: ``K`` (0: unconditional).
        embed_dim: size of the class
            embedding concatenated to ``z``.
    """

    def __init__(self, resolution: int, latent_dim: int, channels: Sequence[int], start_resolution: int, norm: str,
                 num_classes: int, embed_dim: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes else None
        self.body = VoxelDecoder(latent_dim + (embed_dim if num_classes else 0), 1, resolution,
                                 channels=tuple(channels), start_resolution=start_resolution, norm=norm)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``(N, Z)`` latents (+ ``(N,)`` labels) -> ``(N, 1, R, R, R)`` logits."""
        if self.embed is not None:
            z = torch.cat([z, self.embed(labels)], 1)
        return self.body(z)


class VoxelVAE(VAEGenerator):
    """VAE over ``R^3`` occupancy grids (module docstring).

    Args:
        config: a :class:`~geomgen_vae.config.VoxelVAEConfig` (or a mapping of
            its keys); ``None``: the defaults.
        **overrides: :class:`~geomgen_vae.config.VoxelVAEConfig` keys replacing
            those of ``config``.

    ``self.config`` is the plain dict of the validated config (saved with the
    weights).

    Raises:
        InvalidInputError: a bad config key or value (named in the message).
    """

    output = "voxels"
    likelihood = "elbo"

    def __init__(self, config: VoxelVAEConfig | Mapping[str, Any] | None = None, /, **overrides: Any) -> None:
        c = VoxelVAEConfig.resolve(config, **overrides)
        c.check_choice("norm", NORM_KINDS)
        super().__init__(c.to_dict())
        k = c.levels
        self.dec_channels: list[int] = list(c.dec_channels) if c.dec_channels is not None else [
            max(8, 32 >> max(i - 1, 0)) for i in range(k + 1)]
        self.encoder = VoxelEncoderNet(c.resolution, c.latent_dim, c.enc_channels, c.enc_feat, c.norm,
                                       self.num_classes, c.embed_dim)
        self.decoder = VoxelDecoderNet(c.resolution, c.latent_dim, self.dec_channels, c.start_resolution, c.norm,
                                       self.num_classes, c.embed_dim)

    # ------------------------------------------------------------------ networks
    def _encode(self, v: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(v.to(self.decoder.body.fc.weight.dtype), labels)

    def decode_shapes(self, z: torch.Tensor, labels: torch.Tensor | None, threshold: float = 0.5) -> torch.Tensor:
        """``(N, R, R, R)`` float {0, 1}: decoder probabilities of ``z (N, Z)`` >= ``threshold``."""
        return (torch.sigmoid(self.decoder(z, labels)[:, 0]) >= threshold).float()

    def forward(self, x: Any, condition: Any = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruct ``x``: ``(logits (N, 1, R, R, R), mu (N, Z), logvar (N, Z))``
        with one reparameterised ``z`` from torch's global RNG."""
        fn = f"{type(self).__name__}.forward"
        v = self.as_input(x, "forward")
        labels = self.labels_of(condition, v.shape[0], fn)
        mu, logvar = self._encode(v, labels)
        return self.decoder(self.reparameterize(mu, logvar), labels), mu, logvar

    # ------------------------------------------------------------------ likelihoods
    def _terms(self, v: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per shape ``(N,)``: reconstruction NLL ``-log p(x | z)`` (one ``z``) and ``KL(q || p)``, in nats."""
        mu, logvar = self._encode(v, labels)
        logits = self.decoder(self.reparameterize(mu, logvar), labels)
        nll = F.binary_cross_entropy_with_logits(logits, v.to(logits.dtype), reduction="none").flatten(1).sum(1)
        return nll, gaussian_kl(mu, logvar, reduction="none")

    def _per_class(self, v: torch.Tensor, fn: Any) -> torch.Tensor:
        """``log mean_c exp(fn(v, c))`` over the ``K`` classes, ``(N,)``."""
        N = v.shape[0]
        per_class = torch.stack([fn(v, torch.full((N,), c, dtype=torch.int64, device=v.device))
                                 for c in range(self.num_classes)], 1)
        return torch.logsumexp(per_class, 1) - math.log(self.num_classes)

    def _labels_or_marginal(self, condition: Any, n: int, fn: str) -> tuple[bool, torch.Tensor | None]:
        if self.conditional and condition is None:
            return True, None
        return False, self.labels_of(condition, n, fn)

    def elbo(self, x: Any, condition: Any = None) -> torch.Tensor:
        """Evidence lower bound of each shape, ``(N,)`` nats (summed over the ``R^3`` voxels).

        ``E_q[log p(x | z)] - KL(q(z | x) || N(0, I))`` with the expectation
        estimated by one reparameterised ``z`` (from torch's global RNG) and the
        KL in closed form.

        Args:
            x: :class:`~geomgen.structures.Voxels` or ``(N, [1,] D, D, D)``
                occupancies with ``D`` a multiple of ``R``.
            condition: unconditional models: None.  Conditional models:
                ``(N,)`` labels / names (a bound on ``log p(x | c)``), or None
                for the marginal bound ``log mean_c exp(ELBO_c)`` - a valid lower
                bound on ``log p(x) = log mean_c p(x | c)`` under the uniform class
                prior that :meth:`sample` draws from (each ``ELBO_c <= log p(x | c)``).

        Raises:
            InvalidInputError: bad ``x``; a superfluous, unknown or mismatched condition.
        """
        fn = f"{type(self).__name__}.elbo"
        v = self.as_input(x, "elbo")
        marginal, labels = self._labels_or_marginal(condition, v.shape[0], fn)

        def bound(v: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
            nll, kl = self._terms(v, labels)
            return -nll - kl

        return self._per_class(v, bound) if marginal else bound(v, labels)

    def log_prob(self, x: Any, condition: Any = None, num_samples: int = 64) -> torch.Tensor:
        """Importance-weighted estimate of ``log p(x)``, ``(N,)`` nats (summed over voxels).

        ``log (1/K) sum_k p(x | z_k) p(z_k) / q(z_k | x)`` with ``K = num_samples``
        draws ``z_k ~ q(z | x)`` from torch's global RNG (IWAE bound).  This is
        an *estimate*: a stochastic lower bound on ``log p(x)`` whose
        expectation is at least the ELBO's (equal for ``K = 1``) and tends to
        ``log p(x)`` as ``K`` grows.

        Args:
            x: as :meth:`elbo`.
            condition: as :meth:`elbo` (conditional models with None:
                ``log mean_c exp(IWAE_c)``, the estimate of the marginal under the
                uniform class prior).
            num_samples: ``K >= 1``.

        Raises:
            InvalidInputError: bad ``x``, condition or ``num_samples``.
        """
        fn = f"{type(self).__name__}.log_prob"
        num_samples = V.check_int(num_samples, "num_samples", min_value=1, fn=fn)
        v = self.as_input(x, "log_prob")
        marginal, labels = self._labels_or_marginal(condition, v.shape[0], fn)

        def iwae(v: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
            return self._iwae(v, labels, num_samples)

        return self._per_class(v, iwae) if marginal else iwae(v, labels)

    def _iwae(self, v: torch.Tensor, labels: torch.Tensor | None, K: int) -> torch.Tensor:
        """``(N,)`` IWAE estimates with ``K`` samples each, decoded in chunks."""
        mu, logvar = self._encode(v, labels)
        N, Z = mu.shape
        log2pi = math.log(2.0 * math.pi)
        per_chunk = max(1, _IWAE_CHUNK // max(N, 1))
        weights = []
        for start in range(0, K, per_chunk):
            k = min(per_chunk, K - start)
            eps = torch.randn(k, N, Z, device=mu.device, dtype=mu.dtype)
            z = mu + torch.exp(0.5 * logvar) * eps                                    # (k, N, Z)
            lab = None if labels is None else labels.repeat(k)
            logits = self.decoder(z.reshape(k * N, Z), lab)
            target = v.to(logits.dtype).repeat(k, 1, 1, 1, 1)
            log_px = -F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(1).sum(1)
            log_pz = -0.5 * (z.square() + log2pi).sum(-1)                             # (k, N)
            log_qz = -0.5 * (eps.square() + logvar + log2pi).sum(-1)
            weights.append(log_px.view(k, N) + log_pz - log_qz)
        return torch.logsumexp(torch.cat(weights, 0), 0) - math.log(K)

    # ------------------------------------------------------------------ training
    def compute_loss(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Training loss of a batch (its ``voxels`` at ``R``; ``label`` for conditional models).

        Returns:
            ``{"loss": (recon + beta kl) / R^3`` (batch mean, nats per voxel),
            ``"recon"``: mean ``-log p(x | z)`` (nats per shape), ``"kl"``: mean
            ``KL(q || p)`` (nats per shape), ``"bits_per_voxel"``: the negative
            ELBO (``beta = 1``) in bits per voxel``}``.

        Raises:
            InvalidInputError: a conditional model and a batch without labels.
        """
        v = batch_voxels(batch, self.resolution).to(self.device)
        labels = self.batch_labels_of(batch, v.shape[0])
        nll, kl = self._terms(v, labels)
        voxels = float(self.resolution ** 3)
        recon, kl = nll.mean(), kl.mean()
        return {"loss": (recon + self.beta * kl) / voxels, "recon": recon.detach(), "kl": kl.detach(),
                "bits_per_voxel": (recon + kl).detach() / (voxels * math.log(2.0))}

    # ------------------------------------------------------------------ sampling
    def generate(self, n: int, labels: torch.Tensor | None, generator: torch.Generator,
                 mode: str = "mean", threshold: float = 0.5, temperature: float = 1.0,
                 **options: Any) -> torch.Tensor:
        """``n`` shapes ``(n, R, R, R)`` decoded from ``z ~ N(0, temperature^2 I)``.

        Args:
            n: number of shapes.
            labels: ``(n,)`` (conditional models) or None.
            generator: the source of every random number (the latents, and the
                voxels of ``mode="sample"``).
            mode: ``"mean"`` (default): the decoder's probabilities thresholded
                at ``threshold`` - clean, binary shapes (the per-voxel mode of
                ``p(x | z)``); ``"sample"``: one Bernoulli draw per voxel - the
                model's actual distribution, speckled since voxels are independent
                given ``z``; ``"probs"``: the probabilities themselves.
            threshold: occupancy threshold of ``"mean"``, in ``(0, 1)``.
            temperature: standard deviation of the latents (``> 0``).

        Raises:
            InvalidInputError: a bad mode, threshold, temperature or an unknown option.
        """
        fn = f"{type(self).__name__}.sample"
        if options:
            raise V.fail(sorted(options)[0], "is not a sampling option of this model "
                         "(options: mode, threshold, temperature)", fn)
        V.check_choice(mode, "mode", GENERATE_MODES, fn=fn)
        threshold = V.check_float(threshold, "threshold", fn=fn)
        if not 0.0 < threshold < 1.0:
            raise V.fail("threshold", f"must lie in (0, 1), got {threshold}", fn)
        temperature = V.check_float(temperature, "temperature", positive=True, fn=fn)
        z = self.noise(n, generator) * temperature
        probs = torch.sigmoid(self.decoder(z, labels)[:, 0])
        if mode == "mean":
            return (probs >= threshold).float()
        if mode == "sample":
            u = torch.rand(probs.shape, generator=generator, device=generator.device).to(probs)
            return (u < probs).float()
        return probs

    # ------------------------------------------------------------------ interpolation
    def _one_shape(self, x: Any, name: str, fn: str) -> torch.Tensor:
        g = x.grids if hasattr(x, "grids") else x
        if isinstance(g, torch.Tensor) and g.dim() == 3:
            g = g[None]
        if isinstance(g, torch.Tensor) and g.dim() >= 4 and g.shape[0] != 1:
            raise V.fail(name, f"must be one shape, got a batch of {g.shape[0]}", fn)
        try:
            return self.as_input(g, "interpolate")
        except InvalidInputError as e:  # name the argument (as_input calls it 'x')
            raise V.fail(name, str(e).split(": ", 1)[-1], fn) from None
