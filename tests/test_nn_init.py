"""Tests of geomgen.nn.init: Kaiming/Xavier statistics and init_weights."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from geomgen.errors import InvalidInputError
from geomgen.nn.init import INIT_SCHEMES, init_weights, kaiming_init_, kaiming_std, xavier_init_
from geomgen.nn.masked_conv import MaskedConv3d
from geomgen.nn.mlp import ConditionalBatchNorm, ResnetBlockFC

RTOL = 0.05  # the layers below have >= 60k weights: the sample std is within ~0.3% of the true one


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("distribution", ["normal", "uniform"])
def test_kaiming_fan_in_std(distribution):
    conv = nn.Conv2d(64, 128, 3)
    kaiming_init_(conv, distribution=distribution)
    fan_in = 64 * 9
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=RTOL)
    assert conv.weight.mean().item() == pytest.approx(0.0, abs=3 * math.sqrt(2 / fan_in) / math.sqrt(conv.weight.numel()) + 1e-4)
    assert torch.count_nonzero(conv.bias) == 0
    if distribution == "uniform":
        assert conv.weight.abs().max() <= math.sqrt(3) * math.sqrt(2 / fan_in) + 1e-6


def test_kaiming_fan_out_and_leaky():
    lin = nn.Linear(200, 400)
    kaiming_init_(lin, mode="fan_out")
    assert lin.weight.std().item() == pytest.approx(math.sqrt(2 / 400), rel=RTOL)
    conv = nn.Conv3d(16, 32, 3)
    kaiming_init_(conv, nonlinearity="leaky_relu", a=0.2)
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (1 + 0.04)) / math.sqrt(16 * 27), rel=RTOL)
    assert kaiming_std(100) == pytest.approx(math.sqrt(2 / 100))


@pytest.mark.parametrize("distribution", ["uniform", "normal"])
def test_xavier_std(distribution):
    lin = nn.Linear(300, 200)
    xavier_init_(lin, distribution=distribution)
    assert lin.weight.std().item() == pytest.approx(math.sqrt(2 / 500), rel=RTOL)
    if distribution == "uniform":
        assert lin.weight.abs().max() <= math.sqrt(6 / 500) + 1e-6
    assert torch.count_nonzero(lin.bias) == 0
    xavier_init_(lin, gain=2.0)
    assert lin.weight.std().item() == pytest.approx(2 * math.sqrt(2 / 500), rel=RTOL)


def test_init_weights_schemes():
    model = nn.Sequential(nn.Conv2d(32, 64, 3), nn.BatchNorm2d(64), nn.ReLU(), nn.ConvTranspose2d(64, 16, 4), nn.Linear(256, 256))
    with torch.no_grad():
        model[1].weight.fill_(3.0)
        model[1].bias.fill_(2.0)
    init_weights(model, "kaiming")
    assert model[0].weight.std().item() == pytest.approx(math.sqrt(2 / (32 * 9)), rel=RTOL)
    assert torch.all(model[1].weight == 1) and torch.all(model[1].bias == 0)
    assert torch.count_nonzero(model[0].bias) == 0
    # transposed conv: torch's fan_in of a (C_in, C_out, k, k) weight is C_out * k * k
    assert model[3].weight.std().item() == pytest.approx(math.sqrt(2 / (16 * 16)), rel=RTOL)
    init_weights(model, "xavier")
    assert model[4].weight.std().item() == pytest.approx(math.sqrt(2 / 512), rel=RTOL)
    init_weights(model, "normal", std=0.02)
    assert model[4].weight.std().item() == pytest.approx(0.02, rel=RTOL)
    init_weights(model, "kaiming_uniform", nonlinearity="linear")
    assert model[4].weight.std().item() == pytest.approx(1 / 16, rel=RTOL)
    init_weights(model, "default")  # torch's own: kaiming_uniform(a=sqrt(5)) -> std 1/sqrt(3 fan_in)
    assert model[4].weight.std().item() == pytest.approx(1 / math.sqrt(3 * 256), rel=RTOL)
    assert set(INIT_SCHEMES) >= {"kaiming", "xavier", "default"}


def test_kaiming_preserves_activation_scale_through_depth():
    layers = []
    for _ in range(12):
        layers += [nn.Linear(256, 256), nn.ReLU()]
    net = init_weights(nn.Sequential(*layers), "kaiming")
    x = torch.randn(512, 256)
    y = net(x)
    ratio = (y**2).mean().item() / (x**2).mean().item()
    assert 0.3 < ratio < 3.0  # Kaiming keeps E[y^2] ~ E[x^2]; torch's default init shrinks it ~ 3^-12


def test_init_weights_keeps_special_inits():
    blk = ResnetBlockFC(32)
    cbn = ConditionalBatchNorm(16, 8)
    model = nn.ModuleDict({"blk": blk, "cbn": cbn})
    init_weights(model, "kaiming")
    assert torch.count_nonzero(blk.fc_1.weight) == 0
    assert torch.all(cbn.gamma.bias == 1) and torch.count_nonzero(cbn.gamma.weight) == 0
    init_weights(model, "kaiming", keep_special=False)
    assert torch.count_nonzero(blk.fc_1.weight) > 0
    assert torch.count_nonzero(cbn.gamma.weight) > 0


def test_masked_conv_uses_masked_fan_in():
    conv = MaskedConv3d(64, 64, 5, "A")
    taps = (125 - 1) // 2
    assert conv.effective_fan_in() == 64 * taps
    init_weights(conv, "kaiming")
    w = conv.weight * conv.mask
    assert w[w != 0].std().item() == pytest.approx(math.sqrt(2 / (64 * taps)), rel=RTOL)


def test_init_bad_arguments():
    with pytest.raises(InvalidInputError, match="'scheme'"):
        init_weights(nn.Linear(2, 2), "he")
    with pytest.raises(InvalidInputError, match="'module'"):
        init_weights("not a module")
    with pytest.raises(InvalidInputError, match="'module'"):
        kaiming_init_(nn.ReLU())
    with pytest.raises(InvalidInputError, match="'mode'"):
        kaiming_init_(nn.Linear(2, 2), mode="fan_avg")
    with pytest.raises(InvalidInputError, match="'nonlinearity'"):
        init_weights(nn.Linear(2, 2), nonlinearity="gelu")
    with pytest.raises(InvalidInputError, match="'gain'"):
        xavier_init_(nn.Linear(2, 2), gain=-1.0)
