"""PixelCNN-style autoregressive model of voxel occupancy: :class:`VoxelPixelCNN`.

The voxels of an ``R^3`` grid are ordered in raster order (z, then y, then x) and

    log p(x | c) = sum_i log Bernoulli(x_i | sigmoid(f_i(x_<i, c)))

where ``f`` is a stack of masked 3-D convolutions
(:class:`~geomgen.nn.MaskedConv3d`): a type-``"A"`` stem (the output at voxel
``i`` sees only voxels before ``i``), residual blocks
(:class:`~geomgen.nn.MaskedResBlock3d`) whose masked convolutions are of type
``"B"`` (they see position ``i`` of their input features, which only depend on
voxels before ``i``) and a pointwise head.  A class-conditional model adds a
learned per-class vector to the hidden features after the stem and before
every block: a bias that is the same at every position keeps the network
causal.

Log-likelihoods are exact, in nats per shape (summed over the ``R^3``
voxels); ``bits_per_voxel`` (from the base class) divides by ``R^3 ln 2``.

Sampling is ancestral, one voxel at a time in raster order
(:mod:`geomgen_autoregressive.sampling`): the default sampler evaluates every
layer at the current voxel only, reading the receptive field of each masked
convolution from per-layer caches, instead of running the network on the
whole grid ``R^3`` times.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from geomgen import checks as V
from geomgen.generative import ShapeGenerator, batch_voxels
from geomgen.nn import ACTIVATIONS, MaskedConv3d, MaskedResBlock3d, make_activation
from geomgen.nn.activation import activation_gain_name
from geomgen_autoregressive.config import AutoregressiveConfig, kernel_sides

__all__ = ["VoxelPixelCNN", "SAMPLERS"]

#: Sampling methods of :meth:`VoxelPixelCNN.generate`.
SAMPLERS: tuple[str, ...] = ("incremental", "full")


class VoxelPixelCNN(ShapeGenerator):
    """Autoregressive (PixelCNN) generator of ``R^3`` occupancy grids.

    Args:
        config: an :class:`~geomgen_autoregressive.config.AutoregressiveConfig`
            (or a mapping of its keys); ``None``: the defaults.
        **overrides: :class:`~geomgen_autoregressive.config.AutoregressiveConfig`
            keys replacing those of ``config``.

    ``self.config`` is the plain dict of the validated config (saved with the
    weights).  ``position_bias`` does not depend on the data, so it keeps the
    network causal; a class-conditional model (``num_classes = K > 0``) learns
    ``K`` bias vectors per layer.

    The receptive field: voxel ``i``'s logit depends on the voxels before it
    within :attr:`receptive_radius` slices / rows / columns.

    Shapes: ``logits(x (N, 1, R, R, R), labels (N,) | None) -> (N, 1, R, R, R)``.

    Raises:
        InvalidInputError: a bad config key or value (named in the message).
    """

    output = "voxels"
    likelihood = "exact"

    def __init__(self, config: AutoregressiveConfig | Mapping[str, Any] | None = None, /,
                 **overrides: Any) -> None:
        c = AutoregressiveConfig.resolve(config, **overrides)
        c.check_choice("act", ACTIVATIONS)
        super().__init__(c.to_dict())
        fn = "VoxelPixelCNN"
        act, hidden, num_blocks, resolution = c.act, c.hidden, c.num_blocks, c.resolution
        stem3, block3 = kernel_sides(c.stem_kernel), kernel_sides(c.block_kernel)
        self.act = make_activation(act, fn=fn)
        self.stem = MaskedConv3d(1, hidden, stem3, "A")
        self.blocks = nn.ModuleList(MaskedResBlock3d(hidden, block3, act=act) for _ in range(num_blocks))
        self.head_hidden = nn.Conv3d(hidden, hidden, 1)
        self.head_out = nn.Conv3d(hidden, 1, 1)
        nonlin, slope = activation_gain_name(act)
        nn.init.kaiming_normal_(self.head_hidden.weight, a=slope, nonlinearity=nonlin)
        nn.init.zeros_(self.head_hidden.bias)
        nn.init.normal_(self.head_out.weight, std=0.01)
        nn.init.zeros_(self.head_out.bias)
        self.pos = nn.Parameter(torch.zeros(hidden, resolution, resolution, resolution)) if c.position_bias else None
        self.embed = nn.Embedding(self.num_classes, hidden * (num_blocks + 1)) if self.num_classes else None
        if self.embed is not None:
            nn.init.normal_(self.embed.weight, std=0.1)
        # channels-last 3-D weights (and inputs, see logits) make CPU convolutions about 1.3x faster
        with torch.no_grad():
            for p in self.parameters():
                if p.dim() == 5:
                    p.data = p.data.contiguous(memory_format=torch.channels_last_3d)

    # ------------------------------------------------------------------ network
    @property
    def receptive_radius(self) -> tuple[int, int, int]:
        """``(rz, ry, rx)``: voxel ``(z, y, x)``'s logit depends only on voxels
        before it with ``|dz| <= rz``, ``|dy| <= ry``, ``|dx| <= rx`` (the sums
        of the masked kernels' radii)."""
        s, b = kernel_sides(self.config["stem_kernel"]), kernel_sides(self.config["block_kernel"])
        return tuple(s[a] // 2 + len(self.blocks) * (b[a] // 2) for a in range(3))  # type: ignore[return-value]

    def class_bias(self, labels: torch.Tensor | None, n: int) -> list[torch.Tensor | None]:
        """The ``num_blocks + 1`` per-class biases ``(n, C)`` (after the stem,
        then before each block), or Nones for an unconditional model.

        Raises:
            InvalidInputError: a conditional model without ``(n,)`` labels.
        """
        L = len(self.blocks) + 1
        if self.embed is None:
            return [None] * L
        if labels is None or labels.shape != (n,):
            raise V.fail("labels", f"a class-conditional model needs ({n},) labels, got "
                         f"{None if labels is None else tuple(labels.shape)}", f"{type(self).__name__}.logits")
        e = self.embed(labels.to(self.device)).view(n, L, -1)
        return [e[:, k] for k in range(L)]

    def logits(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Bernoulli logits ``(N, 1, R, R, R)`` of every voxel given the voxels before it.

        Args:
            x: ``(N, 1, R, R, R)`` float occupancies ({0, 1} for likelihoods).
            labels: ``(N,)`` int64 class labels (conditional models; ignored otherwise).
        """
        bias = self.class_bias(labels, x.shape[0])
        h = self.stem(x.contiguous(memory_format=torch.channels_last_3d))
        if self.pos is not None:
            h = h + self.pos
        if bias[0] is not None:
            h = h + bias[0][..., None, None, None]
        for k, block in enumerate(self.blocks):
            if bias[k + 1] is not None:
                h = h + bias[k + 1][..., None, None, None]
            h = block(h)
        return self.head_out(self.act(self.head_hidden(self.act(h))))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Same as :meth:`logits`: ``(N, 1, R, R, R) -> (N, 1, R, R, R)``."""
        return self.logits(x, labels)

    # ------------------------------------------------------------------ likelihood
    def log_prob(self, x: Any, condition: Any = None) -> torch.Tensor:
        """Exact log-likelihood of each shape, ``(N,)`` nats (summed over the ``R^3`` voxels).

        Args:
            x: :class:`~geomgen.structures.Voxels` or ``(N, [1,] D, D, D)``
                occupancies with ``D`` a multiple of ``R`` (resampled and
                binarised by :meth:`as_input`).
            condition: unconditional models: None.  Conditional models:
                ``(N,)`` labels / names (``log p(x | c)``), or None for the
                marginal ``log p(x) = log mean_c p(x | c)`` under the uniform
                class prior that :meth:`sample` draws from.

        Raises:
            InvalidInputError: bad ``x`` (not cubic, side not a multiple of
                ``R``), a condition for an unconditional model, bad labels.
        """
        v = self.as_input(x, "log_prob")
        N = v.shape[0]
        if self.conditional and condition is None:
            per_class = torch.stack([self._log_prob(v, torch.full((N,), c, dtype=torch.int64, device=v.device))
                                     for c in range(self.num_classes)], 1)
            return torch.logsumexp(per_class, 1) - math.log(self.num_classes)
        if not self.conditional and condition is not None:
            raise V.fail("condition", f"this model is unconditional (num_classes=0), got {condition!r}",
                         f"{type(self).__name__}.log_prob")
        return self._log_prob(v, None if condition is None else self.labels_for(condition, N))

    def _log_prob(self, v: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        v = v.to(self.head_out.weight.dtype)
        nll = F.binary_cross_entropy_with_logits(self.logits(v, labels), v, reduction="none")
        return -nll.flatten(1).sum(1)

    def compute_loss(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """``{"loss": mean NLL per voxel in nats, "bits_per_voxel": the same in bits}``
        of a batch (its ``voxels`` at ``R``; ``label`` for conditional models).

        Raises:
            InvalidInputError: a conditional model and a batch without labels.
        """
        v = batch_voxels(batch, self.resolution).to(self.device, self.head_out.weight.dtype)
        labels = self.batch_labels_of(batch, v.shape[0])
        loss = F.binary_cross_entropy_with_logits(self.logits(v, labels), v)
        return {"loss": loss, "bits_per_voxel": loss.detach() / math.log(2.0)}

    # ------------------------------------------------------------------ sampling
    def generate(self, n: int, labels: torch.Tensor | None, generator: torch.Generator,
                 temperature: float = 1.0, method: str = "incremental") -> torch.Tensor:
        """Ancestral sampling in raster order: ``(n, R, R, R)`` float {0, 1}.

        Args:
            n: number of shapes.
            labels: ``(n,)`` (conditional models) or None.
            generator: the source of every random number (one uniform per voxel and shape).
            temperature: ``T > 0``, divides the logits (``T < 1`` sharpens,
                ``T > 1`` flattens; 1 samples the model).
            method: ``"incremental"`` (default: each step evaluates every
                layer at the current voxel only, from cached features) or
                ``"full"`` (the whole network on the whole grid at every step:
                the slow reference; both give the same samples).

        Raises:
            InvalidInputError: ``temperature`` not a finite number > 0, unknown ``method``.
        """
        from geomgen_autoregressive.sampling import sample_full, sample_incremental

        fn = f"{type(self).__name__}.sample"
        temperature = V.check_float(temperature, "temperature", positive=True, fn=fn)
        V.check_choice(method, "method", SAMPLERS, fn=fn)
        sampler = sample_incremental if method == "incremental" else sample_full
        return sampler(self, n, labels, generator, temperature)
