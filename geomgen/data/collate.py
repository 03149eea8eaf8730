"""Batch dataset sample dicts into geomgen structures (``DataLoader(collate_fn=collate_samples)``).

Input: a list of ``B`` sample dicts of :mod:`geomgen.data` (every sample with
the same keys; keys a dataset does not provide are simply absent).  Output,
for the keys present:

======================  =========================================================
``id``, ``category``    lists of ``B`` str
``label``               ``(B,)`` int64
``mesh``                :class:`~geomgen.structures.Meshes` of ``B`` (from ``verts``, ``faces``)
``images``              ``(B, S, 3, H, W)`` float32
``depths``, ``masks``   ``(B, S, H, W)``
``K``                   ``(B, S, 3, 3)``; ``world_from_camera`` ``(B, S, 4, 4)``
``cameras``             :class:`~geomgen.render.PerspectiveCameras` of ``B * S``,
                        mesh-major (camera ``b * S + s`` is view ``s`` of sample
                        ``b``: the batching of :func:`~geomgen.render.render_meshes`),
                        image size from ``images`` / ``depths`` / ``masks``
``view_indices``        ``(B, S)`` int64
``voxels``              :class:`~geomgen.structures.Voxels` of ``B`` occupancy grids
                        covering ``[-0.5, 0.5]^3`` (origin ``(-0.5,) * 3``,
                        voxel size ``1 / R``)
``pointclouds``         :class:`~geomgen.structures.PointClouds` (``points``,
                        with ``normals`` when present)
``occ_points``          ``(B, Q, 3)``; ``occ_labels`` ``(B, Q)``
other tensors           stacked along a new first dimension; other values: lists
======================  =========================================================

Samples whose tensors differ in shape where a stack is needed (e.g. views
``S``, image size, ``Q``) raise :class:`~geomgen.errors.InvalidInputError`
naming the key and the two shapes.  The function is a plain module-level
function (picklable), so it works with ``num_workers > 0`` and with a
``DistributedSampler``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from geomgen.errors import InvalidInputError

__all__ = ["collate_samples"]

_LISTS = ("id", "category")
_STACKED = ("images", "depths", "masks", "K", "world_from_camera", "view_indices", "occ_points", "occ_labels")


def _stack(batch: Sequence[Mapping[str, Any]], key: str) -> torch.Tensor:
    items = []
    for i, sample in enumerate(batch):
        value = sample[key]
        if not isinstance(value, torch.Tensor):
            raise InvalidInputError(f"collate_samples: sample {i} key {key!r} must be a tensor, got "
                                    f"{type(value).__name__}")
        items.append(value)
    first = items[0].shape
    for i, t in enumerate(items):
        if t.shape != first:
            hint = " (use view='random' or a view index to get one view per sample)" if key in (
                "images", "depths", "masks", "K", "world_from_camera", "view_indices") else ""
            raise InvalidInputError(f"collate_samples: key {key!r} has shape {tuple(t.shape)} in sample {i} "
                                    f"({batch[i].get('id', '?')}) but {tuple(first)} in sample 0 "
                                    f"({batch[0].get('id', '?')}); cannot stack{hint}")
    return torch.stack(items)


def collate_samples(batch: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Collate ``B`` sample dicts into a batch dict (see the module docstring).

    Args:
        batch: list of sample dicts with identical key sets.

    Returns:
        dict of batched tensors, geomgen structures and lists.

    Raises:
        InvalidInputError: empty batch, samples with different keys, tensors
            that cannot be stacked (naming the key, samples and shapes).
    """
    from geomgen.structures import Meshes, PointClouds, Voxels

    if not isinstance(batch, Sequence) or isinstance(batch, (str, bytes)) or len(batch) == 0:
        raise InvalidInputError("collate_samples: argument 'batch' must be a non-empty list of sample dicts")
    for i, sample in enumerate(batch):
        if not isinstance(sample, Mapping):
            raise InvalidInputError(f"collate_samples: sample {i} must be a dict, got {type(sample).__name__}")
    keys = set(batch[0])
    for i, sample in enumerate(batch[1:], 1):
        if set(sample) != keys:
            diff = sorted(keys.symmetric_difference(sample))
            raise InvalidInputError(f"collate_samples: sample {i} has different keys than sample 0 (differing: "
                                    f"{diff}); samples of one batch must come from one dataset configuration")
    out: dict[str, Any] = {}
    consumed = {"label", "voxels"}
    for key in _LISTS:
        if key in keys:
            out[key] = [s[key] for s in batch]
    if "label" in keys:
        out["label"] = torch.as_tensor([int(s["label"]) for s in batch], dtype=torch.int64)
    if "verts" in keys and "faces" in keys:
        out["mesh"] = Meshes([s["verts"] for s in batch], [s["faces"] for s in batch])
        consumed |= {"verts", "faces"}
    for key in _STACKED:
        if key in keys:
            out[key] = _stack(batch, key)
    if "K" in out and "world_from_camera" in out:
        sized = next((k for k in ("images", "depths", "masks") if k in out), None)
        if sized is not None:
            from geomgen.render import PerspectiveCameras

            B, S = out["K"].shape[:2]
            hw = tuple(int(x) for x in out[sized].shape[-2:])
            out["cameras"] = PerspectiveCameras(out["K"].reshape(B * S, 3, 3),
                                                out["world_from_camera"].reshape(B * S, 4, 4), hw)
    if "voxels" in keys:
        grids = _stack(batch, "voxels")
        if grids.dim() != 4:
            raise InvalidInputError(f"collate_samples: key 'voxels' must be (R, R, R) grids per sample, got "
                                    f"{tuple(grids.shape[1:])}")
        D, H, W = grids.shape[1:]
        size = torch.tensor([1.0 / W, 1.0 / H, 1.0 / D], dtype=torch.float32)
        out["voxels"] = Voxels(grids, kind="occupancy", origin=torch.full((3,), -0.5), voxel_size=size)
    if "points" in keys:
        normals = [s["normals"] for s in batch] if "normals" in keys else None
        out["pointclouds"] = PointClouds([s["points"] for s in batch], normals=normals)
        consumed |= {"points", "normals"}
    for key in sorted(keys - set(out) - consumed):
        values = [s[key] for s in batch]
        out[key] = _stack(batch, key) if all(isinstance(v, torch.Tensor) for v in values) else values
    return out
