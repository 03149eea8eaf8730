"""Tests of geomgen.ops.marching_cubes: generated tables, closedness, orientation,
numba kernel vs torch reference, scikit-image / PyTorch3D agreement, edge cases."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from geomgen.errors import BackendUnavailableError, InvalidInputError
from geomgen.kernels import _mc_tables as T
from geomgen.ops.marching_cubes import marching_cubes
from geomgen.structures import Meshes, Voxels

HAS_SKIMAGE = importlib.util.find_spec("skimage") is not None
HAS_P3D = importlib.util.find_spec("pytorch3d") is not None


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #


def grid(n: int, lo: float = -1.0, hi: float = 1.0, dtype=torch.float64):
    """(X, Y, Z) coordinate tensors of shape (n, n, n) indexed [k, j, i], and the step."""
    x = torch.linspace(lo, hi, n, dtype=dtype)
    z, y, xx = torch.meshgrid(x, x, x, indexing="ij")
    return xx, y, z, float(x[1] - x[0])


def sphere_sdf(n=40, r=0.7, c=(0.0, 0.0, 0.0), dtype=torch.float64):
    x, y, z, h = grid(n, dtype=dtype)
    return ((x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2).sqrt() - r, h


def torus_sdf(n=48, R=0.6, r=0.25, dtype=torch.float64):
    x, y, z, h = grid(n, dtype=dtype)
    return (((x**2 + y**2).sqrt() - R) ** 2 + z**2).sqrt() - r, h


def assert_closed(faces: torch.Tensor, num_verts: int | None = None) -> None:
    """Every directed edge occurs once and its reverse occurs once: closed, consistently
    oriented, edge-manifold.  With ``num_verts``, every vertex is used."""
    f = faces.numpy().astype(np.int64)
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    base = int(f.max(initial=0)) + 1
    key = e[:, 0] * base + e[:, 1]
    uniq, cnt = np.unique(key, return_counts=True)
    assert cnt.max(initial=1) == 1, "a directed edge is used twice (orientation or manifoldness broken)"
    rev = e[:, 1] * base + e[:, 0]
    missing = ~np.isin(rev, uniq)
    assert not missing.any(), f"{int(missing.sum())} boundary edges, e.g. {e[missing][:3].tolist()}"
    if num_verts is not None:
        assert len(np.unique(f)) == num_verts


def crossed_edges(vol: torch.Tensor, inside: torch.Tensor) -> int:
    return int(
        (inside[:, :, 1:] != inside[:, :, :-1]).sum()
        + (inside[:, 1:] != inside[:, :-1]).sum()
        + (inside[1:] != inside[:-1]).sum()
    )


def pad_outside(vol: torch.Tensor, value: float) -> torch.Tensor:
    return torch.nn.functional.pad(vol, (1, 1, 1, 1, 1, 1), value=value)


# --------------------------------------------------------------------------- #
# the generated tables
# --------------------------------------------------------------------------- #


def test_tables_verify():
    T.verify_tables()  # loops close on the cube surface, face rule symmetric, outward
    t = T.mc_tables()
    assert t.tri.shape[0] == 256 and t.ntri[0] == 0 and t.ntri[255] == 0
    assert int(t.ntri.max()) <= 5
    # complement symmetry of the counts: flipping every corner swaps inside/outside
    # (the ambiguity rule is not symmetric, so only the crossed edges must match)
    assert all(t.edge_mask[c] == t.edge_mask[255 - c] for c in range(256))
    assert sum(T.all_triangulation_sizes().values()) > 256


def test_single_corner_cases_orientation():
    t = T.mc_tables()
    for c in range(8):
        tris = t.tri[1 << c, : t.ntri[1 << c]]
        assert len(tris) == 1
        edges = set(int(e) for e in tris[0])
        assert edges == {e for e in range(12) if c in T.EDGE_CORNERS[e]}


def _side(n: int) -> int:
    side = 1
    while side**3 < n:
        side += 1
    return side


def _tiled_blocks(block: tuple[int, int, int], configs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Volume with each configuration's (bz, by, bx) sample block placed in its own cell,
    separated by outside samples (+1); bit ``s`` of a configuration is sample ``s`` of the
    block in C order, inside = -1 (sdf).  Returns (volume, block origins xyz)."""
    bz, by, bx = block
    n = len(configs)
    side = _side(n)
    bits = (configs[:, None] >> np.arange(bz * by * bx)[None, :]) & 1
    vals = np.where(bits == 1, -1.0, 1.0).reshape(n, bz, by, bx)
    cells = np.ones((side**3, bz + 1, by + 1, bx + 1))
    cells[:n, :bz, :by, :bx] = vals
    vol = cells.reshape(side, side, side, bz + 1, by + 1, bx + 1).transpose(0, 3, 1, 4, 2, 5)
    vol = vol.reshape(side * (bz + 1), side * (by + 1), side * (bx + 1))
    vol = np.pad(vol, ((1, 0), (1, 0), (1, 0)), constant_values=1.0)
    idx = np.arange(n)
    a, b, c = idx // (side * side), (idx // side) % side, idx % side
    origins = np.stack([1 + c * (bx + 1), 1 + b * (by + 1), 1 + a * (bz + 1)], axis=1)
    return vol, origins


