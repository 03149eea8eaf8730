"""``geomgen train gan`` under ``torchrun`` (2 processes, gloo): a generator with two
optimizers (discriminator, then generator, each step) trained data-parallel by the
same trainer as the representations, one ``model.pt`` from rank 0, checkpoints with
both optimizers' states, and ``--resume``."""

from __future__ import annotations

import csv

import pytest
import torch

from geomgen.train.checkpoint import load_checkpoint
from geomgen.weights import load_model

from _torchrun import train_then_resume

pytestmark = pytest.mark.slow

TINY_GAN = {"resolution": 16, "latent_dim": 8, "gen_channels": [16, 8], "disc_channels": [8, 16, 16],
            "disc_feat": 16}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return train_then_resume(tmp_path_factory.mktemp("torchrun-gan"), "gan", TINY_GAN, resolution=16)


def test_two_ranks_train_both_networks_and_write_one_model(run):
    out, first, _ = run
    assert first.stdout.count("trained gan") == 1  # printed once, by rank 0
    model = load_model(out / "model.pt")
    assert model.output == "voxels" and model.config["latent_dim"] == TINY_GAN["latent_dim"]
    samples = model.sample(2, seed=0)
    assert samples.grids.shape == (2, 16, 16, 16)
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert any(r.get("train/loss/disc") for r in rows) and any(r.get("train/loss/gen") for r in rows)


def test_resume_restores_both_optimizers(run):
    out, _, resumed = run
    assert "trained gan: 4 steps" in resumed.stdout
    ckpt = load_checkpoint(out / "checkpoints" / "ckpt-00000004.pt")
    assert ckpt["step"] == 4 and set(ckpt["optimizers"]) == {"disc", "gen"}
    for name in ("disc", "gen"):  # Adam moments exist: each optimizer stepped
        assert ckpt["optimizers"][name]["state"], name
    first = load_checkpoint(out / "checkpoints" / "ckpt-00000002.pt")
    changed = [k for k, v in ckpt["model"].items()
               if v.is_floating_point() and not torch.equal(v, first["model"][k])]
    assert any(k.startswith("generator_net") for k in changed) and \
        any(k.startswith("discriminator_net") for k in changed)
