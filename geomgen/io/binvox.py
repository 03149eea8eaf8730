"""Read and write binvox occupancy grids through ``trimesh.exchange.binvox``.

Shape letters: ``D``, ``H``, ``W`` voxels along z, y, x (the
:class:`~geomgen.structures.Voxels` convention: ``grids[n, k, j, i]`` is the
voxel with x index ``i``, y index ``j``, z index ``k``).

How binvox maps onto :class:`~geomgen.structures.Voxels`:

* A binvox file stores ``dim``, ``translate`` (3 floats), ``scale`` (1 float)
  and run-length encoded bits in which y varies fastest, then z, then x.
  trimesh decodes the bits into an ``(X, Y, Z)`` array (reading ``dim`` as
  ``X Y Z``); we transpose it to ``(Z, Y, X)`` = ``(D, H, W)``.
* binvox places the grid in the cube ``[translate, translate + scale]``: voxel
  ``i`` along x spans ``translate_x + [i, i + 1) * scale / dim``.  So
  ``origin = translate`` (the min corner of voxel ``(0, 0, 0)``) and
  ``voxel_size = scale / max(D, H, W)`` (one size for all three axes; binvox
  grids are cubes in practice).  Voxel ``(k, j, i)`` has its centre at
  ``translate + (i + 0.5, j + 0.5, k + 0.5) * scale / dim``.

trimesh is used for the header (``parse_binvox``), the run-length coding
(``trimesh.voxel.encoding``) and the writer (``binvox_bytes``), but not for
``voxel_from_binvox``: it fails on grids that are not cubes (its ``xzy``
reshape asserts the permuted shape), divides by zero for a dimension of 1,
and its ``VoxelGrid`` puts voxel *centres* on ``translate .. translate +
scale`` (a ``scale / (dim - 1)`` pitch) instead of the binvox definition above.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from geomgen.errors import InvalidInputError
from geomgen.io import _common as C
from geomgen.structures import Voxels

__all__ = ["load_binvox", "save_binvox"]

_FORMATS = ("binvox",)
#: refuse grids larger than this many voxels (a corrupt header could ask for terabytes)
_MAX_VOXELS = 2**31


def _decode(path: Path, fn: str) -> tuple[np.ndarray, np.ndarray, float]:
    """``(X, Y, Z)`` bool occupancy, translate ``(3,)``, scale of a binvox file."""
    C.import_trimesh()
    from trimesh.exchange import binvox as tb
    from trimesh.voxel.encoding import RunLengthEncoding

    with C.reading(path, fn, "binvox"):
        with open(path, "rb") as f:
            parsed = tb.parse_binvox(f)
    shape = np.asarray(parsed.shape, dtype=np.int64).reshape(-1)
    if shape.size != 3 or (shape < 1).any():
        raise C.file_error(path, fn, f"'dim' must be 3 positive integers, got {shape.tolist()}")
    total = int(np.prod(shape))
    if total > _MAX_VOXELS:
        raise C.file_error(
            path, fn, f"'dim' {shape.tolist()} asks for {total} voxels, more than supported"
        )
    translate = np.asarray(parsed.translate, dtype=np.float64).reshape(-1)
    if translate.size != 3 or not np.isfinite(translate).all():
        raise C.file_error(
            path, fn, f"'translate' must be 3 finite numbers, got {translate.tolist()}"
        )
    scale = float(parsed.scale)
    if not (np.isfinite(scale) and scale > 0):
        raise C.file_error(path, fn, f"'scale' must be a finite number > 0, got {scale}")
    rle = np.asarray(parsed.rle_data)
    if rle.size % 2:
        raise C.file_error(path, fn, "run-length data has an odd number of bytes (truncated file?)")
    covered = int(rle[1::2].astype(np.int64).sum())
    if covered != total:
        raise C.file_error(
            path,
            fn,
            f"run-length data covers {covered} voxels but 'dim' {shape.tolist()} needs {total} "
            "(truncated or corrupt file?)",
        )
    if ((rle[0::2] != 0) & (rle[0::2] != 1)).any():
        raise C.file_error(path, fn, "run-length values must be 0 or 1")
    x, y, z = (int(s) for s in shape)
    with C.reading(path, fn, "binvox"):
        # stored order: x slowest, then z, then y fastest
        encoding = RunLengthEncoding(np.array(rle, copy=True), dtype=bool).reshape((x, z, y))
        dense = np.asarray(encoding.dense, dtype=bool).transpose(0, 2, 1)
    return dense, translate, scale


def load_binvox(
    path: C.PathLike,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> Voxels:
    """Read a ``.binvox`` file into a :class:`~geomgen.structures.Voxels` batch of one.

    See the module docstring for the axis and placement mapping.

    Args:
        path: the file.
        device: device of the returned grid.
        dtype: floating dtype of the grid (values 0 and 1), origin and voxel size.

    Returns:
        ``Voxels`` with ``kind="occupancy"``, grids ``(1, D, H, W)``,
        ``origin = translate``, ``voxel_size = scale / max(D, H, W)``.

    Raises:
        MeshFileNotFoundError: ``path`` does not exist or is a directory.
        FileFormatError: empty, truncated or corrupt file (bad header,
            run-length data that does not match ``dim``); names the file.
    """
    fn = "load_binvox"
    p = C.as_path(path, fn)
    C.check_readable_file(p, fn)
    C.file_format(p, _FORMATS, fn)
    C.check_dtype(dtype, fn)
    dense_xyz, translate, scale = _decode(p, fn)
    grid = np.ascontiguousarray(dense_xyz.transpose(2, 1, 0))  # (X, Y, Z) -> (Z, Y, X) = (D, H, W)
    size = scale / max(grid.shape)
    grids = torch.from_numpy(grid).to(device=device, dtype=dtype).unsqueeze(0)
    origin = torch.tensor(translate, dtype=dtype, device=device)
    return C.build_structure(p, fn, Voxels, grids, kind="occupancy", origin=origin, voxel_size=size)


def save_binvox(
    path: C.PathLike,
    voxels: Voxels,
    index: int = 0,
    *,
    threshold: float | None = None,
) -> None:
    """Write one grid of a :class:`~geomgen.structures.Voxels` batch as a ``.binvox`` file.

    The grid is thresholded with ``voxels.occupancy(threshold)`` (occupancy
    ``>= 0.5``, or signed distance ``<= 0``, by default).  ``translate`` is
    the grid's origin and ``scale = voxel_size * max(D, H, W)``; see the
    module docstring.  Any ``(D, H, W)`` is written (``dim`` is ``W H D``,
    i.e. ``X Y Z``), but binvox tools other than trimesh expect cubes.

    Args:
        path: file to create or overwrite (extension ``.binvox``); its folder
            must exist.
        voxels: the grids.
        index: which grid of the batch to write (negative counts from the end).
        threshold: passed to :meth:`Voxels.occupancy`.

    Raises:
        FileFormatError: the extension is not ``.binvox``.
        MeshFileNotFoundError: the folder of ``path`` does not exist.
        InvalidInputError: not a ``Voxels``, bad ``index``, or a voxel size that
            differs between axes (binvox has one scale).
    """
    fn = "save_binvox"
    p = C.as_path(path, fn)
    C.file_format(p, _FORMATS, fn)
    C.check_writable_file(p, fn)
    if not isinstance(voxels, Voxels):
        raise InvalidInputError(
            f"{fn}: argument 'voxels' must be a Voxels, got {type(voxels).__name__}"
        )
    i = C.check_index(index, len(voxels), fn, "grids")
    occ = C.to_numpy(voxels.occupancy(threshold)[i]).astype(bool)  # (D, H, W)
    origin = C.to_numpy(voxels.origin[i], np.float64).reshape(3)
    size = C.to_numpy(voxels.voxel_size[i], np.float64).reshape(3)
    if not np.allclose(size, size[0], rtol=1e-6, atol=0.0):
        raise InvalidInputError(
            f"{fn}: cannot write '{p}': binvox needs the same voxel size on every axis, got "
            f"{size.tolist()} (x, y, z)"
        )
    C.import_trimesh()
    from trimesh.exchange import binvox as tb
    from trimesh.voxel.encoding import DenseEncoding

    dense_xyz = np.ascontiguousarray(occ.transpose(2, 1, 0))  # (D, H, W) -> (X, Y, Z)
    # binvox stores x slowest, then z, then y: encode the (X, Z, Y) order
    rle = DenseEncoding(dense_xyz).transpose((0, 2, 1)).flat.run_length_data(dtype=np.uint8)
    scale = float(size[0]) * max(occ.shape)
    data = tb.binvox_bytes(
        np.asarray(rle, dtype=np.uint8),
        shape=dense_xyz.shape,
        translate=tuple(float(t) for t in origin),
        scale=scale,
    )
    p.write_bytes(data)
