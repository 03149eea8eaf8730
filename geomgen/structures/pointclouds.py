"""Batched point clouds of different sizes.

Shape letters used in this module:

* ``N`` - number of clouds in the batch
* ``P`` - points of one cloud (``P_i`` for cloud ``i``); ``max(P)`` /
  ``sum(P)`` over the batch
* ``C`` - feature channels per point (same ``C`` for the whole batch)

Like :class:`~geomgen.structures.Meshes`, every per-point quantity has three
views: **list** (``N`` tensors ``(P_i, ...)``), **padded** (``(N, max(P), ...)``
zero padded) and **packed** (``(sum(P), ...)`` concatenated).  The list view
is the source of truth; padded/packed views are computed lazily, cached, and
recomputed when a source tensor is modified in place.  Views are
differentiable with respect to the tensors given to the constructor.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from geomgen.errors import InvalidInputError
from geomgen.structures._base import _RaggedBatch, check_join_items
from geomgen.structures._checks import (
    ViewCache,
    check_finite_list,
    first_device,
    format_counts,
    parse_batch_arg,
    parse_item_attr,
    ragged_items,
    segment_bounding_boxes,
    tensor_versions,
)

__all__ = ["PointClouds", "join_pointclouds_as_batch"]

_ArrayLike = Any  # torch.Tensor | numpy.ndarray


class PointClouds(_RaggedBatch):
    """A batch of ``N`` point clouds, each with its own number of points.

    Args:
        points: list of ``N`` float tensors ``(P_i, 3)``, or a padded float
            tensor ``(N, max(P), 3)`` (see ``lengths``).  NumPy arrays are
            accepted (copied).
        normals: optional per-point normals ``(P_i, 3)``, list or padded.
        features: optional per-point features ``(P_i, C)``, list or padded;
            ``C`` must be the same for every cloud.
        validate: check that points, normals and features are finite.  Shapes,
            dtypes, devices and per-cloud lengths are always checked.
        lengths: with padded ``points`` only: ``N`` point counts
            (default: all ``max(P)`` rows of every cloud).

    Empty clouds (``P_i = 0``) and an empty batch (``N = 0``) are allowed.

    Raises:
        InvalidInputError: naming the argument (and cloud index) at fault.
    """

    def __init__(
        self,
        points: Sequence[_ArrayLike] | _ArrayLike,
        normals: Sequence[_ArrayLike] | _ArrayLike | None = None,
        features: Sequence[_ArrayLike] | _ArrayLike | None = None,
        validate: bool = True,
        *,
        lengths: Sequence[int] | torch.Tensor | None = None,
    ) -> None:
        device = first_device(points)
        items, padded = parse_batch_arg(points, "points", ("P", 3), "float", device)
        items, counts, dtype = ragged_items(  # padded without lengths: every row is a point
            items, padded, "points", ("P", 3), lengths, "lengths", lambda: [padded.shape[1]] * len(padded), device
        )
        per_point = (counts, "points", "cloud", "points", dtype, device)
        nrm = parse_item_attr(normals, "normals", ("P", 3), *per_point)
        feat = parse_item_attr(features, "features", ("P", "C"), *per_point)
        if validate:
            check_finite_list(items, "points")
            if nrm is not None:
                check_finite_list(nrm, "normals")
            if feat is not None:
                check_finite_list(feat, "features")
        self._setup(items, nrm, feat, bool(validate), device, dtype)

    # ------------------------------------------------------------------ setup

    def _setup(
        self,
        points: list[torch.Tensor],
        normals: list[torch.Tensor] | None,
        features: list[torch.Tensor] | None,
        validated: bool,
        device: torch.device,
        dtype: torch.dtype,
    ) -> None:
        self._points_list = list(points)
        self._normals_list = None if normals is None else list(normals)
        self._features_list = None if features is None else list(features)
        self._N = len(self._points_list)
        self._num_points = [int(p.shape[0]) for p in self._points_list]
        if self._features_list is None:
            self._C = None
        else:
            self._C = int(self._features_list[0].shape[1]) if self._features_list else 0
        self._device = device
        self._dtype = dtype
        self._validated = validated
        self._cache = ViewCache()

    def _lists(self) -> tuple[list[torch.Tensor] | None, ...]:
        return self._points_list, self._normals_list, self._features_list

    def _stamp(self) -> Any:
        return tensor_versions((self._points_list, self._normals_list, self._features_list))

    def _get(self, key: str, compute: Any) -> Any:
        return self._cache.get(key, self._stamp(), compute)

    def _derive(self, points, normals, features=None) -> "PointClouds":  # noqa: ANN001
        return PointClouds._build(
            points, normals, self._features_list if features is None else features,
            self._validated, self._device, self._dtype,
        )

    # ------------------------------------------------------------ basic info

    def __repr__(self) -> str:
        extra = ""
        if self._normals_list is not None:
            extra += ", normals"
        if self._features_list is not None:
            extra += f", features C={self._C}"
        return (
            f"PointClouds(N={self._N}, num_points={format_counts(self._num_points)}, "
            f"device={self._device}, dtype={self._dtype}{extra})"
        )

    @property
    def num_channels(self) -> int | None:
        """Feature channels ``C``, or None without features."""
        return self._C

    @property
    def valid(self) -> torch.Tensor:
        """``(N,)`` bool: cloud has at least one point."""
        return self.num_points_per_cloud() > 0

    def isempty(self) -> bool:
        """True when the batch holds no points at all (also for ``N = 0``)."""
        return sum(self._num_points) == 0

    # ---------------------------------------------------------------- views

    def points_list(self) -> list[torch.Tensor]:
        """``N`` tensors ``(P_i, 3)`` (the stored tensors)."""
        return list(self._points_list)

    def normals_list(self) -> list[torch.Tensor] | None:
        """``N`` tensors ``(P_i, 3)``, or None."""
        return None if self._normals_list is None else list(self._normals_list)

    def features_list(self) -> list[torch.Tensor] | None:
        """``N`` tensors ``(P_i, C)``, or None."""
        return None if self._features_list is None else list(self._features_list)

    def points_packed(self) -> torch.Tensor:
        """``(sum(P), 3)`` all points concatenated."""
        return self._packed("points_packed", self._points_list, 3)

    def points_padded(self) -> torch.Tensor:
        """``(N, max(P), 3)`` zero-padded points."""
        return self._padded("points_padded", self._points_list, 3)

    def normals_packed(self) -> torch.Tensor | None:
        """``(sum(P), 3)`` normals, or None."""
        return self._packed("normals_packed", self._normals_list, 3)

    def normals_padded(self) -> torch.Tensor | None:
        """``(N, max(P), 3)`` zero-padded normals, or None."""
        return self._padded("normals_padded", self._normals_list, 3)

    def features_packed(self) -> torch.Tensor | None:
        """``(sum(P), C)`` features, or None."""
        return self._packed("features_packed", self._features_list, self._C)

    def features_padded(self) -> torch.Tensor | None:
        """``(N, max(P), C)`` zero-padded features, or None."""
        return self._padded("features_padded", self._features_list, self._C)

    # ------------------------------------------------------------ index maps

    def num_points_per_cloud(self) -> torch.Tensor:
        """``(N,)`` int64 point counts."""
        return self._row_index("num", "points", self._num_points, self._get)

    def cloud_to_packed_first_idx(self) -> torch.Tensor:
        """``(N,)`` index of each cloud's first point in :meth:`points_packed`."""
        return self._row_index("first", "points", self._num_points, self._get)

    def packed_to_cloud_idx(self) -> torch.Tensor:
        """``(sum(P),)`` cloud index of each packed point."""
        return self._row_index("item", "points", self._num_points, self._get)

    def padded_to_packed_idx(self) -> torch.Tensor:
        """``(sum(P),)`` index such that
        ``points_padded().reshape(-1, 3)[idx] == points_packed()``."""
        return self._row_index("pad2pack", "points", self._num_points, self._get)

    def get_bounding_boxes(self) -> torch.Tensor:
        """``(N, 3, 2)`` per-cloud axis-aligned box, ``[..., 0]`` = min and
        ``[..., 1]`` = max over xyz; zeros for an empty cloud."""
        return self._get(
            "bbox", lambda: segment_bounding_boxes(self.points_packed(), self.packed_to_cloud_idx(), self._N)
        )

    # -------------------------------------------------------------- updates

    def offset(self, offsets_packed: torch.Tensor) -> "PointClouds":
        """New ``PointClouds`` with points moved by ``offsets_packed``:
        ``(sum(P), 3)`` per point or ``(3,)`` for all.  Normals and features
        are kept (shared)."""
        pts, _ = self._offset_items(offsets_packed, "offsets_packed", "P", self.points_packed, self._num_points)
        return self._derive(pts, self._normals_list)

    def offset_(self, offsets_packed: torch.Tensor) -> "PointClouds":
        """In-place :meth:`offset` (replaces the stored tensors; the caller's
        tensors are not written to).  Returns ``self``."""
        self._points_list = self.offset(offsets_packed)._points_list
        self._cache.clear()
        return self

    def scale(self, scale: float | torch.Tensor) -> "PointClouds":
        """New ``PointClouds`` with points multiplied by ``scale``: a scalar or
        ``(N,)`` per cloud (about the origin).  Normals are flipped where the
        scale is negative."""
        return self._derive(*self._scale_items(scale, self._points_list, self._normals_list))

    def scale_(self, scale: float | torch.Tensor) -> "PointClouds":
        """In-place :meth:`scale`.  Returns ``self``."""
        other = self.scale(scale)
        self._points_list, self._normals_list = other._points_list, other._normals_list
        self._cache.clear()
        return self

    def update_padded(
        self,
        new_points_padded: torch.Tensor,
        new_normals_padded: torch.Tensor | None = None,
        new_features_padded: torch.Tensor | None = None,
    ) -> "PointClouds":
        """New ``PointClouds`` with the same per-cloud lengths and data taken
        from padded tensors ``(N, max(P), 3)`` (and ``(N, max(P), 3)`` normals,
        ``(N, max(P), C)`` features; existing ones are kept where None)."""
        counts = self._num_points
        pts = self._unpad(new_points_padded, "new_points_padded", counts, 3)
        nrm = self._normals_list
        if new_normals_padded is not None:
            nrm = self._unpad(new_normals_padded, "new_normals_padded", counts, 3)
        feat = self._features_list
        if new_features_padded is not None:
            width = self._C if self._C is not None else "C"
            feat = self._unpad(new_features_padded, "new_features_padded", counts, width)
        return self._derive(pts, nrm, feat)


