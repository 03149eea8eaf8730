"""KL divergence of a diagonal Gaussian posterior from the standard normal prior (VAE)."""

from __future__ import annotations

import torch

from geomgen import checks as V

__all__ = ["gaussian_kl"]

_FN = "gaussian_kl"


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """``KL(N(mu, diag(exp(logvar))) || N(0, I))``, the VAE regulariser.

    Per sample, summed over the ``D`` latent dimensions (the last axis)::

        KL = 0.5 * sum_d (mu_d^2 + exp(logvar_d) - 1 - logvar_d)

    in nats (natural log).  ``logvar`` is ``log sigma^2`` (the log *variance*,
    not the log standard deviation).

    Args:
        mu: ``(N, D)`` (any ``(..., D)``) posterior means.
        logvar: same shape, posterior log-variances.
        reduction: ``"mean"`` (default): mean over the batch (all leading
            axes) of the per-sample sums over ``D``; ``"sum"``: sum over the
            batch; ``"none"``: the per-sample ``(N,)`` (``(...)``) values.

    Returns:
        0-dim tensor (``(...)`` for ``"none"``), >= 0, differentiable w.r.t.
        both arguments.

    Raises:
        InvalidInputError: shapes, dtypes or devices that differ, 0-dim
            inputs, unknown ``reduction``.
    """
    V.check_tensor(mu, "mu", floating=True, fn=_FN)
    V.check_tensor(logvar, "logvar", shape=tuple(mu.shape), shape_desc=str(tuple(mu.shape)), floating=True, fn=_FN)
    if mu.dim() == 0:
        raise V.fail("mu", "must have a latent axis: shape (N, D) or (..., D), got a scalar", _FN)
    V.check_same_device({"mu": mu, "logvar": logvar}, fn=_FN)
    V.check_choice(reduction, "reduction", ("mean", "sum", "none"), fn=_FN)
    per_sample = 0.5 * (mu.square() + torch.exp(logvar) - 1.0 - logvar).sum(-1)
    if reduction == "none":
        return per_sample
    if reduction == "sum":
        return per_sample.sum()
    return per_sample.mean()
