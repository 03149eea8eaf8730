"""Tests of the generator contract (geomgen.generative.base), its batch helpers and the toy data."""

from __future__ import annotations

import math

import pytest
import torch

from _generative_dummy import IndependentVoxels, JitterPoints
from geomgen.errors import InvalidInputError
from geomgen.generative import (
    GenerativeTask,
    LikelihoodUnavailableError,
    batch_points,
    batch_voxels,
    downsample_occupancy,
)
from geomgen.structures import PointClouds, Voxels
from geomgen.testing.generative import ToyShapes, check_generator, toy_batch


def test_downsample_occupancy_is_the_volume_fraction_rule():
    g = torch.zeros(1, 4, 4, 4)
    g[0, :2, :2, :2] = 1  # one full coarse cell
    g[0, 2:, 2:, 2:] = 0
    g[0, 2, 2, 2] = 1  # 1/8 of a coarse cell
    g[0, 0:2, 2:4, 0:2] = 1
    g[0, 0, 2, 0] = 0  # 7/8 of a coarse cell
    out = downsample_occupancy(g, 2)
    assert out.shape == (1, 2, 2, 2)
    assert out[0, 0, 0, 0] == 1 and out[0, 1, 1, 1] == 0 and out[0, 0, 1, 0] == 1
    assert downsample_occupancy(g, 2, threshold=0.9)[0, 0, 1, 0] == 0
    assert downsample_occupancy(g, 4).equal(g)
    with pytest.raises(InvalidInputError, match="resolution"):
        downsample_occupancy(g, 3)
    with pytest.raises(InvalidInputError, match="cubic"):
        downsample_occupancy(torch.zeros(1, 4, 4, 2), 2)


def test_batch_points_never_picks_padding_and_is_seeded():
    a = torch.rand(10, 3)
    b = torch.rand(4, 3) + 5
    batch = {"pointclouds": PointClouds([a, b])}
    g = torch.Generator().manual_seed(0)
    p = batch_points(batch, 6, g)
    assert p.shape == (2, 6, 3)
    assert (p[0] < 1).all() and (p[1] >= 5).all()  # the short cloud is resampled among its 4 points
    q = batch_points(batch, 6, torch.Generator().manual_seed(0))
    assert p.equal(q)
    full = batch_points({"pointclouds": PointClouds([a, a + 1])}, 10, torch.Generator().manual_seed(1))
    assert torch.equal(full[0].sort(0).values, a.sort(0).values)  # without replacement: a permutation
    with pytest.raises(InvalidInputError, match="pointclouds"):
        batch_points({"label": torch.zeros(2)}, 4)


def test_toy_shapes_are_boxes_and_spheres_of_the_stated_size():
    ds = ToyShapes(4, resolution=16, num_points=300, seed=3, jitter=0.0)
    box, sphere = ds[0], ds[1]
    assert box["category"] == "box" and sphere["category"] == "sphere" and sphere["label"] == 1
    r = sphere["points"].norm(dim=1)
    assert torch.allclose(r, r[0].expand_as(r), atol=1e-5) and 0.15 <= float(r[0]) <= 0.4
    vol = sphere["voxels"].sum() / 16 ** 3
    assert abs(float(vol) - 4 / 3 * math.pi * float(r[0]) ** 3) < 0.02
    half = box["points"].abs().max(0).values
    assert torch.allclose(box["voxels"].sum() / 16 ** 3, (2 * half).prod(), atol=0.05)
    assert ToyShapes(4, seed=3)[2]["voxels"].equal(ToyShapes(8, seed=3)[2]["voxels"])  # independent of n
    with pytest.raises(InvalidInputError, match="categories"):
        ToyShapes(2, categories=("torus",))


def test_sample_is_seeded_restores_mode_and_rng_and_converts_to_meshes():
    m = IndependentVoxels(8)
    torch.nn.init.normal_(m.logits)
    out = check_generator(m, toy_batch(4, 8, 64))
    s = out["samples"]
    assert isinstance(s, Voxels) and s.resolution == (8, 8, 8)
    torch.testing.assert_close(s.origin[0], torch.full((3,), -0.5))
    meshes = m.to_meshes(s)
    v = torch.cat(meshes.verts_list())
    assert v.min() >= -0.5 - 1e-6 and v.max() <= 0.5 + 1e-6  # closed meshes inside the unit cube
    torch.manual_seed(5)
    a = m.sample(2)
    torch.manual_seed(5)
    assert m.sample(2).grids.equal(a.grids)  # seed=None follows torch's global RNG


