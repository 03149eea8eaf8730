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
