"""Tests of geomgen.nn.pointnet: PointNetEncoder and masked_pool."""

from __future__ import annotations

import pytest
import torch

from geomgen.errors import InvalidInputError
from geomgen.nn.pointnet import PointNetEncoder, masked_pool
from geomgen.structures import PointClouds


def nparams(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


CONFIGS = [
    {},
    {"pool": "mean"},
    {"norm": "batch"},
    {"norm": "group", "groups": 4, "pool": "mean"},
    {"block": "resnet", "hidden_dims": (16, 16, 8)},
    {"block": "resnet", "hidden_dims": (16, 16), "pool": "mean"},
]


def test_defaults():
    enc = PointNetEncoder()
    assert nparams(enc) == 107_392  # reported in the docstring
    assert nparams(PointNetEncoder(block="resnet", out_dim=128)) == 428_416
    assert enc(torch.randn(2, 50, 3)).shape == (2, 256)
    assert PointNetEncoder(block="resnet", out_dim=32)(torch.randn(3, 1, 3)).shape == (3, 32)


@pytest.mark.parametrize("cfg", CONFIGS)
def test_padded_points_do_not_change_the_output(cfg):
    enc = PointNetEncoder(out_dim=8, feat_dim=2, **cfg)  # training mode: batch norm uses batch statistics
    pts, feats = torch.randn(3, 10, 3), torch.randn(3, 10, 2)
    lengths = torch.tensor([10, 4, 7])
    out = enc(pts, feats, lengths)
    pad = torch.arange(10)[None, :] >= lengths[:, None]
    pts2, feats2 = pts.clone(), feats.clone()
    pts2[pad] = 1e3 * torch.randn(int(pad.sum()), 3)
    feats2[pad] = float("nan")
    assert torch.allclose(enc(pts2, feats2, lengths), out, atol=1e-5)
    # also the same as a batch with less padding
    short = enc(pts[:, :7], feats[:, :7], torch.tensor([7, 4, 7]))
    assert torch.allclose(short[1:], out[1:], atol=1e-5) or cfg.get("norm") == "batch"


@pytest.mark.parametrize("cfg", [c for c in CONFIGS if c.get("norm") != "batch"])
def test_padded_batch_equals_clouds_one_by_one(cfg):
    enc = PointNetEncoder(out_dim=8, **cfg)
    clouds = [torch.randn(n, 3) for n in (6, 2, 9)]
    padded = torch.zeros(3, 9, 3)
    for i, c in enumerate(clouds):
        padded[i, : len(c)] = c
    out = enc(padded, lengths=[6, 2, 9])
    for i, c in enumerate(clouds):
        assert torch.allclose(out[i], enc(c[None])[0], atol=1e-5)


@pytest.mark.parametrize("cfg", CONFIGS)
def test_permutation_invariance(cfg):
    enc = PointNetEncoder(out_dim=8, **cfg).eval()
    pts = torch.randn(2, 12, 3)
    perm = torch.randperm(12)
    assert torch.allclose(enc(pts), enc(pts[:, perm]), atol=1e-5)


def test_empty_cloud_and_gradients():
    enc = PointNetEncoder(out_dim=8, norm="batch")
    pts = torch.randn(3, 5, 3, requires_grad=True)
    lengths = torch.tensor([5, 0, 2])
    out = enc(pts, lengths=lengths)
    assert torch.isfinite(out).all()
    assert torch.allclose(out[1], enc.fc_out.bias)  # an empty cloud pools to zeros
    out.sum().backward()
    assert all(p.grad is not None for p in enc.parameters())
    assert torch.isfinite(pts.grad).all()
    assert pts.grad[1].abs().sum() == 0 and pts.grad[2, 2:].abs().sum() == 0  # padding gets no gradient
    assert pts.grad[0].abs().sum() > 0
    res = PointNetEncoder(out_dim=4, block="resnet", hidden_dims=(8, 8))
    p2 = torch.randn(2, 4, 3, requires_grad=True)
    res(p2, lengths=[0, 3]).sum().backward()
    assert all(p.grad is not None for p in res.parameters()) and torch.isfinite(p2.grad).all()
    assert enc(torch.zeros(2, 0, 3), lengths=[0, 0]).shape == (2, 8)


def test_pointclouds_input():
    clouds = [torch.randn(5, 3), torch.randn(3, 3)]
    feats = [torch.randn(5, 2), torch.randn(3, 2)]
    pc = PointClouds(clouds, features=feats)
    enc = PointNetEncoder(out_dim=6, feat_dim=2)
    expect = enc(pc.points_padded(), pc.features_padded(), pc.num_points_per_cloud())
    assert torch.allclose(enc(pc), expect)
    with pytest.raises(InvalidInputError, match="'lengths'"):
        enc(pc, lengths=[5, 3])


def test_masked_pool():
    x = torch.tensor([[[1.0, -5.0], [3.0, 0.0], [100.0, 100.0]], [[2.0, 2.0], [9.0, 9.0], [9.0, 9.0]]])
    assert torch.equal(masked_pool(x, torch.tensor([2, 0])), torch.tensor([[3.0, 0.0], [0.0, 0.0]]))
    assert torch.allclose(masked_pool(x, [2, 1], "mean"), torch.tensor([[2.0, -2.5], [2.0, 2.0]]))
    assert torch.equal(masked_pool(x), x.amax(1))
    with pytest.raises(InvalidInputError, match="'lengths'"):
        masked_pool(x, [4, 1])
    with pytest.raises(InvalidInputError, match="'mode'"):
        masked_pool(x, mode="sum")


def test_bad_arguments():
    enc = PointNetEncoder()
    with pytest.raises(InvalidInputError, match="'points'.*\\(N, P, 3\\)"):
        enc(torch.randn(2, 5, 2))
    with pytest.raises(InvalidInputError, match="'points'.*3-D"):
        enc(torch.randn(5, 3))
    with pytest.raises(InvalidInputError, match="'features'"):
        enc(torch.randn(2, 5, 3), torch.randn(2, 5, 1))
    with pytest.raises(InvalidInputError, match="'features'"):
        PointNetEncoder(feat_dim=2)(torch.randn(2, 5, 3))
    with pytest.raises(InvalidInputError, match="'features'"):
        PointNetEncoder(feat_dim=2)(torch.randn(2, 5, 3), torch.randn(2, 4, 2))
    with pytest.raises(InvalidInputError, match="'lengths'"):
        enc(torch.randn(2, 5, 3), lengths=torch.tensor([6, 1]))
    with pytest.raises(InvalidInputError, match="'lengths'"):
        enc(torch.randn(2, 5, 3), lengths=torch.tensor([1]))
    with pytest.raises(InvalidInputError, match="'norm'"):
        PointNetEncoder(block="resnet", norm="batch")
    with pytest.raises(InvalidInputError, match="'norm'"):
        PointNetEncoder(norm="instance")
    with pytest.raises(InvalidInputError, match="'pool'"):
        PointNetEncoder(pool="sum")
    with pytest.raises(InvalidInputError, match="'hidden_dims'"):
        PointNetEncoder(hidden_dims=())
