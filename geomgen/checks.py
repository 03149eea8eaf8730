"""Argument and tensor checks for geomgen's public boundaries: the core's and every plugin's.

This module is public API: a plugin validates its arguments with it, never with a
private copy, so one input gets one message wherever it is passed.

Every check raises :class:`geomgen.errors.InvalidInputError` whose message
names the offending argument (and, when ``fn`` is given, the function it was
passed to), says what was expected and what was received.  The helpers only
inspect their input; tensors are returned unchanged unless a helper says
otherwise (:func:`check_lengths` builds a default).

Typical use::

    from geomgen import checks as V

    V.check_tensor(p1, "p1", ndim=3, floating=True, finite=True, fn="knn_points")
    lengths1 = V.check_lengths(lengths1, "lengths1", batch_size=N, max_len=P1,
                               device=p1.device, fn="knn_points")

Shape patterns: ``shape`` is a tuple whose entries are ints (must match) or
``None`` (any size); ``shape_desc`` (e.g. ``"(N, P1, D)"``) is only used in the
message.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from typing import Any

import torch

from geomgen.errors import InvalidInputError

__all__ = [
    "fail",
    "check_tensor",
    "check_finite",
    "check_same_device",
    "check_lengths",
    "check_int",
    "check_float",
    "check_choice",
    "check_bool",
]


def _where(name: str, fn: str | None) -> str:
    return f"{fn}: argument '{name}'" if fn else f"argument '{name}'"


def fail(name: str, problem: str, fn: str | None = None) -> InvalidInputError:
    """Build (not raise) an :class:`InvalidInputError` about argument ``name``.

    ``raise fail("K", "must be >= 1, got 0", fn="knn_points")`` gives
    ``knn_points: argument 'K' must be >= 1, got 0``.
    """
    return InvalidInputError(f"{_where(name, fn)} {problem}")


def _fmt_shape(shape: Iterable[int]) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + (",)" if len(tuple(shape)) == 1 else ")")


def check_tensor(
    x: Any,
    name: str,
    *,
    ndim: int | Sequence[int] | None = None,
    shape: Sequence[int | None] | None = None,
    shape_desc: str | None = None,
    floating: bool = False,
    integer: bool = False,
    dtype: torch.dtype | None = None,
    finite: bool = False,
    device: torch.device | str | None = None,
    fn: str | None = None,
) -> torch.Tensor:
    """Check that ``x`` is a tensor with the given properties and return it.

    Args:
        x: The value to check.
        name: Argument name used in the error message.
        ndim: Required number of dimensions (an int or a collection of ints).
        shape: Required shape; ``None`` entries match any size.  Implies ``ndim``.
        shape_desc: Human-readable shape for the message, e.g. ``"(N, P, 3)"``.
        floating: Require a floating dtype.
        integer: Require an integer dtype (``bool`` is not an integer here).
        dtype: Require exactly this dtype.
        finite: Require every element to be finite (no NaN/Inf); only for
            floating tensors (integer tensors are always finite).
        device: Require this device.
        fn: Name of the public function, prefixed to the message.
    """
    if not isinstance(x, torch.Tensor):
        want = f"a tensor of shape {shape_desc}" if shape_desc else "a torch.Tensor"
        raise fail(name, f"must be {want}, got {type(x).__name__}", fn)
    desc = f" {shape_desc}" if shape_desc else ""
    if shape is not None:
        ndim = len(shape)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.dim() not in allowed:
            dims = " or ".join(str(d) for d in allowed)
            raise fail(
                name,
                f"must be a {dims}-D tensor{desc}, got shape {_fmt_shape(x.shape)}",
                fn,
            )
    if shape is not None:
        for want_s, got_s in zip(shape, x.shape):
            if want_s is not None and int(want_s) != int(got_s):
                raise fail(
                    name,
                    f"must have shape{desc or ' ' + str(tuple(shape))}, got shape "
                    f"{_fmt_shape(x.shape)}",
                    fn,
                )
    if dtype is not None and x.dtype != dtype:
        raise fail(name, f"must have dtype {dtype}, got {x.dtype}", fn)
    if floating and not x.is_floating_point():
        raise fail(name, f"must have a floating dtype, got {x.dtype}", fn)
    if integer and (x.is_floating_point() or x.is_complex() or x.dtype == torch.bool):
        raise fail(name, f"must have an integer dtype, got {x.dtype}", fn)
    if device is not None and x.device != torch.device(device):
        raise fail(name, f"must be on device {torch.device(device)}, got {x.device}", fn)
    if finite:
        check_finite(x, name, fn=fn)
    return x


def check_finite(x: torch.Tensor, name: str, *, fn: str | None = None) -> torch.Tensor:
    """Raise if a floating tensor holds NaN or +-Inf; return ``x``.

    The message counts the bad entries and gives the first one's index.
    """
    if x.is_floating_point() or x.is_complex():
        bad = ~torch.isfinite(x.detach())
        if bool(bad.any()):
            count = int(bad.sum())
            first = tuple(int(i) for i in bad.nonzero()[0].tolist())
            raise fail(
                name,
                f"must be finite, but has {count} NaN/Inf value(s) (first at index {first})",
                fn,
            )
    return x


def check_same_device(tensors: dict[str, torch.Tensor | None], *, fn: str | None = None) -> None:
    """Raise if the given (named) tensors are not all on one device; ``None`` values are skipped."""
    items = [(k, v) for k, v in tensors.items() if v is not None]
    if not items:
        return
    ref_name, ref = items[0]
    for k, v in items[1:]:
        if v.device != ref.device:
            raise fail(
                k, f"must be on the same device as '{ref_name}' ({ref.device}), got {v.device}", fn
            )


def check_lengths(
    lengths: Any,
    name: str,
    *,
    batch_size: int,
    max_len: int,
    device: torch.device | str | None = None,
    fn: str | None = None,
) -> torch.Tensor:
    """Validate a per-element lengths vector and return it as int64.

    ``None`` means "every element is full" and returns ``full((batch_size,), max_len)``.
    Otherwise ``lengths`` must be a 1-D integer tensor (or a sequence of ints) of
    shape ``(batch_size,)`` with values in ``[0, max_len]``.  The result is moved
    to ``device`` when one is given.
    """
    if lengths is None:
        return torch.full((batch_size,), int(max_len), dtype=torch.int64, device=device)
    if not isinstance(lengths, torch.Tensor):
        if isinstance(lengths, (list, tuple)) and all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in lengths
        ):
            lengths = torch.tensor(list(lengths), dtype=torch.int64)
        else:
            raise fail(
                name,
                f"must be a 1-D integer tensor of shape ({batch_size},), got "
                f"{type(lengths).__name__}",
                fn,
            )
    check_tensor(lengths, name, shape=(batch_size,), shape_desc=f"({batch_size},)", integer=True, fn=fn)
    if lengths.numel():
        lo, hi = int(lengths.min()), int(lengths.max())
        if lo < 0 or hi > max_len:
            bad = lo if lo < 0 else hi
            raise fail(name, f"values must lie in [0, {max_len}], got {bad}", fn)
    lengths = lengths.to(dtype=torch.int64)
    if device is not None:
        lengths = lengths.to(device)
    return lengths


def check_int(
    value: Any,
    name: str,
    *,
    min_value: int | None = None,
    max_value: int | None = None,
    fn: str | None = None,
) -> int:
    """Require a Python/NumPy integer (not ``bool``) within bounds; return it as ``int``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise fail(name, f"must be an integer, got {value!r} ({type(value).__name__})", fn)
    value = int(value)
    if min_value is not None and value < min_value:
        raise fail(name, f"must be >= {min_value}, got {value}", fn)
    if max_value is not None and value > max_value:
        raise fail(name, f"must be <= {max_value}, got {value}", fn)
    return value


