"""Tests of geomgen.render.cameras: PerspectiveCameras, look_at, orbit_poses."""

from __future__ import annotations

import math

import pytest
import torch

from geomgen.errors import InvalidInputError
from geomgen.ops import project_points
from geomgen.render import PerspectiveCameras, look_at, orbit_poses

D = torch.float64


def rand_rot(gen: torch.Generator, n: int) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(n, 3, 3, generator=gen, dtype=D))
    q = q * torch.sign(torch.diagonal(r, dim1=1, dim2=2))[:, None, :]
    return q * torch.det(q)[:, None, None]  # det +1


def rand_pose(gen: torch.Generator, n: int) -> torch.Tensor:
    T = torch.eye(4, dtype=D).repeat(n, 1, 1)
    T[:, :3, :3] = rand_rot(gen, n)
    T[:, :3, 3] = torch.randn(n, 3, generator=gen, dtype=D)
    return T


def skew_K(n: int) -> torch.Tensor:
    K = torch.zeros(n, 3, 3, dtype=D)
    K[:, 0, 0] = torch.linspace(50, 90, n)
    K[:, 1, 1] = torch.linspace(60, 70, n)
    K[:, 0, 1] = torch.linspace(-2, 3, n)
    K[:, 0, 2] = 16.3
    K[:, 1, 2] = 11.9
    K[:, 2, 2] = 1
    return K


# --------------------------------------------------------------------------- from_fov / K


def test_from_fov_matches_explicit_K():
    H, W = 48, 64
    cams = PerspectiveCameras.from_fov(60.0, (H, W))
    f = (H / 2) / math.tan(math.radians(30))
    want = torch.tensor([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1]], dtype=cams.dtype)
    torch.testing.assert_close(cams.K[0], want)
    assert len(cams) == 1 and cams.image_size == (H, W)
    torch.testing.assert_close(cams.world_from_camera[0], torch.eye(4, dtype=cams.dtype))
    # radians, batched fov, shared pose
    cams2 = PerspectiveCameras.from_fov(torch.tensor([math.pi / 3, math.pi / 2], dtype=D), (H, W), degrees=False)
    assert len(cams2) == 2 and cams2.dtype == D
    torch.testing.assert_close(cams2.K[0].float(), want)
    assert cams2.K[1, 1, 1].item() == pytest.approx(H / 2)  # tan(45 deg) = 1


def test_from_fov_is_vertical_fov():
    """A point at half the vertical fov above the axis lands on the top edge (v = 0)."""
    H, W = 30, 80
    fov = 50.0
    cams = PerspectiveCameras.from_fov(fov, (H, W), dtype=D)
    t = math.tan(math.radians(fov / 2))
    pts = torch.tensor([[[0.0, -t, 1.0], [0.0, t, 1.0], [0.0, 0.0, 2.0]]], dtype=D)
    uvz = cams.project(pts)
    torch.testing.assert_close(uvz[0, :, 1], torch.tensor([0.0, H, H / 2], dtype=D))
    torch.testing.assert_close(uvz[0, :, 0], torch.full((3,), W / 2, dtype=D))


def test_K_and_pose_broadcast_and_dtype():
    gen = torch.Generator().manual_seed(0)
    poses = rand_pose(gen, 3)
    K = skew_K(1)[0].float()
    cams = PerspectiveCameras(K, poses, (24, 32))
    assert len(cams) == 3 and cams.dtype == D  # promoted
    torch.testing.assert_close(cams.K, K.double().expand(3, 3, 3))
    cams = PerspectiveCameras(skew_K(4), None, (24, 32))
    assert len(cams) == 4
    torch.testing.assert_close(cams.world_from_camera, torch.eye(4, dtype=D).expand(4, 4, 4))
    import numpy as np

    cams = PerspectiveCameras(np.eye(3) * np.array([10, 10, 1]), image_size=[5, 6])
    assert cams.image_size == (5, 6) and cams.K.dtype == torch.float64


def test_camera_from_world_is_inverse_and_centers():
    gen = torch.Generator().manual_seed(1)
    poses = rand_pose(gen, 5)
    cams = PerspectiveCameras(skew_K(5), poses, (20, 30))
    eye = torch.eye(4, dtype=D).expand(5, 4, 4)
    torch.testing.assert_close(cams.camera_from_world @ cams.world_from_camera, eye)
    torch.testing.assert_close(cams.centers(), poses[:, :3, 3])
    torch.testing.assert_close(cams.world_to_camera(cams.centers()[:, None, :]), torch.zeros(5, 1, 3, dtype=D))


# --------------------------------------------------------------------------- transforms


