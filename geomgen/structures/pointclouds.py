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

from typing import Any, Iterator, Sequence

import torch

from geomgen.errors import InvalidInputError
from geomgen.structures._checks import (
    ViewCache,
    as_tensor,
    batch_idx_from_counts,
    check_finite_list,
    check_item_lengths,
    check_lengths,
    check_pattern,
    check_positive_int,
    check_same_device,
    check_same_dtype,
    cuda_device,
    first_idx_from_counts,
    format_counts,
    list_to_packed,
    list_to_padded,
    normalize_batch_index,
    padded_to_list,
    padded_to_packed_idx,
    parse_batch_arg,
    parse_lengths,
    resolve_device,
    segment_bounding_boxes,
    tensor_versions,
)

__all__ = ["PointClouds", "join_pointclouds_as_batch"]

_ArrayLike = Any  # torch.Tensor | numpy.ndarray


def _first_device(x: Any) -> torch.device:
    if isinstance(x, torch.Tensor):
        return x.device
    if isinstance(x, (list, tuple)):
        for el in x:
            if isinstance(el, torch.Tensor):
                return el.device
    return torch.device("cpu")


def _per_point_list(
    x: Any, name: str, counts: list[int], pattern: tuple, dtype: torch.dtype, device: torch.device
) -> list[torch.Tensor] | None:
    """Parse an optional per-point attribute (list or padded) into a list
    matching ``counts`` rows per cloud."""
    if x is None:
        return None
    items, padded = parse_batch_arg(x, name, pattern, "float", device)
    if padded is not None:
        if padded.shape[0] != len(counts):
            raise InvalidInputError(f"{name}: got {padded.shape[0]} items but points has {len(counts)}")
        if padded.device != device:
            raise InvalidInputError(f"{name}: on device {padded.device}, expected {device}")
        if counts and padded.shape[1] < max(counts):
            raise InvalidInputError(
                f"{name}: padded size {padded.shape[1]} is smaller than the largest cloud ({max(counts)} points)"
            )
        items = padded_to_list(padded, counts)
    else:
        check_lengths(name, items, "points", len(counts))
        check_same_device(items, name, device)
    check_item_lengths(items, name, "points", counts)
    return [t.to(dtype) for t in items]


