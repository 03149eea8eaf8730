"""Tests of geomgen.ops.sample_points_from_meshes."""

from __future__ import annotations

import pytest
import torch

from geomgen.errors import InvalidInputError
from geomgen.ops import sample_points_from_meshes

from geomgen.structures import Meshes


def unit_cube(dtype=torch.float32):
    """[0, 1]^3 with 12 counter-clockwise (outward) triangles."""
    v = torch.tensor(
        [[x, y, z] for x in (0.0, 1.0) for y in (0.0, 1.0) for z in (0.0, 1.0)], dtype=dtype
    )  # index = 4x + 2y + z
    quads = [
        (0, 1, 3, 2),  # x = 0
        (4, 6, 7, 5),  # x = 1
        (0, 4, 5, 1),  # y = 0
        (2, 3, 7, 6),  # y = 1
        (0, 2, 6, 4),  # z = 0
        (1, 5, 7, 3),  # z = 1
    ]
    f = []
    for a, b, c, d in quads:
        f += [[a, b, c], [a, c, d]]
    return v, torch.tensor(f, dtype=torch.int64)


def irregular_mesh(dtype=torch.float64):
    """A fan of triangles with very different areas (not closed, not symmetric)."""
    v = torch.tensor(
        [[0, 0, 0], [1, 0, 0], [0, 1, 0], [-3, 0, 0.5], [0, -0.2, 0], [2, 2, 1]], dtype=dtype
    )
    f = torch.tensor([[0, 1, 2], [0, 2, 3], [0, 4, 1], [1, 5, 2], [3, 4, 0]], dtype=torch.int64)
    return v, f


def face_areas(v, f):
    t = v[f].double()
    return 0.5 * torch.linalg.vector_norm(torch.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0], dim=1), dim=1)


def test_shapes_dtypes_heterogeneous_batch():
    cv, cf = unit_cube()
    tv = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
    tf = torch.tensor([[0, 1, 2]])
    meshes = Meshes([cv, tv], [cf, tf])
    gen = torch.Generator().manual_seed(0)
    pts, nrm = sample_points_from_meshes(meshes, 500, return_normals=True, generator=gen)
    assert pts.shape == (2, 500, 3) and nrm.shape == (2, 500, 3)
    assert pts.dtype == torch.float32 and nrm.dtype == torch.float32
    # second mesh: every sample inside the triangle z=0, x,y>=0, x+y<=1
    t = pts[1]
    assert (t[:, 2] == 0).all() and (t[:, :2] >= -1e-6).all() and (t[:, :2].sum(1) <= 1 + 1e-6).all()
    assert torch.allclose(nrm[1], torch.tensor([0.0, 0.0, 1.0]).expand(500, 3))
    # plain call returns just the samples
    only = sample_points_from_meshes(meshes, 7)
    assert isinstance(only, torch.Tensor) and only.shape == (2, 7, 3)


def test_cube_mean_is_area_centroid_and_points_on_surface():
    v, f = unit_cube(torch.float64)
    gen = torch.Generator().manual_seed(1)
    pts = sample_points_from_meshes(Meshes([v], [f]), 100_000, generator=gen)[0]
    torch.testing.assert_close(pts.mean(0), torch.full((3,), 0.5, dtype=torch.float64), atol=5e-3, rtol=0)
    # on the surface: inside the cube and one coordinate at 0 or 1
    assert (pts >= -1e-12).all() and (pts <= 1 + 1e-12).all()
    on_face = ((pts.abs() < 1e-12) | ((pts - 1).abs() < 1e-12)).any(dim=1)
    assert on_face.all()


def test_irregular_mean_is_area_centroid():
    v, f = irregular_mesh()
    a = face_areas(v, f)
    centroid = (a[:, None] * v[f].mean(1)).sum(0) / a.sum()
    gen = torch.Generator().manual_seed(2)
    pts = sample_points_from_meshes(Meshes([v], [f]), 100_000, generator=gen)[0]
    torch.testing.assert_close(pts.mean(0), centroid, atol=1e-2, rtol=0)


