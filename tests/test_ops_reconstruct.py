"""Tests of geomgen.ops.reconstruct (splat, dilate, fill, marching cubes)."""

from __future__ import annotations

import math

import pytest
import torch

from geomgen.errors import InvalidInputError
from geomgen.ops.reconstruct import (
    auto_dilation,
    dilate,
    fill_interior,
    reconstruct_surface,
    solid_occupancy,
    splat_points,
)


def _sphere(n: int, r: float, seed: int = 0, centre=(0.0, 0.0, 0.0)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    p = torch.randn(n, 3, generator=g, dtype=torch.float64)
    return (p / p.norm(dim=1, keepdim=True) * r + torch.tensor(centre, dtype=torch.float64)).float()


def _torus(n: int, R: float, r: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    u, v = torch.rand(2, 4 * n, generator=g) * 2 * math.pi
    # rejection sampling for uniform area density (the area element is proportional to R + r cos v)
    keep = torch.rand(4 * n, generator=g) < (R + r * torch.cos(v)) / (R + r)
    u, v = u[keep][:n], v[keep][:n]
    return torch.stack([(R + r * torch.cos(v)) * torch.cos(u), r * torch.sin(v), (R + r * torch.cos(v)) * torch.sin(u)], 1)


def _assert_closed(faces: torch.Tensor) -> None:
    """Every directed edge appears once and its reverse once: closed and consistently oriented."""
    e = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    assert torch.unique(e, dim=0).shape[0] == e.shape[0]  # no directed edge twice
    rev = torch.unique(e.flip(1), dim=0)
    assert torch.equal(torch.unique(e, dim=0), rev)  # every edge has its twin


def _euler(faces: torch.Tensor, num_verts: int) -> int:
    e = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]).sort(1).values
    return num_verts - torch.unique(e, dim=0).shape[0] + faces.shape[0]


def test_sphere_points_give_a_closed_mesh_of_the_sphere_volume():
    r = 0.4
    pts = torch.stack([_sphere(6000, r, 0), _sphere(6000, r, 1, centre=(0.1, -0.05, 0.0))])
    mesh = reconstruct_surface(pts, resolution=48, level=0.75)
    vol = mesh.volume()
    expected = 4 / 3 * math.pi * r ** 3
    assert ((vol - expected).abs() < 0.1 * expected).all(), vol
    for v, f in zip(mesh.verts_list(), mesh.faces_list()):
        _assert_closed(f)
        assert _euler(f, v.shape[0]) == 2  # one sphere-like component
        assert ((v.norm(dim=1) - r).abs().max() if v.mean(0).norm() < 0.01 else 0) < 0.05
    c = mesh.verts_list()[1].mean(0)
    torch.testing.assert_close(c, torch.tensor([0.1, -0.05, 0.0]), atol=0.01, rtol=0)


def test_torus_keeps_its_hole_and_sparse_clouds_get_more_dilation():
    R, r = 0.3, 0.1
    dense = _torus(8000, R, r)[None]
    mesh = reconstruct_surface(dense, resolution=48, level=0.75)
    f = mesh.faces_list()[0]
    _assert_closed(f)
    assert _euler(f, mesh.verts_list()[0].shape[0]) == 0  # genus 1
    expected = 2 * math.pi ** 2 * R * r ** 2
    assert abs(mesh.volume().item() - expected) < 0.25 * expected
    sparse = _torus(600, R, r)[None]
    assert auto_dilation(sparse, None, 1.1 / 48) > auto_dilation(dense, None, 1.1 / 48) >= 1
    m2 = reconstruct_surface(sparse, resolution=48)
    _assert_closed(m2.faces_list()[0])


def test_padded_batch_and_points_outside_the_grid():
    a, b = _sphere(3000, 0.3), _sphere(1500, 0.2)
    pts = torch.zeros(2, 3000, 3)
    pts[0], pts[1, :1500] = a, b
    pts[1, 1500:] = 5.0  # padding rows: ignored
    mesh = reconstruct_surface(pts, torch.tensor([3000, 1500]), resolution=32)
    assert mesh.verts_list()[1].abs().max() < 0.3
    grid = splat_points(torch.tensor([[[0.0, 0.0, 0.0], [0.9, 0.0, 0.0]]]), resolution=4)
    assert grid.sum().item() == 1 and grid[0, 2, 2, 2]  # the point outside [-0.55, 0.55]^3 is dropped
    # a shape cut by the grid's border is still closed (the grid is padded before marching cubes)
    big = reconstruct_surface(_sphere(8000, 0.6)[None], resolution=24, dilation=1)
    _assert_closed(big.faces_list()[0])
    empty = reconstruct_surface(torch.full((1, 4, 3), 3.0), resolution=8, dilation=1)
    assert empty.num_faces_per_mesh().tolist() == [0]


def test_dilate_fill_and_close():
    g = torch.zeros(1, 7, 7, 7, dtype=torch.bool)
    g[0, 3, 3, 3] = True
    assert dilate(g, 1).sum().item() == 27
    assert dilate(g, 1, connectivity=6).sum().item() == 7
    assert dilate(g, 0).equal(g)
    shell = torch.zeros(2, 8, 8, 8, dtype=torch.bool)
    shell[:, 1:7, 1:7, 1:7] = True
    shell[:, 2:6, 2:6, 2:6] = False  # hollow cube, 4^3 cavity
    shell[1, 3, 3, 1] = False  # a hole through one wall: the cavity is outside
    filled = fill_interior(shell)
    assert filled[0].sum().item() == 216 and filled[0, 2:6, 2:6, 2:6].all()
    assert torch.equal(filled[1], shell[1])
    diag = torch.zeros(1, 5, 5, 5, dtype=torch.bool)  # a cavity reachable only through an edge: stays inside
    diag[0, 1:4, 1:4, 1:4] = True
    diag[0, 2, 2, 2] = False
    assert fill_interior(diag)[0, 2, 2, 2]
    solid = solid_occupancy(shell, dilation=1)
    assert (solid | shell).equal(solid)  # contains the splat
    assert solid[1].sum().item() == 216  # closing seals the one-voxel hole
    assert solid_occupancy(shell[:1], dilation=0).equal(filled[:1])


@pytest.mark.parametrize("call, match", [
    (lambda: reconstruct_surface(torch.zeros(5, 3)), "points"),
    (lambda: reconstruct_surface(torch.zeros(1, 5, 3), resolution=1), "resolution"),
    (lambda: reconstruct_surface(torch.zeros(1, 5, 3), bound=0), "bound"),
    (lambda: reconstruct_surface(torch.zeros(1, 5, 3), dilation=-1), "dilation"),
    (lambda: reconstruct_surface(torch.zeros(1, 5, 3), level=1.0), "level"),
    (lambda: dilate(torch.zeros(1, 2, 2, 2), 1), "grid"),
    (lambda: dilate(torch.zeros(1, 2, 2, 2, dtype=torch.bool), 1, connectivity=18), "connectivity"),
    (lambda: fill_interior(torch.zeros(2, 2, 2, dtype=torch.bool)), "grid"),
])
def test_bad_arguments(call, match):
    with pytest.raises(InvalidInputError, match=match):
        call()
