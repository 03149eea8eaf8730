"""Tests of geomgen.ops.depth: unproject_depth and project_points."""

from __future__ import annotations

import math

import pytest
import torch

from geomgen.errors import InvalidInputError
from geomgen.ops.depth import project_points, unproject_depth
from geomgen.structures import DepthMaps, PointClouds

H, W = 4, 5
K0 = torch.tensor([[80.0, 0.0, 2.5], [0.0, 60.0, 2.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
K1 = torch.tensor([[40.0, 3.0, 3.0], [0.0, 50.0, 1.5], [0.0, 0.0, 1.0]], dtype=torch.float64)


def rotation(axis, angle, dtype=torch.float64):
    a = torch.tensor(axis, dtype=dtype)
    a = a / a.norm()
    k = torch.tensor([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]], dtype=dtype)
    return torch.eye(3, dtype=dtype) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k


def pose(axis, angle, t):
    T = torch.eye(4, dtype=torch.float64)
    T[:3, :3] = rotation(axis, angle)
    T[:3, 3] = torch.tensor(t, dtype=torch.float64)
    return T


def full_K(top: torch.Tensor) -> torch.Tensor:
    """(3, 3) K from its (2, 3) top rows, keeping K[1, 0] = 0 and the bottom row fixed
    (gradcheck must not perturb the entries validation pins)."""
    fixed = torch.tensor([[1.0, 1, 1], [0, 1, 1]], dtype=top.dtype)
    return torch.cat([top * fixed, torch.tensor([[0.0, 0, 1]], dtype=top.dtype)])


def full_pose(top: torch.Tensor) -> torch.Tensor:
    """(4, 4) pose from its (3, 4) top rows."""
    return torch.cat([top, torch.tensor([[0.0, 0, 0, 1]], dtype=top.dtype)])


def depth_batch():
    g = torch.Generator().manual_seed(0)
    d = torch.rand(2, H, W, generator=g, dtype=torch.float64) * 3 + 0.5
    d[0, 1, 2] = 0.0
    d[1, 0, 0] = float("nan")
    d[1, 3, 4] = -2.0
    return d


def naive_unproject(d, K, T=None):
    out = []
    for n in range(d.shape[0]):
        k = K[n] if K.dim() == 3 else K
        fx, s, cx, fy, cy = k[0, 0], k[0, 1], k[0, 2], k[1, 1], k[1, 2]
        pts = []
        for v in range(d.shape[1]):
            for u in range(d.shape[2]):
                z = d[n, v, u].item()
                if not (math.isfinite(z) and z > 0):
                    continue
                yn = (v + 0.5 - cy) / fy
                xn = (u + 0.5 - cx - s * yn) / fx
                p = torch.tensor([xn * z, yn * z, z], dtype=d.dtype)
                if T is not None:
                    p = T[n, :3, :3] @ p + T[n, :3, 3]
                pts.append(p)
        out.append(torch.stack(pts) if pts else torch.zeros(0, 3, dtype=d.dtype))
    return out


def test_unproject_against_naive_and_depthmaps():
    d, K = depth_batch(), torch.stack([K0, K1])
    pc = unproject_depth(d, K)
    assert isinstance(pc, PointClouds) and len(pc) == 2
    ref = naive_unproject(d, K)
    for a, b in zip(pc.points_list(), ref):
        assert a.shape == b.shape and torch.allclose(a, b)
    assert pc.num_points_per_cloud().tolist() == [H * W - 1, H * W - 2]
    dm = DepthMaps(d, K)
    from_dm = unproject_depth(dm)
    for a, b in zip(from_dm.points_list(), dm.to_pointclouds().points_list()):
        assert torch.equal(a, b)
    shared = unproject_depth(d, K0)  # (3, 3) K shared by the batch
    for a, b in zip(shared.points_list(), naive_unproject(d, K0)):
        assert torch.allclose(a, b)


def test_masks_and_pose():
    d, K = depth_batch(), torch.stack([K0, K1])
    mask = torch.isfinite(d) & (d > 0) & (torch.arange(W) % 2 == 0)
    pc = unproject_depth(d, K, mask)
    dm = DepthMaps(d, K)
    keep = mask.clone()
    keep[:, 0] = True  # intersected with the maps' own masks (NaN pixel stays out)
    pc2 = unproject_depth(dm, mask=keep)
    assert pc2.num_points_per_cloud().tolist() == (dm.masks & keep).sum((1, 2)).tolist()
    masked = torch.where(mask, d, torch.zeros_like(d))
    for a, b in zip(pc.points_list(), naive_unproject(masked, K)):
        assert torch.allclose(a, b)
    T = torch.stack([pose([0, 0, 1], 0.3, [1, 2, 3]), pose([1, 1, 0], -1.1, [0, -1, 0.5])])
    world = unproject_depth(d, K, world_from_camera=T)
    for a, b in zip(world.points_list(), naive_unproject(d, K, T)):
        assert torch.allclose(a, b)
    one = unproject_depth(d, K, world_from_camera=T[0])  # (4, 4) shared pose
    assert torch.allclose(one.points_list()[1], naive_unproject(d, K, T[0].expand(2, 4, 4))[1])
    empty = unproject_depth(d, K, torch.zeros_like(mask))
    assert empty.num_points_per_cloud().tolist() == [0, 0]


@pytest.mark.parametrize("with_pose", [False, True])
def test_round_trip_gives_pixel_centres(with_pose):
    d, K = depth_batch(), torch.stack([K0, K1])
    dm = DepthMaps(d, K)
    T = torch.stack([pose([0, 1, 0], 0.4, [0.5, 0, -1]), pose([1, 0, 1], 2.0, [3, 1, 0])]) if with_pose else None
    pc = unproject_depth(dm, world_from_camera=T)
    uv, z = project_points(pc.points_padded(), K, world_from_camera=T)
    centres = dm.pixel_centers()
    for n in range(2):
        m = dm.masks[n]
        k = int(m.sum())
        assert torch.allclose(uv[n, :k], centres[m], atol=1e-9)
        assert torch.allclose(z[n, :k], d[n][m])


def test_project_points_formula_behind_camera_and_grad():
    pts = torch.tensor([[[0.2, -0.1, 2.0], [1.0, 1.0, -1.0], [0.3, 0.3, 0.0], [-0.5, 0.4, 4.0]]], dtype=torch.float64)
    uv, z = project_points(pts, K1)
    fx, s, cx, fy, cy = 40.0, 3.0, 3.0, 50.0, 1.5
    x, y, zz = pts[0, 0]
    assert torch.allclose(uv[0, 0], torch.tensor([fx * x / zz + s * y / zz + cx, fy * y / zz + cy], dtype=torch.float64))
    assert torch.isnan(uv[0, 1]).all() and torch.isnan(uv[0, 2]).all() and not torch.isnan(uv[0, 3]).any()
    assert z.tolist() == [[2.0, -1.0, 0.0, 4.0]]
    p = pts.clone().requires_grad_()
    uv, z = project_points(p, K1)
    torch.where(torch.isnan(uv), torch.zeros_like(uv), uv).sum().backward()
    assert torch.isfinite(p.grad).all() and (p.grad[0, 1:3, :2] == 0).all()
    front = pts[:, [0, 3]].clone().requires_grad_()
    k = K1[:2].clone().requires_grad_()
    T = pose([1, 2, 3], 0.2, [0.1, 0.0, -0.3])[:3].clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda a, b, c: project_points(a, full_K(b), world_from_camera=full_pose(c)), (front, k, T)
    )


def test_unproject_gradcheck():
    d = (torch.rand(1, 2, 3, dtype=torch.float64) + 1).requires_grad_()
    k = K1[:2].clone().requires_grad_()
    T = pose([0, 1, 1], 0.7, [1, 0, 0])[:3].clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda a, b, c: unproject_depth(a, full_K(b), world_from_camera=full_pose(c)).points_packed(), (d, k, T)
    )