@pytest.mark.parametrize("block", [(2, 2, 3), (2, 3, 2), (3, 2, 2)])
def test_every_pair_of_adjacent_cubes_closes(block):
    """All 2^12 sign patterns of two face-adjacent cubes (a 2x2x3 block of samples, along
    each axis), each surrounded by outside samples: one closed, outward surface."""
    vol, _ = _tiled_blocks(block, np.arange(2**12))
    m = marching_cubes(torch.from_numpy(vol), kind="sdf")
    f = m.faces_list()[0]
    assert f.shape[0] > 0
    assert_closed(f, int(m.num_verts_per_mesh()[0]))
    assert float(m.volume()[0]) > 0


def test_single_cube_cases_enclose_positive_volume():
    """Each of the 254 mixed single-cube configurations, isolated by outside samples,
    gives closed surfaces whose signed volume is positive (normals point outward)."""
    configs = np.arange(1, 255)
    vol, origins = _tiled_blocks((2, 2, 2), configs)
    m = marching_cubes(torch.from_numpy(vol), kind="sdf")
    v, f = m.verts_list()[0], m.faces_list()[0]
    assert_closed(f)
    # assign each face to its block by its centroid, sum signed volumes per block
    tri = v[f].numpy()
    cent = tri.mean(1)
    key = np.floor((cent - 0.5) / 3).astype(int)  # surfaces of block idx lie in 0.5 + 3 idx .. 2.5 + 3 idx
    side = _side(len(configs))
    block_id = key[:, 2] * side * side + key[:, 1] * side + key[:, 0]
    # per-block volume relative to the block centre
    centres = origins + 0.5
    rel = tri - centres[block_id][:, None, :]
    per_face = np.einsum("ij,ij->i", rel[:, 0], np.cross(rel[:, 1], rel[:, 2])) / 6.0
    per_block = np.bincount(block_id, weights=per_face, minlength=len(configs))
    assert (per_block > 0).all(), np.nonzero(per_block <= 0)


# --------------------------------------------------------------------------- #
# closedness, orientation and accuracy on shapes
# --------------------------------------------------------------------------- #


def test_sphere_sdf_accuracy_and_closed():
    sd, h = sphere_sdf(40, 0.7)
    m = marching_cubes(sd, kind="sdf", spacing=h, origin=(-1.0, -1.0, -1.0))
    v, f = m.verts_list()[0], m.faces_list()[0]
    assert_closed(f, v.shape[0])
    assert v.shape[0] == crossed_edges(sd, sd <= 0)  # one vertex per crossed edge
    err = (v.norm(dim=1) - 0.7).abs().max().item()
    assert err < 0.02 * h
    vol_true = 4 / 3 * np.pi * 0.7**3
    assert abs(float(m.volume()[0]) - vol_true) / vol_true < 0.01
    area_true = 4 * np.pi * 0.7**2
    assert abs(float(m.surface_area()[0]) - area_true) / area_true < 0.01
    # outward: normals point away from the centre
    n = m.faces_normals_packed()
    c = v[f].mean(1)
    assert ((n * c).sum(1) > 0).all()


