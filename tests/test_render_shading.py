"""Tests of geomgen.render.shading: render_meshes, interpolate_face_attributes, shade_lambert."""

from __future__ import annotations

import math

import pytest
import torch

from geomgen.errors import InvalidInputError
from geomgen.ops import ico_sphere
from geomgen.render import (
    PerspectiveCameras,
    RenderResult,
    interpolate_face_attributes,
    look_at,
    orbit_poses,
    rasterize_meshes,
    render_meshes,
    shade_lambert,
)
from geomgen.render.shading import DEFAULT_COLOR
from geomgen.structures import Meshes

D = torch.float64
H, W = 12, 16
K = torch.tensor([[12.0, 0, W / 2], [0, 12.0, H / 2], [0, 0, 1]], dtype=D)


def plane(z: float = 2.0, half: float = 0.5) -> Meshes:
    """A square at camera z = `z` (camera = world), normal towards -z (facing the camera)."""
    v = torch.tensor([[-half, -half, z], [-half, half, z], [half, half, z], [half, -half, z]], dtype=D)
    f = torch.tensor([[0, 1, 2], [0, 2, 3]])
    mesh = Meshes([v], [f])
    assert torch.allclose(mesh.faces_normals_packed(), torch.tensor([0.0, 0, -1], dtype=D))
    return mesh


def hit_points(cams: PerspectiveCameras, depth: torch.Tensor) -> torch.Tensor:
    """(B, H, W, 3) world points of every pixel centre at `depth`."""
    B = len(cams)
    hh, ww = cams.image_size
    v, u = torch.meshgrid(torch.arange(hh, dtype=D) + 0.5, torch.arange(ww, dtype=D) + 0.5, indexing="ij")
    uv = torch.stack([u, v], -1).reshape(1, -1, 2).expand(B, -1, -1)
    return cams.unproject(uv, depth.reshape(B, -1).double()).reshape(B, hh, ww, 3)


# --------------------------------------------------------------------------- lambert values


@pytest.mark.parametrize("smooth", [True, False])
def test_lambert_plane_facing_the_light(smooth):
    cams = PerspectiveCameras(K, None, (H, W))
    mesh = plane()
    color = torch.tensor([0.8, 0.6, 0.4], dtype=D)
    kw = dict(colors=color, ambient=0.2, diffuse=0.5, smooth=smooth, background=(0.1, 0.2, 0.3))
    cases = [((0.0, 0.0, -1.0), 1.0), ((math.sin(math.pi / 3), 0.0, -0.5), 0.5), ((0.0, 0.0, 1.0), 0.0),
             ((0.0, -3.0, -3.0), math.cos(math.pi / 4))]
    for light, ndotl in cases:
        r = render_meshes(mesh, cams, light_direction=torch.tensor(light, dtype=D), **kw)
        assert isinstance(r, RenderResult) and r.image.shape == (1, 3, H, W) and r.image.dtype == torch.float32
        want = (color * (0.2 + 0.5 * ndotl)).float()
        m = r.mask[0]
        assert m.sum() > 20 and not m.all()
        torch.testing.assert_close(r.image[0][:, m], want[:, None].expand(3, int(m.sum())), atol=1e-6, rtol=0)
        bg = torch.tensor([0.1, 0.2, 0.3])
        torch.testing.assert_close(r.image[0][:, ~m], bg[:, None].expand(3, int((~m).sum())))
        torch.testing.assert_close(r.normals[0][m], torch.tensor([0.0, 0, -1], dtype=D).expand(int(m.sum()), 3))
        assert (r.normals[0][~m] == 0).all() and (r.depth[0][~m] == 0).all()
        torch.testing.assert_close(r.depth[0][m], torch.full((int(m.sum()),), 2.0, dtype=D))


def test_headlight_and_background_scalar():
    cams = PerspectiveCameras(K, None, (H, W))
    r = render_meshes(plane(half=5.0), cams, ambient=0.1, diffuse=0.9, background=0.0)
    assert r.mask.all()
    # headlight: l points back along each pixel's ray; n = -z, so n . l = 1 / |(xn, yn, 1)|
    v, u = torch.meshgrid(torch.arange(H, dtype=D) + 0.5, torch.arange(W, dtype=D) + 0.5, indexing="ij")
    ray = torch.stack([(u - W / 2) / 12, (v - H / 2) / 12, torch.ones_like(u)], -1)
    want = torch.tensor(DEFAULT_COLOR, dtype=D)[:, None, None] * (0.1 + 0.9 / ray.norm(dim=-1))
    torch.testing.assert_close(r.image[0], want.float(), atol=1e-6, rtol=0)
    empty = render_meshes(plane(z=-2.0), cams, background=0.25)
    assert not empty.mask.any() and (empty.image == 0.25).all()


