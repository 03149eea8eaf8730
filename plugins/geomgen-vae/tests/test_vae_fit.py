"""Short fits on ToyShapes through the core Trainer: the held-out ELBO rises, the IWAE
estimate sits above the ELBO, interpolations start and end at the reconstructions, the
point VAE's samples get closer to the data, and trained models survive save_model / load_model."""

from __future__ import annotations

import pytest
import torch

import geomgen
from geomgen.data import collate_samples
from geomgen.generative import GenerativeTask
from geomgen.metrics import generative_metrics
from geomgen.testing.generative import ToyShapes, check_generator, toy_batch
from geomgen.train import Trainer, TrainConfig
from geomgen.weights import load_model, save_model

from _vae_tiny import TINY_POINTS, TINY_VOXEL, TOY_CLASSES


def _fit(model, data, steps, *, lr=2e-3, batch_size=16, **config):
    cfg = TrainConfig(max_steps=steps, batch_size=batch_size, lr=lr, seed=0, progress=False, plot=False, **config)
    return Trainer(model, GenerativeTask(), data, None, cfg, collate_fn=collate_samples).fit()


def _elbo(model, x, repeats=4):
    """Mean held-out ELBO (nats per shape), averaged over a few z draws."""
    model.eval()
    with torch.no_grad():
        return torch.stack([model.elbo(x) for _ in range(repeats)]).mean(0)


@pytest.fixture(scope="module")
def fitted():
    """A tiny voxel VAE before and after 80 steps, and a held-out batch (another seed)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        held = toy_batch(16, 16, num_points=16, seed=123)["voxels"]
        model = geomgen.get_model("vae", **TINY_VOXEL)
        before = _elbo(model, held)
        summary = _fit(model, ToyShapes(256, 16, num_points=16, seed=1), 80)
        model.eval()
        return {"model": model, "held": held, "before": before, "summary": summary}
    finally:
        torch.set_num_threads(threads)


def test_fit_raises_heldout_elbo(fitted):
    model, held, before, summary = fitted["model"], fitted["held"], fitted["before"], fitted["summary"]
    assert summary.steps == 80 and "train/loss" in summary.train_metrics
    after = _elbo(model, held)
    assert torch.isfinite(after).all() and after.shape == (16,)
    # untrained: ~ -2700 nats per 16^3 shape (about 1 bit per voxel); a short fit gets far below that
    assert after.mean() > before.mean() + 1000.0, (before.mean(), after.mean())
    assert after.mean() > 0.5 * before.mean()
    bpv = model.bits_per_voxel(held).mean()
    assert bpv < 0.35, bpv


def test_iwae_is_above_elbo_on_average(fitted):
    model, held = fitted["model"], fitted["held"]
    torch.manual_seed(1)
    elbo = _elbo(model, held, repeats=8)
    with torch.no_grad():
        iwae = model.log_prob(held, num_samples=32)
    assert iwae.shape == (16,) and torch.isfinite(iwae).all()
    assert iwae.mean() >= elbo.mean(), (iwae.mean(), elbo.mean())
    # bounded by the data: a (tiny) probability for each of the 4096 binary voxels
    assert (iwae <= 0).all()


def test_interpolate_endpoints_are_reconstructions(fitted):
    model, held = fitted["model"], fitted["held"]
    grids = held.grids
    out = model.interpolate(grids[0], grids[1], steps=6)
    assert len(out) == 6 and out.grids.shape == (6, 16, 16, 16) and not model.training
    with torch.no_grad():
        mu, _ = model.encode(grids[:2])
        recon = (torch.sigmoid(model.decode(mu)[:, 0]) >= 0.5).float()
    torch.testing.assert_close(out.grids[0], recon[0])
    torch.testing.assert_close(out.grids[-1], recon[1])
    for k, target in ((0, grids[0]), (-1, grids[1])):          # reconstructions resemble the inputs
        inter = (out.grids[k] * target).sum()
        union = ((out.grids[k] + target) > 0).sum()
        assert float(inter / union) > 0.5
    # the path moves: middle steps differ from both ends
    assert not torch.equal(out.grids[2], out.grids[0]) or not torch.equal(out.grids[3], out.grids[-1])


def test_point_fit_lowers_mmd():
    references = toy_batch(32, 8, num_points=128, seed=123)["pointclouds"].points_padded()
    model = geomgen.get_model("vae-points", **TINY_POINTS)
    before = generative_metrics(model.sample(32, seed=0), references, distance="chamfer")
    summary = _fit(model, ToyShapes(256, 8, num_points=256, seed=1), 150)
    assert "train/loss" in summary.train_metrics
    after = generative_metrics(model.sample(32, seed=0), references, distance="chamfer")
    assert after["MMD"] < 0.6 * before["MMD"], (before, after)
    assert after["COV"] >= before["COV"] + 0.1, (before, after)
    ends = model.interpolate(references[0], references[1], steps=3)
    assert ends.points_padded().shape == (3, 128, 3)


def test_save_load_round_trip(tmp_path):
    model = geomgen.get_model("vae", **TINY_VOXEL, **TOY_CLASSES)
    _fit(model, ToyShapes(32, 16, num_points=16, seed=3), 4, batch_size=8)
    model.eval()
    path = save_model(model, "vae", tmp_path / "vae.pt")
    loaded = load_model(path)
    assert type(loaded) is type(model) and loaded.config == model.config and not loaded.training
    for mode in ("mean", "probs", "sample"):
        assert torch.equal(loaded.sample(3, condition="sphere", seed=4, mode=mode).grids,
                           model.sample(3, condition="sphere", seed=4, mode=mode).grids)
    x = toy_batch(4, 16, num_points=64)
    torch.manual_seed(9)
    a = model.elbo(x["voxels"], x["label"])
    torch.manual_seed(9)
    torch.testing.assert_close(loaded.elbo(x["voxels"], x["label"]), a)
    check_generator(loaded, x)
    points = geomgen.get_model("vae-points", **TINY_POINTS)
    loaded_points = load_model(save_model(points, "vae-points", tmp_path / "pts.pt"))
    assert torch.equal(loaded_points.sample(2, seed=1).points_padded(), points.eval().sample(2, seed=1).points_padded())
