"""Train a representation model on a registered dataset: :func:`train_representation`.

This is what ``geomgen train`` runs, and what ``scripts/train_pretrained.py``
uses to make the shipped weights.  It works unchanged under
``torchrun --nproc_per_node=N`` (the trainer joins the process group).  The
body (build, fit, keep the best weights, write ``model.pt``) is
:func:`geomgen.weights.train_model`, shared with the generators.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from geomgen.models.task import RepresentationTask
from geomgen.train import TrainConfig
from geomgen.weights import TrainedModel, train_model

__all__ = ["train_representation"]


def train_representation(
    name: str,
    config: TrainConfig | Mapping[str, Any],
    *,
    model_config: Mapping[str, Any] | None = None,
    dataset: str = "shapes",
    dataset_config: Mapping[str, Any] | None = None,
    train_data: Any = None,
    val_data: Any = None,
) -> TrainedModel:
    """Train representation ``name`` with the core trainer.

    Args:
        name: registry name (``geomgen.list_models(kind="representation")``).
        config: :class:`~geomgen.train.TrainConfig` (or dict).  ``ddp_mode``
            ``"auto"`` becomes ``"allreduce"`` (see :class:`RepresentationTask`).
        model_config: keyword arguments for ``geomgen.get_model(name, ...)``.
        dataset: registered dataset name used when ``train_data`` is None;
            training reads ``split="train", view="random"``, validation
            ``split="val", view=0``.
        dataset_config: extra keyword arguments of the dataset builder
            (e.g. ``{"per_category": {"train": 100}}``).
        train_data: training dataset to use instead of ``dataset`` (sample
            dicts of :mod:`geomgen.data`).
        val_data: validation dataset to use instead, same sample dicts.

    Returns:
        :class:`~geomgen.weights.TrainedModel`; with ``config.out_dir`` set,
        ``model.pt`` (see :func:`~geomgen.weights.save_model`) is written there
        too, holding the best weights when ``early_stopping_metric`` kept a
        best checkpoint, else the last ones.
    """
    return train_model(name, "representation", RepresentationTask(), config, model_config=model_config,
                       dataset=dataset, dataset_config=dataset_config, train_data=train_data,
                       val_data=val_data, train_view="random")
