"""What the voxel and point-cloud VAEs share: :class:`VAEGenerator`.

A subclass supplies the networks and four methods:

* :meth:`~VAEGenerator.encode` - shapes -> ``(mu, logvar)``, each ``(N, Z)``;
* :meth:`~VAEGenerator.decode` - latents ``(N, Z)`` -> the decoder's output
  (Bernoulli logits ``(N, 1, R, R, R)`` or points ``(N, P, 3)``);
* :meth:`~VAEGenerator.decode_shapes` - latents -> shapes in :meth:`sample`'s
  tensor form, used by :meth:`~VAEGenerator.interpolate`;
* :meth:`~geomgen.generative.ShapeGenerator.generate` and
  :meth:`~geomgen.generative.ShapeGenerator.compute_loss`.

The prior is ``p(z) = N(0, I)`` (``Z = latent_dim`` values) for every class;
the posterior ``q(z | x[, c]) = N(mu, diag(exp(logvar)))``.  Conditional
models feed a learned class embedding to both the encoder and the decoder.
"""

from __future__ import annotations

from typing import Any

import torch

from geomgen import checks as V
from geomgen.generative import ShapeGenerator

__all__ = ["VAEGenerator", "LOGVAR_RANGE"]

#: ``logvar`` is clamped to this range (posterior standard deviations from
#: about ``4.5e-5`` to ``55``) so that ``exp(logvar)`` never over- or underflows.
LOGVAR_RANGE: tuple[float, float] = (-20.0, 8.0)