def test_torus_closed_genus_one():
    sd, h = torus_sdf(48)
    m = marching_cubes(sd, kind="sdf", spacing=h)
    v, f = m.verts_list()[0], m.faces_list()[0]
    assert_closed(f, v.shape[0])
    n_edges = m.edges_packed().shape[0]
    assert v.shape[0] - n_edges + f.shape[0] == 0  # Euler characteristic of a torus
    vol_true = 2 * np.pi**2 * 0.6 * 0.25**2
    assert abs(float(m.volume()[0]) - vol_true) / vol_true < 0.02


def test_two_nearly_touching_blobs_stay_separate_and_closed():
    # two spheres whose gap is well below one sample: the ambiguity rule keeps them apart
    a, h = sphere_sdf(41, 0.45, (-0.455, 0.0, 0.0))
    b, _ = sphere_sdf(41, 0.45, (0.455, 0.0, 0.0))
    sd = torch.minimum(a, b)
    m = marching_cubes(sd, kind="sdf", spacing=h)
    v, f = m.verts_list()[0], m.faces_list()[0]
    assert_closed(f, v.shape[0])
    assert float(m.volume()[0]) > 0
    # also a configuration with many ambiguous faces: a checkerboard of tiny blobs
    k, j, i = torch.meshgrid(torch.arange(12), torch.arange(12), torch.arange(12), indexing="ij")
    checker = torch.where((i + j + k) % 2 == 0, -1.0, 1.0).double()
    checker = pad_outside(checker, 1.0)
    m = marching_cubes(checker, kind="sdf")
    assert_closed(m.faces_list()[0], int(m.num_verts_per_mesh()[0]))
    assert float(m.volume()[0]) > 0


@pytest.mark.parametrize("seed", range(6))
def test_random_noise_closed(seed):
    g = torch.Generator().manual_seed(seed)
    shape = [int(s) for s in torch.randint(3, 15, (3,), generator=g)]
    vol = torch.randn(*shape, generator=g, dtype=torch.float64)
    vol = pad_outside(vol, 2.0)  # sdf: positive = outside at the volume boundary
    m = marching_cubes(vol, kind="sdf")
    v, f = m.verts_list()[0], m.faces_list()[0]
    assert_closed(f, v.shape[0])
    assert v.shape[0] == crossed_edges(vol, vol <= 0)
    assert float(m.volume()[0]) > 0
    # occupancy-like (larger inside) with an outside border is closed and outward too
    occ = pad_outside(torch.rand(*shape, generator=g), 0.0)
    m = marching_cubes(occ)
    assert_closed(m.faces_list()[0], int(m.num_verts_per_mesh()[0]))
    assert float(m.volume()[0]) > 0


def test_values_exactly_at_level_are_inside():
    # integer-valued volume with many samples exactly at the level: still closed
    g = torch.Generator().manual_seed(3)
    vol = torch.randint(-1, 2, (9, 10, 11), generator=g).double()
    vol = pad_outside(vol, 1.0)
    m = marching_cubes(vol, kind="sdf")  # inside: value <= 0, so zeros are inside
    assert_closed(m.faces_list()[0])
    assert m.verts_list()[0].shape[0] == crossed_edges(vol, vol <= 0)
    # a single zero sample surrounded by outside: inside, a tiny closed surface at it
    one = torch.ones(3, 3, 3, dtype=torch.float64)
    one[1, 1, 1] = 0.0
    m = marching_cubes(one, kind="sdf")
    assert m.verts_list()[0].shape[0] == 6
    assert torch.allclose(m.verts_list()[0], torch.ones(6, 3, dtype=torch.float64))  # all at the sample
    # occupancy: value == level is inside too (same as Voxels.occupancy)
    occ = torch.zeros(3, 3, 3)
    occ[1, 1, 1] = 0.5
    assert marching_cubes(occ).verts_list()[0].shape[0] == 6
    assert marching_cubes(occ, 0.5000001).verts_list()[0].shape[0] == 0
    # the level is compared in the volume's dtype: float32(0.7) < 0.7, yet equal to the level
    v = torch.full((3, 3, 3), 0.7)
    for backend in ("numba", "torch"):
        assert marching_cubes(v, 0.7, backend=backend).isempty()  # all inside, nothing crossed
        assert marching_cubes(v, 0.7, kind="sdf", backend=backend).isempty()


