"""Tests of geomgen.metrics.compare_meshes / compare_point_clouds (Mesh R-CNN's protocol)."""

from __future__ import annotations


import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

import geomgen
from geomgen.errors import InvalidInputError
from geomgen.metrics import f1_score
from geomgen.metrics.compare_meshes import compare_meshes, compare_point_clouds
from geomgen.ops import sample_points_from_meshes
from geomgen.structures import Meshes

TS = (0.1, 0.2, 0.3, 0.4, 0.5)
KEYS = ["Chamfer-L2", "NormalConsistency", "AbsNormalConsistency"] + [
    f"{k}@{t}" for t in TS for k in ("Precision", "Recall", "F1")
]


def _naive(pp, pn, gp, gn, ts=TS, eps=1e-8):
    """Numpy + cKDTree reference of the protocol for one pair of clouds."""
    d1, i1 = cKDTree(gp).query(pp, k=1)
    d2, i2 = cKDTree(pp).query(gp, k=1)

    def cos(a, b):
        return (a * b).sum(-1) / (np.maximum(np.linalg.norm(a, axis=-1), 1e-6)
                                  * np.maximum(np.linalg.norm(b, axis=-1), 1e-6))

    c1, c2 = cos(pn, gn[i1]), cos(gn, pn[i2])
    out = {
        "Chamfer-L2": (d1**2).mean() + (d2**2).mean(),
        "NormalConsistency": 0.5 * (c1.mean() + c2.mean()),
        "AbsNormalConsistency": 0.5 * (np.abs(c1).mean() + np.abs(c2).mean()),
    }
    for t in ts:
        p, r = 100.0 * (d1 < t).mean(), 100.0 * (d2 < t).mean()
        out[f"Precision@{t}"], out[f"Recall@{t}"], out[f"F1@{t}"] = p, r, 2 * p * r / (p + r + eps)
    return out


def _cube(size=1.0, offset=(0.0, 0.0, 0.0), dtype=torch.float32):
    v = torch.tensor([[x, y, z] for z in (0, 1) for y in (0, 1) for x in (0, 1)], dtype=dtype) * size
    f = torch.tensor([[0, 2, 1], [1, 2, 3], [4, 5, 6], [5, 7, 6], [0, 1, 4], [1, 5, 4],
                      [2, 6, 3], [3, 6, 7], [0, 4, 2], [2, 4, 6], [1, 3, 5], [3, 7, 5]])
    return v + torch.tensor(offset, dtype=dtype), f


def _square(z=0.0, dtype=torch.float64):
    v = torch.tensor([[0, 0, z], [1, 0, z], [1, 1, z], [0, 1, z]], dtype=dtype)
    return v, torch.tensor([[0, 1, 2], [0, 2, 3]])


# ----------------------------------------------------------------------------- point clouds


def test_point_clouds_match_ckdtree_reference_heterogeneous():
    g = torch.Generator().manual_seed(0)
    N, P1, P2 = 3, 300, 250
    pp = torch.rand(N, P1, 3, generator=g, dtype=torch.float64)
    gp = torch.rand(N, P2, 3, generator=g, dtype=torch.float64)
    pn = torch.randn(N, P1, 3, generator=g, dtype=torch.float64)
    gn = torch.randn(N, P2, 3, generator=g, dtype=torch.float64)
    pl, gl = torch.tensor([300, 31, 1]), torch.tensor([250, 250, 17])
    ts = (0.02, 0.05, 0.1, 0.3)
    out = compare_point_clouds(pp, pn, gp, gn, ts, pred_lengths=pl, gt_lengths=gl, reduce=False)
    keys = ["Chamfer-L2", "NormalConsistency", "AbsNormalConsistency"] + [
        f"{k}@{t}" for t in ts for k in ("Precision", "Recall", "F1")]
    assert list(out) == keys
    for n in range(N):
        a, b = int(pl[n]), int(gl[n])
        ref = _naive(pp[n, :a].numpy(), pn[n, :a].numpy(), gp[n, :b].numpy(), gn[n, :b].numpy(), ts)
        for k in keys:
            assert out[k].shape == (N,) and out[k].dtype == torch.float64
            assert float(out[k][n]) == pytest.approx(ref[k], rel=1e-12, abs=1e-12), (k, n)
    red = compare_point_clouds(pp, pn, gp, gn, ts, pred_lengths=pl, gt_lengths=gl)
    assert list(red) == keys and all(isinstance(v, float) for v in red.values())
    for k in keys:
        assert red[k] == pytest.approx(float(out[k].mean()), rel=1e-12)


