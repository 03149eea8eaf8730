"""Tests of geomgen.ops.subdivide (midpoint 1-to-4 subdivision)."""

from __future__ import annotations

import pytest
import torch

from geomgen.errors import InvalidInputError
from geomgen.ops.ico_sphere import ico_sphere
from geomgen.ops.subdivide import SubdivideMeshes, subdivide_meshes
from geomgen.structures import Meshes, join_meshes_as_batch


def naive_subdivide(verts: torch.Tensor, faces: torch.Tensor, feats: torch.Tensor | None = None):
    """Python-loop reference for one mesh: new vertex per sorted unique edge
    (in sorted order), children (a, m_c, m_b), (b, m_a, m_c), (c, m_b, m_a),
    (m_a, m_b, m_c) per face."""
    edges = sorted({tuple(sorted((f[i], f[j]))) for f in faces.tolist() for i, j in ((0, 1), (1, 2), (2, 0))})
    nv = verts.shape[0]
    index = {e: nv + k for k, e in enumerate(edges)}
    new_v = [verts] + [((verts[a] + verts[b]) / 2)[None] for a, b in edges]
    new_f = []
    for a, b, c in faces.tolist():
        ma, mb, mc = index[tuple(sorted((b, c)))], index[tuple(sorted((c, a)))], index[tuple(sorted((a, b)))]
        new_f += [[a, mc, mb], [b, ma, mc], [c, mb, ma], [ma, mb, mc]]
    out_feats = None
    if feats is not None:
        out_feats = torch.cat([feats] + [((feats[a] + feats[b]) / 2)[None] for a, b in edges])
    return torch.cat(new_v), torch.tensor(new_f, dtype=torch.int64).reshape(-1, 3), out_feats, len(edges)


def random_batch(dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    s = ico_sphere(1)
    vs = [
        s.verts_packed().to(dtype) + 0.1 * torch.randn(42, 3, generator=g, dtype=dtype),
        torch.rand(5, 3, generator=g, dtype=dtype),  # vertex 4 is isolated
        torch.rand(3, 3, generator=g, dtype=dtype),  # a mesh without faces
        torch.rand(6, 3, generator=g, dtype=dtype),
    ]
    fs = [
        s.faces_packed(),
        torch.tensor([[0, 1, 2], [2, 1, 3]]),
        torch.zeros(0, 3, dtype=torch.int64),
        torch.tensor([[0, 1, 2], [0, 2, 3], [0, 3, 4], [0, 4, 5], [1, 0, 5], [2, 1, 5]]),  # non-manifold-ish fan
    ]
    return Meshes(vs, fs), vs, fs


def face_normals(v, f):
    t = v[f]
    return torch.linalg.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0], dim=1)


def test_against_naive_heterogeneous_batch():
    meshes, vs, fs = random_batch()
    feats = torch.randn(sum(v.shape[0] for v in vs), 4, dtype=torch.float64)
    new, new_feats = subdivide_meshes(meshes, feats)
    assert len(new) == 4 and new.dtype == torch.float64
    feats_list = torch.split(feats, [v.shape[0] for v in vs])
    ref_feats = []
    for i, (v, f, ft) in enumerate(zip(vs, fs, feats_list)):
        rv, rf, rft, ne = naive_subdivide(v, f, ft)
        assert torch.equal(new.verts_list()[i], rv)
        assert torch.equal(new.faces_list()[i], rf)
        assert new.verts_list()[i].shape[0] == v.shape[0] + ne
        assert new.faces_list()[i].shape[0] == 4 * f.shape[0]
        ref_feats.append(rft)
    assert torch.equal(new_feats, torch.cat(ref_feats))
    # E' = 2E + 3F
    assert torch.equal(new.num_edges_per_mesh(), 2 * meshes.num_edges_per_mesh() + 3 * meshes.num_faces_per_mesh())


def test_children_keep_orientation_and_area_planar():
    # random planar triangulation in a tilted plane: total area preserved, normals parallel
    g = torch.Generator().manual_seed(1)
    uv = torch.rand(30, 2, generator=g, dtype=torch.float64)
    from scipy.spatial import Delaunay

    tri = torch.tensor(Delaunay(uv.numpy()).simplices, dtype=torch.int64)
    basis = torch.tensor([[1.0, 0.2, 0.3], [-0.1, 0.8, 0.5]], dtype=torch.float64)
    v = uv @ basis + torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    m = Meshes([v], [tri])
    s = subdivide_meshes(m)
    assert s.surface_area().item() == pytest.approx(m.surface_area().item(), rel=1e-12)
    pn = face_normals(v, tri)
    cn = face_normals(s.verts_packed(), s.faces_packed())
    parent = pn.repeat_interleave(4, dim=0)
    assert torch.allclose(cn * 4, parent, atol=1e-12)  # same direction, a quarter of the area each


def test_real_mesh_area_volume_and_pytorch3d(cgal_data):
    from geomgen.io import load_mesh

    m = load_mesh(cgal_data / "meshes" / "blob.off")
    s = subdivide_meshes(m)
    assert s.surface_area().item() == pytest.approx(m.surface_area().item(), rel=1e-5)
    assert s.volume().item() == pytest.approx(m.volume().item(), rel=1e-5)
    assert s.verts_packed().shape[0] == 138 + m.edges_packed().shape[0] and s.faces_packed().shape[0] == 4 * 270


