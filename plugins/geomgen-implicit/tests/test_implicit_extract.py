"""Tests of :mod:`geomgen_implicit.extract`: multi-resolution extraction against analytic occupancy fields."""

from __future__ import annotations

import math

import pytest
import torch

from geomgen.errors import InvalidInputError
from geomgen.ops import sample_points_from_meshes
from geomgen_implicit.extract import dense_values, extract_meshes, grid_corners, refine_values


def _closed(faces: torch.Tensor) -> bool:
    e = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    u = torch.unique(e, dim=0)
    return u.shape[0] == e.shape[0] and torch.equal(u, torch.unique(e.flip(1), dim=0))


def sphere(radius: float | torch.Tensor, sharp: float = 40.0):
    """Logit field of a sphere: ``sharp * (radius - |p|)`` (radius per shape allowed)."""
    def fn(p: torch.Tensor) -> torch.Tensor:
        r = torch.as_tensor(radius, dtype=p.dtype).reshape(-1, 1)
        return sharp * (r - p.norm(dim=-1))
    return fn


def torus(major: float = 0.3, minor: float = 0.1, sharp: float = 40.0):
    """Logit field of a torus around the y axis."""
    def fn(p: torch.Tensor) -> torch.Tensor:
        q = torch.stack([torch.sqrt(p[..., 0] ** 2 + p[..., 2] ** 2) - major, p[..., 1]], -1)
        return sharp * (minor - q.norm(dim=-1))
    return fn


class Counter:
    """Wraps a field, counting the points it is called with and the largest chunk."""

    def __init__(self, fn):
        self.fn, self.points, self.largest = fn, 0, 0

    def __call__(self, p: torch.Tensor) -> torch.Tensor:
        self.points += p.shape[0] * p.shape[1]
        self.largest = max(self.largest, p.shape[1])
        return self.fn(p)


def test_grid_corners_layout():
    c = grid_corners(4, 0.5)
    assert c.shape == (5, 5, 5, 3)
    torch.testing.assert_close(c[0, 0, 0], torch.tensor([-0.5, -0.5, -0.5]))
    torch.testing.assert_close(c[1, 2, 3], torch.tensor([0.25, 0.0, -0.25]))  # [k, j, i] <-> (z, y, x)


@pytest.mark.parametrize("shape, volume, area, radius_check", [
    ("sphere", 4 / 3 * math.pi * 0.3**3, 4 * math.pi * 0.3**2, True),
    ("torus", 2 * math.pi**2 * 0.3 * 0.1**2, 4 * math.pi**2 * 0.3 * 0.1, False),
])
def test_matches_analytic_surfaces_with_few_evaluations(shape, volume, area, radius_check):
    fn = Counter(sphere(0.3) if shape == "sphere" else torus())
    m, stats = extract_meshes(fn, 1, resolution0=16, resolution=128, return_stats=True)
    assert _closed(m.faces_list()[0])
    torch.testing.assert_close(m.volume(), torch.tensor([volume]), rtol=0.01, atol=0)
    torch.testing.assert_close(m.surface_area(), torch.tensor([area]), rtol=0.01, atol=0)
    pts = sample_points_from_meshes(m, 5000, generator=torch.Generator().manual_seed(0))[0]
    if radius_check:
        dist = (pts.norm(dim=-1) - 0.3).abs()
    else:
        q = torch.stack([torch.sqrt(pts[..., 0] ** 2 + pts[..., 2] ** 2) - 0.3, pts[..., 1]], -1)
        dist = (q.norm(dim=-1) - 0.1).abs()
    assert float(dist.max()) < 0.002 and float((dist**2).mean()) < 1e-6  # cell size 0.0086
    # far fewer evaluations than the dense 129^3 grid: 8.7 % (sphere), 8.3 % (torus) measured
    assert stats.dense == 129**3
    assert int(stats.evaluated[0]) == fn.points == stats.queries
    assert int(stats.evaluated[0]) < 0.1 * stats.dense
    assert stats.resolutions == [16, 32, 64, 128]


def test_refinement_reproduces_the_dense_extraction():
    """Every crossed edge lies in a refined cell, so the mesh equals marching cubes of the dense grid."""
    fn = torus(0.25, 0.12)
    values, stats = refine_values(fn, 1, resolution0=8, resolution=64)
    dense = dense_values(fn, 1, 64, 0.55)
    inside_r, inside_d = values >= 0, dense >= 0
    assert torch.equal(inside_r, inside_d)
    m_ref = extract_meshes(fn, 1, resolution0=8, resolution=64)
    m_dense = extract_meshes(fn, 1, resolution0=64, resolution=64)
    assert torch.equal(m_ref.faces_list()[0], m_dense.faces_list()[0])
    torch.testing.assert_close(m_ref.verts_list()[0], m_dense.verts_list()[0])
    assert int(stats.evaluated[0]) < 0.3 * 65**3


def test_batched_padded_and_chunked():
    radii = torch.tensor([0.15, 0.4, 0.3])
    fn = Counter(sphere(radii))
    m, stats = extract_meshes(fn, 3, resolution0=8, resolution=32, chunk_points=1000, return_stats=True)
    assert fn.largest <= 1000
    vol = m.volume()
    torch.testing.assert_close(vol, 4 / 3 * math.pi * radii**3, rtol=0.05, atol=0)
    ev = stats.evaluated.tolist()
    assert ev[0] < ev[2] < ev[1]  # larger spheres: more active cells
    assert stats.queries == fn.points >= sum(ev)  # padding to the largest shape counted in queries
    # one shape at a time gives the same meshes
    for i, r in enumerate(radii.tolist()):
        one = extract_meshes(sphere(r), 1, resolution0=8, resolution=32)
        torch.testing.assert_close(one.verts_list()[0], m.verts_list()[i])


def test_empty_and_full_fields_and_level():
    m = extract_meshes(lambda p: -torch.ones(p.shape[:2]), 2, resolution0=4, resolution=8)
    assert m.num_faces_per_mesh().tolist() == [0, 0]
    full = extract_meshes(lambda p: torch.ones(p.shape[:2]), 1, resolution0=4, resolution=8, bound=0.5)
    assert _closed(full.faces_list()[0])  # the closing layer seals shapes that fill the box
    # the surface crosses 1/11 of a cell beyond the box (values 1 inside, -10 in the closing layer)
    torch.testing.assert_close(full.volume(), torch.tensor([(1 + 2 * 0.125 / 11) ** 3]), rtol=0.02, atol=0)
    # level: a distance-like field (|p|) with level 0.2 inside where >= level -> complement; use -|p|
    m = extract_meshes(lambda p: -p.norm(dim=-1), 1, resolution0=16, resolution=32, level=-0.2)
    torch.testing.assert_close(m.volume(), torch.tensor([4 / 3 * math.pi * 0.008]), rtol=0.02, atol=0)


def test_bad_arguments():
    fn = sphere(0.3)
    with pytest.raises(InvalidInputError, match="resolution"):
        extract_meshes(fn, 1, resolution0=16, resolution=48)
    with pytest.raises(InvalidInputError, match="resolution0"):
        extract_meshes(fn, 1, resolution0=1, resolution=4)
    with pytest.raises(InvalidInputError, match="bound"):
        extract_meshes(fn, 1, bound=0)
    with pytest.raises(InvalidInputError, match="chunk_points"):
        extract_meshes(fn, 1, chunk_points=0)
    with pytest.raises(InvalidInputError, match="fn"):
        extract_meshes(lambda p: p, 1, resolution0=4, resolution=8)
