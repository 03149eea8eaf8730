"""Validation, conversion and list/padded/packed helpers shared by the structures.

Every check raises :class:`geomgen.errors.InvalidInputError` with a message that
starts with the argument name (``"verts[1]: ..."``) and says what is wrong.
Checks on tensor *values* are done on the whole batch at once and only fall back
to a per-item loop to name the first offending item, so a valid batch costs one
device synchronisation per check.

Shape letters: ``N`` batch size, ``L`` per-item length (``V``, ``F``, ``P``...),
``M`` = max(L) over the batch, ``T`` = sum(L) over the batch, ``*`` any
trailing feature dims.
"""

from __future__ import annotations

from typing import Any, Callable, Hashable, Sequence

import numpy as np
import torch

from geomgen import checks as V
from geomgen.errors import BackendUnavailableError, InvalidInputError

__all__ = [
    "BatchIndexError",
    "ViewCache",
    "as_tensor",
    "first_device",
    "float_tensor_on",
    "parse_batch_arg",
    "parse_item_attr",
    "ragged_items",
    "check_pattern",
    "check_dtype_kind",
    "check_finite_list",
    "check_batched",
    "stack_items",
    "check_range_list",
    "check_num_items",
    "check_item_lengths",
    "check_index_list",
    "check_same_dtype",
    "parse_lengths",
    "check_positive_int",
    "normalize_batch_index",
    "broadcast_batch_param",
    "list_to_padded",
    "list_to_packed",
    "padded_to_list",
    "first_idx_from_counts",
    "batch_idx_from_counts",
    "padded_to_packed_idx",
    "segment_sum",
    "segment_bounding_boxes",
    "safe_normalize",
    "resolve_device",
    "cuda_device",
    "format_counts",
    "tensor_versions",
]


class BatchIndexError(InvalidInputError, IndexError):
    """A batch index is out of range.

    Derives from both :class:`~geomgen.errors.InvalidInputError` and
    :class:`IndexError`, so ``for m in meshes`` (the sequence protocol) stops
    at the end of the batch.
    """


# ---------------------------------------------------------------------------
# formatting
# ---------------------------------------------------------------------------


def _shape_str(shape: Sequence[int]) -> str:
    dims = [str(int(s)) for s in shape]
    if len(dims) == 1:
        return f"({dims[0]},)"
    return "(" + ", ".join(dims) + ")"


def _pattern_str(pattern: Sequence[Any]) -> str:
    parts = []
    for p in pattern:
        if isinstance(p, tuple):
            parts.append(" or ".join(str(q) for q in p))
        else:
            parts.append(str(p))
    if len(parts) == 1:
        return f"({parts[0]},)"
    return "(" + ", ".join(parts) + ")"


def format_counts(counts: Sequence[int], limit: int = 8) -> str:
    """``[4, 8]``, or ``[4, 8, ..., 3]`` (first/last items) for long batches."""
    counts = [int(c) for c in counts]
    if len(counts) <= limit:
        return "[" + ", ".join(map(str, counts)) + "]"
    head = ", ".join(map(str, counts[: limit - 2]))
    return f"[{head}, ..., {counts[-1]}]"


# ---------------------------------------------------------------------------
# conversion
# ---------------------------------------------------------------------------


