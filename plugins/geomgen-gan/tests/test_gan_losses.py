"""The adversarial losses and the gradient penalty against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from geomgen.errors import InvalidInputError
from geomgen_gan.losses import LOSSES, discriminator_loss, generator_loss, gradient_penalty

REAL = torch.tensor([2.0, -1.0, 0.5])
FAKE = torch.tensor([-3.0, 0.0, 1.5])


def _sp(x: float) -> float:  # softplus
    return math.log1p(math.exp(x))


def test_nonsaturating_matches_hand_values():
    d = (_sp(-2.0) + _sp(1.0) + _sp(-0.5)) / 3 + (_sp(-3.0) + _sp(0.0) + _sp(1.5)) / 3
    g = (_sp(3.0) + _sp(0.0) + _sp(-1.5)) / 3
    assert float(discriminator_loss("nonsaturating", REAL, FAKE)) == pytest.approx(d, abs=1e-6)
    assert float(generator_loss("nonsaturating", FAKE)) == pytest.approx(g, abs=1e-6)
    # the binary cross-entropy with real = 1, fake = 0 is the same thing
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    assert float(discriminator_loss("nonsaturating", REAL, FAKE)) == pytest.approx(
        float(bce(REAL, torch.ones(3)) + bce(FAKE, torch.zeros(3))), abs=1e-6)


def test_wgan_and_hinge_match_hand_values():
    # wgan: mean(fake) - mean(real) = (-1.5/3) - (1.5/3) = -1
    assert float(discriminator_loss("wgan-gp", REAL, FAKE)) == pytest.approx(-1.0, abs=1e-6)
    assert float(generator_loss("wgan-gp", FAKE)) == pytest.approx(1.5 / 3, abs=1e-6)
    # hinge: relu(1 - real) = [0, 2, 0.5] -> 2.5/3; relu(1 + fake) = [0, 1, 2.5] -> 3.5/3
    assert float(discriminator_loss("hinge", REAL, FAKE)) == pytest.approx(6.0 / 3, abs=1e-6)
    assert float(generator_loss("hinge", FAKE)) == pytest.approx(1.5 / 3, abs=1e-6)


def test_losses_accept_column_scores_and_reject_bad_input():
    assert float(discriminator_loss("hinge", REAL[:, None], FAKE[:, None])) == pytest.approx(2.0, abs=1e-6)
    with pytest.raises(InvalidInputError, match="kind"):
        discriminator_loss("wasserstein", REAL, FAKE)
    with pytest.raises(InvalidInputError, match="kind"):
        generator_loss("lsgan", FAKE)
    with pytest.raises(InvalidInputError, match="real_scores"):
        discriminator_loss("hinge", torch.zeros(2, 3), FAKE)
    with pytest.raises(InvalidInputError, match="fake_scores"):
        generator_loss("hinge", torch.zeros(0))
    assert set(LOSSES) == {"nonsaturating", "wgan-gp", "hinge"}


def _linear_critic(w: torch.Tensor):
    return lambda x: x.flatten(1) @ w


def test_gradient_penalty_zero_for_unit_gradient_and_known_otherwise():
    g = torch.Generator().manual_seed(0)
    real, fake = torch.rand(5, 1, 4, 4, 4, generator=g), torch.rand(5, 1, 4, 4, 4, generator=g)
    w = torch.randn(64, generator=g)
    unit = w / w.norm()
    assert float(gradient_penalty(_linear_critic(unit), real, fake)) == pytest.approx(0.0, abs=1e-6)
    # |grad| = 3 everywhere -> (3 - 1)^2 = 4
    assert float(gradient_penalty(_linear_critic(3 * unit), real, fake)) == pytest.approx(4.0, rel=1e-5)
    # a quadratic critic sum(x^2): grad 2 x_hat; fixed weights give the hand value
    e = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0])
    gp = gradient_penalty(lambda x: (x ** 2).flatten(1).sum(1), real, fake, weights=e)
    x_hat = e.view(5, 1, 1, 1, 1) * real + (1 - e.view(5, 1, 1, 1, 1)) * fake
    expected = ((2 * x_hat.flatten(1).norm(dim=1) - 1) ** 2).mean()
    assert float(gp.detach()) == pytest.approx(float(expected), rel=1e-5)


def test_gradient_penalty_trains_the_critic_and_works_without_grad():
    real, fake = torch.rand(4, 10), torch.rand(4, 10, requires_grad=True)
    w = torch.full((10,), 1.0, requires_grad=True)     # |w| = sqrt(10) -> penalty (sqrt(10) - 1)^2
    gp = gradient_penalty(_linear_critic(w), real, fake)
    assert float(gp.detach()) == pytest.approx((math.sqrt(10) - 1) ** 2, rel=1e-5)
    gp.backward()
    assert w.grad is not None and float(w.grad.abs().sum()) > 0   # differentiable in the critic
    assert fake.grad is None                                     # never trains the generator
    with torch.no_grad():
        gp2 = gradient_penalty(_linear_critic(w), real, fake)
    assert float(gp2) == pytest.approx(float(gp.detach()), rel=1e-6) and not gp2.requires_grad


def test_gradient_penalty_bad_arguments():
    crit = _linear_critic(torch.ones(10))
    with pytest.raises(InvalidInputError, match="fake"):
        gradient_penalty(crit, torch.rand(4, 10), torch.rand(3, 10))
    with pytest.raises(InvalidInputError, match="weights"):
        gradient_penalty(crit, torch.rand(4, 10), torch.rand(4, 10), weights=torch.rand(3))
