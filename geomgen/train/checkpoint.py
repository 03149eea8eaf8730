"""Checkpoints: atomic writes, weights-only loads, keep-last-k and best.

A checkpoint is a ``torch.save`` file of a nested dict/list/tuple of tensors
and plain values (``int``, ``float``, ``bool``, ``str``, ``None``), so it loads
with ``torch.load(weights_only=True)``, which never runs code from the file.
:func:`save_checkpoint` checks that before writing and names the first key
that breaks it.

Atomicity: the file is written to a temporary file in the same folder,
flushed and ``fsync``-ed, renamed over the target with :func:`os.replace`
(atomic on POSIX and Windows), and the folder is ``fsync``-ed so the rename
survives a power loss.  A process killed at any point leaves either the old
file or the new one, never a truncated one; at worst a ``.*.tmp`` file stays
behind, which :class:`CheckpointManager` deletes.

RNG states are stored as tensors (:func:`rng_state` / :func:`set_rng_state`).
"""

from __future__ import annotations

import collections
import os
import pickle
import random
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geomgen import checks as V
from geomgen.errors import FileFormatError, MeshFileNotFoundError
from geomgen.io._fs import atomic_write

__all__ = [
    "CHECKPOINT_FORMAT",
    "save_checkpoint",
    "load_checkpoint",
    "check_weights_only",
    "rng_state",
    "set_rng_state",
    "CheckpointManager",
]

#: Value of the ``"format"`` key of the trainer's checkpoints.
CHECKPOINT_FORMAT = "geomgen.train/1"

_PLAIN = (int, float, bool, str, type(None), torch.dtype, torch.device, torch.Size)


def check_weights_only(state: Any, name: str = "state", *, fn: str = "save_checkpoint") -> None:
    """Raise :class:`~geomgen.errors.InvalidInputError` unless ``state`` is made of
    dicts (string/int keys), lists and tuples of tensors and plain values only.

    The message gives the path of the first offending entry, e.g.
    ``state['rng']['numpy']``.
    """
    stack: list[tuple[str, Any]] = [(name, state)]
    while stack:
        where, x = stack.pop()
        if isinstance(x, torch.Tensor) or type(x) in _PLAIN:
            continue
        if type(x) in (dict, collections.OrderedDict):
            for k, v in x.items():
                if type(k) not in (str, int):
                    raise V.fail(where, f"has a key {k!r} of type {type(k).__name__}; use str or int", fn)
                stack.append((f"{where}[{k!r}]", v))
            continue
        if type(x) in (list, tuple):
            stack.extend((f"{where}[{i}]", v) for i, v in enumerate(x))
            continue
        raise V.fail(
            where,
            f"is a {type(x).__module__}.{type(x).__qualname__}; checkpoints hold only tensors, "
            "int/float/bool/str/None and dicts/lists/tuples of them (loadable with weights_only=True)",
            fn,
        )


