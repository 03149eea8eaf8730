"""Tests of geomgen.metrics.normal_consistency (0.5 * (mean cos pred->GT + mean cos GT->pred))."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

import geomgen
from geomgen.errors import InvalidInputError
from geomgen.losses import chamfer_distance
from geomgen.metrics.normal_consistency import normal_consistency
from geomgen.structures import Meshes, PointClouds


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    na = np.maximum(np.linalg.norm(a, axis=-1), 1e-6)
    nb = np.maximum(np.linalg.norm(b, axis=-1), 1e-6)
    return (a * b).sum(-1) / (na * nb)


def _naive(pp, pn, gp, gn, use_abs=False):
    """Numpy + cKDTree reference for one pair of clouds."""
    i1 = cKDTree(gp).query(pp, k=1)[1]
    i2 = cKDTree(pp).query(gp, k=1)[1]
    c1, c2 = _cos(pn, gn[i1]), _cos(gn, pn[i2])
    if use_abs:
        c1, c2 = np.abs(c1), np.abs(c2)
    return 0.5 * (c1.mean() + c2.mean())


def _random_batch(seed=0, N=3, P1=50, P2=40):
    g = torch.Generator().manual_seed(seed)
    pp = torch.rand(N, P1, 3, generator=g, dtype=torch.float64)
    gp = torch.rand(N, P2, 3, generator=g, dtype=torch.float64)
    pn = torch.randn(N, P1, 3, generator=g, dtype=torch.float64)
    gn = torch.randn(N, P2, 3, generator=g, dtype=torch.float64)
    return pp, pn, gp, gn


@pytest.mark.parametrize("use_abs", [False, True])
def test_heterogeneous_batch_matches_ckdtree_reference(use_abs):
    pp, pn, gp, gn = _random_batch()
    pl, gl = torch.tensor([50, 7, 1]), torch.tensor([40, 40, 3])
    out = normal_consistency(pp, pn, gp, gn, abs=use_abs, pred_lengths=pl, gt_lengths=gl)
    assert out.shape == (3,) and out.dtype == torch.float64
    for n in range(3):
        a, b = int(pl[n]), int(gl[n])
        ref = _naive(pp[n, :a].numpy(), pn[n, :a].numpy(), gp[n, :b].numpy(), gn[n, :b].numpy(), use_abs)
        assert float(out[n]) == pytest.approx(ref, abs=1e-12)
    # padding content does not matter
    pp2, pn2 = pp.clone(), pn.clone()
    pp2[1, 7:] = 1e3
    pn2[1, 7:] = 0.0
    out2 = normal_consistency(pp2, pn2, gp, gn, abs=use_abs, pred_lengths=pl, gt_lengths=gl)
    torch.testing.assert_close(out, out2)


def test_identical_flipped_and_unnormalised_normals():
    pp, pn, _, _ = _random_batch(1, N=2)
    assert torch.allclose(normal_consistency(pp, pn, pp, pn), torch.ones(2, dtype=torch.float64))
    # flipped normals: signed -1, abs 1
    assert torch.allclose(normal_consistency(pp, pn, pp, -pn), -torch.ones(2, dtype=torch.float64))
    assert torch.allclose(normal_consistency(pp, pn, pp, -pn, abs=True), torch.ones(2, dtype=torch.float64))
    # lengths of the normals do not matter
    scale = torch.rand(2, 50, 1, dtype=torch.float64) * 10 + 0.1
    torch.testing.assert_close(normal_consistency(pp, pn * scale, pp, pn), normal_consistency(pp, pn, pp, pn))


def test_hand_case_and_zero_normal():
    # pred: two points, gt: one point.  pred0 -> gt0 cos 1, pred1 -> gt0 cos 0 (perpendicular);
    # gt0 -> nearest pred (pred0) cos 1.  NC = 0.5 * (0.5 + 1) = 0.75
    pp = torch.tensor([[[0.0, 0, 0], [5.0, 0, 0]]])
    pn = torch.tensor([[[0.0, 0, 1], [1.0, 0, 0]]])
    gp = torch.tensor([[[0.0, 0, 0.1]]])
    gn = torch.tensor([[[0.0, 0, 2]]])
    torch.testing.assert_close(normal_consistency(pp, pn, gp, gn), torch.tensor([0.75]))
    pn_zero = pn.clone()
    pn_zero[0, 0] = 0.0  # a zero normal gives cos 0, not NaN
    torch.testing.assert_close(normal_consistency(pp, pn_zero, gp, gn), torch.tensor([0.0]))


def test_relation_to_chamfer_normal_loss():
    pp, pn, gp, gn = _random_batch(2)
    pn = torch.nn.functional.normalize(pn, dim=-1)
    gn = torch.nn.functional.normalize(gn, dim=-1)
    nc = normal_consistency(pp, pn, gp, gn, abs=True)
    _, loss_n = chamfer_distance(pp, gp, x_normals=pn, y_normals=gn, batch_reduction=None)
    torch.testing.assert_close(loss_n, 2 * (1 - nc))


def test_pointclouds_input_and_gradient():
    pp, pn, gp, gn = _random_batch(3, N=2)
    pn.requires_grad_(True)
    out = normal_consistency(pp, pn, gp, gn)
    out.sum().backward()
    assert pn.grad is not None and torch.isfinite(pn.grad).all() and pn.grad.abs().sum() > 0
    clouds_p = PointClouds(list(pp), normals=list(pn.detach()))
    clouds_g = PointClouds([gp[0], gp[1, :5]], normals=[gn[0], gn[1, :5]])
    got = normal_consistency(clouds_p, None, clouds_g, None)
    ref = normal_consistency(pp, pn.detach(), gp, gn, gt_lengths=torch.tensor([40, 5]))
    torch.testing.assert_close(got, ref)


def test_real_mesh_samples(cgal_data):
    from geomgen.io import load_mesh
    from geomgen.ops import sample_points_from_meshes

    mesh = load_mesh(cgal_data / "meshes" / "elephant.off")
    g = torch.Generator().manual_seed(0)
    p, n = sample_points_from_meshes(mesh, 3000, return_normals=True, generator=g)
    q, m = sample_points_from_meshes(mesh, 2000, return_normals=True, generator=g)
    assert float(normal_consistency(p, n, p, n)) == pytest.approx(1.0, abs=1e-6)
    out = float(normal_consistency(p, n, q, m))
    ref = _naive(p[0].double().numpy(), n[0].double().numpy(), q[0].double().numpy(), m[0].double().numpy())
    assert out == pytest.approx(ref, abs=1e-5)
    assert 0.8 < out < 1.0  # independent samples of one surface: mostly aligned normals


def test_registered_mesh_metric():
    spec = geomgen.get_metric_spec("normal-consistency")
    assert spec.inputs == "meshes" and spec.higher_is_better is True
    v = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    f = torch.tensor([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    tet = Meshes([v, v], [f, f])
    out = geomgen.get_metric("normal-consistency")(tet, tet, num_samples=2000)
    assert out.shape == (2,) and bool((out > 0.9).all())
    flipped = Meshes([v, v], [f, f.flip(1)])
    out = geomgen.get_metric("normal-consistency")(tet, flipped, num_samples=2000)
    assert float(out[1]) < -0.9


@pytest.mark.parametrize("kwargs, name", [
    (dict(pred_normals=None), "'pred_normals'"),
    (dict(gt_normals=torch.zeros(2, 39, 3, dtype=torch.float64)), "'gt_normals'"),
    (dict(gt_normals=torch.zeros(2, 40, 3)), "'gt_normals'"),
    (dict(gt_points=torch.zeros(3, 40, 3, dtype=torch.float64)), "'gt_points'"),
    (dict(pred_points=torch.zeros(2, 50, 3)), "'gt_points'"),
    (dict(pred_lengths=torch.tensor([0, 50])), "'pred_lengths'"),
    (dict(gt_lengths=torch.tensor([40, 41])), "'gt_lengths'"),
    (dict(gt_points=torch.zeros(2, 0, 3, dtype=torch.float64),
          gt_normals=torch.zeros(2, 0, 3, dtype=torch.float64)), "'gt_points'"),
    (dict(pred_points=torch.full((2, 50, 3), float("nan"), dtype=torch.float64)), "'pred_points'"),
    (dict(abs=1), "'abs'"),
])
def test_errors_name_the_argument(kwargs, name):
    pp, pn, gp, gn = _random_batch(4, N=2)
    args = dict(pred_points=pp, pred_normals=pn, gt_points=gp, gt_normals=gn)
    args.update(kwargs)
    extra = {k: args.pop(k) for k in ("abs", "pred_lengths", "gt_lengths") if k in args}
    with pytest.raises(InvalidInputError, match=name) as info:
        normal_consistency(args["pred_points"], args["pred_normals"], args["gt_points"], args["gt_normals"], **extra)
    assert "normal_consistency" in str(info.value)
