"""Tests of geomgen.ops.vert_align."""

from __future__ import annotations

import math

import pytest
import torch

from geomgen.errors import InvalidInputError
from geomgen.ops.vert_align import vert_align
from geomgen.structures import Meshes, PointClouds


def naive_bilinear(fm: torch.Tensor, x: float, y: float, align_corners: bool) -> torch.Tensor:
    """Bilinear sample of one (C, H, W) map at normalised (x, y), zeros outside."""
    C, H, W = fm.shape
    if align_corners:
        px, py = (x + 1) / 2 * (W - 1), (y + 1) / 2 * (H - 1)
    else:
        px, py = ((x + 1) * W - 1) / 2, ((y + 1) * H - 1) / 2
    x0, y0 = math.floor(px), math.floor(py)
    out = torch.zeros(C, dtype=fm.dtype)
    for yy, wy in ((y0, 1 - (py - y0)), (y0 + 1, py - y0)):
        for xx, wx in ((x0, 1 - (px - x0)), (x0 + 1, px - x0)):
            if 0 <= xx < W and 0 <= yy < H:
                out += wx * wy * fm[:, yy, xx]
    return out


def naive_vert_align(maps, pos, align_corners=True):
    N, Vn = pos.shape[:2]
    rows = []
    for n in range(N):
        rows.append(torch.stack([
            torch.cat([naive_bilinear(fm[n], pos[n, v, 0].item(), pos[n, v, 1].item(), align_corners) for fm in maps])
            for v in range(Vn)
        ]))
    return torch.stack(rows)


@pytest.mark.parametrize("align_corners", [True, False])
def test_against_naive_with_pyramid(align_corners):
    g = torch.Generator().manual_seed(0)
    maps = [torch.randn(2, 3, 5, 7, generator=g, dtype=torch.float64),
            torch.randn(2, 4, 3, 4, generator=g, dtype=torch.float64)]
    pos = torch.rand(2, 9, 3, generator=g, dtype=torch.float64) * 2.4 - 1.2  # some outside [-1, 1]
    out = vert_align(maps, pos, align_corners=align_corners)
    assert out.shape == (2, 9, 7) and out.dtype == torch.float64
    assert torch.allclose(out, naive_vert_align(maps, pos, align_corners))
    single = vert_align(maps[0], pos, align_corners=align_corners)
    assert torch.allclose(single, out[..., :3])


def test_pixel_centre_convention_and_nearest():
    H, W = 4, 6
    fm = torch.arange(H * W, dtype=torch.float32).reshape(1, 1, H, W)
    u = torch.arange(W, dtype=torch.float32).repeat(H)
    v = torch.arange(H, dtype=torch.float32).repeat_interleave(W)
    # DepthMaps convention: pixel (u, v) centred at (u + .5, v + .5); image spans [0, W] x [0, H]
    x, y = 2 * (u + 0.5) / W - 1, 2 * (v + 0.5) / H - 1
    pos = torch.stack([x, y, torch.zeros_like(x)], -1)[None]
    got = vert_align(fm, pos, align_corners=False)[0, :, 0]
    assert torch.allclose(got, fm.reshape(-1), atol=1e-5)
    # align_corners=True: -1 / +1 are the corner pixel centres; y grows downwards
    corners = torch.tensor([[[-1.0, -1.0, 0], [1.0, -1.0, 0], [-1.0, 1.0, 0], [1.0, 1.0, 0]]])
    assert vert_align(fm, corners)[0, :, 0].tolist() == [0.0, W - 1.0, (H - 1.0) * W, H * W - 1.0]
    near = vert_align(fm, pos + 0.05 / W, interp_mode="nearest", align_corners=False)
    assert torch.equal(near[0, :, 0], fm.reshape(-1))
    border = vert_align(fm, torch.tensor([[[5.0, 5.0, 0.0]]]), padding_mode="border")
    assert border.item() == H * W - 1.0
    assert vert_align(fm, torch.tensor([[[5.0, 5.0, 0.0]]])).item() == 0.0


