"""Load a generator by name (its shipped weights) or from a model file: :func:`load_generator`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from geomgen.errors import InvalidInputError, UnknownComponentError

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
    import geomgen
    from geomgen.generative.base import ShapeGenerator

    dev = torch.device(device) if device is not None else torch.device("cpu")
    if weights is not None:
        from geomgen.errors import MeshFileNotFoundError
        from geomgen.models.training import load_model
        from geomgen.train.checkpoint import load_checkpoint

        path = Path(weights).expanduser()
        if not path.is_file():
            raise MeshFileNotFoundError(f"sample: weights file '{path}' does not exist")
        found = load_checkpoint(path, map_location="cpu").get("name")
        if name is not None and found != name:
            raise InvalidInputError(f"sample: weights '{path}' are a {found!r} model, not {name!r}")
        model = load_model(path, map_location=dev)
        name = str(found)
    else:
        if name is None:
            raise InvalidInputError("sample: give a generator name or weights")
        generators = geomgen.list_models(kind="generator")
        if name not in generators:
            import difflib

            close = difflib.get_close_matches(name, generators, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            what = " (a representation: use geomgen predict)" if name in geomgen.list_models(kind="representation") \
                else ""
            raise UnknownComponentError(f"no generator named {name!r}{what}.{hint} Available: "
                                        f"{', '.join(generators) or 'none'}")
        from geomgen.models.pretrained import load_pretrained

        model = load_pretrained(name, device=dev)
    if not isinstance(model, ShapeGenerator):
        raise InvalidInputError(f"sample: {name!r} is not a generator ({type(model).__name__})")
    return name, model.to(dev).eval()