def test_clamped_to_unit_range():
    cams = PerspectiveCameras(K, None, (H, W))
    r = render_meshes(plane(), cams, colors=torch.ones(3, dtype=D), ambient=1.0, diffuse=1.0)
    assert r.image.max() == 1.0 and r.image.min() >= 0.0


# --------------------------------------------------------------------------- normals


def test_normals_unit_facing_camera_and_world_frame():
    sphere = ico_sphere(3)
    mesh = Meshes([sphere.verts_packed().double()], [sphere.faces_packed()])
    cams = PerspectiveCameras.from_fov(40.0, (24, 24), orbit_poses(torch.tensor([30.0, 200.0]), 25.0, 3.5), dtype=D)
    centers = cams.centers()
    for smooth in (False, True):
        r = render_meshes(mesh, cams, smooth=smooth)
        m = r.mask
        assert m.sum() > 200
        n = r.normals[m]
        torch.testing.assert_close(n.norm(dim=-1), torch.ones(len(n), dtype=D))
        p = hit_points(cams, r.depth)
        to_cam = centers[:, None, None, :] - p
        to_cam = to_cam / to_cam.norm(dim=-1, keepdim=True)
        assert ((r.normals * to_cam).sum(-1)[m] > 0).all()
        # world frame: on a unit sphere the normal is (nearly) the hit point's direction
        err = (n - p[m] / p[m].norm(dim=-1, keepdim=True)).norm(dim=-1)
        assert err.max() < (0.02 if smooth else 0.2)


def test_two_sided_from_inside():
    sphere = ico_sphere(2)
    mesh = Meshes([sphere.verts_packed().double()], [sphere.faces_packed()])
    cams = PerspectiveCameras.from_fov(70.0, (16, 16), look_at(torch.zeros(3, dtype=D), torch.tensor([0, 0, 1.0],
                                                                                                     dtype=D)))
    for smooth in (False, True):
        r = render_meshes(mesh, cams, smooth=smooth, ambient=0.0, diffuse=1.0)
        assert r.mask.all()
        p = hit_points(cams, r.depth)
        inward = -p / p.norm(dim=-1, keepdim=True)  # faces the camera at the centre
        assert ((r.normals * inward).sum(-1) > 0.95).all()
        assert r.image.min() > 0.5 * DEFAULT_COLOR[0]  # lit, not black


# --------------------------------------------------------------------------- colours


def test_vertex_colors_interpolated():
    v = torch.tensor([[-1.0, -1, 2], [1.2, -1, 2], [0, 1.3, 2]], dtype=D)
    f = torch.tensor([[0, 1, 2]])
    rgb = torch.eye(3, dtype=D)
    cams = PerspectiveCameras(K, None, (H, W))
    mesh = Meshes([v], [f], verts_colors=[rgb])
    light = torch.tensor([0.0, 0, -1], dtype=D)
    r = render_meshes(mesh, cams, ambient=0.0, diffuse=1.0, light_direction=light)  # n . l = 1: image = albedo
    m = r.mask[0]
    torch.testing.assert_close(r.image[0].permute(1, 2, 0)[m], r.fragments.bary[0][m].float(), atol=1e-6, rtol=0)
    r2 = render_meshes(Meshes([v], [f]), cams, colors=rgb, ambient=0.0, diffuse=1.0, light_direction=light)
    torch.testing.assert_close(r2.image, r.image)


def test_per_mesh_colors_mesh_major():
    s = ico_sphere(1)
    meshes = Meshes([s.verts_packed(), s.verts_packed() * 0.8], [s.faces_packed()] * 2)
    cams = PerspectiveCameras.from_fov(45.0, (10, 10), orbit_poses(torch.tensor([0.0, 90, 0, 90]), 0.0, 4.0))
    colors = torch.tensor([[1.0, 0, 0], [0, 0, 1.0]])
    r = render_meshes(meshes, cams, colors=colors, light_direction=torch.tensor([0.0, 0.0, 1.0]))
    m = r.mask
    assert (r.image[:2, 0][m[:2]] > 0).all() and (r.image[:2, 2][m[:2]] == 0).all()
    assert (r.image[2:, 2][m[2:]] > 0).all() and (r.image[2:, 0][m[2:]] == 0).all()


