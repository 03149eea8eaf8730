"""Tests of the 'autoregressive' generator: registration, contract, causal masks, exact
likelihood, argument errors, save/load, a short Trainer fit with checkpoints."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import geomgen
from geomgen.data import collate_samples
from geomgen.errors import InvalidInputError
from geomgen.generative import GenerativeTask, ShapeGenerator
from geomgen.testing.generative import TOY_CATEGORIES, ToyShapes, check_generator, toy_batch
from geomgen.train import TrainConfig, Trainer
from geomgen.train.checkpoint import load_checkpoint
from geomgen.weights import load_model, save_model
from geomgen_autoregressive.model import VoxelPixelCNN
from geomgen_autoregressive.config import AutoregressiveConfig


def _all_grids(R: int = 2) -> torch.Tensor:
    """Every binary ``(R, R, R)`` grid, ``(2^(R^3), R, R, R)``."""
    n = R ** 3
    return ((torch.arange(2 ** n)[:, None] >> torch.arange(n)) & 1).double().view(-1, R, R, R)


def test_registered_with_defaults():
    assert "autoregressive" in geomgen.list_models(kind="generator")
    m = geomgen.get_model("autoregressive")
    assert isinstance(m, VoxelPixelCNN) and isinstance(m, ShapeGenerator)
    assert (m.output, m.likelihood, m.conditional) == ("voxels", "exact", False)
    assert m.config == AutoregressiveConfig.defaults() and m.resolution == AutoregressiveConfig().resolution
    assert sum(p.numel() for p in m.parameters()) * 4 <= 3 * 2**20  # pretrained-weights budget
    code = "import sys, geomgen_autoregressive.plugin; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr


@pytest.mark.parametrize("num_classes", [0, 2])
def test_contract(small_model, num_classes):
    cats = list(TOY_CATEGORIES) if num_classes else []
    m = small_model(num_classes=num_classes, categories=cats)
    out = check_generator(m, toy_batch(4, 8, 16))
    assert set(out["metrics"]) == {"loss", "bits_per_voxel", "nll"}
    if num_classes:  # names and labels both work
        a = m.sample(2, condition="sphere", seed=1).grids
        assert torch.equal(a, m.sample(2, condition=[1, 1], seed=1).grids)


@pytest.mark.parametrize("num_classes, arch, radius", [(0, {}, (4, 4, 4)),
                                                       (3, {"stem_kernel": [3, 5, 7], "num_blocks": 1}, (2, 3, 4))])
def test_masks_are_causal_by_gradients(small_model, randomize, num_classes, arch, radius):
    """d logit[i] / d x[j] == 0 for every j >= i in raster order (z, y, x), including
    j == i; nonzero for the previous voxel in the row and the one below in z; zero
    beyond the receptive radius."""
    R = 7
    m = randomize(small_model(resolution=R, act="tanh", num_classes=num_classes, **arch))
    assert m.receptive_radius == radius
    labels = torch.tensor([2]) if num_classes else None
    x = torch.rand(R ** 3)
    J = torch.autograd.functional.jacobian(lambda v: m.logits(v.view(1, 1, R, R, R), labels).flatten(), x,
                                           vectorize=True)
    n = R ** 3
    assert J.shape == (n, n)
    assert torch.count_nonzero(J.triu()) == 0  # output i never depends on inputs j >= i
    zyx = torch.stack(torch.meshgrid(*[torch.arange(R)] * 3, indexing="ij"), -1).view(n, 3)
    far = ((zyx[:, None] - zyx[None]).abs() > torch.tensor(radius)).any(-1)
    assert torch.count_nonzero(J[far]) == 0  # nor on inputs beyond the receptive radius
    i = torch.arange(n)
    row = zyx[:, 2] > 0
    assert (J[i[row], i[row] - 1] != 0).all()  # previous voxel in the row
    up = zyx[:, 0] > 0
    assert (J[i[up], i[up] - R * R] != 0).all()  # same (y, x) one slice before
    assert torch.count_nonzero(J.tril(-1)) > 0.3 * torch.count_nonzero(~far & (i[:, None] > i[None]))


@pytest.mark.parametrize("num_classes", [0, 2])
def test_log_prob_is_exact_and_normalised(small_model, randomize, num_classes):
    """At R = 2 the 256 grids can be enumerated: p(x | c) and the marginal sum to 1."""
    m = randomize(small_model(resolution=2, num_classes=num_classes), std=0.3).double().eval()
    grids = _all_grids(2)
    with torch.no_grad():
        lp = m.log_prob(grids)
        assert lp.shape == (256,) and lp.dtype == torch.float64 and (lp < 0).all()
        torch.testing.assert_close(torch.logsumexp(lp, 0), torch.tensor(0.0, dtype=torch.float64))
        torch.testing.assert_close(m.bits_per_voxel(grids), -lp / (8 * math.log(2.0)))
        logits = m.logits(grids[:, None], torch.zeros(256, dtype=torch.int64) if num_classes else None)
        manual = (grids[:, None] * torch.nn.functional.logsigmoid(logits)
                  + (1 - grids[:, None]) * torch.nn.functional.logsigmoid(-logits)).flatten(1).sum(1)
        if num_classes:
            per_class = torch.stack([m.log_prob(grids, [c] * 256) for c in range(num_classes)])
            torch.testing.assert_close(torch.logsumexp(per_class, 1), torch.zeros(2, dtype=torch.float64))
            torch.testing.assert_close(lp, torch.logsumexp(per_class, 0) - math.log(num_classes))
            torch.testing.assert_close(per_class[0], manual)
            assert not torch.allclose(per_class[0], per_class[1])
        else:
            torch.testing.assert_close(lp, manual)


def test_loss_is_the_mean_nll_per_voxel(small_model):
    m = small_model(num_classes=2)
    batch = toy_batch(4, 16, 8)  # 16^3 grids, downsampled to the model's 8^3
    out = m.compute_loss(batch)
    nll = -m.log_prob(batch["voxels"], batch["label"])
    torch.testing.assert_close(out["loss"], nll.mean() / 8 ** 3)
    torch.testing.assert_close(out["bits_per_voxel"], out["loss"].detach() / math.log(2.0))


def test_bad_arguments(small_model):
    for kw, name in [({"resolution": 1}, "resolution"), ({"hidden": 1}, "hidden"), ({"num_blocks": -1}, "num_blocks"),
                     ({"stem_kernel": 4}, "stem_kernel"), ({"stem_kernel": 1}, "stem_kernel"),
                     ({"block_kernel": 2}, "block_kernel"),
                     ({"block_kernel": [3, 3]}, "block_kernel"), ({"stem_kernel": [1, 1, 1]}, "stem_kernel"),
                     ({"position_bias": 1}, "position_bias"), ({"act": "swish2"}, "act"),
                     ({"num_classes": -1}, "num_classes"), ({"num_classes": 2, "categories": ["a"]}, "categories"),
                     ({"num_classes": 1, "categories": "a"}, "categories")]:
        with pytest.raises(InvalidInputError, match=name):
            small_model(**kw)
    m = small_model()
    for t in (0, -1.0, float("nan"), float("inf"), True, "1"):
        with pytest.raises(InvalidInputError, match="temperature"):
            m.sample(1, seed=0, temperature=t)
    with pytest.raises(InvalidInputError, match="method"):
        m.sample(1, seed=0, method="cone")
    x = toy_batch(2, 8, 8)["voxels"]
    with pytest.raises(InvalidInputError, match="'x'"):
        m.log_prob(torch.zeros(2, 12, 12, 12))  # 12 is not a multiple of R = 8
    with pytest.raises(InvalidInputError, match="'x'"):
        m.log_prob(torch.zeros(2, 8, 8))
    with pytest.raises(InvalidInputError, match="condition"):
        m.log_prob(x, [0, 1])  # unconditional model
    with pytest.raises(InvalidInputError, match="condition"):
        m.sample(2, condition="box", seed=0)
    c = small_model(num_classes=2, categories=list(TOY_CATEGORIES))
    for cond in ([0, 2], ["box", "cone"], [0]):
        with pytest.raises(InvalidInputError, match="condition"):
            c.log_prob(x, cond)
    with pytest.raises(InvalidInputError, match="batch"):
        c.compute_loss({"voxels": x})
    with pytest.raises(InvalidInputError, match="labels"):
        c.logits(torch.zeros(2, 1, 8, 8, 8))


def test_save_load_round_trip(small_model, randomize, tmp_path):
    m = randomize(small_model(num_classes=2, categories=list(TOY_CATEGORIES)), std=0.2)
    path = save_model(m, "autoregressive", tmp_path / "ar.pt")
    m2 = load_model(path)
    assert isinstance(m2, VoxelPixelCNN) and m2.config == m.config and m2.categories == TOY_CATEGORIES
    x = toy_batch(4, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(m2.log_prob(x["voxels"], x["label"]), m.log_prob(x["voxels"], x["label"]))
    assert torch.equal(m2.sample(3, condition="box", seed=2).grids, m.sample(3, condition="box", seed=2).grids)


def test_trainer_fit_checkpoints_and_beats_untrained(small_model, tmp_path):
    """A short Trainer + GenerativeTask fit writes checkpoints and lowers held-out NLL."""
    m = small_model(hidden=16)
    held = toy_batch(16, 8, 8, seed=1)
    with torch.no_grad():
        before = float(m.bits_per_voxel(held["voxels"]).mean())
    cfg = TrainConfig(max_steps=40, batch_size=16, lr=5e-3, schedule="constant", val_every=20, checkpoint_every=20,
                      early_stopping_metric="nll", early_stopping_mode="min", out_dir=str(tmp_path), progress=False,
                      plot=False, ddp_mode="allreduce", seed=0)
    summary = Trainer(m, GenerativeTask(), ToyShapes(32, 8, 8, seed=0), ToyShapes(16, 8, 8, seed=1), cfg,
                      collate_fn=collate_samples).fit()
    assert summary.steps == 40 and Path(summary.last_checkpoint).exists() and Path(summary.best_checkpoint).exists()
    assert {"nll", "bits_per_voxel", "loss"} <= set(summary.val_metrics)
    with torch.no_grad():
        after = m.bits_per_voxel(held["voxels"])
    assert float(after.mean()) < 0.5 * before, (before, after.mean())
    torch.testing.assert_close(summary.val_metrics["bits_per_voxel"], float(after.mean()), rtol=1e-4, atol=1e-5)
    fresh = small_model(hidden=16)
    fresh.load_state_dict(load_checkpoint(summary.last_checkpoint, map_location="cpu")["model"])
    with torch.no_grad():
        torch.testing.assert_close(fresh.bits_per_voxel(held["voxels"]), after)
