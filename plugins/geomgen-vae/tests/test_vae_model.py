"""Contract, likelihood terms, sampling and argument checks of the vae generators (no fitting)."""

from __future__ import annotations

import math

import pytest
import torch

import geomgen
from geomgen.errors import InvalidInputError
from geomgen.generative import LikelihoodUnavailableError
from geomgen.losses.kl import gaussian_kl
from geomgen.testing.generative import check_generator, toy_batch

from _vae_tiny import TINY_POINTS, TINY_VOXEL, TOY_CLASSES

MODELS = [("vae", TINY_VOXEL), ("vae-points", TINY_POINTS)]


@pytest.fixture(scope="module")
def batch():
    return toy_batch(8, 16, num_points=256, seed=0)


def _build(name, cfg, **kw):
    return geomgen.get_model(name, **{**cfg, **kw})


def _grids(name):
    return (lambda s: s.grids) if name == "vae" else (lambda s: s.points_padded())


def test_registered_with_default_configs():
    from geomgen_vae.config import PointVAEConfig, VoxelVAEConfig

    DEFAULT_CONFIG, POINTS_DEFAULT_CONFIG = VoxelVAEConfig.defaults(), PointVAEConfig.defaults()

    names = geomgen.list_models(kind="generator")
    assert "vae" in names and "vae-points" in names
    m = geomgen.get_model("vae")
    assert m.config == DEFAULT_CONFIG and m.config["beta"] == 1.0
    assert DEFAULT_CONFIG["num_classes"] == 0 and DEFAULT_CONFIG["categories"] == []
    assert m.output == "voxels" and m.likelihood == "elbo" and m.resolution == 32 and m.latent_dim == 64
    assert sum(p.numel() for p in m.parameters()) * 4 <= 3e6          # <= 3 MB in float32
    p = geomgen.get_model("vae-points")
    assert p.output == "pointcloud" and p.likelihood is None and p.config == POINTS_DEFAULT_CONFIG
    assert p.num_points == 1024 and p.latent_dim == 64


@pytest.mark.parametrize("name,cfg", MODELS)
def test_check_generator_unconditional(name, cfg, batch):
    out = check_generator(_build(name, cfg), batch)
    if name == "vae":
        assert {"nll", "bits_per_voxel", "recon", "kl"} <= set(out["metrics"])
    else:
        assert {"chamfer", "kl"} <= set(out["metrics"]) and "nll" not in out["metrics"]


@pytest.mark.parametrize("name,cfg", MODELS)
def test_check_generator_conditional(name, cfg, batch):
    model = _build(name, cfg, **TOY_CLASSES)
    check_generator(model, batch)
    grids = _grids(name)
    a = model.sample(3, condition="box", seed=1, **({"mode": "probs"} if name == "vae" else {}))
    b = model.sample(3, condition=1, seed=1, **({"mode": "probs"} if name == "vae" else {}))
    assert not torch.equal(grids(a), grids(b)), "the class condition does not reach the decoder"
    assert torch.equal(grids(model.sample(3, condition="box", seed=1)), grids(model.sample(3, condition=[0, 0, 0],
                                                                                           seed=1)))
    with pytest.raises(InvalidInputError, match="condition"):
        model.sample(2, condition="chair")
    unlabeled = {k: v for k, v in batch.items() if k != "label"}
    with pytest.raises(InvalidInputError, match="label"):
        model.compute_loss(unlabeled)


@pytest.mark.parametrize("name,cfg", MODELS)
def test_sample_seeds(name, cfg):
    model = _build(name, cfg)
    grids = _grids(name)
    state = torch.random.get_rng_state()
    a, b, c = model.sample(4, seed=7), model.sample(4, seed=7), model.sample(4, seed=8)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(grids(a), grids(b)) and not torch.equal(grids(a), grids(c))
    torch.manual_seed(5)
    d = model.sample(2)
    torch.manual_seed(5)
    assert torch.equal(grids(d), grids(model.sample(2)))
    if name == "vae-points":
        pts = grids(a)
        assert pts.shape == (4, 128, 3) and float(pts.abs().max()) <= 0.5


