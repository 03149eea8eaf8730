"""Tests of geomgen.losses.occupancy.occupancy_bce and geomgen.losses.kl.gaussian_kl."""

from __future__ import annotations

import math

import pytest
import torch

from geomgen.errors import InvalidInputError
from geomgen.losses.kl import gaussian_kl
from geomgen.losses.occupancy import occupancy_bce


def naive_bce(s: float, y: float) -> float:
    p = 1 / (1 + math.exp(-s))
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def test_bce_against_naive_and_reductions():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 7, generator=g, dtype=torch.float64) * 3
    labels = (torch.rand(3, 7, generator=g) > 0.5).double()
    labels[0, 0] = 0.3  # soft label
    ref = torch.tensor([[naive_bce(s, y) for s, y in zip(r1, r2)] for r1, r2 in zip(logits.tolist(), labels.tolist())],
                       dtype=torch.float64)
    assert torch.allclose(occupancy_bce(logits, labels, reduction="none"), ref)
    assert occupancy_bce(logits, labels).item() == pytest.approx(ref.mean().item())
    assert occupancy_bce(logits, labels, reduction="sum").item() == pytest.approx(ref.sum().item())
    w = torch.rand(3, 1, generator=g, dtype=torch.float64)  # per-shape weights, broadcast over points
    assert occupancy_bce(logits, labels, w).item() == pytest.approx((w * ref).sum().item() / (w.sum().item() * 7))
    assert torch.allclose(occupancy_bce(logits, labels, w, reduction="none"), w * ref)
    assert occupancy_bce(logits, labels, torch.zeros(3, 7, dtype=torch.float64)).item() == 0.0
    bool_labels = labels > 0.5
    assert occupancy_bce(logits, bool_labels).item() == pytest.approx(occupancy_bce(logits, bool_labels.double()).item())


def test_bce_surface_and_stability():
    # the surface o = 1/2 is logit 0: BCE = log 2 whatever the label
    s = torch.zeros(4)
    assert torch.allclose(occupancy_bce(s, torch.tensor([0.0, 1.0, 0.5, 1.0]), reduction="none"), torch.full((4,), math.log(2)))
    big = torch.tensor([100.0, -100.0, 100.0, -100.0], requires_grad=True)
    out = occupancy_bce(big, torch.tensor([1.0, 0.0, 0.0, 1.0]), reduction="none")
    assert torch.isfinite(out).all() and out[0] < 1e-30 and out[2].item() == pytest.approx(100.0)
    out.sum().backward()
    assert torch.isfinite(big.grad).all()
    x = torch.randn(2, 5, dtype=torch.float64, requires_grad=True)
    y = torch.rand(2, 5, dtype=torch.float64)
    w = torch.rand(2, 5, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: occupancy_bce(t, y, w), (x,))
    assert torch.allclose(occupancy_bce(x, y), torch.nn.functional.binary_cross_entropy_with_logits(x, y))


def test_bce_validation():
    x = torch.randn(2, 5)
    with pytest.raises(InvalidInputError, match="labels"):
        occupancy_bce(x, torch.rand(2, 4))
    with pytest.raises(InvalidInputError, match="labels"):
        occupancy_bce(x, torch.full((2, 5), 2.0))
    with pytest.raises(InvalidInputError, match="logits"):
        occupancy_bce(x.long(), torch.rand(2, 5))
    with pytest.raises(InvalidInputError, match="weights"):
        occupancy_bce(x, torch.rand(2, 5), -torch.ones(2, 5))
    with pytest.raises(InvalidInputError, match="weights"):
        occupancy_bce(x, torch.rand(2, 5), torch.ones(3, 5))
    with pytest.raises(InvalidInputError, match="weights"):
        occupancy_bce(x, torch.rand(2, 5), torch.ones(2, 2, 5))
    with pytest.raises(InvalidInputError, match="reduction"):
        occupancy_bce(x, torch.rand(2, 5), reduction="batch")


def test_kl_closed_form_and_torch_distributions():
    g = torch.Generator().manual_seed(1)
    mu = torch.randn(6, 4, generator=g, dtype=torch.float64)
    logvar = torch.randn(6, 4, generator=g, dtype=torch.float64)
    per = gaussian_kl(mu, logvar, reduction="none")
    naive = torch.tensor([
        sum(0.5 * (m * m + math.exp(lv) - 1 - lv) for m, lv in zip(r1, r2))
        for r1, r2 in zip(mu.tolist(), logvar.tolist())
    ], dtype=torch.float64)
    assert per.shape == (6,) and torch.allclose(per, naive)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    assert torch.allclose(per, torch.distributions.kl_divergence(q, p).sum(-1))
    assert gaussian_kl(mu, logvar).item() == pytest.approx(per.mean().item())
    assert gaussian_kl(mu, logvar, reduction="sum").item() == pytest.approx(per.sum().item())
    assert gaussian_kl(torch.zeros(3, 5), torch.zeros(3, 5)).item() == 0.0
    assert (per >= 0).all()
    assert gaussian_kl(mu.reshape(2, 3, 4), logvar.reshape(2, 3, 4), reduction="none").shape == (2, 3)


def test_kl_monte_carlo():
    g = torch.Generator().manual_seed(2)
    mu = torch.tensor([[0.5, -1.0, 0.2]], dtype=torch.float64)
    logvar = torch.tensor([[-0.5, 0.3, 0.0]], dtype=torch.float64)
    std = torch.exp(0.5 * logvar)
    z = mu + std * torch.randn(200_000, 3, generator=g, dtype=torch.float64)
    log_q = (-0.5 * ((z - mu) / std) ** 2 - torch.log(std) - 0.5 * math.log(2 * math.pi)).sum(-1)
    log_p = (-0.5 * z**2 - 0.5 * math.log(2 * math.pi)).sum(-1)
    mc = (log_q - log_p).mean().item()
    stderr = (log_q - log_p).std().item() / math.sqrt(z.shape[0])
    assert gaussian_kl(mu, logvar).item() == pytest.approx(mc, abs=5 * stderr)


def test_kl_gradcheck_and_validation():
    mu = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    lv = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(gaussian_kl, (mu, lv))
    with pytest.raises(InvalidInputError, match="logvar"):
        gaussian_kl(torch.zeros(3, 2), torch.zeros(3, 3))
    with pytest.raises(InvalidInputError, match="mu"):
        gaussian_kl(torch.zeros(3, 2, dtype=torch.long), torch.zeros(3, 2))
    with pytest.raises(InvalidInputError, match="mu"):
        gaussian_kl(torch.tensor(0.0), torch.tensor(0.0))
    with pytest.raises(InvalidInputError, match="reduction"):
        gaussian_kl(torch.zeros(3, 2), torch.zeros(3, 2), reduction="batchmean")
