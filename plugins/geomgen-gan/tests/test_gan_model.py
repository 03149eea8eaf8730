"""Contract, training-step order, sampling and argument checks of the gan generators (no fitting)."""

from __future__ import annotations

import math

import pytest
import torch

import geomgen
from geomgen.errors import InvalidInputError
from geomgen.generative import LikelihoodUnavailableError
from geomgen.testing.generative import check_generator, toy_batch
from geomgen.train import OptimizerStep, TrainConfig

from _gan_tiny import TINY_POINTS, TINY_VOXEL, TOY_CLASSES

MODELS = [("gan", TINY_VOXEL), ("gan-points", TINY_POINTS)]


@pytest.fixture(scope="module")
def batch():
    return toy_batch(8, 16, num_points=256, seed=0)


def _build(name, cfg, **kw):
    return geomgen.get_model(name, **{**cfg, **kw})


def test_registered_with_default_configs():
    from geomgen_gan.config import PointGANConfig, VoxelGANConfig

    DEFAULT_CONFIG, POINTS_DEFAULT_CONFIG = VoxelGANConfig.defaults(), PointGANConfig.defaults()

    names = geomgen.list_models(kind="generator")
    assert "gan" in names and "gan-points" in names
    m = geomgen.get_model("gan")
    assert m.config == DEFAULT_CONFIG
    assert DEFAULT_CONFIG["num_classes"] == 0 and DEFAULT_CONFIG["categories"] == []
    assert m.output == "voxels" and m.likelihood is None
    p = geomgen.get_model("gan-points")
    assert p.output == "pointcloud" and p.config == POINTS_DEFAULT_CONFIG


@pytest.mark.parametrize("name,cfg", MODELS)
@pytest.mark.parametrize("loss", ["nonsaturating", "wgan-gp", "hinge"])
def test_check_generator_unconditional(name, cfg, loss, batch):
    out = check_generator(_build(name, cfg, loss=loss), batch)
    assert len(out["loss"]) == 2                              # a "disc" then a "gen" update
    assert ("gp" in out["metrics"]) == (loss == "wgan-gp")


@pytest.mark.parametrize("name,cfg", MODELS)
def test_check_generator_conditional(name, cfg, batch):
    model = _build(name, cfg, **TOY_CLASSES)
    check_generator(model, batch)
    a = model.sample(3, condition="box", seed=1)
    b = model.sample(3, condition=1, seed=1)
    grids = (lambda s: s.grids) if name == "gan" else (lambda s: s.points_padded())
    assert not torch.equal(grids(a), grids(b)), "the class condition does not reach the generator"
    assert torch.equal(grids(a), grids(model.sample(3, condition=[0, 0, 0], seed=1)))
    with pytest.raises(InvalidInputError, match="condition"):
        model.sample(2, condition="chair")
    unlabeled = {k: v for k, v in batch.items() if k != "label"}
    with pytest.raises(InvalidInputError, match="label"):
        next(model.training_step(unlabeled, 0))


@pytest.mark.parametrize("name,cfg", MODELS)
def test_no_likelihood(name, cfg, batch):
    model = _build(name, cfg)
    x = batch["voxels"] if name == "gan" else batch["pointclouds"]
    for method in (model.log_prob, model.elbo):
        with pytest.raises(LikelihoodUnavailableError, match="generative_metrics"):
            method(x)
    with pytest.raises(NotImplementedError):          # LikelihoodUnavailableError is one
        model.elbo(x)
    if name == "gan":
        with pytest.raises(LikelihoodUnavailableError):
            model.bits_per_voxel(x)
    assert "nll" not in model.validation_metrics(batch)


