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

Cameras: :func:`check_intrinsics` (pinhole ``K``) and :func:`check_pose`
(``world_from_camera``) hold the one definition of a valid camera, used by
:class:`~geomgen.structures.DepthMaps`, :mod:`geomgen.ops.depth`,
:class:`~geomgen.render.PerspectiveCameras` and the predictors.

Shape patterns: ``shape`` is a tuple whose entries are ints (must match) or
``None`` (any size); ``shape_desc`` (e.g. ``"(N, P1, D)"``) is only used in the
message.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch

from geomgen.config import describe_bounds, within_bounds
from geomgen.errors import InvalidInputError

__all__ = [
    "fail",
    "check_tensor",
    "check_finite",
    "check_same_device",
    "check_lengths",
    "check_point_cloud_pair",
    "check_int",
    "check_float",
    "check_choice",
    "check_bool",
    "check_int_list",
    "check_image_size",
    "check_meshes",
    "check_intrinsics",
    "check_pose",
    "ROTATION_TOL",
]

#: Largest ``|R^T R - I|`` entry :func:`check_pose` accepts with ``rigid=True``
#: (float32 poses built by composing a few rotations are orthonormal to ~1e-6).
ROTATION_TOL = 1e-4


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


def check_same_device(
    tensors: Mapping[str, torch.Tensor | None],
    *,
    device: torch.device | str | None = None,
    fn: str | None = None,
) -> None:
    """Raise unless the named tensors all live on one device.

    Args:
        tensors: ``{argument name: tensor}``; ``None`` values are skipped.
            For the items of a list argument use names like ``"faces[1]"``.
        device: the device they must all be on; default: that of the first
            tensor given.
        fn: Name of the public function, prefixed to the message.

    Raises:
        InvalidInputError: naming the first tensor elsewhere, its device and
            the one expected.
    """
    items = [(k, v) for k, v in tensors.items() if v is not None]
    if device is not None:
        want = torch.device(device)
        for k, v in items:
            if v.device != want:
                raise fail(k, f"must be on device {want}, got {v.device}", fn)
        return
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