def save_checkpoint(path: str | os.PathLike[str], state: Mapping[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically (temp file, flush, fsync, rename, fsync folder).

    Args:
        path: Target file; its folder is created if needed.  An existing file is
            replaced only once the new one is complete on disk.
        state: A dict of tensors and plain values (see :func:`check_weights_only`).

    Returns:
        The path written, as a :class:`~pathlib.Path`.

    Raises:
        geomgen.errors.InvalidInputError: ``state`` holds something that
            ``torch.load(weights_only=True)`` could not read back.
    """
    if not isinstance(state, Mapping):
        raise V.fail("state", f"must be a dict, got {type(state).__name__}", "save_checkpoint")
    check_weights_only(state)
    path = Path(os.fspath(path))
    with atomic_write(path, "wb", durable=True) as f:
        torch.save(dict(state), f)
    return path


def load_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device | None = "cpu"
) -> dict[str, Any]:
    """Read a checkpoint with ``torch.load(weights_only=True)``.

    Args:
        path: The file.
        map_location: Where tensors go (default ``"cpu"``; ``None`` keeps the
            devices they were saved from).

    Raises:
        geomgen.errors.MeshFileNotFoundError: the file does not exist (also a
            ``FileNotFoundError``).
        geomgen.errors.FileFormatError: the file is empty, truncated, corrupt,
            not a dict, or holds objects a weights-only load refuses; the
            message names the file.
    """
    path = Path(os.fspath(path))
    if not path.is_file():
        raise MeshFileNotFoundError(f"load_checkpoint: checkpoint file {str(path)!r} does not exist")
    if path.stat().st_size == 0:
        raise FileFormatError(f"load_checkpoint: checkpoint file {str(path)!r} is empty")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        msg = str(e)
        detail = next((ln.strip() for ln in msg.splitlines() if "Unsupported global" in ln), None)
        if detail is not None and zipfile.is_zipfile(path):
            detail = detail.split(" was not an allowed global")[0].replace("WeightsUnpickler error: ", "")
            raise FileFormatError(
                f"load_checkpoint: checkpoint file {str(path)!r} holds Python objects that a weights-only "
                f"load refuses ({detail}); geomgen checkpoints hold only tensors and plain values "
                "(weights_only=True)"
            ) from e
        raise FileFormatError(
            f"load_checkpoint: checkpoint file {str(path)!r} is truncated or corrupt "
            "(not a torch checkpoint readable with weights_only=True)"
        ) from e
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError) as e:
        raise FileFormatError(
            f"load_checkpoint: checkpoint file {str(path)!r} is truncated or corrupt "
            f"({type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''})"
        ) from e
    if not isinstance(state, dict):
        raise FileFormatError(
            f"load_checkpoint: checkpoint file {str(path)!r} holds a {type(state).__name__}, not a dict"
        )
    return state


# ---------------------------------------------------------------------------
# RNG states as tensors
# ---------------------------------------------------------------------------


def rng_state() -> dict[str, Any]:
    """The states of Python's ``random``, NumPy's global RNG, torch's CPU RNG
    and every CUDA device's RNG, as tensors and plain values."""
    py = random.getstate()  # (version, tuple of 625 ints < 2**32, gauss_next)
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": {
            "version": int(py[0]),
            "state": torch.tensor(py[1], dtype=torch.int64),
            "gauss_next": py[2],
        },
        "numpy": {
            "name": str(np_name),
            "keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "cached_gaussian": float(np_gauss),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore the RNG states returned by :func:`rng_state` (CUDA states only
    for as many devices as are present)."""
    py = state["python"]
    random.setstate(
        (int(py["version"]), tuple(int(v) for v in py["state"].tolist()), py["gauss_next"])
    )
    n = state["numpy"]
    np.random.set_state(
        (
            n["name"],
            n["keys"].numpy().astype(np.uint32),
            int(n["pos"]),
            int(n["has_gauss"]),
            float(n["cached_gaussian"]),
        )
    )
    torch.set_rng_state(state["torch"].cpu())
    cuda = list(state.get("cuda") or [])
    if cuda and torch.cuda.is_available():
        for i, s in enumerate(cuda[: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(s.cpu(), i)


# ---------------------------------------------------------------------------
# Keep-last-k + best
# ---------------------------------------------------------------------------

_STEP_FILE = re.compile(r"^ckpt-(\d+)\.pt$")


class CheckpointManager:
    """Step checkpoints ``ckpt-<step>.pt`` (the last ``keep_last`` kept) and ``best.pt``.

    Args:
        folder: Where checkpoints live (created on first save).
        keep_last: How many step checkpoints to keep (``>= 1``); older ones are
            deleted after a newer one is safely on disk.  ``best.pt`` is never
            deleted by rotation.
    """

    BEST = "best.pt"

    def __init__(self, folder: str | os.PathLike[str], keep_last: int = 3) -> None:
        self.folder = Path(os.fspath(folder))
        self.keep_last = V.check_int(keep_last, "keep_last", min_value=1, fn="CheckpointManager")

    def path_for(self, step: int) -> Path:
        """File name of the checkpoint of ``step`` (zero-padded so names sort by step)."""
        return self.folder / f"ckpt-{int(step):08d}.pt"

    @property
    def best_path(self) -> Path:
        return self.folder / self.BEST

    def step_checkpoints(self) -> list[tuple[int, Path]]:
        """``(step, path)`` of every step checkpoint, oldest first."""
        if not self.folder.is_dir():
            return []
        found = []
        for p in self.folder.iterdir():
            m = _STEP_FILE.match(p.name)
            if m and p.is_file():
                found.append((int(m.group(1)), p))
        return sorted(found)

    def latest(self) -> Path | None:
        """The newest step checkpoint, or ``None``."""
        found = self.step_checkpoints()
        return found[-1][1] if found else None

    def save(self, step: int, state: Mapping[str, Any]) -> Path:
        """Write ``ckpt-<step>.pt`` atomically, then delete all but the last ``keep_last``."""
        path = save_checkpoint(self.path_for(step), state)
        found = self.step_checkpoints()
        for _, old in found[: max(0, len(found) - self.keep_last)]:
            try:
                old.unlink()
            except OSError:
                pass
        return path

    def save_best(self, state: Mapping[str, Any]) -> Path:
        """Write ``best.pt`` atomically."""
        return save_checkpoint(self.best_path, state)

    def remove_stale_temp_files(self) -> int:
        """Delete ``.*.tmp`` files a killed writer left behind; return how many."""
        if not self.folder.is_dir():
            return 0
        n = 0
        for p in self.folder.iterdir():
            if p.name.startswith(".") and p.name.endswith(".tmp") and ".pt." in p.name:
                try:
                    p.unlink()
                    n += 1
                except OSError:
                    pass
        return n