def resolve_device(device: Any, name: str = "device") -> torch.device:
    """``torch.device`` from a device or string.  A bare ``"cuda"`` resolves
    to the current CUDA device so that comparisons with tensor devices work.

    Raises:
        InvalidInputError: not a device.
        BackendUnavailableError: CUDA asked for but not available.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name}: not a valid torch device: {device!r} ({exc})") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise BackendUnavailableError(f"{name}: {device!r} requested but CUDA is not available")
        if dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
    return dev


def cuda_device(device: Any = None) -> torch.device:
    """Device for a ``.cuda(device)`` call: None = current, int = ordinal."""
    if device is None:
        return resolve_device("cuda")
    if isinstance(device, int):
        return resolve_device(torch.device("cuda", device))
    return resolve_device(device)


def as_tensor(x: Any, name: str, device: torch.device | None = None) -> torch.Tensor:
    """Tensor from a tensor, NumPy array or nested Python sequence.

    Tensors are returned as they are (no copy, autograd kept).  NumPy arrays
    are copied (so later changes to the array do not leak into the structure)
    and keep their dtype.  Non-tensor inputs are placed on ``device``.
    """
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, np.ndarray):
        if x.dtype == object or x.dtype.kind in "USV":
            raise InvalidInputError(f"{name}: expected a numeric array, got NumPy dtype {x.dtype}")
        t = torch.from_numpy(np.array(x, copy=True, order="C"))
    else:
        try:
            t = torch.as_tensor(x)
        except (TypeError, ValueError, RuntimeError):
            raise InvalidInputError(
                f"{name}: expected a torch.Tensor or numpy.ndarray, got {type(x).__name__}"
            ) from None
    if device is not None:
        t = t.to(device)
    return t


def first_device(x: Any) -> torch.device:
    """Device of ``x`` (a tensor) or of the first tensor in the list ``x``;
    the CPU when there is none (e.g. NumPy input)."""
    if isinstance(x, torch.Tensor):
        return x.device
    if isinstance(x, (list, tuple)):
        for el in x:
            if isinstance(el, torch.Tensor):
                return el.device
    return torch.device("cpu")


def float_tensor_on(x: Any, name: str, device: torch.device) -> torch.Tensor:
    """A floating-point tensor on ``device`` (an argument of a method of an
    existing batch: a tensor elsewhere is rejected, not moved)."""
    t = check_dtype_kind(as_tensor(x, name, device), name, "float")
    if t.device != device:
        raise InvalidInputError(f"{name}: on device {t.device}, expected {device}")
    return t


def check_dtype_kind(t: torch.Tensor, name: str, kind: str | None) -> torch.Tensor:
    """Check the dtype family: ``"float"`` (floating point), ``"int"``
    (integer, returned as int64), ``"bool"``, or ``None`` (no check).

    Empty tensors always pass the ``"int"`` check (``torch.tensor([])`` is
    float32) and are returned as int64.
    """
    if kind is None:
        return t
    if kind == "float":
        if not t.is_floating_point():
            raise InvalidInputError(f"{name}: expected a floating-point tensor, got dtype {t.dtype}")
        return t
    if kind == "int":
        if t.numel() == 0 or (not t.is_floating_point() and not t.is_complex() and t.dtype != torch.bool):
            return t.long() if t.dtype != torch.int64 else t
        raise InvalidInputError(f"{name}: expected an integer tensor, got dtype {t.dtype}")
    if kind == "bool":
        if t.dtype != torch.bool:
            raise InvalidInputError(f"{name}: expected a bool tensor, got dtype {t.dtype}")
        return t
    raise AssertionError(kind)


def check_pattern(t: torch.Tensor, name: str, pattern: Sequence[Any], what: str | None = None) -> torch.Tensor:
    """Check ``t.shape`` against ``pattern``: ints are exact sizes, tuples of
    ints are alternatives, strings are free letters.  An empty 1-D tensor is
    reshaped to ``(0, *fixed)`` when all trailing entries are plain ints.
    """
    if (
        t.ndim == 1
        and t.numel() == 0
        and len(pattern) >= 2
        and all(isinstance(p, int) for p in pattern[1:])
    ):
        return t.reshape(0, *pattern[1:])
    ok = t.ndim == len(pattern)
    if ok:
        for size, p in zip(t.shape, pattern):
            if isinstance(p, int) and size != p:
                ok = False
            elif isinstance(p, tuple) and size not in p:
                ok = False
    if not ok:
        desc = what or f"a {_pattern_str(pattern)} tensor"
        raise InvalidInputError(f"{name}: expected {desc}, got shape {_shape_str(t.shape)}")
    return t


def parse_batch_arg(
    x: Any,
    name: str,
    pattern: Sequence[Any],
    kind: str | None,
    device: torch.device | None = None,
) -> tuple[list[torch.Tensor] | None, torch.Tensor | None]:
    """Parse a batched argument given as a list of per-item tensors (each of
    shape ``pattern``) or as a padded ``(N, *pattern)`` tensor.

    Returns ``(items, None)`` for a list/tuple and ``(None, padded)`` for a
    tensor/array.  Dtype family and shape are checked; values are not.
    """
    if isinstance(x, (list, tuple)):
        items = []
        for i, el in enumerate(x):
            el_name = f"{name}[{i}]"
            t = as_tensor(el, el_name, device)
            t = check_dtype_kind(t, el_name, kind)
            t = check_pattern(t, el_name, pattern)
            items.append(t)
        return items, None
    if isinstance(x, (torch.Tensor, np.ndarray)):
        t = as_tensor(x, name, device)
        t = check_dtype_kind(t, name, kind)
        full = ("N", *pattern)
        what = f"a list of {_pattern_str(pattern)} tensors or a padded {_pattern_str(full)} tensor"
        t = check_pattern(t, name, full, what)
        return None, t
    raise InvalidInputError(
        f"{name}: expected a list of {_pattern_str(pattern)} tensors or a padded "
        f"{_pattern_str(('N', *pattern))} tensor, got {type(x).__name__}"
    )


def ragged_items(
    items: list[torch.Tensor] | None,
    padded: torch.Tensor | None,
    name: str,
    pattern: Sequence[Any],
    lengths: Any,
    lengths_name: str,
    default_counts: Callable[[], list[int]],
    device: torch.device,
) -> tuple[list[torch.Tensor], list[int], torch.dtype]:
    """Items, row counts and dtype of the main argument of a ragged batch,
    from :func:`parse_batch_arg`'s ``(items, padded)``.  A padded tensor is
    split by ``lengths`` (``lengths_name`` in messages), by
    ``default_counts()`` when that is None; a list must share one device and
    dtype, and takes no ``lengths``.  An empty batch has the default dtype."""
    if padded is not None:
        n, max_len = padded.shape[0], padded.shape[1]
        counts = default_counts() if lengths is None else parse_lengths(lengths, lengths_name, n, max_len)
        items = padded_to_list(padded, counts)
    else:
        if lengths is not None:
            raise InvalidInputError(
                f"{lengths_name}: only allowed with padded {name} (a {_pattern_str(('N', *pattern))} tensor)"
            )
        V.check_same_device({f"{name}[{i}]": t for i, t in enumerate(items)}, device=device)
        check_same_dtype(items, name)
        counts = [t.shape[0] for t in items]
    dtype = items[0].dtype if items else torch.get_default_dtype()
    return items, counts, dtype


def parse_item_attr(
    x: Any,
    name: str,
    pattern: Sequence[Any],
    counts: list[int],
    ref: str,
    item: str,
    rows: str,
    dtype: torch.dtype,
    device: torch.device,
) -> list[torch.Tensor] | None:
    """An optional per-row float attribute of a ragged batch (normals,
    colours, features...) given as a list of ``pattern`` tensors or padded,
    whose items must have ``counts`` rows like those of the argument ``ref``.

    Returns None for None, else ``N`` tensors cast to ``dtype``.  All items
    must share the width of dim 1 (e.g. colour channels).  ``item`` and
    ``rows`` name one batch item and its rows in messages (``"mesh"``,
    ``"vertices"``).
    """
    if x is None:
        return None
    items, padded = parse_batch_arg(x, name, pattern, "float", device)
    if padded is not None:
        check_num_items(name, padded, ref, len(counts))
        if padded.device != device:
            raise InvalidInputError(f"{name}: on device {padded.device}, expected {device}")
        if counts and padded.shape[1] < max(counts):
            raise InvalidInputError(
                f"{name}: padded size {padded.shape[1]} is smaller than the largest {item} ({max(counts)} {rows})"
            )
        items = padded_to_list(padded, counts)
    else:
        check_num_items(name, items, ref, len(counts))
        V.check_same_device({f"{name}[{i}]": t for i, t in enumerate(items)}, device=device)
    check_item_lengths(items, name, ref, counts)
    for i, t in enumerate(items):
        if t.shape[1] != items[0].shape[1]:
            raise InvalidInputError(
                f"{name}[{i}]: has {t.shape[1]} channels but {name}[0] has {items[0].shape[1]}"
            )
    return [t.to(dtype) for t in items]


def check_same_dtype(items: Sequence[torch.Tensor], name: str) -> None:
    """All ``items`` must share the dtype of the first one."""
    for i, t in enumerate(items[1:], start=1):
        if t.dtype != items[0].dtype:
            raise InvalidInputError(
                f"{name}[{i}]: dtype {t.dtype} differs from {name}[0] ({items[0].dtype}); "
                "all items of a batch must share one dtype"
            )


def check_num_items(name: str, items: Sequence[Any], ref_name: str, n: int) -> None:
    """``len(items) == n``: one entry of the per-item argument ``name`` per batch item of ``ref_name``.

    (The per-item *lengths* vector of a padded tensor is :func:`parse_lengths`;
    for the ops' ``lengths`` arguments see :func:`geomgen.checks.check_lengths`.)
    """
    if len(items) != n:
        raise InvalidInputError(f"{name}: got {len(items)} items but {ref_name} has {n}")


def check_item_lengths(
    items: Sequence[torch.Tensor], name: str, ref_name: str, counts: Sequence[int]
) -> None:
    """``items[i].shape[0] == counts[i]`` for every item."""
    for i, (t, c) in enumerate(zip(items, counts)):
        if t.shape[0] != c:
            raise InvalidInputError(
                f"{name}[{i}]: has {t.shape[0]} rows but {ref_name}[{i}] has {c}"
            )


def check_positive_int(n: Any, name: str, minimum: int = 1) -> int:
    """An int (not bool) ``>= minimum``: :func:`geomgen.checks.check_int`, worded
    like the structures' other messages (``"n: expected an int >= 1, got 0"``)."""
    try:
        return V.check_int(n, name, min_value=minimum)
    except InvalidInputError:
        raise InvalidInputError(f"{name}: expected an int >= {minimum}, got {n!r}") from None


def parse_lengths(
    lengths: Any, name: str, n: int, max_len: int
) -> list[int]:
    """Per-item lengths for a padded ``(N, M, ...)`` tensor: ``N`` ints in ``[0, M]``."""
    t = as_tensor(lengths, name)
    t = check_dtype_kind(t, name, "int")
    if t.ndim != 1 or t.shape[0] != n:
        raise InvalidInputError(f"{name}: expected {n} lengths (one per batch item), got shape {_shape_str(t.shape)}")
    out = [int(v) for v in t.tolist()]
    for i, v in enumerate(out):
        if v < 0 or v > max_len:
            raise InvalidInputError(f"{name}[{i}]: {v} is outside [0, {max_len}] (the padded size)")
    return out


# ---------------------------------------------------------------------------
# value checks (vectorised over the batch)
# ---------------------------------------------------------------------------


def _cat(items: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.detach().reshape(-1) for t in items]) if items else torch.zeros(0)


