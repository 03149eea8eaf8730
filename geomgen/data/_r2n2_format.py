"""3D-R2N2's file formats and camera model (used by :mod:`geomgen.data.r2n2`).

Shape letters: ``S`` views, ``D`` voxels per grid edge.

Files of one model (Choy et al. 2016, ``ShapeNetRendering`` / ``ShapeNetVox32``)
--------------------------------------------------------------------------------
* ``rendering/NN.png``: ``137 x 137`` RGBA renderings of the ShapeNetCore v1
  model, transparent background.
* ``rendering/renderings.txt``: the PNG names, one per line, line ``i`` naming
  view ``i`` (``00.png`` .. ``23.png``).
* ``rendering/rendering_metadata.txt``: one line per view, five numbers:
  azimuth (degrees), elevation (degrees), in-plane rotation (degrees, 0 in
  every released file), distance ratio, and "field of view" (25 everywhere).
* ``model.binvox``: ``32^3`` occupancy of the v1 model, model axes kept
  (binvox's x, y, z are the OBJ's x, y, z), placed by the header in the OBJ's
  coordinates (voxel ``i`` spans ``translate + [i, i+1) * scale / 32``).  The
  released files look like binvox's default placement (``translate`` = the
  bounding-box min corner, ``scale`` = the longest bounding-box edge, e.g.
  ``translate -0.302 -0.170 -0.360 scale 0.721`` for a model with a
  unit-diagonal box centred at the origin); the code below relies only on
  the header's meaning, not on that placement.

Camera model
------------
The renderings were made by 3D-R2N2's Blender script: the camera sits on the
+X axis of an empty at the origin, at ``distance_ratio * 1.75``
(``MAX_CAMERA_DIST``), looking at the origin with its up vector along +Z;
the empty is rotated by the XYZ Euler angles ``(-in_plane, -elevation,
-azimuth)``; the OBJ is imported with Blender's default Y-up -> Z-up axis
conversion.  Undoing that conversion, the camera in ShapeNet v1's frame (+Y
up) has, for in-plane rotation 0,

    eye = d (cos(el) cos(az), sin(el), cos(el) sin(az)),   looking at the origin, up = +Y.

A non-zero in-plane rotation ``r`` turns the camera about its viewing axis,
clockwise as seen through the camera, so the image content turns
counter-clockwise by ``r`` (what the script's Euler angle does; every
released file has ``r = 0``).  The intrinsics are Blender's default camera, *not* the
metadata's fifth column: the script writes 25 there but never applies it,
and the images were taken with the default 35 mm lens on a 32 mm sensor
(horizontal field of view ``2 atan(16/35) = 49.13`` degrees): ``fx = fy =
35/32 * 137 = 149.84`` px for the ``137 x 137`` images (Blender's NDC focal
length 2.1875 quoted by Mesh R-CNN and PyTorch3D), principal point at the
image centre.  Sensor fit is "auto" (the larger image side spans the
sensor).

Voxel frame
-----------
:func:`voxels_to_normalized` maps a binvox grid into geomgen's normalised
frame without resampling: the scale is the binvox cube edge (with binvox's
default placement, the model's longest bounding-box edge, which becomes 1)
and the centre is the centre of the occupied voxels' bounding box, moved by
at most half a voxel so that the binvox lattice lands on geomgen's
``[-0.5, 0.5]^3`` lattice.  The grid then only shifts by whole voxels
(bit-exact ground truth, nothing resampled), and the object's bounding box
is centred to within one voxel (``1/D``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from geomgen.data._synsets import normalize_synset_id
from geomgen import checks as V
from geomgen.errors import FileFormatError, InvalidInputError
from geomgen.structures import Voxels

__all__ = [
    "MAX_CAMERA_DISTANCE",
    "FOCAL_PER_SENSOR_SIDE",
    "IMAGE_SIZE",
    "read_rendering_metadata",
    "read_renderings_list",
    "r2n2_cameras",
    "voxels_to_normalized",
    "read_split_file",
]

#: camera distance of 3D-R2N2 views = distance ratio x this (world units of ShapeNet v1).
MAX_CAMERA_DISTANCE = 1.75
#: Blender's default camera: focal length / sensor width = 35 mm / 32 mm.
FOCAL_PER_SENSOR_SIDE = 35.0 / 32.0
#: side of the released renderings, in pixels.
IMAGE_SIZE = 137


def read_rendering_metadata(path: Path) -> np.ndarray:
    """Rows of ``rendering_metadata.txt``: ``(S, 5)`` float64 (azimuth, elevation,
    in-plane rotation, distance ratio, fov); blank lines are ignored.

    Raises:
        FileFormatError: unreadable file, a line without exactly five numbers,
            non-finite values or a distance ratio <= 0; names the file and line.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise FileFormatError(f"cannot read R2N2 metadata '{path}': {e}") from e
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split()
        try:
            vals = [float(f) for f in fields]
        except ValueError:
            vals = []
        if len(vals) != 5 or not all(math.isfinite(v) for v in vals):
            raise FileFormatError(
                f"R2N2 metadata '{path}' line {n}: expected 5 finite numbers (azimuth elevation "
                f"in-plane-rotation distance-ratio fov), got {line.strip()!r:.80}"
            )
        if vals[3] <= 0:
            raise FileFormatError(f"R2N2 metadata '{path}' line {n}: distance ratio must be > 0, got {vals[3]}")
        rows.append(vals)
    if not rows:
        raise FileFormatError(f"R2N2 metadata '{path}' is empty")
    return np.asarray(rows, dtype=np.float64)


