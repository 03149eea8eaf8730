"""The trainer task of every representation: :class:`RepresentationTask`.

It turns a :func:`geomgen.data.collate_samples` batch into one view per sample
(:func:`~geomgen.models.base.single_view`) and delegates the maths to the
model: ``model.compute_loss`` for training, ``model.validation_metrics`` for
validation (the loss terms and ``F1@0.3``, the default early-stopping metric).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from geomgen.models.base import single_view
from geomgen.train.task import Task

__all__ = ["RepresentationTask"]


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, "module", model)


class RepresentationTask(Task):
    """Training/validation steps of a :class:`~geomgen.models.ShapePredictor`.

    Args:
        val_view: which stored view validation uses (fixed, so validation
            numbers are comparable between runs).

    Losses come from model methods other than ``forward``, which the hooks of
    ``DistributedDataParallel`` do not see: train these tasks with the
    trainer's ``ddp_mode="allreduce"`` (what :func:`~geomgen.models.train_representation`
    sets), which averages the gradients after ``backward`` instead.
    """

    def __init__(self, val_view: int = 0) -> None:
        self.val_view = int(val_view)

    def training_step(self, model: torch.nn.Module, batch: Mapping[str, Any], step: int) -> dict[str, torch.Tensor]:
        return _unwrap(model).compute_loss(single_view(batch, 0))

    def validation_step(self, model: torch.nn.Module, batch: Mapping[str, Any]) -> dict[str, Any]:
        b = single_view(batch, self.val_view if batch["images"].dim() == 5 and
                        batch["images"].shape[1] > self.val_view else 0)
        return _unwrap(model).validation_metrics(b)
