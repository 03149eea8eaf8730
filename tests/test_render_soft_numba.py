"""The numba fragment selection of soft_rasterize_meshes against its torch reference.

Only the (gradient-free) choice of fragments differs between the backends; the
values are computed by the same torch code afterwards, so fragments *and*
gradients must be bit for bit equal (``torch.equal``), ties included.
"""

from __future__ import annotations

import math

import pytest
import torch

import geomgen.backend as GB
from geomgen.ops import ico_sphere
from geomgen.render import (PerspectiveCameras, look_at, orbit_poses, soft_depth, soft_rasterize_meshes,
                            soft_silhouette)
from geomgen.structures import Meshes
from test_render_soft import random_scene

D = torch.float64


def _run(verts, faces, cams, backend, **kw):
    """Fragments and the gradients of a loss using every output w.r.t. vertices, pose and K."""
    vs = [v.detach().clone().requires_grad_() for v in verts]
    pose = cams.world_from_camera.detach().clone().requires_grad_()
    K = cams.K.detach().clone().requires_grad_()
    c = PerspectiveCameras(K, pose, cams.image_size)
    frag = soft_rasterize_meshes(Meshes(vs, faces), c, backend=backend, **kw)
    g = torch.Generator().manual_seed(5)
    m = frag.mask
    loss = ((frag.zbuf[m] * torch.rand(int(m.sum()), generator=g, dtype=frag.zbuf.dtype)).sum()
            + (frag.bary_coords[m] * torch.rand(int(m.sum()), 3, generator=g, dtype=frag.zbuf.dtype)).sum()
            + (frag.dists[m] * 1e3).sin().sum() + soft_silhouette(frag, 1e-3).sum()
            + soft_depth(frag, 1e-3).sum())
    loss.backward()
    return frag, [v.grad for v in vs] + [pose.grad, K.grad]


def assert_same(verts, faces, cams, **kw):
    a, ga = _run(verts, faces, cams, "torch", **kw)
    b, gb = _run(verts, faces, cams, "numba", **kw)
    for x, y, name in zip(a, b, a._fields):
        assert torch.equal(x, y), name
    for x, y in zip(ga, gb):
        assert (x is None and y is None) or torch.equal(x, y)
    return a


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_random_scenes_same_fragments_and_gradients(seed):
    verts, faces, cams = random_scene(seed, F=30)  # faces behind the camera, across and just behind znear
    for blur, k, cull in ((0.0, 1, False), (0.0, 3, True), (0.02, 2, False), (0.05, 8, True), (0.4, 5, False)):
        frag = assert_same([verts], [faces], cams, blur_radius=blur, faces_per_pixel=k, cull_backfaces=cull)
        assert frag.mask.sum() > 20


def test_near_far_planes_and_image_size():
    verts, faces, cams = random_scene(7, F=20, H=13, W=21)  # sizes not multiples of the tile
    assert_same([verts], [faces], cams, blur_radius=0.03, faces_per_pixel=4, znear=0.3, zfar=2.5)
    assert_same([verts], [faces], cams, blur_radius=0.01, faces_per_pixel=3, image_size=(29, 17), zfar=3.0)


def test_equal_depths_go_to_the_lower_face_index():
    # every face twice (and a third time for some): equal depths everywhere, K cuts through the ties
    verts, faces, cams = random_scene(11, F=16, cross_near=False)
    dup = torch.cat([faces, faces.flip(0), faces[:5]])
    for k in (1, 2, 3, 7):
        frag = assert_same([verts], [dup], cams, blur_radius=0.04, faces_per_pixel=k)
        p = frag.pix_to_face
        z = frag.zbuf
        tie = (z[..., 1:] == z[..., :-1]) & (p[..., 1:] >= 0)
        assert tie.any() or k == 1
        assert (p[..., 1:][tie] > p[..., :-1][tie]).all()


def test_padded_batch_with_an_empty_mesh_float32():
    s = ico_sphere(2)
    verts = s.verts_packed()
    faces = s.faces_packed()
    vs = [verts, torch.zeros(0, 3), verts * 0.6 + 0.1]
    fs = [faces, torch.zeros(0, 3, dtype=torch.int64), faces]
    cams = PerspectiveCameras.from_fov(45.0, (20, 23), orbit_poses(torch.tensor([0.0, 90.0, 200.0] * 3), 10.0, 2.5))
    frag = assert_same(vs, fs, cams, blur_radius=0.01, faces_per_pixel=6)
    assert frag.zbuf.dtype == torch.float32
    assert frag.mask[:3].any() and not frag.mask[3:6].any() and frag.mask[6:].any()
    # only empty meshes
    assert_same([torch.zeros(0, 3, dtype=D)], [torch.zeros(0, 3, dtype=torch.int64)], cams[:2], faces_per_pixel=2)


def test_camera_inside_the_mesh():
    s = ico_sphere(2)
    verts = s.verts_packed().double()
    eye = torch.tensor([[0.2, 0.1, 0.3], [0.0, 0.0, 0.95]], dtype=D)  # inside; just inside the surface
    cams = PerspectiveCameras.from_fov(70.0, (24, 24), look_at(eye, torch.tensor([0.5, 0.2, -1.0], dtype=D)))
    assert_same([verts], [s.faces_packed()], cams, blur_radius=0.02, faces_per_pixel=4, znear=0.05)


def test_parallel_serial_and_tile_sizes_agree(monkeypatch):
    from geomgen.kernels import soft_rasterize_numba as SK

    s = ico_sphere(3)
    meshes = Meshes([s.verts_packed().double(), s.verts_packed().double() * 0.7], [s.faces_packed()] * 2)
    cams = PerspectiveCameras.from_fov(40.0, (37, 45), orbit_poses(torch.arange(4) * 80.0, 20.0, 3.0).double())
    kw = dict(blur_radius=3e-3, faces_per_pixel=5)
    ref = soft_rasterize_meshes(meshes, cams, backend="torch", **kw)

    def check():
        got = soft_rasterize_meshes(meshes, cams, backend="numba", **kw)
        for x, y in zip(ref, got):
            assert torch.equal(x, y)

    monkeypatch.setattr(GB, "PARALLEL_MIN_WORK", 0)  # parallel whenever the budget allows
    check()
    for tile in (1, 3, 64):  # one tile per pixel, odd tiles, one tile per image
        monkeypatch.setattr(SK, "TILE", tile)
        check()
    torch_threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # serial kernels
        check()
    finally:
        torch.set_num_threads(torch_threads)


def test_auto_is_numba_on_cpu(monkeypatch):
    from geomgen.kernels import soft_rasterize_numba as SK

    calls = []
    real = SK.select
    monkeypatch.setattr(SK, "select", lambda *a: calls.append(1) or real(*a))
    s = ico_sphere(1)
    cams = PerspectiveCameras.from_fov(40.0, (8, 8), orbit_poses(torch.tensor([0.0]), 10.0, 3.0))
    soft_rasterize_meshes(s, cams, blur_radius=1e-3, faces_per_pixel=2)
    assert calls == [1]
    soft_rasterize_meshes(s, cams, blur_radius=1e-3, faces_per_pixel=2, backend="torch")
    assert calls == [1]
    assert soft_rasterize_meshes.__module__ == "geomgen.render.soft_rasterize"
    assert math.isfinite(float(soft_silhouette(soft_rasterize_meshes(s, cams, faces_per_pixel=1)).sum()))
