"""Tests for geomgen.structures.PointClouds on a small hand-made batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geomgen.errors import InvalidInputError
from geomgen.structures import BatchIndexError, PointClouds, join_pointclouds_as_batch

# cloud 0: 3 points, cloud 1: 5 points; features C = 2
P0 = torch.tensor([[0.0, 0, 0], [1, 2, 3], [-1, 0, 4]])
P1 = torch.tensor([[1.0, 1, 1], [2, 0, -2], [0, 5, 0], [3, 3, 3], [-4, 1, 2]])
N0 = torch.tensor([[0.0, 0, 1]] * 3)
N1 = torch.tensor([[1.0, 0, 0]] * 5)
F0 = torch.arange(6, dtype=torch.float32).reshape(3, 2)
F1 = torch.arange(10, dtype=torch.float32).reshape(5, 2) + 100


@pytest.fixture
def clouds() -> PointClouds:
    return PointClouds([P0.clone(), P1.clone()], normals=[N0, N1], features=[F0, F1])


def test_counts_and_repr(clouds):
    assert len(clouds) == 2
    assert clouds.num_points_per_cloud().tolist() == [3, 5]
    assert clouds.num_channels == 2
    r = repr(clouds)
    assert "N=2" in r and "[3, 5]" in r and "C=2" in r
    assert not clouds.isempty() and clouds.valid.tolist() == [True, True]


def test_views(clouds):
    assert torch.equal(clouds.points_list()[1], P1)
    pp = clouds.points_padded()
    assert pp.shape == (2, 5, 3)
    assert torch.equal(pp[0, :3], P0) and torch.all(pp[0, 3:] == 0) and torch.equal(pp[1], P1)
    assert torch.equal(clouds.points_packed(), torch.cat([P0, P1]))
    assert torch.equal(clouds.normals_packed(), torch.cat([N0, N1]))
    assert clouds.normals_padded().shape == (2, 5, 3)
    assert torch.equal(clouds.normals_list()[0], N0)
    assert torch.equal(clouds.features_packed(), torch.cat([F0, F1]))
    fp = clouds.features_padded()
    assert fp.shape == (2, 5, 2) and torch.all(fp[0, 3:] == 0)
    assert torch.equal(clouds.features_list()[1], F1)


def test_optional_attributes_absent():
    pc = PointClouds([P0])
    assert pc.normals_list() is None and pc.normals_packed() is None and pc.normals_padded() is None
    assert pc.features_list() is None and pc.features_packed() is None and pc.num_channels is None


def test_index_maps(clouds):
    assert clouds.cloud_to_packed_first_idx().tolist() == [0, 3]
    assert clouds.packed_to_cloud_idx().tolist() == [0, 0, 0, 1, 1, 1, 1, 1]
    idx = clouds.padded_to_packed_idx()
    assert idx.tolist() == [0, 1, 2, 5, 6, 7, 8, 9]
    assert torch.equal(clouds.points_padded().reshape(-1, 3)[idx], clouds.points_packed())


def test_padded_round_trip(clouds):
    pc = PointClouds(clouds.points_padded(), clouds.normals_padded(), clouds.features_padded(), lengths=[3, 5])
    for a, b in zip(pc.points_list(), clouds.points_list()):
        assert torch.equal(a, b)
    for a, b in zip(pc.features_list(), clouds.features_list()):
        assert torch.equal(a, b)
    full = PointClouds(clouds.points_padded())
    assert full.num_points_per_cloud().tolist() == [5, 5]
    packed = PointClouds(list(torch.split(clouds.points_packed(), [3, 5])))
    assert torch.equal(packed.points_padded(), clouds.points_padded())
    mixed = PointClouds([P0, P1], normals=clouds.normals_padded())
    assert torch.equal(mixed.normals_list()[0], N0)


def test_numpy_and_empty():
    pc = PointClouds([np.array(P0.numpy(), dtype=np.float64)])
    assert pc.dtype == torch.float64
    e = PointClouds([])
    assert len(e) == 0 and e.isempty() and e.points_padded().shape == (0, 0, 3)
    assert e.get_bounding_boxes().shape == (0, 3, 2)
    z = PointClouds([torch.zeros(0, 3), P0])
    assert z.num_points_per_cloud().tolist() == [0, 3] and not z.isempty()
    assert z.valid.tolist() == [False, True]
    assert torch.equal(z.get_bounding_boxes()[0], torch.zeros(3, 2))


def test_bounding_boxes(clouds):
    bb = clouds.get_bounding_boxes()
    assert bb.shape == (2, 3, 2)
    assert torch.equal(bb[0], torch.tensor([[-1.0, 1], [0, 2], [0, 4]]))
    assert torch.equal(bb[1], torch.tensor([[-4.0, 3], [0, 5], [-2, 3]]))


def test_getitem(clouds):
    assert clouds[1].num_points_per_cloud().tolist() == [5]
    assert clouds[-2].num_points_per_cloud().tolist() == [3]
    assert clouds[1:].num_points_per_cloud().tolist() == [5]
    assert clouds[[1, 1, 0]].num_points_per_cloud().tolist() == [5, 5, 3]
    assert clouds[torch.tensor([True, False])].num_points_per_cloud().tolist() == [3]
    assert clouds[torch.tensor([1])].features_list()[0] is clouds.features_list()[1]
    assert [len(c.points_list()[0]) for c in clouds] == [3, 5]
    with pytest.raises(BatchIndexError, match="index: 5 out of range"):
        clouds[5]
    with pytest.raises(InvalidInputError, match="index: bool mask must have shape \\(2,\\)"):
        clouds[torch.tensor([True, True, False])]


def test_offset_scale_update(clouds):
    m = clouds.offset(torch.tensor([1.0, 0, 0]))
    assert torch.equal(m.points_packed(), clouds.points_packed() + torch.tensor([1.0, 0, 0]))
    off = torch.rand(8, 3)
    assert torch.allclose(clouds.offset(off).points_packed(), clouds.points_packed() + off)
    c2 = clouds.clone().offset_(off)
    assert torch.allclose(c2.points_packed(), clouds.points_packed() + off)
    s = clouds.scale(torch.tensor([2.0, -1.0]))
    assert torch.equal(s.points_list()[0], 2 * P0) and torch.equal(s.points_list()[1], -P1)
    assert torch.equal(s.normals_list()[1], -N1) and torch.equal(s.normals_list()[0], N0)
    assert torch.equal(clouds.clone().scale_(3.0).points_packed(), 3 * clouds.points_packed())
    u = clouds.update_padded(clouds.points_padded() + 1, new_features_padded=clouds.features_padded() * 0)
    assert torch.equal(u.points_list()[0], P0 + 1)
    assert torch.all(u.features_packed() == 0)
    with pytest.raises(InvalidInputError, match="offsets_packed: expected a \\(8, 3\\)"):
        clouds.offset(torch.zeros(7, 3))
    with pytest.raises(InvalidInputError, match="scale: expected a scalar or a \\(2,\\) tensor"):
        clouds.scale(torch.ones(3))
    with pytest.raises(InvalidInputError, match="new_points_padded: expected a \\(2, 5, 3\\)"):
        clouds.update_padded(torch.zeros(2, 4, 3))


def test_extend_clone_detach_to(clouds):
    e = clouds.extend(3)
    assert e.num_points_per_cloud().tolist() == [3, 3, 3, 5, 5, 5]
    c = clouds.clone()
    c.points_list()[0][0, 0] = 42.0
    assert clouds.points_list()[0][0, 0] == 0.0
    assert clouds.to("cpu") is clouds and clouds.cpu() is clouds
    assert clouds.to("cpu", copy=True) is not clouds
    assert clouds.device == torch.device("cpu")
    with pytest.raises(InvalidInputError, match="n: expected an int >= 1"):
        clouds.extend(-1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda(clouds):
    g = clouds.cuda()
    assert g.device.type == "cuda" and g.points_padded().device.type == "cuda"
    assert torch.equal(g.get_bounding_boxes().cpu(), clouds.get_bounding_boxes())
    assert g.padded_to_packed_idx().tolist() == clouds.padded_to_packed_idx().tolist()
    assert torch.equal(g.cpu().features_packed(), clouds.features_packed())


def test_autograd():
    p0 = P0.clone().requires_grad_(True)
    p1 = P1.clone().requires_grad_(True)
    pc = PointClouds([p0, p1])
    (pc.points_padded() ** 2).sum().backward()
    assert torch.equal(p0.grad, 2 * P0) and torch.equal(p1.grad, 2 * P1)
    assert not pc.detach().points_packed().requires_grad
    pad = torch.rand(2, 5, 3, requires_grad=True)
    pc = PointClouds(pad, lengths=torch.tensor([2, 5]))
    pc.get_bounding_boxes().sum().backward()
    assert pad.grad is not None and torch.all(pad.grad[0, 2:] == 0)


def test_cache_follows_in_place_updates():
    p = P0.clone()
    pc = PointClouds([p])
    assert pc.points_padded()[0, 1, 0] == 1.0
    p.add_(1.0)
    assert pc.points_padded()[0, 1, 0] == 2.0
    assert pc.get_bounding_boxes()[0, 0, 0] == 0.0


def test_join(clouds):
    j = join_pointclouds_as_batch([clouds, clouds[0]])
    assert j.num_points_per_cloud().tolist() == [3, 5, 3]
    assert torch.equal(j.features_list()[2], F0)
    with pytest.raises(InvalidInputError, match="pointclouds\\[1\\]: has no normals"):
        join_pointclouds_as_batch([clouds, PointClouds([P0])])
    with pytest.raises(InvalidInputError, match="pointclouds\\[1\\]: features have 3 channels"):
        join_pointclouds_as_batch([clouds, PointClouds([P0], normals=[N0], features=[torch.rand(3, 3)])])
    with pytest.raises(InvalidInputError, match="pointclouds: expected a list"):
        join_pointclouds_as_batch(clouds)
    assert len(join_pointclouds_as_batch([])) == 0


def _raises(match: str, *args, **kwargs):
    with pytest.raises(InvalidInputError, match=match):
        PointClouds(*args, **kwargs)


def test_validation_errors():
    _raises(r"points\[1\]: expected a \(P, 3\) tensor, got shape \(5, 2\)", [P0, torch.rand(5, 2)])
    _raises(r"points: expected a list of \(P, 3\) tensors or a padded \(N, P, 3\) tensor, got shape \(5, 3\)", P1)
    _raises(r"points\[0\]: expected a floating-point tensor, got dtype torch.int64", [P0.long()])
    bad = P1.clone()
    bad[2, 1] = float("nan")
    _raises(r"points\[1\]: contains 1 NaN/Inf values", [P0, bad])
    _raises(r"normals: got 1 items but points has 2", [P0, P1], normals=[N0])
    _raises(r"normals\[1\]: has 4 rows but points\[1\] has 5", [P0, P1], normals=[N0, N1[:4]])
    _raises(r"normals\[0\]: contains 9 NaN/Inf values", [P0], normals=[torch.full((3, 3), float("inf"))])
    _raises(r"features\[1\]: has 3 channels but features\[0\] has 2", [P0, P1], features=[F0, torch.rand(5, 3)])
    _raises(r"features\[0\]: has 2 rows but points\[0\] has 3", [P0], features=[F0[:2]])
    fnan = F0.clone()
    fnan[1, 0] = float("nan")
    _raises(r"features\[0\]: contains 1 NaN/Inf", [P0], features=[fnan])
    _raises(r"features: padded size 2 is smaller than the largest cloud \(3 points\)", [P0],
            features=torch.rand(1, 2, 2))
    _raises(r"lengths: only allowed with padded points", [P0], lengths=[3])
    _raises(r"lengths\[1\]: 6 is outside \[0, 5\]", torch.rand(2, 5, 3), lengths=[1, 6])
    _raises(r"lengths: expected 2 lengths", torch.rand(2, 5, 3), lengths=[1])
    _raises(r"lengths: expected an integer tensor", torch.rand(2, 5, 3), lengths=[1.0, 2.0])
    _raises(r"points\[1\]: dtype torch.float64 differs from points\[0\]", [P0, P1.double()])
    # validate=False skips the value checks only
    nan = PointClouds([bad], validate=False)
    assert not nan.validated
