"""``geomgen train`` of a real representation plugin under ``torchrun`` (2 processes, gloo).

The trainer itself is tested for data parallelism in ``test_train_distributed.py``;
this checks the whole command path: the plugin's model, ``RepresentationTask``
(gradients averaged with ``ddp_mode="allreduce"``), the shapes dataset sharded
over two ranks, one ``model.pt`` written by rank 0, and ``--resume``.
"""

from __future__ import annotations

import csv

import pytest

from geomgen.models import load_model
from geomgen.train.checkpoint import load_checkpoint

from _torchrun import train_then_resume

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return train_then_resume(tmp_path_factory.mktemp("torchrun-train"), "pointcloud",
                             {"num_points": 128, "mesh_resolution": 24}, resolution=20)


def test_two_ranks_write_one_model_and_the_logs(run):
    out, first, _ = run
    assert "trained pointcloud" in first.stdout  # printed once, by rank 0
    assert first.stdout.count("trained pointcloud") == 1
    model = load_model(out / "model.pt")
    assert type(model).__name__ and model.output == "pointcloud"
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert any(r.get("val/F1@0.3") for r in rows)
    assert (out / "loss.png").stat().st_size > 0


def test_resume_continues_from_the_last_checkpoint(run):
    out, _, resumed = run
    assert "trained pointcloud: 4 steps" in resumed.stdout
    ckpt = load_checkpoint(out / "checkpoints" / "ckpt-00000004.pt")
    assert ckpt["step"] == 4
    steps = [int(r["step"]) for r in csv.DictReader(open(out / "metrics.csv"))]
    assert steps == sorted(steps) and max(steps) == 4
