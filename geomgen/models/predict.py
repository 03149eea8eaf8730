"""``geomgen.predict``: one call from image(s) to a 3D shape.

    import geomgen
    mesh = geomgen.predict("chair.png")                       # pretrained mesh model
    vox = geomgen.predict(["a.png", "b.png"], "voxel")        # Voxels of 2
    pts = geomgen.predict(img, "pointcloud", weights="runs/pc/model.pt")

Images are read with :func:`geomgen.io.load_image` (alpha composited on white,
resized to the model's ``image_size``).  The result is the model's own
structure (``Meshes``, ``Voxels``, ``PointClouds``, ``DepthMaps``) of ``N``
items in the model's frame (:attr:`ShapePredictor.frame`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from geomgen.errors import InvalidInputError
from geomgen.render.cameras import scale_intrinsics

__all__ = ["predict", "load_images", "resolve_model", "resolve_named_model", "clear_cache"]

#: Pretrained models loaded so far: (name, device) or (path, mtime, device) -> model.
_CACHE: dict[tuple[Any, ...], Any] = {}
_CACHE_MAX = 8


def clear_cache() -> None:
    """Forget the models :func:`predict` loaded."""
    _CACHE.clear()


def _remember(key: tuple[Any, ...], model: Any) -> Any:
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = model
    return model


def resolve_model(representation: str | None = "mesh", weights: Any = None, model: Any = None,
                  device: Any = None) -> Any:
    """The :class:`~geomgen.models.ShapePredictor` :func:`predict` uses: ``model`` as
    given; else the model file ``weights`` (whose registry name must be
    ``representation`` unless that is None); else the pretrained weights of
    ``representation``.  Loaded models are cached."""
    return resolve_named_model(representation, weights, model, device)[1]


def resolve_named_model(representation: str | None = "mesh", weights: Any = None, model: Any = None,
                        device: Any = None) -> tuple[str | None, Any]:
    """:func:`resolve_model` and the model's registry name (``representation`` for a
    given ``model``)."""
    from geomgen.models.base import ShapePredictor

    if model is not None:
        if not isinstance(model, ShapePredictor):
            raise InvalidInputError(f"predict: argument 'model' must be a geomgen.models.ShapePredictor, got "
                                    f"{type(model).__name__}")
        return representation, (model.to(device) if device is not None else model)
    if representation is not None and not isinstance(representation, str):
        raise InvalidInputError(f"predict: argument 'representation' must be a name, got {representation!r}")
    from geomgen.weights import load_named_model

    dev = torch.device(device) if device is not None else torch.device("cpu")
    key: tuple[Any, ...] | None = None  # cache key; None: not cacheable (load_named_model raises)
    if weights is None and isinstance(representation, str):
        key = ("pretrained", representation, str(dev))
    elif isinstance(weights, (str, os.PathLike)) and Path(weights).expanduser().is_file():
        path = Path(weights).expanduser()
        key = ("file", str(path.resolve()), path.stat().st_mtime_ns, str(dev))
    if key is not None and key in _CACHE:
        name, cached = _CACHE[key]
        if representation is None or name == representation:
            return name, cached  # else load_named_model below says what the file holds
    found = load_named_model("representation", representation, weights, device=dev, fn="predict")
    return found if key is None else _remember(key, found)


def _is_single(x: Any) -> bool:
    return isinstance(x, (str, os.PathLike)) or type(x).__module__.startswith("PIL.") or hasattr(x, "getbands")


def _split_images(image: Any) -> list[Any]:
    """The input as a list of single images."""
    import numpy as np

    if isinstance(image, (list, tuple)):
        if len(image) == 0:
            raise InvalidInputError("predict: argument 'image' is an empty list; give at least one image")
        out = []
        for item in image:
            if isinstance(item, (list, tuple)):
                raise InvalidInputError("predict: argument 'image' must be an image or a flat list of images, "
                                        "got a nested list")
            out.extend(_split_images(item))
        return out
    if isinstance(image, torch.Tensor) and image.dim() == 4:
        if image.shape[0] == 0:
            raise InvalidInputError("predict: argument 'image' is an empty batch (N = 0)")
        if image.shape[1] not in (1, 3, 4):
            raise InvalidInputError(f"predict: argument 'image' is a batch of shape {tuple(image.shape)}; expected "
                                    "(N, 3, H, W) (or 1 / 4 channels)")
        return list(image.unbind(0))
    if isinstance(image, np.ndarray) and image.ndim == 4:
        if image.shape[0] == 0:
            raise InvalidInputError("predict: argument 'image' is an empty batch (N = 0)")
        return list(image)
    if isinstance(image, (str, os.PathLike, np.ndarray, torch.Tensor)) or _is_single(image):
        return [image]
    raise InvalidInputError(f"predict: argument 'image' must be a path, a PIL image, a NumPy array, a torch "
                            f"tensor or a list of those, got {type(image).__name__}")


def load_images(image: Any, size: int) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """``(N, 3, size, size)`` float images in [0, 1] (alpha over white) and each
    input's original ``(H, W)``; ``image`` as for :func:`predict`."""
    from geomgen.io import load_image

    tensors, sizes = [], []
    for item in _split_images(image):
        chw = load_image(item)
        sizes.append((int(chw.shape[1]), int(chw.shape[2])))
        if tuple(chw.shape[1:]) != (size, size):
            chw = load_image(chw, size=size)
        tensors.append(chw.cpu())
    return torch.stack(tensors), sizes


def predict(image: Any, representation: str | None = "mesh", *, weights: Any = None, model: Any = None,
            K: Any = None, device: Any = None) -> Any:
    """Predict 3D shapes from single images.

    Args:
        image: a path, a PIL image, a NumPy array ``(H, W, 3)`` / ``(H, W, 4)`` /
            ``(H, W)`` (uint8, uint16 or float in [0, 1]), a torch tensor
            ``(3, H, W)`` / ``(H, W, 3)`` / ``(N, 3, H, W)``, or a list of those
            (a batch).  Images are composited over white and resized to the
            model's ``image_size`` (objects should fill the view about as in the
            ``shapes`` renders).
        representation: registry name (``geomgen.list_models(kind="representation")``),
            e.g. ``"mesh"``, ``"voxel"``, ``"pointcloud"``, ``"depth"``, ``"implicit"``;
            None accepts whatever ``weights`` holds.
        weights: path of a model file (:func:`geomgen.weights.save_model`, e.g. the
            ``model.pt`` of ``geomgen train``) instead of the shipped weights.
        model: an already built :class:`~geomgen.models.ShapePredictor` to use as is.
        K: ``(3, 3)`` or ``(N, 3, 3)`` pixel intrinsics of the **original** images
            (rescaled with them); None = the model's default field of view.
        device: where to run (default CPU, or ``model``'s device).

    Returns:
        the model's prediction: a geomgen structure of ``N`` items in the
        model's frame (``model.frame``: ``"object"`` or ``"camera"``).

    Raises:
        UnknownComponentError: unknown representation (the message lists the available ones).
        PretrainedNotFoundError: no shipped weights for it (and no ``weights``).
        MeshFileNotFoundError / FileFormatError: a missing or unreadable image or weights file.
        InvalidInputError: an unsupported image type, channel count, empty
            image, or weights of another representation.
    """
    m = resolve_model(representation, weights, model, device)
    images, sizes = load_images(image, m.image_size)
    Kt = None if K is None else scale_intrinsics(K, sizes, m.image_size, fn="predict").to(m.device)
    with torch.no_grad():
        return m.predict(images.to(m.device), Kt)