def test_project_unproject_round_trip_batched():
    gen = torch.Generator().manual_seed(2)
    n, p = 4, 50
    poses = rand_pose(gen, n)
    cams = PerspectiveCameras(skew_K(n), poses, (24, 32))
    cam_pts = torch.randn(n, p, 3, generator=gen, dtype=D)
    cam_pts[..., 2] = cam_pts[..., 2].abs() + 0.5  # in front
    world = cams.camera_to_world(cam_pts)
    torch.testing.assert_close(cams.world_to_camera(world), cam_pts)
    uvz = cams.project(world)
    torch.testing.assert_close(uvz[..., 2], cam_pts[..., 2])
    # same as the ops helper on camera-frame points, and as the pinhole formula
    uv_ref, _ = project_points(cam_pts, cams.K)
    torch.testing.assert_close(uvz[..., :2], uv_ref)
    K = cams.K
    x, y, z = cam_pts.unbind(-1)
    u = K[:, None, 0, 0] * x / z + K[:, None, 0, 1] * y / z + K[:, None, 0, 2]
    torch.testing.assert_close(uvz[..., 0], u)
    back = cams.unproject(uvz[..., :2], uvz[..., 2])
    torch.testing.assert_close(back, world)


def test_pixel_centre_convention():
    """Unprojecting pixel (i, j)'s centre (i + .5, j + .5) at depth z lies on the ray of that pixel."""
    cams = PerspectiveCameras(torch.tensor([[10.0, 0, 2.0], [0, 10.0, 2.0], [0, 0, 1]], dtype=D), image_size=(4, 4))
    uv = torch.tensor([[[0.5, 0.5], [2.0, 2.0]]], dtype=D)
    p = cams.unproject(uv, torch.tensor([[1.0, 3.0]], dtype=D))
    torch.testing.assert_close(p, torch.tensor([[[-0.15, -0.15, 1.0], [0.0, 0.0, 3.0]]], dtype=D))


def test_shared_points_and_behind_camera():
    cams = PerspectiveCameras.from_fov(torch.tensor([40.0, 70.0]), (16, 16), dtype=D)
    pts = torch.tensor([[0.0, 0.0, 2.0], [0.0, 0.0, -1.0]], dtype=D)  # (P, 3) shared
    uvz = cams.project(pts)
    assert uvz.shape == (2, 2, 3)
    assert torch.isnan(uvz[:, 1, :2]).all() and (uvz[:, 1, 2] == -1).all()
    torch.testing.assert_close(uvz[:, 0, :2], torch.full((2, 2), 8.0, dtype=D))


def test_indexing_len_to():
    gen = torch.Generator().manual_seed(3)
    cams = PerspectiveCameras(skew_K(5), rand_pose(gen, 5), (8, 9))
    assert len(cams[1]) == 1 and len(cams[1:4]) == 3
    sub = cams[torch.tensor([4, 0])]
    torch.testing.assert_close(sub.K, cams.K[[4, 0]])
    torch.testing.assert_close(sub.world_from_camera, cams.world_from_camera[[4, 0]])
    assert sub.image_size == (8, 9)
    sub2 = cams[torch.tensor([True, False, True, False, False])]
    torch.testing.assert_close(sub2.K, cams.K[[0, 2]])
    f = cams.to(torch.float32)
    assert f.dtype == torch.float32 and f.world_from_camera.dtype == torch.float32
    with pytest.raises(InvalidInputError):
        cams[7]
    assert "N=5" in repr(cams)


def test_points_are_differentiable():
    cams = PerspectiveCameras.from_fov(50.0, (10, 10), dtype=D)
    pts = torch.tensor([[[0.1, 0.2, 2.0]]], dtype=D, requires_grad=True)
    cams.project(pts).sum().backward()
    assert pts.grad is not None and torch.isfinite(pts.grad).all()


# --------------------------------------------------------------------------- look_at / orbit


def test_look_at_known_pose_and_properties():
    T = look_at(torch.tensor([0.0, 0.0, 5.0], dtype=D))
    want = torch.tensor([[1, 0, 0, 0], [0, -1, 0, 0], [0, 0, -1, 5], [0, 0, 0, 1]], dtype=D)
    torch.testing.assert_close(T[0], want)
    gen = torch.Generator().manual_seed(4)
    eye = torch.randn(16, 3, generator=gen, dtype=D) * 3
    at = torch.randn(16, 3, generator=gen, dtype=D) * 0.2
    up = torch.tensor([0.1, 1.0, 0.2], dtype=D)
    T = look_at(eye, at, up)
    R = T[:, :3, :3]
    torch.testing.assert_close(R.transpose(1, 2) @ R, torch.eye(3, dtype=D).expand(16, 3, 3))
    torch.testing.assert_close(torch.det(R), torch.ones(16, dtype=D))
    torch.testing.assert_close(T[:, :3, 3], eye)
    # z towards `at`, image y (down) against up, at projects to the principal point
    d = (at - eye) / (at - eye).norm(dim=1, keepdim=True)
    torch.testing.assert_close(R[:, :, 2], d)
    assert ((R[:, :, 1] * up).sum(1) < 0).all()
    assert (R[:, :, 0] * up).sum(1).abs().max() < 1e-12  # image rows stay level
    cams = PerspectiveCameras(skew_K(16), T, (24, 32))
    uvz = cams.project(at[:, None, :])
    torch.testing.assert_close(uvz[:, 0, :2], cams.principal_point)


