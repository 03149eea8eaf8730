"""The registry API users call: ``list_models``/``get_model`` and friends.

Shaped like torchvision's model registry: names are looked up among the
components that installed plugins registered; ``include``/``exclude`` take
fnmatch patterns; ``plugin:name`` picks one component when two plugins
register the same name.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable
from typing import Any

from geomgen._registry import PluginInfo, get_plugin_manager
from geomgen.config import ModelConfig
from geomgen.errors import InvalidInputError, PluginError, UnknownComponentError

__all__ = [
    "list_plugins",
    "list_models",
    "get_model",
    "get_model_builder",
    "get_model_config",
    "get_model_spec",
    "list_metrics",
    "get_metric",
    "get_metric_spec",
    "list_datasets",
    "get_dataset",
]

_MODEL_KINDS = ("representation", "generator")
Patterns = str | Iterable[str] | None


def list_plugins() -> list[PluginInfo]:
    """All plugins geomgen found: built-in, installed through the ``geomgen``
    entry-point group, blocked or failed, each with status and components."""
    return get_plugin_manager().plugins()


def list_models(include: Patterns = None, exclude: Patterns = None, kind: str | None = None) -> list[str]:
    """Sorted names of the models installed plugins provide.

    Args:
        include: fnmatch pattern(s) a name must match, e.g. ``"vox*"``.
        exclude: fnmatch pattern(s) a name must not match.
        kind: ``"representation"`` (image -> shape), ``"generator"``
            (noise -> shape), or ``None`` for both.

    Example:
        >>> geomgen.list_models(kind="representation")  # doctest: +SKIP
        ['depth', 'implicit', 'mesh', 'pointcloud', 'voxel']
    """
    if kind is not None and kind not in _MODEL_KINDS:
        raise InvalidInputError(f"kind: expected one of {_MODEL_KINDS} or None, got {kind!r}")
    pm = get_plugin_manager()
    kinds = _MODEL_KINDS if kind is None else (kind,)
    return sorted({n for k in kinds for n in pm.list_components(k, include, exclude)})


def _model_spec(name: str) -> Any:
    pm = get_plugin_manager()
    for kind in _MODEL_KINDS:
        try:
            return pm.get_spec(kind, name)
        except UnknownComponentError:
            continue
    available = list_models()
    close = difflib.get_close_matches(str(name).rpartition(":")[2], available, n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownComponentError(f"no model named {name!r}.{hint} Available: {', '.join(available) or 'none'}"
                                " (install a plugin, or see `geomgen plugins`)")


def get_model_builder(name: str) -> Callable[..., Any]:
    """The callable that builds model ``name`` (``build(**config) -> nn.Module``)."""
    return _model_spec(name).load_build()


def get_model_spec(name: str) -> Any:
    """The :class:`~geomgen.components.RepresentationSpec` or
    :class:`~geomgen.components.GeneratorSpec` registered as ``name`` (its
    ``description``, ``output``, ``config`` ...).  Imports no model code.

    Raises:
        UnknownComponentError: no installed plugin provides ``name``.
        PluginConflictError: two plugins provide ``name``; use ``plugin:name``.
    """
    return _model_spec(name)


def get_model_config(name: str) -> type[ModelConfig] | None:
    """The :class:`~geomgen.config.ModelConfig` subclass that declares model ``name``'s
    hyper-parameters (``.schema()``, ``.defaults()``, ``.from_dict(...)``), or ``None``
    for a model registered with a plain ``default_config`` only.  Imports no model code.

    Raises:
        UnknownComponentError: no installed plugin provides ``name``.
        PluginConflictError: two plugins provide ``name``; use ``plugin:name``.
    """
    return getattr(_model_spec(name), "config", None)


def _bind_config(what: str, build: Callable[..., Any], defaults: dict[str, Any],
                 config: dict[str, Any]) -> dict[str, Any]:
    merged = {**defaults, **config}
    try:
        inspect.signature(build).bind(**merged)
    except TypeError as exc:
        raise InvalidInputError(f"{what}: invalid config {sorted(config)}: {exc}") from None
    except ValueError:  # builtins without signatures: let the call decide
        pass
    return merged


def get_model(name: str, **config: Any) -> Any:
    """Build model ``name`` with its default config updated by ``config``.

    Args:
        name: a name from :func:`list_models`, or ``plugin:name``.
        **config: keyword arguments for the model's builder; for a model with a
            config class (:func:`get_model_config`) its keys, checked by it.

    Returns:
        A ``torch.nn.Module``.

    Raises:
        UnknownComponentError: no installed plugin provides ``name``.
        PluginConflictError: two plugins provide ``name``; use ``plugin:name``.
        InvalidInputError: a config key the builder does not accept, or a value
            out of its bounds (the message names the key and what is allowed).
        PluginError: the plugin's builder returned something that is not a module.
    """
    spec = _model_spec(name)
    config_class = getattr(spec, "config", None)
    build = spec.load_build()
    if config_class is not None:
        kwargs = config_class.from_dict({**spec.default_config, **config}, name=name).to_dict()
    else:
        kwargs = _bind_config(f"model {name!r}", build, dict(spec.default_config), config)
    import torch

    model = build(**kwargs)
    if not isinstance(model, torch.nn.Module):
        plugin = get_plugin_manager().provider(spec.kind, name)
        raise PluginError(f"model {name!r} from plugin {plugin.describe()} built a "
                          f"{type(model).__name__}, expected a torch.nn.Module")
    return model


def list_metrics(include: Patterns = None, exclude: Patterns = None) -> list[str]:
    """Sorted names of the metrics installed plugins provide (fnmatch filters)."""
    return get_plugin_manager().list_components("metric", include, exclude)


def get_metric(name: str) -> Callable[..., Any]:
    """The metric function ``fn(pred, gt, **options)`` registered as ``name``.

    Its :class:`~geomgen.components.MetricSpec` (inputs, direction, description)
    is available as ``geomgen.get_metric_spec(name)``.
    """
    return get_plugin_manager().get_spec("metric", name).fn


def get_metric_spec(name: str) -> Any:
    """The :class:`~geomgen.components.MetricSpec` registered as ``name``."""
    return get_plugin_manager().get_spec("metric", name)


def list_datasets(include: Patterns = None, exclude: Patterns = None) -> list[str]:
    """Sorted names of the datasets installed plugins provide (fnmatch filters)."""
    return get_plugin_manager().list_components("dataset", include, exclude)


def get_dataset(name: str, **config: Any) -> Any:
    """Build dataset ``name`` (``build(root=None, split="train", **config)``)."""
    spec = get_plugin_manager().get_spec("dataset", name)
    kwargs = _bind_config(f"dataset {name!r}", spec.build, dict(spec.default_config), config)
    return spec.build(**kwargs)
