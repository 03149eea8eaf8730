"""Tests of geomgen.nn.mlp: MLP, RowNorm, ResnetBlockFC, ConditionalBatchNorm, CondResnetBlockFC."""

from __future__ import annotations

import math

import pytest
import torch

from geomgen.errors import InvalidInputError
from geomgen.nn.mlp import MLP, CondResnetBlockFC, ConditionalBatchNorm, ResnetBlockFC, RowNorm


def nparams(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("shape", [(5, 3), (2, 7, 3), (2, 3, 4, 3), (3,)])
def test_mlp_shapes(shape):
    mlp = MLP(3, 2, (16, 8))
    assert mlp(torch.randn(shape)).shape == shape[:-1] + (2,)


def test_mlp_defaults_and_structure():
    mlp = MLP(3, 1)
    assert nparams(mlp) == 17_153  # reported in the docstring
    assert MLP(4, 2, ()).out.in_features == 4 and nparams(MLP(4, 2, ())) == 10
    # leading axes are batch axes: same result row by row
    x = torch.randn(2, 5, 3)
    assert torch.allclose(mlp(x), mlp(x.reshape(10, 3)).view(2, 5, 1), atol=1e-6)
    assert MLP(3, 4, out_act="sigmoid")(x).min() >= 0


def test_mlp_residual():
    mlp = MLP(3, 2, (8, 8, 4), residual=True, norm="layer")
    assert isinstance(mlp.skips[1], torch.nn.Identity)
    assert isinstance(mlp.skips[0], torch.nn.Linear) and mlp.skips[0].bias is None
    x = torch.randn(4, 3)
    h = mlp.layers[0](x) + mlp.skips[0](x)
    h = mlp.layers[1](h) + h
    h = mlp.layers[2](h) + mlp.skips[2](h)
    assert torch.allclose(mlp(x), mlp.out(h), atol=1e-6)


def test_mlp_batch_norm_over_all_rows_and_modes():
    mlp = MLP(3, 2, (16,), norm="batch")
    x = torch.randn(4, 6, 3) * 3 + 1
    h = mlp.layers[0][1](mlp.layers[0][0](x))  # Linear -> RowNorm
    assert torch.allclose(h.reshape(-1, 16).mean(0), torch.zeros(16), atol=1e-5)
    mlp.eval()
    assert torch.allclose(mlp(x)[:1], mlp(x[:1]), atol=1e-6)


def test_mlp_dropout_train_eval():
    mlp = MLP(8, 8, (64, 64), dropout=0.5)
    x = torch.randn(16, 8)
    assert not torch.allclose(mlp(x), mlp(x))  # random masks in training
    mlp.eval()
    assert torch.equal(mlp(x), mlp(x))


def test_mlp_gradients_and_init():
    mlp = MLP(64, 3, (256, 256), norm="group", residual=True)
    x = torch.randn(5, 64, requires_grad=True)
    mlp(x).sum().backward()
    assert all(p.grad is not None for p in mlp.parameters()) and x.grad is not None
    w = mlp.layers[1][0].weight
    assert w.std().item() == pytest.approx(math.sqrt(2 / 256), rel=0.05)
    tanh = MLP(64, 3, (256, 256), act="tanh", init="xavier")
    assert tanh.layers[1][0].weight.std().item() == pytest.approx(math.sqrt(2 / 512), rel=0.05)


def test_row_norm():
    x = torch.randn(2, 3, 4)
    assert torch.allclose(RowNorm("layer", 4)(x), torch.nn.functional.layer_norm(x, (4,)), atol=1e-5)
    assert RowNorm("none", 4)(x) is x
    with pytest.raises(InvalidInputError, match="'norm'"):
        RowNorm("instance", 4)


def test_resnet_block_fc():
    blk = ResnetBlockFC(16)
    assert nparams(ResnetBlockFC(128)) == 33_024
    x = torch.randn(3, 5, 16)
    assert torch.equal(blk(x), x)  # fc_1 starts at zero: the block starts as the identity
    y = blk(x)
    y.sum().backward()
    assert all(p.grad is not None for p in blk.parameters())
    assert blk.fc_1.weight.grad.abs().sum() > 0
    proj = ResnetBlockFC(16, 8, 32)
    assert proj(x).shape == (3, 5, 8) and proj.fc_0.out_features == 32
    assert torch.allclose(proj(x), proj.shortcut(x))
    assert ResnetBlockFC(16, 8).size_h == 8


def test_conditional_batch_norm():
    cbn = ConditionalBatchNorm(6, 4)
    assert nparams(ConditionalBatchNorm(128, 256)) == 65_792
    x = torch.randn(3, 10, 6) * 2 + 1
    c = torch.randn(3, 4)
    plain = torch.nn.functional.batch_norm(x.reshape(-1, 6), None, None, training=True).view(3, 10, 6)
    assert torch.allclose(cbn(x, c), plain, atol=1e-5)  # gamma = 1, beta = 0 at start
    with torch.no_grad():
        cbn.gamma.weight.normal_()
        cbn.beta.weight.normal_()
    y = cbn(x, c)
    gamma, beta = cbn.gamma(c), cbn.beta(c)
    assert torch.allclose(y, gamma[:, None] * plain + beta[:, None], atol=1e-5)
    # every sample is modulated by its own condition
    c2 = c.clone()
    c2[1] += 1
    y2 = cbn(x, c2)
    assert torch.allclose(y2[0], y[0], atol=1e-5) and not torch.allclose(y2[1], y[1], atol=1e-3)
    assert cbn(x[:, 0], c).shape == (3, 6)  # (N, C) input
    cbn.eval()
    assert torch.allclose(cbn(x, c)[:1], cbn(x[:1], c[:1]), atol=1e-6)  # running statistics


def test_cond_resnet_block_fc():
    blk = CondResnetBlockFC(8, 5, 6)
    assert nparams(CondResnetBlockFC(128, 128)) == 99_072
    x, c = torch.randn(2, 7, 8), torch.randn(2, 5)
    y = blk(x, c)
    assert y.shape == (2, 7, 6)
    assert torch.allclose(y, blk.shortcut(x))  # fc_1 starts at zero
    y.sum().backward()
    assert all(p.grad is not None for p in blk.parameters())


def test_bad_arguments():
    with pytest.raises(InvalidInputError, match="'norm'"):
        MLP(3, 1, norm="instance")
    with pytest.raises(InvalidInputError, match="'act'"):
        MLP(3, 1, act="mish")
    with pytest.raises(InvalidInputError, match="'hidden_dims'"):
        MLP(3, 1, hidden_dims=(8, 0))
    with pytest.raises(InvalidInputError, match="'hidden_dims'"):
        MLP(3, 1, hidden_dims=8)
    with pytest.raises(InvalidInputError, match="'dropout'"):
        MLP(3, 1, dropout=1.0)
    with pytest.raises(InvalidInputError, match="'in_dim'"):
        MLP(0, 1)
    with pytest.raises(InvalidInputError, match="'x'.*C=3"):
        MLP(3, 1)(torch.randn(4, 5))
    with pytest.raises(InvalidInputError, match="'x'"):
        MLP(3, 1)(torch.zeros(4, 3, dtype=torch.int64))
    with pytest.raises(InvalidInputError, match="'x'"):
        ResnetBlockFC(4)(torch.randn(2, 5))
    cbn = ConditionalBatchNorm(6, 4)
    with pytest.raises(InvalidInputError, match="'c'"):
        cbn(torch.randn(3, 6), torch.randn(2, 4))
    with pytest.raises(InvalidInputError, match="'c'"):
        cbn(torch.randn(3, 6), torch.randn(3, 5))
    with pytest.raises(InvalidInputError, match="'x'"):
        cbn(torch.randn(3, 2, 2, 6), torch.randn(3, 4))