class VAEGenerator(ShapeGenerator):
    """Base class of the VAE generators (see the module docstring).

    Build arguments read from ``config``: ``latent_dim`` (``Z``), ``beta``
    (weight of the KL term in the training loss).
    """

    @property
    def latent_dim(self) -> int:
        """``Z``, size of the latent vector."""
        return int(self.config["latent_dim"])

    @property
    def beta(self) -> float:
        """Weight of ``KL(q || p)`` in :meth:`compute_loss` (1 = the ELBO)."""
        return float(self.config["beta"])

    # ------------------------------------------------------------------ encoder / decoder
    def encode(self, x: Any, condition: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior ``q(z | x[, c]) = N(mu, diag(exp(logvar)))`` of shapes ``x``.

        Args:
            x: what :meth:`as_input` accepts: ``Voxels`` or ``(N, [1,] D, D, D)``
                occupancies with ``D`` a multiple of ``R`` (binarised at 0.5)
                for ``vae``; ``PointClouds`` of equal sizes or ``(N, P', 3)``
                points for ``vae-points``.
            condition: conditional models: ``(N,)`` labels / names, or one label
                for all; unconditional: None.

        Returns:
            ``(mu, logvar)``, each ``(N, Z)`` (``logvar`` is the log variance).

        Raises:
            InvalidInputError: bad ``x``; a missing, unknown or superfluous condition.
        """
        fn = f"{type(self).__name__}.encode"
        x = self.as_input(x, "encode")
        return self._encode(x, self.labels_of(condition, x.shape[0], fn))

    def decode(self, z: torch.Tensor, condition: Any = None) -> torch.Tensor:
        """The decoder's output for latents ``z (N, Z)``: Bernoulli logits
        ``(N, 1, R, R, R)`` of ``p(x | z[, c])`` (``vae``) or points ``(N, P, 3)``
        in ``[-0.5, 0.5]^3`` (``vae-points``).

        Raises:
            InvalidInputError: ``z`` not ``(N, Z)`` floats; a missing, unknown
                or superfluous condition.
        """
        fn = f"{type(self).__name__}.decode"
        z = self.check_latent(z, fn)
        return self.decoder(z, self.labels_of(condition, z.shape[0], fn))

    # ------------------------------------------------------------------ subclass hooks
    def decode_shapes(self, z: torch.Tensor, labels: torch.Tensor | None,
                      threshold: float = 0.5) -> torch.Tensor:  # pragma: no cover - abstract
        """Latents ``(N, Z)`` -> shapes as :meth:`generate` returns them (deterministic)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers
    def labels_of(self, condition: Any, n: int, fn: str) -> torch.Tensor | None:
        """``(n,)`` int64 labels for ``condition`` (None for an unconditional model).

        Conditional models need a condition here (an int, a category name, or
        ``n`` of them); unconditional models take None only.

        Raises:
            InvalidInputError: a missing, unknown or superfluous condition.
        """
        if condition is None:
            if self.conditional:
                raise V.fail("condition", f"this model is class-conditional (num_classes={self.num_classes}): "
                             f"give a label, a category name or {n} of them", fn)
            return None
        if not self.conditional:
            raise V.fail("condition", f"this model is unconditional (num_classes=0), got {condition!r}", fn)
        return self.labels_for(condition, n)

    def check_latent(self, z: Any, fn: str) -> torch.Tensor:
        """``z`` checked to be ``(N, Z)`` floats, on the model's device.

        Raises:
            InvalidInputError: not a floating ``(N, Z)`` tensor.
        """
        V.check_tensor(z, "z", ndim=2, shape_desc="(N, Z)", floating=True, fn=fn)
        if z.shape[1] != self.latent_dim:
            raise V.fail("z", f"must have Z={self.latent_dim} columns, got {tuple(z.shape)}", fn)
        return z.to(self.device)

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(n, Z)`` draws of the prior ``N(0, I)`` on the model's device, from
        ``generator`` (None: torch's global RNG)."""
        if generator is None:
            return torch.randn(n, self.latent_dim, device=self.device)
        return torch.randn(n, self.latent_dim, generator=generator, device=generator.device).to(self.device)

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor,
                       generator: torch.Generator | None = None) -> torch.Tensor:
        """``z = mu + exp(logvar / 2) * eps`` with ``eps ~ N(0, I)`` (``(N, Z)``),
        differentiable in ``mu`` and ``logvar``; ``eps`` from ``generator``
        (None: torch's global RNG)."""
        if generator is None:
            eps = torch.randn_like(mu)
        else:
            eps = torch.randn(mu.shape, generator=generator, device=generator.device).to(mu)
        return mu + torch.exp(0.5 * logvar) * eps

    @staticmethod
    def _interpolation_check(steps: Any, fn: str) -> int:
        return V.check_int(steps, "steps", min_value=2, fn=fn)

    def _one_shape(self, x: Any, name: str, fn: str) -> torch.Tensor:
        """One shape ``x`` as the model's ``(1, ...)`` input tensor."""
        raise NotImplementedError  # pragma: no cover - subclasses

    def interpolate(self, a: Any, b: Any, steps: int = 8, condition: Any = None, threshold: float = 0.5) -> Any:
        """Decode ``steps`` latents on the segment between the posterior means of two shapes.

        ``z_t = (1 - t) mu(a) + t mu(b)`` for ``t = 0, 1 / (steps - 1), ..., 1``,
        decoded deterministically (voxels: decoder probabilities thresholded
        at ``threshold``; points: the decoded cloud).  Runs in eval mode without
        gradients (the training mode is restored afterwards).

        Args:
            a, b: one shape each (voxels: a :class:`~geomgen.structures.Voxels`
                of one grid, or an ``(R, R, R)`` / ``(1, [1,] R, R, R)``
                occupancy; points: a one-cloud
                :class:`~geomgen.structures.PointClouds` or ``(P', 3)`` /
                ``(1, P', 3)`` points).
            steps: number of shapes, >= 2 (the first is ``a``'s reconstruction,
                the last ``b``'s).
            condition: the class both shapes are encoded and decoded with
                (conditional models: required; unconditional: None).
            threshold: voxel models' occupancy threshold in ``(0, 1)``.

        Returns:
            The same type as :meth:`sample`: :class:`~geomgen.structures.Voxels`
            of ``steps`` grids, or :class:`~geomgen.structures.PointClouds` of
            ``steps`` clouds.

        Raises:
            InvalidInputError: ``steps < 2``, not one shape each, a bad condition
                or threshold.
        """
        from geomgen.generative import voxels_from_grids
        from geomgen.structures import PointClouds

        fn = f"{type(self).__name__}.interpolate"
        steps = self._interpolation_check(steps, fn)
        threshold = V.check_float(threshold, "threshold", fn=fn)
        if not 0.0 < threshold < 1.0:
            raise V.fail("threshold", f"must lie in (0, 1), got {threshold}", fn)
        xa, xb = self._one_shape(a, "a", fn), self._one_shape(b, "b", fn)
        labels = self.labels_of(condition, 1, fn)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                mu_a = self._encode(xa, labels)[0]
                mu_b = self._encode(xb, labels)[0]
                t = torch.linspace(0.0, 1.0, steps, device=mu_a.device, dtype=mu_a.dtype)[:, None]
                z = (1.0 - t) * mu_a + t * mu_b
                step_labels = None if labels is None else labels.expand(steps)
                out = self.decode_shapes(z, step_labels, threshold)
        finally:
            self.train(was_training)
        if self.output == "voxels":
            return voxels_from_grids(out.float())
        return PointClouds(out.float())

    def _encode(self, x: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError  # pragma: no cover - subclasses
