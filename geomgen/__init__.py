"""geomgen: 3D vision and generative modelling on PyTorch.

The top level is light to import (no torch): subpackages (``checks``, ``structures``,
``io``, ``ops``, ``losses``, ``metrics``, ``render``, ``data``, ``nn``, ``train``,
``weights``, ``models``, ``generative``, ...) load on first attribute access, and plugins
load on the first registry call.

Registry API (torchvision-style)::

    import geomgen
    geomgen.list_plugins()                        # what is installed, with status
    geomgen.list_models(kind="representation")    # fnmatch include/exclude too
    model = geomgen.get_model("voxel", code_dim=64)
    geomgen.get_model_config("voxel").schema()    # its hyper-parameters: type, default, bounds, doc
    mesh = geomgen.predict("chair.png", "mesh")      # pretrained single-view prediction

Plugin authors decorate hook implementations with :data:`geomgen.hookimpl`
(see :mod:`geomgen.hookspecs` and :mod:`geomgen.components`).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from geomgen import errors
from geomgen._api import (
    get_dataset,
    get_metric,
    get_metric_spec,
    get_model,
    get_model_builder,
    get_model_config,
    get_model_spec,
    list_datasets,
    list_metrics,
    list_models,
    list_plugins,
)
from geomgen._registry import PluginInfo
from geomgen.hookspecs import hookimpl

__all__ = [
    "__version__",
    "errors",
    "hookimpl",
    "PluginInfo",
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
    "components",
    "config",
    "checks",
    "backend",
    "structures",
    "io",
    "ops",
    "losses",
    "metrics",
    "render",
    "data",
    "nn",
    "viewer",
    "train",
    "weights",
    "models",
    "generative",
    "predict",
]

#: Subpackages loaded on first attribute access (``geomgen.ops``), bottom layer first.
_LAZY_SUBMODULES = frozenset({"components", "config", "checks", "backend", "structures", "io", "ops", "losses",
                              "metrics", "render", "data", "nn", "viewer", "train", "weights", "models",
                              "generative"})


def __getattr__(name: str) -> Any:
    if name in _LAZY_SUBMODULES:
        module = importlib.import_module(f"geomgen.{name}")
        globals()[name] = module
        return module
    if name == "predict":  # geomgen.predict(image, "mesh"): lazy, so `import geomgen` stays light
        from geomgen.models.predict import predict

        globals()["predict"] = predict
        return predict
    raise AttributeError(f"module 'geomgen' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LAZY_SUBMODULES | {"predict"})
