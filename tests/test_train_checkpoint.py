"""geomgen.train.checkpoint: atomic writes, weights-only loads, rotation, RNG states."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest
import torch

from geomgen.errors import FileFormatError, InvalidInputError, MeshFileNotFoundError
from geomgen.train import CheckpointManager, load_checkpoint, rng_state, save_checkpoint, set_rng_state


def _state(v: float = 1.0) -> dict:
    return {
        "model": OrderedDict(w=torch.full((3, 2), v), b=torch.zeros(2)),
        "step": 3,
        "nested": [1, 2.5, "x", None, True, (torch.arange(3), {"k": -1})],
    }


def test_round_trip_is_weights_only_and_exact(tmp_path):
    path = save_checkpoint(tmp_path / "sub/dir/a.pt", _state())
    assert path == tmp_path / "sub/dir/a.pt"
    state = load_checkpoint(path)
    assert torch.equal(state["model"]["w"], torch.ones(3, 2)) and state["step"] == 3
    assert state["nested"][5][1] == {"k": -1}
    assert torch.load(path, weights_only=True)["step"] == 3
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    assert [p.name for p in path.parent.iterdir()] == ["a.pt"]  # no temp file left


def _umask() -> int:
    u = os.umask(0o022)
    os.umask(u)
    return u


@pytest.mark.parametrize(
    "bad, where",
    [
        ({"x": np.float64(1.0)}, "state['x']"),
        ({"a": {"b": [1, object()]}}, "state['a']['b'][1]"),
        ({"a": {(1, 2): 3}}, "state['a']"),
        ({"a": np.zeros(3)}, "state['a']"),
    ],
)
def test_save_refuses_what_weights_only_cannot_load(tmp_path, bad, where):
    with pytest.raises(InvalidInputError) as info:
        save_checkpoint(tmp_path / "x.pt", bad)
    assert where in str(info.value)
    assert not (tmp_path / "x.pt").exists()


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "c.pt", _state(1.0))

    def broken_save(obj, f, *a, **k):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, _state(2.0))
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.ones(3, 2))
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_kill_during_write_leaves_old_file_and_a_stale_temp(tmp_path):
    """A process killed inside torch.save: the target is intact; the manager removes the temp file."""
    mgr = CheckpointManager(tmp_path, keep_last=2)
    target = mgr.save(5, _state(1.0))
    code = (
        "import os, signal, torch\n"
        "from geomgen.train import save_checkpoint\n"
        "def dying_save(obj, f, *a, **k):\n"
        "    f.write(b'PK partial'); f.flush(); os.kill(os.getpid(), signal.SIGKILL)\n"
        "torch.save = dying_save\n"
        f"save_checkpoint({str(target)!r}, {{'step': 6}})\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    stale = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(stale) == 1
    assert load_checkpoint(target)["step"] == 3  # the old content, complete
    assert mgr.remove_stale_temp_files() == 1
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_corrupt_truncated_empty_and_missing_files_are_named(tmp_path):
    good = save_checkpoint(tmp_path / "good.pt", _state())
    data = good.read_bytes()
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all" * 10)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    for p, match in ((trunc, "truncated or corrupt"), (garbage, "truncated or corrupt"), (empty, "is empty")):
        with pytest.raises(FileFormatError, match=match) as info:
            load_checkpoint(p)
        assert str(p) in str(info.value)
    with pytest.raises(MeshFileNotFoundError, match="nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")
    # a full pickle checkpoint with arbitrary objects is refused by the weights-only load
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"obj": _Custom()}, unsafe)
    with pytest.raises(FileFormatError, match="weights_only=True") as info:
        load_checkpoint(unsafe)
    assert str(unsafe) in str(info.value)
    notdict = tmp_path / "list.pt"
    torch.save([1, 2], notdict)
    with pytest.raises(FileFormatError, match="not a dict"):
        load_checkpoint(notdict)


class _Custom:
    pass


def test_manager_keeps_last_k_and_best(tmp_path):
    mgr = CheckpointManager(tmp_path / "ck", keep_last=2)
    assert mgr.latest() is None and mgr.step_checkpoints() == []
    for step in (1, 2, 10, 100):
        mgr.save(step, {"step": step})
    mgr.save_best({"step": 2})
    assert [s for s, _ in mgr.step_checkpoints()] == [10, 100]
    assert mgr.latest() == tmp_path / "ck/ckpt-00000100.pt"
    assert load_checkpoint(mgr.best_path)["step"] == 2
    with pytest.raises(InvalidInputError, match="keep_last"):
        CheckpointManager(tmp_path, keep_last=0)


def test_rng_state_round_trip(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    random.gauss(0, 1)  # leaves a cached gaussian in random's state
    save_checkpoint(tmp_path / "r.pt", {"rng": rng_state()})
    want = (random.random(), random.gauss(0, 1), np.random.rand(), np.random.randn(), torch.rand(2))
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    set_rng_state(load_checkpoint(tmp_path / "r.pt")["rng"])
    got = (random.random(), random.gauss(0, 1), np.random.rand(), np.random.randn(), torch.rand(2))
    assert got[:4] == want[:4] and torch.equal(got[4], want[4])
