"""Tests of geomgen.ops.points_to_voxels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geomgen.errors import InvalidInputError
from geomgen.ops.points_to_voxels import points_to_voxels
from geomgen.structures import PointClouds, Voxels


def brute_force(points, lengths, origin, vs, res, clamp):
    """Per-voxel lists of point indices, by a plain Python loop."""
    D, H, W = res
    N = points.shape[0]
    cells = {}
    for n in range(N):
        for p in range(int(lengths[n])):
            g = (points[n, p].double() - origin[n]) / vs[n]
            dims = torch.tensor([W, H, D], dtype=torch.float64)
            if not clamp and (bool((g < 0).any()) or bool((g > dims).any())):
                continue
            i, j, k = (min(max(int(np.floor(float(g[a]))), 0), int(dims[a]) - 1) for a in range(3))
            cells.setdefault((n, k, j, i), []).append(p)
    return cells


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_occupancy_and_counts_match_brute_force(backend):
    gen = torch.Generator().manual_seed(0)
    N, P = 3, 400
    pts = torch.rand(N, P, 3, generator=gen, dtype=torch.float64) * 3 - 0.5  # some outside the grid
    lengths = torch.tensor([400, 123, 0])
    pts[1, 123:] = float("nan")  # padding is ignored, whatever it holds
    origin = torch.tensor([0.0, -0.5, 0.25], dtype=torch.float64)
    vs = torch.tensor([0.5, 0.25, 0.4], dtype=torch.float64)
    res = (4, 6, 5)
    vox, counts = points_to_voxels(pts, res, vs, origin=origin, lengths=lengths, reduction="count", backend=backend)
    assert isinstance(vox, Voxels) and vox.resolution == res and counts.shape == (N, 1, *res)
    torch.testing.assert_close(vox.origin, origin.expand(N, 3))
    torch.testing.assert_close(vox.voxel_size, vs.expand(N, 3))
    cells = brute_force(pts, lengths, origin.expand(N, 3), vs.expand(N, 3), res, clamp=False)
    want = torch.zeros(N, *res, dtype=torch.float64)
    for key, idx in cells.items():
        want[key] = len(idx)
    torch.testing.assert_close(counts[:, 0], want)
    torch.testing.assert_close(vox.grids, (want > 0).double())
    assert want.sum() > 50 and want.sum() < 400 + 123  # some dropped
    assert vox.grids[2].sum() == 0  # empty cloud -> empty grid


def test_points_on_grid_faces():
    origin = torch.zeros(3)
    pts = torch.tensor([[0.0, 0, 0], [2.0, 2.0, 2.0], [1.0, 1.0, 1.0], [2.0 + 1e-3, 1, 1], [-1e-3, 1, 1]])
    vox, counts = points_to_voxels(pts, 2, 1.0, origin=origin, reduction="count")
    c = counts[0, 0]
    assert c[0, 0, 0] == 1  # min corner: first voxel
    assert c[1, 1, 1] == 2  # max corner (closed box) and the point at (1, 1, 1)
    assert c.sum() == 3  # the two points outside are dropped


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_fitted_grid_keeps_every_point(backend):
    gen = torch.Generator().manual_seed(1)
    pts = torch.rand(2, 1000, 3, generator=gen) * torch.tensor([3.0, 1.0, 2.0])
    vox, counts = points_to_voxels(pts, 8, reduction="count", backend=backend)
    assert counts.sum(dim=(1, 2, 3, 4)).tolist() == [1000.0, 1000.0]
    # isotropic voxel, longest side (x = 3) spans 8 voxels, box centred
    torch.testing.assert_close(vox.voxel_size[:, 0], vox.voxel_size[:, 2])
    lo, hi = pts.amin(1), pts.amax(1)
    torch.testing.assert_close(vox.get_bounding_boxes().mean(-1), (lo + hi) / 2)
    vox2, counts2 = points_to_voxels(pts, voxel_size=0.5, padding=1, reduction="count", backend=backend)
    assert counts2.sum() == 2000 and vox2.resolution == (6, 4, 8)  # floor(ext / 0.5 + 2) + 1


def test_backends_agree_and_pointclouds_input():
    gen = torch.Generator().manual_seed(2)
    clouds = [torch.randn(300, 3, generator=gen), torch.randn(50, 3, generator=gen) * 3]
    pc = PointClouds(clouds)
    a = points_to_voxels(pc, 16, backend="numba")
    b = points_to_voxels(pc.points_padded(), 16, lengths=pc.num_points_per_cloud(), backend="torch")
    assert torch.equal(a.grids, b.grids) and a.grids.dtype == torch.float32
    torch.testing.assert_close(a.origin, b.origin)
    one = points_to_voxels(clouds[1], 16)  # (P, 3) is a batch of one
    assert torch.equal(one.grids[0], a.grids[1])


@pytest.mark.parametrize("reduction", ["mean", "sum", "max"])
def test_feature_reductions_match_brute_force(reduction):
    gen = torch.Generator().manual_seed(3)
    N, P, C = 2, 300, 4
    pts = torch.rand(N, P, 3, generator=gen, dtype=torch.float64)
    feats = torch.randn(N, P, C, generator=gen, dtype=torch.float64)
    lengths = torch.tensor([300, 200])
    bounds = torch.tensor([[0.0, 1.0]] * 3, dtype=torch.float64)
    vox, vals = points_to_voxels(pts, (3, 4, 5), bounds=bounds, lengths=lengths, features=feats, reduction=reduction)
    assert vals.shape == (N, C, 3, 4, 5)
    cells = brute_force(pts, lengths, vox.origin, vox.voxel_size, (3, 4, 5), clamp=False)
    want = torch.zeros(N, C, 3, 4, 5, dtype=torch.float64)
    for (n, k, j, i), idx in cells.items():
        f = feats[n, idx]
        want[n, :, k, j, i] = {"mean": f.mean(0), "sum": f.sum(0), "max": f.amax(0)}[reduction]
    torch.testing.assert_close(vals, want)
    torch.testing.assert_close(vox.grids, (want.abs().sum(1) > 0).double())


@pytest.mark.parametrize("backend, reduction", [
    ("auto", "mean"), ("auto", "sum"), ("auto", "max"), ("torch", "mean"), ("torch", "sum"),
])
def test_gradcheck_features(backend, reduction):
    gen = torch.Generator().manual_seed(4)
    pts = torch.rand(2, 40, 3, generator=gen, dtype=torch.float64) * 1.2 - 0.1  # some dropped
    feats = torch.randn(2, 40, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([40, 25])

    def f(x):
        return points_to_voxels(
            pts, 3, bounds=torch.tensor([[0.0, 1]] * 3), lengths=lengths, features=x, reduction=reduction,
            backend=backend,
        )[1]

    assert torch.autograd.gradcheck(f, (feats,), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_feature_backends_agree(reduction):
    gen = torch.Generator().manual_seed(6)
    pts = torch.randn(2, 3000, 3, generator=gen)
    feats = torch.randn(2, 3000, 5, generator=gen, requires_grad=True)
    lengths = torch.tensor([3000, 1700])
    out = {}
    for backend in ("numba", "torch"):
        vox, vals = points_to_voxels(pts, (6, 7, 8), lengths=lengths, features=feats, reduction=reduction,
                                     backend=backend)
        (g,) = torch.autograd.grad((vals * torch.arange(vals.numel()).view_as(vals).sin()).sum(), feats)
        out[backend] = vox.grids, vals, g
    a, b = out["numba"], out["torch"]
    assert torch.equal(a[0], b[0])
    torch.testing.assert_close(a[1], b[1])
    torch.testing.assert_close(a[2], b[2])
    assert a[2][1, 1700:].abs().sum() == 0  # padding gets no gradient


def test_float16_points_and_features():
    pts = torch.rand(1, 50, 3).half()
    vox, vals = points_to_voxels(pts, 4, features=torch.rand(1, 50, 2).half())
    assert vox.grids.dtype == torch.float16 and vals.dtype == torch.float16
    assert torch.equal(points_to_voxels(pts, 4).grids, vox.grids)


@pytest.mark.parametrize(
    "args, kwargs, words",
    [
        (("pts",), {"resolution": 4, "reduction": "median"}, ["'reduction'"]),
        (("pts",), {"resolution": 4, "backend": "cuda"}, ["'backend'"]),
        ((torch.rand(2, 5, 2),), {"resolution": 4}, ["'points'"]),
        ((torch.ones(2, 5, 3, dtype=torch.int64),), {"resolution": 4}, ["'points'", "floating"]),
        ((torch.zeros(0, 5, 3),), {"resolution": 4}, ["'points'", "empty"]),
        ((torch.tensor([[[0.0, 0, 0], [float("inf"), 0, 0]]]),), {"resolution": 4}, ["'points'", "finite"]),
        (("pts",), {"resolution": 4, "lengths": torch.tensor([6])}, ["'lengths'"]),
        (("pts",), {"resolution": 4, "features": torch.rand(1, 4, 2)}, ["'features'"]),
        (("pts",), {"resolution": 4, "features": torch.rand(1, 5, 2), "reduction": "count"}, ["'features'"]),
        (("pts",), {"resolution": 4, "features": torch.tensor([[[float("nan")]] * 5])}, ["'features'", "finite"]),
        (("pts",), {"resolution": 4, "features": torch.rand(1, 5, 2), "reduction": "max", "backend": "numba"},
         ["'backend'"]),
        (("pts",), {"resolution": 4, "origin": torch.zeros(3)}, ["'origin'"]),
        (("pts",), {"resolution": 4, "voxel_size": 0.1, "origin": torch.zeros(3),
                    "bounds": torch.tensor([[0.0, 1]] * 3)}, ["'origin'", "'bounds'"]),
        (("pts",), {"resolution": 4, "voxel_size": 0.1}, ["'resolution'", "both"]),
        (("pts",), {}, ["'resolution'", "neither"]),
        (("pts",), {"voxel_size": 0.0}, ["'voxel_size'"]),
        (("pts",), {"resolution": 4, "padding": 2}, ["'padding'"]),
        (("pts",), {"resolution": 4, "voxel_size": 1.0, "origin": torch.zeros(3), "padding": 1}, ["'padding'"]),
        (("pts",), {"resolution": 4, "bounds": torch.tensor([[1.0, 0]] * 3)}, ["'bounds'"]),
        (("pts",), {"resolution": 4, "lengths": torch.tensor([0])}, ["'points'", "cloud 0", "empty"]),
        ((torch.ones(1, 5, 3),), {"resolution": 4}, ["'resolution'", "cloud 0", "zero extent"]),
        (("pts",), {"resolution": 4, "voxel_size": 1e-9, "origin": torch.zeros(3)}, []),  # fine: explicit
        (("pts",), {"resolution": 5000, "voxel_size": 1.0, "origin": torch.zeros(3)}, ["'resolution'", "limit"]),
    ],
)
def test_validation_errors(args, kwargs, words):
    pts = torch.rand(1, 5, 3)
    args = tuple(pts if a == "pts" else a for a in args)
    if not words:
        points_to_voxels(*args, **kwargs)
        return
    with pytest.raises(InvalidInputError) as info:
        points_to_voxels(*args, **kwargs)
    msg = str(info.value)
    assert "points_to_voxels" in msg
    for w in words:
        assert w in msg, msg


def test_agrees_with_open3d_occupancy():
    o3d = pytest.importorskip("open3d")
    gen = torch.Generator().manual_seed(5)
    pts = torch.rand(20000, 3, generator=gen, dtype=torch.float64) * torch.tensor([2.0, 1.0, 1.5])
    vs = 0.05
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts.numpy()))
    vg = o3d.geometry.VoxelGrid.create_from_point_cloud(pcd, vs)
    idx = np.array([v.grid_index for v in vg.get_voxels()])
    origin = torch.tensor(np.asarray(vg.origin))
    res = tuple(int(r) for r in (idx.max(0) + 1)[::-1])
    vox = points_to_voxels(pts, res, vs, origin=origin)
    ours = set(map(tuple, vox.grids[0].nonzero().numpy()[:, ::-1].tolist()))
    assert ours == set(map(tuple, idx.tolist()))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    pts = torch.rand(2, 500, 3)
    feats = torch.rand(2, 500, 3)
    a, fa = points_to_voxels(pts, 8, features=feats)
    b, fb = points_to_voxels(pts.cuda(), 8, features=feats.cuda())
    assert torch.equal(a.grids, b.grids.cpu())
    torch.testing.assert_close(fa, fb.cpu())
