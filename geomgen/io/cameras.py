"""Read and write calibrated cameras (and their mask files) as JSON.

What ``geomgen render --save-cameras`` writes and ``geomgen fit --cameras``
reads.  ``N`` is the number of views.  The file is one JSON object::

    {
      "format": "geomgen-cameras",
      "version": 1,
      "image_size": [H, W],
      "views": [
        {"name": "view_000",
         "K": [[fx, s, cx], [0, fy, cy], [0, 0, 1]],
         "world_from_camera": [[r00, r01, r02, tx], ..., [0, 0, 0, 1]],
         "mask": "view_000.png"},
        ...
      ]
    }

* ``format`` / ``version``: must be ``"geomgen-cameras"`` and ``1``.
* ``image_size``: ``[H, W]`` in pixels, shared by every view.
* ``K``: ``3 x 3`` pixel intrinsics, geomgen's convention (pixel ``(u, v)``
  has its centre at ``(u + 0.5, v + 0.5)``; for an OpenCV-calibrated ``K`` add
  0.5 to ``cx`` and ``cy``), checked by :func:`geomgen.checks.check_intrinsics`.
* ``world_from_camera``: ``4 x 4`` camera-to-world pose, OpenCV camera axes (x
  right, y down, z forward), which must be rigid
  (:func:`geomgen.checks.check_pose` with ``rigid=True``).
* ``name`` (optional, default ``view_<i>``) and ``mask`` (optional): the
  view's mask image, a path relative to the folder of the cameras file.

Keys not listed are ignored, so files can carry more.  Numbers are written with
Python's shortest round-trip ``repr`` of the float64 values, so a save/load
round trip is exact.  The file is written atomically (temporary file,
``fsync``, rename).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from geomgen import checks as V
from geomgen.errors import InvalidInputError
from geomgen.io import _common as C
from geomgen.io._fs import atomic_write

__all__ = ["CAMERAS_FORMAT", "CAMERAS_VERSION", "CameraFile", "load_cameras", "save_cameras"]

#: The ``"format"`` value of a cameras file.
CAMERAS_FORMAT = "geomgen-cameras"
#: The ``"version"`` this geomgen reads and writes.
CAMERAS_VERSION = 1

_FORMATS = ("json",)


@dataclass(frozen=True)
class CameraFile:
    """The contents of a cameras file (``N`` views).

    Build cameras with ``geomgen.render.PerspectiveCameras(f.K,
    f.world_from_camera, f.image_size)``.

    Attributes:
        K: ``(N, 3, 3)`` float64 pixel intrinsics.
        world_from_camera: ``(N, 4, 4)`` float64 rigid camera-to-world poses.
        image_size: ``(H, W)`` in pixels.
        names: ``N`` view names.
        masks: ``N`` mask paths (absolute, resolved against the file's folder)
            or None for views without one.
    """

    K: torch.Tensor
    world_from_camera: torch.Tensor
    image_size: tuple[int, int]
    names: list[str] = field(default_factory=list)
    masks: list[str | None] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.K.shape[0])


def _matrices(x: Any, name: str, size: int, fn: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        t = x.detach().to("cpu", torch.float64)
    else:
        try:
            t = torch.as_tensor(np.asarray(x, dtype=np.float64))
        except (TypeError, ValueError):
            raise V.fail(name, f"must be ({size}, {size}) or (N, {size}, {size}) numbers", fn) from None
    if t.dim() == 2:
        t = t[None]
    if t.dim() != 3 or tuple(t.shape[1:]) != (size, size):
        raise V.fail(name, f"must have shape (N, {size}, {size}) or ({size}, {size}), got {tuple(t.shape)}", fn)
    return t


def _names(names: Any, n: int, what: str, fn: str, optional: bool) -> list[Any]:
    if names is None:
        return [None] * n if optional else [f"view_{i:03d}" for i in range(n)]
    if isinstance(names, (str, bytes)) or not hasattr(names, "__len__") or len(names) != n:
        raise V.fail(what, f"must be a sequence of {n} strings (one per view), got {names!r}", fn)
    out = []
    for s in names:
        if s is None and optional:
            out.append(None)
        elif isinstance(s, (str, os.PathLike)) and os.fspath(s):
            out.append(os.fspath(s))
        else:
            raise V.fail(what, f"must hold non-empty strings, got {s!r}", fn)
    return out


def save_cameras(
    path: C.PathLike,
    cameras: Any,
    image_size: tuple[int, int] | None = None,
    names: list[str] | None = None,
    masks: list[str | None] | None = None,
) -> None:
    """Write ``N`` cameras to a JSON cameras file (module docstring), atomically.

    Args:
        path: the ``.json`` file to write (its folder must exist).
        cameras: a :class:`~geomgen.render.PerspectiveCameras` (or any object
            with ``K`` ``(N, 3, 3)`` and ``world_from_camera`` ``(N, 4, 4)``
            attributes), or a pair ``(K, world_from_camera)``.
        image_size: ``(H, W)``; None: ``cameras.image_size``.
        names: ``N`` view names; None: ``view_000``, ``view_001``, ...
        masks: ``N`` mask file names relative to the file's folder (None
            entries for views without one); None: no masks.

    Raises:
        InvalidInputError: invalid ``K`` or a non-rigid pose, counts that
            differ, a missing or bad ``image_size``, a bad path.
    """
    fn = "save_cameras"
    p = C.as_path(path, fn)
    C.file_format(p, _FORMATS, fn)
    if isinstance(cameras, (tuple, list)) and len(cameras) == 2:
        K, pose = cameras
    elif hasattr(cameras, "K") and hasattr(cameras, "world_from_camera"):
        K, pose = cameras.K, cameras.world_from_camera
    else:
        raise V.fail("cameras", "must be PerspectiveCameras or a (K, world_from_camera) pair, got "
                     f"{type(cameras).__name__}", fn)
    if image_size is None:
        image_size = getattr(cameras, "image_size", None)
    if image_size is None or isinstance(image_size, (str, bytes)) or len(image_size) != 2:
        raise V.fail("image_size", f"must be a pair (H, W) of ints >= 1, got {image_size!r}", fn)
    h = V.check_int(image_size[0], "image_size", min_value=1, fn=fn)
    w = V.check_int(image_size[1], "image_size", min_value=1, fn=fn)
    K = V.check_intrinsics(_matrices(K, "K", 3, fn), "K", fn=fn)
    pose = V.check_pose(_matrices(pose, "world_from_camera", 4, fn), "world_from_camera", rigid=True, fn=fn)
    if K.shape[0] == 1 and pose.shape[0] > 1:
        K = K.expand(pose.shape[0], 3, 3)
    if pose.shape[0] == 1 and K.shape[0] > 1:
        pose = pose.expand(K.shape[0], 4, 4)
    n = K.shape[0]
    if pose.shape[0] != n:
        raise V.fail("world_from_camera", f"has {pose.shape[0]} poses but K has {n} intrinsics", fn)
    view_names = _names(names, n, "names", fn, optional=False)
    view_masks = _names(masks, n, "masks", fn, optional=True)
    C.check_writable_file(p, fn)
    views = []
    for i in range(n):
        rows = []
        for key, mat in (("K", K[i]), ("world_from_camera", pose[i])):
            body = ",\n    ".join(json.dumps(r, allow_nan=False) for r in mat.tolist())
            rows.append(f'   "{key}": [\n    {body}\n   ]')
        head = f'   "name": {json.dumps(view_names[i])}'
        mask = [] if view_masks[i] is None else [f'   "mask": {json.dumps(view_masks[i])}']
        views.append("  {\n" + ",\n".join([head, *rows, *mask]) + "\n  }")
    text = (f'{{\n "format": {json.dumps(CAMERAS_FORMAT)},\n "version": {CAMERAS_VERSION},\n'
            f' "image_size": [{h}, {w}],\n "views": [\n' + ",\n".join(views) + "\n ]\n}\n")
    with atomic_write(p, "w", durable=True, encoding="utf-8") as f:
        f.write(text)


def _number_matrix(x: Any, size: int) -> bool:
    return (isinstance(x, list) and len(x) == size
            and all(isinstance(r, list) and len(r) == size for r in x)
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for r in x for v in r))


def load_cameras(path: C.PathLike) -> CameraFile:
    """Read a JSON cameras file (module docstring).

    Args:
        path: the ``.json`` file.

    Returns:
        :class:`CameraFile`: ``K`` ``(N, 3, 3)`` and ``world_from_camera``
        ``(N, 4, 4)`` float64 on the CPU, ``image_size``, ``names`` and
        ``masks`` (resolved against the file's folder).

    Raises:
        MeshFileNotFoundError: ``path`` does not exist or is a directory.
        FileFormatError: not JSON, another format or version, a missing key,
            no views, a matrix of the wrong shape, an invalid ``K`` or a
            non-rigid pose; the message names the file (and the view).
    """
    fn = "load_cameras"
    p = C.as_path(path, fn)
    C.check_readable_file(p, fn)
    C.file_format(p, _FORMATS, fn)
    try:
        doc = json.loads(p.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise C.file_error(p, fn, f"not a valid JSON file ({e})") from None
    if not isinstance(doc, dict):
        raise C.file_error(p, fn, "the JSON is not an object")
    for key in ("format", "version", "image_size", "views"):
        if key not in doc:
            raise C.file_error(p, fn, f"missing key {key!r} (a cameras file has 'format', 'version', "
                                      "'image_size' and 'views')")
    if doc["format"] != CAMERAS_FORMAT:
        raise C.file_error(p, fn, f"'format' is {doc['format']!r}, expected {CAMERAS_FORMAT!r}")
    if doc["version"] != CAMERAS_VERSION or isinstance(doc["version"], bool):
        raise C.file_error(p, fn, f"unsupported version {doc['version']!r}; this geomgen reads version "
                                  f"{CAMERAS_VERSION}")
    size = doc["image_size"]
    if (not isinstance(size, list) or len(size) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in size)):
        raise C.file_error(p, fn, f"'image_size' must be [H, W], two ints >= 1, got {size!r}")
    views = doc["views"]
    if not isinstance(views, list) or not views:
        raise C.file_error(p, fn, "'views' must be a non-empty list of views")
    Ks, poses, names, masks = [], [], [], []
    for i, view in enumerate(views):
        if not isinstance(view, dict):
            raise C.file_error(p, fn, f"view {i} is not an object")
        for key, n in (("K", 3), ("world_from_camera", 4)):
            if key not in view:
                raise C.file_error(p, fn, f"view {i} has no {key!r}")
            if not _number_matrix(view[key], n):
                raise C.file_error(p, fn, f"view {i}: {key!r} must be a {n} x {n} list of numbers")
        name = view.get("name", f"view_{i:03d}")
        mask = view.get("mask")
        if not isinstance(name, str) or not name:
            raise C.file_error(p, fn, f"view {i}: 'name' must be a non-empty string, got {name!r}")
        if mask is not None and (not isinstance(mask, str) or not mask):
            raise C.file_error(p, fn, f"view {i}: 'mask' must be a file name, got {mask!r}")
        Ks.append(view["K"])
        poses.append(view["world_from_camera"])
        names.append(name)
        masks.append(None if mask is None else str(p.parent / mask))
    K = torch.tensor(Ks, dtype=torch.float64)
    pose = torch.tensor(poses, dtype=torch.float64)
    if not (bool(torch.isfinite(K).all()) and bool(torch.isfinite(pose).all())):
        raise C.file_error(p, fn, "a matrix holds a non-finite number")
    try:
        V.check_intrinsics(K, "K", fn=fn)
        V.check_pose(pose, "world_from_camera", rigid=True, fn=fn)
    except InvalidInputError as e:
        raise C.file_error(p, fn, f"{e} (K[i] / pose i is view i)") from None
    return CameraFile(K=K, world_from_camera=pose, image_size=(size[0], size[1]), names=names, masks=masks)

