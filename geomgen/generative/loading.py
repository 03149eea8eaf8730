"""Load a generator by name (its shipped weights) or from a model file: :func:`load_generator`."""

from __future__ import annotations

from pathlib import Path
from typing import Any


from geomgen.errors import InvalidInputError

__all__ = ["load_generator"]


def load_generator(name: str | None = None, weights: str | Path | None = None,
                   device: Any = None) -> tuple[str, Any]:
    """``(registry name, model)``: the model file ``weights`` (whose name must be
    ``name`` unless that is None) or the pretrained weights of generator ``name``,
    in eval mode on ``device`` (default cpu).  ``geomgen sample`` and ``geomgen
    eval`` load generators with it.

    Args:
        name: registry name of an installed generator, or None (take the one in ``weights``).
        weights: a model file (:func:`geomgen.models.save_model`, e.g. ``geomgen
            train``'s ``model.pt``), or None (the shipped weights of ``name``).
        device: where to put the model (default CPU).

    Raises:
        UnknownComponentError: ``name`` is not an installed generator (with suggestions).
        InvalidInputError: the weights are another model; neither argument given.
        geomgen.models.PretrainedNotFoundError: no shipped weights for ``name``.
    """
    from geomgen.generative.base import ShapeGenerator
    from geomgen.weights import load_named_model

    name, model = load_named_model("generator", name, weights, device=device, fn="sample")
    if not isinstance(model, ShapeGenerator):
        raise InvalidInputError(f"sample: {name!r} is not a generator ({type(model).__name__})")
    return name, model