def test_render_matches_rasterizer_outputs():
    s = ico_sphere(2)
    cams = PerspectiveCameras.from_fov(45.0, (14, 18), orbit_poses(10.0, 20.0, 3.0))
    r = render_meshes(s, cams, znear=0.5, cull_backfaces=True, backend="torch")
    f = rasterize_meshes(s, cams, znear=0.5, cull_backfaces=True, backend="numba")
    torch.testing.assert_close(r.depth, f.zbuf)
    torch.testing.assert_close(r.mask, f.mask)
    torch.testing.assert_close(r.fragments.pix_to_face, f.pix_to_face)


# --------------------------------------------------------------------------- helpers


def test_interpolate_face_attributes():
    p2f = torch.tensor([[[0, -1], [1, 0]]])
    bary = torch.tensor([[[[0.2, 0.3, 0.5], [0.0, 0.0, 0.0]], [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]]])
    attrs = torch.arange(2 * 3 * 2, dtype=torch.float32).reshape(2, 3, 2).requires_grad_()
    out = interpolate_face_attributes(p2f, bary, attrs)
    want = torch.tensor([[[[0.2 * 0 + 0.3 * 2 + 0.5 * 4, 0.2 * 1 + 0.3 * 3 + 0.5 * 5], [0, 0]],
                          [[6.0, 7.0], [4.0, 5.0]]]])
    torch.testing.assert_close(out, want)
    out.sum().backward()
    assert attrs.grad[1, 0].tolist() == [1.0, 1.0] and attrs.grad[1, 1].tolist() == [0.0, 0.0]
    with pytest.raises(InvalidInputError, match="pix_to_face"):
        interpolate_face_attributes(torch.full((1, 2, 2), 5), bary, attrs)
    with pytest.raises(InvalidInputError, match="bary"):
        interpolate_face_attributes(p2f, bary[..., :2], attrs)
    with pytest.raises(InvalidInputError, match="face_attributes"):
        interpolate_face_attributes(p2f, bary, attrs[:, :2])


def test_shade_lambert_errors_and_per_image_light():
    n = torch.zeros(2, 3, 4, 3)
    n[..., 2] = -1
    albedo = torch.full((2, 3, 4, 3), 0.5)
    mask = torch.ones(2, 3, 4, dtype=torch.bool)
    light = torch.tensor([[0.0, 0, -1], [0.0, 0, 1]])
    img = shade_lambert(n, albedo, light, mask, ambient=0.2, diffuse=0.8)
    assert img.shape == (2, 3, 3, 4)
    torch.testing.assert_close(img[0], torch.full((3, 3, 4), 0.5))
    torch.testing.assert_close(img[1], torch.full((3, 3, 4), 0.1))
    with pytest.raises(InvalidInputError, match="light_directions"):
        shade_lambert(n, albedo, light[:1], mask)
    with pytest.raises(InvalidInputError, match="mask"):
        shade_lambert(n, albedo, light, mask.float())
    with pytest.raises(InvalidInputError, match="ambient"):
        shade_lambert(n, albedo, light, mask, ambient=-1.0)
    with pytest.raises(InvalidInputError, match="background"):
        shade_lambert(n, albedo, light, mask, background=(2.0, 0.0, 0.0))


def test_render_errors():
    cams = PerspectiveCameras(K, None, (H, W))
    mesh = plane()
    with pytest.raises(InvalidInputError, match="colors"):
        render_meshes(mesh, cams, colors=torch.tensor([1.5, 0.0, 0.0]))
    with pytest.raises(InvalidInputError, match="colors"):
        render_meshes(mesh, cams, colors=torch.ones(7, 3))
    with pytest.raises(InvalidInputError, match="light_direction"):
        render_meshes(mesh, cams, light_direction=(0.0, 0.0, 0.0))
    with pytest.raises(InvalidInputError, match="light_direction"):
        render_meshes(mesh, cams, light_direction=torch.ones(2, 3))
    with pytest.raises(InvalidInputError, match="smooth"):
        render_meshes(mesh, cams, smooth="yes")
    with pytest.raises(InvalidInputError, match="background"):
        render_meshes(mesh, cams, background=(1.0, 1.0))
