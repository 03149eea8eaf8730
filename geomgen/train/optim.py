"""Optimizers: SGD (plain, momentum, Nesterov) and AdamW, with weight-decay groups.

:func:`build_optimizer` turns a model (or parameters) and a few numbers into a
``torch.optim`` optimizer.  Given an ``nn.Module`` it splits the trainable
parameters into two groups:

* ``"decay"``: weights of dimension >= 2 (linear/conv kernels, embeddings)
  get ``weight_decay``;
* ``"no_decay"``: biases, every other parameter of dimension <= 1 and every
  parameter of a normalisation layer (BatchNorm, LayerNorm, GroupNorm,
  InstanceNorm, LocalResponseNorm, RMSNorm) get no weight decay.

Given an iterable of tensors the same rule is applied by dimension alone;
given a list of param-group dicts they are passed through unchanged (each
group's own keys win over the defaults).

Conventions: ``lr`` is the peak learning rate (the schedule of
:mod:`geomgen.train.schedules` scales it); ``weight_decay`` is decoupled
(AdamW, ``p -= lr * wd * p``) for AdamW and L2 (added to the gradient) for SGD,
as in ``torch.optim``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

from geomgen import checks as V

__all__ = ["OPTIMIZERS", "build_optimizer", "param_groups"]

#: Names accepted by :func:`build_optimizer`.
OPTIMIZERS: tuple[str, ...] = ("adamw", "sgd")

_NORM_TYPES: tuple[type, ...] = tuple(
    t
    for t in (
        nn.modules.batchnorm._NormBase,
        nn.LayerNorm,
        nn.GroupNorm,
        nn.LocalResponseNorm,
        getattr(nn, "RMSNorm", None),
    )
    if t is not None
)

_FN = "build_optimizer"


def param_groups(
    params: nn.Module | Iterable[torch.Tensor] | Sequence[dict[str, Any]],
    weight_decay: float,
) -> list[dict[str, Any]]:
    """Split trainable parameters into a weight-decay group and a no-decay group.

    Args:
        params: A module, an iterable of tensors, or a list of param-group
            dicts (returned as shallow copies, untouched otherwise).
        weight_decay: Decay of the ``"decay"`` group; the ``"no_decay"``
            group gets ``0.0``.

    Returns:
        Up to two groups ``{"params": [...], "weight_decay": float, "name": str}``;
        empty groups are left out.  Parameters with ``requires_grad=False`` are
        skipped, and a parameter shared by several modules appears once.
    """
    if isinstance(params, nn.Module):
        decay: list[torch.Tensor] = []
        no_decay: list[torch.Tensor] = []
        seen: set[int] = set()
        for module in params.modules():
            is_norm = isinstance(module, _NORM_TYPES)
            for p in module.parameters(recurse=False):
                if not p.requires_grad or id(p) in seen:
                    continue
                seen.add(id(p))
                (no_decay if is_norm or p.ndim <= 1 else decay).append(p)
    else:
        items = list(params)
        if items and all(isinstance(g, dict) for g in items):
            return [dict(g) for g in items]
        decay, no_decay = [], []
        seen = set()
        for i, p in enumerate(items):
            if not isinstance(p, torch.Tensor):
                raise V.fail(
                    "params",
                    f"must be an nn.Module, tensors or param-group dicts; item {i} is "
                    f"{type(p).__name__}",
                    _FN,
                )
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": float(weight_decay), "name": "decay"},
        {"params": no_decay, "weight_decay": 0.0, "name": "no_decay"},
    ]
    return [g for g in groups if g["params"]]


def build_optimizer(
    params: nn.Module | Iterable[torch.Tensor] | Sequence[dict[str, Any]],
    name: str = "adamw",
    *,
    lr: float = 1e-3,
    momentum: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    betas: Sequence[float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> torch.optim.Optimizer:
    """Build an optimizer by name.

    Args:
        params: What to optimize: a module (split by :func:`param_groups`),
            an iterable of tensors (split by dimension) or param-group dicts.
        name: ``"adamw"`` (:class:`torch.optim.AdamW`) or ``"sgd"``
            (:class:`torch.optim.SGD`; ``momentum > 0`` gives heavy-ball
            momentum, ``nesterov=True`` Nesterov momentum).
        lr: Learning rate, ``>= 0`` (the peak value when a schedule is used).
        momentum: SGD momentum in ``[0, 1)``; ignored by AdamW.
        nesterov: SGD Nesterov momentum; needs ``momentum > 0``.
        weight_decay: ``>= 0``; applied to the ``"decay"`` group only.
        betas: AdamW ``(beta1, beta2)``, each in ``[0, 1)``.
        eps: AdamW denominator term, ``> 0``.

    Raises:
        geomgen.errors.InvalidInputError: unknown ``name`` or an out-of-range
            value; the message names the argument.
    """
    V.check_choice(name, "name", OPTIMIZERS, fn=_FN)
    lr = V.check_float(lr, "lr", nonnegative=True, fn=_FN)
    weight_decay = V.check_float(weight_decay, "weight_decay", nonnegative=True, fn=_FN)
    groups = param_groups(params, weight_decay)
    if not groups or not any(g["params"] for g in groups):
        raise V.fail("params", "holds no trainable parameters (requires_grad=True)", _FN)
    if name == "sgd":
        momentum = V.check_float(momentum, "momentum", nonnegative=True, fn=_FN)
        if momentum >= 1.0:
            raise V.fail("momentum", f"must be < 1, got {momentum}", _FN)
        V.check_bool(nesterov, "nesterov", fn=_FN)
        if nesterov and momentum == 0.0:
            raise V.fail("nesterov", "needs momentum > 0, got momentum=0.0", _FN)
        return torch.optim.SGD(
            groups, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay
        )
    if not isinstance(betas, Sequence) or len(betas) != 2:
        raise V.fail("betas", f"must be a pair (beta1, beta2), got {betas!r}", _FN)
    b1 = V.check_float(betas[0], "betas", nonnegative=True, fn=_FN)
    b2 = V.check_float(betas[1], "betas", nonnegative=True, fn=_FN)
    if b1 >= 1.0 or b2 >= 1.0:
        raise V.fail("betas", f"entries must lie in [0, 1), got {tuple(betas)!r}", _FN)
    eps = V.check_float(eps, "eps", positive=True, fn=_FN)
    return torch.optim.AdamW(groups, lr=lr, betas=(b1, b2), eps=eps, weight_decay=weight_decay)
