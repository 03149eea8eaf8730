"""Tests of geomgen.ops.cubify: cube counts, shared corners, no interior faces,
closed outward surfaces, numba kernel vs torch reference, PyTorch3D layouts."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from geomgen.errors import BackendUnavailableError, InvalidInputError
from geomgen.ops.cubify import cubify
from geomgen.structures import Meshes, Voxels

HAS_P3D = importlib.util.find_spec("pytorch3d") is not None


def directed_edge_counts(faces: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(keys, counts) of the directed edges, and the reversed key of each unique key."""
    f = faces.numpy().astype(np.int64)
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    base = int(f.max(initial=0)) + 1
    uniq, cnt = np.unique(e[:, 0] * base + e[:, 1], return_counts=True)
    rev = (uniq % base) * base + uniq // base
    return uniq, cnt, rev


def assert_closed_oriented(faces: torch.Tensor) -> None:
    """Each directed edge occurs as often as its reverse (closed and consistently oriented,
    allowing the non-manifold edges of edge-only contacts)."""
    uniq, cnt, rev = directed_edge_counts(faces)
    pos = np.searchsorted(uniq, rev)
    pos = np.minimum(pos, len(uniq) - 1)
    assert (uniq[pos] == rev).all(), "boundary edge"
    assert (cnt[pos] == cnt).all(), "unbalanced edge directions"


def assert_manifold_closed(faces: torch.Tensor) -> None:
    """Each directed edge exactly once and its reverse exactly once."""
    uniq, cnt, rev = directed_edge_counts(faces)
    assert cnt.max(initial=1) == 1
    assert np.isin(rev, uniq).all()


def has_edge_contacts(mask: np.ndarray) -> bool:
    """Two occupied voxels sharing only a grid edge (the 2x2 around an edge is diagonal)."""
    p = np.pad(mask.astype(bool), 1)
    for a, b in ((0, 1), (0, 2), (1, 2)):
        s00 = p
        s01 = np.roll(p, -1, axis=b)
        s10 = np.roll(p, -1, axis=a)
        s11 = np.roll(np.roll(p, -1, axis=a), -1, axis=b)
        diag = (s00 & s11 & ~s01 & ~s10) | (s01 & s10 & ~s00 & ~s11)
        if diag.any():
            return True
    return False


def blob(n: int, seed: int) -> torch.Tensor:
    """A smooth random solid: union of a few balls on an n^3 grid (bool)."""
    g = np.random.default_rng(seed)
    k, j, i = np.meshgrid(*(np.arange(n),) * 3, indexing="ij")
    out = np.zeros((n, n, n), dtype=bool)
    for _ in range(4):
        c = g.uniform(n * 0.3, n * 0.7, 3)
        r = g.uniform(n * 0.12, n * 0.3)
        out |= (i - c[0]) ** 2 + (j - c[1]) ** 2 + (k - c[2]) ** 2 <= r * r
    return torch.from_numpy(out)


# --------------------------------------------------------------------------- #
# small exact cases
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_single_voxel(backend):
    m = cubify(torch.ones(1, 1, 1), backend=backend)
    v, f = m.verts_list()[0], m.faces_list()[0]
    assert v.shape == (8, 3) and f.shape == (12, 3)
    assert float(m.volume()[0]) == pytest.approx(1.0)
    assert_manifold_closed(f)
    assert torch.equal(v.min(0).values, torch.zeros(3)) and torch.equal(v.max(0).values, torch.ones(3))


@pytest.mark.parametrize("backend", ["numba", "torch"])
@pytest.mark.parametrize("shape", [(1, 1, 2), (1, 2, 1), (2, 1, 1)])
def test_two_voxels_share_a_face(backend, shape):
    m = cubify(torch.ones(shape), backend=backend)
    assert m.verts_list()[0].shape == (12, 3) and m.faces_list()[0].shape == (20, 3)
    assert float(m.volume()[0]) == pytest.approx(2.0)
    assert_manifold_closed(m.faces_list()[0])


def test_placement_is_grid_units_xyz():
    vox = torch.zeros(3, 4, 5)
    vox[2, 1, 4] = 1  # k, j, i
    v = cubify(vox).verts_list()[0]
    torch.testing.assert_close(v.min(0).values, torch.tensor([4.0, 1.0, 2.0]))
    torch.testing.assert_close(v.max(0).values, torch.tensor([5.0, 2.0, 3.0]))