def test_hand_case_known_distances_and_strict_threshold():
    # pred -> gt distances 0.25, 0.5, 3 ; gt -> pred distances 0.25, 0.5 (all exact in binary)
    pred = torch.tensor([[[0.0, 0, 0], [2, 0, 0], [10, 0, 0]]], dtype=torch.float64)
    gt = torch.tensor([[[0.0, 0, 0.25], [2, 0.5, 0]]], dtype=torch.float64)
    pn = torch.tensor([[[0.0, 0, 1], [0, 0, 1], [0, 0, 1]]], dtype=torch.float64)
    gn = torch.tensor([[[0.0, 0, 1], [0, 0, -1]]], dtype=torch.float64)
    # 10,0,0 -> nearest gt is (2, 0.5, 0): sqrt(64 + 0.25)
    out = compare_point_clouds(pred, pn, gt, gn, (0.25, 0.5, 0.75), reduce=False)
    cham = (0.0625 + 0.25 + 64.25) / 3 + (0.0625 + 0.25) / 2
    assert float(out["Chamfer-L2"]) == pytest.approx(cham, rel=1e-15)
    # cos pred->gt: 1, -1, -1 ; gt->pred: 1, -1
    assert float(out["NormalConsistency"]) == pytest.approx(0.5 * (-1 / 3 + 0.0))
    assert float(out["AbsNormalConsistency"]) == pytest.approx(1.0)
    assert float(out["Precision@0.25"]) == 0.0 and float(out["Recall@0.25"]) == 0.0  # strict <
    assert float(out["Precision@0.5"]) == pytest.approx(100 / 3) and float(out["Recall@0.5"]) == 50.0
    assert float(out["Precision@0.75"]) == pytest.approx(200 / 3) and float(out["Recall@0.75"]) == 100.0
    assert float(out["F1@0.75"]) == pytest.approx(2 * (200 / 3) * 100 / (200 / 3 + 100 + 1e-8))
    assert float(out["F1@0.25"]) == 0.0  # 0 / (0 + eps), not NaN


def test_agrees_with_f1_score_and_chamfer_distance():
    from geomgen.losses import chamfer_distance

    g = torch.Generator().manual_seed(1)
    pp, gp = torch.rand(2, 200, 3, generator=g), torch.rand(2, 150, 3, generator=g)
    out = compare_point_clouds(pp, None, gp, None, (0.05, 0.1), reduce=False)
    assert "NormalConsistency" not in out  # no normals, no normal keys
    f1 = f1_score(pp, gp, (0.05, 0.1))
    for k, v in f1.items():
        torch.testing.assert_close(out[k], v)
    torch.testing.assert_close(out["Chamfer-L2"], chamfer_distance(pp, gp, batch_reduction=None)[0])


def test_against_pytorch3d_ops_on_the_same_samples(cgal_data):
    """An independent computation with PyTorch3D's knn_points / knn_gather on our samples."""
    pytest.importorskip("pytorch3d")
    import torch.nn.functional as F
    from pytorch3d.ops import knn_gather as p3_gather
    from pytorch3d.ops import knn_points as p3_knn

    from geomgen.io import load_mesh

    mesh = load_mesh(cgal_data / "meshes" / "elephant.off")
    g = torch.Generator().manual_seed(3)
    pp, pn = sample_points_from_meshes(mesh, 3000, return_normals=True, generator=g)
    gp, gn = sample_points_from_meshes(mesh.offset_verts(torch.randn(mesh.verts_packed().shape, generator=g) * 3e-3),
                                       2500, return_normals=True, generator=g)
    edge = float((mesh.verts_packed().amax(0) - mesh.verts_packed().amin(0)).max())
    pp, gp = pp * (10 / edge), gp * (10 / edge)
    ours = compare_point_clouds(pp, pn, gp, gn, TS, reduce=False)

    k1, k2 = p3_knn(pp, gp, K=1), p3_knn(gp, pp, K=1)
    d1, d2 = k1.dists[..., 0], k2.dists[..., 0]
    c1 = F.cosine_similarity(pn, p3_gather(gn, k1.idx)[..., 0, :], dim=-1)
    c2 = F.cosine_similarity(gn, p3_gather(pn, k2.idx)[..., 0, :], dim=-1)
    ref = {"Chamfer-L2": d1.mean(1) + d2.mean(1), "NormalConsistency": 0.5 * (c1.mean(1) + c2.mean(1)),
           "AbsNormalConsistency": 0.5 * (c1.abs().mean(1) + c2.abs().mean(1))}
    for t in TS:
        p = 100.0 * (d1.sqrt() < t).float().mean(1)
        r = 100.0 * (d2.sqrt() < t).float().mean(1)
        ref[f"Precision@{t}"], ref[f"Recall@{t}"], ref[f"F1@{t}"] = p, r, 2 * p * r / (p + r + 1e-8)
    assert list(ours) == KEYS
    for k in KEYS:
        torch.testing.assert_close(ours[k], ref[k], rtol=1e-4, atol=1e-4, msg=k)