# --------------------------------------------------------------------------- #
# numba kernel vs torch reference
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(2, 2, 2), (3, 4, 5), (7, 9, 8), (5, 6, 17), (4, 3, 33), (2, 20, 16)])
def test_numba_matches_torch_reference(dtype, shape):
    g = torch.Generator().manual_seed(sum(shape))
    vol = torch.randn(3, *shape, generator=g, dtype=dtype)
    vol[1] = vol[1].round()  # many values exactly at the level
    for kind in ("sdf", "occupancy"):
        a = marching_cubes(vol, 0.0, kind=kind, backend="numba")
        b = marching_cubes(vol, 0.0, kind=kind, backend="torch")
        for va, vb, fa, fb in zip(a.verts_list(), b.verts_list(), a.faces_list(), b.faces_list()):
            assert va.dtype == dtype
            assert torch.equal(fa, fb)
            torch.testing.assert_close(va, vb)


def test_numba_matches_reference_on_real_shape():
    sd, h = torus_sdf(37, dtype=torch.float32)
    a = marching_cubes(sd, kind="sdf", spacing=(h, 2 * h, 0.5), origin=(1.0, 2.0, 3.0), backend="numba")
    b = marching_cubes(sd, kind="sdf", spacing=(h, 2 * h, 0.5), origin=(1.0, 2.0, 3.0), backend="torch")
    assert torch.equal(a.faces_list()[0], b.faces_list()[0])
    torch.testing.assert_close(a.verts_list()[0], b.verts_list()[0])


@pytest.mark.parametrize("workers", [2, 3, -1])
def test_threaded_numba_matches_single_thread(monkeypatch, workers):
    mc_mod = importlib.import_module("geomgen.ops.marching_cubes")  # the package attribute is the function

    sd, h = torus_sdf(40, dtype=torch.float32)
    ref = marching_cubes(sd, kind="sdf")
    monkeypatch.setattr(mc_mod, "_PARALLEL_MIN_SAMPLES", 0)
    out = marching_cubes(sd, kind="sdf", workers=workers)
    assert torch.equal(ref.faces_list()[0], out.faces_list()[0])
    assert torch.equal(ref.verts_list()[0], out.verts_list()[0])
    # the kernel itself with more threads than slices
    from geomgen.kernels.marching_cubes_numba import marching_cubes_numba

    arr = sd.numpy()
    a = marching_cubes_numba(arr, 0.0, False, np.zeros(3), np.ones(3), True, 1)
    b = marching_cubes_numba(arr, 0.0, False, np.zeros(3), np.ones(3), True, 64)
    for x, y in zip(a[:3], b[:3]):
        assert np.array_equal(x, y)


# --------------------------------------------------------------------------- #
# peers
# --------------------------------------------------------------------------- #