class PointClouds:
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
        device = _first_device(points)
        items, padded = parse_batch_arg(points, "points", ("P", 3), "float", device)
        if padded is not None:
            n, pmax = padded.shape[0], padded.shape[1]
            counts = [pmax] * n if lengths is None else parse_lengths(lengths, "lengths", n, pmax)
            items = padded_to_list(padded, counts)
        else:
            if lengths is not None:
                raise InvalidInputError("lengths: only allowed with padded points (a (N, P, 3) tensor)")
            check_same_device(items, "points", device)
            check_same_dtype(items, "points")
            counts = [t.shape[0] for t in items]
        dtype = items[0].dtype if items else torch.get_default_dtype()
        nrm = _per_point_list(normals, "normals", counts, ("P", 3), dtype, device)
        feat = _per_point_list(features, "features", counts, ("P", "C"), dtype, device)
        if feat:
            for i, f in enumerate(feat):
                if f.shape[1] != feat[0].shape[1]:
                    raise InvalidInputError(
                        f"features[{i}]: has {f.shape[1]} channels but features[0] has {feat[0].shape[1]}"
                    )
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

    @classmethod
    def _from_lists(cls, points, normals, features, validated, device, dtype) -> "PointClouds":  # noqa: ANN001
        out = cls.__new__(cls)
        out._setup(points, normals, features, validated, device, dtype)
        return out

    def _stamp(self) -> Any:
        return tensor_versions((self._points_list, self._normals_list, self._features_list))

    def _get(self, key: str, compute: Any) -> Any:
        return self._cache.get(key, self._stamp(), compute)

    def _derive(self, points, normals, features=None) -> "PointClouds":  # noqa: ANN001
        return PointClouds._from_lists(
            points, normals, self._features_list if features is None else features,
            self._validated, self._device, self._dtype,
        )

    # ------------------------------------------------------------ basic info

    def __len__(self) -> int:
        return self._N

    def __iter__(self) -> Iterator["PointClouds"]:
        for i in range(self._N):
            yield self[i]

    def __getitem__(self, index: int | slice | Sequence[int] | torch.Tensor) -> "PointClouds":
        """A new ``PointClouds`` with the selected clouds (an int gives a
        batch of one).  Accepts an int, a slice, a list of ints, or a 1-D bool
        mask / integer tensor.  Tensors are shared, not copied."""
        idx = normalize_batch_index(index, self._N)
        pick = lambda xs: None if xs is None else [xs[i] for i in idx]  # noqa: E731
        return PointClouds._from_lists(
            pick(self._points_list), pick(self._normals_list), pick(self._features_list),
            self._validated, self._device, self._dtype,
        )

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
    def device(self) -> torch.device:
        """Device of every tensor in the batch."""
        return self._device

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the points."""
        return self._dtype

    @property
    def num_channels(self) -> int | None:
        """Feature channels ``C``, or None without features."""
        return self._C

    @property
    def validated(self) -> bool:
        """True when built with ``validate=True``."""
        return self._validated

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

    def _packed(self, key: str, items: list[torch.Tensor] | None, width: int | None) -> torch.Tensor | None:
        if items is None:
            return None
        return self._get(key, lambda: list_to_packed(items, (width,), self._dtype, self._device))

    def _padded(self, key: str, items: list[torch.Tensor] | None, width: int | None) -> torch.Tensor | None:
        if items is None:
            return None
        return self._get(key, lambda: list_to_padded(items, 0.0, (width,), self._dtype, self._device))

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
        return self._get("num_points", lambda: torch.tensor(self._num_points, dtype=torch.int64, device=self._device))

    def cloud_to_packed_first_idx(self) -> torch.Tensor:
        """``(N,)`` index of each cloud's first point in :meth:`points_packed`."""
        return self._get("first_idx", lambda: first_idx_from_counts(self.num_points_per_cloud()))

    def packed_to_cloud_idx(self) -> torch.Tensor:
        """``(sum(P),)`` cloud index of each packed point."""
        return self._get("p2c", lambda: batch_idx_from_counts(self.num_points_per_cloud()))

    def padded_to_packed_idx(self) -> torch.Tensor:
        """``(sum(P),)`` index such that
        ``points_padded().reshape(-1, 3)[idx] == points_packed()``."""
        return self._get(
            "pad2pack", lambda: padded_to_packed_idx(self.num_points_per_cloud(), max(self._num_points, default=0))
        )

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
        t = as_tensor(offsets_packed, "offsets_packed", self._device)
        if not t.is_floating_point():
            raise InvalidInputError(f"offsets_packed: expected a floating-point tensor, got dtype {t.dtype}")
        if t.device != self._device:
            raise InvalidInputError(f"offsets_packed: on device {t.device}, expected {self._device}")
        total = sum(self._num_points)
        if t.shape != (3,):
            check_pattern(t, "offsets_packed", (total, 3), f"a ({total}, 3) (= (sum(P), 3)) or (3,) tensor")
        new = self.points_packed() + t
        return self._derive(list(torch.split(new, self._num_points)), self._normals_list)

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
        s = as_tensor(scale, "scale", self._device)
        if s.dtype == torch.bool or s.is_complex():
            raise InvalidInputError(f"scale: expected a real number or (N,) tensor, got dtype {s.dtype}")
        s = s.to(device=self._device, dtype=self._dtype)
        if s.ndim == 0:
            s = s.expand(self._N)
        if s.shape != (self._N,):
            raise InvalidInputError(f"scale: expected a scalar or a ({self._N},) tensor, got shape {tuple(s.shape)}")
        pts = [p * s[i] for i, p in enumerate(self._points_list)]
        nrm = None
        if self._normals_list is not None:
            sign = torch.where(s < 0, -1.0, 1.0).to(self._dtype)
            nrm = [v * sign[i] for i, v in enumerate(self._normals_list)]
        return self._derive(pts, nrm)

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
        pmax = max(self._num_points, default=0)

        def take(x: Any, name: str, width: Any) -> list[torch.Tensor]:
            t = as_tensor(x, name, self._device)
            if not t.is_floating_point():
                raise InvalidInputError(f"{name}: expected a floating-point tensor, got dtype {t.dtype}")
            if t.device != self._device:
                raise InvalidInputError(f"{name}: on device {t.device}, expected {self._device}")
            check_pattern(t, name, (self._N, pmax, width))
            return padded_to_list(t.to(self._dtype), self._num_points)

        pts = take(new_points_padded, "new_points_padded", 3)
        nrm = self._normals_list if new_normals_padded is None else take(new_normals_padded, "new_normals_padded", 3)
        feat = self._features_list
        if new_features_padded is not None:
            feat = take(new_features_padded, "new_features_padded", self._C if self._C is not None else "C")
        return self._derive(pts, nrm, feat)

    def extend(self, n: int) -> "PointClouds":
        """New ``PointClouds`` with each cloud repeated ``n`` times in a row
        (``[c0, c0, c1, c1, ...]`` for ``n = 2``); tensors are cloned."""
        n = check_positive_int(n, "n")
        rep = lambda xs: None if xs is None else [t.clone() for t in xs for _ in range(n)]  # noqa: E731
        return PointClouds._from_lists(
            rep(self._points_list), rep(self._normals_list), rep(self._features_list),
            self._validated, self._device, self._dtype,
        )

    def _map(self, fn: Any, device: torch.device) -> "PointClouds":
        m = lambda xs: None if xs is None else [fn(t) for t in xs]  # noqa: E731
        return PointClouds._from_lists(
            m(self._points_list), m(self._normals_list), m(self._features_list),
            self._validated, device, self._dtype,
        )

    def clone(self) -> "PointClouds":
        """Deep copy: every tensor cloned (autograd links kept)."""
        return self._map(torch.Tensor.clone, self._device)

    def detach(self) -> "PointClouds":
        """New ``PointClouds`` with tensors detached from autograd (storage shared)."""
        return self._map(torch.Tensor.detach, self._device)

    def to(self, device: str | torch.device, copy: bool = False) -> "PointClouds":
        """``PointClouds`` on ``device``; ``self`` when already there and not ``copy``."""
        dev = resolve_device(device)
        if dev == self._device:
            return self.clone() if copy else self
        return self._map(lambda t: t.to(dev), dev)

    def cpu(self) -> "PointClouds":
        """``PointClouds`` on the CPU."""
        return self.to("cpu")

    def cuda(self, device: int | str | torch.device | None = None) -> "PointClouds":
        """``PointClouds`` on a CUDA device (the current one by default)."""
        return self.to(cuda_device(device))


def join_pointclouds_as_batch(pointclouds: Sequence[PointClouds]) -> PointClouds:
    """Concatenate several ``PointClouds`` batches into one (tensors shared).
    All must be on one device with one dtype; normals and features must be
    present in all or none, with the same number of feature channels."""
    if isinstance(pointclouds, PointClouds) or not isinstance(pointclouds, (list, tuple)):
        raise InvalidInputError(f"pointclouds: expected a list of PointClouds, got {type(pointclouds).__name__}")
    for i, p in enumerate(pointclouds):
        if not isinstance(p, PointClouds):
            raise InvalidInputError(f"pointclouds[{i}]: expected a PointClouds, got {type(p).__name__}")
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

    return PointClouds._from_lists(
        cat("_points_list"), cat("_normals_list"), cat("_features_list"),
        all(p.validated for p in pointclouds), first.device, first.dtype,
    )
