"""Model files and shipped weights, for predictors and generators alike.

* Model files: :func:`save_model` / :func:`load_model` (format
  :data:`MODEL_FORMAT`: registry name, build config, weights; loadable with
  ``weights_only=True``).
* Training a registered model: :func:`train_model` builds it, fits it with a
  trainer task, reloads the best checkpoint and writes ``model.pt``; it is the
  body of :func:`geomgen.models.train_representation` and
  :func:`geomgen.generative.train_generator`, and returns a :class:`TrainedModel`.
* Shipped weights: :func:`list_pretrained`, :func:`pretrained_info`,
  :func:`load_pretrained`, and :func:`write_manifest_entry` /
  :func:`write_manifest_section` which record them.

Weights live in the assets folder (:func:`assets_dir`): ``$GEOMGEN_ASSETS`` if
set, else the ``assets`` folder next to the ``geomgen`` package (a source or
editable checkout).  ``assets/pretrained/manifest.json`` lists them::

    {"format": "geomgen-pretrained/1",
     "dataset": {...how the training data was made...},
     "models": {"voxel": {"file": "voxel.pt", "sha256": "...", "bytes": 123, "kind": "representation",
                          "config": {...build kwargs...}, "train": {...}, "eval": {...}}},
     "baseline": {...the mean-shape baseline's eval summary...}}

Each model file is a :func:`save_model` file; its size and SHA-256 are checked
before it is loaded.  ``scripts/train_pretrained.py`` and
``scripts/train_generators.py`` (or ``geomgen train NAME``) make them.

This module sits below :mod:`geomgen.models` and :mod:`geomgen.generative`
(it imports neither): it rebuilds architectures through the registry,
``geomgen.get_model(name, **config)``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from geomgen import checks as V
from geomgen.errors import FileFormatError, GeomgenError, InvalidInputError, MeshFileNotFoundError, UnknownComponentError
from geomgen.train import FitSummary, TrainConfig

__all__ = [
    "MODEL_FORMAT",
    "PRETRAINED_FORMAT",
    "TrainedModel",
    "save_model",
    "load_model",
    "train_model",
    "PretrainedNotFoundError",
    "assets_dir",
    "manifest_path",
    "read_manifest",
    "list_pretrained",
    "pretrained_info",
    "load_pretrained",
    "load_named_model",
    "write_manifest_entry",
    "write_manifest_section",
]

#: ``format`` field of model files written by :func:`save_model`.
MODEL_FORMAT = "geomgen-model/1"

#: ``format`` field of the pretrained manifest.
PRETRAINED_FORMAT = "geomgen-pretrained/1"

#: Model kinds of the registry that :func:`train_model` trains, with the public
#: function whose name its messages carry.
_TRAIN_FN = {"representation": "train_representation", "generator": "train_generator"}


# ---------------------------------------------------------------------------
# model files
# ---------------------------------------------------------------------------


@dataclass
class TrainedModel:
    """What :func:`train_model` (and so ``train_representation`` /
    ``train_generator``) returns: the model in eval mode (best weights when
    early stopping kept a best checkpoint), the fit summary and the model file
    (None without ``config.out_dir`` or off the main process)."""

    model: torch.nn.Module
    summary: FitSummary
    model_path: Path | None


def save_model(model: torch.nn.Module, name: str, path: str | Path, extra: Mapping[str, Any] | None = None) -> Path:
    """Write ``{"format", "name", "config", "state_dict", **extra}`` to ``path``
    atomically (temp file, fsync, rename); loadable with ``weights_only=True``.

    ``name`` is the registry name; ``config`` is ``model.config`` (the build
    arguments), so :func:`load_model` rebuilds the architecture with
    ``geomgen.get_model(name, **config)``.  Tensors are stored on the CPU.

    Returns:
        the path written.
    """
    from geomgen.train.checkpoint import save_checkpoint

    config = dict(getattr(model, "config", {}) or {})
    payload = {"format": MODEL_FORMAT, "name": str(name), "config": config,
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    payload.update(dict(extra or {}))
    return save_checkpoint(path, payload)


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild and load a model file written by :func:`save_model` (or the
    ``model.pt`` of :func:`train_model`), in eval mode.

    Raises:
        geomgen.errors.FileFormatError: not a geomgen model file, or weights
            that do not fit the architecture its config builds.
        geomgen.errors.MeshFileNotFoundError: no such file.
    """
    import geomgen
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


