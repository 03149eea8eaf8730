"""Tests of geomgen.ops.ico_sphere."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch

from geomgen.errors import InvalidInputError
from geomgen.ops.ico_sphere import ico_sphere
from geomgen.structures import Meshes


def edge_face_counts(faces: torch.Tensor) -> Counter:
    """Naive: how many faces hold each undirected edge."""
    c: Counter = Counter()
    for a, b, d in faces.tolist():
        for e in ((a, b), (b, d), (d, a)):
            c[tuple(sorted(e))] += 1
    return c


@pytest.mark.parametrize("level", [0, 1, 2, 3, 4])
def test_counts_unit_radius_and_closed_manifold(level):
    m = ico_sphere(level)
    assert isinstance(m, Meshes) and len(m) == 1
    v, f = m.verts_packed(), m.faces_packed()
    nv, ne, nf = 10 * 4**level + 2, 30 * 4**level, 20 * 4**level
    assert v.shape == (nv, 3) and f.shape == (nf, 3) and m.edges_packed().shape == (ne, 2)
    assert v.dtype == torch.float32 and f.dtype == torch.int64 and m.validated
    assert torch.allclose(torch.linalg.vector_norm(v, dim=1), torch.ones(nv), atol=1e-6)
    assert nv - ne + nf == 2  # Euler characteristic of the sphere
    if level <= 2:
        counts = edge_face_counts(f)
        assert len(counts) == ne and set(counts.values()) == {2}  # closed 2-manifold
    # every vertex used, no duplicate vertices
    assert torch.unique(f).numel() == nv
    d = torch.cdist(v, v) + torch.eye(nv) * 10
    assert d.min() > 0.5 * (2 * math.pi / (5 * 2**level))  # well separated


@pytest.mark.parametrize("level", [0, 2, 4])
def test_outward_orientation(level):
    m = ico_sphere(level)
    v, f = m.verts_packed().double(), m.faces_packed()
    t = v[f]
    n = torch.linalg.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0], dim=1)
    assert (torch.sum(n * t.mean(1), dim=1) > 0).all()
    assert m.volume().item() > 0


def icosahedron_edge_lengths():
    m = ico_sphere(0)
    e = m.edges_packed()
    v = m.verts_packed().double()
    return torch.linalg.vector_norm(v[e[:, 0]] - v[e[:, 1]], dim=1)


def test_level0_is_regular_icosahedron():
    lengths = icosahedron_edge_lengths()
    assert torch.allclose(lengths, lengths[0].expand(30), atol=1e-6)
    # edge length of the unit-circumradius icosahedron: 4 / sqrt(10 + 2 sqrt 5)
    assert lengths[0].item() == pytest.approx(4 / math.sqrt(10 + 2 * math.sqrt(5)), abs=1e-6)


def test_level0_matches_cgal_icosahedron(cgal_data):
    lengths = icosahedron_edge_lengths()
    # same shape (edge/radius ratio, counts) as CGAL's icosahedron.off
    from geomgen.io import load_mesh

    ref = load_mesh(cgal_data / "meshes" / "icosahedron.off")
    rv = ref.verts_packed().double()
    rv = rv - rv.mean(0)
    re = ref.edges_packed()
    rl = torch.linalg.vector_norm(rv[re[:, 0]] - rv[re[:, 1]], dim=1)
    ratio = rl / torch.linalg.vector_norm(rv, dim=1).mean()
    assert re.shape == (30, 2) and torch.allclose(ratio, lengths, atol=1e-3)


def test_levels_nest_and_converge_to_sphere():
    prev = ico_sphere(0).verts_packed()
    for level in range(1, 5):
        cur = ico_sphere(level).verts_packed()
        assert torch.equal(cur[: prev.shape[0]], prev)  # old vertices first, same order
        prev = cur
    m = ico_sphere(5)
    assert m.surface_area().item() == pytest.approx(4 * math.pi, rel=2e-3)
    assert m.volume().item() == pytest.approx(4 / 3 * math.pi, rel=3e-3)


def test_fresh_tensors_and_device():
    a = ico_sphere(1, device="cpu")
    a.verts_packed().mul_(3.0)
    a.faces_list()[0].zero_()
    b = ico_sphere(1, device=torch.device("cpu"))
    assert torch.allclose(torch.linalg.vector_norm(b.verts_packed(), dim=1), torch.ones(42))
    assert b.faces_packed().max().item() == 41 and b.device == torch.device("cpu")


def test_same_vertex_set_as_pytorch3d():
    pytest.importorskip("pytorch3d")
    from pytorch3d.utils import ico_sphere as p3d_ico_sphere

    for level in range(4):
        ours = ico_sphere(level)
        ref = p3d_ico_sphere(level)
        v, rv = ours.verts_packed().double(), ref.verts_packed().double()
        assert v.shape == rv.shape and ours.faces_packed().shape == ref.faces_packed().shape
        # PyTorch3D's level-0 constants are rounded to ~5e-5
        assert torch.cdist(v, rv).min(1).values.max() < 1e-4
        assert torch.cdist(rv, v).min(1).values.max() < 1e-4


@pytest.mark.parametrize("level", [-1, 1.5, True, "2", None])
def test_bad_level(level):
    with pytest.raises(InvalidInputError, match="level"):
        ico_sphere(level)


def test_bad_device():
    with pytest.raises(InvalidInputError, match="device"):
        ico_sphere(0, device="not-a-device")
