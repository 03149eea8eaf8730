"""Thread policy shared by every parallel numba kernel.

Two facts of this platform shape it:

* torch ships its own GNU OpenMP runtime and numba's ``omp`` layer loads the
  system's, so a process using both has two pools.  Idle OpenMP threads
  busy-wait after each parallel region, and on a small or busy machine the two
  pools then steal each other's cores.  :func:`start_pool` starts numba's pool
  with ``OMP_WAIT_POLICY=PASSIVE`` (unless the user chose a policy); libgomp
  reads the variable once, when loaded, so torch's pool keeps its own setting.
* GNU OpenMP kills a process forked after its pool started on the child's
  first parallel region ("fork() called from a process already using GNU
  OpenMP") — which is what a torch DataLoader worker doing geometry would do.
  :func:`forked_after_pool` tells the ops to use serial kernels or their torch
  path in such a child.
"""

from __future__ import annotations

import os

import numba

__all__ = ["forked_after_pool", "start_pool", "use_parallel", "PARALLEL_MIN_WORK"]

#: Below this much work the serial kernels are used: a parallel region costs a
#: few microseconds to start and, on a busy machine, waits for the slowest thread.
PARALLEL_MIN_WORK = 4096

_FORKED_AFTER_POOL = False


def _mark_fork_child() -> None:
    global _FORKED_AFTER_POOL
    from numba.np.ufunc import parallel as _par

    if getattr(_par, "_is_initialized", True):
        _FORKED_AFTER_POOL = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_mark_fork_child)


def forked_after_pool() -> bool:
    """True in a process forked after numba's thread pool was started: parallel
    kernels would kill it, so callers must run serial code there."""
    return _FORKED_AFTER_POOL


def start_pool() -> None:
    """Start numba's thread pool (once), with a passive OpenMP wait policy
    unless ``OMP_WAIT_POLICY`` is set."""
    from numba.np.ufunc import parallel as _par

    if getattr(_par, "_is_initialized", True):
        return
    key = "OMP_WAIT_POLICY"
    if key in os.environ:
        _par._launch_threads()
        return
    os.environ[key] = "PASSIVE"
    try:
        _par._launch_threads()
    finally:
        os.environ.pop(key, None)


def use_parallel(threads: int, work: int, min_work: int = PARALLEL_MIN_WORK) -> bool:
    """Pick parallel kernels (and set numba's thread count) or serial ones.

    ``threads`` is the caller's budget (geomgen passes ``torch.get_num_threads()``
    so numba never runs more threads than torch may); ``threads <= 1``,
    ``work < min_work`` or a forked child (:func:`forked_after_pool`) means serial.
    """
    if threads <= 1 or work < min_work or _FORKED_AFTER_POOL:
        return False
    start_pool()
    numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
    return True
