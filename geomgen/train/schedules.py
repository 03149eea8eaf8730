"""Learning-rate schedules with linear warm-up: cosine, linear, inverse-sqrt, constant.

:func:`build_scheduler` returns a :class:`WarmupScheduler`, a
``torch.optim.lr_scheduler.LRScheduler`` whose rate is a closed-form function
of the step (like ``LambdaLR``, but with an absolute floor ``min_lr``).  Call
its ``step()`` once per training step, after the optimizer's ``step()``.

Formulas.  ``s`` is the number of ``step()`` calls so far (``0`` before the
first update, so the rate used by update number ``s + 1`` is ``lr(s)``),
``W = warmup_steps``, ``T = total_steps``, ``b`` the group's base (peak) rate
and ``m = min_lr``:

* warm-up, every schedule, ``s < W``: ``lr(s) = b * (s + 1) / W`` (reaches
  ``b`` on the last warm-up step; never 0);
* after warm-up, with progress ``p = clamp((s - W) / (T - W), 0, 1)``
  (``p = 1`` when ``T == W``):

  - ``"constant"``: ``lr(s) = b``;
  - ``"linear"``: ``lr(s) = b - (b - m) * p`` (``m`` from ``s = T`` on);
  - ``"cosine"``: ``lr(s) = m + (b - m) * (1 + cos(pi * p)) / 2``;
  - ``"inverse-sqrt"``: ``lr(s) = max(m, b * sqrt(W' / max(s, W')))`` with
    ``W' = max(W, 1)``: ``b`` at the end of warm-up, then ``∝ 1 / sqrt(s)``
    (``T`` is not needed).

Units: steps are optimizer/training steps, not epochs.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.optim.lr_scheduler import LRScheduler

from geomgen import checks as V

__all__ = ["SCHEDULES", "WarmupScheduler", "build_scheduler", "schedule_lr"]

#: Names accepted by :func:`build_scheduler`.
SCHEDULES: tuple[str, ...] = ("constant", "cosine", "linear", "inverse-sqrt")

_FN = "build_scheduler"


def schedule_lr(
    step: int,
    base_lr: float,
    *,
    name: str,
    warmup_steps: int = 0,
    total_steps: int | None = None,
    min_lr: float = 0.0,
) -> float:
    """The learning rate at ``step`` (see the module docstring for the formulas).

    No argument checks: :func:`build_scheduler` validates once.
    """
    s, w, b, m = int(step), int(warmup_steps), float(base_lr), float(min_lr)
    if s < w:
        return b * (s + 1) / w
    if name == "constant":
        return b
    if name == "inverse-sqrt":
        w1 = max(w, 1)
        return max(m, b * math.sqrt(w1 / max(s, w1)))
    assert total_steps is not None
    span = int(total_steps) - w
    p = 1.0 if span <= 0 else min(max((s - w) / span, 0.0), 1.0)
    if name == "linear":
        return b - (b - m) * p
    if name == "cosine":
        return m + (b - m) * 0.5 * (1.0 + math.cos(math.pi * p))
    raise ValueError(f"unknown schedule {name!r}")


class WarmupScheduler(LRScheduler):
    """Warm-up + decay schedule over an optimizer's param groups.

    Every group follows the same curve scaled to its own base rate
    (``initial_lr``, the group's ``lr`` when the scheduler was made).  The
    state dict holds only numbers and strings, so it loads with
    ``torch.load(weights_only=True)``.  Build it with :func:`build_scheduler`.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        name: str,
        warmup_steps: int = 0,
        total_steps: int | None = None,
        min_lr: float = 0.0,
        last_epoch: int = -1,
    ) -> None:
        self.name = name
        self.warmup_steps = int(warmup_steps)
        self.total_steps = None if total_steps is None else int(total_steps)
        self.min_lr = float(min_lr)
        super().__init__(optimizer, last_epoch)

    def _lrs(self) -> list[float]:
        return [
            schedule_lr(
                self.last_epoch,
                float(b),
                name=self.name,
                warmup_steps=self.warmup_steps,
                total_steps=self.total_steps,
                min_lr=self.min_lr,
            )
            for b in self.base_lrs
        ]

    def get_lr(self) -> list[float]:  # type: ignore[override]
        """Rates for the current step ``last_epoch``."""
        return self._lrs()

    _get_closed_form_lr = get_lr

    def step(self, epoch: int | None = None) -> None:  # type: ignore[override]
        """Advance one step and write the new rates into the optimizer.

        Unlike the base class it does not warn when called before the
        optimizer stepped (e.g. a GAN's generator stepping every k-th batch, or
        a step that AMP skipped): the rate is a function of the training step.
        ``epoch`` (deprecated in torch) jumps to that step.
        """
        self._step_count = getattr(self, "_step_count", 0) + 1
        self.last_epoch = self.last_epoch + 1 if epoch is None else int(epoch)
        lrs = self._lrs()
        for group, lr in zip(self.optimizer.param_groups, lrs):
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(lr)
            else:
                group["lr"] = lr
        self._last_lr = lrs

    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    name: str = "constant",
    *,
    warmup_steps: int = 0,
    total_steps: int | None = None,
    min_lr: float = 0.0,
) -> WarmupScheduler:
    """Build a warm-up + decay schedule (formulas in :mod:`geomgen.train.schedules`).

    Args:
        optimizer: Its groups' current ``lr`` are the peak rates.
        name: ``"constant"``, ``"cosine"``, ``"linear"`` or ``"inverse-sqrt"``.
        warmup_steps: Steps of linear warm-up, ``>= 0``.
        total_steps: Step at which cosine/linear reach ``min_lr``; required
            for them, ``>= warmup_steps``; ignored by the others.
        min_lr: Floor of cosine/linear/inverse-sqrt, ``0 <= min_lr <=`` every
            group's rate.

    Raises:
        geomgen.errors.InvalidInputError: unknown ``name``, ``warmup_steps >
            total_steps``, a negative value, or ``min_lr`` above a group's rate;
            the message names the argument.
    """
    V.check_choice(name, "name", SCHEDULES, fn=_FN)
    warmup_steps = V.check_int(warmup_steps, "warmup_steps", min_value=0, fn=_FN)
    min_lr = V.check_float(min_lr, "min_lr", nonnegative=True, fn=_FN)
    if name in ("cosine", "linear"):
        if total_steps is None:
            raise V.fail("total_steps", f"is required by the {name!r} schedule", _FN)
    if total_steps is not None:
        total_steps = V.check_int(total_steps, "total_steps", min_value=1, fn=_FN)
        if name != "inverse-sqrt" and warmup_steps > total_steps:
            raise V.fail(
                "warmup_steps",
                f"must be <= total_steps ({total_steps}), got {warmup_steps}",
                _FN,
            )
    for i, group in enumerate(optimizer.param_groups):
        lr = float(group.get("initial_lr", group["lr"]))
        if lr < 0:
            raise V.fail("optimizer", f"param group {i} has a negative lr {lr}", _FN)
        if name != "constant" and min_lr > lr:
            raise V.fail("min_lr", f"must be <= the learning rate {lr} (param group {i}), got {min_lr}", _FN)
    return WarmupScheduler(
        optimizer, name, warmup_steps=warmup_steps, total_steps=total_steps, min_lr=min_lr
    )