@pytest.mark.skipif(not HAS_SKIMAGE, reason="scikit-image not installed")
@pytest.mark.parametrize("shape", ["sphere", "torus"])
def test_matches_skimage_area_volume_and_vertices(shape):
    import skimage.measure

    sd, h = sphere_sdf(40, 0.7) if shape == "sphere" else torus_sdf(48)
    arr = sd.numpy()
    sv, sf, _, _ = skimage.measure.marching_cubes(-arr, 0.0)  # larger inside (its default direction)
    ref = Meshes([torch.from_numpy(sv[:, ::-1].copy())], [torch.from_numpy(sf.astype(np.int64))])
    m = marching_cubes(sd, kind="sdf")
    assert m.verts_list()[0].shape[0] == sv.shape[0]  # one vertex per crossed edge, like Lewiner
    a, b = float(m.surface_area()[0]), float(ref.surface_area()[0])
    assert abs(a - b) / b < 0.005
    va, vb = float(m.volume()[0]), abs(float(ref.volume()[0]))
    assert abs(va - vb) / vb < 0.005
    # same vertex positions (both interpolate linearly on the crossed edges)
    ours = np.unique(np.round(m.verts_list()[0].numpy(), 6), axis=0)
    theirs = np.unique(np.round(sv[:, ::-1].astype(np.float64), 6), axis=0)
    assert ours.shape == theirs.shape and np.allclose(ours, theirs, atol=1e-5)


@pytest.mark.skipif(not HAS_P3D, reason="PyTorch3D not installed")
def test_pytorch3d_backend_agrees():
    sd, h = sphere_sdf(32, 0.6, dtype=torch.float32)
    a = marching_cubes(sd, kind="sdf", spacing=h, origin=(-1, -1, -1))
    b = marching_cubes(sd, kind="sdf", spacing=h, origin=(-1, -1, -1), backend="pytorch3d")
    assert abs(float(a.volume()[0]) - float(b.volume()[0])) < 1e-3 * float(a.volume()[0])
    assert abs(float(a.surface_area()[0]) - float(b.surface_area()[0])) < 2e-3 * float(a.surface_area()[0])
    # occupancy-like inputs are flipped for PyTorch3D, so orientation stays outward
    c = marching_cubes(-sd, 0.0, spacing=h, backend="pytorch3d")
    assert float(c.volume()[0]) > 0
    e = marching_cubes(torch.ones(4, 4, 4), backend="pytorch3d")
    assert e.verts_list()[0].shape == (0, 3)


# --------------------------------------------------------------------------- #
# inputs, placement, batches, gradients
# --------------------------------------------------------------------------- #


def test_voxels_input_placement_and_kinds():
    sd, h = sphere_sdf(30, 0.6)
    # voxel centres at -1 + (i + 0.5) * h  <=> origin = -1 - 0.5 h gives samples at -1 + i h
    vox = Voxels(sd[None], kind="sdf", origin=(-1 - 0.5 * h,) * 3, voxel_size=h)
    a = marching_cubes(vox)
    b = marching_cubes(sd, kind="sdf", spacing=h, origin=(-1.0, -1.0, -1.0))
    torch.testing.assert_close(a.verts_list()[0], b.verts_list()[0])
    assert torch.equal(a.faces_list()[0], b.faces_list()[0])
    # occupancy voxels: 0.5 level, larger inside, outward
    occ = torch.sigmoid(-sd / h)
    vo = Voxels(occ[None], kind="occupancy", origin=(-1 - 0.5 * h,) * 3, voxel_size=h)
    mo = marching_cubes(vo)
    assert abs(float(mo.volume()[0]) - float(a.volume()[0])) < 0.02 * float(a.volume()[0])
    # per-grid origins / sizes in a batch
    vb = Voxels(torch.stack([sd, sd]), kind="sdf", origin=[[0, 0, 0], [10, 0, 0]], voxel_size=[[1, 1, 1], [2, 2, 2]])
    mb = marching_cubes(vb)
    v0, v1 = mb.verts_list()
    torch.testing.assert_close(v1, (v0 - 0.5) * 2 + torch.tensor([10.0, 0, 0], dtype=v0.dtype) + 1.0)


def test_default_placement_is_grid_index_xyz():
    vol = torch.zeros(3, 4, 5)  # occupancy: one inside sample at (k, j, i) = (1, 2, 3)
    vol[1, 2, 3] = 1.0
    v = marching_cubes(vol).verts_list()[0]
    centre = v.mean(0)
    torch.testing.assert_close(centre, torch.tensor([3.0, 2.0, 1.0]))  # x = i, y = j, z = k
    assert v.shape == (6, 3) and marching_cubes(vol).faces_list()[0].shape == (8, 3)


