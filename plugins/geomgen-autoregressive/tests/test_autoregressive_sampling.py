"""Tests of the 'autoregressive' generator's sampling: fast sampler == reference sampler,
seeding, samples follow the model's (tempered) distribution, conditional fit."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from geomgen.testing.generative import TOY_CATEGORIES, toy_batch


@pytest.mark.parametrize("R, arch, num_classes, temperature", [
    (6, {}, 2, 0.7),                                                        # radius 4 > R / 2
    (7, {"stem_kernel": 3, "block_kernel": 5, "num_blocks": 1}, 0, 1.0),   # radius 3, interior windows
    (5, {"num_blocks": 0, "stem_kernel": 3, "position_bias": False}, 0, 1.5),  # stem and head only
    (6, {"stem_kernel": [3, 5, 7], "block_kernel": [1, 3, 3]}, 2, 1.0),  # non-cubic kernels
])
def test_incremental_sampler_equals_reference(small_model, randomize, R, arch, num_classes, temperature):
    m = randomize(small_model(resolution=R, num_classes=num_classes, **arch), std=0.3).double()
    cond = [0, 1, 1] if num_classes else None
    ref = m.sample(3, condition=cond, seed=7, temperature=temperature, method="full").grids
    fast = m.sample(3, condition=cond, seed=7, temperature=temperature).grids
    assert fast.shape == (3, R, R, R) and fast.dtype == torch.float32
    assert 0.05 < float(ref.mean()) < 0.95  # non-trivial samples
    assert torch.equal(fast, ref)


def test_sampling_is_seeded(small_model, randomize):
    m = randomize(small_model(num_classes=2), std=0.2)
    a = m.sample(4, seed=11).grids
    assert torch.equal(a, m.sample(4, seed=11).grids)
    assert not torch.equal(a, m.sample(4, seed=12).grids)
    assert set(a.unique().tolist()) <= {0.0, 1.0}
    torch.manual_seed(3)
    b = m.sample(4).grids
    torch.manual_seed(3)
    assert torch.equal(b, m.sample(4).grids)
    # the labels are used: same seed, other class -> other samples
    assert not torch.equal(m.sample(4, condition=0, seed=11).grids, m.sample(4, condition=1, seed=11).grids)


@pytest.mark.parametrize("num_classes, temperature", [(0, 1.0), (2, 1.0), (0, 0.5)])
def test_samples_follow_the_model_distribution(small_model, randomize, num_classes, temperature):
    """At R = 2 the exact (tempered) distribution over the 256 grids is known:
    ``prod_i Bernoulli(x_i | sigmoid(logit_i(x_<i) / T))``; 20000 samples match it."""
    m = randomize(small_model(resolution=2, num_classes=num_classes), std=0.3).double().eval()
    grids = ((torch.arange(256)[:, None] >> torch.arange(8)) & 1).double().view(256, 1, 2, 2, 2)
    labels = torch.ones(256, dtype=torch.int64) if num_classes else None
    with torch.no_grad():
        logits = m.logits(grids, labels) / temperature
    p = torch.exp(-F.binary_cross_entropy_with_logits(logits, grids, reduction="none").flatten(1).sum(1))
    torch.testing.assert_close(p.sum(), torch.tensor(1.0, dtype=torch.float64))
    n = 20000
    s = m.sample(n, condition=1 if num_classes else None, seed=0, temperature=temperature).grids
    index = (s.reshape(n, 8).long() << torch.arange(8)).sum(1)
    emp = torch.bincount(index, minlength=256).double() / n
    tv = 0.5 * float((emp - p).abs().sum())
    expected = 0.5 * float(torch.sqrt(2 * p * (1 - p) / (math.pi * n)).sum())  # E[TV] of an exact sampler
    assert tv < 2 * expected + 0.005, (tv, expected)
    assert float(p.max()) < 0.5  # a spread-out distribution, so the check has power


def test_conditional_fit_uses_the_class(small_model):
    """After a short fit on boxes and spheres, every held-out shape is more likely
    under its own class than the other one, and held-out NLL beats the untrained model."""
    torch.manual_seed(1)
    m = small_model(hidden=16, num_classes=2, categories=list(TOY_CATEGORIES))
    train, held = toy_batch(32, 8, 8, seed=0), toy_batch(16, 8, 8, seed=1)
    x, y = held["voxels"], held["label"]
    with torch.no_grad():
        before = m.bits_per_voxel(x, y)
    opt = torch.optim.Adam(m.parameters(), lr=6e-3)
    for _ in range(120):
        loss = m.compute_loss(train)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        own, other, marginal = m.log_prob(x, y), m.log_prob(x, 1 - y), m.log_prob(x)
        after = m.bits_per_voxel(x, y)
    assert float(after.mean()) < 0.3 * float(before.mean()), (before.mean(), after.mean())
    assert (own > other + 1.0).all(), own - other
    assert (marginal < own).all() and (marginal > own - math.log(2.0) - 1e-4).all()
    box, sphere = m.sample(8, condition="box", seed=0).grids, m.sample(8, condition="sphere", seed=0).grids
    assert float(box.sum()) > 0 and float(sphere.sum()) > 0 and not torch.equal(box, sphere)