def test_uniform_inside_triangle():
    v = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=torch.float64)
    gen = torch.Generator().manual_seed(3)
    pts = sample_points_from_meshes(Meshes([v], [torch.tensor([[0, 1, 2]])]), 100_000, generator=gen)[0]
    # sub-triangle x + y < 0.5 holds a quarter of the area
    frac = ((pts[:, 0] + pts[:, 1]) < 0.5).double().mean()
    assert abs(float(frac) - 0.25) < 0.01
    # the near-corner region x < 0.5, y < 0.5 (area 0.25 of total 0.5) holds half
    frac = ((pts[:, 0] < 0.5) & (pts[:, 1] < 0.5)).double().mean()
    assert abs(float(frac) - 0.5) < 0.01


def test_face_counts_proportional_to_area():
    """Pearson chi-square of the per-face counts against area-proportional expectation.

    The faces are disjoint triangles in the planes z = 0, 1, 2, ... so a
    sample's face is its z coordinate.
    """
    scales = torch.tensor([0.1, 0.5, 1.0, 1.5, 2.0, 3.0, 0.05, 1.2], dtype=torch.float64)
    F = len(scales)
    base = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0.3, 1, 0]], dtype=torch.float64)
    v = (base[None] * scales[:, None, None]).clone()
    v[:, :, 2] = torch.arange(F, dtype=torch.float64)[:, None]
    v = v.reshape(-1, 3)
    f = torch.arange(3 * F).reshape(F, 3)
    a = face_areas(v, f)
    S = 200_000
    gen = torch.Generator().manual_seed(4)
    pts = sample_points_from_meshes(Meshes([v], [f]), S, generator=gen)[0]
    face_of = pts[:, 2].round().long()
    torch.testing.assert_close(pts[:, 2], face_of.double())
    counts = torch.bincount(face_of, minlength=F).double()
    expected = S * a / a.sum()
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    dof = F - 1
    # mean dof, sd sqrt(2 dof): 6 sd is far beyond chance, a wrong weighting is far beyond that
    assert chi2 < dof + 6 * (2 * dof) ** 0.5, (counts, expected)
    # a uniform (not area-weighted) choice would fail the same test badly
    uniform = torch.full((F,), S / F, dtype=torch.float64)
    assert float(((uniform - expected) ** 2 / expected).sum()) > 100 * (dof + 6 * (2 * dof) ** 0.5)


def test_normals_unit_and_equal_to_face_normal():
    v, f = unit_cube()
    gen = torch.Generator().manual_seed(5)
    pts, nrm = sample_points_from_meshes(Meshes([v], [f]), 5000, return_normals=True, generator=gen)
    pts, nrm = pts[0], nrm[0]
    torch.testing.assert_close(nrm.norm(dim=1), torch.ones(5000))
    # the normal is the outward axis of the face the sample lies on
    axis = nrm.abs().argmax(1)
    assert torch.allclose(nrm.abs().max(1).values, torch.ones(5000))
    coord = pts.gather(1, axis[:, None])[:, 0]
    sign = nrm.gather(1, axis[:, None])[:, 0]
    assert torch.allclose(coord, (sign > 0).float(), atol=1e-6)


def test_zero_area_faces_never_chosen():
    v = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [2, 0, 0]])
    f = torch.tensor([[0, 1, 3], [0, 1, 2], [1, 3, 0]])  # faces 0 and 2 are degenerate
    gen = torch.Generator().manual_seed(6)
    pts, nrm = sample_points_from_meshes(Meshes([v], [f]), 20_000, return_normals=True, generator=gen)
    assert torch.isfinite(nrm).all()
    assert torch.allclose(nrm[0], torch.tensor([0.0, 0.0, 1.0]).expand(20_000, 3))
    assert (pts[0, :, :2].sum(1) <= 1 + 1e-6).all()


