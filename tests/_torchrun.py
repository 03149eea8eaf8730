"""Launch ``geomgen train`` under ``torchrun`` (2 CPU processes, gloo) for the data-parallel tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def torchrun_train(name: str, data_config: dict[str, Any], model_config: dict[str, Any], out: Path, steps: int,
                   *extra: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``torchrun --nproc_per_node=2 -m geomgen.cli train NAME`` with batch size 2,
    validation and a checkpoint every 2 steps, one thread per rank."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
           "-m", "geomgen.cli", "train", name,
           "--data-config", json.dumps(data_config), "--model-config", json.dumps(model_config),
           "--out-dir", str(out), "--max-steps", str(steps), "--batch-size", "2", "--val-every", "2",
           "--checkpoint-every", "2", "--warmup-steps", "0", "--no-progress", *extra]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def tiny_shapes_config(root: Path, resolution: int) -> dict[str, Any]:
    """The two-category, two-shapes-per-split ``shapes`` dataset the torchrun tests train on."""
    return {"root": str(root), "categories": ["box", "sphere"], "per_category": 2, "resolution": resolution,
            "progress": False}


def train_then_resume(tmp: Path, name: str, model_config: dict[str, Any],
                      resolution: int) -> tuple[Path, subprocess.CompletedProcess, subprocess.CompletedProcess]:
    """Build the tiny dataset's cache once (before the ranks start), train ``name``
    for 2 steps on 2 ranks, then ``--resume`` to 4 steps; asserts both runs
    succeed.  Returns the run folder and the two completed processes."""
    import geomgen

    data = tiny_shapes_config(tmp / "data", resolution)
    for split in ("train", "val"):
        geomgen.get_dataset("shapes", split=split, **data)
    out = tmp / "run"
    runs = []
    for steps, extra in ((2, ()), (4, ("--resume",))):
        proc = torchrun_train(name, data, model_config, out, steps, *extra)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
        runs.append(proc)
    return out, runs[0], runs[1]