def join_pointclouds_as_batch(pointclouds: Sequence[PointClouds]) -> PointClouds:
    """Concatenate several ``PointClouds`` batches into one (tensors shared).
    All must be on one device with one dtype; normals and features must be
    present in all or none, with the same number of feature channels."""
    if isinstance(pointclouds, PointClouds) or not isinstance(pointclouds, (list, tuple)):
        raise InvalidInputError(f"pointclouds: expected a list of PointClouds, got {type(pointclouds).__name__}")
    check_join_items(pointclouds, "pointclouds", PointClouds)
    if not pointclouds:
        return PointClouds([])
    first = pointclouds[0]
    for i, p in enumerate(pointclouds):
        if p.device != first.device:
            raise InvalidInputError(f"pointclouds[{i}]: on device {p.device} but pointclouds[0] is on {first.device}")
        if p.dtype != first.dtype:
            raise InvalidInputError(f"pointclouds[{i}]: dtype {p.dtype} differs from pointclouds[0] ({first.dtype})")
        for attr, label in (("_normals_list", "normals"), ("_features_list", "features")):
            mine, ref = getattr(p, attr) is not None, getattr(first, attr) is not None
            if mine != ref:
                raise InvalidInputError(
                    f"pointclouds[{i}]: has {'' if mine else 'no '}{label} but pointclouds[0] does{'' if ref else ' not'}"
                )
        if p.num_channels != first.num_channels and p._N and first._N:
            raise InvalidInputError(
                f"pointclouds[{i}]: features have {p.num_channels} channels but pointclouds[0] has {first.num_channels}"
            )
    def cat(attr: str) -> list[torch.Tensor] | None:
        return None if getattr(first, attr) is None else [t for p in pointclouds for t in getattr(p, attr)]

    return PointClouds._build(
        cat("_points_list"), cat("_normals_list"), cat("_features_list"),
        all(p.validated for p in pointclouds), first.device, first.dtype,
    )