# ----------------------------------------------------------------------------- meshes


def test_identical_meshes(cgal_data):
    from geomgen.io import load_mesh

    sphere = load_mesh(cgal_data / "meshes" / "sphere.off")
    out = compare_meshes(sphere, sphere, 3000, generator=torch.Generator().manual_seed(0))
    assert list(out) == KEYS and all(isinstance(v, float) for v in out.values())
    assert 0 < out["Chamfer-L2"] < 0.1  # independent samples: small, not 0
    assert out["F1@0.5"] > 99.5 and out["F1@0.3"] > 85.0  # 3000 samples on a 10-wide sphere
    assert out["NormalConsistency"] > 0.97 and out["AbsNormalConsistency"] >= out["NormalConsistency"]


def test_scaled_copy_scale_invariance_and_targets():
    v, f = _cube(dtype=torch.float64)
    gt = Meshes([v], [f])
    pred = Meshes([(v - 0.5) * 1.2 + 0.5], [f])  # 20% larger about the centre

    def run(p, g, **kw):
        return compare_meshes(p, g, 1500, generator=torch.Generator().manual_seed(5), reduce=False, **kw)

    base = run(pred, gt)
    # the gt-10 protocol is invariant to a common scale of both meshes...
    big = run(pred.scale_verts(7.0), gt.scale_verts(7.0))
    for k in KEYS:
        torch.testing.assert_close(big[k], base[k], rtol=1e-9, atol=1e-9, msg=k)
    # ...and equals scale=None on meshes pre-scaled to a longest edge of 10
    pre = run(pred.scale_verts(10.0), gt.scale_verts(10.0), scale=None)
    for k in KEYS:
        torch.testing.assert_close(pre[k], base[k], rtol=1e-9, atol=1e-9, msg=k)
    # float target and "gt-<x>": Chamfer is squared, so it scales by (10 / 2) ** 2
    two = run(pred, gt, scale=2.0, thresholds=())
    assert list(two) == KEYS[:3]
    torch.testing.assert_close(run(pred, gt, scale="gt-2", thresholds=())["Chamfer-L2"], two["Chamfer-L2"])
    torch.testing.assert_close(base["Chamfer-L2"], two["Chamfer-L2"] * 25, rtol=1e-9, atol=0)
    # faces 0.1 apart in the unit cube -> 1.0 at gt-10: nothing pred is within 0.5 of gt
    assert float(base["Precision@0.5"]) == 0.0 and float(base["Chamfer-L2"]) > 1.0
    assert float(base["AbsNormalConsistency"]) > 0.9  # parallel faces


def test_offset_planes_known_distance():
    """Two parallel unit squares h = 0.25 apart: every NN distance is >= h."""
    h = 0.25
    v0, f = _square(0.0)
    v1, _ = _square(h)
    out = compare_meshes(Meshes([v1], [f]), Meshes([v0], [f]), 3000, scale=None, thresholds=(h, h + 0.05),
                         generator=torch.Generator().manual_seed(0))
    assert out["Precision@0.25"] == 0.0 and out["Recall@0.25"] == 0.0  # strict <
    assert out["F1@0.3"] > 99.9
    assert 2 * h * h <= out["Chamfer-L2"] < 2 * h * h + 2e-3
    assert out["NormalConsistency"] == pytest.approx(1.0, abs=1e-12)