def test_outward_normals():
    m = cubify(torch.ones(2, 3, 4))
    v, f = m.verts_list()[0], m.faces_list()[0]
    centre = torch.tensor([2.0, 1.5, 1.0])
    cent = v[f].mean(1)
    n = m.faces_normals_packed()
    assert ((n * (cent - centre)).sum(1) > 0).all()
    assert float(m.volume()[0]) == pytest.approx(24.0)
    # a full grid is one box: only boundary corners are vertices
    assert v.shape[0] == 3 * 4 * 5 - 1 * 2 * 3  # (D+1)(H+1)(W+1) minus interior corners
    assert f.shape[0] == 2 * 2 * (2 * 3 + 3 * 4 + 2 * 4)


def test_edge_contact_is_non_manifold_but_closed():
    vox = torch.zeros(2, 2, 1)
    vox[0, 0, 0] = vox[1, 1, 0] = 1  # touch along one x-edge
    m = cubify(vox)
    f = m.faces_list()[0]
    assert m.verts_list()[0].shape[0] == 14  # the 2 corners of the shared edge are shared
    assert_closed_oriented(f)
    _, cnt, _ = directed_edge_counts(f)
    assert cnt.max() == 2  # the shared edge has 4 faces (2 per direction)
    assert float(m.volume()[0]) == pytest.approx(2.0)


def test_empty_and_tiny_grids():
    for vox in (torch.zeros(1, 1, 1), torch.zeros(4, 5, 6), torch.zeros(0, 3, 3, 3)):
        m = cubify(vox)
        assert m.isempty()
        for v, f in zip(m.verts_list(), m.faces_list()):
            assert v.shape == (0, 3) and f.shape == (0, 3)
    assert len(cubify(torch.zeros(0, 3, 3, 3))) == 0
    m = cubify(torch.ones(1, 7, 1))
    assert_manifold_closed(m.faces_list()[0])
    assert float(m.volume()[0]) == pytest.approx(7.0)


# --------------------------------------------------------------------------- #
# random solids
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("seed", range(4))
def test_random_blobs_closed_volume_counts(seed):
    occ = blob(24, seed)
    m = cubify(occ)
    v, f = m.verts_list()[0], m.faces_list()[0]
    assert float(m.volume()[0]) == pytest.approx(float(occ.sum()), rel=1e-5)
    assert_closed_oriented(f)
    if not has_edge_contacts(occ.numpy()):
        assert_manifold_closed(f)
    assert len(np.unique(f.numpy())) == v.shape[0]  # every vertex is used
    # vertices are shared: no two vertices at one position
    assert len(np.unique(v.numpy(), axis=0)) == v.shape[0]


def test_random_noise_closed_oriented():
    g = torch.Generator().manual_seed(0)
    occ = torch.rand(13, 11, 17, generator=g) > 0.6
    m = cubify(occ)
    assert_closed_oriented(m.faces_list()[0])
    assert float(m.volume()[0]) == pytest.approx(float(occ.sum()), rel=1e-5)


def test_manifold_blob_without_contacts():
    occ = blob(20, 4)
    assert not has_edge_contacts(occ.numpy())
    assert_manifold_closed(cubify(occ).faces_list()[0])


# --------------------------------------------------------------------------- #
# numba vs torch reference
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 5, 1), (3, 4, 5), (6, 1, 9), (9, 8, 17), (16, 2, 3)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_numba_matches_torch_reference(shape, dtype):
    g = torch.Generator().manual_seed(sum(shape))
    vals = torch.rand(3, *shape, generator=g, dtype=dtype)
    vals[1] = 1.0  # full
    vals[2] = torch.where(vals[2] > 0.3, 1.0, 0.0)
    a, fa = cubify(vals, 0.5, backend="numba", return_face_voxels=True)
    b, fb = cubify(vals, 0.5, backend="torch", return_face_voxels=True)
    assert torch.equal(fa, fb)
    for va, vb, ga, gb in zip(a.verts_list(), b.verts_list(), a.faces_list(), b.faces_list()):
        assert va.dtype == dtype
        assert torch.equal(va, vb)
        assert torch.equal(ga, gb)


@pytest.mark.parametrize("workers", [2, -1])
def test_threaded_numba_matches_single_thread(monkeypatch, workers):
    mc_mod = importlib.import_module("geomgen.ops.marching_cubes")  # the package attribute is the function

    occ = blob(30, 3)
    ref = cubify(occ)
    monkeypatch.setattr(mc_mod, "_PARALLEL_MIN_SAMPLES", 0)
    out = cubify(occ, workers=workers)
    assert torch.equal(ref.faces_list()[0], out.faces_list()[0])
    assert torch.equal(ref.verts_list()[0], out.verts_list()[0])
    from geomgen.kernels.cubify_numba import cubify_numba

    arr = occ.float().numpy()
    one = cubify_numba(arr, 0.5, True, np.zeros(3), np.ones(3), np.float32, True, 1)
    many = cubify_numba(arr, 0.5, True, np.zeros(3), np.ones(3), np.float32, True, 40)
    for x, y in zip(one[:3], many[:3]):
        assert np.array_equal(x, y)