def test_conditions_by_name_label_and_tensor():
    m = IndependentVoxels(4, num_classes=2, categories=("box", "sphere"))
    with torch.no_grad():
        m.logits[0] = -20.0
        m.logits[1] = 20.0
    assert m.sample(3, condition="sphere", seed=0).grids.min() == 1
    assert m.sample(3, condition=0, seed=0).grids.max() == 0
    mixed = m.sample(2, condition=torch.tensor([1, 0]), seed=0).grids
    assert mixed[0].min() == 1 and mixed[1].max() == 0
    fresh = IndependentVoxels(4, num_classes=2, categories=("box", "sphere"))
    check_generator(fresh, toy_batch(4, 4, 32))
    for bad, match in [("torus", "unknown category 'torus'; known: box, sphere"), (2, r"\[0, 2\)"),
                       ([0], "1 entries for n=3"), (torch.zeros(3), "integer"), (1.5, "label")]:
        with pytest.raises(InvalidInputError, match=match):
            m.sample(3, condition=bad, seed=0)
    with pytest.raises(InvalidInputError, match="unconditional"):
        IndependentVoxels(4).sample(1, condition=0)
    with pytest.raises(InvalidInputError, match="num_classes"):
        IndependentVoxels(4, num_classes=2, categories=("a",))


def test_likelihood_units_and_errors():
    m = IndependentVoxels(4)
    x = toy_batch(2, 8, 16)["voxels"]  # resampled from 8 to 4
    ll = m.log_prob(x)
    torch.testing.assert_close(ll, torch.full((2,), -64 * math.log(2.0)))  # logits 0: 1 bit per voxel
    torch.testing.assert_close(m.elbo(x), ll)  # exact models: the bound is tight
    torch.testing.assert_close(m.bits_per_voxel(x), torch.ones(2))
    with pytest.raises(InvalidInputError, match="multiple of R=4"):
        m.log_prob(torch.zeros(1, 6, 6, 6))
    with pytest.raises(InvalidInputError, match="NaN"):
        m.log_prob(torch.full((1, 4, 4, 4), float("nan")))
    p = JitterPoints(32)
    with pytest.raises(LikelihoodUnavailableError, match="no(t| ) .*likelihood|implicit"):
        p.log_prob(torch.zeros(1, 32, 3))
    with pytest.raises(LikelihoodUnavailableError, match="MMD"):
        p.elbo(torch.zeros(1, 32, 3))
    with pytest.raises(InvalidInputError, match=">= 1"):
        m.sample(0)
    with pytest.raises(InvalidInputError, match="seed"):
        m.sample(1, seed=-1)


def test_point_generator_contract_and_meshes():
    m = JitterPoints(400)
    with torch.no_grad():
        m.log_radius.fill_(math.log(0.3))
    out = check_generator(m, toy_batch(4, 8, 64))
    meshes = m.to_meshes(m.sample(2, seed=0))
    assert len(meshes) == 2 and all(f.shape[0] > 0 for f in meshes.faces_list())


def test_task_delegates_to_the_model():
    m = IndependentVoxels(4)
    batch = toy_batch(4, 8, 16)
    task = GenerativeTask()
    assert task.configure_optimizers(m, None) is None
    out = task.training_step(m, batch, 0)
    assert set(out) == {"loss", "bits_per_voxel"}
    metrics = task.validation_step(m, batch)
    torch.testing.assert_close(metrics["bits_per_voxel"], torch.tensor(1.0))
    torch.testing.assert_close(metrics["nll"], torch.tensor(64 * math.log(2.0)))
    assert batch_voxels(batch, 4).shape == (4, 1, 4, 4, 4)


def test_batch_labels_of_checks_conditional_batches():
    uncond = IndependentVoxels(resolution=4)
    assert uncond.batch_labels_of({"label": torch.tensor([5, 7])}) is None  # ignored: unconditional
    cond = IndependentVoxels(resolution=4, num_classes=3)
    assert cond.batch_labels_of({"label": [0, 2]}, 2).tolist() == [0, 2]
    with pytest.raises(InvalidInputError, match="needs the batch's 'label'"):
        cond.batch_labels_of({"voxels": torch.zeros(2, 4, 4, 4)}, 2)
    with pytest.raises(InvalidInputError, match=r"\(3,\) integers in \[0, 3\)"):
        cond.batch_labels_of({"label": torch.tensor([0, 1])}, 3)
    with pytest.raises(InvalidInputError, match=r"in \[0, 3\)"):
        cond.batch_labels_of({"label": torch.tensor([0, 3])})
    with pytest.raises(InvalidInputError, match="IndependentVoxels.compute_loss"):
        cond.compute_loss({"voxels": Voxels(torch.zeros(2, 4, 4, 4))})
