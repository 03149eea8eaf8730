"""Tests of geomgen.ops.points_in_meshes (numba kernel and the torch reference)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geomgen.errors import InvalidInputError
from geomgen.ops import ico_sphere, points_in_meshes, voxelize
from geomgen.ops.points_in_meshes import _points_in_meshes
from geomgen.structures import Meshes

BACKENDS = ["numba", "torch"]


# --------------------------------------------------------------------------- helpers


def cube_mesh(lo=0.0, hi=1.0, flip=False, dtype=torch.float64):
    """Axis-aligned cube [lo, hi]^3, 12 triangles (outward, or inward with ``flip``)."""
    v = torch.tensor([[x, y, z] for x in (lo, hi) for y in (lo, hi) for z in (lo, hi)], dtype=dtype)
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    f = []
    for q, (a, b, c, d) in enumerate(quads):
        # alternate the diagonal so both diagonal directions occur
        f += [[a, b, c], [a, c, d]] if q % 2 else [[a, b, d], [b, c, d]]
    f = torch.tensor(f, dtype=torch.int64)
    return v, (f.flip(1) if flip else f)


def octahedron(dtype=torch.float64):
    """|x| + |y| + |z| <= 1: vertices on the axes, 8 outward faces."""
    v = torch.tensor([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=dtype)
    f = []
    for sx, ix in ((1, 0), (-1, 1)):
        for sy, iy in ((1, 2), (-1, 3)):
            for sz, iz in ((1, 4), (-1, 5)):
                f.append([ix, iy, iz] if sx * sy * sz > 0 else [ix, iz, iy])
    return v, torch.tensor(f, dtype=torch.int64)


def torus(R=0.75, r=0.25, n_major=64, n_minor=32):
    """Watertight torus around the y axis."""
    i, j = np.meshgrid(np.arange(n_major), np.arange(n_minor), indexing="ij")
    th, ph = 2 * np.pi * i / n_major, 2 * np.pi * j / n_minor
    v = np.stack([(R + r * np.cos(ph)) * np.cos(th), r * np.sin(ph), (R + r * np.cos(ph)) * np.sin(th)], -1)
    idx = lambda a, b: (a % n_major) * n_minor + (b % n_minor)  # noqa: E731
    f = []
    for a in range(n_major):
        for b in range(n_minor):
            f += [[idx(a, b), idx(a + 1, b), idx(a + 1, b + 1)], [idx(a, b), idx(a + 1, b + 1), idx(a, b + 1)]]
    return torch.tensor(v.reshape(-1, 3)), torch.tensor(f)


def fan_cylinder(n=512, r=0.5, h=0.5):
    """Cylinder around y (|y| <= h) whose caps are fans of long slivers."""
    th = 2 * np.pi * np.arange(n) / n
    ring = np.stack([r * np.cos(th), np.zeros(n), r * np.sin(th)], 1)
    v = np.concatenate([ring + [0, -h, 0], ring + [0, h, 0], [[0, -h, 0], [0, h, 0]]])
    f = []
    for k in range(n):
        a, b = k, (k + 1) % n
        f += [[a, n + a, n + b], [a, n + b, b], [2 * n, a, b], [2 * n + 1, n + b, n + a]]
    return torch.tensor(v), torch.tensor(f)


def convex_truth(v, f, p, margin=1e-9):
    """(inside, decided) for points p (P, 3) and a convex closed mesh: the
    half-space test, undecided within ``margin`` of a face plane."""
    t = v.double()[f]
    n = torch.linalg.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
    n = n / n.norm(dim=1, keepdim=True)
    centre = v.double().mean(0)
    n = torch.where(((t[:, 0] - centre) * n).sum(1, keepdim=True) < 0, -n, n)  # outward
    d = (p.double() @ n.T - (t[:, 0] * n).sum(1)).amax(1)  # (P,) largest signed plane distance
    return d < 0, d.abs() > margin


def load(cgal_data, name, dtype=torch.float32):
    from geomgen.io import load_mesh

    m = load_mesh(cgal_data / "meshes" / name)
    return Meshes([m.verts_list()[0].to(dtype)], [m.faces_list()[0]])


def bits_of(meshes, points, backend):
    inside, bits = _points_in_meshes(meshes, points, backend, full=True)
    return inside, bits


# --------------------------------------------------------------------------- exact rules


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("flip", [False, True])
def test_cube_lattice_through_vertices_and_edges(backend, flip):
    # points on a 1/8 lattice: rays run along faces, through edges, vertices and diagonals
    m = Meshes(*[[t] for t in cube_mesh(flip=flip)])
    g = torch.arange(-2, 11, dtype=torch.float64) / 8
    p = torch.cartesian_prod(g, g, g)
    in_closed = ((p >= 0) & (p <= 1)).all(1)
    on_surface = in_closed & ((p == 0) | (p == 1)).any(1)
    p = p[~on_surface]
    want = ((p > 0) & (p < 1)).all(1)
    inside, bits = bits_of(m, p[None], backend)
    assert torch.equal(inside[0], want)
    # every single ray is right, not just the vote
    assert torch.equal(bits[0], torch.where(want, 7, 0).to(torch.uint8))
    assert int(want.sum()) == 7**3


@pytest.mark.parametrize("backend", BACKENDS)
def test_octahedron_lattice_rays_through_vertices(backend):
    m = Meshes(*[[t] for t in octahedron()])
    g = torch.arange(-10, 11, dtype=torch.float64) / 8
    p = torch.cartesian_prod(g, g, g)
    l1 = p.abs().sum(1)
    p, l1 = p[l1 != 1], l1[l1 != 1]  # exact in binary: drop points on the surface
    want = l1 < 1
    inside, bits = bits_of(m, p[None], backend)
    assert torch.equal(inside[0], want)
    assert torch.equal(bits[0], torch.where(want, 7, 0).to(torch.uint8))
    # the origin's three rays leave through the vertices (-1,0,0), (0,-1,0), (0,0,-1)
    assert bool(points_in_meshes(m, torch.zeros(1, 1, 3, dtype=torch.float64), backend=backend)[0, 0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_rays_through_sphere_vertices_and_silhouettes(backend):
    m = ico_sphere(2)  # convex, general position
    v, f = m.verts_list()[0].double(), m.faces_list()[0]
    mesh = Meshes([v], [f])
    for axis in range(3):
        e = torch.zeros(3, dtype=torch.float64)
        e[axis] = 1
        # the ray towards -axis from v + s * e passes exactly through vertex v
        p = torch.cat([v + s * e for s in (0.02, 0.1, 0.5, 2.5)])
        truth, decided = convex_truth(v, f, p)
        _, bits = bits_of(mesh, p[None], backend)
        parity = ((bits[0] >> axis) & 1).bool()
        assert torch.equal(parity[decided], truth[decided]), axis
        assert int(truth[decided].sum()) > 10 and int((~truth[decided]).sum()) > 10
        # rays entering the mesh exactly through v are among them
        assert int((decided & ~truth & (p[:, axis] < 1.0)).sum()) > 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_rays_through_shared_edges_with_rounding(backend):
    # points on edges up to rounding: both triangles of an edge must agree on
    # who owns the ray (canonical edge functions), or the parity flips
    m = ico_sphere(3)
    v, f = m.verts_list()[0].double(), m.faces_list()[0]
    e = torch.cat([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    e = e[e[:, 0] < e[:, 1]]  # each interior edge once
    g = torch.Generator().manual_seed(7)
    t = torch.rand(e.shape[0], 1, generator=g, dtype=torch.float64)
    mid = v[e[:, 0]] + t * (v[e[:, 1]] - v[e[:, 0]])
    for axis in range(3):
        p = mid.clone()
        p[:, axis] = p[:, axis] * 0.25 + 0.1  # slide along the ray axis: the ray still runs through the edge
        truth, decided = convex_truth(v, f, p)
        _, bits = bits_of(Meshes([v], [f]), p[None], backend)
        parity = ((bits[0] >> axis) & 1).bool()
        assert torch.equal(parity[decided], truth[decided]), (axis, int((parity != truth)[decided].sum()))
        assert int(decided.sum()) > 0.9 * p.shape[0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_analytic_sphere_matches_half_spaces(backend):
    v, f = ico_sphere(3).verts_list()[0].double(), ico_sphere(3).faces_list()[0]
    g = torch.Generator().manual_seed(0)
    p = (torch.rand(10000, 3, generator=g, dtype=torch.float64) * 2 - 1) * 1.2
    truth, decided = convex_truth(v, f, p)
    got = points_in_meshes(Meshes([v], [f]), p[None], backend=backend)[0]
    assert torch.equal(got[decided], truth[decided])
    r = p.norm(dim=1)
    assert got[r < 0.99].all() and not got[r > 1.0].any()  # the polyhedron lies between the two spheres


@pytest.mark.parametrize("backend", BACKENDS)
def test_analytic_torus(backend):
    R, r = 0.75, 0.25
    v, f = torus(R, r)
    g = torch.Generator().manual_seed(1)
    p = (torch.rand(1, 30000, 3, generator=g, dtype=torch.float64) * 2 - 1) * torch.tensor([1.1, 0.35, 1.1])
    sdf = ((p[..., [0, 2]].norm(dim=-1) - R) ** 2 + p[..., 1] ** 2).sqrt() - r
    far = sdf.abs() > 0.01  # the polygonal torus is within 0.003 of the smooth one
    got = points_in_meshes(Meshes([v], [f]), p, backend=backend)
    assert torch.equal(got[far], (sdf < 0)[far])
    assert int(got.sum()) > 3000


@pytest.mark.parametrize("backend", BACKENDS)
def test_sliver_fan_caps(backend):
    from geomgen.kernels import points_in_meshes_numba as K

    v, f = fan_cylinder()
    g = torch.Generator().manual_seed(2)
    p = (torch.rand(1, 20000, 3, generator=g, dtype=torch.float64) * 2 - 1) * 0.6
    rad = p[..., [0, 2]].norm(dim=-1)
    want = (rad < 0.5) & (p[..., 1].abs() < 0.5)
    far = ((rad - 0.5).abs() > 1e-4) & ((p[..., 1].abs() - 0.5).abs() > 1e-9)
    got = points_in_meshes(Meshes([v], [f]), p, backend=backend)
    assert torch.equal(got[far], want[far])
    # the cap slivers made the kernel coarsen the y grid instead of filling O(cells) bins each
    grids = K.build_grids(v.numpy(), f.numpy(), np.zeros(len(f), np.int64), 1)
    gdim, start = grids[3], grids[5]
    caps = len(f) // 2  # the faces projecting with non-zero area along y
    assert gdim[0, 1].prod() <= K.CELLS_PER_FACE * caps / 4  # coarsened (at least one step of 4x)
    y_entries = start[grids[4][0, 1] + gdim[0, 1].prod()] - start[grids[4][0, 1]]
    assert y_entries <= K.MAX_ENTRIES_PER_FACE * caps + 64


def test_points_on_the_surface_are_half_open():
    # documented: the crossing at the point itself is not counted
    m = Meshes(*[[t] for t in cube_mesh()])
    p = torch.tensor([[[0.5, 0.5, 1.0], [0.5, 0.5, 0.0]]], dtype=torch.float64)
    _, bits = bits_of(m, p, "numba")
    assert int(bits[0, 0]) & 4 and not int(bits[0, 1]) & 4  # z-ray: top face counts, bottom does not


# --------------------------------------------------------------------------- voxelize, real meshes


@pytest.mark.parametrize("name", ["armadillo.off", "elephant-with-holes.off"])
def test_same_answer_as_voxelize_solid_at_voxel_centres(cgal_data, name):
    from geomgen.ops.voxelize import _grid_tris, _parity_votes_torch

    m = load(cgal_data, name)
    solid = voxelize(m, 40, mode="solid", padding=1)
    surf = voxelize(m, 40, padding=1).grids[0].bool()
    grid = solid.grids[0].bool()
    centres = solid.voxel_centers()[0].reshape(1, -1, 3)
    got = points_in_meshes(m, centres).reshape(grid.shape)
    # voxels that are not surface voxels are solid exactly when their centre is inside
    assert torch.equal(got & ~surf, grid & ~surf)
    assert int((grid & ~surf).sum()) > 500
    # and at every centre (surface voxels too) the vote equals the voxelizer's own
    F = m.faces_packed().shape[0]
    fm = torch.zeros(F, dtype=torch.int64)
    tris = _grid_tris(m.verts_packed(), m.faces_packed(), fm, solid.origin.double(), solid.voxel_size.double())
    votes = _parity_votes_torch(tris, fm, solid.resolution, 1)[0]
    assert torch.equal(got, votes >= 2)


def test_backends_agree_on_real_and_random_meshes(cgal_data):
    arm = load(cgal_data, "armadillo.off")
    ele = load(cgal_data, "elephant.off")
    g = torch.Generator().manual_seed(3)
    soup_v = torch.rand(300, 3, generator=g) * 2 - 1  # open, self-intersecting triangle soup
    soup_f = torch.randint(0, 300, (200, 3), generator=g)
    soup_f = soup_f[(soup_f[:, 0] != soup_f[:, 1]) & (soup_f[:, 1] != soup_f[:, 2]) & (soup_f[:, 0] != soup_f[:, 2])]
    meshes = Meshes(
        [arm.verts_list()[0], ele.verts_list()[0], soup_v, torch.zeros(0, 3)],
        [arm.faces_list()[0], ele.faces_list()[0], soup_f, torch.zeros(0, 3, dtype=torch.int64)],
    )
    pts = []
    for n, size in enumerate([6000, 3000, 3000, 50]):
        box = meshes.get_bounding_boxes()[n] if n < 3 else torch.tensor([[-1.0, 1.0]] * 3)
        lo, hi = box[:, 0], box[:, 1]
        pts.append(lo + (hi - lo) * (torch.rand(size, 3, generator=g) * 1.2 - 0.1))
    # rays through the vertices of the real meshes too
    pts[0] = torch.cat([pts[0], arm.verts_list()[0][:500] + torch.tensor([0.0, 0.0, 1.0])])
    a_in, a_bits = bits_of(meshes, pts, "numba")
    b_in, b_bits = bits_of(meshes, pts, "torch")
    for n in range(4):
        assert torch.equal(a_bits[n], b_bits[n]), n
        assert torch.equal(a_in[n], b_in[n]), n
    assert not a_in[3].any()  # the empty mesh has no inside
    assert 0.02 < a_in[0].float().mean() < 0.5 and a_in[2].any() and not a_in[2].all()


def test_mesh_with_holes_majority_vote(cgal_data):
    closed = load(cgal_data, "elephant.off")
    holes = load(cgal_data, "elephant-with-holes.off")  # ~1100 faces removed
    g = torch.Generator().manual_seed(4)
    p = (torch.rand(1, 40000, 3, generator=g) - 0.5) * 1.1
    want = points_in_meshes(closed, p)[0]
    got, bits = bits_of(holes, p, "auto")
    got, bits = got[0], bits[0]
    agree = (got == want).float().mean().item()
    single = [(((bits >> a) & 1).bool() == want).float().mean().item() for a in range(3)]
    assert agree > 0.99, agree
    assert agree > max(single) + 0.01, (agree, single)  # the vote repairs what one ray gets wrong
    assert int(want.sum()) > 1000


# --------------------------------------------------------------------------- batching and layout


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_forms_and_padded_meshes(backend):
    v1, f1 = cube_mesh(0.0, 1.0)
    v2, f2 = octahedron()
    v2 = v2 + torch.tensor([3.0, 0, 0], dtype=torch.float64)
    g = torch.Generator().manual_seed(5)
    pts = torch.rand(2, 400, 3, generator=g, dtype=torch.float64) * 4 - 1
    single = [points_in_meshes(Meshes([v], [f]), pts[n : n + 1], backend=backend)[0]
              for n, (v, f) in enumerate([(v1, f1), (v2, f2)])]
    batch = Meshes([v1, v2], [f1, f2])
    out = points_in_meshes(batch, pts, backend=backend)
    assert out.shape == (2, 400) and out.dtype == torch.bool
    assert torch.equal(out, torch.stack(single))
    assert single[0].any() and single[1].any()
    # a padded Meshes (built from padded tensors) gives the same answer
    vp = torch.zeros(2, 8, 3, dtype=torch.float64)
    vp[0], vp[1, :6] = v1, v2
    fp = torch.full((2, 12, 3), -1, dtype=torch.int64)
    fp[0], fp[1, :8] = f1, f2
    assert torch.equal(points_in_meshes(Meshes(vp, fp, num_verts=[8, 6]), pts, backend=backend), out)
    # list form with different sizes, empty entries included
    lst = points_in_meshes(batch, [pts[0, :10], pts[1, :0]], backend=backend)
    assert isinstance(lst, list) and [t.shape for t in lst] == [(10,), (0,)]
    assert torch.equal(lst[0], out[0, :10])
    # float32 points against float64 meshes are fine; no points at all too
    assert points_in_meshes(batch, torch.zeros(2, 0, 3), backend=backend).shape == (2, 0)
    assert points_in_meshes(Meshes([], []), torch.zeros(0, 5, 3), backend=backend).shape == (0, 5)
    assert points_in_meshes(Meshes([], []), [], backend=backend) == []


def test_serial_and_parallel_kernels_agree():
    m = ico_sphere(3)
    g = torch.Generator().manual_seed(6)
    p = torch.rand(1, 20000, 3, generator=g) * 2.4 - 1.2
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        serial = points_in_meshes(m, p)
        torch.set_num_threads(2)
        parallel = points_in_meshes(m, p)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(serial, parallel) and serial.any()


def test_forked_child_takes_the_torch_path(monkeypatch):
    import geomgen.backend as T
    from geomgen.kernels import points_in_meshes_numba as K

    m = ico_sphere(2)
    p = torch.rand(1, 500, 3) * 2 - 1
    want = points_in_meshes(m, p)

    def boom(*a, **k):
        raise AssertionError("numba kernel called in a forked child")

    monkeypatch.setattr(T, "forked_after_pool", lambda: True)
    monkeypatch.setattr(K, "points_in_meshes", boom)
    assert torch.equal(points_in_meshes(m, p), want)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    m = ico_sphere(3)
    p = torch.rand(2, 5000, 3) * 2.4 - 1.2
    mm = Meshes([m.verts_list()[0]] * 2, [m.faces_list()[0]] * 2)
    a = points_in_meshes(mm, p)
    b = points_in_meshes(mm.to("cuda"), p.cuda())
    assert b.device.type == "cuda" and torch.equal(a, b.cpu())


# --------------------------------------------------------------------------- errors


def _cube():
    return Meshes(*[[t] for t in cube_mesh()])


@pytest.mark.parametrize(
    "meshes, points, kwargs, words",
    [
        (lambda: "cube", lambda: torch.zeros(1, 3, 3), {}, ["'meshes'", "Meshes"]),
        (_cube, lambda: torch.zeros(1, 3), {}, ["'points'", "(N, P, 3)"]),
        (_cube, lambda: torch.zeros(2, 3, 3), {}, ["'points'", "N = 1"]),
        (_cube, lambda: torch.zeros(1, 3, 2), {}, ["'points'", "(N, P, 3)"]),
        (_cube, lambda: torch.zeros(1, 3, 3, dtype=torch.int64), {}, ["'points'", "floating"]),
        (_cube, lambda: torch.tensor([[[0.0, float("nan"), 0.0]]]), {}, ["'points'", "finite"]),
        (_cube, lambda: [torch.zeros(3, 3), torch.zeros(3, 3)], {}, ["'points'", "one (P_n, 3)"]),
        (_cube, lambda: [torch.zeros(3, 2)], {}, ["'points[0]'", "(P_n, 3)"]),
        (_cube, lambda: [np.zeros((3, 3))], {}, ["'points[0]'"]),
        (_cube, lambda: np.zeros((1, 3, 3)), {}, ["'points'", "ndarray"]),
        (_cube, lambda: torch.zeros(1, 3, 3), {"backend": "cuda"}, ["'backend'"]),
        (lambda: Meshes([torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, float("inf"), 0]])], [torch.tensor([[0, 1, 2]])],
                        validate=False), lambda: torch.zeros(1, 3, 3), {}, ["meshes", "finite"]),
        (lambda: Meshes([torch.rand(3, 3)], [torch.tensor([[0, 1, 5]])], validate=False),
         lambda: torch.zeros(1, 3, 3), {}, ["'meshes'", "face indices"]),
    ],
)
@pytest.mark.parametrize("backend", ["auto", "torch"])
def test_validation_errors(meshes, points, kwargs, words, backend):
    kwargs = {"backend": backend, **kwargs}
    with pytest.raises(InvalidInputError) as info:
        points_in_meshes(meshes(), points(), **kwargs)
    msg = str(info.value)
    assert "points_in_meshes" in msg
    for w in words:
        assert w in msg, msg


def test_labels_are_not_differentiable_but_accept_grad_inputs():
    m = ico_sphere(1)  # inradius > 0.79
    p = (torch.rand(1, 200, 3) * 2 - 1).requires_grad_()
    out = points_in_meshes(m, p)
    assert out.dtype == torch.bool and not out.requires_grad
    r = p.detach().norm(dim=-1)
    assert out[r < 0.75].all() and not out[r > 1.0].any()
