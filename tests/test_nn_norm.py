"""Tests of geomgen.nn.norm (make_norm) and geomgen.nn.activation (make_activation)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from geomgen.errors import InvalidInputError
from geomgen.nn.activation import ACTIVATIONS, activation_gain_name, make_activation
from geomgen.nn.norm import NORM_KINDS, group_count, is_norm, make_norm

SHAPES = {1: (4, 12, 9), 2: (4, 12, 5, 7), 3: (4, 12, 3, 4, 5)}


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("kind", NORM_KINDS)
def test_make_norm_kinds_and_shapes(kind, dim):
    norm = make_norm(kind, 12, 8, dim=dim)
    expected = {
        "batch": (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)[dim - 1],
        "group": nn.GroupNorm,
        "layer": nn.GroupNorm,
        "instance": (nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)[dim - 1],
        "none": nn.Identity,
    }[kind]
    assert type(norm) is expected
    assert is_norm(norm) == (kind != "none")
    x = torch.randn(SHAPES[dim], generator=torch.Generator().manual_seed(0))
    y = norm(x)
    assert y.shape == x.shape
    if kind != "none":
        assert sum(p.numel() for p in norm.parameters()) == 24  # affine scale + shift
        # every kind normalises over some axes: per-channel batch mean ~ 0 in training mode
        if kind == "batch":
            assert torch.allclose(y.transpose(0, 1).reshape(12, -1).mean(1), torch.zeros(12), atol=1e-5)


def test_group_counts():
    assert make_norm("group", 12, 8).num_groups == 6  # largest divisor of 12 that is <= 8
    assert make_norm("group", 7, 8).num_groups == 7
    assert make_norm("group", 32, 8).num_groups == 8
    assert make_norm("group", 5, 4).num_groups == 1
    assert make_norm("layer", 32).num_groups == 1
    assert group_count(64, 32) == 32


def test_norm_2d_input_for_vectors():
    x = torch.randn(6, 10)
    for kind in ("batch", "group", "layer", "none"):
        assert make_norm(kind, 10, dim=1)(x).shape == (6, 10)
    # "layer" on (N, C) is LayerNorm over C
    ln = nn.LayerNorm(10)
    assert torch.allclose(make_norm("layer", 10, dim=1)(x), ln(x), atol=1e-5)


def test_batch_norm_train_eval():
    torch.manual_seed(0)
    bn = make_norm("batch", 3, dim=2)
    x = torch.randn(8, 3, 4, 4) * 3 + 5
    bn.train()
    y = bn(x)
    assert torch.allclose(y.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert bn.num_batches_tracked.item() == 1
    assert not torch.allclose(bn.running_mean, torch.zeros(3))
    bn.eval()
    one = x[:1]
    expect = (one - bn.running_mean[None, :, None, None]) / torch.sqrt(bn.running_var[None, :, None, None] + bn.eps)
    assert torch.allclose(bn(one), expect, atol=1e-5)
    # eval: a sample's output does not depend on the rest of the batch; train: it does
    assert torch.allclose(bn(x)[:1], bn(one), atol=1e-6)
    bn.train()
    assert not torch.allclose(bn(x)[:1], bn(x[:2])[:1], atol=1e-3)


@pytest.mark.parametrize("kind", ["group", "instance", "layer"])
def test_per_sample_norms_same_in_train_and_eval(kind):
    norm = make_norm(kind, 8, 4, dim=3)
    x = torch.randn(3, 8, 2, 3, 4)
    norm.train()
    a = norm(x)
    norm.eval()
    assert torch.allclose(a, norm(x), atol=1e-6)
    assert torch.allclose(norm(x[:1]), a[:1], atol=1e-6)  # batch-independent


def test_make_norm_bad_arguments():
    with pytest.raises(InvalidInputError, match="'norm'"):
        make_norm("weird", 8)
    with pytest.raises(InvalidInputError, match="'norm'"):
        make_norm("Batch", 8)
    with pytest.raises(InvalidInputError, match="'channels'"):
        make_norm("batch", 0)
    with pytest.raises(InvalidInputError, match="'groups'"):
        make_norm("group", 8, 0)
    with pytest.raises(InvalidInputError, match="'dim'"):
        make_norm("batch", 8, dim=4)
    with pytest.raises(InvalidInputError, match="'kind'"):
        make_norm("x", 8, name="kind")


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_activations(act):
    layer = make_activation(act)
    x = torch.linspace(-3, 3, 13)
    y = layer(x)
    assert y.shape == x.shape
    assert sum(p.numel() for p in layer.parameters()) == 0
    if act == "none":
        assert torch.equal(y, x)
    if act == "leaky_relu":
        assert torch.allclose(y[0], torch.tensor(-0.6))
    nonlin, _ = activation_gain_name(act)
    nn.init.calculate_gain(nonlin, 0.2)  # a name torch accepts


def test_activation_bad_name():
    with pytest.raises(InvalidInputError, match="'act'"):
        make_activation("swish")
    with pytest.raises(InvalidInputError, match="'out_act'"):
        make_activation("swish", name="out_act")