def test_voxel_sample_modes():
    model = _build("vae", TINY_VOXEL)
    mean = model.sample(3, seed=2).grids
    probs = model.sample(3, seed=2, mode="probs").grids
    drawn = model.sample(3, seed=2, mode="sample").grids
    assert set(mean.unique().tolist()) <= {0.0, 1.0} and set(drawn.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(mean, (probs >= 0.5).float())                   # same latents, thresholded
    assert torch.equal(model.sample(3, seed=2, mode="mean", threshold=0.3).grids, (probs >= 0.3).float())
    assert not torch.equal(drawn, mean) and torch.equal(drawn, model.sample(3, seed=2, mode="sample").grids)
    hot = model.sample(3, seed=2, mode="probs", temperature=3.0).grids
    assert not torch.equal(hot, probs)


def test_elbo_terms_and_marginal(batch):
    model = _build("vae", TINY_VOXEL, **TOY_CLASSES).eval()
    x, labels = batch["voxels"], batch["label"]
    with torch.no_grad():
        elbo = model.elbo(x, labels)
        assert elbo.shape == (8,) and torch.isfinite(elbo).all() and (elbo < 0).all()
        torch.manual_seed(3)
        per_class = torch.stack([model.elbo(x, [c] * 8) for c in range(2)], 1)
        torch.manual_seed(3)
        marginal = model.elbo(x)                       # log mean_c exp(ELBO_c), same z draws
        torch.testing.assert_close(marginal, torch.logsumexp(per_class, 1) - math.log(2))
        torch.manual_seed(4)
        iwae = model.log_prob(x, labels, num_samples=5)
        assert iwae.shape == (8,) and torch.isfinite(iwae).all()
        assert model.log_prob(x, num_samples=2).shape == (8,)
        bpv = model.bits_per_voxel(x, labels)
        assert bpv.shape == (8,) and (bpv > 0).all()


def test_elbo_is_reconstruction_minus_closed_form_kl(batch):
    model = _build("vae", TINY_VOXEL).eval()
    with torch.no_grad():
        model.encoder.head.weight.mul_(30.0)           # a posterior away from the prior
        mu, logvar = model.encode(batch["voxels"])
        assert mu.shape == logvar.shape == (8, 16)
        kl = gaussian_kl(mu, logvar, reduction="none")
        # Monte Carlo KL: E_q[log q(z) - log p(z)] with many reparameterised draws, float64
        mu64, lv64 = mu.double(), logvar.double()
        eps = torch.randn(20000, *mu.shape, dtype=torch.float64)
        z = mu64 + torch.exp(0.5 * lv64) * eps
        log_q = -0.5 * (eps.square() + lv64 + math.log(2 * math.pi)).sum(-1)
        log_p = -0.5 * (z.square() + math.log(2 * math.pi)).sum(-1)
        mc = (log_q - log_p).mean(0)
        torch.testing.assert_close(mc, kl.double(), rtol=0.05, atol=0.1)
        # elbo = -BCE(x, decode(z)) - KL with the same z
        x = model.as_input(batch["voxels"])
        torch.manual_seed(11)
        elbo = model.elbo(x)
        torch.manual_seed(11)
        z = model.reparameterize(mu, logvar)
        bce = torch.nn.functional.binary_cross_entropy_with_logits(model.decode(z), x, reduction="none")
        torch.testing.assert_close(elbo, -bce.flatten(1).sum(1) - kl, rtol=1e-5, atol=1e-2)


@pytest.mark.parametrize("name,cfg", MODELS)
def test_reparameterisation_gradients_reach_encoder(name, cfg, batch):
    model = _build(name, cfg, beta=0.0)                 # reconstruction only: the encoder learns through z
    loss = model.compute_loss(batch)
    assert set(loss) >= {"loss", "kl"}
    loss["loss"].backward()
    grads = [p.grad for p in model.encoder.body.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


def test_compute_loss_scaling(batch):
    model = _build("vae", TINY_VOXEL, beta=0.5)
    torch.manual_seed(0)
    out = model.compute_loss(batch)
    assert set(out) == {"loss", "recon", "kl", "bits_per_voxel"}
    R3 = 16 ** 3
    torch.testing.assert_close(out["loss"].detach(), (out["recon"] + 0.5 * out["kl"]) / R3)
    torch.testing.assert_close(out["bits_per_voxel"], (out["recon"] + out["kl"]) / (R3 * math.log(2)))


@pytest.mark.parametrize("name,cfg", MODELS)
def test_points_and_voxels_roundtrip_shapes(name, cfg, batch):
    model = _build(name, cfg)
    x = batch["voxels"] if name == "vae" else batch["pointclouds"]
    mu, logvar = model.encode(x)
    out = model.decode(mu)
    expected = (8, 1, 16, 16, 16) if name == "vae" else (8, 128, 3)
    assert out.shape == expected
    rec, mu2, _ = model(x)
    assert rec.shape == expected and torch.equal(mu, mu2)


@pytest.mark.parametrize("name,cfg", MODELS)
def test_interpolate_untrained(name, cfg, batch):
    model = _build(name, cfg, **TOY_CLASSES)
    if name == "vae":
        a, b = batch["voxels"].grids[0], batch["voxels"].grids[1:2]
    else:
        a, b = batch["pointclouds"].points_padded()[0], batch["pointclouds"].points_padded()[1:2]
    out = model.interpolate(a, b, steps=5, condition="sphere")
    assert len(out) == 5 and model.training
    with pytest.raises(InvalidInputError, match="steps"):
        model.interpolate(a, b, steps=1, condition=0)
    with pytest.raises(InvalidInputError, match="condition"):
        model.interpolate(a, b)                         # a conditional model needs the class
    whole = batch["voxels"].grids if name == "vae" else batch["pointclouds"].points_padded()
    with pytest.raises(InvalidInputError, match="'b'"):
        model.interpolate(a, whole, condition=0)


def test_points_have_no_likelihood(batch):
    model = _build("vae-points", TINY_POINTS)
    for method in (model.log_prob, model.elbo):
        with pytest.raises(LikelihoodUnavailableError, match="chamfer"):
            method(batch["pointclouds"])
    assert "nll" not in model.validation_metrics(batch)


@pytest.mark.parametrize("kw,arg", [
    ({"latent_dim": 0}, "latent_dim"), ({"beta": -1.0}, "beta"), ({"resolution": 24}, "resolution"),
    ({"dec_channels": [16, 8]}, "dec_channels"), ({"enc_channels": []}, "enc_channels"), ({"norm": "weird"}, "norm"),
    ({"num_classes": 2, "categories": ["box"]}, "categories"),
])
def test_bad_voxel_arguments(kw, arg):
    with pytest.raises(InvalidInputError, match=arg):
        _build("vae", TINY_VOXEL, **kw)


@pytest.mark.parametrize("kw,arg", [
    ({"latent_dim": -2}, "latent_dim"), ({"beta": -0.1}, "beta"), ({"dec_hidden": "wide"}, "dec_hidden"),
    ({"num_points": 0}, "num_points"),
])
def test_bad_point_arguments(kw, arg):
    with pytest.raises(InvalidInputError, match=arg):
        _build("vae-points", TINY_POINTS, **kw)


def test_bad_call_arguments(batch):
    model = _build("vae", TINY_VOXEL)
    x = batch["voxels"]
    for options, arg in [({"mode": "best"}, "mode"), ({"threshold": 1.5}, "threshold"),
                         ({"temperature": 0.0}, "temperature"), ({"colour": 1}, "colour")]:
        with pytest.raises(InvalidInputError, match=arg):
            model.sample(2, seed=0, **options)
    with pytest.raises(InvalidInputError, match="num_samples"):
        model.log_prob(x, num_samples=0)
    with pytest.raises(InvalidInputError, match="condition"):
        model.elbo(x, condition=[0] * 8)               # unconditional model
    with pytest.raises(InvalidInputError, match="z"):
        model.decode(torch.zeros(2, 5))
    with pytest.raises(InvalidInputError, match="x"):
        model.encode(torch.zeros(2, 15, 15, 15))
    cond = _build("vae", TINY_VOXEL, **TOY_CLASSES)
    with pytest.raises(InvalidInputError, match="condition"):
        cond.elbo(x, condition=[0, 1])                 # 2 labels for 8 shapes
    with pytest.raises(InvalidInputError, match="condition"):
        cond.decode(torch.zeros(2, 16))                # the decoder needs the class
    with pytest.raises(InvalidInputError, match="temperature"):
        _build("vae-points", TINY_POINTS).sample(2, temperature=-1.0)
