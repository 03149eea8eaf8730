"""A training process SIGKILLed mid-way resumes from its last checkpoint and ends
with the weights of an uninterrupted run; no checkpoint is ever left corrupt."""

from __future__ import annotations

import os
import runpy
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from geomgen.train import load_checkpoint

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

SCRIPT = r'''
import sys, time
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset
from geomgen.train import SupervisedTask, TrainConfig, Trainer


class SlowTask(SupervisedTask):
    def __init__(self, sleep):
        super().__init__(F.mse_loss)
        self.sleep = sleep

    def training_step(self, model, batch, step):
        time.sleep(self.sleep)
        return super().training_step(model, batch, step)


def main(out, resume, sleep):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(30, 4, generator=g)
    y = x.sum(1, keepdim=True) + 0.1 * torch.randn(30, 1, generator=g)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.1), torch.nn.Linear(8, 1))
    cfg = TrainConfig(max_steps=40, batch_size=4, lr=0.02, schedule="cosine", warmup_steps=4,
                      checkpoint_every=3, keep_last=2, log_every=2, val_every=5, progress=False,
                      out_dir=out, resume=resume)
    Trainer(model, SlowTask(sleep), TensorDataset(x, y), TensorDataset(x[:8], y[:8]), cfg).fit()
    return model


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(sys.argv[1], sys.argv[2] == "1", float(sys.argv[3]))
'''


def _run(script: Path, out: Path, resume: bool, sleep: float) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    return subprocess.Popen(
        [sys.executable, str(script), str(out), "1" if resume else "0", str(sleep)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def test_sigkill_then_resume(tmp_path):
    script = tmp_path / "train_script.py"
    script.write_text(SCRIPT)
    out = tmp_path / "run"
    proc = _run(script, out, resume=False, sleep=0.05)
    ckdir = out / "checkpoints"
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if any(p.name.startswith("ckpt-0000000") and int(p.name[5:13]) >= 6 for p in ckdir.glob("ckpt-*.pt")):
                break
            time.sleep(0.02)
        assert proc.poll() is None, f"the run ended before it was killed:\n{proc.communicate()[0]}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "summary.json").exists()
    killed_at = max(load_checkpoint(p)["step"] for p in ckdir.glob("ckpt-*.pt"))
    assert 6 <= killed_at < 40

    resume = _run(script, out, resume=True, sleep=0.0)
    log, _ = resume.communicate(timeout=120)
    assert resume.returncode == 0, log
    final = load_checkpoint(ckdir / "ckpt-00000040.pt")  # weights_only=True
    assert final["step"] == 40
    assert not list(ckdir.glob(".*.tmp"))
    for p in ckdir.glob("*.pt"):
        load_checkpoint(p)

    # same weights as a run that was never killed (same script, in this process, one thread)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ref = runpy.run_path(str(script), run_name="reference")["main"](str(tmp_path / "ref"), False, 0.0)
    finally:
        torch.set_num_threads(threads)
    for k, v in ref.state_dict().items():
        assert torch.equal(v, final["model"][k]), k