def test_raycast_real_mesh_points_lie_on_surface(cgal_data):
    o3d = pytest.importorskip("open3d")
    import numpy as np

    from geomgen.io import load_mesh

    mesh = load_mesh(cgal_data / "meshes" / "eight.off")
    v = mesh.verts_packed().double()
    v = (v - v.mean(0)) / (v.max(0).values - v.min(0).values).max()  # about unit size at the origin
    f = mesh.faces_packed()
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(v.float().numpy()), o3d.core.Tensor(f.numpy().astype(np.uint32)))
    h, w, fl = 24, 32, 40.0
    K = torch.tensor([[fl, 0.0, w / 2], [0.0, fl, h / 2], [0.0, 0.0, 1.0]], dtype=torch.float64)
    T = pose([0, 1, 0], math.pi, [0.0, 0.0, 1.5])  # camera at z=1.5 looking down -z (world)
    dm = DepthMaps(torch.ones(1, h, w, dtype=torch.float64), K)
    uv = dm.pixel_centers()
    dirs_cam = torch.stack([(uv[..., 0] - w / 2) / fl, (uv[..., 1] - h / 2) / fl, torch.ones(h, w, dtype=torch.float64)], -1)
    dirs = dirs_cam @ T[:3, :3].T  # z-component 1 in the camera frame => t_hit is z-depth
    rays = torch.cat([T[:3, 3].expand(h, w, 3), dirs], -1).float().numpy()
    t_hit = scene.cast_rays(o3d.core.Tensor(rays))["t_hit"].numpy()
    depth = torch.from_numpy(np.where(np.isfinite(t_hit), t_hit, 0.0)).double()[None]
    assert (depth > 0).sum() > 50
    pc = unproject_depth(depth, K, world_from_camera=T)
    pts = pc.points_packed()
    dist = scene.compute_distance(o3d.core.Tensor(pts.float().numpy())).numpy()
    assert np.abs(dist).max() < 1e-4
    uv2, z2 = project_points(pts[None], K, world_from_camera=T)
    assert torch.allclose(uv2[0], uv[depth[0] > 0], atol=1e-4)


