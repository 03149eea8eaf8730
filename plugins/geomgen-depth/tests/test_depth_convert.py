"""Tests of geomgen_depth.convert: grid normals, foreground points, 2.5D meshes
(synthetic depth maps and the dataset's ground-truth renders)."""

from __future__ import annotations

import pytest
import torch

from geomgen.errors import InvalidInputError
from geomgen.losses import chamfer_distance
from geomgen.models import camera_to_world, default_intrinsics
from geomgen.structures import DepthMaps
from geomgen_depth.convert import continuous_neighbours, depth_grid_normals, depth_to_meshes, depth_to_points

H = W = 16


def _plane(slope: float = 0.0, z0: float = 2.0) -> DepthMaps:
    """The plane z = z0 + slope * x seen by a 40-degree camera: z = z0 / (1 - slope * x / z)."""
    K = default_intrinsics(1, H, W, 40.0)
    u = torch.arange(W) + 0.5
    xn = ((u - K[0, 0, 2]) / K[0, 0, 0]).expand(H, W)
    z = z0 / (1.0 - slope * xn)
    return DepthMaps(z[None], K)


def test_plane_normals_face_the_camera():
    n = depth_grid_normals(_plane(0.0))
    torch.testing.assert_close(n, torch.tensor([0.0, 0.0, -1.0]).expand(1, H, W, 3))
    n = depth_grid_normals(_plane(0.5))  # normal of z - 0.5 x = const is (-0.5, 0, 1), flipped to the camera
    expected = torch.tensor([0.5, 0.0, -1.0]) / torch.tensor([0.5, 0.0, -1.0]).norm()
    torch.testing.assert_close(n, expected.expand(1, H, W, 3), atol=1e-5, rtol=0)


def test_normals_do_not_mix_surfaces_across_a_depth_jump():
    dm = _plane(0.0)
    z = dm.depth.clone()
    z[:, :, W // 2:] = 3.0  # two fronto-parallel planes, one behind the other
    n = depth_grid_normals(DepthMaps(z, dm.K))
    torch.testing.assert_close(n, torch.tensor([0.0, 0.0, -1.0]).expand(1, H, W, 3))
    right, down = continuous_neighbours(z, torch.ones_like(z, dtype=torch.bool), 0.05)
    assert not right[0, :, W // 2 - 1].any() and right[0, :, : W // 2 - 1].all() and down.all()


def test_points_subsample_and_masks():
    dm = _plane(0.0)
    mask = torch.zeros(1, H, W, dtype=torch.bool)
    mask[0, 4:8, 4:9] = True  # 20 pixels
    dm = DepthMaps(dm.depth * mask, dm.K, masks=mask)
    pc = depth_to_points(dm)
    assert pc.num_points_per_cloud().tolist() == [20]
    torch.testing.assert_close(pc.points_list()[0], dm.unproject()[0][mask[0]])
    sub = depth_to_points(dm, num_points=7)
    assert sub.num_points_per_cloud().tolist() == [7]
    assert torch.equal(sub.points_list()[0], depth_to_points(dm, num_points=7).points_list()[0])  # deterministic
    assert torch.equal(sub.points_list()[0][0], pc.points_list()[0][0])
    assert torch.equal(sub.points_list()[0][-1], pc.points_list()[0][-1])
    assert depth_to_points(dm, num_points=100).num_points_per_cloud().tolist() == [20]  # never duplicated
    assert sub.normals_list()[0].shape == (7, 3)


def test_mesh_of_a_plane_and_of_a_depth_jump():
    mesh = depth_to_meshes(_plane(0.2))
    assert mesh.num_faces_per_mesh().tolist() == [2 * (H - 1) * (W - 1)]
    assert mesh.num_verts_per_mesh().tolist() == [H * W]
    fn = mesh.faces_normals_packed()
    centres = mesh.verts_packed()[mesh.faces_packed()].mean(1)
    assert ((fn * centres).sum(-1) < 0).all()  # counter-clockwise seen from the camera
    dm = _plane(0.0)
    z = dm.depth.clone()
    z[:, :, W // 2:] = 3.0
    jump = depth_to_meshes(DepthMaps(z, dm.K))
    assert jump.num_faces_per_mesh().tolist() == [2 * (H - 1) * (W - 2)]  # the column pair across the jump is dropped
    mask = torch.ones(1, H, W, dtype=torch.bool)
    mask[0, 5, 5] = False  # one missing pixel removes the 6 triangles around it
    holed = depth_to_meshes(DepthMaps(dm.depth * mask, dm.K, masks=mask))
    assert holed.num_faces_per_mesh().tolist() == [2 * (H - 1) * (W - 1) - 6]
    assert holed.num_verts_per_mesh().tolist() == [H * W - 1]
    empty = depth_to_meshes(DepthMaps(torch.zeros(1, H, W), dm.K))
    assert empty.num_faces_per_mesh().tolist() == [0] and empty.num_verts_per_mesh().tolist() == [0]


def test_ground_truth_depth_unprojects_onto_the_gt_surface(depth_batch):
    """Frame check against the dataset: GT z-depth + K + world_from_camera land on the object-frame mesh."""
    b = depth_batch
    dm = DepthMaps(b["depths"], b["K"], masks=b["masks"])
    pc = depth_to_points(dm, num_points=2000)
    pts = camera_to_world(pc.points_padded(), b["world_from_camera"])
    nrm = camera_to_world(pc.normals_padded(), b["world_from_camera"], normals=True)
    gt = b["pointclouds"]
    d, _ = chamfer_distance(pts, gt.points_padded(), x_lengths=pc.num_points_per_cloud(),
                            y_lengths=gt.num_points_per_cloud(), single_directional=True,
                            batch_reduction=None)
    assert (d < 0.02 ** 2).all(), d  # every pixel lies on the surface (GT samples are 4096 points)
    # grid normals agree with the mesh normals of the nearest GT samples (up to silhouette pixels)
    from geomgen.ops import knn_points

    knn = knn_points(pts, gt.points_padded(), pc.num_points_per_cloud(), gt.num_points_per_cloud(), K=1)
    gn = torch.stack([gt.normals_padded()[i][knn.idx[i, :, 0].clamp(min=0)] for i in range(len(pts))])
    valid = torch.arange(pts.shape[1])[None] < pc.num_points_per_cloud()[:, None]
    cos = (nrm * gn).sum(-1).abs()[valid]
    assert cos.median() > 0.95 and cos.mean() > 0.8
    # 2.5D mesh from the GT depth: samples lie on the GT surface too
    from geomgen.ops import sample_points_from_meshes

    mesh = depth_to_meshes(dm)
    assert (mesh.num_faces_per_mesh() > 100).all()
    s = camera_to_world(sample_points_from_meshes(mesh, 2000), b["world_from_camera"])
    d, _ = chamfer_distance(s, gt.points_padded(), y_lengths=gt.num_points_per_cloud(),
                            single_directional=True, batch_reduction=None)
    assert (d < 0.02 ** 2).all(), d


def test_bad_arguments():
    dm = _plane()
    with pytest.raises(InvalidInputError, match="depth"):
        depth_to_meshes(torch.ones(1, H, W))
    with pytest.raises(InvalidInputError, match="depth"):
        depth_to_points(torch.ones(1, H, W))
    with pytest.raises(InvalidInputError, match="rel_threshold"):
        depth_to_meshes(dm, rel_threshold=0.0)
    with pytest.raises(InvalidInputError, match="rel_threshold"):
        depth_grid_normals(dm, rel_threshold=-1)
    with pytest.raises(InvalidInputError, match="num_points"):
        depth_to_points(dm, num_points=0)