@pytest.mark.parametrize("name,cfg", MODELS)
@pytest.mark.parametrize("loss,expected", [("nonsaturating", math.log(2.0)), ("wgan-gp", 0.0), ("hinge", 0.0)])
def test_generator_loss_uses_the_updated_discriminator(name, cfg, loss, expected, batch):
    """Zero the discriminator between the two items (as an update would change it):
    the generator loss must then be that of a discriminator scoring 0 everywhere."""
    model = _build(name, cfg, loss=loss)
    steps = model.training_step(batch, 0)
    disc = next(steps)
    assert isinstance(disc, OptimizerStep) and disc.optimizer == "disc"
    disc.loss.backward()
    g_params = list(model.generator_net.parameters())
    assert all(p.grad is None for p in g_params), "the discriminator loss reached the generator"
    with torch.no_grad():
        pre = float(model.critic(model.fake_input(4, None)).mean())
        for p in model.discriminator_net.parameters():
            p.zero_()
    gen = next(steps)
    assert gen.optimizer == "gen"
    assert float(gen.loss.detach()) == pytest.approx(expected, abs=1e-6)
    assert float(gen.logs["g_fake"]) == 0.0 and pre != 0.0
    model.discriminator_net.zero_grad(set_to_none=True)
    gen.loss.backward()
    assert all(p.grad is None for p in model.discriminator_net.parameters()), "G step built D weight gradients"
    assert any(p.grad is not None for p in g_params)
    with pytest.raises(StopIteration):
        next(steps)


def test_real_updates_in_trainer_order(batch):
    """disc step, optimizer step, then the gen loss: no in-place autograd error, and
    the gen loss equals the updated discriminator's score of the same fakes."""
    model = _build("gan", TINY_VOXEL, loss="wgan-gp")
    opts = model.configure_optimizers(TrainConfig(max_steps=1, lr=0.05))
    torch.manual_seed(3)
    z = torch.randn(8, model.latent_dim)                    # the noise training_step draws first
    torch.manual_seed(3)
    steps = model.training_step(batch, 0)
    disc = next(steps)
    opts["disc"].zero_grad()
    disc.loss.backward()
    opts["disc"].step()
    gen = next(steps)
    with torch.no_grad():
        fake = torch.sigmoid(model.generator_net(z))
        after = -float(model.critic(fake).mean())
    assert float(gen.loss.detach()) == pytest.approx(after, rel=1e-4, abs=1e-5)
    opts["gen"].zero_grad()
    gen.loss.backward()
    opts["gen"].step()


def test_d_steps_updates_the_generator_every_kth_step(batch):
    model = _build("gan", TINY_VOXEL, d_steps=3)
    names = [[s.optimizer for s in model.training_step(batch, k)] for k in range(6)]
    assert names == [["disc"], ["disc"], ["disc", "gen"]] * 2


def test_sampling_is_deterministic_given_a_seed():
    model = _build("gan", TINY_VOXEL)
    torch.manual_seed(1)
    a = model.sample(4, seed=7).grids
    torch.manual_seed(2)
    b = model.sample(4, seed=7).grids
    assert torch.equal(a, b)
    assert not torch.equal(a, model.sample(4, seed=8).grids)
    assert not torch.equal(a, model.sample(4, seed=7, temperature=0.5).grids)
    torch.manual_seed(5)
    c = model.sample(4).grids                                  # seed from torch's global RNG
    torch.manual_seed(5)
    assert torch.equal(c, model.sample(4).grids)
    assert a.shape == (4, 16, 16, 16) and float(a.min()) >= 0 and float(a.max()) <= 1
    pts = _build("gan-points", TINY_POINTS).sample(3, seed=2).points_padded()
    assert pts.shape == (3, 128, 3) and float(pts.abs().max()) <= 0.5