def test_batch_matches_single_calls_and_shapes():
    g = torch.Generator().manual_seed(0)
    vols = torch.rand(4, 6, 7, 8, generator=g)
    vols[2] = 0.0  # empty
    m = marching_cubes(vols, 0.4)
    assert len(m) == 4
    for n in range(4):
        s = marching_cubes(vols[n], 0.4)
        assert len(s) == 1
        assert torch.equal(m.faces_list()[n], s.faces_list()[0])
        assert torch.equal(m.verts_list()[n], s.verts_list()[0])
    assert m.verts_list()[2].shape == (0, 3) and m.faces_list()[2].shape == (0, 3)
    assert len(marching_cubes(torch.zeros(0, 4, 4, 4))) == 0


def test_empty_results_and_tiny_volumes():
    for vol in (torch.zeros(2, 2, 2), torch.ones(5, 5, 5), torch.full((3, 3, 3), 0.7)):
        for kind in ("sdf", "occupancy"):
            m = marching_cubes(vol, kind=kind)
            assert m.verts_list()[0].shape == (0, 3) and m.faces_list()[0].shape == (0, 3)
            assert m.isempty()
    # a level outside the data range is not an error either
    assert marching_cubes(torch.rand(4, 4, 4), 5.0).isempty()
    # 2x2x2 with one inside corner: one triangle, 3 vertices on the corner's edges
    v = torch.ones(2, 2, 2)
    v[0, 0, 0] = -1.0
    m = marching_cubes(v, kind="sdf")
    assert m.faces_list()[0].shape == (1, 3)
    torch.testing.assert_close(
        m.verts_list()[0].sort(0).values, torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.5, 0.5, 0.5]])
    )
    n = m.faces_normals_packed()[0]
    assert (n > 0).all()  # pointing away from the inside corner at the origin


def test_dtypes_and_layouts():
    vol = torch.zeros(4, 4, 4, dtype=torch.int32)
    vol[1:3, 1:3, 1:3] = 1
    m = marching_cubes(vol)
    assert m.dtype == torch.get_default_dtype()
    assert_closed(m.faces_list()[0])
    assert marching_cubes(vol.bool()).dtype == torch.get_default_dtype()
    assert marching_cubes(vol.half()).dtype == torch.float32
    # non-contiguous input gives the same as its contiguous copy
    g = torch.Generator().manual_seed(1)
    base = torch.rand(6, 7, 8, generator=g)
    nc = base.permute(2, 0, 1)
    a, b = marching_cubes(nc), marching_cubes(nc.contiguous())
    assert torch.equal(a.faces_list()[0], b.faces_list()[0])


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_gradients_through_interpolation(backend):
    g = torch.Generator().manual_seed(5)
    base = torch.randn(4, 5, 6, generator=g, dtype=torch.float64)
    base = base + 0.2 * base.sign()  # keep values away from the level: topology is locally constant
    origin = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64, requires_grad=True)

    def f(vol, org):
        m = marching_cubes(vol, kind="sdf", spacing=(0.5, 1.0, 2.0), origin=org, backend=backend)
        return m.verts_list()[0]

    vol = base.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(f, (vol, origin))
    # same vertices with and without autograd
    with torch.no_grad():
        ref = f(base, origin)
    torch.testing.assert_close(f(vol, origin).detach(), ref)
    # a Voxels whose grids require grad
    vox = Voxels(vol[None], kind="sdf")
    marching_cubes(vox, backend=backend).volume().sum().backward()
    assert vol.grad is not None and vol.grad.abs().sum() > 0


# --------------------------------------------------------------------------- #
# errors
# --------------------------------------------------------------------------- #