def test_samples_stay_in_their_own_mesh():
    """Packed batch: mesh n lives in z in [10 n, 10 n + 1]; degenerate faces at both ends."""
    cv, cf = unit_cube()
    degenerate = torch.tensor([[0, 0, 1]])
    verts, faces = [], []
    for n in range(6):
        verts.append(cv * (n + 1) * 0.1 + torch.tensor([0.0, 0.0, 10.0 * n]))
        faces.append(torch.cat([degenerate, cf[: 2 + 2 * n], degenerate]))
    gen = torch.Generator().manual_seed(11)
    pts, nrm = sample_points_from_meshes(Meshes(verts, faces), 3000, True, generator=gen)
    for n in range(6):
        z = pts[n, :, 2]
        assert (z >= 10.0 * n - 1e-4).all() and (z <= 10.0 * n + 1 + 1e-4).all()
    torch.testing.assert_close(nrm.norm(dim=-1), torch.ones(6, 3000))


def test_determinism_with_generator():
    v, f = irregular_mesh(torch.float32)
    m = Meshes([v, v * 2], [f, f])
    a = sample_points_from_meshes(m, 300, True, generator=torch.Generator().manual_seed(7))
    b = sample_points_from_meshes(m, 300, True, generator=torch.Generator().manual_seed(7))
    c = sample_points_from_meshes(m, 300, True, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    torch.manual_seed(0)
    d = sample_points_from_meshes(m, 300)
    torch.manual_seed(0)
    assert torch.equal(d, sample_points_from_meshes(m, 300))


def test_gradients_flow_to_verts():
    v, f = irregular_mesh(torch.float64)
    v = v.clone().requires_grad_(True)
    S = 50
    pts, nrm = sample_points_from_meshes(
        Meshes([v], [f]), S, return_normals=True, generator=torch.Generator().manual_seed(9)
    )
    pts.sum(dim=(0, 1))[0].backward()
    # barycentric weights sum to one: translating all vertices translates all samples
    torch.testing.assert_close(v.grad[:, 0].sum(), torch.tensor(float(S), dtype=torch.float64))
    assert (v.grad[:, 1:] == 0).all()

    def f_pts(verts):
        g = torch.Generator().manual_seed(10)
        p, n = sample_points_from_meshes(Meshes([verts], [f]), 6, True, generator=g)
        return p, n

    w = irregular_mesh(torch.float64)[0].requires_grad_(True)
    assert torch.autograd.gradcheck(f_pts, (w,), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "make, kwargs, words",
    [
        (lambda: "not a mesh", {}, ["'meshes'"]),
        (lambda: Meshes([], []), {}, ["'meshes'", "empty"]),
        (lambda: Meshes([unit_cube()[0], torch.rand(3, 3)],
                        [unit_cube()[1], torch.zeros(0, 3, dtype=torch.int64)]), {},
         ["'meshes'", "mesh 1", "no faces"]),
        (lambda: Meshes([torch.tensor([[0.0, 0, 0], [1, 1, 1], [2, 2, 2]])], [torch.tensor([[0, 1, 2]])]),
         {}, ["'meshes'", "mesh 0", "area"]),
        (lambda: Meshes([torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, float("nan"), 0]])],
                        [torch.tensor([[0, 1, 2]])], validate=False), {}, ["meshes", "finite"]),
        (lambda: Meshes([unit_cube()[0]], [unit_cube()[1]]), {"num_samples": 0}, ["'num_samples'"]),
        (lambda: Meshes([unit_cube()[0]], [unit_cube()[1]]), {"num_samples": 2.5}, ["'num_samples'"]),
        (lambda: Meshes([unit_cube()[0]], [unit_cube()[1]]), {"return_textures": True},
         ["'return_textures'"]),
        (lambda: Meshes([unit_cube()[0]], [unit_cube()[1]]), {"return_normals": "yes"},
         ["'return_normals'"]),
        (lambda: Meshes([unit_cube()[0]], [unit_cube()[1]]), {"generator": 3}, ["'generator'"]),
    ],
)
def test_validation_errors(make, kwargs, words):
    with pytest.raises(InvalidInputError) as info:
        sample_points_from_meshes(make(), **kwargs)
    msg = str(info.value)
    assert "sample_points_from_meshes" in msg
    for w in words:
        assert w in msg, msg


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_backends_agree(dtype):
    """Same generator seed: the numba kernel and the torch reference choose the
    same faces and barycentrics (positions equal up to float rounding)."""
    cv, cf = unit_cube(dtype)
    iv, i_f = irregular_mesh(dtype)
    m = Meshes([cv * 3, iv, cv + 5], [cf, i_f, cf.flip(1)])
    a = sample_points_from_meshes(m, 4000, True, generator=torch.Generator().manual_seed(12), backend="numba")
    b = sample_points_from_meshes(m, 4000, True, generator=torch.Generator().manual_seed(12), backend="torch")
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(a[0], b[0], atol=tol, rtol=0)
    torch.testing.assert_close(a[1], b[1], atol=tol, rtol=0)