def test_orbit_positions_and_orientation():
    az = torch.tensor([0.0, 90.0, 180.0, 30.0], dtype=D)
    el = torch.tensor([0.0, 0.0, 45.0, -20.0], dtype=D)
    T = orbit_poses(az, el, 2.0, at=(0.0, 0.1, 0.0))
    a, e = torch.deg2rad(az), torch.deg2rad(el)
    want = torch.stack([torch.cos(e) * torch.sin(a), torch.sin(e), torch.cos(e) * torch.cos(a)], 1) * 2
    want[:, 1] += 0.1
    torch.testing.assert_close(T[:, :3, 3], want)
    torch.testing.assert_close(T[0, :3, 3], torch.tensor([0.0, 0.1, 2.0], dtype=D))  # az 0: on +Z
    torch.testing.assert_close(T[1, :3, 3], torch.tensor([2.0, 0.1, 0.0], dtype=D), atol=1e-12, rtol=0)
    torch.testing.assert_close(T[0, :3, 0], torch.tensor([1.0, 0, 0], dtype=D))  # image right = +X
    torch.testing.assert_close(T, look_at(want, torch.tensor([0.0, 0.1, 0.0], dtype=D)))
    # scalars broadcast; radians
    T2 = orbit_poses(math.pi / 2, 0.0, torch.tensor([1.0, 3.0], dtype=D), degrees=False)
    torch.testing.assert_close(T2[:, :3, 3], torch.tensor([[1.0, 0, 0], [3.0, 0, 0]], dtype=D), atol=1e-12, rtol=0)


def test_orbit_other_up():
    up = torch.tensor([0.0, 0.0, 1.0], dtype=D)
    T = orbit_poses(torch.tensor([0.0, 60.0, 200.0], dtype=D), torch.tensor([30.0, -10.0, 5.0], dtype=D), 1.5, up=up)
    eye = T[:, :3, 3]
    torch.testing.assert_close(eye.norm(dim=1), torch.full((3,), 1.5, dtype=D))
    torch.testing.assert_close(eye @ up, 1.5 * torch.sin(torch.deg2rad(torch.tensor([30.0, -10.0, 5.0], dtype=D))))
    assert ((T[:, :3, 1] * up).sum(1) < 0).all()  # up is up in the image
    Tdown = orbit_poses(0.0, 10.0, 1.0, up=(0.0, -1.0, 0.0))
    assert Tdown[0, 1, 3] < 0  # positive elevation moves towards -Y


# --------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(K=torch.eye(4)), "K"),
        (dict(K=torch.tensor([[0.0, 0, 1], [0, 5, 1], [0, 0, 1]])), "K"),
        (dict(K=torch.tensor([[5.0, 0, 1], [1, 5, 1], [0, 0, 1]])), "K"),
        (dict(world_from_camera=torch.diag(torch.tensor([2.0, 2.0, 2.0, 1.0]))), "world_from_camera"),
        (dict(world_from_camera=torch.diag(torch.tensor([1.0, 1.0, -1.0, 1.0]))), "world_from_camera"),
        (dict(world_from_camera=torch.eye(4).repeat(3, 1, 1), K=torch.eye(3).repeat(2, 1, 1)), "world_from_camera"),
        (dict(world_from_camera=torch.full((4, 4), float("nan"))), "world_from_camera"),
        (dict(image_size=(0, 5)), "image_size"),
        (dict(image_size=None), "image_size"),
        (dict(image_size=(4.0, 5)), "image_size"),
        (dict(K="abc"), "K"),
    ],
)
def test_constructor_errors(kwargs, name):
    args = dict(K=torch.eye(3), world_from_camera=None, image_size=(4, 5))
    args.update(kwargs)
    with pytest.raises(InvalidInputError, match=name):
        PerspectiveCameras(**args)