def check_point_cloud_pair(
    x: Any,
    y: Any,
    x_lengths: Any,
    y_lengths: Any,
    names: tuple[str, str, str, str] = ("x", "y", "x_lengths", "y_lengths"),
    *,
    fn: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Check two padded point batches that are compared point to point (k-NN,
    Chamfer, F1) and return their lengths.

    ``x`` is ``(N, P1, D)`` and ``y`` is ``(N, P2, D)``: floating, the same batch
    size ``N >= 0``, point dimension ``D >= 1`` and dtype, on one device, finite;
    the lengths are checked by :func:`check_lengths` (``None``: every cloud full).

    Args:
        x: ``(N, P1, D)`` points.
        y: ``(N, P2, D)`` points.
        x_lengths: ``(N,)`` valid points of each cloud of ``x``, or None.
        y_lengths: ``(N,)`` valid points of each cloud of ``y``, or None.
        names: the argument names of ``x``, ``y``, ``x_lengths``, ``y_lengths``
            in the caller's signature, for the messages.
        fn: the public function, prefixed to the messages.

    Returns:
        ``(x_lengths, y_lengths)``: ``(N,)`` int64 on ``x``'s device.

    Raises:
        InvalidInputError: the first rule broken, naming the argument.
    """
    xn, yn, xl, yl = names
    check_tensor(x, xn, ndim=3, shape_desc="(N, P1, D)", floating=True, fn=fn)
    check_tensor(y, yn, ndim=3, shape_desc="(N, P2, D)", floating=True, fn=fn)
    n, p1, d = x.shape
    if y.shape[0] != n:
        raise fail(yn, f"must have the same batch size N={n} as '{xn}', got {y.shape[0]}", fn)
    if y.shape[2] != d:
        raise fail(yn, f"must have the same point dimension D={d} as '{xn}', got {y.shape[2]}", fn)
    if d < 1:
        raise fail(xn, "must have point dimension D >= 1, got 0", fn)
    if y.dtype != x.dtype:
        raise fail(yn, f"must have the same dtype as '{xn}' ({x.dtype}), got {y.dtype}", fn)
    check_same_device({xn: x, yn: y}, fn=fn)
    x_lengths = check_lengths(x_lengths, xl, batch_size=n, max_len=p1, device=x.device, fn=fn)
    y_lengths = check_lengths(y_lengths, yl, batch_size=n, max_len=y.shape[1], device=x.device, fn=fn)
    check_finite(x, xn, fn=fn)
    check_finite(y, yn, fn=fn)
    return x_lengths, y_lengths


def _check_bounds(value: float, name: str, bounds: Mapping[str, float | None], fn: str | None) -> None:
    """Raise unless ``value`` keeps the ``ge``/``gt``/``le``/``lt`` bounds that are not None, in
    the words of :func:`geomgen.config.param`'s bounds: ``must be in (0, 1), got 1.0``."""
    if not within_bounds(value, bounds):
        raise fail(name, f"must be{describe_bounds(bounds)}, got {value}", fn)


def check_int(
    value: Any,
    name: str,
    *,
    min_value: int | None = None,
    max_value: int | None = None,
    fn: str | None = None,
) -> int:
    """Require a Python/NumPy integer (not ``bool``) within bounds; return it as ``int``.

    Args:
        value: The value to check (any :class:`numbers.Integral`: ``int``,
            ``numpy.int64``, ...; not ``bool``, a float or a tensor).
        name: Argument name used in the error message.
        min_value: Smallest value accepted (inclusive), or None.
        max_value: Largest value accepted (inclusive), or None.
        fn: Name of the public function, prefixed to the message.

    Raises:
        InvalidInputError: ``... must be an integer, got 1.5 (float)``, or out of
            bounds: ``... must be >= 1, got 0``, ``... must be <= 8, got 9``, and
            with both bounds ``... must be in [2, 512], got 1``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise fail(name, f"must be an integer, got {value!r} ({type(value).__name__})", fn)
    value = int(value)
    _check_bounds(value, name, {"ge": min_value, "gt": None, "le": max_value, "lt": None}, fn)
    return value


def check_float(
    value: Any,
    name: str,
    *,
    positive: bool = False,
    nonnegative: bool = False,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    finite: bool = True,
    fn: str | None = None,
) -> float:
    """Require a real number (not ``bool``), by default finite, within bounds; return it as ``float``.

    Args:
        value: The value to check (any :class:`numbers.Real`: ``int``, ``float``,
            NumPy scalars, ...; not ``bool``, a string or a tensor).
        name: Argument name used in the error message.
        positive: Shorthand for ``gt=0``.
        nonnegative: Shorthand for ``ge=0``.
        gt: Strict lower bound (``value > gt``), or None.
        ge: Inclusive lower bound (``value >= ge``), or None.
        lt: Strict upper bound (``value < lt``), or None.
        le: Inclusive upper bound (``value <= le``), or None.
        finite: Reject ``+-inf`` (default); with ``False`` infinities are
            accepted (then checked against the bounds).  NaN is always rejected.
        fn: Name of the public function, prefixed to the message.

    At most one lower bound (``positive``, ``nonnegative``, ``gt``, ``ge``) and
    one upper bound (``lt``, ``le``) may be given (else ``TypeError``).

    Raises:
        InvalidInputError: ``... must be a real number, got '1' (str)``,
            ``... must be finite, got inf``, or out of bounds: ``... must be > 0,
            got 0.0``, with both bounds ``... must be in (0, 1), got 1.0``.
    """
    lows = [b for b in (0 if positive else None, 0 if nonnegative else None, gt, ge) if b is not None]
    if len(lows) > 1 or (lt is not None and le is not None):
        raise TypeError("check_float: give at most one lower bound (positive, nonnegative, gt, ge) "
                        "and one upper bound (lt, le)")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise fail(name, f"must be a real number, got {value!r} ({type(value).__name__})", fn)
    value = float(value)
    if value != value:
        raise fail(name, "must be finite, got nan" if finite else "must not be NaN", fn)
    if finite and value in (float("inf"), float("-inf")):
        raise fail(name, f"must be finite, got {value}", fn)
    gt = 0 if positive else gt
    ge = 0 if nonnegative else ge
    _check_bounds(value, name, {"ge": ge, "gt": gt, "le": le, "lt": lt}, fn)
    return value


def check_int_list(value: Any, name: str, *, min_value: int = 1, fn: str | None = None) -> list[int]:
    """``value`` as a non-empty list of ints ``>= min_value`` (e.g. layer widths).

    Raises:
        InvalidInputError: not a non-empty sequence of such integers (a string is not one).
    """
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) == 0:
        raise fail(name, f"must be a non-empty list of integers, got {value!r}", fn)
    return [check_int(v, name, min_value=min_value, fn=fn) for v in value]


def check_image_size(value: Any, name: str = "image_size", *, allow_int: bool = True,
                     fn: str | None = None) -> tuple[int, int]:
    """An image size ``(H, W)`` in pixels, both ints ``>= 1``.

    Args:
        value: an ``(H, W)`` pair (list, tuple or 2-element tensor) of integers, or
            with ``allow_int`` one integer ``S`` for ``(S, S)``.  ``None`` is the
            caller's business (many take it as "keep the size").
        name: the argument name for the message.
        allow_int: accept one integer for a square image.
        fn: the public function, prefixed to the message.

    Returns:
        ``(H, W)`` as plain ints.

    Raises:
        InvalidInputError: ``must be an int >= 1 or an (H, W) pair of ints >= 1, got ...``.
    """
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    if allow_int and isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
    ok = (isinstance(value, (tuple, list)) and len(value) == 2
          and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1 for v in value))
    if not ok:
        what = "an int >= 1 or an (H, W) pair of ints >= 1" if allow_int else "an (H, W) pair of ints >= 1"
        raise fail(name, f"must be {what}, got {value!r}", fn)
    return int(value[0]), int(value[1])


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


# ---------------------------------------------------------------------------
# cameras
# ---------------------------------------------------------------------------


def _batched_matrix(
    T: Any,
    name: str,
    size: int,
    n: int | None,
    dtype: torch.dtype | None,
    device: torch.device | str | None,
    fn: str | None,
) -> torch.Tensor:
    """``(N, size, size)`` floating matrices from ``(N, size, size)`` or a shared ``(size, size)`` (values unchecked)."""
    desc = f"(N, {size}, {size}) or ({size}, {size})"
    check_tensor(T, name, ndim=(2, 3), shape_desc=desc, floating=True, device=device, fn=fn)
    if tuple(T.shape[-2:]) != (size, size) or (T.dim() == 3 and n is not None and T.shape[0] != n):
        want = "N" if n is None else str(n)
        raise fail(name, f"must have shape ({want}, {size}, {size}) or ({size}, {size}), got {tuple(T.shape)}", fn)
    if dtype is not None:
        T = T.to(dtype)
    if T.dim() == 2:
        T = T.unsqueeze(0).expand(1 if n is None else n, size, size)
    return T


def _first_bad(bad: torch.Tensor) -> int | None:
    """Index of the first True of a ``(N,)`` bool tensor, None if there is none."""
    idx = bad.nonzero()
    return int(idx[0, 0]) if idx.numel() else None


def check_intrinsics(
    K: Any,
    name: str = "K",
    *,
    n: int | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    fn: str | None = None,
) -> torch.Tensor:
    """Check pinhole intrinsics and return them as an ``(N, 3, 3)`` tensor.

    ``K = [[fx, s, cx], [0, fy, cy], [0, 0, 1]]`` in pixels maps a camera-frame
    point ``(x, y, z)`` (OpenCV: x right, y down, z forward) to
    ``(fx x / z + s y / z + cx, fy y / z + cy)``; pixel ``(u, v)`` has its
    centre at ``(u + 0.5, v + 0.5)`` (for an OpenCV-calibrated ``K`` add 0.5 to
    ``cx`` and ``cy``).  Every matrix must be finite with ``fx > 0``,
    ``fy > 0``, ``K[1, 0] = 0`` and bottom row ``[0, 0, 1]`` (skew ``s`` is
    allowed).  A valid batch costs one device synchronisation.

    Args:
        K: ``(N, 3, 3)`` or ``(3, 3)`` (shared by the batch) floating tensor.
        name: Argument name used in the error message.
        n: Batch size ``N``: a ``(3, 3)`` matrix is expanded to ``(n, 3, 3)``
            and a batched one must have ``n`` matrices.  None: any ``N``
            (a ``(3, 3)`` matrix becomes ``(1, 3, 3)``).
        dtype: Cast the result to this dtype.
        device: Require this device (``K`` is not moved).
        fn: Name of the public function, prefixed to the message.

    Returns:
        ``(N, 3, 3)`` intrinsics (an expanded view for a shared matrix).

    Raises:
        InvalidInputError: not a floating tensor of those shapes, on another
            device, or a matrix breaking a rule above; a value error names the
            first offending matrix, e.g. ``argument 'K' is invalid: K[1]: fx
            (K[0, 0]) must be > 0, got -50``.
    """
    K = _batched_matrix(K, name, 3, n, dtype, device, fn)
    k = K.detach()
    finite = torch.isfinite(k).all(dim=2).all(dim=1)
    bottom = torch.tensor([0.0, 0.0, 1.0], dtype=k.dtype, device=k.device)
    rules = [
        (~finite, lambda i: f"contains {int((~torch.isfinite(k[i])).sum())} NaN/Inf entries"),
        (~(k[:, 0, 0] > 0), lambda i: f"fx (K[0, 0]) must be > 0, got {k[i, 0, 0].item():g}"),
        (~(k[:, 1, 1] > 0), lambda i: f"fy (K[1, 1]) must be > 0, got {k[i, 1, 1].item():g}"),
        (k[:, 1, 0] != 0, lambda i: f"K[1, 0] must be 0 (upper triangular), got {k[i, 1, 0].item():g}"),
        ((k[:, 2] != bottom).any(dim=1), lambda i: f"bottom row must be [0, 0, 1], got {k[i, 2].tolist()}"),
    ]
    if k.shape[0] and bool(torch.stack([bad for bad, _ in rules]).any()):  # the one sync of a valid batch
        for bad, what in rules:
            i = _first_bad(bad)
            if i is not None:
                raise fail(name, f"is invalid: {name}[{i}]: {what(i)}", fn)
    return K


def check_pose(
    T: Any,
    name: str = "world_from_camera",
    *,
    n: int | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    rigid: bool = False,
    fn: str | None = None,
) -> torch.Tensor:
    """Check camera-to-world poses and return them as an ``(N, 4, 4)`` tensor.

    ``world_from_camera = [[R, t], [0, 0, 0, 1]]`` maps camera-frame points to
    the world, ``p_world = R p_cam + t``: the columns of ``R`` are the camera's
    x (right), y (down) and z (viewing direction) axes in world coordinates and
    ``t`` is its centre (OpenCV's ``[R|t]`` is the inverse, camera-from-world).
    Every matrix must be finite with bottom row ``[0, 0, 0, 1]``; with
    ``rigid`` its ``R`` must also be a rotation (orthonormal to
    :data:`ROTATION_TOL`, det +1).

    Args:
        T: ``(N, 4, 4)`` or ``(4, 4)`` (shared by the batch) floating tensor.
        name: Argument name used in the error message.
        n: Batch size ``N``: a ``(4, 4)`` matrix is expanded to ``(n, 4, 4)``
            and a batched one must have ``n`` matrices.  None: any ``N``
            (a ``(4, 4)`` matrix becomes ``(1, 4, 4)``).
        dtype: Cast the result to this dtype.
        device: Require this device (``T`` is not moved).
        rigid: Also require ``R`` to be a proper rotation (no scale, shear or
            reflection).
        fn: Name of the public function, prefixed to the message.

    Returns:
        ``(N, 4, 4)`` poses (an expanded view for a shared matrix).

    Raises:
        InvalidInputError: not a floating tensor of those shapes, on another
            device, NaN/Inf values, another bottom row, or (``rigid``) a
            non-rotation ``R``, naming the first offending pose.
    """
    T = _batched_matrix(T, name, 4, n, dtype, device, fn)
    check_finite(T, name, fn=fn)
    p = T.detach()
    bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=p.dtype, device=p.device)
    if not bool((p[:, 3] == bottom).all()):
        raise fail(name, "must have bottom row [0, 0, 0, 1] (an affine pose)", fn)
    if rigid:
        R = p[:, :3, :3].to(torch.float64)
        eye = torch.eye(3, dtype=torch.float64, device=R.device)
        err = (R.transpose(1, 2) @ R - eye).abs().amax(dim=(1, 2))
        i = _first_bad(err > ROTATION_TOL)
        if i is not None:
            raise fail(
                name, f"must be a rigid pose (R orthonormal); pose {i} has |R^T R - I| = "
                f"{float(err[i]):.3g} > {ROTATION_TOL:g} (scale or shear is not supported)", fn,
            )
        det = torch.linalg.det(R)
        i = _first_bad(det <= 0)
        if i is not None:
            raise fail(
                name, f"must be a proper rotation (det +1), pose {i} is a reflection "
                f"(det {float(det[i]):.3g})", fn,
            )
    return T