# --------------------------------------------------------------------------- #
# Voxels, thresholds, face voxels
# --------------------------------------------------------------------------- #


def test_voxels_world_placement_and_kinds():
    occ = blob(12, 5).float()
    vox = Voxels(occ[None], kind="occupancy", origin=(1.0, -2.0, 0.5), voxel_size=(0.5, 0.25, 2.0))
    m = cubify(vox)
    raw = cubify(occ)
    expect = torch.tensor([1.0, -2.0, 0.5]) + raw.verts_list()[0] * torch.tensor([0.5, 0.25, 2.0])
    torch.testing.assert_close(m.verts_list()[0], expect)
    assert float(m.volume()[0]) == pytest.approx(float(occ.sum()) * 0.5 * 0.25 * 2.0, rel=1e-5)
    # the boxes cover exactly the voxels: bounding box of the mesh == that of the occupied voxels
    box = vox.get_bounding_boxes()[0]
    assert (m.verts_list()[0] >= box[:, 0] - 1e-6).all() and (m.verts_list()[0] <= box[:, 1] + 1e-6).all()
    # sdf voxels: inside is value <= thresh (default 0), same as Voxels.occupancy()
    sdf = torch.where(occ > 0, -1.0, 1.0)
    sdf[0, 0, 0] = 0.0  # exactly at the level: occupied
    vs = Voxels(sdf[None], kind="sdf")
    ms = cubify(vs)
    assert float(ms.volume()[0]) == pytest.approx(float(vs.occupancy().sum()), rel=1e-5)
    assert float(cubify(vs, -2.0).volume()[0]) == 0.0
    # occupancy threshold is >= (PyTorch3D's voxels.ge(thresh))
    half = torch.full((2, 2, 2), 0.5)
    assert float(cubify(half).volume()[0]) == pytest.approx(8.0)
    assert cubify(half, 0.51).isempty()
    # thresholds are compared in the values' dtype: float32(0.7) >= 0.7 on both backends
    seven = torch.full((2, 2, 2), 0.7)
    for backend in ("numba", "torch"):
        assert float(cubify(seven, 0.7, backend=backend).volume()[0]) == pytest.approx(8.0)


def test_input_dtypes():
    occ = blob(10, 2)
    ref = cubify(occ.float())
    for x in (occ, occ.to(torch.uint8), occ.to(torch.int64), occ.half()):
        m = cubify(x)
        assert torch.equal(m.faces_list()[0], ref.faces_list()[0])
        assert m.dtype == (torch.float32 if x.dtype == torch.half else torch.get_default_dtype())
    assert cubify(occ.double()).dtype == torch.float64


def test_face_voxels_locate_faces():
    g = torch.Generator().manual_seed(4)
    vals = torch.rand(2, 5, 6, 7, generator=g)
    m, fvox = cubify(vals, 0.6, return_face_voxels=True)
    assert fvox.shape == (int(m.num_faces_per_mesh().sum()),)
    n, rest = fvox // (5 * 6 * 7), fvox % (5 * 6 * 7)
    k, j, i = rest // 42, (rest // 7) % 6, rest % 7
    assert torch.equal(n, m.faces_packed_to_mesh_idx())
    assert (vals[n, k, j, i] >= 0.6).all()
    cent = m.verts_packed()[m.faces_packed()].mean(1)
    lo = torch.stack([i, j, k], 1).float()
    assert ((cent >= lo - 1e-6) & (cent <= lo + 1 + 1e-6)).all()
    # gathering per-voxel features for each face
    feats = torch.rand(2, 3, 5, 6, 7, generator=g)
    per_face = feats.permute(0, 2, 3, 4, 1).reshape(-1, 3)[fvox]
    assert per_face.shape == (fvox.shape[0], 3)


# --------------------------------------------------------------------------- #
# PyTorch3D
# --------------------------------------------------------------------------- #