def test_invalid_inputs_name_the_argument():
    good = torch.rand(4, 4, 4)
    cases = [
        (lambda: marching_cubes(good.numpy()), "volume"),
        (lambda: marching_cubes(torch.rand(4, 4)), "volume"),
        (lambda: marching_cubes(torch.rand(1, 2, 3, 4, 5)), "volume"),
        (lambda: marching_cubes(torch.rand(1, 4, 4)), "volume"),
        (lambda: marching_cubes(torch.rand(4, 4, 4, dtype=torch.complex64)), "volume"),
        (lambda: marching_cubes(good, float("nan")), "level"),
        (lambda: marching_cubes(good, "0.5"), "level"),
        (lambda: marching_cubes(good, kind="density"), "kind"),
        (lambda: marching_cubes(good, backend="cuda"), "backend"),
        (lambda: marching_cubes(good, spacing=0.0), "spacing"),
        (lambda: marching_cubes(good, spacing=(1.0, -1.0, 1.0)), "spacing"),
        (lambda: marching_cubes(good, spacing=(1.0, 1.0)), "spacing"),
        (lambda: marching_cubes(good, origin=(0.0, float("inf"), 0.0)), "origin"),
        (lambda: marching_cubes(good, origin=torch.zeros(2, 3)), "origin"),
        (lambda: marching_cubes(Voxels(good[None]), kind="sdf"), "kind"),
        (lambda: marching_cubes(Voxels(good[None]), spacing=1.0), "spacing"),
        (lambda: marching_cubes(Voxels(good[None]), origin=(0, 0, 0)), "origin"),
        (lambda: marching_cubes(good, workers=0), "workers"),
        (lambda: marching_cubes(good, workers=-2), "workers"),
        (lambda: marching_cubes(good, workers=2.0), "workers"),
        (lambda: marching_cubes(good, workers=True), "workers"),
    ]
    for call, name in cases:
        with pytest.raises(InvalidInputError, match=f"'{name}'"):
            call()


@pytest.mark.parametrize("backend", ["auto", "numba", "torch"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_volume_is_an_error(backend, bad):
    vol = torch.rand(2, 5, 6, 7)
    vol[1, 2, 3, 4] = bad
    with pytest.raises(InvalidInputError, match=r"'volume'.*\(1, 2, 3, 4\)"):
        marching_cubes(vol, backend=backend)
    vox = Voxels(vol, kind="sdf", validate=False)
    with pytest.raises(InvalidInputError, match="'volume'"):
        marching_cubes(vox, backend=backend)


def test_pytorch3d_backend_unavailable(no_pytorch3d):
    with pytest.raises(BackendUnavailableError, match="pytorch3d"):
        marching_cubes(torch.rand(3, 3, 3), backend="pytorch3d")


def test_all_tiny_sign_patterns_match_reference():
    """Every one of the 256 configurations of a single 2x2x2 volume: kernel == reference."""
    vols = torch.tensor(
        [[(-1.0 if (c >> b) & 1 else 1.0) for b in range(8)] for c in range(256)], dtype=torch.float64
    ).reshape(256, 2, 2, 2)
    a = marching_cubes(vols, kind="sdf", backend="numba")
    b = marching_cubes(vols, kind="sdf", backend="torch")
    t = T.mc_tables()
    for c in range(256):
        assert torch.equal(a.faces_list()[c], b.faces_list()[c])
        assert a.faces_list()[c].shape[0] == t.ntri[c]
        torch.testing.assert_close(a.verts_list()[c], b.verts_list()[c])
        assert a.verts_list()[c].shape[0] == bin(int(t.edge_mask[c])).count("1")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_uses_torch_reference_and_matches_cpu():
    sd, h = torus_sdf(33, dtype=torch.float32)
    cpu = marching_cubes(sd, kind="sdf", spacing=h)
    gpu = marching_cubes(sd.cuda(), kind="sdf", spacing=h)
    assert gpu.device.type == "cuda"
    assert torch.equal(cpu.faces_list()[0], gpu.faces_list()[0].cpu())
    torch.testing.assert_close(cpu.verts_list()[0], gpu.verts_list()[0].cpu())
    with pytest.raises(BackendUnavailableError, match="CPU"):
        marching_cubes(sd.cuda(), kind="sdf", backend="numba")