def read_renderings_list(path: Path) -> list[str]:
    """File names listed in ``renderings.txt`` (blank lines ignored).

    Raises:
        FileFormatError: unreadable file.
    """
    try:
        return [ln.strip() for ln in Path(path).read_text(encoding="utf-8").splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise FileFormatError(f"cannot read R2N2 renderings list '{path}': {e}") from e


def _rotations(axis: int, angle: torch.Tensor) -> torch.Tensor:
    """``(S, 3, 3)`` right-handed rotations by ``angle (S,)`` radians about x (0), y (1) or z (2)."""
    c, s = torch.cos(angle), torch.sin(angle)
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    R = torch.zeros(angle.shape + (3, 3), dtype=angle.dtype)
    R[:, axis, axis] = 1.0
    R[:, i, i], R[:, i, j], R[:, j, i], R[:, j, j] = c, -s, s, c
    return R


# camera axes (columns x right, y down, z forward) in the frame of the rotated empty
_CAM_IN_PARENT = torch.tensor([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]], dtype=torch.float64)
# Blender world (Z up) -> ShapeNet v1 / OBJ frame (Y up): (X, Y, Z) -> (X, Z, -Y)
_OBJ_FROM_BLENDER = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]], dtype=torch.float64)


def r2n2_cameras(
    metadata: np.ndarray | torch.Tensor,
    image_size: tuple[int, int] = (IMAGE_SIZE, IMAGE_SIZE),
    *,
    rendered_size: tuple[int, int] | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Intrinsics and camera-to-world poses of R2N2 views, OpenCV convention.

    See the module docstring for the camera model.  Poses are in ShapeNet v1's
    frame (+Y up, the frame of ``model.obj`` and ``model.binvox``), before any
    normalisation.

    Args:
        metadata: ``(S, 5)`` rows of ``rendering_metadata.txt`` (degrees, ratio);
            only the first four columns are used.
        image_size: ``(H, W)`` of the images the intrinsics are for.
        rendered_size: ``(H, W)`` the PNGs were rendered at (default
            ``image_size``); when they differ the images were resized and the
            intrinsics are scaled per axis (``fx`` by ``W / W_rendered``, ``fy``
            by ``H / H_rendered``).
        dtype: floating dtype of the results.

    Returns:
        ``K`` ``(S, 3, 3)`` (``fx = fy = 35/32 * max(rendered H, W)`` before
        resizing, principal point at the image centre, pixel centres at
        ``+0.5``) and ``world_from_camera`` ``(S, 4, 4)``.

    Raises:
        InvalidInputError: ``metadata`` is not ``(S, 5)`` finite, or a size is not
            two positive ints.
    """
    fn = "r2n2_cameras"
    meta = torch.as_tensor(np.asarray(metadata, dtype=np.float64))
    if meta.dim() != 2 or meta.shape[1] < 4 or meta.shape[0] < 1 or not torch.isfinite(meta).all():
        raise InvalidInputError(
            f"{fn}: argument 'metadata' must be a finite (S, 5) array, got shape {tuple(meta.shape)}"
        )
    H, W = V.check_image_size(image_size, "image_size", fn=fn)
    H0, W0 = V.check_image_size(rendered_size, "rendered_size", fn=fn) if rendered_size is not None else (H, W)
    az, el, roll, ratio = (torch.deg2rad(meta[:, 0]), torch.deg2rad(meta[:, 1]), torch.deg2rad(meta[:, 2]),
                           meta[:, 3])
    parent = _rotations(2, -az) @ _rotations(1, -el) @ _rotations(0, -roll)
    to_obj = _OBJ_FROM_BLENDER.expand_as(parent)
    R = to_obj @ parent @ _CAM_IN_PARENT
    eye_parent = torch.zeros(len(meta), 3, dtype=torch.float64)
    eye_parent[:, 0] = ratio * MAX_CAMERA_DISTANCE
    t = (to_obj @ parent @ eye_parent.unsqueeze(-1)).squeeze(-1)
    pose = torch.eye(4, dtype=torch.float64).repeat(len(meta), 1, 1)
    pose[:, :3, :3], pose[:, :3, 3] = R, t
    f = FOCAL_PER_SENSOR_SIDE * max(H0, W0)
    K = torch.tensor([[f * W / W0, 0.0, W / 2.0], [0.0, f * H / H0, H / 2.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    return K.expand(len(meta), 3, 3).to(dtype).clone(), pose.to(dtype)


def voxels_to_normalized(voxels: Voxels, path: Path | str = "<grid>") -> tuple[torch.Tensor, torch.Tensor, float]:
    """Place an R2N2 binvox grid in geomgen's normalised frame (see the module docstring).

    Args:
        voxels: one cubic grid as read by :func:`geomgen.io.load_binvox`
            (``origin`` = binvox ``translate``, ``voxel_size`` = ``scale / D``).
        path: the file, for messages.

    Returns:
        ``(grid, center, scale)``: ``grid`` ``(D, D, D)`` float32 occupancy
        covering ``[-0.5, 0.5]^3`` (``grid[k, j, i]`` <-> ``(z, y, x)``, voxel
        size ``1 / D``); ``center`` ``(3,)`` float64 and ``scale`` such that
        ``p_normalised = (p_v1 - center) / scale`` maps ShapeNet v1
        coordinates (meshes, camera centres) into the grid's frame.

    Raises:
        FileFormatError: the grid is not a cube, its voxels are not cubes, or
            it is empty; names ``path``.
    """
    grid = voxels.occupancy()[0]
    D = grid.shape[0]
    if tuple(grid.shape) != (D, D, D):
        raise FileFormatError(f"R2N2 voxels '{path}': grid must be a cube, got (D, H, W) = {tuple(grid.shape)}")
    size = voxels.voxel_size[0].double()
    if not torch.allclose(size, size[0].expand(3), rtol=1e-6, atol=0.0):
        raise FileFormatError(f"R2N2 voxels '{path}': voxels must be cubes, got sizes {size.tolist()}")
    occ = grid.bool()
    if not occ.any():
        raise FileFormatError(f"R2N2 voxels '{path}': the grid is empty (no occupied voxel)")
    h = float(size[0])
    scale = h * D
    origin = voxels.origin[0].double()
    shift = []  # whole-voxel shift per axis x, y, z that centres the occupied block
    for dim in (2, 1, 0):  # grid dims of x, y, z
        other = tuple(d for d in (0, 1, 2) if d != dim)
        idx = torch.nonzero(occ.any(dim=other[1]).any(dim=other[0])).flatten()
        lo, hi = int(idx.min()), int(idx.max())
        shift.append(int(math.floor((D - 1 - lo - hi) / 2.0 + 0.5)))
    m = torch.tensor(shift, dtype=torch.float64)
    center = origin + scale / 2.0 - m * h
    out = torch.roll(occ, shifts=(shift[2], shift[1], shift[0]), dims=(0, 1, 2))
    return out.to(torch.float32), center, scale


def read_split_file(path: Path) -> dict[str, dict[tuple[str, str], list[int] | None]]:
    """Read an R2N2 split file: split -> {(synset, model): view indices or None (all)}.

    Two layouts are understood:

    * Mesh R-CNN / PyTorch3D: ``{"train": {synset: {model: [view, ...]}}, "val": ..., "test": ...}``
      (a few models list different views in different splits);
    * Pix2Vox's ``ShapeNet.json``: ``[{"taxonomy_id": synset, "train": [model, ...],
      "val": [...], "test": [...]}, ...]`` (all views).

    Raises:
        FileFormatError: unreadable JSON or neither layout; names the file.
    """
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FileFormatError(f"cannot read R2N2 split file '{path}': {e}") from e
    out: dict[str, dict[tuple[str, str], list[int] | None]] = {}
    bad = FileFormatError(
        f"R2N2 split file '{path}' is neither {{split: {{synset: {{model: [views]}}}}}} (Mesh R-CNN) "
        "nor [{taxonomy_id, train: [models], ...}] (Pix2Vox)"
    )
    if isinstance(doc, dict):
        for split, synsets in doc.items():
            if not isinstance(synsets, dict):
                raise bad
            table = out.setdefault(str(split), {})
            for synset, models in synsets.items():
                if not isinstance(models, dict):
                    raise bad
                for model, views in models.items():
                    if views is not None and not (
                        isinstance(views, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in views)
                    ):
                        raise bad
                    table[(normalize_synset_id(synset), str(model))] = None if views is None else list(views)
    elif isinstance(doc, list):
        for entry in doc:
            if not isinstance(entry, dict) or "taxonomy_id" not in entry:
                raise bad
            synset = normalize_synset_id(entry["taxonomy_id"])
            for split in ("train", "val", "test"):
                models = entry.get(split, [])
                if not isinstance(models, list):
                    raise bad
                table = out.setdefault(split, {})
                for model in models:
                    table[(synset, str(model))] = None
    else:
        raise bad
    return out