@pytest.mark.skipif(not HAS_P3D, reason="PyTorch3D not installed")
@pytest.mark.parametrize("align", ["topleft", "corner", "center"])
def test_align_matches_pytorch3d_layout(align):
    import pytorch3d.ops

    occ = blob(9, 7).float()[None]
    occ = torch.cat([occ, torch.zeros_like(occ)])
    ours = cubify(occ, 0.5, align=align)
    theirs = pytorch3d.ops.cubify(occ, 0.5, align=align)
    for a, b in zip(ours.verts_list(), theirs.verts_list()):
        sa = np.unique(np.round(a.numpy(), 5), axis=0)
        sb = np.unique(np.round(b.numpy(), 5), axis=0)
        assert sa.shape == sb.shape and np.allclose(sa, sb, atol=1e-5)
    assert ours.faces_list()[0].shape == theirs.faces_list()[0].shape
    theirs_g = Meshes(theirs.verts_list()[:1], theirs.faces_list()[:1])
    assert float(ours.volume()[0]) == pytest.approx(float(theirs_g.volume()[0]), rel=1e-4)


@pytest.mark.skipif(not HAS_P3D, reason="PyTorch3D not installed")
def test_pytorch3d_backend_agrees():
    occ = blob(14, 9)
    a = cubify(occ)
    b = cubify(occ, backend="pytorch3d")
    assert torch.equal(a.verts_list()[0], b.verts_list()[0])  # same corners, renumbered to our order
    assert a.faces_list()[0].shape == b.faces_list()[0].shape
    assert float(a.volume()[0]) == pytest.approx(float(b.volume()[0]), rel=1e-5)
    assert float(a.surface_area()[0]) == pytest.approx(float(b.surface_area()[0]), rel=1e-5)
    e = cubify(torch.zeros(1, 1, 1), backend="pytorch3d")
    assert e.isempty()
    single = cubify(torch.ones(1, 1, 1), backend="pytorch3d")  # size-1 axes work (padded)
    assert single.verts_list()[0].shape == (8, 3)


# --------------------------------------------------------------------------- #
# errors
# --------------------------------------------------------------------------- #


def test_invalid_inputs_name_the_argument():
    good = torch.rand(3, 4, 5)
    cases = [
        (lambda: cubify(good.numpy()), "voxels"),
        (lambda: cubify(torch.rand(4, 4)), "voxels"),
        (lambda: cubify(torch.rand(4, 4, 4, dtype=torch.complex64)), "voxels"),
        (lambda: cubify(good, float("nan")), "thresh"),
        (lambda: cubify(good, "0.5"), "thresh"),
        (lambda: cubify(good, align="middle"), "align"),
        (lambda: cubify(torch.rand(1, 4, 4), align="topleft"), "align"),
        (lambda: cubify(Voxels(good[None]), align="corner"), "align"),
        (lambda: cubify(good, backend="gpu"), "backend"),
        (lambda: cubify(good, return_face_voxels=1), "return_face_voxels"),
        (lambda: cubify(good, backend="pytorch3d", return_face_voxels=True), "return_face_voxels"),
        (lambda: cubify(good, workers=0), "workers"),
        (lambda: cubify(good, workers=-3), "workers"),
    ]
    for call, name in cases:
        with pytest.raises(InvalidInputError, match=f"'{name}'"):
            call()


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_nan_is_an_error_inf_is_a_value(backend):
    vals = torch.rand(2, 3, 4, 5)
    vals[1, 2, 3, 4] = float("nan")
    with pytest.raises(InvalidInputError, match=r"'voxels'.*\(1, 2, 3, 4\)"):
        cubify(vals, backend=backend)
    vals[1, 2, 3, 4] = float("inf")
    m = cubify(vals, backend=backend)
    assert float(m.volume()[1]) == pytest.approx(float((vals[1] >= 0.5).sum()))
    vox = Voxels(vals.clone().fill_(0.0).index_put_((torch.tensor([0]),) * 4, torch.tensor(float("nan"))),
                 kind="sdf", validate=False)
    with pytest.raises(InvalidInputError, match="'voxels'"):
        cubify(vox, backend=backend)


def test_pytorch3d_backend_unavailable(no_pytorch3d):
    with pytest.raises(BackendUnavailableError, match="pytorch3d"):
        cubify(torch.ones(2, 2, 2), backend="pytorch3d")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_uses_torch_reference_and_matches_cpu():
    occ = blob(16, 2)
    cpu, fc = cubify(occ, return_face_voxels=True)
    gpu, fg = cubify(occ.cuda(), return_face_voxels=True)
    assert gpu.device.type == "cuda"
    assert torch.equal(cpu.faces_list()[0], gpu.faces_list()[0].cpu())
    assert torch.equal(cpu.verts_list()[0], gpu.verts_list()[0].cpu())
    assert torch.equal(fc, fg.cpu())
    with pytest.raises(BackendUnavailableError, match="CPU"):
        cubify(occ.cuda(), backend="numba")
