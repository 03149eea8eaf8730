"""MMD, COV and 1-NNA (PointFlow definitions) against brute-force references."""

from __future__ import annotations

import pytest
import torch

from geomgen.errors import InvalidInputError
from geomgen.losses import chamfer_distance
from geomgen.metrics import (
    generative_metrics,
    mmd_cov,
    one_nn_accuracy,
    pairwise_chamfer,
    pairwise_voxel_distance,
    voxel_iou,
)
from geomgen.structures import PointClouds


def _brute_chamfer(x, y):
    return torch.stack([torch.stack([chamfer_distance(a[None], b[None])[0] for b in y]) for a in x])


def test_pairwise_chamfer_equals_chamfer_distance_pair_by_pair():
    torch.manual_seed(0)
    x, y = torch.rand(5, 40, 3, dtype=torch.float64), torch.rand(7, 30, 3, dtype=torch.float64)
    d = pairwise_chamfer(x, y, chunk=4)
    assert d.shape == (5, 7)
    torch.testing.assert_close(d, _brute_chamfer(x, y))
    torch.testing.assert_close(pairwise_chamfer(PointClouds(x), y), d)


def test_pairwise_voxel_distance_is_one_minus_iou():
    torch.manual_seed(0)
    a, b = torch.rand(4, 6, 6, 6), torch.rand(3, 6, 6, 6)
    d = pairwise_voxel_distance(a, b)
    ref = torch.stack([1 - voxel_iou(a[i:i + 1].expand(3, -1, -1, -1), b, 0.5) for i in range(4)])
    torch.testing.assert_close(d, ref)
    empty = torch.zeros(2, 4, 4, 4)
    assert torch.equal(pairwise_voxel_distance(empty, empty), torch.zeros(2, 2))


def _brute_1nna(d_rr, d_rg, d_gg):
    r, g = d_rg.shape
    full = torch.cat([torch.cat([d_rr, d_rg], 1), torch.cat([d_rg.T, d_gg], 1)])
    correct = 0
    for i in range(r + g):
        best, arg = float("inf"), -1
        for j in range(r + g):
            if j != i and full[i, j] < best:
                best, arg = float(full[i, j]), j
        correct += (i < r) == (arg < r)
    return correct / (r + g)


def test_mmd_cov_and_1nna_match_their_definitions():
    torch.manual_seed(1)
    d_rg = torch.rand(6, 9)
    d_rr = torch.rand(6, 6)
    d_rr = (d_rr + d_rr.T) / 2
    d_gg = torch.rand(9, 9)
    d_gg = (d_gg + d_gg.T) / 2
    mmd, cov = mmd_cov(d_rg)
    assert mmd == pytest.approx(float(sum(d_rg[r].min() for r in range(6)) / 6))
    assert cov == pytest.approx(len({int(d_rg[:, g].argmin()) for g in range(9)}) / 6)
    assert one_nn_accuracy(d_rr, d_rg, d_gg) == pytest.approx(_brute_1nna(d_rr, d_rg, d_gg))


def test_identical_sets_are_ideal_and_separated_sets_are_worst():
    torch.manual_seed(2)
    ref = torch.rand(8, 64, 3)
    same = generative_metrics(ref.clone(), ref)
    assert same["MMD"] == pytest.approx(0.0, abs=1e-12) and same["COV"] == 1.0
    assert same["1-NNA"] == 0.0  # every shape's nearest neighbour is its twin in the other set
    far = generative_metrics(ref + 10.0, ref)
    assert far["1-NNA"] == 1.0 and far["COV"] <= 1.0 and far["MMD"] > 100
    collapsed = generative_metrics(ref[:1].expand(8, -1, -1).clone(), ref)
    assert collapsed["COV"] == pytest.approx(1 / 8)  # mode collapse: one reference covered


def test_voxel_sets_and_errors():
    grids = (torch.rand(5, 8, 8, 8) > 0.5).float()
    out = generative_metrics(grids, grids, distance="iou")
    assert out["MMD"] == 0.0 and out["COV"] == 1.0
    with pytest.raises(InvalidInputError, match="distance"):
        generative_metrics(grids, grids, distance="emd")
    with pytest.raises(InvalidInputError, match="'x'"):
        pairwise_chamfer(torch.rand(3, 4), torch.rand(3, 4, 3))
    with pytest.raises(InvalidInputError, match="NaN"):
        pairwise_chamfer(torch.full((1, 4, 3), float("nan")), torch.rand(1, 4, 3))
    with pytest.raises(InvalidInputError, match="resolution"):
        pairwise_voxel_distance(torch.zeros(1, 4, 4, 4), torch.zeros(1, 5, 5, 5))
    with pytest.raises(InvalidInputError, match="blocks"):
        one_nn_accuracy(torch.zeros(2, 2), torch.zeros(2, 3), torch.zeros(2, 2))