def check_finite_list(items: Sequence[torch.Tensor], name: str) -> None:
    """No NaN/Inf anywhere; names the first offending item and the count."""
    if not items:
        return
    if bool(torch.isfinite(_cat(items)).all()):
        return
    for i, t in enumerate(items):
        bad = int((~torch.isfinite(t.detach())).sum())
        if bad:
            raise InvalidInputError(f"{name}[{i}]: contains {bad} NaN/Inf values")


def check_range_list(
    items: Sequence[torch.Tensor], name: str, lo: float, hi: float, extra: str = ""
) -> None:
    """All values in ``[lo, hi]`` (NaN counts as outside)."""
    if not items:
        return
    flat = _cat(items)
    if bool(((flat >= lo) & (flat <= hi)).all()):
        return
    for i, t in enumerate(items):
        d = t.detach()
        bad = int((~((d >= lo) & (d <= hi))).sum())
        if bad:
            raise InvalidInputError(f"{name}[{i}]: {bad} values outside [{lo:g}, {hi:g}]{extra}")


def check_index_list(
    items: Sequence[torch.Tensor], name: str, counts: Sequence[int], what: str = "vertices"
) -> None:
    """Integer tensors whose values must lie in ``[0, counts[i])``."""
    if not items:
        return
    sizes = [t.numel() for t in items]
    flat = torch.cat([t.reshape(-1) for t in items])
    if flat.numel() == 0:
        return
    lim = torch.tensor(counts, dtype=torch.int64, device=flat.device)
    lim = torch.repeat_interleave(lim, torch.tensor(sizes, device=flat.device))
    if bool(((flat >= 0) & (flat < lim)).all()):
        return
    for i, t in enumerate(items):
        if t.numel() == 0:
            continue
        lo, hi = int(t.min()), int(t.max())
        if lo < 0:
            raise InvalidInputError(
                f"{name}[{i}]: negative index {lo} (only whole padding rows of a padded tensor may be -1)"
            )
        if hi >= counts[i]:
            raise InvalidInputError(f"{name}[{i}]: index {hi} out of range for {counts[i]} {what}")


