"""Tests of geomgen.metrics.iou.voxel_iou (inside = value >= threshold, fraction, empty∪empty = 1)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import geomgen
from geomgen.errors import InvalidInputError
from geomgen.metrics.iou import voxel_iou
from geomgen.structures import Voxels


def _naive(pred: np.ndarray, gt: np.ndarray, thr: float = 0.5) -> np.ndarray:
    out = []
    for p, g in zip(pred, gt):
        a, b = p >= thr, g >= thr
        inter, union = np.logical_and(a, b).sum(), np.logical_or(a, b).sum()
        out.append(1.0 if union == 0 else inter / union)
    return np.array(out)


def test_random_batch_matches_naive_reference():
    g = torch.Generator().manual_seed(0)
    pred = torch.rand(5, 7, 6, 9, generator=g, dtype=torch.float64)
    gt = torch.rand(5, 7, 6, 9, generator=g, dtype=torch.float64)
    for thr in (None, 0.3, 0.9):
        out = voxel_iou(pred, gt, thr)
        assert out.shape == (5,) and out.dtype == torch.float64
        ref = _naive(pred.numpy(), gt.numpy(), 0.5 if thr is None else thr)
        np.testing.assert_allclose(out.numpy(), ref, rtol=0, atol=1e-15)
    m = voxel_iou(pred, gt, reduction="mean")
    assert m.shape == () and float(m) == pytest.approx(float(voxel_iou(pred, gt).mean()))


def test_threshold_is_inclusive_unlike_kaolin_strict():
    pred = torch.tensor([0.5, 0.49, 1.0, 0.0]).reshape(1, 1, 1, 4)
    gt = torch.tensor([1.0, 1.0, 1.0, 0.0]).reshape(1, 1, 1, 4)
    # 0.5 is inside (>=): inter {0, 2}, union {0, 1, 2}
    torch.testing.assert_close(voxel_iou(pred, gt), torch.tensor([2 / 3]))
    # Kaolin's old rule (> 0.5) would give 1 / 3; equal to ours once 0.5 is excluded
    torch.testing.assert_close(voxel_iou(pred, gt, 0.5 + 1e-6), torch.tensor([1 / 3]))


def test_empty_grids_give_one_and_disjoint_give_zero():
    z = torch.zeros(3, 4, 4, 4)
    o = z.clone()
    o[1, 0, 0, 0] = 1.0
    o[2] = 1.0
    out = voxel_iou(z, o)
    torch.testing.assert_close(out, torch.tensor([1.0, 0.0, 0.0]))  # empty vs empty: 1, not NaN
    assert torch.isfinite(out).all()
    assert float(voxel_iou(o, o, reduction="mean")) == 1.0


def test_bool_int_and_mixed_inputs():
    g = torch.Generator().manual_seed(1)
    a = torch.rand(2, 5, 5, 5, generator=g) > 0.6
    b = torch.rand(2, 5, 5, 5, generator=g) > 0.4
    ref = _naive(a.numpy().astype(float), b.numpy().astype(float))
    np.testing.assert_allclose(voxel_iou(a, b).numpy(), ref, rtol=1e-6)
    assert voxel_iou(a, b).dtype == torch.get_default_dtype()
    np.testing.assert_allclose(voxel_iou(a.to(torch.uint8), b.long()).numpy(), ref, rtol=1e-6)
    np.testing.assert_allclose(voxel_iou(a, b.double()).numpy(), ref, rtol=1e-12)
    assert voxel_iou(a, b.double()).dtype == torch.float64  # floating side decides the dtype


def test_voxels_occupancy_and_sdf():
    g = torch.Generator().manual_seed(2)
    occ = torch.rand(2, 6, 5, 4, generator=g)
    sdf = torch.randn(2, 6, 5, 4, generator=g)
    vo = Voxels(occ)
    vs = Voxels(sdf, kind="sdf", voxel_size=0.1)
    # same as the IoU of the structures' own inside masks
    ref = _naive(vo.occupancy().numpy().astype(float), vs.occupancy().numpy().astype(float))
    np.testing.assert_allclose(voxel_iou(vo, vs).numpy(), ref, rtol=1e-6)
    np.testing.assert_allclose(voxel_iou(vs, (sdf <= 0)).numpy(), np.ones(2))
    # an explicit threshold goes to Voxels.occupancy: sdf <= 0.3 inside
    np.testing.assert_allclose(voxel_iou(vs, (sdf <= 0.3), 0.3).numpy(), np.ones(2))
    np.testing.assert_allclose(voxel_iou(vo, occ).numpy(), np.ones(2))


def test_real_mesh_surface_voxels(cgal_data):
    """Surface voxels of armadillo vs a shifted copy, against a numpy reference."""
    from geomgen.io import load_mesh
    from geomgen.ops import sample_points_from_meshes

    mesh = load_mesh(cgal_data / "meshes" / "armadillo.off")
    pts = sample_points_from_meshes(mesh, 20000, generator=torch.Generator().manual_seed(0))[0].double()
    lo, hi = pts.min(0).values, pts.max(0).values
    res = 24

    def vox(p: torch.Tensor) -> np.ndarray:
        ijk = ((p - lo) / (hi - lo) * (res - 1e-9)).floor().long().clamp(0, res - 1).numpy()
        grid = np.zeros((res, res, res), dtype=bool)
        grid[ijk[:, 2], ijk[:, 1], ijk[:, 0]] = True
        return grid

    shift = torch.tensor([0.5, 0.0, 0.0], dtype=torch.float64) * (hi - lo) / res
    a = np.stack([vox(pts), vox(pts)])
    b = np.stack([vox(pts), vox(pts + shift)])
    out = voxel_iou(torch.from_numpy(a), torch.from_numpy(b))
    ref = _naive(a.astype(float), b.astype(float))
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-6)
    assert float(out[0]) == 1.0 and 0.2 < float(out[1]) < 0.95


def test_empty_batch():
    assert voxel_iou(torch.zeros(0, 2, 2, 2), torch.zeros(0, 2, 2, 2)).shape == (0,)
    with pytest.raises(InvalidInputError, match="'pred'"):
        voxel_iou(torch.zeros(0, 2, 2, 2), torch.zeros(0, 2, 2, 2), reduction="mean")


@pytest.mark.parametrize("call, name", [
    (lambda: voxel_iou(torch.zeros(2, 3, 3, 3), torch.zeros(2, 3, 3, 4)), "'gt'"),
    (lambda: voxel_iou(torch.zeros(2, 3, 3, 3), torch.zeros(1, 3, 3, 3)), "'gt'"),
    (lambda: voxel_iou(torch.zeros(3, 3, 3), torch.zeros(3, 3, 3)), "'pred'"),
    (lambda: voxel_iou(torch.zeros(1, 3, 3, 3), np.zeros((1, 3, 3, 3))), "'gt'"),
    (lambda: voxel_iou(torch.full((1, 2, 2, 2), float("nan")), torch.zeros(1, 2, 2, 2)), "'pred'"),
    (lambda: voxel_iou(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, 2), float("inf")), "'threshold'"),
    (lambda: voxel_iou(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, 2), "0.5"), "'threshold'"),
    (lambda: voxel_iou(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, 2), reduction="sum"), "'reduction'"),
    (lambda: voxel_iou(Voxels(torch.zeros(1, 2, 2, 2)), Voxels(torch.zeros(1, 2, 2, 3))), "'gt'"),
])
def test_errors_name_the_argument(call, name):
    with pytest.raises(InvalidInputError, match=name) as info:
        call()
    assert "voxel_iou" in str(info.value)


def test_registered_metric():
    spec = geomgen.get_metric_spec("voxel-iou")
    assert spec.inputs == "voxels" and spec.higher_is_better is True
    a = torch.zeros(2, 2, 2, 2)
    a[1, 0] = 1.0
    out = geomgen.get_metric("voxel-iou")(a, a, threshold=0.5)
    torch.testing.assert_close(out, torch.tensor([1.0, 1.0]))


def test_inf_raises_but_a_sum_overflow_does_not():
    bad = torch.zeros(1, 4, 4, 4)
    bad[0, 1, 2, 3] = float("inf")
    with pytest.raises(InvalidInputError, match=r"'gt'.*\(first at index \(0, 1, 2, 3\)\)"):
        voxel_iou(torch.zeros(1, 4, 4, 4), bad)
    big = torch.full((1, 64, 64, 64), 60000.0, dtype=torch.float16)  # finite, but its sum overflows
    assert not torch.isfinite(big.sum())
    assert voxel_iou(big, big, 1.0).tolist() == [1.0]


@pytest.mark.parametrize("res", [8, 20])  # below / above the size where CPU counting goes through numpy
def test_large_and_non_contiguous_grids(res):
    g = torch.Generator().manual_seed(5)
    pred = torch.rand(4, res, res, res, generator=g)
    gt = torch.rand(4, res, res, res, generator=g)
    ref = _naive(pred.numpy(), gt.numpy())
    np.testing.assert_allclose(voxel_iou(pred, gt).numpy(), ref, rtol=1e-6)
    pt, gtt = pred.permute(0, 3, 2, 1), gt.permute(0, 3, 2, 1)  # non-contiguous views
    np.testing.assert_allclose(voxel_iou(pt, gtt).numpy(), ref, rtol=1e-6)
    np.testing.assert_allclose(voxel_iou(pt >= 0.5, gtt >= 0.5).numpy(), ref, rtol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fast_path_thresholds_like_torch(dtype):
    """Large CPU grids are thresholded through numpy: same rounding of the threshold as torch."""
    g = torch.Generator().manual_seed(6)
    vals = torch.tensor([0.3, 0.7], dtype=dtype)
    near = torch.cat([vals, torch.nextafter(vals, vals + 1), torch.nextafter(vals, vals - 1)])
    grid = near[torch.randint(0, 6, (2, 16, 16, 16), generator=g)]
    other = torch.rand(2, 16, 16, 16, generator=g, dtype=dtype)
    for thr in (0.3, 0.7, 0.30000001, 0.29999999):
        a, b = grid >= thr, other >= thr
        ref = (a & b).flatten(1).sum(1).double() / (a | b).flatten(1).sum(1).double()
        torch.testing.assert_close(voxel_iou(grid, other, thr), ref.to(dtype), rtol=0, atol=0)
        sdf_a, sdf_b = Voxels(grid, kind="sdf"), Voxels(other, kind="sdf")
        a, b = sdf_a.occupancy(thr), sdf_b.occupancy(thr)
        ref = (a & b).flatten(1).sum(1).double() / (a | b).flatten(1).sum(1).double()
        torch.testing.assert_close(voxel_iou(sdf_a, sdf_b, thr), ref.to(dtype), rtol=0, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    g = torch.Generator().manual_seed(8)
    pred, gt = torch.rand(3, 20, 20, 20, generator=g), torch.rand(3, 20, 20, 20, generator=g)
    out = voxel_iou(pred.cuda(), gt.cuda())
    assert out.device.type == "cuda"
    torch.testing.assert_close(out.cpu(), voxel_iou(pred, gt))