def test_batch_equals_per_pair_on_the_same_samples(cgal_data):
    from geomgen.io import load_mesh

    meshes = [load_mesh(cgal_data / "meshes" / name) for name in ("elephant.off", "sphere.off", "tetrahedron.off")]
    verts = [m.verts_list()[0] for m in meshes]
    faces = [m.faces_list()[0] for m in meshes]
    gt = Meshes(verts, faces)
    pred = Meshes([v * 1.05 + 0.01 for v in verts[1:] + verts[:1]], faces[1:] + faces[:1])  # mismatched pairs
    out = compare_meshes(pred, gt, 1500, generator=torch.Generator().manual_seed(1), reduce=False)
    # redo the protocol by hand with the same generator stream
    g = torch.Generator().manual_seed(1)
    pp, pn = sample_points_from_meshes(pred, 1500, return_normals=True, generator=g)
    gp, gn = sample_points_from_meshes(gt, 1500, return_normals=True, generator=g)
    for n in range(3):
        s = 10.0 / float((verts[n].amax(0) - verts[n].amin(0)).max())
        ref = _naive((pp[n] * s).double().numpy(), pn[n].double().numpy(),
                     (gp[n] * s).double().numpy(), gn[n].double().numpy())
        for k in KEYS:
            assert float(out[k][n]) == pytest.approx(ref[k], rel=2e-5, abs=2e-5), (k, n)
    red = compare_meshes(pred, gt, 1500, generator=torch.Generator().manual_seed(1))
    for k in KEYS:
        assert red[k] == pytest.approx(float(out[k].mean()), rel=1e-6)


def test_real_perturbed_mesh_invariants(cgal_data):
    from geomgen.io import load_mesh

    gt = load_mesh(cgal_data / "meshes" / "elephant.off")
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(gt.verts_packed().shape, generator=g) * 0.01
    pred = gt.offset_verts(noise)
    out = compare_meshes(pred, gt, 2000, generator=g)
    f1s = [out[f"F1@{t}"] for t in TS]
    assert f1s == sorted(f1s) and 0 < f1s[0] <= f1s[-1] <= 100
    for t in TS:
        assert 0 <= out[f"Precision@{t}"] <= 100 and 0 <= out[f"Recall@{t}"] <= 100
    assert -1 <= out["NormalConsistency"] <= out["AbsNormalConsistency"] <= 1
    assert out["Chamfer-L2"] > 0


def test_mixed_dtypes_promote():
    v, f = _cube()
    out = compare_meshes(Meshes([v], [f]), Meshes([v.double()], [f]), 500, reduce=False,
                         generator=torch.Generator().manual_seed(0))
    assert out["Chamfer-L2"].dtype == torch.float64


@pytest.mark.parametrize("call, name", [
    (lambda p, g: compare_meshes(p.verts_packed(), g), "'pred'"),
    (lambda p, g: compare_meshes(p, Meshes([torch.zeros(3, 3)] * 2, [torch.tensor([[0, 1, 2]])] * 2)), "'gt'"),
    (lambda p, g: compare_meshes(p, Meshes([torch.rand(3, 3)], [torch.zeros(0, 3, dtype=torch.long)])), "'gt'"),
    (lambda p, g: compare_meshes(Meshes([], []), Meshes([], [])), "'pred'"),
    (lambda p, g: compare_meshes(p, g, num_samples=0), "'num_samples'"),
    (lambda p, g: compare_meshes(p, g, scale="gt-x"), "'scale'"),
    (lambda p, g: compare_meshes(p, g, scale=-1.0), "'scale'"),
    (lambda p, g: compare_meshes(p, g, scale=True), "'scale'"),
    (lambda p, g: compare_meshes(p, g, thresholds=(0.1, -0.2)), "'thresholds'"),
    (lambda p, g: compare_meshes(p, g, thresholds=(0.1, 0.1)), "'thresholds'"),
    (lambda p, g: compare_meshes(p, g, thresholds=0.1), "'thresholds'"),
    (lambda p, g: compare_meshes(p, g, eps=-1.0), "'eps'"),
    (lambda p, g: compare_meshes(p, g, reduce=1), "'reduce'"),
])
def test_compare_meshes_errors_name_the_argument(call, name):
    v, f = _cube()
    with pytest.raises(InvalidInputError, match=name) as info:
        call(Meshes([v], [f]), Meshes([v], [f]))
    assert "compare_meshes" in str(info.value)


