"""Tests for geomgen.structures.Voxels: axis convention, coordinates, validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from geomgen.errors import InvalidInputError
from geomgen.structures import BatchIndexError, Voxels, join_voxels_as_batch

D, H, W = 2, 3, 4


@pytest.fixture
def grids() -> torch.Tensor:
    g = torch.zeros(2, D, H, W)
    g[0, 1, 2, 3] = 1.0  # z=1, y=2, x=3
    g[1, 0, 1, 0] = 0.7
    g[1, 1, 0, 2] = 0.3
    return g


@pytest.fixture
def vox(grids) -> Voxels:
    origin = torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.0, 0.5]])
    return Voxels(grids, origin=origin, voxel_size=torch.tensor([0.5, 1.0, 2.0]))


def test_basic(vox, grids):
    assert len(vox) == 2 and vox.resolution == (D, H, W)
    assert vox.kind == "occupancy"
    assert vox.grids is grids and vox.densities() is grids
    assert vox.origin.shape == (2, 3) and vox.voxel_size.shape == (2, 3)
    assert torch.equal(vox.voxel_size[1], torch.tensor([0.5, 1.0, 2.0]))
    r = repr(vox)
    assert "N=2" in r and "resolution=(2, 3, 4)" in r and "occupancy" in r
    assert vox.device == torch.device("cpu") and vox.dtype == torch.float32


def test_list_bool_int_numpy_inputs():
    b = torch.zeros(D, H, W, dtype=torch.bool)
    b[0, 0, 0] = True
    v = Voxels([b, ~b])
    assert v.grids.dtype == torch.float32 and v.grids.shape == (2, D, H, W)
    assert v.grids[0, 0, 0, 0] == 1.0 and v.grids[1, 0, 0, 0] == 0.0
    u = Voxels(np.ones((1, D, H, W), dtype=np.uint8))
    assert u.grids.dtype == torch.float32
    assert torch.equal(u.origin, torch.zeros(1, 3)) and torch.equal(u.voxel_size, torch.ones(1, 3))
    e = Voxels(torch.zeros(0, D, H, W))
    assert len(e) == 0 and e.voxel_centers().shape == (0, D, H, W, 3)


def test_occupancy_thresholds(vox):
    occ = vox.occupancy()
    assert occ.dtype == torch.bool and occ.shape == (2, D, H, W)
    assert occ.sum().item() == 2  # 1.0 and 0.7
    assert occ[0, 1, 2, 3] and occ[1, 0, 1, 0] and not occ[1, 1, 0, 2]
    assert vox.occupancy(0.3).sum().item() == 3
    sdf = Voxels(torch.tensor([[[[-0.5, 0.0, 0.2]]]]), kind="sdf")
    assert sdf.occupancy().tolist() == [[[[True, True, False]]]]
    assert sdf.occupancy(-0.1).tolist() == [[[[True, False, False]]]]


def test_voxel_centers_axis_order(vox):
    c = vox.voxel_centers()
    assert c.shape == (2, D, H, W, 3)
    # voxel (k=1, j=2, i=3) of grid 0: origin + (i+.5, j+.5, k+.5) * size (xyz)
    expect = torch.tensor([1.0, 2.0, 3.0]) + torch.tensor([3.5, 2.5, 1.5]) * torch.tensor([0.5, 1.0, 2.0])
    assert torch.allclose(c[0, 1, 2, 3], expect)
    assert torch.allclose(c[1, 0, 0, 0], torch.tensor([-1.0, 0.0, 0.5]) + torch.tensor([0.25, 0.5, 1.0]))
    # x varies along W (last dim), z along D
    assert torch.allclose(c[0, 0, 0, 1] - c[0, 0, 0, 0], torch.tensor([0.5, 0.0, 0.0]))
    assert torch.allclose(c[0, 1, 0, 0] - c[0, 0, 0, 0], torch.tensor([0.0, 0.0, 2.0]))


def test_world_to_grid_and_back(vox):
    centers = vox.voxel_centers().reshape(2, -1, 3)
    g = vox.world_to_grid(centers)
    assert g.shape == (2, D * H * W, 3)
    assert torch.allclose(g - 0.5, torch.floor(g))  # centres at integer + 0.5
    idx = torch.floor(g[0]).long()  # (x, y, z) indices
    vals = vox.grids[0][idx[:, 2], idx[:, 1], idx[:, 0]]
    assert torch.equal(vals, vox.grids[0].reshape(-1))
    assert torch.allclose(vox.grid_to_world(g), centers)
    # the origin is the min corner of voxel (0, 0, 0)
    assert torch.allclose(vox.world_to_grid(vox.origin[:, None, :]), torch.zeros(2, 1, 3))
    # (P, 3) points are shared by every grid
    shared = vox.world_to_grid(torch.tensor([[1.0, 2.0, 3.0]]))
    assert shared.shape == (2, 1, 3) and torch.allclose(shared[0], torch.zeros(1, 3))
    with pytest.raises(InvalidInputError, match=r"points: expected a \(2, P, 3\) or \(P, 3\) tensor"):
        vox.world_to_grid(torch.zeros(3, 4, 3))
    with pytest.raises(InvalidInputError, match="points: expected a floating-point tensor"):
        vox.world_to_grid(torch.zeros(4, 3, dtype=torch.long))


def test_local_coords_match_grid_sample(vox):
    centers = vox.voxel_centers().reshape(2, -1, 3)
    loc = vox.world_to_local_coords(centers)
    assert loc.min() > -1 and loc.max() < 1
    s = F.grid_sample(vox.grids[:, None], loc.view(2, -1, 1, 1, 3), align_corners=False)
    assert torch.allclose(s.reshape(2, D, H, W), vox.grids, atol=1e-6)
    bb = vox.get_bounding_boxes()
    corners = vox.world_to_local_coords(bb.transpose(1, 2))  # (2, 2, 3): min, max corners
    assert torch.allclose(corners[:, 0], -torch.ones(2, 3)) and torch.allclose(corners[:, 1], torch.ones(2, 3))
    assert torch.allclose(vox.local_to_world_coords(loc), centers, atol=1e-5)


def test_bounding_boxes(vox):
    bb = vox.get_bounding_boxes()
    assert bb.shape == (2, 3, 2)
    assert torch.allclose(bb[0], torch.tensor([[1.0, 1.0 + 4 * 0.5], [2.0, 2.0 + 3 * 1.0], [3.0, 3.0 + 2 * 2.0]]))


def test_getitem(vox):
    one = vox[1]
    assert len(one) == 1 and torch.equal(one.grids[0], vox.grids[1])
    assert torch.equal(one.origin[0], torch.tensor([-1.0, 0.0, 0.5]))
    assert len(vox[0:2]) == 2 and len(vox[[1, 0, 1]]) == 3
    assert torch.equal(vox[torch.tensor([False, True])].grids, vox.grids[1:])
    assert torch.equal(vox[-2].grids, vox.grids[:1])
    assert [len(v) for v in vox] == [1, 1]
    with pytest.raises(BatchIndexError, match="index: 2 out of range for a batch of 2"):
        vox[2]


def test_copies_and_device(vox):
    c = vox.clone()
    c.grids[0, 0, 0, 0] = 1.0
    c.origin[0, 0] = 100.0
    assert vox.grids[0, 0, 0, 0] == 0.0 and vox.origin[0, 0] == 1.0
    assert vox.to("cpu") is vox and vox.cpu() is vox
    assert vox.to("cpu", copy=True) is not vox


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda(vox):
    g = vox.cuda()
    assert g.device.type == "cuda" and g.origin.device.type == "cuda"
    assert torch.allclose(g.voxel_centers().cpu(), vox.voxel_centers())
    assert torch.allclose(g.world_to_grid(torch.zeros(2, 1, 3, device="cuda")).cpu(),
                          vox.world_to_grid(torch.zeros(2, 1, 3)))


def test_autograd():
    g = torch.rand(1, D, H, W, requires_grad=True)
    origin = torch.zeros(3, requires_grad=True)
    v = Voxels(g, origin=origin)
    loc = v.world_to_local_coords(torch.tensor([[0.5, 0.5, 0.5], [1.2, 2.0, 1.0]]))
    F.grid_sample(v.grids[:, None], loc.view(1, -1, 1, 1, 3), align_corners=False).sum().backward()
    assert g.grad is not None and g.grad.sum() > 0
    assert origin.grad is not None
    assert not v.detach().grids.requires_grad


def test_join(vox):
    j = join_voxels_as_batch([vox, vox[0]])
    assert len(j) == 3 and torch.equal(j.origin[2], vox.origin[0])
    with pytest.raises(InvalidInputError, match=r"voxels\[1\]: resolution"):
        join_voxels_as_batch([vox, Voxels(torch.zeros(1, 2, 2, 2))])
    with pytest.raises(InvalidInputError, match=r"voxels\[1\]: kind"):
        join_voxels_as_batch([vox, Voxels(torch.zeros(1, D, H, W), kind="sdf")])


def _raises(match: str, *args, **kwargs):
    with pytest.raises(InvalidInputError, match=match):
        Voxels(*args, **kwargs)


def test_validation_errors():
    ok = torch.zeros(2, D, H, W)
    _raises(r"kind: expected 'occupancy' or 'sdf', got 'density'", ok, kind="density")
    _raises(r"grids: expected a \(N, D, H, W\) tensor or a list of \(D, H, W\) tensors, got shape \(3, 4\)",
            torch.zeros(3, 4))
    _raises(r"grids\[1\]: shape \(2, 2, 2\) differs from grids\[0\] \(2, 3, 4\); all grids of a batch share one "
            r"resolution", [torch.zeros(D, H, W), torch.zeros(2, 2, 2)])
    _raises(r"grids\[0\]: expected a \(D, H, W\) tensor, got shape \(3, 4\)", [torch.zeros(3, 4)])
    _raises(r"grids: empty list", [])
    _raises(r"grids: D, H and W must all be >= 1", torch.zeros(1, 0, 2, 2))
    _raises(r"grids: a bool grid cannot be a signed distance field", torch.zeros(1, 2, 2, 2, dtype=torch.bool),
            kind="sdf")
    nan = ok.clone()
    nan[1, 0, 0, 0] = float("nan")
    nan[1, 1, 1, 1] = float("inf")
    _raises(r"grids\[1\]: 2 NaN/Inf values", nan)
    _raises(r"grids\[1\]: 2 NaN/Inf values", nan, kind="sdf")
    rng = ok.clone()
    rng[0, 0, 0, 0] = 1.5
    rng[0, 0, 0, 1] = -0.1
    _raises(r"grids\[0\]: 2 values outside \[0, 1\] for kind='occupancy'", rng)
    Voxels(rng, kind="sdf")  # fine as a signed distance field
    _raises(r"voxel_size\[0\]: 1 entries are not finite and > 0", ok, voxel_size=torch.tensor([1.0, 0.0, 1.0]))
    _raises(r"voxel_size\[0\]: 3 entries are not finite and > 0", ok, voxel_size=-1.0)
    _raises(r"voxel_size: expected a scalar, a \(3,\) tensor or a \(2, 3\) tensor, got shape \(2,\)", ok,
            voxel_size=torch.ones(2))
    _raises(r"origin: expected a scalar, a \(3,\) tensor or a \(2, 3\) tensor, got shape \(4, 3\)", ok,
            origin=torch.zeros(4, 3))
    _raises(r"origin\[1\]: 1 non-finite coordinates", ok, origin=torch.tensor([[0.0, 0, 0], [0, float("nan"), 0]]))
    _raises(r"grids: expected a \(N, D, H, W\) tensor or a list of \(D, H, W\) tensors, got str", "grid")
    v = Voxels(nan, validate=False)
    assert not v.validated
