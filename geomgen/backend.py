"""Backend selection, the PyTorch3D guard and the thread budget of every geomgen kernel.

This module is the one place that decides *which implementation* of an op runs and
*with how many threads*; the ops of :mod:`geomgen.ops` (and
:func:`geomgen.render.rasterize_meshes`) ask it, then call their torch reference or
their kernel of :mod:`geomgen.kernels`.  It imports only :mod:`geomgen.errors`,
torch and (lazily) numba.

Backend selection
-----------------
:data:`OP_BACKENDS` lists, per op, the accepted values of its ``backend=`` argument.
:func:`check_backend` validates a value against it and :func:`resolve_backend` maps
it to the implementation that runs:

* ``"auto"``: CPU tensors go to the numba kernel when the op has one and it applies
  to these inputs (the op says so with ``numba_ok``, e.g. ``knn_points`` needs
  float32/float64 points with ``D <= 3``); everything else, CUDA tensors included,
  runs the pure-torch reference.  Ops whose kernels need numba's thread pool
  (:attr:`OpBackends.pool`) take the torch path in a process forked after that pool
  started (:func:`forked_after_pool`): OpenMP would kill it.
* ``"torch"``: the reference, on any device.
* ``"numba"``: the kernel; :class:`~geomgen.errors.BackendUnavailableError` on
  non-CPU tensors.  Where the kernel cannot take the inputs (``numba_ok`` false) the
  reference runs, as with ``"auto"``.
* ``"pytorch3d"``: PyTorch3D's implementation (:func:`require_pytorch3d` raises
  :class:`~geomgen.errors.BackendUnavailableError` when it cannot be imported).

Threads
-------
:func:`thread_budget` is the most threads any geomgen kernel may use:
``torch.get_num_threads()``, capped by numba's ``NUMBA_NUM_THREADS``.
:func:`kernel_threads` is the context every parallel numba kernel runs in: it picks
1 thread (serial kernels) for small jobs (:data:`PARALLEL_MIN_WORK`), a budget of 1
or a forked child, otherwise starts numba's pool (passive OpenMP waiting) and sets
numba's thread count for the block only, restoring the caller's setting after it.
Two facts of this platform shape the policy:

* torch ships its own GNU OpenMP runtime and numba's ``omp`` layer loads the
  system's, so a process using both has two pools.  Idle OpenMP threads busy-wait
  after each parallel region, and on a small or busy machine the two pools steal
  each other's cores.  :func:`start_pool` starts numba's pool with
  ``OMP_WAIT_POLICY=PASSIVE`` (unless the user chose a policy); libgomp reads the
  variable once, when loaded, so torch's pool keeps its own setting.
* GNU OpenMP kills a process forked after its pool started on the child's first
  parallel region ("fork() called from a process already using GNU OpenMP") --
  which is what a torch ``DataLoader`` worker doing geometry would do.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType, ModuleType
from typing import Any

import torch

from geomgen.errors import BackendUnavailableError, InvalidInputError

__all__ = [
    "OpBackends",
    "OP_BACKENDS",
    "check_backend",
    "resolve_backend",
    "pytorch3d_available",
    "require_pytorch3d",
    "PARALLEL_MIN_WORK",
    "thread_budget",
    "kernel_threads",
    "start_pool",
    "forked_after_pool",
]


# --------------------------------------------------------------------------- #
# The table of ops and their backends
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class OpBackends:
    """The backends of one op.

    Attributes:
        names: accepted values of the op's ``backend=`` argument, in the order its
            error message lists them (``"auto"`` first).
        pytorch3d: the module that holds PyTorch3D's implementation when
            ``"pytorch3d"`` is in ``names``, else ``None``.
        pool: the numba kernels need numba's thread pool (they have no serial
            variant that avoids it), so a process forked after the pool started
            runs the torch reference instead.
    """

    names: tuple[str, ...]
    pytorch3d: str | None = None
    pool: bool = False


_NUMBA = ("auto", "torch", "numba")

OP_BACKENDS: Mapping[str, OpBackends] = MappingProxyType({
    "knn_points": OpBackends(_NUMBA + ("pytorch3d",), pytorch3d="pytorch3d.ops"),
    "sample_points_from_meshes": OpBackends(_NUMBA),
    "voxelize": OpBackends(_NUMBA, pool=True),
    "points_in_meshes": OpBackends(_NUMBA, pool=True),
    "points_to_voxels": OpBackends(_NUMBA),
    "cubify": OpBackends(_NUMBA + ("pytorch3d",), pytorch3d="pytorch3d.ops"),
    "marching_cubes": OpBackends(_NUMBA + ("pytorch3d",), pytorch3d="pytorch3d.ops.marching_cubes"),
    "rasterize_meshes": OpBackends(("auto", "numba", "torch")),
    # geomgen.render.soft_rasterize_meshes: numba chooses the fragments, torch computes their values
    "soft_rasterize_meshes": OpBackends(_NUMBA),
    # GraphConv's gather/scatter: a choice between two torch formulations, no kernel
    "gather_scatter": OpBackends(("auto", "sparse", "torch")),
})
"""The backends of every op that has a ``backend=`` argument, by the op's public name
(read-only).  The ops' ``*_BACKENDS`` constants (e.g.
:data:`geomgen.ops.knn.KNN_BACKENDS`) are its ``names``."""


def _spec(op: str) -> OpBackends:
    try:
        return OP_BACKENDS[op]
    except KeyError:
        raise KeyError(f"geomgen.backend: no op named {op!r}; known: {sorted(OP_BACKENDS)}") from None


def check_backend(op: str, backend: Any) -> str:
    """Require ``backend`` to be one of the values ``op`` accepts.

    Args:
        op: the op's public name, a key of :data:`OP_BACKENDS` (e.g. ``"knn_points"``).
        backend: the value passed to the op's ``backend=`` argument.

    Returns:
        ``backend`` unchanged.

    Raises:
        InvalidInputError: ``"<op>: argument 'backend' must be one of [...], got ..."``
            (the wording of :func:`geomgen.checks.check_choice`).
    """
    names = _spec(op).names
    if type(backend) is not str or backend not in names:
        raise InvalidInputError(f"{op}: argument 'backend' must be one of {list(names)!r}, got {backend!r}")
    return backend


def resolve_backend(op: str, backend: str, *, device: torch.device | str, numba_ok: bool = True) -> str:
    """The implementation that runs ``op`` with ``backend=backend`` on ``device``.

    Args:
        op: the op's public name, a key of :data:`OP_BACKENDS` with a numba kernel.
        backend: the value of the op's ``backend=`` argument.
        device: the device of the op's tensors.
        numba_ok: whether the numba kernel can take these inputs (dtype, dimension,
            options); when False, ``"auto"`` and ``"numba"`` run the torch reference.

    Returns:
        ``"numba"``, ``"torch"`` or ``"pytorch3d"`` (see the module docstring for
        the rules).

    Raises:
        InvalidInputError: ``backend`` is not one of the op's backends (naming the
            argument and the allowed values).
        BackendUnavailableError: ``"numba"`` with tensors on a non-CPU device;
            ``"pytorch3d"`` when PyTorch3D cannot be imported.
    """
    spec = _spec(op)
    check_backend(op, backend)
    if "numba" not in spec.names:
        raise KeyError(f"geomgen.backend: {op!r} has no numba kernel to resolve to")
    dev = torch.device(device)
    if backend == "pytorch3d":
        require_pytorch3d(op, spec.pytorch3d or "pytorch3d")
        return "pytorch3d"
    if backend == "numba" and dev.type != "cpu":
        raise BackendUnavailableError(
            f"{op}: backend='numba' runs on CPU tensors only, got tensors on {dev}; use "
            f"backend='auto' (the torch implementation on {dev.type}) or move them to the CPU"
        )
    if backend == "torch" or dev.type != "cpu" or not numba_ok:
        return "torch"
    if spec.pool and forked_after_pool():
        return "torch"
    return "numba"


# --------------------------------------------------------------------------- #
# PyTorch3D
# --------------------------------------------------------------------------- #

_PYTORCH3D_INSTALL = (
    "see https://github.com/facebookresearch/pytorch3d/blob/main/INSTALL.md; "
    "it must be built against your torch version"
)


def require_pytorch3d(op: str, submodule: str = "pytorch3d") -> ModuleType:
    """Import a PyTorch3D module for ``op``, or say why it cannot be used.

    Args:
        op: the geomgen function that needs it (named in the message), e.g.
            ``"knn_points"`` or ``"to_pytorch3d"``.
        submodule: the module to import, ``"pytorch3d"`` or one under it
            (``"pytorch3d.ops"``, ``"pytorch3d.structures"``, ...).

    Returns:
        The imported module.

    Raises:
        BackendUnavailableError: PyTorch3D is not installed, or the module fails to
            import (e.g. a compiled extension built for another torch).
    """
    try:
        __import__(submodule)  # through builtins.__import__, so import hooks apply
        return sys.modules[submodule]
    except Exception as exc:  # ImportError, or a broken compiled extension
        what, alt = ("backend='pytorch3d' needs", " or use backend='auto'") if op in OP_BACKENDS else ("needs", "")
        raise BackendUnavailableError(
            f"{op}: {what} PyTorch3D, but {submodule} cannot be imported "
            f"({exc.__class__.__name__}: {exc}); install it ({_PYTORCH3D_INSTALL}){alt}"
        ) from exc


def pytorch3d_available() -> bool:
    """Whether ``import pytorch3d.ops`` works in this process (PyTorch3D is optional)."""
    try:
        require_pytorch3d("pytorch3d_available", "pytorch3d.ops")
    except BackendUnavailableError:
        return False
    return True


# --------------------------------------------------------------------------- #
# Threads
# --------------------------------------------------------------------------- #

PARALLEL_MIN_WORK = 4096
"""Below this much work (points, queries, faces + pixels, ... as each op counts it)
kernels run serially: a parallel region costs a few microseconds to start and, on a
busy machine, waits for the slowest thread."""

_FORKED_AFTER_POOL = False


def _pool_started() -> bool:
    par = sys.modules.get("numba.np.ufunc.parallel")  # never imports numba
    return par is not None and bool(getattr(par, "_is_initialized", True))


def _mark_fork_child() -> None:
    global _FORKED_AFTER_POOL
    if _pool_started():
        _FORKED_AFTER_POOL = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_mark_fork_child)


def forked_after_pool() -> bool:
    """True in a process forked after numba's thread pool had started (e.g. a
    ``DataLoader`` worker): a parallel numba region would kill it, so kernels run
    serially there (:func:`kernel_threads` gives 1 thread) and ops whose kernels
    need the pool take their torch path (:func:`resolve_backend`)."""
    return _FORKED_AFTER_POOL


def start_pool() -> None:
    """Start numba's thread pool (once), with a passive OpenMP wait policy unless
    ``OMP_WAIT_POLICY`` is set."""
    from numba.np.ufunc import parallel as par

    if getattr(par, "_is_initialized", True):
        return
    key = "OMP_WAIT_POLICY"
    if key in os.environ:
        par._launch_threads()
        return
    os.environ[key] = "PASSIVE"
    try:
        par._launch_threads()
    finally:
        os.environ.pop(key, None)


def thread_budget() -> int:
    """The most threads a geomgen kernel may use: ``torch.get_num_threads()``,
    capped by numba's ``NUMBA_NUM_THREADS`` (at least 1).  It applies to numba's
    parallel regions and to the Python threads of ``workers=-1``
    (:func:`~geomgen.ops.marching_cubes`, :func:`~geomgen.ops.cubify`) alike."""
    import numba

    return max(1, min(int(torch.get_num_threads()), int(numba.config.NUMBA_NUM_THREADS)))


@contextmanager
def kernel_threads(work: int, *, min_work: int | None = None, pool: bool = False) -> Iterator[int]:
    """Run one kernel launch with the thread policy; yields the thread count.

    Yields 1 -- run the serial kernels, numba's pool untouched -- when ``work <
    min_work``, the budget (:func:`thread_budget`) is 1, or in a process forked
    after numba's pool started.  Otherwise starts the pool (:func:`start_pool`),
    sets numba's thread count to the budget for the block and yields it.  On exit
    numba's thread count of the calling thread is what it was before: a kernel
    call never leaves a changed setting behind.

    Args:
        work: size of the job, in the op's unit (points, queries, faces + pixels).
        min_work: the serial threshold; default :data:`PARALLEL_MIN_WORK`.
        pool: the kernels exist only in a parallel (``prange``) form, so even one
            thread must be set in numba's pool (``voxelize``).  The caller must not
            launch them in a forked child (see :func:`resolve_backend`).

    Example::

        with kernel_threads(n_queries) as threads:
            out = knn_numba.knn_search(p1, p2, l1, l2, K, norm, threads)
    """
    threshold = PARALLEL_MIN_WORK if min_work is None else min_work
    forked = forked_after_pool()
    if pool and forked:
        raise RuntimeError("kernel_threads(pool=True) in a process forked after numba's pool started: "
                           "the op must take its torch path there (resolve_backend does)")
    n = 1 if work < threshold or forked else thread_budget()
    if n <= 1 and not pool:
        yield 1
        return
    from numba.np.ufunc import parallel as par  # not numba.get_num_threads: tests may patch that name

    start_pool()
    old = par.get_num_threads()
    par.set_num_threads(n)
    try:
        yield n
    finally:
        par.set_num_threads(old)
