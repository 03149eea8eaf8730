"""Train a generator on a registered dataset: :func:`train_generator`.

What ``geomgen train NAME`` runs when ``NAME`` is a generator, and what
``scripts/train_generators.py`` uses for the shipped weights.  The core
trainer does the loop (checkpoints, ``--resume``, progress bars, loss curves,
``torchrun`` data parallelism); :class:`~geomgen.generative.GenerativeTask`
delegates the maths (one loss, or a GAN's alternating updates) to the model;
the body (build, fit, keep the best weights, write ``model.pt``) is
:func:`geomgen.weights.train_model`, shared with the representations.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from geomgen.generative.task import GenerativeTask
from geomgen.train import TrainConfig
from geomgen.weights import TrainedModel, train_model

__all__ = ["train_generator"]


def train_generator(
    name: str,
    config: TrainConfig | Mapping[str, Any],
    *,
    model_config: Mapping[str, Any] | None = None,
    dataset: str = "shapes",
    dataset_config: Mapping[str, Any] | None = None,
    train_data: Any = None,
    val_data: Any = None,
) -> TrainedModel:
    """Train generator ``name`` with the core trainer.

    Args:
        name: registry name (``geomgen.list_models(kind="generator")``).
        config: :class:`~geomgen.train.TrainConfig` (or dict); ``ddp_mode``
            ``"auto"`` becomes ``"allreduce"``.  Early stopping on e.g.
            ``"nll"`` (mode ``"min"``) needs a validation split.
        model_config: keyword arguments for ``geomgen.get_model(name, ...)``
            (e.g. ``{"num_classes": 10, "categories": [...]}`` for a
            class-conditional model).
        dataset: registered dataset name used when ``train_data`` is None
            (``split="train"``, view 0: generators use the shapes, not the images).
        dataset_config: extra keyword arguments of the dataset builder.
        train_data: training dataset to use instead of ``dataset`` (sample
            dicts of :mod:`geomgen.data` with ``voxels`` / ``points`` and
            ``label``).
        val_data: validation dataset to use instead, same sample dicts.

    Returns:
        :class:`~geomgen.weights.TrainedModel`; with ``config.out_dir``,
        ``model.pt`` (:func:`~geomgen.weights.save_model`) is written there too.
    """
    return train_model(name, "generator", GenerativeTask(), config, model_config=model_config,
                       dataset=dataset, dataset_config=dataset_config, train_data=train_data,
                       val_data=val_data, train_view=0)
