"""The trainer task of every generator: :class:`GenerativeTask`.

The maths lives in the model (:class:`~geomgen.generative.ShapeGenerator`):
``training_step`` (one loss, or alternating :class:`~geomgen.train.OptimizerStep`
items for GANs), ``configure_optimizers`` (several optimizers for GANs) and
``validation_metrics`` (loss terms, ``nll`` and ``bits_per_voxel`` where a
likelihood is defined).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from geomgen.train.task import Task

__all__ = ["GenerativeTask"]


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, "module", model)


class GenerativeTask(Task):
    """Training/validation steps of a :class:`~geomgen.generative.ShapeGenerator`.

    Like :class:`~geomgen.models.RepresentationTask`, losses come from model
    methods other than ``forward``: train with the trainer's
    ``ddp_mode="allreduce"`` (what :func:`~geomgen.generative.train_generator` sets).
    """

    def configure_optimizers(self, model: torch.nn.Module, config: Any) -> Any:
        return _unwrap(model).configure_optimizers(config)

    def training_step(self, model: torch.nn.Module, batch: Mapping[str, Any], step: int) -> Any:
        return _unwrap(model).training_step(batch, step)

    def validation_step(self, model: torch.nn.Module, batch: Mapping[str, Any]) -> dict[str, Any]:
        return _unwrap(model).validation_metrics(batch)