def check_batched(bad: torch.Tensor, name: str, what: str | Callable[[int], str]) -> None:
    """``bad`` is a ``(N, ...)`` bool tensor of offending entries; raise
    naming the first batch item ``i`` that has any.  ``what`` is a message
    where ``{count}`` is replaced by that item's number of offending entries,
    or a callable ``what(i)`` returning the message."""
    if bad.numel() == 0 or not bool(bad.any()):
        return
    counts = bad.reshape(bad.shape[0], -1).sum(dim=1)
    i = int(torch.nonzero(counts)[0, 0])
    msg = what(i) if callable(what) else what.replace("{count}", str(int(counts[i])))
    raise InvalidInputError(f"{name}[{i}]: {msg}")


def stack_items(x: Any, name: str, letters: Sequence[str], reason: str) -> torch.Tensor:
    """A batch given as an ``(N, *letters)`` tensor/array, or as a list of
    equally shaped ``letters`` tensors (stacked, autograd kept).  ``reason``
    explains why shapes must agree."""
    full = ("N", *letters)
    if isinstance(x, (list, tuple)):
        if not x:
            raise InvalidInputError(
                f"{name}: empty list; pass a {_pattern_str(('0', *letters))} tensor for an empty batch"
            )
        dev = next((el.device for el in x if isinstance(el, torch.Tensor)), None)
        items = [check_pattern(as_tensor(el, f"{name}[{i}]", dev), f"{name}[{i}]", letters)
                 for i, el in enumerate(x)]
        for i, t in enumerate(items):
            if t.shape != items[0].shape:
                raise InvalidInputError(
                    f"{name}[{i}]: shape {_shape_str(t.shape)} differs from {name}[0] "
                    f"{_shape_str(items[0].shape)}; {reason}"
                )
            if t.device != items[0].device:
                raise InvalidInputError(f"{name}[{i}]: on device {t.device}, expected {items[0].device}")
            if t.dtype != items[0].dtype:
                raise InvalidInputError(f"{name}[{i}]: dtype {t.dtype} differs from {name}[0] ({items[0].dtype})")
        return torch.stack(items)
    if isinstance(x, (torch.Tensor, np.ndarray)):
        t = as_tensor(x, name)
        what = f"a {_pattern_str(full)} tensor or a list of {_pattern_str(letters)} tensors"
        return check_pattern(t, name, full, what)
    raise InvalidInputError(
        f"{name}: expected a {_pattern_str(full)} tensor or a list of {_pattern_str(letters)} tensors, "
        f"got {type(x).__name__}"
    )


