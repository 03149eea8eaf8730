"""Adversarial losses of the GAN generators and the WGAN-GP gradient penalty.

Scores are the discriminator's raw outputs (logits for ``"nonsaturating"``,
critic values for ``"wgan-gp"`` and ``"hinge"``), one per shape: ``(N,)``.
Every loss is a mean over the batch (a scalar).

==================  ============================================  ===============================
``kind``            discriminator loss                            generator loss
==================  ============================================  ===============================
``"nonsaturating"`` ``softplus(-D(x)) + softplus(D(G(z)))``       ``softplus(-D(G(z)))``
                    (binary cross-entropy, real = 1, fake = 0)    (``-log sigmoid(D(G(z)))``)
``"wgan-gp"``       ``D(G(z)) - D(x)`` (+ gradient penalty)       ``-D(G(z))``
``"hinge"``         ``relu(1 - D(x)) + relu(1 + D(G(z)))``        ``-D(G(z))``
==================  ============================================  ===============================

The gradient penalty (Gulrajani et al. 2017) is
``mean((|grad_x D(x_hat)|_2 - 1)^2)`` at ``x_hat = e x + (1 - e) G(z)``,
``e ~ U(0, 1)`` per shape; the models add it with weight ``gp_weight``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from geomgen import checks as V
from geomgen_gan.config import LOSSES

__all__ = ["LOSSES", "discriminator_loss", "generator_loss", "gradient_penalty"]


def _scores(x: torch.Tensor, name: str, fn: str) -> torch.Tensor:
    V.check_tensor(x, name, shape_desc="(N,)", floating=True, fn=fn)
    if x.dim() == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.dim() != 1 or x.shape[0] == 0:
        raise V.fail(name, f"must be non-empty (N,) scores, got {tuple(x.shape)}", fn)
    return x


def discriminator_loss(kind: str, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """The discriminator's adversarial loss (scalar; without the gradient penalty).

    Args:
        kind: one of :data:`LOSSES`.
        real_scores: ``(N,)`` (or ``(N, 1)``) scores of data shapes.
        fake_scores: ``(M,)`` (or ``(M, 1)``) scores of generated shapes.

    Raises:
        InvalidInputError: unknown ``kind``, scores not non-empty float vectors.
    """
    fn = "discriminator_loss"
    V.check_choice(kind, "kind", LOSSES, fn=fn)
    real = _scores(real_scores, "real_scores", fn)
    fake = _scores(fake_scores, "fake_scores", fn)
    if kind == "nonsaturating":
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if kind == "hinge":
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
    return fake.mean() - real.mean()


def generator_loss(kind: str, fake_scores: torch.Tensor) -> torch.Tensor:
    """The generator's adversarial loss (scalar) from the ``(N,)`` scores of its samples.

    Raises:
        InvalidInputError: unknown ``kind``, scores not a non-empty float vector.
    """
    fn = "generator_loss"
    V.check_choice(kind, "kind", LOSSES, fn=fn)
    fake = _scores(fake_scores, "fake_scores", fn)
    if kind == "nonsaturating":
        return F.softplus(-fake).mean()
    return -fake.mean()


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    weights: torch.Tensor | None = None,
    create_graph: bool | None = None,
) -> torch.Tensor:
    """WGAN-GP penalty ``mean((|grad D(x_hat)|_2 - 1)^2)`` (scalar).

    Args:
        critic: ``x (N, *) -> (N,)`` scores (a closure over labels for
            conditional models).
        real: ``(N, *)`` data shapes.
        fake: ``(N, *)`` generated shapes, same shape as ``real`` (detached
            inside: the penalty only trains the critic).
        generator: source of the interpolation weights (None: torch's global RNG).
        weights: ``(N,)`` interpolation weights ``e`` in ``[0, 1]`` to use
            instead of random ones (``x_hat = e real + (1 - e) fake``).
        create_graph: keep the graph of the gradient so the penalty can be
            back-propagated; default: whether grad mode was on when called.

    Works under ``torch.no_grad()`` too (e.g. in validation): the gradient
    with respect to ``x_hat`` is computed in a local grad-enabled block.

    Raises:
        InvalidInputError: ``real`` and ``fake`` of different shapes, bad ``weights``.
    """
    fn = "gradient_penalty"
    V.check_tensor(real, "real", floating=True, fn=fn)
    V.check_tensor(fake, "fake", floating=True, fn=fn)
    if real.shape != fake.shape or real.dim() < 2 or real.shape[0] == 0:
        raise V.fail("fake", f"must have the shape of real (N, ...), got {tuple(fake.shape)} vs {tuple(real.shape)}",
                     fn)
    n = real.shape[0]
    if weights is None:
        e = torch.rand(n, generator=generator, device="cpu" if generator is None else generator.device)
        e = e.to(real.device, real.dtype)
    else:
        V.check_tensor(weights, "weights", floating=True, fn=fn)
        if weights.shape != (n,):
            raise V.fail("weights", f"must be ({n},), got {tuple(weights.shape)}", fn)
        e = weights.to(real.device, real.dtype)
    e = e.view(n, *([1] * (real.dim() - 1)))
    if create_graph is None:
        create_graph = torch.is_grad_enabled()
    with torch.enable_grad():
        x_hat = (e * real.detach() + (1.0 - e) * fake.detach()).requires_grad_(True)
        scores = critic(x_hat)
        (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=create_graph)
    norm = (grad.flatten(1).pow(2).sum(1) + 1e-12).sqrt()  # smooth at a zero gradient
    return ((norm - 1.0) ** 2).mean()