def test_backends_agree_on_armadillo(cgal_data):
    from geomgen.io import load_mesh

    mesh = load_mesh(cgal_data / "meshes" / "armadillo.off")
    v, f = mesh.verts_list()[0].float(), mesh.faces_list()[0]
    m = Meshes([v], [f])
    a = sample_points_from_meshes(m, 50_000, generator=torch.Generator().manual_seed(13))
    b = sample_points_from_meshes(m, 50_000, generator=torch.Generator().manual_seed(13), backend="torch")
    scale = float((v.amax(0) - v.amin(0)).max())
    torch.testing.assert_close(a, b, atol=1e-6 * scale, rtol=0)
    # area-weighted centroid of the surface
    t = v.double()[f]
    area = 0.5 * torch.linalg.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]).norm(dim=1)
    centroid = (area[:, None] * t.mean(1)).sum(0) / area.sum()
    torch.testing.assert_close(a[0].double().mean(0), centroid, atol=5e-3 * scale, rtol=0)


def test_grad_path_matches_kernel_path():
    v, f = irregular_mesh(torch.float64)
    m = Meshes([v], [f])
    vg = v.clone().requires_grad_(True)
    mg = Meshes([vg], [f])
    a = sample_points_from_meshes(m, 500, True, generator=torch.Generator().manual_seed(14))
    b = sample_points_from_meshes(mg, 500, True, generator=torch.Generator().manual_seed(14))
    assert not a[0].requires_grad and b[0].requires_grad and b[1].requires_grad
    torch.testing.assert_close(a[0], b[0].detach(), atol=1e-12, rtol=0)
    torch.testing.assert_close(a[1], b[1].detach(), atol=1e-12, rtol=0)
    with torch.no_grad():  # no autograd wanted: the kernel computes everything
        c = sample_points_from_meshes(mg, 500, True, generator=torch.Generator().manual_seed(14))
    assert not c[0].requires_grad and torch.equal(c[0], a[0])


def test_numba_backend_determinism_and_float16():
    v, f = irregular_mesh(torch.float32)
    m = Meshes([v], [f])
    a = sample_points_from_meshes(m, 100, generator=torch.Generator().manual_seed(15), backend="numba")
    b = sample_points_from_meshes(m, 100, generator=torch.Generator().manual_seed(15), backend="numba")
    assert torch.equal(a, b)
    h = Meshes([v.half()], [f])
    out = sample_points_from_meshes(h, 100, generator=torch.Generator().manual_seed(15))  # torch path
    assert out.dtype == torch.float16 and out.shape == (1, 100, 3)
    with pytest.raises(InvalidInputError, match="'backend'"):
        sample_points_from_meshes(h, 10, backend="numba")
    with pytest.raises(InvalidInputError, match="'backend'"):
        sample_points_from_meshes(m, 10, backend="cuda")


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_unvalidated_out_of_range_faces_raise(backend):
    m = Meshes([torch.rand(4, 3)], [torch.tensor([[0, 1, 2], [1, 2, 9]])], validate=False)
    with pytest.raises(InvalidInputError, match="face indices"):
        sample_points_from_meshes(m, 10, backend=backend)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_generator_and_device():
    v, f = unit_cube()
    m = Meshes([v.cuda()], [f.cuda()])
    pts, nrm = sample_points_from_meshes(
        m, 1000, True, generator=torch.Generator(device="cuda").manual_seed(0)
    )
    assert pts.device.type == "cuda" and nrm.device.type == "cuda"
    with pytest.raises(InvalidInputError, match="'generator'"):
        sample_points_from_meshes(m, 10, generator=torch.Generator().manual_seed(0))