def test_ico_sphere_levels_consistent():
    for level in range(3):
        s = subdivide_meshes(ico_sphere(level))
        v = s.verts_packed()
        v = v / torch.linalg.vector_norm(v, dim=1, keepdim=True)
        nxt = ico_sphere(level + 1)
        assert torch.allclose(v, nxt.verts_packed(), atol=1e-6)
        assert torch.equal(s.faces_packed(), nxt.faces_packed())


def test_colors_carried_normals_dropped_and_gradients():
    v = torch.rand(4, 3, dtype=torch.float64, requires_grad=True)
    f = torch.tensor([[0, 1, 2], [0, 2, 3]])
    colors = torch.rand(4, 3, dtype=torch.float64)
    m = Meshes([v], [f], verts_normals=[torch.tensor([[0.0, 0, 1]] * 4, dtype=torch.float64)], verts_colors=[colors])
    s = subdivide_meshes(m)
    c = s.verts_colors_list()[0]
    e = m.edges_packed()
    assert torch.allclose(c[4:], (colors[e[:, 0]] + colors[e[:, 1]]) / 2) and torch.equal(c[:4], colors)
    assert not s.has_verts_normals()
    feats = torch.rand(4, 2, dtype=torch.float64, requires_grad=True)

    def fn(v, feats):
        s, nf = subdivide_meshes(Meshes([v], [f]), feats)
        return s.verts_packed(), nf

    assert torch.autograd.gradcheck(fn, (v, feats))


def test_empty_batch_and_faceless_meshes():
    s = subdivide_meshes(Meshes([], []))
    assert len(s) == 0
    m = Meshes([torch.rand(3, 3)], [torch.zeros(0, 3, dtype=torch.int64)])
    s, ft = subdivide_meshes(m, torch.rand(3, 2))
    assert s.verts_packed().shape == (3, 3) and s.faces_packed().shape == (0, 3) and ft.shape == (3, 2)


def test_module_with_and_without_template():
    b = join_meshes_as_batch([ico_sphere(2)] * 3)
    b = b.offset_verts(torch.randn(b.verts_packed().shape[0], 3) * 0.01)
    feats = torch.randn(3 * 162, 5)
    ref, ref_f = subdivide_meshes(b, feats)
    for mod in (SubdivideMeshes(), SubdivideMeshes(ico_sphere(2))):
        out, out_f = mod(b, feats)
        assert torch.equal(out.verts_packed(), ref.verts_packed())
        assert torch.equal(out.faces_packed(), ref.faces_packed())
        assert torch.equal(out_f, ref_f)
        assert torch.equal(mod(b).verts_packed(), ref.verts_packed())
    # padded feats keep their layout in template mode
    mod = SubdivideMeshes(ico_sphere(2))
    _, pf = mod(b, feats.reshape(3, 162, 5))
    assert pf.shape == (3, 162 + 480, 5) and torch.equal(pf.reshape(-1, 5), ref_f)
    assert "subdivided_faces" in dict(mod.named_buffers())
    with pytest.raises(InvalidInputError, match="meshes"):
        mod(join_meshes_as_batch([ico_sphere(2), ico_sphere(1)]))
    with pytest.raises(InvalidInputError, match="meshes"):
        mod(Meshes([torch.rand(162, 3)], [ico_sphere(2).faces_packed().flip(1)]))  # same counts, other faces
    with pytest.raises(InvalidInputError, match="feats"):
        mod(b, torch.randn(10, 5))


def test_against_pytorch3d():
    pytest.importorskip("pytorch3d")
    from pytorch3d.ops import SubdivideMeshes as P3DSubdivide
    from pytorch3d.structures import Meshes as P3DMeshes

    meshes, vs, fs = random_batch(torch.float32, seed=3)
    keep = [0, 1, 3]  # PyTorch3D's heterogeneous path needs faces in every mesh
    vs, fs = [vs[i] for i in keep], [fs[i] for i in keep]
    meshes = Meshes(vs, fs)
    feats = torch.randn(sum(v.shape[0] for v in vs), 3)
    ours, our_f = subdivide_meshes(meshes, feats)
    ref, ref_f = P3DSubdivide()(P3DMeshes(vs, fs), feats)
    assert torch.allclose(ours.verts_packed(), ref.verts_packed(), atol=1e-6)
    assert torch.allclose(our_f, ref_f, atol=1e-6)

    def canon(f):  # rotate each face to start at its smallest index, then sort rows
        rolls = torch.stack([f.roll(-k, 1) for k in range(3)], 1)
        c = rolls[torch.arange(len(f)), rolls[:, :, 0].argmin(1)]
        return sorted(map(tuple, c.tolist()))

    for a, b in zip(ours.faces_list(), ref.faces_list()):
        assert canon(a) == canon(b)


def test_validation():
    with pytest.raises(InvalidInputError, match="meshes"):
        subdivide_meshes(torch.rand(3, 3))
    m = ico_sphere(0)
    with pytest.raises(InvalidInputError, match="feats"):
        subdivide_meshes(m, torch.rand(11, 2))
    with pytest.raises(InvalidInputError, match="feats"):
        subdivide_meshes(m, torch.rand(12))
    with pytest.raises(InvalidInputError, match="meshes"):
        SubdivideMeshes(Meshes([], []))