def test_validation():
    d, K = depth_batch(), torch.stack([K0, K1])
    dm = DepthMaps(d, K)
    with pytest.raises(InvalidInputError, match="'K'"):
        unproject_depth(d)
    with pytest.raises(InvalidInputError, match="'K'"):
        unproject_depth(dm, K)
    with pytest.raises(InvalidInputError, match="'K'"):
        unproject_depth(d, torch.stack([K0, -K1]))
    with pytest.raises(InvalidInputError, match="'K'"):
        unproject_depth(d, torch.eye(3, dtype=torch.float64)[None].expand(3, 3, 3))
    with pytest.raises(InvalidInputError, match="'depth'"):
        unproject_depth(d, K, torch.ones(2, H, W, dtype=torch.bool))  # NaN / <= 0 pixels masked in
    with pytest.raises(InvalidInputError, match="'depth'"):
        unproject_depth(d[0], K0)
    with pytest.raises(InvalidInputError, match="'depth'"):
        unproject_depth(d.numpy(), K)
    with pytest.raises(InvalidInputError, match="'mask'"):
        unproject_depth(d, K, torch.ones(2, H, W))
    with pytest.raises(InvalidInputError, match="'mask'"):
        unproject_depth(dm, mask=torch.ones(2, H, W + 1, dtype=torch.bool))
    bad = torch.eye(4, dtype=torch.float64)
    bad[3, 0] = 1.0
    with pytest.raises(InvalidInputError, match="world_from_camera"):
        unproject_depth(d, K, world_from_camera=bad)
    with pytest.raises(InvalidInputError, match="world_from_camera"):
        unproject_depth(d, K, world_from_camera=torch.eye(4, dtype=torch.float64).expand(3, 4, 4))
    with pytest.raises(InvalidInputError, match="'points'"):
        project_points(torch.zeros(1, 3, 2), K0)
    with pytest.raises(InvalidInputError, match="'points'"):
        project_points(torch.full((1, 3, 3), float("nan")), K0)
    with pytest.raises(InvalidInputError, match="'K'"):
        project_points(torch.zeros(2, 3, 3), torch.stack([K0, K1, K1]))