def test_configure_optimizers_splits_players():
    model = _build("gan", TINY_VOXEL, lr_d=4e-4)
    opts = model.configure_optimizers(TrainConfig(max_steps=1, lr=1e-4, weight_decay=0.01))
    assert list(opts) == ["disc", "gen"]
    ids = {k: {id(p) for g in o.param_groups for p in g["params"]} for k, o in opts.items()}
    assert ids["disc"] == {id(p) for p in model.discriminator_net.parameters()}
    assert ids["gen"] == {id(p) for p in model.generator_net.parameters()}
    assert {g["lr"] for g in opts["disc"].param_groups} == {4e-4}
    assert {g["lr"] for g in opts["gen"].param_groups} == {1e-4}
    assert all(g["betas"] == (0.5, 0.9) for o in opts.values() for g in o.param_groups)
    sgd = _build("gan", TINY_VOXEL).configure_optimizers(TrainConfig(max_steps=1, optimizer="sgd", momentum=0.5))
    assert all(isinstance(o, torch.optim.SGD) for o in sgd.values())
    with pytest.raises(InvalidInputError, match="config"):
        model.configure_optimizers({"lr": 1e-3})


def test_compute_loss_updates_nothing_and_validation_is_reproducible(batch):
    model = _build("gan", TINY_VOXEL)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = model.compute_loss(batch)
    assert set(out) == {"loss", "g_loss", "d_loss", "d_real", "d_fake", "gp"}
    assert torch.equal(out["loss"], out["g_loss"]) and torch.isfinite(out["d_loss"])
    model.eval()
    state = torch.random.get_rng_state()
    with torch.no_grad():
        v1, v2 = model.validation_metrics(batch), model.validation_metrics(batch)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert {k: float(v) for k, v in v1.items()} == {k: float(v) for k, v in v2.items()} and float(v1["gp"]) >= 0
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if "running" not in k and "num_batches" not in k)


@pytest.mark.parametrize("kwargs,arg", [
    ({"loss": "lsgan"}, "loss"),
    ({"gp_weight": -1.0}, "gp_weight"),
    ({"d_steps": 0}, "d_steps"),
    ({"lr_d": 0.0}, "lr_d"),
    ({"betas": [0.5]}, "betas"),
    ({"betas": [0.5, 1.0]}, "betas"),
    ({"resolution": 12}, "resolution"),
    ({"gen_channels": [8]}, "gen_channels"),
    ({"disc_channels": []}, "disc_channels"),
    ({"disc_norm": "batch"}, "disc_norm"),
    ({"gen_norm": "spectral"}, "gen_norm"),
    ({"latent_dim": 0}, "latent_dim"),
    ({"num_classes": 2, "categories": ["box"]}, "categories"),
    ({"categories": "box"}, "categories"),
])
def test_bad_voxel_arguments(kwargs, arg):
    with pytest.raises(InvalidInputError, match=arg):
        _build("gan", TINY_VOXEL, **kwargs)


@pytest.mark.parametrize("kwargs,arg", [
    ({"num_points": 0}, "num_points"),
    ({"gen_hidden": "big"}, "gen_hidden"),
    ({"loss": "wgan"}, "loss"),
    ({"gen_norm": "instance"}, "gen_norm"),
])
def test_bad_point_arguments(kwargs, arg):
    with pytest.raises(InvalidInputError, match=arg):
        _build("gan-points", TINY_POINTS, **kwargs)


def test_bad_call_arguments(batch):
    model = _build("gan", TINY_VOXEL)
    with pytest.raises(InvalidInputError, match="temperature"):
        model.sample(2, seed=0, temperature=0.0)
    with pytest.raises(InvalidInputError, match="top_k"):
        model.sample(2, seed=0, top_k=3)
    with pytest.raises(InvalidInputError, match="z"):
        model(torch.zeros(2, 5))
    with pytest.raises(InvalidInputError, match="step"):
        next(model.training_step(batch, -1))
    cond = _build("gan", TINY_VOXEL, **TOY_CLASSES)
    with pytest.raises(InvalidInputError, match="labels"):
        cond(torch.zeros(2, 16))
    with pytest.raises(InvalidInputError, match="labels"):
        cond(torch.zeros(2, 16), torch.tensor([0, 2]))
    assert cond(torch.zeros(2, 16), torch.tensor([0, 1])).shape == (2, 1, 16, 16, 16)
    with pytest.raises(InvalidInputError, match="voxels"):
        next(model.training_step({"label": torch.zeros(2)}, 0))
