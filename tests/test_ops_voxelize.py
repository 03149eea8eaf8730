"""Tests of geomgen.ops.voxelize (numba kernels and the torch reference)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geomgen.errors import InvalidInputError
from geomgen.ops.voxelize import voxelize
from geomgen.structures import Meshes, Voxels

BACKENDS = ["numba", "torch"]


# --------------------------------------------------------------------------- helpers


def cube_mesh(lo=0.0, hi=1.0, drop=(), dtype=torch.float64):
    """Axis-aligned cube [lo, hi]^3, 12 outward triangles; ``drop`` lists quads
    to leave out (0: x=lo, 1: x=hi, 2: y=lo, 3: y=hi, 4: z=lo, 5: z=hi)."""
    v = torch.tensor([[x, y, z] for x in (lo, hi) for y in (lo, hi) for z in (lo, hi)], dtype=dtype)
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    f = []
    for q, (a, b, c, d) in enumerate(quads):
        if q not in drop:
            f += [[a, b, c], [a, c, d]]
    return v, torch.tensor(f, dtype=torch.int64)


def icosphere(subdiv=3, radius=1.0):
    """Unit icosahedron subdivided ``subdiv`` times, projected on the sphere."""
    t = (1 + 5**0.5) / 2
    v = [[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t],
         [0, -1, -t], [0, 1, -t], [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]]
    f = [[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4],
         [11, 10, 2], [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8],
         [3, 8, 9], [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]]
    v = [np.array(p, float) / np.linalg.norm(p) for p in v]
    for _ in range(subdiv):
        mid = {}

        def m(a, b):
            key = (min(a, b), max(a, b))
            if key not in mid:
                p = v[a] + v[b]
                v.append(p / np.linalg.norm(p))
                mid[key] = len(v) - 1
            return mid[key]

        nf = []
        for a, b, c in f:
            ab, bc, ca = m(a, b), m(b, c), m(c, a)
            nf += [[a, ab, ca], [b, bc, ab], [c, ca, bc], [ab, bc, ca]]
        f = nf
    return torch.tensor(np.array(v) * radius), torch.tensor(f, dtype=torch.int64)


def brute_force_surface(tris_g, res):
    """(D, H, W) bool: closed unit boxes that overlap any triangle (grid
    coordinates), by a generic SAT over all voxels and all 13 axes."""
    D, H, W = res
    k, j, i = np.meshgrid(np.arange(D), np.arange(H), np.arange(W), indexing="ij")
    c = np.stack([i, j, k], -1).reshape(-1, 3) + 0.5
    out = np.zeros(len(c), bool)
    eye = np.eye(3)
    for tri in tris_g:
        v = tri[None] - c[:, None]  # (M, 3, 3)
        e = [tri[1] - tri[0], tri[2] - tri[1], tri[0] - tri[2]]
        n = np.cross(e[0], e[1])
        if np.linalg.norm(n) <= 1e-12 * max(np.dot(ed, ed) for ed in e):
            n = np.zeros(3)  # collinear up to rounding: a segment (documented rule)
        axes = list(eye) + [n] + [np.cross(b, ed) for b in eye for ed in e]
        ok = np.ones(len(c), bool)
        for a in axes:
            p = v @ a
            r = 0.5 * np.abs(a).sum()
            ok &= ~((p.min(1) > r) | (p.max(1) < -r))
        out |= ok
    return out.reshape(D, H, W)


def to_world(tris_g, origin, vs):
    return tris_g * vs + origin


def tri_meshes(tris_w):
    v = torch.tensor(tris_w.reshape(-1, 3))
    f = torch.arange(len(v)).reshape(-1, 3)
    return Meshes([v], [f])


def armadillo(cgal_data, dtype=torch.float32):
    from geomgen.io import load_mesh

    m = load_mesh(cgal_data / "meshes" / "armadillo.off")
    return Meshes([m.verts_list()[0].to(dtype)], [m.faces_list()[0]])


# --------------------------------------------------------------------------- exactness


@pytest.mark.parametrize("backend", BACKENDS)
def test_random_triangles_match_brute_force_sat(backend):
    rng = np.random.default_rng(0)
    res = (7, 9, 11)  # D, H, W
    size = np.array([11, 9, 7], float)  # x, y, z extents in voxels
    tris = []
    for _ in range(25):  # ordinary triangles, some reaching outside the grid
        c = rng.uniform(-1, size + 1)
        tris.append(c + rng.normal(scale=rng.uniform(0.2, 3.0), size=(3, 3)))
    for _ in range(10):  # long thin slivers
        a = rng.uniform(0, size)
        b = rng.uniform(0, size)
        tris.append(np.stack([a, b, b + rng.normal(scale=1e-3, size=3)]))
    for _ in range(5):  # degenerate: collinear and repeated corners
        a, b = rng.uniform(0, size), rng.uniform(0, size)
        tris.append(np.stack([a, b, 0.3 * a + 0.7 * b]))
        tris.append(np.stack([a, a, a]))
    tris = np.array(tris)
    origin = np.array([-1.5, 2.0, 0.25])
    vs = np.array([0.5, 0.3, 0.7])
    mesh = tri_meshes(to_world(tris, origin, vs))
    bounds = torch.tensor(np.stack([origin, origin + size * vs], 1))
    got = voxelize(mesh, res, bounds=bounds, backend=backend)
    assert got.resolution == res
    torch.testing.assert_close(got.origin[0], torch.tensor(origin))
    torch.testing.assert_close(got.voxel_size[0], torch.tensor(vs))
    want = brute_force_surface(tris, res)
    assert want.sum() > 100
    np.testing.assert_array_equal(got.grids[0].numpy().astype(bool), want)


@pytest.mark.parametrize("backend", BACKENDS)
def test_single_triangle_each_voxel_touched(backend):
    tri = np.array([[[0.3, 0.2, 0.1], [3.7, 0.9, 1.4], [1.1, 2.6, 3.8]]])
    res = (5, 4, 4)
    mesh = tri_meshes(tri)
    got = voxelize(mesh, res, bounds=torch.tensor([[0.0, 4], [0, 4], [0, 5]]), backend=backend)
    np.testing.assert_array_equal(got.grids[0].numpy().astype(bool), brute_force_surface(tri, res))


@pytest.mark.parametrize("backend", BACKENDS)
def test_degenerate_triangles_mark_what_they_touch(backend):
    bounds = torch.tensor([[0.0, 4], [0, 4], [0, 4]])
    # a point at a voxel centre marks that voxel only
    pt = tri_meshes(np.array([[[1.5, 2.5, 0.5]] * 3]))
    g = voxelize(pt, 4, bounds=bounds, backend=backend).grids[0]
    assert g.sum() == 1 and g[0, 2, 1] == 1
    # a point on a voxel corner touches the 8 closed boxes around it
    pt = tri_meshes(np.array([[[2.0, 2.0, 2.0]] * 3]))
    g = voxelize(pt, 4, bounds=bounds, backend=backend).grids[0]
    assert g.sum() == 8 and g[1:3, 1:3, 1:3].all()
    # a segment along x through voxel centres marks one row
    seg = tri_meshes(np.array([[[0.5, 1.5, 1.5], [3.5, 1.5, 1.5], [2.0, 1.5, 1.5]]]))
    g = voxelize(seg, 4, bounds=bounds, backend=backend).grids[0]
    assert g.sum() == 4 and g[1, 1, :].all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_aligned_cube_surface_and_solid(backend):
    # cube [0, 1]^3 in a grid of 8^3 voxels of 0.25 from -0.5: faces at grid planes 2 and 6
    m = Meshes(*[[t] for t in cube_mesh()])
    b = torch.tensor([[-0.5, 1.5]] * 3)
    surf = voxelize(m, 8, bounds=b, backend=backend).grids[0].bool()
    want = torch.zeros(8, 8, 8, dtype=torch.bool)
    want[1:7, 1:7, 1:7] = True  # closed boxes meeting the closed cube...
    want[3:5, 3:5, 3:5] = False  # ...except those inside its open interior
    assert torch.equal(surf, want)
    solid = voxelize(m, 8, bounds=b, mode="solid", backend=backend).grids[0].bool()
    want_solid = torch.zeros(8, 8, 8, dtype=torch.bool)
    want_solid[1:7, 1:7, 1:7] = True
    assert torch.equal(solid, want_solid)


@pytest.mark.parametrize("backend", BACKENDS)
def test_misaligned_cube_surface_and_solid(backend):
    # cube faces at grid coordinates 2.5 and 5.5
    m = Meshes(*[[t] for t in cube_mesh(0.25, 1.0)])
    b = torch.tensor([[-0.375, 1.625]] * 3)
    surf = voxelize(m, 8, bounds=b, backend=backend).grids[0].bool()
    want = torch.zeros(8, 8, 8, dtype=torch.bool)
    want[2:6, 2:6, 2:6] = True
    want[3:5, 3:5, 3:5] = False
    assert torch.equal(surf, want)
    solid = voxelize(m, 8, bounds=b, mode="solid", backend=backend).grids[0].bool()
    want[3:5, 3:5, 3:5] = True
    assert torch.equal(solid, want)


@pytest.mark.parametrize("backend", BACKENDS)
def test_open_cube_single_hole_is_outvoted(backend):
    def vox(drop=(), mode="surface"):
        m = Meshes(*[[t] for t in cube_mesh(0.12, 0.88, drop=drop)])  # faces at grid 1.2 and 8.8
        return voxelize(m, 10, bounds=torch.tensor([[0.0, 1]] * 3), mode=mode, backend=backend).grids[0].bool()

    solid = vox(mode="solid")
    want = torch.zeros(10, 10, 10, dtype=torch.bool)
    want[1:9, 1:9, 1:9] = True  # every centre inside the cube
    assert torch.equal(solid, want)
    want[2:8, 2:8, 2:8] = False
    assert torch.equal(vox(), want)
    for q in range(6):  # any single missing side: the two other axes outvote the hole
        assert torch.equal(vox((q,), "solid"), solid), q
        assert not torch.equal(vox((q,)), want)
    # holes seen along two axes let the inside leak: only the surface remains
    assert torch.equal(vox((0, 4), "solid"), vox((0, 4)))


def test_solid_sphere_matches_analytic_volume():
    r = 1.0
    v, f = icosphere(4, r)
    m = Meshes([v], [f])
    R = 48
    solid = voxelize(m, R, mode="solid", padding=1)
    surf = voxelize(m, R, padding=1)
    g, s = solid.grids[0].bool(), surf.grids[0].bool()
    assert (g | s).equal(g)  # solid contains the surface
    c = solid.voxel_centers()[0]
    d = c.norm(dim=-1)
    vs = float(solid.voxel_size[0, 0])
    # the inscribed sphere of the polyhedron is r * cos(max angle) > 0.998 r
    r_in = 0.998 * r
    assert g[d < r_in - 1e-9].all()
    # every occupied voxel's box reaches the ball
    half = vs / 2
    box_dist = (c.abs() - half).clamp(min=0).norm(dim=-1)
    assert (box_dist[g] <= r + 1e-9).all()
    # the centres counted inside reproduce the ball's volume
    vol = float((g & (d < r)).sum()) * vs**3
    assert abs(vol - 4 / 3 * np.pi * r**3) / (4 / 3 * np.pi * r**3) < 0.01
    # interior voxels that are not surface voxels have their centre inside
    assert (d[g & ~s] < r).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_equals_single_meshes(backend):
    v1, f1 = cube_mesh(0.0, 1.0)
    v2, f2 = icosphere(2, 0.7)
    v2 = v2 + torch.tensor([3.0, -1.0, 2.0])
    v3 = torch.tensor([[0.0, 0, 0], [2, 0, 0], [0, 0.5, 0]], dtype=torch.float64)
    f3 = torch.tensor([[0, 1, 2]])
    batch = Meshes([v1, v2, v3], [f1, f2, f3])
    for kw in ({"resolution": 12}, {"voxel_size": 0.15}, {"resolution": (5, 7, 9), "padding": 0.5}):
        for mode in ("surface", "solid"):
            got = voxelize(batch, mode=mode, backend=backend, **kw)
            assert got.grids.shape[0] == 3
            for n, (v, f) in enumerate([(v1, f1), (v2, f2), (v3, f3)]):
                kw1 = dict(kw)
                if "voxel_size" in kw:  # same batch resolution: pin the grid with bounds
                    kw1["bounds"] = got.get_bounding_boxes()[n]
                one = voxelize(Meshes([v], [f]), mode=mode, backend=backend, **kw1)
                assert torch.equal(got.grids[n], one.grids[0]), (kw, mode, n)
                torch.testing.assert_close(got.origin[n], one.origin[0])


@pytest.mark.parametrize("mode", ["surface", "solid"])
def test_backends_agree_on_armadillo(cgal_data, mode):
    m = armadillo(cgal_data)
    a = voxelize(m, 24, mode=mode, backend="numba")
    b = voxelize(m, 24, mode=mode, backend="torch")
    assert torch.equal(a.grids, b.grids)


def test_surface_agrees_with_open3d_on_armadillo(cgal_data):
    o3d = pytest.importorskip("open3d")
    m = armadillo(cgal_data, torch.float64)
    v, f = m.verts_list()[0].numpy(), m.faces_list()[0].numpy()
    tm = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(v), o3d.utility.Vector3iVector(f))
    vs = float((v.max(0) - v.min(0)).max()) / 64
    vg = o3d.geometry.VoxelGrid.create_from_triangle_mesh(tm, vs)
    idx = np.array([x.grid_index for x in vg.get_voxels()])
    origin = np.asarray(vg.origin)
    res_xyz = idx.max(0) + 1
    bounds = torch.tensor(np.stack([origin, origin + res_xyz * vs], 1))
    got = voxelize(m, voxel_size=vs, bounds=bounds)
    assert got.resolution == tuple(res_xyz[::-1])
    ours = set(map(tuple, got.grids[0].nonzero().numpy()[:, ::-1].tolist()))
    theirs = set(map(tuple, idx.tolist()))
    diff = len(ours ^ theirs)
    # same closed-box overlap test: identical here (32^3 .. 128^3); allow a
    # few rounding-level ties on other platforms
    assert diff <= 0.005 * len(theirs), (len(ours), len(theirs), diff)


def test_solid_armadillo_is_surface_union_interior(cgal_data):
    o3d = pytest.importorskip("open3d")
    m = armadillo(cgal_data)
    solid = voxelize(m, 48, mode="solid", padding=1)
    surf = voxelize(m, 48, padding=1)
    g, s = solid.grids[0].bool(), surf.grids[0].bool()
    assert torch.equal(g | s, g)
    v, f = m.verts_list()[0].numpy(), m.faces_list()[0].numpy()
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(v.astype(np.float32)), o3d.core.Tensor(f.astype(np.uint32)))
    c = solid.voxel_centers()[0].reshape(-1, 3).numpy().astype(np.float32)
    inside = torch.from_numpy(scene.compute_occupancy(o3d.core.Tensor(c)).numpy().astype(bool)).reshape(g.shape)
    # centres of non-surface voxels are >= half a voxel from the surface: parity is unambiguous
    assert torch.equal(g & ~s, inside & ~s)
    assert int((g & ~s).sum()) > 1000


# --------------------------------------------------------------------------- placement


def test_fitted_resolution_placement():
    v, f = cube_mesh(0.0, 1.0)
    v = v * torch.tensor([2.0, 1.0, 0.5]) + torch.tensor([1.0, 2.0, 3.0])
    m = Meshes([v], [f])
    out = voxelize(m, 10)
    assert isinstance(out, Voxels) and out.kind == "occupancy"
    assert out.resolution == (10, 10, 10) and out.grids.dtype == torch.float64
    torch.testing.assert_close(out.voxel_size[0], torch.full((3,), 0.2, dtype=torch.float64))
    box = out.get_bounding_boxes()[0]
    centre = torch.tensor([2.0, 2.5, 3.25], dtype=torch.float64)
    torch.testing.assert_close(box.mean(dim=1), centre)
    # padding: longest side spans R - 2 * padding voxels
    out = voxelize(m, (6, 8, 12), padding=1)
    torch.testing.assert_close(out.voxel_size[0, 0], torch.tensor(0.2, dtype=torch.float64))
    assert out.resolution == (6, 8, 12)
    # the box's faces lie on the planes between voxels 0|1 and 10|11: closed
    # boxes on both sides are marked, so padding=1 leaves no empty layer ...
    assert out.grids[0].sum(dim=(0, 1)).min() > 0
    # ... while padding=1.5 does (the box spans x in [1.5, 10.5] voxels)
    out = voxelize(m, (6, 8, 12), padding=1.5)
    xs = out.grids[0].sum(dim=(0, 1))
    assert xs[0] == 0 and xs[11] == 0 and xs[1:11].min() > 0


def test_voxel_size_placement_and_dtype():
    v, f = cube_mesh(0.0, 1.0, dtype=torch.float32)
    out = voxelize(Meshes([v], [f]), voxel_size=0.3)
    assert out.resolution == (4, 4, 4) and out.grids.dtype == torch.float32
    torch.testing.assert_close(out.voxel_size[0], torch.full((3,), 0.3))
    torch.testing.assert_close(out.get_bounding_boxes()[0].mean(dim=1), torch.full((3,), 0.5))
    out = voxelize(Meshes([v], [f]), voxel_size=(0.5, 0.25, 1.0))
    assert out.resolution == (2, 5, 3)


def test_bounds_with_voxel_size_and_clipping():
    v, f = cube_mesh(0.0, 1.0)
    m = Meshes([v], [f])
    out = voxelize(m, voxel_size=0.25, bounds=torch.tensor([[0.5, 1.5], [0.5, 1.5], [0.5, 1.5]]))
    assert out.resolution == (4, 4, 4)
    solid = voxelize(m, voxel_size=0.25, bounds=torch.tensor([[0.5, 1.5]] * 3), mode="solid")
    # the clipped part of the cube is still inside: rays see the whole mesh
    assert solid.grids[0, :2, :2, :2].all() and solid.grids[0, 3:, 3:, 3:].sum() == 0


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "make, kwargs, words",
    [
        (lambda: "cube", {"resolution": 4}, ["'meshes'"]),
        (lambda: Meshes([], []), {"resolution": 4}, ["'meshes'", "empty"]),
        (lambda: Meshes([cube_mesh()[0], torch.rand(3, 3, dtype=torch.float64)],
                        [cube_mesh()[1], torch.zeros(0, 3, dtype=torch.int64)]),
         {"resolution": 4}, ["'meshes'", "mesh 1", "no faces"]),
        (lambda: Meshes([torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, float("nan"), 0]])],
                        [torch.tensor([[0, 1, 2]])], validate=False), {"resolution": 4}, ["meshes", "finite"]),
        (lambda: Meshes([torch.rand(3, 3)], [torch.tensor([[0, 1, 5]])], validate=False),
         {"resolution": 4}, ["'meshes'", "face indices"]),
        (lambda: Meshes(*[[t] for t in cube_mesh()]), {}, ["'resolution'", "neither"]),
        (lambda: Meshes(*[[t] for t in cube_mesh()]), {"resolution": 4, "voxel_size": 0.1}, ["'resolution'", "both"]),
        (lambda: Meshes(*[[t] for t in cube_mesh()]), {"resolution": 0}, ["'resolution'"]),
        (lambda: Meshes(*[[t] for t in cube_mesh()]), {"resolution": (4, 4)}, ["'resolution'"]),
        (lambda: Meshes(*[[t] for t in cube_mesh()]), {"voxel_size": -1.0}, ["'voxel_size'"]),
        (lambda: Meshes(*[[t] for t in cube_mesh()]), {"voxel_size": (1.0, 0.0, 1.0)}, ["'voxel_size'"]),
        (lambda: Meshes(*[[t] for t in cube_mesh()]), {"voxel_size": 1e-7}, ["'voxel_size'"]),
        (lambda: Meshes(*[[t] for t in cube_mesh()]), {"resolution": 4, "mode": "hollow"}, ["'mode'"]),
        (lambda: Meshes(*[[t] for t in cube_mesh()]), {"resolution": 4, "backend": "cuda"}, ["'backend'"]),
        (lambda: Meshes(*[[t] for t in cube_mesh()]), {"resolution": 4, "padding": 2}, ["'padding'"]),
        (lambda: Meshes(*[[t] for t in cube_mesh()]), {"resolution": 4, "padding": -1}, ["'padding'"]),
        (lambda: Meshes(*[[t] for t in cube_mesh()]),
         {"resolution": 4, "bounds": torch.zeros(3, 2)}, ["'bounds'", "max > min"]),
        (lambda: Meshes(*[[t] for t in cube_mesh()]), {"resolution": 4, "bounds": torch.zeros(2, 3)}, ["'bounds'"]),
        (lambda: Meshes(*[[t] for t in cube_mesh()]),
         {"resolution": 4, "bounds": torch.tensor([[0.0, 1]] * 3), "padding": 1}, ["'padding'"]),
        (lambda: Meshes([torch.ones(3, 3)], [torch.tensor([[0, 1, 2]])]), {"resolution": 4},
         ["'resolution'", "mesh 0", "zero extent"]),
        (lambda: Meshes(*[[t] for t in cube_mesh()]), {"resolution": 2000}, ["'resolution'", "limit"]),
    ],
)
def test_validation_errors(make, kwargs, words):
    with pytest.raises(InvalidInputError) as info:
        voxelize(make(), **kwargs)
    msg = str(info.value)
    assert "voxelize" in msg
    for w in words:
        assert w in msg, msg


def test_zero_extent_mesh_with_voxel_size_is_fine():
    m = Meshes([torch.ones(3, 3)], [torch.tensor([[0, 1, 2]])])
    out = voxelize(m, voxel_size=0.5)
    assert out.resolution == (1, 1, 1) and out.grids.sum() == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    m = Meshes(*[[t] for t in icosphere(2)])
    a = voxelize(m, 16, mode="solid")
    b = voxelize(m.to("cuda"), 16, mode="solid")
    assert b.grids.device.type == "cuda" and torch.equal(a.grids, b.grids.cpu())


def test_forked_child_voxelizes_without_numbas_thread_pool():
    """GNU OpenMP kills a child forked after numba's pool started on its first
    parallel region; voxelize takes its torch path there (DataLoader workers fork,
    with torch limited to one thread, as here)."""
    import os
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        """
        import os, torch
        from geomgen.ops import ico_sphere, voxelize
        mesh = ico_sphere(4)
        ref = voxelize(mesh, 96, mode="solid").grids  # large enough to start numba's pool
        pid = os.fork()
        if pid == 0:
            torch.set_num_threads(1)
            out = voxelize(mesh, 96, mode="solid").grids
            os._exit(0 if torch.equal(out, ref) else 3)
        _, status = os.waitpid(pid, 0)
        print("STATUS", status)
        """
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ))
    assert "STATUS 0" in res.stdout, res.stdout + res.stderr
