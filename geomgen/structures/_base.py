"""Private base classes shared by the batched structures.

:class:`_BatchedStructure` is what every batch offers: ``len``, iteration,
indexing (normalised by :func:`normalize_batch_index`), ``validated`` and the
copy / move family ``clone``, ``detach``, ``to``, ``cpu``, ``cuda``.  A
subclass supplies ``_select(idx)`` (a batch of the items at positions
``idx``) and ``_map(fn, device)`` (a batch with ``fn`` applied to every stored
tensor, now on ``device``).

:class:`_RaggedBatch` (``Meshes``, ``PointClouds``) stores one list of
per-item tensors per attribute; :class:`_DenseBatch` (``Voxels``,
``DepthMaps``) stores one batch tensor per attribute.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence, TypeVar

import torch

from geomgen.errors import InvalidInputError
from geomgen.structures._checks import (
    as_tensor,
    batch_idx_from_counts,
    check_pattern,
    check_positive_int,
    cuda_device,
    first_idx_from_counts,
    float_tensor_on,
    list_to_packed,
    list_to_padded,
    normalize_batch_index,
    padded_to_list,
    padded_to_packed_idx,
    resolve_device,
)

_B = TypeVar("_B", bound="_BatchedStructure")
_R = TypeVar("_R", bound="_RaggedBatch")
_D = TypeVar("_D", bound="_DenseBatch")
_Lists = Callable[[list[torch.Tensor]], list[torch.Tensor]]


class _BatchedStructure:
    """Batch protocol and copying shared by all structures."""

    _validated: bool

    @classmethod
    def _build(cls: type[_B], *parts: Any) -> _B:
        """An instance from already checked parts (``_setup``'s arguments),
        without going through ``__init__``."""
        out = cls.__new__(cls)
        out._setup(*parts)
        return out

    def _setup(self, *parts: Any) -> None:
        raise NotImplementedError

    def _select(self: _B, idx: list[int]) -> _B:
        raise NotImplementedError

    def _map(self: _B, fn: Callable[[torch.Tensor], torch.Tensor], device: torch.device) -> _B:
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def __iter__(self: _B) -> Iterator[_B]:
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self: _B, index: int | slice | Sequence[int] | torch.Tensor) -> _B:
        """A new batch of the same type with the selected items (an int
        gives a batch of one).  Accepts an int, a slice, a list of ints, or a
        1-D bool mask / integer tensor.  ``Meshes`` and ``PointClouds`` share
        the item tensors, not copied."""
        return self._select(normalize_batch_index(index, len(self)))

    @property
    def validated(self) -> bool:
        """True when built with ``validate=True``."""
        return self._validated

    def clone(self: _B) -> _B:
        """Deep copy: every tensor cloned (autograd links kept)."""
        return self._map(torch.Tensor.clone, self.device)

    def detach(self: _B) -> _B:
        """New batch whose tensors are detached from autograd (storage shared)."""
        return self._map(torch.Tensor.detach, self.device)

    def to(self: _B, device: str | torch.device, copy: bool = False) -> _B:
        """The batch on ``device``; ``self`` when already there and not ``copy``."""
        dev = resolve_device(device)
        if dev == self.device:
            return self.clone() if copy else self
        return self._map(lambda t: t.to(dev), dev)

    def cpu(self: _B) -> _B:
        """The batch on the CPU."""
        return self.to("cpu")

    def cuda(self: _B, device: int | str | torch.device | None = None) -> _B:
        """The batch on a CUDA device (the current one by default)."""
        return self.to(cuda_device(device))


class _RaggedBatch(_BatchedStructure):
    """Items of different sizes stored as per-item tensor lists.

    ``_setup(*lists, validated, device, dtype)`` takes the lists in the
    order :meth:`_lists` returns them.  Padded/packed views are cached in a
    :class:`ViewCache` through :meth:`_get`.
    """

    _N: int
    _device: torch.device
    _dtype: torch.dtype

    def _lists(self) -> tuple[list[torch.Tensor] | None, ...]:
        """The stored lists in ``_setup`` order (None for absent attributes)."""
        raise NotImplementedError

    def _get(self, key: str, compute: Callable[[], Any]) -> Any:
        raise NotImplementedError

    def _rebuild(self: _R, per_list: _Lists, device: torch.device) -> _R:
        parts = [None if xs is None else per_list(xs) for xs in self._lists()]
        return self._build(*parts, self._validated, device, self._dtype)

    def _select(self: _R, idx: list[int]) -> _R:
        return self._rebuild(lambda xs: [xs[i] for i in idx], self._device)

    def _map(self: _R, fn: Callable[[torch.Tensor], torch.Tensor], device: torch.device) -> _R:
        return self._rebuild(lambda xs: [fn(t) for t in xs], device)

    def __len__(self) -> int:
        return self._N

    @property
    def device(self) -> torch.device:
        """Device of every tensor in the batch."""
        return self._device

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the coordinates (and the other float attributes)."""
        return self._dtype

    def extend(self: _R, n: int) -> _R:
        """New batch with each item repeated ``n`` times in a row
        (``[x0, x0, x1, x1, ...]`` for ``n = 2``); tensors are cloned."""
        n = check_positive_int(n, "n")
        return self._rebuild(lambda xs: [t.clone() for t in xs for _ in range(n)], self._device)

    # ----------------------------------------------------------- views

    def _packed(self, key: str, items: list[torch.Tensor] | None, width: int | None) -> torch.Tensor | None:
        """Cached ``(T, width)`` concatenation of ``items`` (None stays None)."""
        if items is None:
            return None
        return self._get(key, lambda: list_to_packed(items, (width,), self._dtype, self._device))

    def _padded(self, key: str, items: list[torch.Tensor] | None, width: int | None) -> torch.Tensor | None:
        """Cached zero-padded ``(N, M, width)`` view of ``items`` (None stays None)."""
        if items is None:
            return None
        return self._get(key, lambda: list_to_padded(items, 0.0, (width,), self._dtype, self._device))

    def _row_index(
        self, what: str, rows: str, counts: list[int], get: Callable[[str, Callable[[], Any]], Any]
    ) -> torch.Tensor:
        """Cached (through ``get``, under keys prefixed ``rows``) index tensor
        for rows that number ``counts`` per item: ``"num"`` the ``(N,)`` int64
        counts, ``"first"`` ``(N,)`` each item's first packed row, ``"item"``
        ``(T,)`` each packed row's item, ``"pad2pack"`` ``(T,)`` each packed
        row's position in the flattened padded view."""

        def compute() -> torch.Tensor:
            if what == "num":
                return torch.tensor(counts, dtype=torch.int64, device=self._device)
            num = self._row_index("num", rows, counts, get)
            if what == "first":
                return first_idx_from_counts(num)
            if what == "item":
                return batch_idx_from_counts(num)
            assert what == "pad2pack", what
            return padded_to_packed_idx(num, max(counts, default=0))

        return get(f"{rows}:{what}", compute)

    # ---------------------------------------------------- update helpers

    def _offset_items(
        self, x: Any, name: str, letter: str, packed: Callable[[], torch.Tensor], counts: list[int]
    ) -> tuple[list[torch.Tensor], bool]:
        """Items of ``packed()`` moved by ``x``: ``(sum(letter), 3)`` per row or
        ``(3,)`` for all; also whether the offset was the uniform ``(3,)``."""
        t = float_tensor_on(x, name, self._device)
        uniform = t.shape == (3,)
        if not uniform:
            total = sum(counts)
            check_pattern(t, name, (total, 3), f"a ({total}, 3) (= (sum({letter}), 3)) or (3,) tensor")
        return list(torch.split(packed() + t, counts)), uniform

    def _scale_items(
        self, scale: Any, items: list[torch.Tensor], normals: list[torch.Tensor] | None
    ) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
        """``items`` times ``scale`` (a scalar or ``(N,)`` per item), and
        ``normals`` (None stays None) flipped where the scale is negative."""
        s = as_tensor(scale, "scale", self._device)
        if s.dtype == torch.bool or s.is_complex():
            raise InvalidInputError(f"scale: expected a real number or (N,) tensor, got dtype {s.dtype}")
        s = s.to(device=self._device, dtype=self._dtype)
        if s.ndim == 0:
            s = s.expand(self._N)
        if s.shape != (self._N,):
            raise InvalidInputError(f"scale: expected a scalar or a ({self._N},) tensor, got shape {tuple(s.shape)}")
        scaled = [t * s[i] for i, t in enumerate(items)]
        if normals is None:
            return scaled, None
        sign = torch.where(s < 0, -1.0, 1.0).to(self._dtype)
        return scaled, [nv * sign[i] for i, nv in enumerate(normals)]

    def _unpad(self, x: Any, name: str, counts: list[int], width: int | str) -> list[torch.Tensor]:
        """Items of a new padded ``(N, max(counts), width)`` float tensor
        given to ``update_padded`` (autograd links kept)."""
        t = float_tensor_on(x, name, self._device)
        check_pattern(t, name, (self._N, max(counts, default=0), width))
        return padded_to_list(t.to(self._dtype), counts)


class _DenseBatch(_BatchedStructure):
    """Equally sized items stored as batch tensors ``(N, ...)``.

    :meth:`_tensors` lists them in the order :meth:`_new` takes them; the
    first one gives the batch size, device and dtype.
    """

    def _tensors(self) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError

    def _new(self: _D, *tensors: torch.Tensor) -> _D:
        """Same kind of batch (same settings) holding ``tensors``."""
        raise NotImplementedError

    def _select(self: _D, idx: list[int]) -> _D:
        sel = torch.tensor(idx, dtype=torch.int64, device=self.device)
        return self._new(*(t[sel] for t in self._tensors()))

    def _map(self: _D, fn: Callable[[torch.Tensor], torch.Tensor], device: torch.device) -> _D:
        return self._new(*(fn(t) for t in self._tensors()))

    def __len__(self) -> int:
        return self._tensors()[0].shape[0]

    @property
    def device(self) -> torch.device:
        """Device of every tensor in the batch."""
        return self._tensors()[0].device

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the batch (that of ``grids`` / ``depth``)."""
        return self._tensors()[0].dtype


def check_join_items(items: Sequence[Any], name: str, cls: type, same: Sequence[str] = ()) -> None:
    """For ``join_*_as_batch``: every entry of ``items`` is a ``cls``, and the
    attributes named in ``same`` equal those of ``items[0]``."""
    for i, x in enumerate(items):
        if not isinstance(x, cls):
            raise InvalidInputError(f"{name}[{i}]: expected a {cls.__name__}, got {type(x).__name__}")
        for attr in same:
            if getattr(x, attr) != getattr(items[0], attr):
                raise InvalidInputError(
                    f"{name}[{i}]: {attr} {getattr(x, attr)} differs from {name}[0] ({getattr(items[0], attr)})"
                )
