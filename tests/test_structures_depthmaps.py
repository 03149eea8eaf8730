"""Tests for geomgen.structures.DepthMaps: conventions, masks, validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geomgen.errors import InvalidInputError
from geomgen.structures import BatchIndexError, DepthMaps, PointClouds, join_depthmaps_as_batch

H, W = 3, 4
K0 = torch.tensor([[100.0, 0.0, 1.5], [0.0, 200.0, 1.5], [0.0, 0.0, 1.0]])
K1 = torch.tensor([[50.0, 0.0, 2.0], [0.0, 50.0, 1.5], [0.0, 0.0, 1.0]])


@pytest.fixture
def depth() -> torch.Tensor:
    d = torch.arange(1, 1 + 2 * H * W, dtype=torch.float32).reshape(2, H, W)
    d[1, 0, 0] = float("nan")  # invalid pixels: masked out by default
    d[1, 2, 3] = 0.0
    d[1, 1, 2] = -1.0
    return d


@pytest.fixture
def dm(depth) -> DepthMaps:
    return DepthMaps(depth, torch.stack([K0, K1]))


def test_basic(dm, depth):
    assert len(dm) == 2 and dm.image_size == (H, W)
    assert dm.depth is depth and dm.K.shape == (2, 3, 3)
    assert torch.equal(dm.focal_length, torch.tensor([[100.0, 200.0], [50.0, 50.0]]))
    assert torch.equal(dm.principal_point, torch.tensor([[1.5, 1.5], [2.0, 1.5]]))
    assert dm.masks.dtype == torch.bool and dm.masks.shape == (2, H, W)
    assert dm.masks[0].all() and dm.masks[1].sum().item() == H * W - 3
    assert not dm.masks[1, 0, 0] and not dm.masks[1, 2, 3] and not dm.masks[1, 1, 2]
    r = repr(dm)
    assert "N=2" in r and "image_size=(3, 4)" in r
    assert dm.device == torch.device("cpu") and dm.dtype == torch.float32


def test_shared_K_list_and_numpy_inputs():
    d = DepthMaps([torch.ones(H, W), 2 * torch.ones(H, W)], K0)
    assert d.K.shape == (2, 3, 3) and torch.equal(d.K[1], K0)
    n = DepthMaps(np.ones((1, H, W), dtype=np.float64), K0.double().numpy())
    assert n.dtype == torch.float64 and n.K.dtype == torch.float64
    k64 = DepthMaps(torch.ones(1, H, W), K0.double())
    assert k64.K.dtype == torch.float32  # K follows depth


def test_pixel_centre_convention(dm):
    # pixel centre of (v, u) is (u + 0.5, v + 0.5); K0 principal point (1.5, 1.5) -> pixel (v=1, u=1)
    uv = dm.pixel_centers()
    assert uv.shape == (H, W, 2) and torch.equal(uv[2, 3], torch.tensor([3.5, 2.5]))
    pts = dm.unproject()
    assert pts.shape == (2, H, W, 3)
    assert torch.allclose(pts[0, 1, 1], torch.tensor([0.0, 0.0, dm.depth[0, 1, 1].item()]))
    # z is the depth itself (z-depth, not ray distance); x right, y down
    assert torch.equal(pts[0, ..., 2], dm.depth[0])
    z = dm.depth[0, 0, 3].item()
    assert torch.allclose(pts[0, 0, 3], torch.tensor([(3.5 - 1.5) / 100 * z, (0.5 - 1.5) / 200 * z, z]))
    # projecting back with K lands on the pixel centres
    p = pts[0].reshape(-1, 3)
    proj = (K0 @ (p / p[:, 2:]).T).T[:, :2]
    assert torch.allclose(proj, uv.reshape(-1, 2), atol=1e-5)


def test_skew_in_unproject():
    k = K0.clone()
    k[0, 1] = 10.0
    d = DepthMaps(torch.full((1, H, W), 2.0), k)
    p = d.unproject()[0].reshape(-1, 3)
    proj = (k @ (p / p[:, 2:]).T).T[:, :2]
    assert torch.allclose(proj, d.pixel_centers().reshape(-1, 2), atol=1e-5)


def test_masked_pixels_unproject_to_zero_and_pointclouds(dm):
    pts = dm.unproject()
    assert torch.isfinite(pts).all()
    assert torch.equal(pts[1, 0, 0], torch.zeros(3))
    pc = dm.to_pointclouds()
    assert isinstance(pc, PointClouds)
    assert pc.num_points_per_cloud().tolist() == [H * W, H * W - 3]
    assert torch.equal(pc.points_list()[1], pts[1][dm.masks[1]])


def test_explicit_masks():
    d = torch.ones(1, H, W)
    d[0, 0, 0] = float("nan")
    m = torch.ones(1, H, W, dtype=torch.bool)
    m[0, 0, 0] = False
    m[0, 1, 1] = False  # valid depth may also be masked out
    dm = DepthMaps(d, K0, masks=m)
    assert dm.masks is m and dm.to_pointclouds().num_points_per_cloud().tolist() == [H * W - 2]


def test_getitem(dm):
    one = dm[1]
    assert len(one) == 1 and torch.equal(one.K[0], K1)
    assert torch.equal(one.masks[0], dm.masks[1])
    assert len(dm[:1]) == 1 and len(dm[[1, 0, 1]]) == 3
    assert torch.equal(dm[torch.tensor([True, False])].K, K0[None])
    assert torch.equal(dm[torch.tensor([1])].K, K1[None])
    assert [len(d) for d in dm] == [1, 1]
    with pytest.raises(BatchIndexError, match="index: -3 out of range for a batch of 2"):
        dm[-3]


def test_copies_device_autograd(dm):
    c = dm.clone()
    c.depth[0, 0, 0] = 99.0
    c.K[0, 0, 0] = 1.0
    assert dm.depth[0, 0, 0] == 1.0 and dm.K[0, 0, 0] == 100.0
    assert dm.to("cpu") is dm and dm.cpu() is dm and dm.to("cpu", copy=True) is not dm
    d = torch.full((1, H, W), 2.0, requires_grad=True)
    k = K0.clone().requires_grad_(True)
    dmg = DepthMaps(d, k)
    dmg.unproject().sum().backward()
    assert d.grad is not None and k.grad is not None and torch.isfinite(k.grad).all()
    assert not dmg.detach().depth.requires_grad


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda(dm):
    g = dm.cuda()
    assert g.device.type == "cuda" and g.masks.device.type == "cuda" and g.K.device.type == "cuda"
    assert torch.allclose(g.unproject().cpu(), dm.unproject())
    assert g.cpu().masks.equal(dm.masks)


def test_join(dm):
    j = join_depthmaps_as_batch([dm, dm[1]])
    assert len(j) == 3 and torch.equal(j.K[2], K1)
    with pytest.raises(InvalidInputError, match=r"depthmaps\[1\]: image_size"):
        join_depthmaps_as_batch([dm, DepthMaps(torch.ones(1, 2, 2), K0)])


def _raises(match: str, *args, **kwargs):
    with pytest.raises(InvalidInputError, match=match):
        DepthMaps(*args, **kwargs)


def test_validation_errors():
    ok = torch.ones(2, H, W)
    _raises(r"depth: expected a \(N, H, W\) tensor or a list of \(H, W\) tensors, got shape \(3, 4\)",
            torch.ones(H, W), K0)
    _raises(r"depth: expected a floating-point tensor of metric z-depth, got dtype torch.int32",
            torch.ones(1, H, W, dtype=torch.int32), K0)
    _raises(r"depth\[1\]: shape \(2, 2\) differs from depth\[0\] \(3, 4\)", [torch.ones(H, W), torch.ones(2, 2)], K0)
    _raises(r"K: expected a \(3, 3\) or \(2, 3, 3\) tensor, got shape \(3, 3, 3\)", ok, torch.stack([K0] * 3))
    _raises(r"K: expected a \(3, 3\) or \(2, 3, 3\) tensor, got shape \(4,\)", ok, torch.ones(4))
    neg = torch.stack([K0, K1])
    neg[1, 0, 0] = -50.0
    _raises(r"K\[1\]: fx \(K\[0, 0\]\) must be > 0, got -50", ok, neg)
    zero_fy = K0.clone()
    zero_fy[1, 1] = 0.0
    _raises(r"K\[0\]: fy \(K\[1, 1\]\) must be > 0, got 0", ok, zero_fy)
    bottom = K0.clone()
    bottom[2, 2] = 2.0
    _raises(r"K\[0\]: bottom row must be \[0, 0, 1\], got \[0.0, 0.0, 2.0\]", ok, bottom)
    lower = K0.clone()
    lower[1, 0] = 0.5
    _raises(r"K\[0\]: K\[1, 0\] must be 0 \(upper triangular\), got 0.5", ok, lower)
    nan = K0.clone()
    nan[0, 2] = float("nan")
    _raises(r"K\[0\]: contains 1 NaN/Inf entries", ok, nan)
    d = ok.clone()
    d[1, 0, 0] = float("nan")
    d[1, 0, 1] = -2.0
    _raises(r"depth\[1\]: 2 pixels inside the mask are NaN/Inf or <= 0", d, K0,
            masks=torch.ones(2, H, W, dtype=torch.bool))
    _raises(r"masks: expected a bool tensor, got dtype torch.uint8", ok, K0,
            masks=torch.ones(2, H, W, dtype=torch.uint8))
    _raises(r"masks: shape \(1, 3, 4\) does not match depth \(2, 3, 4\)", ok, K0,
            masks=torch.ones(1, H, W, dtype=torch.bool))
    _raises(r"K: expected real numbers", ok, K0.bool())
    dm = DepthMaps(ok, neg, validate=False)
    assert not dm.validated
