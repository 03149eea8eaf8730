"""What several ``geomgen`` commands share: JSON options, ``--set KEY=VALUE`` parsing and
routing to dataset builders, ``--data-config`` defaults, one ``--weights`` per name,
report files and reading a mesh-or-point-cloud file.

Everything here is for :mod:`geomgen.cli` only (the module name is private);
the functions are the one place each rule is written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from geomgen.errors import FileFormatError, InvalidInputError

__all__ = [
    "POINTCLOUD_SUFFIXES",
    "json_arg",
    "parse_sets",
    "route_dataset_options",
    "add_set_argument",
    "manifest",
    "data_config",
    "is_generator",
    "weights_per_name",
    "write_report",
    "load_shape",
]

#: File suffixes read as point clouds (not meshes) by ``info``, ``compare`` and ``convert``.
POINTCLOUD_SUFFIXES = {".xyz", ".pwn", ".npz"}


# ----------------------------------------------------------------------------- JSON and --set
def json_arg(text: str | None, flag: str) -> dict[str, Any]:
    """The JSON object given to option ``flag`` (``{}`` when ``text`` is None).

    Raises:
        InvalidInputError: ``text`` is not JSON, or not a JSON object.
    """
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except ValueError as e:
        raise InvalidInputError(f"{flag}: not valid JSON ({e}): {text!r}") from None
    if not isinstance(value, dict):
        raise InvalidInputError(f"{flag}: must be a JSON object, got {text!r}")
    return value


def parse_sets(items: Iterable[str] | None) -> list[tuple[str, Any]]:
    """``--set KEY=VALUE`` items as ``(key, value)`` pairs, in order: the value parsed
    as JSON when it can be (``per_category=2``, ``categories='["chair","mug"]'``),
    else kept as a string.

    Raises:
        InvalidInputError: an item without ``=`` or with an empty key.
    """
    out = []
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(f"--set {item!r}: expected KEY=VALUE")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        out.append((key.strip(), value))
    return out


SET_HELP = ("dataset option, repeatable; JSON values (e.g. per_category=2, image_size=128); "
            "SampleConfig keys go into config (force with config.KEY=VALUE)")


def add_set_argument(parser: Any, dest: str = "set") -> None:
    """Add the repeatable ``--set KEY=VALUE`` dataset option (routed by :func:`route_dataset_options`)."""
    parser.add_argument("--set", dest=dest, action="append", default=None, metavar="KEY=VALUE", help=SET_HELP)


def route_dataset_options(name: str, options: Iterable[tuple[str, Any]] | Mapping[str, Any],
                          base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Keyword arguments of ``geomgen.get_dataset(name, ...)`` from ``KEY=VALUE`` options.

    The one rule for ``geomgen data --set``, ``geomgen view/render --dataset --set``
    and the ``--data-config`` of ``train`` / ``eval``: a key the dataset's builder
    takes (:func:`geomgen.data.keywords.builder_keywords`) goes to it; another key
    of :class:`~geomgen.data.pipeline.SampleConfig` (``image_size``,
    ``num_views``, ...) goes into its ``config`` when it takes one;
    ``config.KEY`` always goes into ``config``; anything else goes to the
    builder (which reports unknown options).

    Args:
        name: registered dataset name.
        options: ``(key, value)`` pairs (e.g. :func:`parse_sets`) or a mapping.
        base: keyword arguments to start from (e.g. ``split``, ``root``); options override them.

    Returns:
        the keyword arguments; ``config`` a :class:`~geomgen.data.pipeline.SampleConfig`
        when some option was routed into it.

    Raises:
        UnknownComponentError: no dataset ``name`` (with suggestions).
        InvalidInputError: a config key that :class:`SampleConfig` does not have.
    """
    import dataclasses

    from geomgen._registry import get_plugin_manager
    from geomgen.data.keywords import builder_keywords
    from geomgen.data.pipeline import SampleConfig

    spec = get_plugin_manager().get_spec("dataset", name)  # unknown name: error with suggestions
    accepted = builder_keywords(spec.build)
    uses_config = accepted is not None and "config" in accepted
    fields = {f.name for f in dataclasses.fields(SampleConfig)}
    kwargs: dict[str, Any] = dict(base or {})
    config: dict[str, Any] = {}
    pairs = options.items() if isinstance(options, Mapping) else options
    for key, value in pairs:
        if key.startswith("config."):
            config[key[len("config."):]] = value
        elif key in fields and uses_config and key not in accepted:  # type: ignore[operator]
            config[key] = value
        else:
            kwargs[key] = value
    if config:
        kwargs["config"] = SampleConfig.from_dict({**dict(kwargs.get("config") or {}), **config})
    return kwargs


# ----------------------------------------------------------------------------- train / eval defaults
def manifest() -> dict[str, Any]:
    """The pretrained manifest, or ``{"models": {}}`` when it cannot be read
    (a broken manifest must not break training/eval defaults)."""
    from geomgen.weights import read_manifest

    try:
        return read_manifest()
    except Exception:  # noqa: BLE001
        return {"models": {}}


def _default_data_config(dataset: str) -> dict[str, Any]:
    """The dataset config of the shipped weights (manifest ``dataset``) when it is this dataset."""
    d = manifest().get("dataset") or {}
    cfg = d.get("config") if isinstance(d, dict) else None
    if isinstance(cfg, dict) and d.get("name", dataset) == dataset:
        return dict(cfg)
    return {}


def data_config(dataset: str, text: str | None) -> dict[str, Any]:
    """Dataset options of ``--data-config`` (JSON ``text``); None gives the shipped
    weights' dataset config when they were trained on ``dataset``, else ``{}``."""
    cfg = _default_data_config(dataset) if text is None else {}
    cfg.update(json_arg(text, "--data-config"))
    return cfg


def is_generator(name: str) -> bool:
    """Whether ``name`` is an installed generator (else a representation, or unknown)."""
    import geomgen

    return name in geomgen.list_models(kind="generator")


def weights_per_name(weights: Sequence[str] | None, names: Sequence[str]) -> list[str | None]:
    """The ``--weights`` file of each of ``names`` (repeated ``--weights``, in order),
    or None each when no ``--weights`` was given.

    Raises:
        InvalidInputError: some ``--weights`` were given, but not one per name.
    """
    given = list(weights or [])
    if not given:
        return [None] * len(names)
    if len(given) != len(names):
        raise InvalidInputError(f"--weights: give one per NAME ({len(names)}: {', '.join(names)}), got {len(given)}")
    return list(given)


def write_report(path: str | os.PathLike[str] | None, content: Callable[[], Any]) -> None:
    """Write ``content()`` to ``path`` and print ``wrote PATH``; nothing when ``path`` is None.

    A string is written as is, anything else as indented JSON; a newline is appended.
    """
    if not path:
        return
    value = content()
    text = value if isinstance(value, str) else json.dumps(value, indent=2)
    Path(path).write_text(text + "\n")
    print(f"wrote {path}")


# ----------------------------------------------------------------------------- input files
def load_shape(path: str) -> tuple[str, Any]:
    """``("mesh", Meshes)`` or ``("pointcloud", PointClouds)`` of one file: a point cloud
    for :data:`POINTCLOUD_SUFFIXES` and for mesh formats without faces, else a mesh."""
    from geomgen.io import load_mesh, load_pointcloud

    if Path(path).suffix.lower() in POINTCLOUD_SUFFIXES:
        return "pointcloud", load_pointcloud(path)
    try:
        return "mesh", load_mesh(path)
    except FileFormatError as exc:
        if "no faces" not in str(exc):
            raise
        return "pointcloud", load_pointcloud(path)
