"""Tests of geomgen.render.soft_rasterize_meshes and the blending functions of geomgen.render.blend.

The brute-force reference below clips every face at ``z = znear`` explicitly
(Sutherland-Hodgman in the camera frame), projects the clipped polygon and, for
every pixel centre, measures the squared distance to the polygon's edges, tests
the centre against the polygon's fan triangles (2D barycentrics) and
interpolates depth and barycentrics perspective-correctly: inside from the fan
triangle, outside at the nearest point of the nearest edge.  Pixels whose
result hinges on rounding (a centre on an edge, a distance at the blur radius,
two fragments at nearly the same depth) are "ambiguous" and not compared.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from geomgen.errors import InvalidInputError
from geomgen.ops import ico_sphere
from geomgen.render import (
    PerspectiveCameras,
    SoftFragments,
    look_at,
    orbit_poses,
    rasterize_meshes,
    scale_intrinsics,
    soft_depth,
    soft_rasterize_meshes,
    soft_silhouette,
    softmax_rgb_blend,
)
from geomgen.structures import Meshes

from _helpers import clip_polygon as _clip

D = torch.float64


# --------------------------------------------------------------------------- reference


def reference(verts, faces, K, pose, H, W, blur, k, znear=1e-2, zfar=math.inf, cull=False, tol=1e-7):
    """(pix_to_face (H, W, k), zbuf, bary (H, W, k, 3), dists, ambiguous (H, W)) of one image, float64."""
    R, t = pose[:3, :3], pose[:3, 3]
    vc = (verts - t) @ R
    fx, fy, cx, cy, s = K[0, 0], K[1, 1], K[0, 2], K[1, 2], K[0, 1]
    py, px = np.meshgrid(np.arange(H) + 0.5, np.arange(W) + 0.5, indexing="ij")
    scale2 = (2.0 / min(H, W)) ** 2
    frags = [[[] for _ in range(W)] for _ in range(H)]
    amb = np.zeros((H, W), bool)
    for f, tri in enumerate(faces):
        P = vc[tri]
        if P[0] @ np.cross(P[1], P[2]) == 0:
            continue
        if cull and np.cross(P[1] - P[0], P[2] - P[0]) @ P[0] > 0:
            continue
        poly = _clip([(P[i], np.eye(3)[i]) for i in range(3)], znear)
        if len(poly) < 3:
            continue
        pts = np.array([p for p, _ in poly])
        bs = np.array([b for _, b in poly])
        z = pts[:, 2]
        q = np.stack([(fx * pts[:, 0] + s * pts[:, 1]) / z + cx, fy * pts[:, 1] / z + cy], 1)
        n = len(q)
        # nearest point of the boundary
        best = np.full((H, W), np.inf)
        zo = np.zeros((H, W))
        bo = np.zeros((H, W, 3))
        for i in range(n):
            a, e = q[i], q[(i + 1) % n] - q[i]
            den = e @ e
            tt = np.clip(((px - a[0]) * e[0] + (py - a[1]) * e[1]) / den, 0, 1) if den > 0 else np.zeros((H, W))
            d2 = (px - a[0] - tt * e[0]) ** 2 + (py - a[1] - tt * e[1]) ** 2
            zz = 1.0 / ((1 - tt) / z[i] + tt / z[(i + 1) % n])
            ss = (tt * zz / z[(i + 1) % n])[..., None]
            bb = (1 - ss) * bs[i] + ss * bs[(i + 1) % n]
            closer = d2 < best
            best = np.where(closer, d2, best)
            zo = np.where(closer, zz, zo)
            bo = np.where(closer[..., None], bb, bo)
        # inside: the fan triangles, perspective-correct
        inside = np.zeros((H, W), bool)
        zi = np.zeros((H, W))
        bi = np.zeros((H, W, 3))
        for j in range(1, n - 1):
            idx = [0, j, j + 1]
            qq, zz3, bb3 = q[idx], z[idx], bs[idx]
            area = (qq[1, 0] - qq[0, 0]) * (qq[2, 1] - qq[0, 1]) - (qq[1, 1] - qq[0, 1]) * (qq[2, 0] - qq[0, 0])
            if abs(area) < 1e-12:
                continue
            lam = np.stack([((qq[a, 0] - px) * (qq[b, 1] - py) - (qq[a, 1] - py) * (qq[b, 0] - px)) / area
                            for a, b in ((1, 2), (2, 0), (0, 1))], -1)
            ins = (lam >= 0).all(-1)
            w = lam / zz3
            with np.errstate(divide="ignore", invalid="ignore"):
                zz = 1.0 / w.sum(-1)
                bb = zz[..., None] * (w @ bb3)
            inside |= ins
            zi = np.where(ins, zz, zi)
            bi = np.where(ins[..., None], bb, bi)
        dist = np.where(inside, -best, best) * scale2
        zfrag = np.where(inside, zi, zo)
        bfrag = np.where(inside[..., None], bi, bo)
        amb |= (np.sqrt(best) < tol * (1 + np.abs(q).max())) | (np.abs(best * scale2 - blur) < 1e-9)
        keep = (inside | (best * scale2 < blur)) & (zfrag <= zfar)
        for r, c in zip(*np.nonzero(keep)):
            frags[r][c].append((zfrag[r, c], f, bfrag[r, c], dist[r, c]))
    p2f = np.full((H, W, k), -1)
    zbuf = np.full((H, W, k), -1.0)
    bary = np.full((H, W, k, 3), -1.0)
    dists = np.full((H, W, k), -1.0)
    for r in range(H):
        for c in range(W):
            fr = sorted(frags[r][c], key=lambda x: (x[0], x[1]))
            zs = np.array([x[0] for x in fr])
            if len(zs) > 1 and (np.diff(zs) <= 1e-9 * zs[1:]).any():
                amb[r, c] = True
            for i, (zz, f, bb, dd) in enumerate(fr[:k]):
                p2f[r, c, i], zbuf[r, c, i], bary[r, c, i], dists[r, c, i] = f, zz, bb, dd
    return p2f, zbuf, bary, dists, amb


def compare_to_reference(frag, i, verts, faces, cams, blur, k, znear=1e-2, zfar=math.inf, cull=False,
                         face_offset=0, max_ambiguous=0.1):
    H, W = frag.pix_to_face.shape[1:3]
    p2f, zbuf, bary, dists, amb = reference(
        verts.double().numpy(), faces.numpy(), cams.K[i].double().numpy(), cams.world_from_camera[i].double().numpy(),
        H, W, blur, k, znear, zfar, cull)
    p2f = np.where(p2f >= 0, p2f + face_offset, -1)
    ok = ~amb
    assert amb.mean() <= max_ambiguous
    np.testing.assert_array_equal(frag.pix_to_face[i].numpy()[ok], p2f[ok])
    np.testing.assert_allclose(frag.zbuf[i].detach().double().numpy()[ok], zbuf[ok], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(frag.bary_coords[i].detach().double().numpy()[ok], bary[ok], rtol=0, atol=1e-8)
    np.testing.assert_allclose(frag.dists[i].detach().double().numpy()[ok], dists[ok], rtol=1e-8, atol=1e-12)
    return int((p2f[ok] >= 0).sum())


def random_scene(seed, F=24, H=14, W=18, cross_near=True):
    """Random triangles in front of (some across / behind the near plane of) a camera with a skewed K."""
    g = torch.Generator().manual_seed(seed)
    K = torch.tensor([[16.0, 0.8, W / 2 + 0.3], [0.0, 17.0, H / 2 - 0.2], [0, 0, 1]], dtype=D)
    z = torch.rand(F, 3, generator=g, dtype=D) * 3.0 + 0.5
    if cross_near:
        z[: F // 4, 0] = -torch.rand(F // 4, generator=g, dtype=D)  # one corner behind the camera
        z[F // 4: F // 4 + 2, :2] = 0.004  # two corners between the camera and znear
    xy = (torch.rand(F, 3, 2, generator=g, dtype=D) - 0.5) * torch.tensor([1.3, 1.0], dtype=D) * z[..., None].abs()
    cam_pts = torch.cat([xy, z[..., None]], -1).reshape(-1, 3)
    pose = look_at(torch.randn(3, generator=g, dtype=D), torch.randn(3, generator=g, dtype=D))
    world = cam_pts @ pose[0, :3, :3].T + pose[0, :3, 3]
    faces = torch.arange(3 * F).reshape(F, 3)
    return world, faces, PerspectiveCameras(K, pose, (H, W))


# --------------------------------------------------------------------------- against the reference


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_scenes_k_nearest_vs_brute_force(seed):
    verts, faces, cams = random_scene(seed)
    for blur, k in ((0.0, 2), (0.02, 3), (0.05, 8)):
        frag = soft_rasterize_meshes(Meshes([verts], [faces]), cams, blur_radius=blur, faces_per_pixel=k)
        assert isinstance(frag, SoftFragments)
        assert frag.pix_to_face.shape == (1, 14, 18, k) and frag.bary_coords.shape == (1, 14, 18, k, 3)
        assert frag.zbuf.dtype == D and frag.pix_to_face.dtype == torch.int64
        assert compare_to_reference(frag, 0, verts, faces, cams, blur, k) > 20
        # sorted near to far, used slots first
        z = torch.where(frag.mask, frag.zbuf, torch.full_like(frag.zbuf, math.inf))
        assert (z[..., 1:] >= z[..., :-1]).all()
        assert (frag.mask[..., 1:] <= frag.mask[..., :-1]).all()
        used = frag.mask
        assert ((frag.bary_coords[used] >= 0) & (frag.bary_coords[used] <= 1)).all()
        torch.testing.assert_close(frag.bary_coords[used].sum(-1), torch.ones(int(used.sum()), dtype=D))
        assert (frag.zbuf[used] >= 1e-2).all()
        assert (frag.zbuf[~used] == -1).all() and (frag.dists[~used] == -1).all() and (frag.bary_coords[~used] == -1).all()


@pytest.mark.parametrize("cull", [False, True])
def test_cull_znear_zfar_vs_brute_force(cull):
    verts, faces, cams = random_scene(7, F=20)
    frag = soft_rasterize_meshes(Meshes([verts], [faces]), cams, blur_radius=0.03, faces_per_pixel=4, znear=0.3,
                                 zfar=2.5, cull_backfaces=cull)
    assert compare_to_reference(frag, 0, verts, faces, cams, 0.03, 4, znear=0.3, zfar=2.5, cull=cull) > 10
    assert (frag.zbuf[frag.mask] <= 2.5).all() and (frag.zbuf[frag.mask] >= 0.3 - 1e-12).all()


def test_blur_zero_first_slot_is_the_hard_rasterizer():
    mesh = ico_sphere(2)
    meshes = Meshes([mesh.verts_packed().double()], [mesh.faces_packed()])
    cams = PerspectiveCameras.from_fov(45.0, (20, 26), orbit_poses(torch.tensor([0.0, 130.0]), 25.0, 2.8).double())
    soft = soft_rasterize_meshes(meshes, cams, faces_per_pixel=1)
    hard = rasterize_meshes(meshes, cams)
    assert hard.mask.sum() > 100
    assert torch.equal(soft.pix_to_face[..., 0], hard.pix_to_face)
    m = hard.mask
    torch.testing.assert_close(soft.zbuf[..., 0][m], hard.zbuf[m], rtol=1e-12, atol=0)
    torch.testing.assert_close(soft.bary_coords[..., 0, :][m], hard.bary[m], rtol=0, atol=1e-10)
    assert (soft.dists[..., 0][m] <= 0).all()


def test_units_are_squared_ndc_and_blur_radius_in_them():
    # one big triangle; a pixel r pixels outside it has dists = (r * 2 / min(H, W))^2
    K = torch.tensor([[20.0, 0, 10], [0, 20.0, 8], [0, 0, 1]], dtype=D)
    H, W = 16, 20
    cams = PerspectiveCameras(K, None, (H, W))
    # the edge x = 0 (u = 10) of a triangle at z = 2 that covers u < 10
    verts = torch.tensor([[0.0, -5.0, 2.0], [0.0, 5.0, 2.0], [-5.0, 0.0, 2.0]], dtype=D)
    meshes = Meshes([verts], [torch.tensor([[0, 1, 2]])])
    frag = soft_rasterize_meshes(meshes, cams, blur_radius=(3.0 * 2 / H) ** 2, faces_per_pixel=1)
    row = frag.dists[0, 8, :, 0]
    cols = torch.arange(W, dtype=D) + 0.5
    d_px = cols - 10.0
    want = torch.sign(d_px) * (d_px * 2 / H) ** 2
    keep = d_px < 3.0  # within the blur radius of 3 pixels
    torch.testing.assert_close(row[keep], want[keep])
    assert (frag.pix_to_face[0, 8, :, 0] >= 0).tolist() == keep.tolist()
    # outside, the nearest point of the face is on the edge, at z = 2 like every point of the face
    z = frag.zbuf[0, 8, :, 0][keep]
    torch.testing.assert_close(z, torch.full_like(z, 2.0))


def test_image_size_renders_the_same_view_at_another_resolution():
    verts, faces, cams = random_scene(3, F=12, H=10, W=12)
    meshes = Meshes([verts], [faces])
    big = soft_rasterize_meshes(meshes, cams, image_size=(20, 24), blur_radius=0.01, faces_per_pixel=3)
    K2 = scale_intrinsics(cams.K.float(), [(10, 12)], (20, 24)).double()
    want = soft_rasterize_meshes(meshes, PerspectiveCameras(K2, cams.world_from_camera, (20, 24)), blur_radius=0.01,
                                 faces_per_pixel=3)
    assert torch.equal(big.pix_to_face, want.pix_to_face)
    torch.testing.assert_close(big.dists, want.dists)
    sq = soft_rasterize_meshes(meshes, cams, image_size=16, faces_per_pixel=1)
    assert sq.pix_to_face.shape == (1, 16, 16, 1)


# --------------------------------------------------------------------------- sigma -> 0


@pytest.mark.parametrize("azimuth", [0.0, 37.0])
def test_silhouette_tends_to_the_hard_mask(azimuth):
    mesh = ico_sphere(2)
    verts = mesh.verts_packed().double() * torch.tensor([1.0, 0.7, 0.9], dtype=D)
    meshes = Meshes([verts], [mesh.faces_packed()])
    cams = PerspectiveCameras.from_fov(40.0, (24, 30), orbit_poses(torch.tensor([azimuth]), 20.0, 3.2).double())
    sigma = 1e-9
    frag = soft_rasterize_meshes(meshes, cams, blur_radius=math.log(1 / 1e-4 - 1) * sigma, faces_per_pixel=8)
    alpha = soft_silhouette(frag, sigma)
    hard = rasterize_meshes(meshes, cams).mask.to(D)
    near_edge = (frag.mask & (frag.dists.abs() < 40 * sigma)).any(-1)  # centre within ~0.003 px of an edge
    assert near_edge.float().mean() < 0.02
    assert hard.sum() > 100
    torch.testing.assert_close(alpha[~near_edge], hard[~near_edge], rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- gradients


def _k_from(k5):
    zero, one = torch.zeros_like(k5[0]), torch.ones_like(k5[0])
    return torch.stack([torch.stack([k5[0], k5[4], k5[2]]), torch.stack([zero, k5[1], k5[3]]),
                        torch.stack([zero, zero, one])])[None]


def _pose_from(top):
    return torch.cat([top, torch.tensor([[[0.0, 0.0, 0.0, 1.0]]], dtype=top.dtype)], 1)


def _gradcheck(verts, faces, eye, k5, H, W, blur, kpp, outputs, znear=1e-2):
    top = look_at(torch.tensor([eye], dtype=D), torch.tensor([0.0, 0.05, 0.0], dtype=D))[:, :3].clone()

    def fn(v, t, k):
        cams = PerspectiveCameras(_k_from(k), _pose_from(t), (H, W))
        frag = soft_rasterize_meshes(Meshes([v], [faces]), cams, blur_radius=blur, faces_per_pixel=kpp, znear=znear)
        assert frag.mask.sum() >= 10
        return outputs(frag)

    inputs = (verts.clone().requires_grad_(), top.requires_grad_(), k5.clone().requires_grad_())
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


FACES3 = torch.tensor([[0, 1, 2], [1, 3, 2], [0, 4, 1]])
VERTS3 = torch.tensor([[-0.6, -0.5, 0.0], [0.5, -0.4, 0.1], [0.0, 0.6, -0.1], [0.7, 0.5, 0.3], [-0.2, -0.9, 0.4]],
                      dtype=D)
K5 = torch.tensor([[18.0, 19.0, 4.1, 3.9, 0.3]], dtype=D)[0]


@pytest.mark.parametrize("what", ["fragments", "blends"])
def test_gradcheck_vertices_pose_and_intrinsics(what):
    def fragments(f):
        m = f.mask
        return f.zbuf[m], f.bary_coords[m], f.dists[m]

    def blends(f):
        colors = torch.cat([f.bary_coords, f.zbuf[..., None]], -1)
        return (soft_silhouette(f, 0.01), soft_depth(f, 0.01, background=3.0),
                softmax_rgb_blend(colors, f, 0.01, 0.3, background=(0.2, 0.3, 0.4, 0.5), znear=1.0, zfar=6.0))

    _gradcheck(VERTS3, FACES3, [0.3, 0.2, 3.0], K5, 8, 8, 0.08, 3, fragments if what == "fragments" else blends)


def test_gradcheck_faces_across_the_near_plane():
    # the camera sits among the faces: some cross znear (clipped into a quadrilateral), one is behind it
    verts = torch.tensor([[-0.6, -0.5, -0.5], [0.5, -0.4, 0.6], [0.0, 0.6, -0.1], [0.7, 0.5, 0.5],
                          [-0.2, -0.8, 2.5]], dtype=D)
    k5 = torch.tensor([3.0, 3.2, 3.6, 3.4, 0.1], dtype=D)

    def fn(f):
        m = f.mask
        return f.zbuf[m], f.bary_coords[m], f.dists[m], soft_silhouette(f, 0.02)

    _gradcheck(verts, FACES3, [0.05, 0.1, 0.4], k5, 7, 7, 0.1, 3, fn, znear=0.2)


def test_finite_on_degenerate_edge_on_and_behind_camera():
    # camera at the origin looking down +z (identity pose)
    verts = torch.tensor([
        [-0.5, -0.5, 2.0], [0.5, -0.4, 2.1], [0.0, 0.5, 1.9],  # ordinary face
        [0.1, -0.3, 1.0], [0.2, -0.6, 2.0], [0.3, -0.9, 3.0],  # collinear (degenerate)
        [0.2, 0.2, 1.5], [0.2, 0.2, 1.5], [0.2, 0.2, 1.5],  # a point
        [0.0, 0.1, 1.0], [0.0, 0.3, 2.0], [0.0, -0.2, 3.0],  # edge-on: plane x = 0 holds the camera centre
        [-0.3, 0.0, -1.0], [0.3, 0.1, -1.2], [0.0, 0.3, -0.8],  # behind the camera
        [-0.4, 0.3, -0.5], [0.4, 0.2, 1.0], [0.1, 0.6, 1.2],  # across the camera plane
        [-0.2, -0.2, 0.005], [0.3, -0.1, 0.005], [0.0, 0.3, 0.002],  # between the camera and znear
    ], dtype=D)
    faces = torch.arange(21).reshape(7, 3)
    k5 = torch.tensor([10.0, 10.0, 6.0, 5.0, 0.0], dtype=D)
    v = verts.clone().requires_grad_()
    top = torch.eye(4, dtype=D)[None, :3].clone().requires_grad_()
    k = k5.clone().requires_grad_()
    cams = PerspectiveCameras(_k_from(k), _pose_from(top), (10, 12))
    frag = soft_rasterize_meshes(Meshes([v], [faces]), cams, blur_radius=0.05, faces_per_pixel=6)
    for x in (frag.zbuf, frag.bary_coords, frag.dists):
        assert torch.isfinite(x).all()
    used = set(frag.pix_to_face[frag.mask].tolist())
    assert {0, 5} <= used and not used & {1, 2, 3, 4, 6}  # degenerate, edge-on, behind: never drawn
    colors = frag.bary_coords
    loss = (soft_silhouette(frag, 1e-4).sum() + soft_depth(frag, 1e-3).sum()
            + softmax_rgb_blend(colors, frag, 1e-4, 1e-4, znear=0.5, zfar=5.0).sum() + frag.zbuf.sum()
            + frag.dists.sum() + frag.bary_coords.sum())
    loss.backward()
    for g in (v.grad, top.grad, k.grad):
        assert g is not None and torch.isfinite(g).all()
    assert v.grad[0:3].abs().sum() > 0 and v.grad[15:18].abs().sum() > 0
    assert (v.grad[3:15] == 0).all()


def test_float32_and_gradients_reach_look_at():
    mesh = ico_sphere(1)
    verts = mesh.verts_packed().clone().requires_grad_()
    eye = torch.tensor([[0.3, 0.4, 2.6], [-2.0, 0.5, 1.5]], requires_grad=True)
    cams = PerspectiveCameras.from_fov(40.0, (12, 12), look_at(eye))
    frag = soft_rasterize_meshes(Meshes([verts], [mesh.faces_packed()]), cams, blur_radius=1e-3, faces_per_pixel=4)
    assert frag.zbuf.dtype == torch.float32 and frag.bary_coords.dtype == torch.float32
    soft_silhouette(frag, 1e-4).sum().backward()
    assert torch.isfinite(verts.grad).all() and verts.grad.abs().sum() > 0
    assert torch.isfinite(eye.grad).all() and eye.grad.abs().sum() > 0


# --------------------------------------------------------------------------- batches


def test_padded_batch_with_an_empty_mesh():
    s = ico_sphere(1)
    verts = s.verts_packed().double()
    v0, v2 = verts.clone().requires_grad_(), (verts * 0.6).requires_grad_()
    faces = s.faces_packed()
    meshes = Meshes([v0, torch.zeros(0, 3, dtype=D), v2], [faces, torch.zeros(0, 3, dtype=torch.int64), faces])
    poses = orbit_poses(torch.tensor([0.0, 90.0] * 3), 10.0, 3.0).double()
    cams = PerspectiveCameras.from_fov(45.0, (10, 12), poses)
    frag = soft_rasterize_meshes(meshes, cams, blur_radius=0.01, faces_per_pixel=5)
    assert frag.pix_to_face.shape == (6, 10, 12, 5)
    assert frag.mask[:2].any() and not frag.mask[2:4].any() and frag.mask[4:].any()
    assert (frag.dists[2:4] == -1).all() and (frag.zbuf[2:4] == -1).all()
    assert frag.pix_to_face[4:][frag.mask[4:]].min() >= len(faces)
    # each image as rendered alone
    for b, (v, off) in enumerate([(v0, 0), (v0, 0), (v2, len(faces)), (v2, len(faces))]):
        m = 0 if b < 2 else 2
        single = soft_rasterize_meshes(Meshes([v], [faces]), cams[2 * m + b % 2], blur_radius=0.01,
                                       faces_per_pixel=5)
        want = torch.where(single.mask, single.pix_to_face + off, -1)
        assert torch.equal(frag.pix_to_face[2 * m + b % 2], want[0])
        torch.testing.assert_close(frag.dists[2 * m + b % 2], single.dists[0])
    alpha = soft_silhouette(frag, 1e-3)
    assert (alpha[2:4] == 0).all()
    alpha.sum().backward()
    assert torch.isfinite(v0.grad).all() and v0.grad.abs().sum() > 0 and torch.isfinite(v2.grad).all()
    # a batch of only empty meshes: background everywhere, still connected to the graph
    ve = torch.zeros(0, 3, dtype=D, requires_grad=True)
    only = soft_rasterize_meshes(Meshes([ve], [torch.zeros(0, 3, dtype=torch.int64)]), cams[:1], faces_per_pixel=2)
    assert not only.mask.any()
    assert (soft_silhouette(only) == 0).all()


# --------------------------------------------------------------------------- blending


def _frags(dists, zbuf, p2f):
    B, H, W, K = p2f.shape
    return SoftFragments(p2f, zbuf, torch.full((B, H, W, K, 3), 1 / 3, dtype=zbuf.dtype), dists)


def test_blend_formulas_and_empty_slots():
    p2f = torch.tensor([[[[3, 5, -1], [-1, -1, -1]]]])
    dists = torch.tensor([[[[-2e-4, 1e-4, -1.0], [-1.0, -1.0, -1.0]]]], dtype=D)
    zbuf = torch.tensor([[[[2.0, 3.0, -1.0], [-1.0, -1.0, -1.0]]]], dtype=D)
    f = _frags(dists, zbuf, p2f)
    sigma = 1e-4
    p = torch.sigmoid(-dists[0, 0, 0, :2] / sigma)
    alpha = soft_silhouette(f, sigma)
    torch.testing.assert_close(alpha[0, 0], torch.stack([1 - (1 - p[0]) * (1 - p[1]), torch.tensor(0.0, dtype=D)]))
    depth = soft_depth(f, sigma, background=7.0)
    want = p[0] * 2.0 + (1 - p[0]) * p[1] * 3.0 + (1 - p[0]) * (1 - p[1]) * 7.0
    torch.testing.assert_close(depth[0, 0], torch.stack([want, torch.tensor(7.0, dtype=D)]))
    colors = torch.zeros(1, 1, 2, 3, 3, dtype=D)
    colors[..., 0, :] = torch.tensor([1.0, 0.0, 0.0], dtype=D)
    colors[..., 1, :] = torch.tensor([0.0, 1.0, 0.0], dtype=D)
    gamma, zn, zf, bg = 0.05, 1.0, 10.0, torch.tensor([0.0, 0.0, 1.0], dtype=D)
    out = softmax_rgb_blend(colors, f, sigma, gamma, background=bg, znear=zn, zfar=zf)
    assert out.shape == (1, 1, 2, 4)
    s = (zf - zbuf[0, 0, 0, :2]) / (zf - zn)
    m = s.max()
    w = p * torch.exp((s - m) / gamma)
    wb = torch.exp((1e-10 - m) / gamma).clamp(min=1e-10)
    rgb = (w[0] * colors[0, 0, 0, 0] + w[1] * colors[0, 0, 0, 1] + wb * bg) / (w.sum() + wb)
    torch.testing.assert_close(out[0, 0, 0], torch.cat([rgb, alpha[0, 0, :1]]))
    torch.testing.assert_close(out[0, 0, 1], torch.tensor([0.0, 0.0, 1.0, 0.0], dtype=D))  # background


@pytest.mark.parametrize("sigma", [1e-12, 1e-7, 1.0])
def test_blends_finite_with_tiny_sigma_and_empty_pixels(sigma):
    mesh = ico_sphere(1)
    verts = mesh.verts_packed().clone().requires_grad_()
    cams = PerspectiveCameras.from_fov(30.0, (10, 10), orbit_poses(torch.tensor([10.0]), 10.0, 4.0))
    frag = soft_rasterize_meshes(Meshes([verts], [mesh.faces_packed()]), cams, blur_radius=1e-2, faces_per_pixel=6)
    assert (~frag.mask.any(-1)).any() and frag.mask.any()  # some empty pixels
    colors = frag.bary_coords.clamp(min=0)
    outs = [soft_silhouette(frag, sigma), soft_depth(frag, sigma),
            softmax_rgb_blend(colors, frag, sigma, 1e-4), softmax_rgb_blend(colors, frag, sigma, 10.0)]
    for o in outs:
        assert torch.isfinite(o).all()
    sum(o.sum() for o in outs).backward()
    assert torch.isfinite(verts.grad).all()
    # the weights of soft_depth sum to the silhouette
    ones = frag._replace(zbuf=torch.ones_like(frag.zbuf))
    torch.testing.assert_close(soft_depth(ones, sigma), outs[0])
    torch.testing.assert_close(outs[2][..., 3], outs[0])


# --------------------------------------------------------------------------- errors


def test_errors():
    mesh = ico_sphere(0)
    cams = PerspectiveCameras.from_fov(40.0, (8, 8), orbit_poses(torch.tensor([0.0]), 0.0, 3.0))
    fn = "soft_rasterize_meshes"
    bad = [
        (dict(blur_radius=-0.1), "blur_radius"), (dict(blur_radius=math.nan), "blur_radius"),
        (dict(faces_per_pixel=0), "faces_per_pixel"), (dict(faces_per_pixel=2.0), "faces_per_pixel"),
        (dict(image_size=(0, 4)), "image_size"), (dict(image_size="8"), "image_size"),
        (dict(image_size=(8, 8, 8)), "image_size"), (dict(znear=0.0), "znear"), (dict(zfar=1e-3), "zfar"),
        (dict(cull_backfaces=1), "cull_backfaces"), (dict(backend="cuda"), "backend"),
    ]
    for kwargs, name in bad:
        with pytest.raises(InvalidInputError, match=rf"^{fn}: argument '{name}'"):
            soft_rasterize_meshes(mesh, cams, **kwargs)
    with pytest.raises(InvalidInputError, match="'backend' must be one of \\['auto', 'torch', 'numba'\\]"):
        soft_rasterize_meshes(mesh, cams, backend="pytorch3d")
    with pytest.raises(InvalidInputError, match=rf"^{fn}: argument 'meshes'"):
        soft_rasterize_meshes(torch.zeros(3, 3), cams)
    with pytest.raises(InvalidInputError, match=rf"^{fn}: argument 'cameras'"):
        soft_rasterize_meshes(mesh, cams.K)
    two = Meshes([mesh.verts_packed()] * 2, [mesh.faces_packed()] * 2)
    with pytest.raises(InvalidInputError, match=rf"^{fn}: argument 'cameras' must hold a positive multiple"):
        soft_rasterize_meshes(two, cams)

    frag = soft_rasterize_meshes(mesh, cams, blur_radius=1e-3, faces_per_pixel=2)
    for f, kwargs, name in [
        (soft_silhouette, dict(sigma=0.0), "sigma"), (soft_silhouette, dict(sigma=math.inf), "sigma"),
        (soft_depth, dict(sigma=-1.0), "sigma"), (soft_depth, dict(background=math.nan), "background"),
    ]:
        with pytest.raises(InvalidInputError, match=rf"^{f.__name__}: argument '{name}'"):
            f(frag, **kwargs)
    for f in (soft_silhouette, soft_depth):
        with pytest.raises(InvalidInputError, match=rf"^{f.__name__}: argument 'frags'"):
            f(tuple(frag))
    colors = torch.rand(1, 8, 8, 2, 3)
    fn = "softmax_rgb_blend"
    for args, kwargs, name in [
        ((colors[..., :1, :], frag), {}, "colors"), ((colors.double().long(), frag), {}, "colors"),
        ((colors, tuple(frag)), {}, "frags"), ((colors, frag, 0.0), {}, "sigma"), ((colors, frag, 1e-4, -1.0), {}, "gamma"),
        ((colors, frag), dict(background=(1.0, 0.0)), "background"), ((colors, frag), dict(background="red"), "background"),
        ((colors, frag), dict(znear=0.0), "znear"), ((colors, frag), dict(zfar=0.5), "zfar"),
        ((colors, frag), dict(zfar=math.inf), "zfar"),
    ]:
        with pytest.raises(InvalidInputError, match=rf"^{fn}: argument '{name}'"):
            softmax_rgb_blend(*args, **kwargs)
