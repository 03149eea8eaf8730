"""Which keyword arguments a dataset class or a registered dataset builder accepts.

geomgen's dataset builders (:mod:`geomgen.builtin`) use :func:`accepted_keywords`
to reject unknown options with a "did you mean" hint; the ``geomgen data`` and
``geomgen view --dataset`` commands use :func:`builder_keywords` to decide
which ``--set KEY=VALUE`` goes to the builder and which into its
:class:`~geomgen.data.pipeline.SampleConfig`.

A builder that takes ``**config`` and forwards it to a class can say so with a
``dataset_class`` attribute naming that class as ``"module:Class"``
(:data:`DATASET_CLASS_ATTR`); the class is imported only when asked.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

__all__ = ["DATASET_CLASS_ATTR", "accepted_keywords", "builder_keywords"]

#: Attribute of a dataset builder naming the class it constructs, ``"module:Class"``.
DATASET_CLASS_ATTR = "dataset_class"


def _named_parameters(params: Any) -> set[str]:
    return {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def accepted_keywords(cls: type) -> set[str] | None:
    """Keyword names ``cls(...)`` accepts, following ``**kwargs`` up the base classes' ``__init__``.

    Args:
        cls: a class (e.g. :class:`~geomgen.data.shapes.ShapesDataset`).

    Returns:
        the names (without ``self``), or None when some ``**kwargs`` cannot be
        resolved (the base classes' ``__init__`` all take ``**kwargs``).
    """
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters.values()
        names |= _named_parameters(params)
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names - {"self"}
    return None


def builder_keywords(build: Callable[..., Any]) -> set[str] | None:
    """Keyword names a dataset builder accepts.

    Those of the class named by its :data:`DATASET_CLASS_ATTR` attribute
    (``"module:Class"``, imported now) when it has one, else of its own signature.

    Args:
        build: a :class:`~geomgen.components.DatasetSpec` ``build`` callable.

    Returns:
        the names, or None when unknown (a ``**kwargs`` that cannot be followed).
    """
    target = getattr(build, DATASET_CLASS_ATTR, None)
    if isinstance(target, str) and ":" in target:
        module, _, attr = target.partition(":")
        return accepted_keywords(getattr(importlib.import_module(module), attr))
    try:
        params = inspect.signature(build).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return _named_parameters(params)
