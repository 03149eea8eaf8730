"""``geomgen train`` of a real representation plugin under ``torchrun`` (2 processes, gloo).

The trainer itself is tested for data parallelism in ``test_train_distributed.py``;
this checks the whole command path: the plugin's model, ``RepresentationTask``
(gradients averaged with ``ddp_mode="allreduce"``), the shapes dataset sharded
over two ranks, one ``model.pt`` written by rank 0, and ``--resume``.
"""

from __future__ import annotations

import csv

import pytest

import geomgen
from geomgen.models import load_model
from geomgen.train.checkpoint import load_checkpoint

from _torchrun import torchrun_train

pytestmark = pytest.mark.slow


def _data_config(root):
    return {"root": str(root), "categories": ["box", "sphere"], "per_category": 2, "resolution": 20,
            "progress": False}


def _train(tmp, out, steps, *extra):
    return torchrun_train("pointcloud", _data_config(tmp / "data"), {"num_points": 128, "mesh_resolution": 24}, out, steps, *extra)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("torchrun-train")
    for split in ("train", "val"):  # build the tiny cache once, before the ranks start
        geomgen.get_dataset("shapes", split=split, **_data_config(tmp / "data"))
    out = tmp / "run"
    first = _train(tmp, out, 2)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-6000:]
    resumed = _train(tmp, out, 4, "--resume")
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-6000:]
    return out, first, resumed


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
