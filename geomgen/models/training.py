"""Train a representation model on a registered dataset: :func:`train_representation`.

This is what ``geomgen train`` runs, and what ``scripts/train_pretrained.py``
uses to make the shipped weights.  It works unchanged under
``torchrun --nproc_per_node=N`` (the trainer joins the process group).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from geomgen.errors import InvalidInputError
from geomgen.models.task import RepresentationTask
from geomgen.train import FitSummary, TrainConfig, Trainer

__all__ = ["train_representation", "fit_registered_model", "TrainedModel", "save_model", "load_model", "MODEL_FORMAT"]

#: ``format`` field of model files written by :func:`save_model`.
MODEL_FORMAT = "geomgen-model/1"


@dataclass
class TrainedModel:
    """What :func:`train_representation` returns: the model (best weights when
    early stopping kept a best checkpoint), the fit summary and the model file."""

    model: torch.nn.Module
    summary: FitSummary
    model_path: Path | None


def save_model(model: torch.nn.Module, name: str, path: str | Path, extra: Mapping[str, Any] | None = None) -> Path:
    """Write ``{"format", "name", "config", "state_dict", **extra}`` to ``path``
    atomically (temp file, fsync, rename); loadable with ``weights_only=True``.

    ``name`` is the registry name; ``config`` is ``model.config`` (the build
    arguments), so :func:`load_model` rebuilds the architecture with
    ``geomgen.get_model(name, **config)``.
    """
    from geomgen.train.checkpoint import save_checkpoint

    config = dict(getattr(model, "config", {}) or {})
    payload = {"format": MODEL_FORMAT, "name": str(name), "config": config,
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    payload.update(dict(extra or {}))
    return save_checkpoint(path, payload)


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild and load a model file written by :func:`save_model` (or a trainer
    checkpoint of :func:`train_representation`), in eval mode.

    Raises:
        geomgen.errors.FileFormatError: not a geomgen model file.
        geomgen.errors.MeshFileNotFoundError: no such file.
    """
    import geomgen
    from geomgen.errors import FileFormatError
    from geomgen.train.checkpoint import load_checkpoint

    payload = load_checkpoint(path, map_location=map_location)
    if payload.get("format") != MODEL_FORMAT:
        raise FileFormatError(f"{path}: not a geomgen model file (format {payload.get('format')!r}, "
                              f"expected {MODEL_FORMAT!r})")
    model = geomgen.get_model(payload["name"], **payload.get("config", {}))
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as e:
        raise FileFormatError(f"{path}: weights do not fit model {payload['name']!r} "
                              f"with config {payload.get('config')}: {e}") from None
    return model.eval()


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
        :class:`TrainedModel`; with ``config.out_dir`` set, ``model.pt`` (see
        :func:`save_model`) is written there too, holding the best weights when
        ``early_stopping_metric`` kept a best checkpoint, else the last ones.
    """
    return fit_registered_model(name, "representation", RepresentationTask(), config, model_config=model_config,
                                dataset=dataset, dataset_config=dataset_config, train_data=train_data,
                                val_data=val_data, train_view="random")


def fit_registered_model(
    name: str,
    kind: str,
    task: Any,
    config: TrainConfig | Mapping[str, Any],
    *,
    model_config: Mapping[str, Any] | None = None,
    dataset: str = "shapes",
    dataset_config: Mapping[str, Any] | None = None,
    train_data: Any = None,
    val_data: Any = None,
    train_view: int | str = "random",
) -> TrainedModel:
    """Shared body of :func:`train_representation` and
    :func:`geomgen.generative.train_generator`: build registered model
    ``name`` (which must be of ``kind``), fit it with ``task`` on the
    dataset's ``train`` split (view ``train_view``; validation: ``val`` split,
    view 0, when early stopping is on), reload the best checkpoint, and write
    ``model.pt`` into ``config.out_dir`` (main process only).  ``ddp_mode``
    ``"auto"`` becomes ``"allreduce"`` (losses come from model methods, not ``forward``)."""
    import geomgen
    from geomgen.data import collate_samples
    from geomgen.train.checkpoint import load_checkpoint

    fn = "train_representation" if kind == "representation" else "train_generator"
    if isinstance(config, Mapping):
        config = TrainConfig.from_dict(config)
    if not isinstance(config, TrainConfig):
        raise InvalidInputError(f"{fn}: argument 'config' must be a TrainConfig, got {type(config).__name__}")
    if config.ddp_mode == "auto":
        config = config.replace(ddp_mode="allreduce")
    if name not in geomgen.list_models(kind=kind):
        geomgen.get_model(name)  # raises UnknownComponentError with suggestions
        other = "generator" if kind == "representation" else "representation"
        raise InvalidInputError(f"{fn}: {name!r} is a {other}, not a {kind}")
    model = geomgen.get_model(name, **dict(model_config or {}))
    dcfg = dict(dataset_config or {})
    if train_data is None:
        train_data = geomgen.get_dataset(dataset, split="train", view=train_view, **dcfg)
    if val_data is None and config.early_stopping_metric is not None:
        val_data = geomgen.get_dataset(dataset, split="val", view=0, **dcfg)
    trainer = Trainer(model, task, train_data, val_data, config, collate_fn=collate_samples)
    summary = trainer.fit()
    if summary.best_checkpoint is not None:
        state = load_checkpoint(summary.best_checkpoint, map_location="cpu")
        model.load_state_dict(state["model"])
    model_path = None
    if config.out_dir is not None and trainer.is_main:
        model_path = save_model(model, name, Path(config.out_dir) / "model.pt",
                                extra={"train_config": config.to_dict(), "summary": summary.to_dict()})
    return TrainedModel(model.eval(), summary, model_path)