def test_zero_area_mesh_names_gt_and_index():
    v, f = _cube()
    flat = Meshes([v, torch.zeros(3, 3)], [f, torch.tensor([[0, 1, 2]])])
    with pytest.raises(InvalidInputError, match="'gt' contains mesh 1"):
        compare_meshes(Meshes([v, v], [f, f]), flat, 100)


def test_compare_point_clouds_errors():
    p = torch.rand(1, 5, 3)
    n = torch.rand(1, 5, 3)
    with pytest.raises(InvalidInputError, match="'gt_normals'"):
        compare_point_clouds(p, n, p, None)
    with pytest.raises(InvalidInputError, match="'pred_lengths'"):
        compare_point_clouds(p, n, p, n, pred_lengths=torch.tensor([0]))
    with pytest.raises(InvalidInputError, match="'thresholds'"):
        compare_point_clouds(p, n, p, n, "0.1")


def test_registered_mesh_metric():
    """The plugin's "compare-meshes": meshes as given (scale=None), (N,) tensors, seeded."""
    spec = geomgen.get_metric_spec("compare-meshes")
    assert spec.inputs == "meshes"
    v, f = _cube(1.0)
    cube = Meshes([v, v], [f, f])
    metric = geomgen.get_metric("compare-meshes")
    out = metric(cube, cube, num_samples=1000)
    assert list(out) == KEYS and out["F1@0.5"].shape == (2,)
    assert bool((out["F1@0.5"] > 99).all())  # unit cube, not scaled to 10
    again = metric(cube, cube, num_samples=1000)
    for k in KEYS:  # reproducible without a generator (seed 0)
        torch.testing.assert_close(out[k], again[k])
    assert metric(cube, cube, num_samples=1000, scale="gt-10", reduce=True)["F1@0.5"] < 99


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("t", [0.1, 0.2, 0.3, 0.5, 1e-3, 0.0141421356, 7.0, 1e30])
def test_squared_bound_counts_like_sqrt(dtype, t):
    """Hits are counted on squared distances with an exact bound: same as sqrt(d) < t, bit for bit."""
    from geomgen.metrics.compare_meshes import _squared_bound

    center = torch.tensor(t * t, dtype=dtype)
    if not torch.isfinite(center):
        center = torch.tensor(torch.finfo(dtype).max, dtype=dtype)
    # every representable value within 2000 ulps of t * t, plus 0, tiny and huge values
    vals = [center]
    up, down = center.clone(), center.clone()
    for _ in range(2000):
        up = torch.nextafter(up, torch.tensor(float("inf"), dtype=dtype))
        down = torch.nextafter(down, torch.tensor(0.0, dtype=dtype))
        vals += [up, down]
    d = torch.stack(vals + [torch.tensor(v, dtype=dtype) for v in (0.0, 1e-30, 1e30)])
    d = d[torch.isfinite(d)]
    b = _squared_bound(t, d)
    assert torch.equal(d < b, d.sqrt() < t)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    g = torch.Generator().manual_seed(7)
    pp, gp = torch.rand(2, 500, 3, generator=g), torch.rand(2, 400, 3, generator=g)
    pn, gn = torch.randn(2, 500, 3, generator=g), torch.randn(2, 400, 3, generator=g)
    cpu = compare_point_clouds(pp, pn, gp, gn, (0.02, 0.05), reduce=False)
    dev = compare_point_clouds(pp.cuda(), pn.cuda(), gp.cuda(), gn.cuda(), (0.02, 0.05), reduce=False)
    for k in cpu:
        assert dev[k].device.type == "cuda"
        torch.testing.assert_close(dev[k].cpu(), cpu[k], rtol=1e-5, atol=1e-5, msg=k)
    v, f = _cube()
    out = compare_meshes(Meshes([v.cuda()], [f.cuda()]), Meshes([v.cuda()], [f.cuda()]), 2000)
    assert out["F1@0.5"] > 90
