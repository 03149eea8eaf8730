"""Tests for geomgen.structures.Meshes on a hand-made tetrahedron + unit cube batch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from geomgen.errors import BackendUnavailableError, InvalidInputError
from geomgen.structures import BatchIndexError, Meshes, join_meshes_as_batch

# Tetrahedron (4 verts, 4 faces) and unit cube [0, 1]^3 (8 verts, 12 faces),
# both with counter-clockwise faces seen from outside (outward normals).
TET_V = [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]
TET_F = [[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]]
CUBE_V = [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]]
CUBE_F = [
    [0, 2, 1], [0, 3, 2],  # z = 0
    [4, 5, 6], [4, 6, 7],  # z = 1
    [0, 1, 5], [0, 5, 4],  # y = 0
    [3, 7, 6], [3, 6, 2],  # y = 1
    [0, 4, 7], [0, 7, 3],  # x = 0
    [1, 2, 6], [1, 6, 5],  # x = 1
]


def tet():
    return torch.tensor(TET_V, dtype=torch.float32), torch.tensor(TET_F)


def cube():
    return torch.tensor(CUBE_V, dtype=torch.float32), torch.tensor(CUBE_F)


@pytest.fixture
def meshes() -> Meshes:
    (tv, tf), (cv, cf) = tet(), cube()
    return Meshes([tv, cv], [tf, cf])


def np_face_normals_areas(v: np.ndarray, f: np.ndarray):
    cr = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    nrm = np.linalg.norm(cr, axis=1)
    return cr / nrm[:, None], 0.5 * nrm, cr


# ----------------------------------------------------------------- views


def test_counts_and_repr(meshes):
    assert len(meshes) == 2
    assert meshes.num_verts_per_mesh().tolist() == [4, 8]
    assert meshes.num_faces_per_mesh().tolist() == [4, 12]
    assert meshes.num_verts_per_mesh().dtype == torch.int64
    r = repr(meshes)
    assert "N=2" in r and "[4, 8]" in r and "[4, 12]" in r
    assert not meshes.isempty()
    assert meshes.valid.tolist() == [True, True]
    assert meshes.device == torch.device("cpu") and meshes.dtype == torch.float32


def test_list_views_are_the_inputs(meshes):
    (tv, tf), (cv, cf) = tet(), cube()
    vl, fl = meshes.verts_list(), meshes.faces_list()
    assert torch.equal(vl[0], tv) and torch.equal(vl[1], cv)
    assert torch.equal(fl[0], tf) and torch.equal(fl[1], cf)
    assert fl[0].dtype == torch.int64


def test_padded_views(meshes):
    vp, fp = meshes.verts_padded(), meshes.faces_padded()
    assert vp.shape == (2, 8, 3) and fp.shape == (2, 12, 3)
    assert torch.equal(vp[0, :4], torch.tensor(TET_V, dtype=torch.float32))
    assert torch.all(vp[0, 4:] == 0)
    assert torch.equal(vp[1], torch.tensor(CUBE_V, dtype=torch.float32))
    assert torch.equal(fp[0, :4], torch.tensor(TET_F))
    assert torch.all(fp[0, 4:] == -1)
    assert torch.equal(fp[1], torch.tensor(CUBE_F))


def test_packed_views(meshes):
    vk, fk = meshes.verts_packed(), meshes.faces_packed()
    assert vk.shape == (12, 3) and fk.shape == (16, 3)
    assert torch.equal(vk, torch.tensor(TET_V + CUBE_V, dtype=torch.float32))
    expected = torch.tensor(TET_F + [[i + 4 for i in f] for f in CUBE_F])
    assert torch.equal(fk, expected)


def test_index_maps(meshes):
    assert meshes.mesh_to_verts_packed_first_idx().tolist() == [0, 4]
    assert meshes.mesh_to_faces_packed_first_idx().tolist() == [0, 4]
    assert meshes.verts_packed_to_mesh_idx().tolist() == [0] * 4 + [1] * 8
    assert meshes.faces_packed_to_mesh_idx().tolist() == [0] * 4 + [1] * 12
    idx = meshes.verts_padded_to_packed_idx()
    assert idx.tolist() == [0, 1, 2, 3] + list(range(8, 16))
    assert torch.equal(meshes.verts_padded().reshape(-1, 3)[idx], meshes.verts_packed())
    fidx = meshes.faces_padded_to_packed_idx()
    local = meshes.faces_padded().reshape(-1, 3)[fidx]
    assert torch.equal(local + meshes.mesh_to_verts_packed_first_idx()[meshes.faces_packed_to_mesh_idx()][:, None],
                       meshes.faces_packed())


def test_round_trip_padded_to_list(meshes):
    m2 = Meshes(meshes.verts_padded(), meshes.faces_padded())
    assert m2.num_verts_per_mesh().tolist() == [4, 8]  # inferred from max face index + 1
    for a, b in zip(m2.verts_list(), meshes.verts_list()):
        assert torch.equal(a, b)
    for a, b in zip(m2.faces_list(), meshes.faces_list()):
        assert torch.equal(a, b)
    # packed -> list
    m3 = Meshes(list(torch.split(meshes.verts_packed(), [4, 8])),
                [f - o for f, o in zip(torch.split(meshes.faces_packed(), [4, 12]), [0, 4])])
    assert torch.equal(m3.verts_padded(), meshes.verts_padded())
    assert torch.equal(m3.faces_padded(), meshes.faces_padded())


def test_mixed_list_and_padded_inputs(meshes):
    m = Meshes(meshes.verts_list(), meshes.faces_padded())
    assert m.num_faces_per_mesh().tolist() == [4, 12]
    m = Meshes(meshes.verts_padded(), meshes.faces_list())
    assert m.num_verts_per_mesh().tolist() == [4, 8]


def test_padded_verts_num_verts_and_faceless_mesh():
    vp = torch.rand(2, 6, 3)
    faces = [torch.tensor([[0, 1, 2]]), torch.zeros((0, 3), dtype=torch.int64)]
    m = Meshes(vp, faces)
    assert m.num_verts_per_mesh().tolist() == [3, 6]  # a mesh with no faces keeps all V
    m = Meshes(vp, faces, num_verts=[5, 2])
    assert m.num_verts_per_mesh().tolist() == [5, 2]
    assert torch.equal(m.verts_list()[0], vp[0, :5])
    assert m.num_faces_per_mesh().tolist() == [1, 0]
    assert m.valid.tolist() == [True, False]


def test_empty_batch_and_faceless():
    m = Meshes([], [])
    assert len(m) == 0 and m.isempty()
    assert m.verts_padded().shape == (0, 0, 3) and m.faces_packed().shape == (0, 3)
    assert m.edges_packed().shape == (0, 2) and m.volume().shape == (0,)
    assert m.get_bounding_boxes().shape == (0, 3, 2)
    m = Meshes([torch.rand(5, 3)], [torch.zeros((0, 3), dtype=torch.int64)])
    assert m.isempty() and len(m) == 1
    assert torch.equal(m.verts_normals_packed(), torch.zeros(5, 3))
    assert m.surface_area().tolist() == [0.0]
    m = Meshes([torch.zeros(0, 3), torch.rand(3, 3)], [torch.tensor([]), torch.tensor([[0, 1, 2]])])
    assert m.num_verts_per_mesh().tolist() == [0, 3]
    assert m.get_bounding_boxes()[0].abs().sum() == 0


def test_numpy_and_int32_inputs():
    vs = [np.array(TET_V, dtype=np.float64), np.array(CUBE_V, dtype=np.float64)]
    fs = [np.array(TET_F, dtype=np.int32), np.array(CUBE_F, dtype=np.int32)]
    m = Meshes(vs, fs)
    assert m.dtype == torch.float64 and m.faces_list()[0].dtype == torch.int64
    vs[0][0, 0] = 99.0  # numpy input is copied
    assert m.verts_list()[0][0, 0] == 0.0
    m = Meshes(np.zeros((1, 4, 3), np.float32), np.array([TET_F], dtype=np.int32))
    assert m.num_verts_per_mesh().tolist() == [4]


# ---------------------------------------------------------------- edges


def test_edges(meshes):
    e = meshes.edges_packed()
    assert meshes.num_edges_per_mesh().tolist() == [6, 18]
    assert e.shape == (24, 2)
    assert torch.all(e[:, 0] < e[:, 1])
    keys = (e[:, 0] * 100 + e[:, 1]).tolist()
    assert keys == sorted(keys) and len(set(keys)) == 24
    assert meshes.edges_packed_to_mesh_idx().tolist() == [0] * 6 + [1] * 18
    assert meshes.mesh_to_edges_packed_first_idx().tolist() == [0, 6]
    assert set(map(tuple, e[:6].tolist())) == {(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)}
    f2e = meshes.faces_packed_to_edges_packed()
    f = meshes.faces_packed()
    for k, (a, b) in enumerate([(1, 2), (2, 0), (0, 1)]):  # edge k is opposite vertex k
        got = e[f2e[:, k]]
        want = torch.sort(torch.stack([f[:, a], f[:, b]], 1), dim=1).values
        assert torch.equal(got, want)


# ------------------------------------------------------------- geometry


def test_face_areas_and_normals_vs_numpy(meshes):
    v = meshes.verts_packed().numpy().astype(np.float64)
    f = meshes.faces_packed().numpy()
    n_np, a_np, _ = np_face_normals_areas(v, f)
    np.testing.assert_allclose(meshes.faces_areas_packed().numpy(), a_np, rtol=1e-6)
    np.testing.assert_allclose(meshes.faces_normals_packed().numpy(), n_np, atol=1e-6)
    fl = meshes.faces_normals_list()
    assert [t.shape[0] for t in fl] == [4, 12]
    assert meshes.faces_normals_padded().shape == (2, 12, 3)
    # cube normals point outward: away from the centre
    cn = fl[1]
    cube_v = torch.tensor(CUBE_V, dtype=torch.float32)
    centroid = cube_v[torch.tensor(CUBE_F)].mean(1)
    assert torch.all((cn * (centroid - 0.5)).sum(1) > 0)
    assert torch.allclose(meshes.surface_area(), torch.tensor([1.5 + math.sqrt(3) / 2, 6.0]))


def test_verts_normals_vs_numpy(meshes):
    v = meshes.verts_packed().numpy().astype(np.float64)
    f = meshes.faces_packed().numpy()
    _, _, cr = np_face_normals_areas(v, f)
    acc = np.zeros_like(v)
    for k in range(3):
        np.add.at(acc, f[:, k], cr)
    acc /= np.linalg.norm(acc, axis=1, keepdims=True)
    np.testing.assert_allclose(meshes.verts_normals_packed().numpy(), acc, atol=1e-6)
    s = 1 / math.sqrt(3)
    assert torch.allclose(meshes.verts_normals_list()[1][6], torch.tensor([s, s, s]))
    assert torch.allclose(meshes.verts_normals_list()[0][1], torch.tensor([1.0, 0, 0]), atol=1e-6)
    assert meshes.verts_normals_padded().shape == (2, 8, 3)


def test_degenerate_face_and_isolated_vertex_give_zero_normals():
    v = torch.tensor([[0.0, 0, 0], [1, 0, 0], [2, 0, 0], [5, 5, 5]], requires_grad=True)
    m = Meshes([v], [torch.tensor([[0, 1, 2], [0, 0, 1]])])
    fn = m.faces_normals_packed()
    assert torch.equal(fn, torch.zeros(2, 3))
    vn = m.verts_normals_packed()
    assert torch.equal(vn, torch.zeros(4, 3))
    (fn.sum() + vn.sum() + m.faces_areas_packed().sum()).backward()
    assert torch.isfinite(v.grad).all()


def test_given_normals_and_colors(meshes):
    (tv, tf), (cv, cf) = tet(), cube()
    tn, cn = torch.rand(4, 3), torch.rand(8, 3)
    tc, cc = torch.rand(4, 4), torch.rand(8, 4)
    m = Meshes([tv, cv], [tf, cf], verts_normals=[tn, cn], verts_colors=[tc, cc])
    assert torch.equal(m.verts_normals_packed(), torch.cat([tn, cn]))
    assert torch.equal(m.verts_normals_list()[1], cn)
    assert m.verts_colors_list()[0] is tc
    assert m.verts_colors_padded().shape == (2, 8, 4) and m.verts_colors_packed().shape == (12, 4)
    assert meshes.verts_colors_list() is None and meshes.verts_colors_packed() is None
    m2 = Meshes(m.verts_padded(), m.faces_padded(), verts_normals=m.verts_normals_padded(),
                verts_colors=m.verts_colors_padded())
    assert torch.equal(m2.verts_colors_list()[0], tc)
    assert "verts_colors" in repr(m)


def test_bounding_boxes(meshes):
    bb = meshes.get_bounding_boxes()
    assert bb.shape == (2, 3, 2)
    assert torch.equal(bb[0], torch.tensor([[0.0, 1.0]] * 3))
    m = meshes.offset_verts(torch.tensor([1.0, -2.0, 0.5]))
    assert torch.equal(m.get_bounding_boxes()[1], torch.tensor([[1.0, 2.0], [-2.0, -1.0], [0.5, 1.5]]))


def test_volume(meshes):
    vol = meshes.volume()
    assert torch.allclose(vol, torch.tensor([1 / 6, 1.0]))
    flipped = Meshes(meshes.verts_list(), [f[:, [0, 2, 1]] for f in meshes.faces_list()])
    assert torch.allclose(flipped.volume(), torch.tensor([-1 / 6, -1.0]))
    moved = meshes.offset_verts(torch.tensor([3.0, -7.0, 11.0]))  # closed: translation-invariant
    assert torch.allclose(moved.volume(), vol, atol=1e-5)
    assert torch.allclose(meshes.scale_verts(2.0).volume(), 8 * vol)


# ------------------------------------------------------------- indexing


def test_getitem_variants(meshes):
    one = meshes[1]
    assert isinstance(one, Meshes) and len(one) == 1
    assert one.num_verts_per_mesh().tolist() == [8]
    assert meshes[-1].num_faces_per_mesh().tolist() == [12]
    assert meshes[0:1].num_verts_per_mesh().tolist() == [4]
    assert meshes[::-1].num_verts_per_mesh().tolist() == [8, 4]
    assert meshes[[1, 0, 1]].num_verts_per_mesh().tolist() == [8, 4, 8]
    assert meshes[torch.tensor([False, True])].num_verts_per_mesh().tolist() == [8]
    assert meshes[torch.tensor([1, 0])].num_verts_per_mesh().tolist() == [8, 4]
    assert meshes[np.array([0])].num_verts_per_mesh().tolist() == [4]
    assert len(meshes[[]]) == 0
    assert torch.equal(meshes[[1, 0]].faces_packed()[:12], torch.tensor(CUBE_F))
    assert [len(m.verts_list()[0]) for m in meshes] == [4, 8]


def test_getitem_errors(meshes):
    with pytest.raises(BatchIndexError, match="index: 2 out of range for a batch of 2"):
        meshes[2]
    with pytest.raises(IndexError):
        meshes[-3]
    with pytest.raises(InvalidInputError, match="index: bool mask"):
        meshes[torch.tensor([True])]
    with pytest.raises(InvalidInputError, match="index"):
        meshes[1.5]
    with pytest.raises(InvalidInputError, match="index"):
        meshes[torch.tensor([0.0])]


# ------------------------------------------------------ device / copies


def test_to_cpu(meshes):
    assert meshes.to("cpu") is meshes
    assert meshes.cpu() is meshes
    c = meshes.to(torch.device("cpu"), copy=True)
    assert c is not meshes and torch.equal(c.verts_packed(), meshes.verts_packed())
    with pytest.raises(InvalidInputError, match="device"):
        meshes.to("not-a-device")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_cuda_unavailable_error(meshes):
    with pytest.raises(BackendUnavailableError, match="device: 'cuda' requested but CUDA is not available"):
        meshes.cuda()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_round_trip(meshes):
    g = meshes.cuda()
    assert g.device.type == "cuda" and g.faces_packed().device.type == "cuda"
    assert torch.allclose(g.volume().cpu(), meshes.volume())
    assert g.num_edges_per_mesh().tolist() == [6, 18]
    assert g.to("cuda") is g
    assert torch.equal(g.cpu().verts_padded(), meshes.verts_padded())
    gv = Meshes([v.cuda() for v in meshes.verts_list()], [f.cpu().numpy() for f in meshes.faces_list()])
    assert gv.faces_packed().device.type == "cuda"


def test_clone_is_independent(meshes):
    c = meshes.clone()
    c.verts_list()[0][0, 0] = 42.0
    c.faces_list()[1][0, 0] = 3
    assert meshes.verts_list()[0][0, 0] == 0.0
    assert meshes.faces_list()[1][0, 0] == 0
    assert c.verts_packed()[0, 0] == 42.0


def test_detach_and_autograd():
    tv, tf = tet()
    cv, cf = cube()
    tv.requires_grad_(True)
    cv.requires_grad_(True)
    m = Meshes([tv, cv], [tf, cf])
    m.verts_padded().sum().backward()
    assert torch.equal(tv.grad, torch.ones(4, 3)) and torch.equal(cv.grad, torch.ones(8, 3))
    tv.grad = None
    (m.verts_packed() ** 2).sum().backward()
    assert torch.equal(tv.grad, 2 * tv.detach())
    assert not m.detach().verts_padded().requires_grad
    # through geometry, from padded input
    vp = torch.stack([torch.cat([tet()[0], torch.zeros(4, 3)]), cube()[0]]).requires_grad_(True)
    m = Meshes(vp, [tf, cf])
    m.volume().sum().backward()
    assert vp.grad is not None and torch.isfinite(vp.grad).all()
    assert torch.all(vp.grad[0, 4:] == 0)


def test_cache_follows_in_place_updates():
    tv, tf = tet()
    m = Meshes([tv], [tf])
    assert m.volume().item() == pytest.approx(1 / 6)
    with torch.no_grad():
        tv.mul_(2.0)  # e.g. an optimiser step on leaf verts
    assert m.verts_packed()[1, 0] == 2.0
    assert m.volume().item() == pytest.approx(8 / 6)
    m.verts_packed()[0, 0] = 5.0  # caller scribbles on a returned view
    assert m.verts_packed()[0, 0] == 0.0


def test_faces_modified_in_place_are_revalidated():
    tv, tf = tet()
    m = Meshes([tv], [tf])
    assert m.faces_packed().max() == 3
    tf[0, 0] = 9
    with pytest.raises(InvalidInputError, match="faces\\[0\\]: index 9 out of range for 4 vertices"):
        m.faces_packed()
    with pytest.raises(InvalidInputError, match="faces\\[0\\]: index 9"):
        m[0]  # nor is the corruption handed on to derived batches
    tf[0, 0] = 0
    m.faces_packed()[0, 0] = 77  # writing into a cached view is not served back
    assert m.faces_packed()[0, 0] == 0


# -------------------------------------------------------------- updates


def test_offset_and_scale(meshes):
    off = torch.arange(36, dtype=torch.float32).reshape(12, 3)
    m = meshes.offset_verts(off)
    assert torch.equal(m.verts_packed(), meshes.verts_packed() + off)
    assert m.faces_list()[1] is meshes.faces_list()[1]
    assert torch.equal(meshes.verts_packed()[0], torch.zeros(3))  # original untouched
    m2 = meshes.clone().offset_verts_(off)
    assert torch.equal(m2.verts_packed(), m.verts_packed())
    s = meshes.scale_verts(torch.tensor([2.0, -1.0]))
    assert torch.equal(s.verts_list()[0], 2 * meshes.verts_list()[0])
    assert torch.equal(s.verts_list()[1], -meshes.verts_list()[1])
    s2 = meshes.clone().scale_verts_(3.0)
    assert torch.equal(s2.verts_packed(), 3 * meshes.verts_packed())
    with pytest.raises(InvalidInputError, match="vert_offsets_packed"):
        meshes.offset_verts(torch.zeros(11, 3))
    with pytest.raises(InvalidInputError, match="scale"):
        meshes.scale_verts(torch.ones(3))


def test_scale_flips_given_normals():
    tv, tf = tet()
    n = torch.rand(4, 3)
    m = Meshes([tv], [tf], verts_normals=[n]).scale_verts(-2.0)
    assert torch.equal(m.verts_normals_packed(), -n)


def test_update_padded_keeps_autograd(meshes):
    new = (meshes.verts_padded() * 2).requires_grad_(True)
    m = meshes.update_padded(new)
    assert torch.equal(m.verts_list()[0], 2 * meshes.verts_list()[0])
    assert torch.equal(m.faces_padded(), meshes.faces_padded())
    m.verts_packed().sum().backward()
    assert new.grad[0, :4].eq(1).all() and new.grad[0, 4:].eq(0).all()
    with pytest.raises(InvalidInputError, match="new_verts_padded: expected a \\(2, 8, 3\\) tensor"):
        meshes.update_padded(torch.zeros(2, 7, 3))


def test_extend(meshes):
    e = meshes.extend(2)
    assert e.num_verts_per_mesh().tolist() == [4, 4, 8, 8]
    assert e.num_edges_per_mesh().tolist() == [6, 6, 18, 18]
    e.verts_list()[0][0, 0] = 9.0
    assert meshes.verts_list()[0][0, 0] == 0.0
    with pytest.raises(InvalidInputError, match="n: expected an int >= 1"):
        meshes.extend(0)


def test_join_meshes_as_batch(meshes):
    j = join_meshes_as_batch([meshes, meshes[0]])
    assert j.num_verts_per_mesh().tolist() == [4, 8, 4]
    assert torch.allclose(j.volume(), torch.tensor([1 / 6, 1.0, 1 / 6]))
    tv, tf = tet()
    colored = Meshes([tv], [tf], verts_colors=[torch.rand(4, 3)])
    with pytest.raises(InvalidInputError, match="meshes\\[1\\]: has verts_colors"):
        join_meshes_as_batch([meshes, colored])
    with pytest.raises(InvalidInputError, match="meshes\\[0\\]: expected a Meshes"):
        join_meshes_as_batch([tv])
    withn = Meshes([tv], [tf], verts_normals=[torch.ones(4, 3)])
    j = join_meshes_as_batch([withn, meshes])
    assert torch.equal(j.verts_normals_list()[0], torch.ones(4, 3))
    assert torch.allclose(j.verts_normals_list()[2], meshes.verts_normals_list()[1])
    assert len(join_meshes_as_batch([])) == 0


# ----------------------------------------------------------- validation


def _raises(match: str, *args, **kwargs):
    with pytest.raises(InvalidInputError, match=match):
        Meshes(*args, **kwargs)


def test_validation_errors():
    tv, tf = tet()
    cv, cf = cube()
    _raises(r"verts\[0\]: expected a \(V, 3\) tensor, got shape \(10, 2\)", [torch.rand(10, 2)], [tf])
    _raises(r"verts: expected a list of \(V, 3\) tensors or a padded \(N, V, 3\) tensor, got shape \(10, 3\)",
            torch.rand(10, 3), [tf])
    _raises(r"verts: expected a list .* got str", "verts", [tf])
    _raises(r"verts\[0\]: expected a floating-point tensor, got dtype torch.int64", [tv.long()], [tf])
    _raises(r"faces\[0\]: expected an integer tensor, got dtype torch.float32", [tv], [tf.float()])
    _raises(r"faces\[1\]: expected a \(F, 3\) tensor, got shape \(12, 4\)", [tv, cv], [tf, torch.zeros(12, 4).long()])
    _raises(r"faces: got 1 items but verts has 2", [tv, cv], [tf])
    _raises(r"faces: got 3 items but verts has 2", [tv, cv], torch.zeros(3, 4, 3).long())
    bad = cf.clone()
    bad[5, 1] = 57
    _raises(r"faces\[1\]: index 57 out of range for 8 vertices", [tv, cv], [tf, bad])
    bad[5, 1] = -2
    _raises(r"faces\[1\]: negative index -2", [tv, cv], [tf, bad])
    nan = cv.clone()
    nan[0, 0], nan[1, 1], nan[2, 2] = float("nan"), float("inf"), float("-inf")
    _raises(r"verts\[1\]: contains 3 NaN/Inf values", [tv, nan], [tf, cf])
    _raises(r"verts\[1\]: dtype torch.float64 differs from verts\[0\]", [tv, cv.double()], [tf, cf])
    _raises(r"verts_normals: got 1 items but verts has 2", [tv, cv], [tf, cf], verts_normals=[torch.rand(4, 3)])
    _raises(r"verts_normals\[1\]: has 7 rows but verts\[1\] has 8", [tv, cv], [tf, cf],
            verts_normals=[torch.rand(4, 3), torch.rand(7, 3)])
    _raises(r"verts_normals\[0\]: contains 1 NaN/Inf", [tv], [tf],
            verts_normals=[torch.tensor([[float("nan"), 0, 0]] + [[0, 0, 1.0]] * 3)])
    _raises(r"verts_colors\[0\]: expected a \(V, 3 or 4\) tensor, got shape \(4, 2\)", [tv], [tf],
            verts_colors=[torch.rand(4, 2)])
    colors = torch.full((4, 3), 0.5)
    colors[0, 0] = 1.5
    _raises(r"verts_colors\[0\]: 1 values outside \[0, 1\]", [tv], [tf], verts_colors=[colors])
    _raises(r"verts_colors\[1\]: has 4 channels but verts_colors\[0\] has 3", [tv, cv], [tf, cf],
            verts_colors=[torch.rand(4, 3), torch.rand(8, 4)])
    _raises(r"num_verts: only allowed with padded verts", [tv], [tf], num_verts=[4])
    _raises(r"num_verts\[0\]: 9 is outside \[0, 8\]", torch.rand(1, 8, 3), [tf], num_verts=[9])
    _raises(r"num_verts: expected 1 lengths", torch.rand(1, 8, 3), [tf], num_verts=[4, 4])
    _raises(r"faces\[0\]: index 3 out of range for 2 vertices", torch.rand(1, 8, 3), [tf], num_verts=[2])
    _raises(r"faces\[0\]: index 3 out of range for 3 vertices", torch.rand(1, 3, 3), [tf])
    _raises(r"faces\[0\]: negative index -1", torch.rand(1, 4, 3), torch.tensor([[[0, 1, -1], [-1, -1, -1]]]))


def test_validate_false_skips_value_checks():
    tv, tf = tet()
    nan = tv.clone()
    nan[0, 0] = float("nan")
    m = Meshes([nan], [tf], validate=False)
    assert not m.validated and torch.isnan(m.verts_packed()).any()
    with pytest.raises(InvalidInputError, match="verts\\[0\\]: expected a \\(V, 3\\)"):
        Meshes([torch.rand(4, 2)], [tf], validate=False)  # shapes are always checked