# ---------------------------------------------------------------------------
# indexing and broadcasting
# ---------------------------------------------------------------------------


def normalize_batch_index(index: Any, n: int, name: str = "index") -> list[int]:
    """Batch positions selected by an int, slice, list of ints/bools, or a
    bool/integer tensor/array.  Negative ints wrap; out of range raises
    :class:`BatchIndexError`."""
    if isinstance(index, bool):
        raise InvalidInputError(f"{name}: a bool is not a batch index (use a bool mask of length {n})")
    if isinstance(index, (int, np.integer)) or (
        isinstance(index, torch.Tensor) and index.ndim == 0 and not index.is_floating_point()
        and index.dtype != torch.bool
    ):
        i = int(index)
        if i < -n or i >= n:
            raise BatchIndexError(f"{name}: {i} out of range for a batch of {n}")
        return [i % n] if n else []
    if isinstance(index, slice):
        return list(range(n))[index]
    if isinstance(index, (list, tuple)) and len(index) == 0:
        return []
    if isinstance(index, (list, tuple, np.ndarray, torch.Tensor)):
        try:
            t = index if isinstance(index, torch.Tensor) else torch.as_tensor(np.asarray(index))
        except (TypeError, ValueError, RuntimeError):
            raise InvalidInputError(f"{name}: cannot use {type(index).__name__} as a batch index") from None
        t = t.detach().cpu()
        if t.dtype == torch.bool:
            if t.ndim != 1 or t.shape[0] != n:
                raise InvalidInputError(
                    f"{name}: bool mask must have shape ({n},), got {_shape_str(t.shape)}"
                )
            return torch.nonzero(t).reshape(-1).tolist()
        if t.is_floating_point() or t.is_complex() or t.ndim != 1:
            raise InvalidInputError(
                f"{name}: expected a 1-D integer or bool index, got dtype {t.dtype} and shape {_shape_str(t.shape)}"
            )
        out = []
        for i in t.tolist():
            if i < -n or i >= n:
                raise BatchIndexError(f"{name}: {i} out of range for a batch of {n}")
            out.append(i % n)
        return out
    raise InvalidInputError(f"{name}: cannot use {type(index).__name__} as a batch index")


