"""Tests of geomgen.render.rasterize_meshes (numba kernels and the torch path).

The brute-force reference below clips every face against ``z = znear``
explicitly (Sutherland-Hodgman in the camera frame), fans the clipped polygon
into triangles whose corners carry barycentrics of the original face, and
tests every pixel centre against each projected sub-triangle with 2D
barycentrics, interpolating depth and barycentrics perspective-correctly.
Pixels whose centre lies within rounding of a (sub-)triangle edge, or where
two surfaces are at nearly the same depth, are "ambiguous" and not compared.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from geomgen.errors import InvalidInputError
from geomgen.ops import ico_sphere
from geomgen.render import Fragments, PerspectiveCameras, look_at, orbit_poses, rasterize_meshes
from geomgen.structures import Meshes

from _helpers import clip_polygon as _clip

D = torch.float64
BACKENDS = ("numba", "torch")


# --------------------------------------------------------------------------- reference


def reference(verts: np.ndarray, faces: np.ndarray, K: np.ndarray, pose: np.ndarray, H: int, W: int,
              znear: float = 1e-2, zfar: float = math.inf, cull: bool = False, eps: float = 1e-9):
    """(pix_to_face, zbuf, bary, ambiguous) of one image, float64, by explicit clipping."""
    R, t = pose[:3, :3], pose[:3, 3]
    vc = (verts - t) @ R
    fx, fy, cx, cy, s = K[0, 0], K[1, 1], K[0, 2], K[1, 2], K[0, 1]
    v, u = np.meshgrid(np.arange(H) + 0.5, np.arange(W) + 0.5, indexing="ij")
    zbuf = np.full((H, W), np.inf)
    p2f = np.full((H, W), -1)
    bary = np.zeros((H, W, 3))
    amb = np.zeros((H, W), bool)
    for f, tri in enumerate(faces):
        P = vc[tri]
        n = np.cross(P[1] - P[0], P[2] - P[0])
        if cull and n @ P[0] > 0:
            continue
        poly = _clip([(P[i], np.eye(3)[i]) for i in range(3)], znear)
        for j in range(1, len(poly) - 1):
            sub = [poly[0], poly[j], poly[j + 1]]
            pts = np.array([p for p, _ in sub])
            bs = np.array([b for _, b in sub])
            z = pts[:, 2]
            q = np.stack([(fx * pts[:, 0] + s * pts[:, 1]) / z + cx, fy * pts[:, 1] / z + cy], 1)
            area = (q[1, 0] - q[0, 0]) * (q[2, 1] - q[0, 1]) - (q[1, 1] - q[0, 1]) * (q[2, 0] - q[0, 0])
            if abs(area) < 1e-14:
                continue
            lam = []
            for a, b in ((1, 2), (2, 0), (0, 1)):
                lam.append(((q[a, 0] - u) * (q[b, 1] - v) - (q[a, 1] - v) * (q[b, 0] - u)) / area)
            lam = np.stack(lam, -1)  # (H, W, 3)
            scale = 1 + np.abs(q).max() / max(abs(area), 1e-300) ** 0.5
            tol = eps * scale
            inside = (lam >= -tol).all(-1)
            strict = (lam > tol).all(-1)
            w = lam / z
            with np.errstate(divide="ignore", invalid="ignore"):
                zz = 1.0 / w.sum(-1)
                bb = zz[..., None] * (w @ bs)
            ok = (zz >= znear) & (zz <= zfar)
            edge = inside & ~strict & ok
            with np.errstate(invalid="ignore"):
                near_tie = strict & ok & (np.abs(zz - zbuf) <= 1e-9 * zz)
            amb |= edge | near_tie
            win = strict & ok & (zz < zbuf)
            zbuf[win] = zz[win]
            p2f[win] = f
            bary[win] = bb[win]
    zbuf[p2f < 0] = 0
    return p2f, zbuf, bary, amb


def compare_to_reference(frag: Fragments, i: int, verts, faces, cams, znear=1e-2, zfar=math.inf, cull=False,
                         face_offset=0, max_ambiguous=0.05):
    H, W = cams.image_size
    p2f, zbuf, bary, amb = reference(verts.double().numpy(), faces.numpy(), cams.K[i].double().numpy(),
                                     cams.world_from_camera[i].double().numpy(), H, W, znear, zfar, cull)
    p2f = np.where(p2f >= 0, p2f + face_offset, -1)
    ok = ~amb
    assert amb.mean() <= max_ambiguous
    got_f = frag.pix_to_face[i].numpy()
    np.testing.assert_array_equal(got_f[ok], p2f[ok])
    np.testing.assert_allclose(frag.zbuf[i].double().numpy()[ok], zbuf[ok], rtol=1e-9, atol=0)
    np.testing.assert_allclose(frag.bary[i].double().numpy()[ok], bary[ok], rtol=0, atol=1e-8)
    return ok.sum()


def random_scene(seed: int, F: int = 40, H: int = 24, W: int = 32, cross_near: bool = True):
    """Random triangles in front of (and some across/behind) a random camera with a skewed K."""
    g = torch.Generator().manual_seed(seed)
    K = torch.tensor([[28.0, 1.5, W / 2 + 0.3], [0.0, 30.0, H / 2 - 0.2], [0, 0, 1]], dtype=D)
    z = torch.rand(F, 3, generator=g, dtype=D) * 3.0 + 0.3
    if cross_near:
        z[: F // 3, 0] = -torch.rand(F // 3, generator=g, dtype=D)  # one corner behind the camera
        z[F // 3: F // 3 + 3, :2] = 0.004  # two corners between the camera and znear
    xy = (torch.rand(F, 3, 2, generator=g, dtype=D) - 0.5) * torch.tensor([1.2, 0.9], dtype=D) * z[..., None]
    cam_pts = torch.cat([xy, z[..., None]], -1).reshape(-1, 3)
    pose = look_at(torch.randn(3, generator=g, dtype=D), torch.randn(3, generator=g, dtype=D))
    world = cam_pts @ pose[0, :3, :3].T + pose[0, :3, 3]
    faces = torch.arange(3 * F).reshape(F, 3)
    return world, faces, PerspectiveCameras(K, pose, (H, W))


# --------------------------------------------------------------------------- basic geometry


@pytest.mark.parametrize("backend", BACKENDS)
def test_single_triangle_matches_brute_force(backend):
    K = torch.tensor([[20.0, 0, 10], [0, 20.0, 8], [0, 0, 1]], dtype=D)
    cams = PerspectiveCameras(K, None, (16, 20))
    verts = torch.tensor([[-0.41, -0.33, 2.0], [0.37, -0.12, 2.6], [-0.05, 0.31, 1.7]], dtype=D)
    faces = torch.tensor([[0, 1, 2]])
    frag = rasterize_meshes(Meshes([verts], [faces]), cams, backend=backend)
    assert isinstance(frag, Fragments) and frag.pix_to_face.dtype == torch.int64
    assert frag.zbuf.dtype == D and frag.bary.shape == (1, 16, 20, 3)
    n = compare_to_reference(frag, 0, verts, faces, cams, max_ambiguous=0.0)
    assert frag.mask.sum() > 20 and n == 16 * 20
    torch.testing.assert_close(frag.mask, frag.pix_to_face >= 0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bary_sum_to_one_and_reproduce_the_hit(backend):
    verts, faces, cams = random_scene(0)
    frag = rasterize_meshes(Meshes([verts], [faces]), cams, backend=backend)
    m = frag.mask[0]
    b = frag.bary[0][m]
    torch.testing.assert_close(b.sum(-1), torch.ones(len(b), dtype=D), atol=1e-12, rtol=0)
    assert (b >= -1e-12).all()
    assert (frag.bary[0][~m] == 0).all() and (frag.zbuf[0][~m] == 0).all()
    # sum_i bary_i v_i (world) is the surface point seen through the pixel centre, at depth zbuf
    corners = verts[faces[frag.pix_to_face[0][m]]]  # (P, 3, 3)
    hit = (b[..., None] * corners).sum(1)
    uvz = cams.project(hit[None])[0]
    vv, uu = torch.nonzero(m, as_tuple=True)
    torch.testing.assert_close(uvz[:, 0], uu.double() + 0.5, atol=1e-8, rtol=0)
    torch.testing.assert_close(uvz[:, 1], vv.double() + 0.5, atol=1e-8, rtol=0)
    torch.testing.assert_close(uvz[:, 2], frag.zbuf[0][m], atol=1e-10, rtol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_plane_at_known_depth_and_zfar(backend):
    gen = torch.Generator().manual_seed(5)
    pose = look_at(torch.randn(3, generator=gen, dtype=D) * 2, torch.zeros(3, dtype=D))
    cams = PerspectiveCameras.from_fov(60.0, (12, 16), pose, dtype=D)
    # a big square in the camera plane z = 2.5, mapped to the world
    sq = torch.tensor([[-5.0, -5, 2.5], [5, -5, 2.5], [5, 5, 2.5], [-5, 5, 2.5]], dtype=D)
    world = cams.camera_to_world(sq)[0]
    mesh = Meshes([world], [torch.tensor([[0, 1, 2], [0, 2, 3]])])
    frag = rasterize_meshes(mesh, cams, backend=backend)
    assert frag.mask.all()
    torch.testing.assert_close(frag.zbuf, torch.full_like(frag.zbuf, 2.5), atol=1e-12, rtol=0)
    assert not rasterize_meshes(mesh, cams, zfar=2.4, backend=backend).mask.any()
    assert rasterize_meshes(mesh, cams, zfar=2.6, backend=backend).mask.all()
    # a tilted plane is cut at zfar
    tilt = torch.tensor([[-5.0, -5, 1.0], [5, -5, 1.0], [5, 5, 4.0], [-5, 5, 4.0]], dtype=D)
    mesh = Meshes([cams.camera_to_world(tilt)[0]], [torch.tensor([[0, 1, 2], [0, 2, 3]])])
    full = rasterize_meshes(mesh, cams, backend=backend)
    cut = rasterize_meshes(mesh, cams, zfar=2.5, backend=backend)
    assert full.mask.all() and 0 < cut.mask.sum() < cut.mask.numel()
    assert (cut.zbuf[cut.mask] <= 2.5).all()
    torch.testing.assert_close(cut.mask, full.zbuf <= 2.5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_tiled_plane_no_holes_no_double_coverage(backend):
    """Edges and vertices through pixel centres: each centre goes to exactly one triangle."""
    K = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1]], dtype=D)  # pixel = camera x, y at z = 1
    H = W = 16
    xs = torch.tensor([-0.5, 3.5, 7.5, 11.5, 16.5], dtype=D)
    grid = torch.stack(torch.meshgrid(xs, xs, indexing="ij"), -1).reshape(-1, 2)
    verts = torch.cat([grid, torch.ones(len(grid), 1, dtype=D)], 1)
    tris = []
    for i in range(4):
        for j in range(4):
            a, b, c, d = i * 5 + j, i * 5 + j + 1, (i + 1) * 5 + j + 1, (i + 1) * 5 + j
            if (i + j) % 2:
                tris += [[a, b, c], [a, c, d]]
            else:
                tris += [[a, b, d], [b, c, d]]
    faces = torch.tensor(tris)
    faces[1::3] = faces[1::3].flip(1)  # mixed orientations must not matter
    # one image per triangle (a batch of one-face meshes): the masks must tile the image
    M = len(faces)
    meshes = Meshes([verts] * M, [f[None] for f in faces])
    cams = PerspectiveCameras(K.expand(M, 3, 3), None, (H, W))
    frag = rasterize_meshes(meshes, cams, backend=backend)
    cover = frag.mask.sum(0)
    assert (cover == 1).all(), cover
    # all at once: every pixel at depth 1
    one = rasterize_meshes(Meshes([verts], [faces]), PerspectiveCameras(K, None, (H, W)), backend=backend)
    assert one.mask.all()
    torch.testing.assert_close(one.zbuf, torch.ones_like(one.zbuf), atol=1e-14, rtol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_z_order_and_equal_depth_tie(backend):
    K = torch.tensor([[10.0, 0, 8], [0, 10.0, 8], [0, 0, 1]], dtype=D)
    cams = PerspectiveCameras(K, None, (16, 16))
    near = torch.tensor([[-1.0, -1, 2], [1, -1, 2], [0, 1, 2]], dtype=D)
    far = torch.tensor([[-1.0, -0.5, 3], [1, -0.5, 3], [0, 1.5, 3]], dtype=D)
    for order in ((near, far), (far, near)):
        verts = torch.cat(order)
        frag = rasterize_meshes(Meshes([verts], [torch.tensor([[0, 1, 2], [3, 4, 5]])]), cams, backend=backend)
        near_face = 0 if order[0] is near else 1
        both = (frag.zbuf[0] > 0)
        assert (frag.pix_to_face[0][frag.zbuf[0] == 2.0] == near_face).all()
        assert (frag.zbuf[0][both] <= 3.0 + 1e-12).all()
        assert ((frag.pix_to_face[0] == near_face) == (frag.zbuf[0] - 2).abs().lt(1e-12)).all()
    # the same triangle twice: the lower index wins everywhere
    frag = rasterize_meshes(Meshes([near], [torch.tensor([[0, 1, 2], [0, 1, 2]])]), cams, backend=backend)
    assert set(frag.pix_to_face[0].unique().tolist()) == {-1, 0}


@pytest.mark.parametrize("backend", BACKENDS)
def test_degenerate_and_edge_on_faces(backend):
    K = torch.tensor([[10.0, 0, 8], [0, 10.0, 8], [0, 0, 1]], dtype=D)
    cams = PerspectiveCameras(K, None, (16, 16))
    verts = torch.tensor([
        [-1.0, -1, 2], [1, -1, 2], [0, 1, 2],  # a real face
        [-0.5, 0.0, 1.5], [0.5, 0.0, 1.5], [0.0, 0.0, 1.5],  # collinear
        [0.0, -0.5, 1.0],  # repeated-vertex face
        [0.0, -1.0, 1.0], [0.0, 1.0, 1.0], [0.0, 0.0, 3.0],  # plane x = 0 contains the camera: edge-on
    ], dtype=D)
    faces = torch.tensor([[0, 1, 2], [3, 4, 5], [6, 6, 3], [7, 8, 9]])
    frag = rasterize_meshes(Meshes([verts], [faces]), cams, backend=backend)
    assert set(frag.pix_to_face.unique().tolist()) == {-1, 0}
    assert torch.isfinite(frag.zbuf).all() and torch.isfinite(frag.bary).all()


# --------------------------------------------------------------------------- near plane


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_scenes_with_near_plane_clipping_vs_brute_force(backend, seed):
    verts, faces, cams = random_scene(seed)
    frag = rasterize_meshes(Meshes([verts], [faces]), cams, znear=0.05, backend=backend)
    compare_to_reference(frag, 0, verts, faces, cams, znear=0.05)
    assert (frag.zbuf[frag.mask] >= 0.05).all()
    # faces with a corner behind the camera are clipped, not dropped
    crossing = set(range(len(faces) // 3 + 3))
    assert crossing & set(frag.pix_to_face.unique().tolist())


@pytest.mark.parametrize("backend", BACKENDS)
def test_camera_inside_and_near_a_mesh(backend):
    sphere = ico_sphere(2)
    verts = sphere.verts_packed().double()
    faces = sphere.faces_packed()
    mesh = Meshes([verts], [faces])
    eyes = torch.tensor([[0.0, 0.0, 0.0], [0.3, -0.2, 0.5], [0.0, 0.0, 1.5]], dtype=D)
    ats = torch.tensor([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=D)
    cams = PerspectiveCameras.from_fov(110.0, (24, 24), look_at(eyes, ats), dtype=D)
    frag = rasterize_meshes(mesh, cams[:2], znear=0.05, backend=backend)
    assert frag.mask.all()  # from inside, every ray hits the sphere
    for i in range(2):
        compare_to_reference(frag, i, verts, faces, cams, znear=0.05)
    # outside, with the near plane cutting through the sphere: the cap in front of it is cut
    # away, the centre pixel sees the inside of the far wall (depth ~2.5), and the faces that
    # straddle the plane are clipped, not dropped
    frag = rasterize_meshes(mesh, cams[2], znear=0.6, backend=backend)
    compare_to_reference(frag, 0, verts, faces, cams[2], znear=0.6)
    assert (frag.zbuf[frag.mask] >= 0.6).all()
    assert frag.zbuf[0, 12, 12] > 2.4
    zc = cams[2].world_to_camera(verts[None])[0, :, 2]
    straddling = (zc < 0.6)[faces].any(1) & (zc >= 0.6)[faces].any(1)
    assert straddling[frag.pix_to_face[0][frag.mask[0]]].sum() >= 10  # pixels showing clipped faces
    # culling: from inside an outward-oriented sphere all faces are back faces
    culled = rasterize_meshes(mesh, cams[:2], znear=0.05, cull_backfaces=True, backend=backend)
    assert not culled.mask.any()
    front = rasterize_meshes(mesh, cams[2], znear=0.6, cull_backfaces=True, backend=backend)
    assert not front.mask[0, 12, 12]  # the far wall seen from inside is culled
    compare_to_reference(front, 0, verts, faces, cams[2], znear=0.6, cull=True)


# --------------------------------------------------------------------------- batching


@pytest.mark.parametrize("backend", BACKENDS)
def test_batched_meshes_by_views_mesh_major(backend):
    s1 = ico_sphere(1)
    v1 = s1.verts_packed().double() * 0.5
    f1 = s1.faces_packed()
    v2, f2, _ = random_scene(7, F=12)
    v2 = v2 - v2.mean(0)
    meshes = Meshes([v1, v2], [f1, f2])
    poses = orbit_poses(torch.tensor([0.0, 100.0, 220.0, 10.0, 130.0, 260.0], dtype=D),
                        torch.tensor([10.0, 30.0, -20.0, 0.0, 15.0, 45.0], dtype=D), 3.0)
    cams = PerspectiveCameras.from_fov(40.0, (20, 24), poses, dtype=D)
    frag = rasterize_meshes(meshes, cams, backend=backend)
    assert frag.pix_to_face.shape == (6, 20, 24)
    for b in range(6):
        m = b // 3
        single = rasterize_meshes(Meshes([[v1, v2][m]], [[f1, f2][m]]), cams[b], backend=backend)
        offset = 0 if m == 0 else len(f1)
        want = torch.where(single.pix_to_face >= 0, single.pix_to_face + offset, -1)
        torch.testing.assert_close(frag.pix_to_face[b:b + 1], want)
        torch.testing.assert_close(frag.zbuf[b:b + 1], single.zbuf, rtol=0, atol=0)
        torch.testing.assert_close(frag.bary[b:b + 1], single.bary, rtol=0, atol=0)
    assert frag.mask[:3].any() and frag.mask[3:].any()
    assert frag.pix_to_face[:3].max() < len(f1) and frag.pix_to_face[3:][frag.mask[3:]].min() >= len(f1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_mesh_in_batch(backend):
    s = ico_sphere(1)
    verts = s.verts_packed()
    meshes = Meshes([verts, torch.zeros(0, 3), verts * 0.5], [s.faces_packed(), torch.zeros(0, 3, dtype=torch.int64),
                                                             s.faces_packed()])
    cams = PerspectiveCameras.from_fov(50.0, (10, 12), orbit_poses(torch.tensor([0.0, 90, 180]), 0.0, 3.0))
    frag = rasterize_meshes(meshes, cams, backend=backend)
    assert frag.zbuf.dtype == torch.float32
    assert frag.mask[0].any() and not frag.mask[1].any() and frag.mask[2].any()
    assert (frag.zbuf[1] == 0).all() and (frag.bary[1] == 0).all()
    assert frag.pix_to_face[2][frag.mask[2]].min() >= len(s.faces_packed())
    only_empty = rasterize_meshes(Meshes([torch.zeros(0, 3)], [torch.zeros(0, 3, dtype=torch.int64)]), cams,
                                  backend=backend)
    assert not only_empty.mask.any()


# --------------------------------------------------------------------------- numba vs torch


def assert_same(a: Fragments, b: Fragments) -> None:
    torch.testing.assert_close(a.pix_to_face, b.pix_to_face, rtol=0, atol=0)
    torch.testing.assert_close(a.zbuf, b.zbuf, rtol=0, atol=0)
    torch.testing.assert_close(a.bary, b.bary, rtol=0, atol=0)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("cull", [False, True])
def test_numba_matches_torch_random(seed, cull):
    verts, faces, cams = random_scene(10 + seed, F=60)
    mesh = Meshes([verts.float()], [faces])
    kw = dict(znear=0.03, zfar=2.9, cull_backfaces=cull)
    assert_same(rasterize_meshes(mesh, cams, backend="numba", **kw),
                rasterize_meshes(mesh, cams, backend="torch", **kw))


@pytest.mark.parametrize("name", ["cow.off", "armadillo.off"])
def test_numba_matches_torch_real(cgal_data, name):
    from geomgen.io import load_mesh

    mesh = load_mesh(cgal_data / "meshes" / name)
    v = mesh.verts_list()[0]
    lo, hi = v.amin(0), v.amax(0)
    v = (v - (lo + hi) / 2) / (hi - lo).max()
    mesh = Meshes([v], mesh.faces_list())
    poses = torch.cat([orbit_poses(torch.tensor([20.0, 150.0]), torch.tensor([15.0, -30.0]), 1.7),
                       look_at(torch.tensor([[0.05, 0.1, 0.12]]), torch.tensor([[0.3, 0.0, -0.2]]))])
    cams = PerspectiveCameras.from_fov(50.0, (40, 48), poses)
    a = rasterize_meshes(mesh, cams, backend="numba")
    b = rasterize_meshes(mesh, cams, backend="torch")
    assert_same(a, b)
    assert a.mask[:2].float().mean() > 0.05 and a.mask[2].any()


def test_threads_bands_and_chunking_do_not_change_results(monkeypatch):
    """Whole images per thread, row bands (few images), serial, and scratch chunking agree."""
    from geomgen.kernels import rasterize_numba as K

    sphere = ico_sphere(3)
    meshes = Meshes([sphere.verts_packed(), sphere.verts_packed() * 0.7], [sphere.faces_packed()] * 2)
    cams = PerspectiveCameras.from_fov(40.0, (64, 72), orbit_poses(torch.arange(4) * 80.0, 20.0, 3.0))
    ref = rasterize_meshes(meshes, cams, backend="torch")
    import geomgen.backend as B

    monkeypatch.setattr(B, "PARALLEL_MIN_WORK", 0)  # parallel even when small
    assert_same(rasterize_meshes(meshes, cams, backend="numba"), ref)  # 4 images >= 2 threads: per image
    one = Meshes([sphere.verts_packed()], [sphere.faces_packed()])
    for bands in (1, 3, 16):  # 1 image < 2 threads: row bands, faces spanning several bands
        monkeypatch.setattr(K, "_BANDS_PER_THREAD", bands)
        assert_same(rasterize_meshes(one, cams[1], backend="numba"), rasterize_meshes(one, cams[1], backend="torch"))
    torch_threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # serial kernels
        assert_same(rasterize_meshes(meshes, cams, backend="numba"), ref)
    finally:
        torch.set_num_threads(torch_threads)
    # more threads than images: row bands, scratch chunked to one image per call
    monkeypatch.setattr(K.numba, "get_num_threads", lambda: 8)
    monkeypatch.setattr(K, "_SCRATCH_BYTES", 1000)
    assert_same(rasterize_meshes(meshes, cams, backend="numba"), ref)


def _render_in_child(queue) -> None:  # runs in a forked process
    sphere = ico_sphere(2)
    cams = PerspectiveCameras.from_fov(40.0, (64, 64), orbit_poses(torch.tensor([0.0, 50.0]), 10.0, 3.0))
    queue.put(rasterize_meshes(sphere, cams, backend="numba").pix_to_face.numpy())  # pickled, not shared


def test_forked_child_after_parallel_run():
    """A DataLoader-style worker forked after numba's pool started renders serially instead of dying."""
    import multiprocessing as mp

    from geomgen.backend import start_pool

    start_pool()
    sphere = ico_sphere(2)
    cams = PerspectiveCameras.from_fov(40.0, (64, 64), orbit_poses(torch.tensor([0.0, 50.0]), 10.0, 3.0))
    want = rasterize_meshes(sphere, cams, backend="numba").pix_to_face  # parallel in this process
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_render_in_child, args=(queue,))
    proc.start()
    got = queue.get(timeout=60)
    proc.join(timeout=60)
    assert proc.exitcode == 0
    np.testing.assert_array_equal(got, want.numpy())


