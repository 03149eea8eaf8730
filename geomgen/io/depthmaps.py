"""Read and write depth maps with their intrinsics as ``.npz`` files.

The format (what ``geomgen predict --repr depth -o X.npz`` writes and
``geomgen view X.npz`` shows):

* ``"depth"``: ``(H, W)`` or ``(N, H, W)`` float32 metric z-depth (distance
  along the camera's +z axis, OpenCV frame), 0 where the mask is off;
* ``"K"``: ``(3, 3)`` or ``(N, 3, 3)`` pixel intrinsics (pixel centres at
  ``u + 0.5``, the :class:`~geomgen.structures.DepthMaps` convention); one
  ``(3, 3)`` matrix serves every map;
* ``"mask"`` (optional): boolean, the shape of ``"depth"``; without it the
  valid pixels are those with a finite depth ``> 0``.
"""

from __future__ import annotations

import numpy as np
import torch

from geomgen.errors import InvalidInputError
from geomgen.io import _common as C
from geomgen.structures import DepthMaps

__all__ = ["load_depthmaps", "save_depthmaps"]

_FORMATS = ("npz",)


def load_depthmaps(path: C.PathLike, *, device: torch.device | str = "cpu") -> DepthMaps:
    """Read an ``.npz`` depth-map file (module docstring) into ``N`` depth maps.

    Args:
        path: the file.
        device: device of the returned tensors.

    Returns:
        :class:`~geomgen.structures.DepthMaps` with depth ``(N, H, W)``,
        ``K`` ``(N, 3, 3)`` and masks ``(N, H, W)`` (``N = 1`` for an
        ``(H, W)`` file); non-finite depths are masked off.

    Raises:
        MeshFileNotFoundError: ``path`` does not exist or is a directory.
        FileFormatError: not an ``.npz``, unreadable, no ``"depth"`` or no
            ``"K"`` array, or arrays of the wrong shape or type; names the file.
    """
    fn = "load_depthmaps"
    p = C.as_path(path, fn)
    C.check_readable_file(p, fn)
    C.file_format(p, _FORMATS, fn)
    with C.reading(p, fn, "npz"):
        with np.load(p, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    if "depth" not in arrays:
        raise C.file_error(p, fn, f"no 'depth' array (arrays: {sorted(arrays)})")
    depth, K, mask = arrays["depth"], arrays.get("K"), arrays.get("mask")
    if K is None:
        raise C.file_error(p, fn, "a depth map needs its intrinsics: no 'K' (3, 3) array beside 'depth'")
    if depth.ndim not in (2, 3) or depth.dtype.kind != "f":
        raise C.file_error(p, fn, f"'depth' must be an (H, W) or (N, H, W) float array, got "
                           f"{tuple(depth.shape)} {depth.dtype}")
    depth = depth[None] if depth.ndim == 2 else depth
    if mask is None:
        mask = depth > 0
    else:
        mask = (mask[None] if mask.ndim == 2 else mask).astype(bool)
    K = np.broadcast_to(K, (depth.shape[0], 3, 3)) if K.shape == (3, 3) else K
    if mask.shape != depth.shape or K.shape != (depth.shape[0], 3, 3):
        raise C.file_error(p, fn, f"'mask' {tuple(mask.shape)} must match 'depth' {tuple(depth.shape)} and "
                           f"'K' {tuple(K.shape)} must be (3, 3) or (N, 3, 3)")
    mask = mask & np.isfinite(depth)
    return C.build_structure(
        p, fn, DepthMaps,
        torch.from_numpy(np.where(mask, depth, 0).astype(np.float32)).to(device),
        torch.from_numpy(np.array(K, dtype=np.float32)).to(device),  # a copy: broadcast views are read-only
        masks=torch.from_numpy(mask).to(device),
    )


def save_depthmaps(path: C.PathLike, depthmaps: DepthMaps, index: int | None = None) -> None:
    """Write depth maps with their intrinsics and masks as an ``.npz`` file.

    Args:
        path: the ``.npz`` file; its folder must exist.
        depthmaps: :class:`~geomgen.structures.DepthMaps` ``(N, H, W)``.
        index: write only map ``index`` (arrays ``(H, W)`` and ``(3, 3)``);
            None writes all ``N`` (``(N, H, W)`` and ``(N, 3, 3)``).

    Depth is float32 z-depth with 0 outside the mask; ``K`` float32; ``mask``
    boolean.

    Raises:
        InvalidInputError: ``depthmaps`` is not a ``DepthMaps``, a bad
            ``index``, or ``path`` is a directory.
        FileFormatError: ``path`` does not end in ``.npz``.
        MeshFileNotFoundError: the folder of ``path`` does not exist.
    """
    fn = "save_depthmaps"
    p = C.as_path(path, fn)
    C.file_format(p, _FORMATS, fn)
    C.check_writable_file(p, fn)
    if not isinstance(depthmaps, DepthMaps):
        raise InvalidInputError(f"{fn}: argument 'depthmaps' must be a DepthMaps, got {type(depthmaps).__name__}")
    depth = depthmaps.depth.detach().cpu().numpy().astype(np.float32)
    mask = depthmaps.masks.detach().cpu().numpy().astype(bool)
    K = depthmaps.K.detach().cpu().numpy().astype(np.float32)
    if index is not None:
        i = C.check_index(index, depth.shape[0], fn, "depth maps")
        depth, mask, K = depth[i], mask[i], K[i]
    np.savez_compressed(p, depth=np.where(mask, depth, 0).astype(np.float32), mask=mask, K=K)
