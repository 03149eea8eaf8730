"""Short fits on ToyShapes through the core Trainer: the samples get closer to the data,
checkpoints resume bit-exactly, and trained models survive save_model / load_model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import geomgen
from geomgen.data import collate_samples
from geomgen.generative import GenerativeTask
from geomgen.metrics import generative_metrics
from geomgen.testing.generative import ToyShapes, check_generator, toy_batch
from geomgen.train import Trainer, TrainConfig
from geomgen.train.checkpoint import load_checkpoint
from geomgen.weights import load_model, save_model

from _gan_tiny import TINY_POINTS, TINY_VOXEL


def _fit(model, data, steps, *, lr=2e-3, batch_size=32, **config):
    cfg = TrainConfig(max_steps=steps, batch_size=batch_size, lr=lr, seed=0, progress=False, plot=False, **config)
    return Trainer(model, GenerativeTask(), data, None, cfg, collate_fn=collate_samples).fit()


def test_voxel_fit_beats_untrained():
    # 200 steps, 64 samples against 64 held-out shapes (another seed): at 120 steps and 32 shapes
    # the 1-NNA margin below was within a 1/64 step of the CPU's rounding (AMD EPYC: 0.859; 0.828
    # here at 200 steps, 0.914 at 120 steps and 64 shapes)
    references = toy_batch(64, 16, num_points=16, seed=123)["voxels"].grids
    model = geomgen.get_model("gan", **TINY_VOXEL)
    before = generative_metrics(model.sample(64, seed=0).grids, references, distance="iou")
    summary = _fit(model, ToyShapes(256, 16, num_points=16, seed=1), 200)
    assert summary.steps == 200 and "train/loss/gen" in summary.train_metrics
    after = generative_metrics(model.sample(64, seed=0).grids, references, distance="iou")
    assert abs(after["1-NNA"] - 0.5) < abs(before["1-NNA"] - 0.5) - 0.15, (before, after)
    assert after["MMD"] < before["MMD"] - 0.2, (before, after)


def test_point_fit_beats_untrained():
    ref_batch = toy_batch(32, 8, num_points=128, seed=123)
    references = ref_batch["pointclouds"].points_padded()
    model = geomgen.get_model("gan-points", **TINY_POINTS)
    before = generative_metrics(model.sample(32, seed=0), references, distance="chamfer")
    _fit(model, ToyShapes(256, 8, num_points=256, seed=1), 300, lr=2e-3)
    after = generative_metrics(model.sample(32, seed=0), references, distance="chamfer")
    # a short fit brings the point GAN's samples onto the shapes (MMD) and spreads them over
    # more references (COV); its 1-NNA stays near 100 % at this budget (the generated points
    # are not distributed like surface samples), so it is not asserted here - the voxel GAN's is.
    assert after["MMD"] < 0.5 * before["MMD"], (before, after)
    assert after["COV"] >= before["COV"] + 0.1, (before, after)


def test_trainer_checkpoint_resume_is_exact(tmp_path):
    data = ToyShapes(48, 16, num_points=16, seed=2)

    def run(out, steps, resume=False):
        torch.manual_seed(0)
        model = geomgen.get_model("gan", **TINY_VOXEL, d_steps=2)
        summary = _fit(model, data, steps, batch_size=8, out_dir=str(out), checkpoint_every=3, resume=resume,
                       log_every=2)
        return model, summary

    straight, _ = run(tmp_path / "a", 6)
    _, first = run(tmp_path / "b", 3)
    assert first.last_checkpoint is not None and Path(first.last_checkpoint).exists()
    resumed, second = run(tmp_path / "b", 6, resume=True)
    assert second.resumed_from is not None and second.steps == 6
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), f"{k} differs after resume"
    ckpt = load_checkpoint(second.last_checkpoint)  # weights_only=True: checkpoints hold only tensors and plain data
    assert set(ckpt["optimizers"]) == {"disc", "gen"}


def test_save_load_round_trip(tmp_path):
    model = geomgen.get_model("gan", **TINY_VOXEL, num_classes=2, categories=["box", "sphere"])
    _fit(model, ToyShapes(32, 16, num_points=16, seed=3), 4, batch_size=8)
    model.eval()
    path = save_model(model, "gan", tmp_path / "gan.pt")
    loaded = load_model(path)
    assert type(loaded) is type(model) and loaded.config == model.config and not loaded.training
    assert torch.equal(loaded.sample(3, condition="sphere", seed=4).grids,
                       model.sample(3, condition="sphere", seed=4).grids)
    check_generator(loaded, toy_batch(4, 16, num_points=64))
    points = geomgen.get_model("gan-points", **TINY_POINTS)
    loaded_points = load_model(save_model(points, "gan-points", tmp_path / "pts.pt"))
    assert torch.equal(loaded_points.sample(2, seed=1).points_padded(), points.eval().sample(2, seed=1).points_padded())


@pytest.mark.parametrize("loss", ["nonsaturating", "hinge"])
def test_other_losses_train_without_errors(loss):
    model = geomgen.get_model("gan", **TINY_VOXEL, loss=loss)
    summary = _fit(model, ToyShapes(32, 16, num_points=16, seed=4), 3, batch_size=8)
    assert summary.steps == 3
    assert all(torch.isfinite(p).all() for p in model.parameters())