def test_function_errors():
    with pytest.raises(InvalidInputError, match="fov"):
        PerspectiveCameras.from_fov(180.0, (4, 4))
    with pytest.raises(InvalidInputError, match="fov"):
        PerspectiveCameras.from_fov(-1.0, (4, 4))
    with pytest.raises(InvalidInputError, match="eye"):
        look_at((1.0, 2.0, 3.0), (1.0, 2.0, 3.0))
    with pytest.raises(InvalidInputError, match="up"):
        look_at((0.0, 3.0, 0.0))
    with pytest.raises(InvalidInputError, match="eye"):
        look_at(torch.zeros(2, 4))
    with pytest.raises(InvalidInputError, match="elevation"):
        orbit_poses(0.0, 90.0, 1.0)
    with pytest.raises(InvalidInputError, match="distance"):
        orbit_poses(0.0, 0.0, 0.0)
    with pytest.raises(InvalidInputError, match="azimuth"):
        orbit_poses(torch.zeros(3), torch.zeros(2), 1.0)
    cams = PerspectiveCameras.from_fov(torch.tensor([40.0, 50.0]), (8, 8))
    with pytest.raises(InvalidInputError, match="points"):
        cams.project(torch.zeros(3, 5, 3))
    with pytest.raises(InvalidInputError, match="points"):
        cams.project(torch.zeros(2, 5, 2))
    with pytest.raises(InvalidInputError, match="depth"):
        cams.unproject(torch.zeros(2, 5, 2), torch.zeros(2, 4))
    with pytest.raises(InvalidInputError, match="points"):
        cams.world_to_camera(torch.full((2, 1, 3), float("inf")))


def test_default_intrinsics_match_from_fov():
    from geomgen.render import default_distance, default_intrinsics

    K = default_intrinsics(2, 64, 80, 40.0)
    assert K.shape == (2, 3, 3) and K.dtype == torch.float32
    torch.testing.assert_close(K[1], PerspectiveCameras.from_fov(40.0, (64, 80), dtype=torch.float32).K[0])
    # the unit cube's circumscribed sphere, 5 % margin, fills the vertical field of view
    assert default_distance(40.0) == pytest.approx(1.05 * math.sqrt(3) / 2 / math.sin(math.radians(20)))


def test_scale_intrinsics_follows_the_resize():
    from geomgen.render import scale_intrinsics

    K = torch.tensor([[100.0, 1.0, 40.0], [0.0, 90.0, 30.0], [0.0, 0.0, 1.0]])
    out = scale_intrinsics(K, [(60, 80), (120, 80)], 40)
    assert out.shape == (2, 3, 3) and out.dtype == torch.float32
    torch.testing.assert_close(out[0], torch.tensor([[50.0, 0.5, 20.0], [0.0, 60.0, 20.0], [0.0, 0.0, 1.0]]))
    torch.testing.assert_close(out[1, 1], torch.tensor([0.0, 30.0, 10.0]))
    # a pixel centre of the original image lands on the same point of the resized one
    p = torch.tensor([[0.2, -0.1, 2.0]])
    uv0 = project_points(p[None], K[None].double().float())[0]
    uv1 = project_points(p[None], scale_intrinsics(K, [(60, 80)], (30, 20))[:1])[0]
    torch.testing.assert_close(uv1, uv0 * torch.tensor([20 / 80, 30 / 60]))
    K2 = torch.eye(3).expand(2, 3, 3)
    assert scale_intrinsics(K2, [(10, 10), (20, 20)], 10)[1, 0, 0] == 0.5
    with pytest.raises(InvalidInputError, match=r"predict: argument 'K' must have shape \(2, 3, 3\) or \(3, 3\)"):
        scale_intrinsics(torch.eye(2), [(10, 10), (20, 20)], 10, fn="predict")
    with pytest.raises(InvalidInputError, match="argument 'K'"):
        scale_intrinsics("K", [(10, 10)], 10)


def test_opencv_to_y_up_is_the_half_turn_about_x():
    from geomgen.render import opencv_to_y_up

    p = torch.tensor([[1.0, 2.0, 3.0], [0.0, -1.0, 0.5]], dtype=D)
    out = opencv_to_y_up(p)
    assert out.dtype == D
    torch.testing.assert_close(out, torch.tensor([[1.0, -2.0, -3.0], [0.0, 1.0, -0.5]], dtype=D))
    torch.testing.assert_close(opencv_to_y_up(out), p)  # its own inverse
    # a camera in front of the object (OpenCV: +z forward) ends up on +Z looking at it
    assert opencv_to_y_up(torch.tensor([[[0.0, 0.0, 2.0]]])).shape == (1, 1, 3)
    with pytest.raises(InvalidInputError, match="points"):
        opencv_to_y_up(torch.zeros(4, 2))