def check_float(
    value: Any,
    name: str,
    *,
    positive: bool = False,
    nonnegative: bool = False,
    fn: str | None = None,
) -> float:
    """Require a finite real number (not ``bool``); return it as ``float``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise fail(name, f"must be a real number, got {value!r} ({type(value).__name__})", fn)
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise fail(name, f"must be finite, got {value}", fn)
    if positive and value <= 0:
        raise fail(name, f"must be > 0, got {value}", fn)
    if nonnegative and value < 0:
        raise fail(name, f"must be >= 0, got {value}", fn)
    return value


def check_int_list(value: Any, name: str, *, min_value: int = 1, fn: str | None = None) -> list[int]:
    """``value`` as a non-empty list of ints ``>= min_value`` (e.g. layer widths).

    Raises:
        InvalidInputError: not a non-empty sequence of such integers (a string is not one).
    """
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) == 0:
        raise fail(name, f"must be a non-empty list of integers, got {value!r}", fn)
    return [check_int(v, name, min_value=min_value, fn=fn) for v in value]


def check_choice(value: Any, name: str, choices: Sequence[Any], *, fn: str | None = None) -> Any:
    """Require ``value`` to be one of ``choices`` (compared with ``==``, ``None`` allowed if listed)."""
    for c in choices:
        if (value is None and c is None) or (
            value is not None and c is not None and type(value) is type(c) and value == c
        ):
            return value
    raise fail(name, f"must be one of {list(choices)!r}, got {value!r}", fn)


def check_bool(value: Any, name: str, *, fn: str | None = None) -> bool:
    """Require a real ``bool`` (not an int or a tensor)."""
    if not isinstance(value, bool):
        raise fail(name, f"must be True or False, got {value!r}", fn)
    return value


def check_meshes(meshes: Any, methods: Sequence[str], *, name: str = "meshes", fn: str | None = None) -> None:
    """Require a :class:`~geomgen.structures.Meshes`-like batch: every name in
    ``methods`` must be a callable attribute (duck typing, so wrappers work).

    Raises:
        InvalidInputError: naming ``name``, the type received and the missing methods.
    """
    missing = [m for m in methods if not callable(getattr(meshes, m, None))]
    if missing:
        raise fail(
            name, f"must be a geomgen.structures.Meshes batch, got {type(meshes).__name__} "
            f"(missing {', '.join(missing)})", fn,
        )