# --------------------------------------------------------------------------- errors


def test_errors():
    s = ico_sphere(0)
    mesh = Meshes(s.verts_list(), s.faces_list())
    cams = PerspectiveCameras.from_fov(torch.tensor([40.0, 50.0]), (8, 8), orbit_poses(0.0, 0.0, 3.0))
    with pytest.raises(InvalidInputError, match="meshes"):
        rasterize_meshes(s.verts_packed(), cams)
    with pytest.raises(InvalidInputError, match="cameras"):
        rasterize_meshes(mesh, torch.eye(3))
    with pytest.raises(InvalidInputError, match="cameras"):
        rasterize_meshes(Meshes(s.verts_list() * 2, s.faces_list() * 2), cams[:1].to(torch.float32)[0])
    with pytest.raises(InvalidInputError, match="cameras"):
        rasterize_meshes(Meshes(s.verts_list() * 2, s.faces_list() * 2), PerspectiveCameras.from_fov(
            torch.full((3,), 40.0), (8, 8)))
    with pytest.raises(InvalidInputError, match="meshes"):
        rasterize_meshes(Meshes([], []), cams)
    with pytest.raises(InvalidInputError, match="znear"):
        rasterize_meshes(mesh, cams, znear=0.0)
    with pytest.raises(InvalidInputError, match="zfar"):
        rasterize_meshes(mesh, cams, znear=1.0, zfar=0.5)
    with pytest.raises(InvalidInputError, match="zfar"):
        rasterize_meshes(mesh, cams, zfar=float("nan"))
    with pytest.raises(InvalidInputError, match="backend"):
        rasterize_meshes(mesh, cams, backend="cuda")
    with pytest.raises(InvalidInputError, match="cull_backfaces"):
        rasterize_meshes(mesh, cams, cull_backfaces=1)
    bad = s.verts_packed().clone()
    bad[0, 0] = float("nan")
    with pytest.raises(InvalidInputError, match="vertices"):
        rasterize_meshes(Meshes([bad], s.faces_list(), validate=False), cams)
    with pytest.raises(InvalidInputError, match="face indices"):
        rasterize_meshes(Meshes(s.verts_list(), [s.faces_packed() + 100], validate=False), cams)