# ---------------------------------------------------------------------------
# training a registered model
# ---------------------------------------------------------------------------


def train_model(
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
    """Build registered model ``name``, fit it with ``task``, keep its best weights and write ``model.pt``.

    The shared body of :func:`geomgen.models.train_representation` (``kind``
    ``"representation"``, a ``RepresentationTask``, ``train_view="random"``) and
    :func:`geomgen.generative.train_generator` (``"generator"``, a
    ``GenerativeTask``, ``train_view=0``); error messages name those functions.
    It works unchanged under ``torchrun --nproc_per_node=N`` (the trainer joins
    the process group).

    Args:
        name: registry name; must be a model of ``kind``
            (``geomgen.list_models(kind=kind)``).
        kind: ``"representation"`` or ``"generator"``.
        task: the :class:`~geomgen.train.Task` that turns batches into losses.
        config: :class:`~geomgen.train.TrainConfig` (or dict).  ``ddp_mode``
            ``"auto"`` becomes ``"allreduce"`` (losses come from model methods,
            not ``forward``, which the hooks of DistributedDataParallel miss).
        model_config: keyword arguments for ``geomgen.get_model(name, ...)``.
        dataset: registered dataset used when ``train_data`` is None: training
            reads ``split="train", view=train_view``; validation (only when
            ``config.early_stopping_metric`` is set and ``val_data`` is None)
            ``split="val", view=0``.
        dataset_config: extra keyword arguments of the dataset builder.
        train_data: training dataset to use instead (sample dicts of
            :mod:`geomgen.data`).
        val_data: validation dataset to use instead, same sample dicts.
        train_view: the ``view`` argument of the training split.

    Returns:
        :class:`TrainedModel`; with ``config.out_dir`` set, ``model.pt`` (see
        :func:`save_model`, plus ``train_config`` and ``summary``) is written
        there by the main process, holding the best weights when
        ``early_stopping_metric`` kept a best checkpoint, else the last ones.

    Raises:
        InvalidInputError: ``config`` is not a TrainConfig; ``name`` is a model
            of the other kind; ``kind`` unknown.
        UnknownComponentError: no model named ``name`` (with suggestions).
    """
    import geomgen
    from geomgen.data import collate_samples
    from geomgen.train import Trainer
    from geomgen.train.checkpoint import load_checkpoint

    V.check_choice(kind, "kind", tuple(_TRAIN_FN), fn="train_model")
    fn = _TRAIN_FN[kind]
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


# ---------------------------------------------------------------------------
# shipped weights: the manifest
# ---------------------------------------------------------------------------


class PretrainedNotFoundError(GeomgenError, LookupError):
    """No pretrained weights under that name (or no manifest at all)."""


def assets_dir() -> Path:
    """Where the shipped assets are: ``$GEOMGEN_ASSETS`` if set; else ``<repo root>/assets``
    (next to the ``geomgen`` package: a source or editable checkout) when it exists;
    else ``<sys.prefix>/share/geomgen/assets``, where a wheel install puts them
    (``[tool.setuptools.data-files]`` in ``pyproject.toml``)."""
    env = os.environ.get("GEOMGEN_ASSETS")
    if env:
        return Path(env).expanduser()
    checkout = Path(__file__).resolve().parents[1] / "assets"
    if checkout.is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "geomgen" / "assets"


def manifest_path() -> Path:
    """``<assets>/pretrained/manifest.json``."""
    return assets_dir() / "pretrained" / "manifest.json"


def read_manifest(missing_ok: bool = True) -> dict[str, Any]:
    """The manifest as a dict (an empty one when there is none and ``missing_ok``).

    Raises:
        PretrainedNotFoundError: no manifest and not ``missing_ok``.
        FileFormatError: the manifest is not valid JSON or of another format.
    """
    path = manifest_path()
    if not path.is_file():
        if missing_ok:
            return {"format": PRETRAINED_FORMAT, "models": {}}
        raise PretrainedNotFoundError(f"no pretrained manifest at '{path}' (set GEOMGEN_ASSETS to the assets "
                                      "folder, or train a model with: geomgen train NAME)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise FileFormatError(f"pretrained manifest '{path}' cannot be read: {e}") from e
    if not isinstance(data, dict) or data.get("format") != PRETRAINED_FORMAT or not isinstance(
            data.get("models", {}), dict):
        raise FileFormatError(f"pretrained manifest '{path}' is not a {PRETRAINED_FORMAT!r} manifest")
    data.setdefault("models", {})
    return data


def list_pretrained(kind: str | None = None) -> list[str]:
    """Names of the models with shipped weights (sorted): ``kind``
    ``"representation"``, ``"generator"`` or None for both (entries without
    a ``kind`` are representations)."""
    if kind not in (None, "representation", "generator"):
        raise GeomgenError(f"list_pretrained: kind must be 'representation', 'generator' or None, got {kind!r}")
    models = read_manifest()["models"]
    return sorted(n for n, e in models.items()
                  if kind is None or (e.get("kind", "representation") if isinstance(e, dict) else None) == kind)


def _unknown(name: str) -> PretrainedNotFoundError:
    available = list_pretrained()
    where = manifest_path()
    have = ", ".join(repr(n) for n in available) if available else "none"
    return PretrainedNotFoundError(
        f"no pretrained weights for {name!r} (available: {have}; manifest '{where}'). Train one with: "
        f"geomgen train {name} --out-dir runs/{name}, then pass weights='runs/{name}/model.pt' "
        "(or --weights on the command line)")


def pretrained_info(name: str) -> dict[str, Any]:
    """The manifest entry of ``name`` (file, sha256, bytes, kind, config, train, eval) plus ``"path"``.

    Raises:
        PretrainedNotFoundError: no such entry (the message lists the available ones).
    """
    models = read_manifest()["models"]
    if name not in models:
        raise _unknown(name)
    entry = dict(models[name])
    entry["path"] = str(manifest_path().parent / entry.get("file", f"{name}.pt"))
    return entry


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_pretrained(name: str, device: Any = "cpu") -> torch.nn.Module:
    """The shipped model ``name`` (a ``ShapePredictor`` or a ``ShapeGenerator``), in eval mode on ``device``.

    Raises:
        PretrainedNotFoundError: no manifest entry for ``name``.
        MeshFileNotFoundError: the weights file listed is missing.
        FileFormatError: its size or SHA-256 differ from the manifest, or it does not load.
    """
    info = pretrained_info(name)
    path = Path(info["path"])
    if not path.is_file():
        raise MeshFileNotFoundError(f"pretrained weights of {name!r} are missing: '{path}' (listed in "
                                    f"'{manifest_path()}'); reinstall, or train with: geomgen train {name}")
    size = path.stat().st_size
    if "bytes" in info and size != int(info["bytes"]):
        raise FileFormatError(f"pretrained weights '{path}' have {size} bytes, the manifest says "
                              f"{info['bytes']}: the file is truncated or was replaced")
    if "sha256" in info and _sha256(path) != info["sha256"]:
        raise FileFormatError(f"pretrained weights '{path}' fail the SHA-256 check of the manifest: the file "
                              "is corrupt or was replaced")
    try:
        model = load_model(path, map_location=device)
    except GeomgenError:
        raise
    except Exception as e:  # noqa: BLE001 - torch.load raises many types on bad data
        raise FileFormatError(f"pretrained weights '{path}' cannot be loaded: {e}") from e
    return model.to(device).eval()


def load_named_model(kind: str, name: str | None = None, weights: str | os.PathLike[str] | None = None, *,
                     device: Any = None, fn: str = "load_named_model") -> tuple[str, torch.nn.Module]:
    """``(registry name, model)`` of a ``kind`` model: the model file ``weights``
    (which must hold model ``name`` unless that is None), else the shipped weights
    of model ``name``; in eval mode on ``device`` (default CPU).  The one way
    ``geomgen.predict``, ``geomgen sample`` and ``geomgen eval`` pick a model.

    Args:
        kind: ``"representation"`` or ``"generator"``: what ``name`` must be.
        name: registry name, or None (then ``weights`` names the model).
        weights: a :func:`save_model` file (e.g. ``geomgen train``'s
            ``model.pt``), or None (the shipped weights of ``name``).
        device: where to put the model.
        fn: the function or command error messages start with.

    Raises:
        InvalidInputError: ``weights`` is not a path, holds another model than
            ``name``, or neither argument is given.
        MeshFileNotFoundError: no file ``weights``.
        UnknownComponentError: ``name`` is not an installed ``kind`` (with suggestions).
        PretrainedNotFoundError: no shipped weights for ``name``.
    """
    import geomgen
    from geomgen.train.checkpoint import load_checkpoint

    dev = torch.device(device) if device is not None else torch.device("cpu")
    if weights is not None:
        if not isinstance(weights, (str, os.PathLike)):
            raise InvalidInputError(f"{fn}: argument 'weights' must be a path to a model file, got "
                                    f"{type(weights).__name__}")
        path = Path(weights).expanduser()
        if not path.is_file():
            raise MeshFileNotFoundError(f"{fn}: weights file '{path}' does not exist")
        found = str(load_checkpoint(path, map_location="cpu").get("name"))
        if name is not None and found != name:
            raise InvalidInputError(f"{fn}: weights '{path}' are a {found!r} model, not {name!r}")
        return found, load_model(path, map_location=dev).to(dev).eval()
    if name is None:
        raise InvalidInputError(f"{fn}: give a {kind} name or weights")
    available = geomgen.list_models(kind=kind)
    if name not in available:
        import difflib

        close = difflib.get_close_matches(name, available, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        other, use = {"representation": ("generator", "sample"), "generator": ("representation", "predict")}[kind]
        what = f" (a {other}: use geomgen {use})" if name in geomgen.list_models(kind=other) else ""
        raise UnknownComponentError(f"{fn}: no {kind} named {name!r}{what}.{hint} Available: "
                                    f"{', '.join(available) or 'none'}")
    return name, load_pretrained(name, device=dev)


def _write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """``data`` as indented JSON with sorted keys: temp file in the same folder, fsync, rename (mode 0644)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".manifest-", suffix=".json", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the manifest is shipped and read by everyone
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True, allow_nan=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _jsonable(value: Any) -> Any:
    """NaN/inf -> None, tuples -> lists, tensors/numpy scalars -> Python numbers."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_manifest_entry(name: str, model_path: str | os.PathLike[str], config: Mapping[str, Any],
                         train: Mapping[str, Any] | None = None, eval: Mapping[str, Any] | None = None,  # noqa: A002
                         kind: str = "representation", extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Record ``model_path`` (which must sit in ``<assets>/pretrained/``) as the
    weights of ``name``: file name, size, SHA-256, build config, training recipe
    and evaluation summary, and ``kind`` (``"representation"`` or
    ``"generator"``), plus the ``extra`` keys.  The manifest is rewritten
    atomically with sorted keys; NaN and infinities are stored as ``null``.

    Returns:
        the entry written.

    Raises:
        MeshFileNotFoundError: no such file.
        GeomgenError: the file is not in the pretrained folder.
    """
    path = Path(model_path)
    if not path.is_file():
        raise MeshFileNotFoundError(f"write_manifest_entry: no such file '{path}'")
    folder = manifest_path().parent
    if path.resolve().parent != folder.resolve():
        raise GeomgenError(f"write_manifest_entry: '{path}' must be in the pretrained folder '{folder}'")
    entry = {"file": path.name, "sha256": _sha256(path), "bytes": path.stat().st_size,
             "config": _jsonable(dict(config)), "train": _jsonable(dict(train or {})),
             "eval": _jsonable(dict(eval or {})), "kind": str(kind)}
    entry.update({str(k): _jsonable(v) for k, v in dict(extra or {}).items()})
    data = read_manifest()
    data["models"][str(name)] = entry
    _write_json_atomic(manifest_path(), data)
    return entry


def write_manifest_section(key: str, value: Mapping[str, Any]) -> None:
    """Set a top-level manifest section (``"dataset"``, ``"baseline"``), atomically.

    Raises:
        GeomgenError: ``key`` is ``"format"`` or ``"models"`` (managed by
            :func:`write_manifest_entry`).
    """
    if key in ("format", "models"):
        raise GeomgenError(f"write_manifest_section: {key!r} is managed by write_manifest_entry")
    data = read_manifest()
    data[str(key)] = _jsonable(dict(value))
    _write_json_atomic(manifest_path(), data)