def test_meshes_pointclouds_and_packed():
    g = torch.Generator().manual_seed(1)
    fm = torch.randn(2, 3, 6, 6, generator=g)
    va, vb = torch.rand(5, 3, generator=g) * 2 - 1, torch.rand(3, 3, generator=g) * 2 - 1
    meshes = Meshes([va, vb], [torch.tensor([[0, 1, 2]]), torch.tensor([[0, 1, 2]])])
    out = vert_align(fm, meshes)
    assert out.shape == (2, 5, 3)
    ref = [vert_align(fm[i:i + 1], v[None])[0] for i, v in enumerate((va, vb))]
    assert torch.allclose(out[0], ref[0]) and torch.allclose(out[1, :3], ref[1])
    packed = vert_align(fm, meshes, return_packed=True)
    assert packed.shape == (8, 3) and torch.allclose(packed, torch.cat(ref))
    clouds = PointClouds([va, vb])
    assert torch.allclose(vert_align(fm, clouds, return_packed=True), torch.cat(ref))
    flat = vert_align(fm, meshes.verts_padded(), return_packed=True)
    assert flat.shape == (10, 3)
    two_d = vert_align(fm, meshes.verts_padded()[..., :2])
    assert torch.allclose(two_d, out)


def test_gradcheck():
    g = torch.Generator().manual_seed(2)
    fm = torch.randn(1, 2, 4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    pos = (torch.rand(1, 6, 3, generator=g, dtype=torch.float64) * 1.6 - 0.8).requires_grad_()
    assert torch.autograd.gradcheck(lambda f, p: vert_align([f, f[:, :1]], p, align_corners=False), (fm, pos))


def test_against_pytorch3d():
    pytest.importorskip("pytorch3d")
    from pytorch3d.ops import vert_align as p3d_vert_align
    from pytorch3d.structures import Meshes as P3DMeshes

    g = torch.Generator().manual_seed(3)
    maps = [torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 2, 4, 5, generator=g)]
    va, vb = torch.rand(7, 3, generator=g) * 2.2 - 1.1, torch.rand(4, 3, generator=g) * 2 - 1
    f = torch.tensor([[0, 1, 2]])
    ours_m, ref_m = Meshes([va, vb], [f, f]), P3DMeshes([va, vb], [f, f])
    for kw in ({}, {"interp_mode": "nearest"}, {"padding_mode": "border", "align_corners": False}):
        assert torch.allclose(vert_align(maps, ours_m, **kw), p3d_vert_align(maps, ref_m, **kw), atol=1e-6)
        assert torch.allclose(
            vert_align(maps, ours_m, return_packed=True, **kw),
            p3d_vert_align(maps, ref_m, return_packed=True, **kw), atol=1e-6,
        )
        pos = ours_m.verts_padded()
        assert torch.allclose(vert_align(maps[0], pos, **kw), p3d_vert_align(maps[0], pos, **kw), atol=1e-6)


def test_validation():
    fm = torch.randn(2, 3, 4, 4)
    pos = torch.zeros(2, 5, 3)
    with pytest.raises(InvalidInputError, match="feats"):
        vert_align(torch.randn(3, 4, 4), pos)
    with pytest.raises(InvalidInputError, match="feats"):
        vert_align([], pos)
    with pytest.raises(InvalidInputError, match=r"feats\[1\]"):
        vert_align([fm, torch.randn(3, 3, 4, 4)], pos)
    with pytest.raises(InvalidInputError, match=r"feats\[1\]"):
        vert_align([fm, fm.double()], pos)
    with pytest.raises(InvalidInputError, match="verts"):
        vert_align(fm, torch.zeros(2, 5))
    with pytest.raises(InvalidInputError, match="verts"):
        vert_align(fm, torch.zeros(2, 5, 1))
    with pytest.raises(InvalidInputError, match="verts"):
        vert_align(fm, [pos])
    with pytest.raises(InvalidInputError, match="interp_mode"):
        vert_align(fm, pos, interp_mode="bicubic")
    with pytest.raises(InvalidInputError, match="padding_mode"):
        vert_align(fm, pos, padding_mode="wrap")
    with pytest.raises(InvalidInputError, match="align_corners"):
        vert_align(fm, pos, align_corners=1)