def broadcast_batch_param(
    x: Any,
    name: str,
    n: int,
    width: int,
    dtype: torch.dtype,
    device: torch.device,
    default: float | None = None,
) -> torch.Tensor:
    """A per-item parameter as ``(N, width)``: accepts a scalar, a ``(width,)``
    vector (shared by the batch) or an ``(N, width)`` tensor."""
    if x is None:
        if default is None:
            raise InvalidInputError(f"{name}: required")
        x = default
    t = as_tensor(x, name, device)
    if t.is_complex() or t.dtype == torch.bool:
        raise InvalidInputError(f"{name}: expected real numbers, got dtype {t.dtype}")
    t = t.to(device=device, dtype=dtype)
    if t.ndim == 0:
        return t.expand(n, width)
    if t.ndim == 1 and t.shape[0] == width:
        return t.unsqueeze(0).expand(n, width)
    if t.ndim == 2 and t.shape == (n, width):
        return t
    raise InvalidInputError(
        f"{name}: expected a scalar, a ({width},) tensor or a ({n}, {width}) tensor, got shape {_shape_str(t.shape)}"
    )


# ---------------------------------------------------------------------------
# list / padded / packed conversions
# ---------------------------------------------------------------------------


def list_to_padded(
    items: Sequence[torch.Tensor],
    pad_value: float,
    trailing: Sequence[int],
    dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    """``(N, M, *trailing)`` from items of shape ``(L_i, *trailing)``.  Keeps
    autograd links to the items."""
    n = len(items)
    m = max((t.shape[0] for t in items), default=0)
    out = torch.full((n, m, *trailing), pad_value, dtype=dtype, device=device)
    if n == 0 or m == 0:
        return out
    if all(t.shape[0] == m for t in items):
        return torch.stack(list(items))
    if any(t.requires_grad for t in items):
        rows = [torch.nn.functional.pad(t, (0, 0) * len(trailing) + (0, m - t.shape[0]), value=pad_value)
                for t in items]
        return torch.stack(rows)
    for i, t in enumerate(items):
        out[i, : t.shape[0]] = t
    return out


def list_to_packed(
    items: Sequence[torch.Tensor], trailing: Sequence[int], dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """``(T, *trailing)`` concatenation of the items."""
    if not items:
        return torch.zeros((0, *trailing), dtype=dtype, device=device)
    return torch.cat(list(items), dim=0)


def padded_to_list(padded: torch.Tensor, lengths: Sequence[int]) -> list[torch.Tensor]:
    """Views ``padded[i, :lengths[i]]`` (autograd links kept)."""
    return [padded[i, : int(n)] for i, n in enumerate(lengths)]


def first_idx_from_counts(counts: torch.Tensor) -> torch.Tensor:
    """Exclusive cumulative sum: ``(N,)`` index of each item's first row in the packed view."""
    out = torch.zeros_like(counts)
    if counts.numel() > 1:
        out[1:] = torch.cumsum(counts[:-1], dim=0)
    return out


def batch_idx_from_counts(counts: torch.Tensor) -> torch.Tensor:
    """``(T,)`` batch index of each packed row."""
    return torch.repeat_interleave(torch.arange(counts.numel(), device=counts.device), counts)


def padded_to_packed_idx(counts: torch.Tensor, max_len: int) -> torch.Tensor:
    """``(T,)`` index into ``padded.reshape(N * M, ...)`` of each packed row, so
    that ``padded.reshape(N * M, ...)[idx] == packed``."""
    bidx = batch_idx_from_counts(counts)
    local = torch.arange(bidx.numel(), device=counts.device) - first_idx_from_counts(counts)[bidx]
    return bidx * max_len + local


def segment_sum(values: torch.Tensor, batch_idx: torch.Tensor, n: int) -> torch.Tensor:
    """``(N, *)`` per-item sum of packed ``values`` (differentiable)."""
    out = values.new_zeros((n, *values.shape[1:]))
    return out.index_add(0, batch_idx, values)


def segment_bounding_boxes(packed: torch.Tensor, batch_idx: torch.Tensor, n: int) -> torch.Tensor:
    """``(N, 3, 2)`` per-item ``[min, max]`` of packed ``(T, 3)`` coordinates;
    zeros for empty items.  Differentiable."""
    idx = batch_idx[:, None].expand(-1, packed.shape[1])
    zeros = packed.new_zeros((n, packed.shape[1]))
    lo = zeros.scatter_reduce(0, idx, packed, "amin", include_self=False)
    hi = zeros.scatter_reduce(0, idx, packed, "amax", include_self=False)
    return torch.stack([lo, hi], dim=-1)


def safe_normalize(v: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Unit vectors along ``dim``; exact zero vectors stay zero (no NaN, also
    in the gradient)."""
    norm = torch.linalg.vector_norm(v, dim=dim, keepdim=True)
    return v / torch.where(norm > 0, norm, torch.ones_like(norm))


# ---------------------------------------------------------------------------
# caching
# ---------------------------------------------------------------------------


def _version(t: torch.Tensor) -> int:
    try:
        return t._version
    except RuntimeError:  # inference tensors do not track versions
        return -1


def tensor_versions(obj: Any) -> Hashable:
    """Version counters of the tensors in ``obj`` (tensor, None, or nested
    list/tuple).  Changes when any of them is modified in place."""
    if obj is None:
        return None
    if isinstance(obj, torch.Tensor):
        return (id(obj), _version(obj))
    if isinstance(obj, (list, tuple)):
        return tuple(tensor_versions(o) for o in obj)
    return id(obj)


class ViewCache:
    """Lazily computed views keyed by name.

    An entry is reused only while the *source* stamp it was computed from is
    unchanged and the cached tensors themselves were not modified in place, so
    neither an optimiser step on the source tensors nor a caller writing into
    a returned view can leave a stale or corrupted view behind.
    """

    def __init__(self) -> None:
        self._entries: dict[str, tuple[Any, Hashable, Hashable]] = {}

    def get(self, key: str, stamp: Hashable, compute: Callable[[], Any]) -> Any:
        """The cached ``key`` if still fresh for ``stamp``, else ``compute()`` (stored)."""
        ent = self._entries.get(key)
        if ent is not None and ent[1] == stamp and tensor_versions(ent[0]) == ent[2]:
            return ent[0]
        value = compute()
        self._entries[key] = (value, stamp, tensor_versions(value))
        return value

    def clear(self) -> None:
        """Drop every entry."""
        self._entries.clear()

    def copy(self) -> "ViewCache":
        """Shallow copy (entries shared; freshness is still checked per use)."""
        out = ViewCache()
        out._entries = dict(self._entries)
        return out
