"""Normalisation factory shared by the layers of :mod:`geomgen.nn`.

:func:`make_norm` builds the normalisation layer for ``C`` channels of a 1-D,
2-D or 3-D (channels-first) tensor from a short name::

    make_norm("batch", 64, dim=2)        # nn.BatchNorm2d(64)      on (N, 64, H, W)
    make_norm("group", 64, 8, dim=3)     # nn.GroupNorm(8, 64)     on (N, 64, D, H, W)
    make_norm("instance", 64, dim=2)     # nn.InstanceNorm2d(64, affine=True)
    make_norm("layer", 64)               # nn.GroupNorm(1, 64): LayerNorm over (C, *)
    make_norm("none", 64)                # nn.Identity()

Train/eval behaviour is torch's: ``"batch"`` normalises with the batch
statistics in training mode (and updates running estimates) and with the
running estimates in eval mode; ``"group"``, ``"layer"`` and ``"instance"``
(``track_running_stats=False``) use the statistics of each sample in both
modes, so they do not depend on the batch and work with batches of one.
"""

from __future__ import annotations

from torch import nn

from geomgen import checks as V

__all__ = ["NORM_KINDS", "make_norm", "group_count", "is_norm"]

#: Accepted normalisation kinds (``norm=`` of every block in :mod:`geomgen.nn`).
NORM_KINDS: tuple[str, ...] = ("batch", "group", "instance", "layer", "none")

_BATCH = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_INSTANCE = {1: nn.InstanceNorm1d, 2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}


def make_norm(
    kind: str,
    channels: int,
    groups: int = 8,
    *,
    dim: int = 2,
    eps: float = 1e-5,
    momentum: float = 0.1,
    affine: bool = True,
    name: str = "norm",
    fn: str | None = None,
) -> nn.Module:
    """Build a normalisation layer over ``channels`` channels.

    Args:
        kind: one of :data:`NORM_KINDS`:

            * ``"batch"``: ``BatchNorm{dim}d``; input ``(N, C)`` or ``(N, C, L)``
              (``dim=1``), ``(N, C, H, W)`` (2), ``(N, C, D, H, W)`` (3).
            * ``"group"``: ``GroupNorm(G, C)`` with ``G`` the largest divisor of
              ``C`` that is ``<= groups`` (so any channel count works: 12
              channels with ``groups=8`` get 6 groups); any ``(N, C, *)`` input.
            * ``"instance"``: ``InstanceNorm{dim}d(C, affine=affine)``; input
              ``(N, C, L)``, ``(N, C, H, W)`` or ``(N, C, D, H, W)``.
            * ``"layer"``: ``GroupNorm(1, C)``: normalises each sample over all
              of ``(C, *)`` (``nn.LayerNorm(C)`` for an ``(N, C)`` input).
            * ``"none"``: ``nn.Identity()``.
        channels: ``C >= 1``.
        groups: maximum number of groups of ``"group"`` (``>= 1``); ignored
            by the other kinds.
        dim: spatial dimensionality 1, 2 or 3 (only ``"batch"`` and
            ``"instance"`` depend on it).
        eps: added to the variance.
        momentum: running-statistics momentum of ``"batch"``.
        affine: learn a per-channel scale and shift (initialised 1 and 0).
        name: argument name of ``kind`` in error messages.
        fn: public function named in error messages.

    Returns:
        A module mapping its input shape to the same shape.

    Raises:
        InvalidInputError: unknown ``kind``, ``channels < 1``, ``groups < 1``,
            ``dim`` not in 1, 2, 3.
    """
    fn = fn or "make_norm"
    V.check_choice(kind, name, NORM_KINDS, fn=fn)
    channels = V.check_int(channels, "channels", min_value=1, fn=fn)
    groups = V.check_int(groups, "groups", min_value=1, fn=fn)
    dim = V.check_int(dim, "dim", min_value=1, max_value=3, fn=fn)
    eps = V.check_float(eps, "eps", positive=True, fn=fn)
    V.check_bool(affine, "affine", fn=fn)
    if kind == "batch":
        return _BATCH[dim](channels, eps=eps, momentum=momentum, affine=affine)
    if kind == "group":
        return nn.GroupNorm(group_count(channels, groups), channels, eps=eps, affine=affine)
    if kind == "layer":
        return nn.GroupNorm(1, channels, eps=eps, affine=affine)
    if kind == "instance":
        return _INSTANCE[dim](channels, eps=eps, affine=affine, track_running_stats=False)
    return nn.Identity()


def group_count(channels: int, groups: int) -> int:
    """The largest divisor of ``channels`` that is ``<= groups`` (the group count
    :func:`make_norm` gives ``"group"``)."""
    return max(g for g in range(1, min(groups, channels) + 1) if channels % g == 0)


def is_norm(module: nn.Module) -> bool:
    """True for the layers :func:`make_norm` builds (batch/group/instance/layer norms)."""
    return isinstance(module, (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm))
