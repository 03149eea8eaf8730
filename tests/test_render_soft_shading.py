"""Tests of geomgen.render.shade_soft / render_rgb and the lights (geomgen.render.lights)."""

from __future__ import annotations

import math

import pytest
import torch

from geomgen.errors import InvalidInputError
from geomgen.ops import ico_sphere
from geomgen.render import (
    DirectionalLights,
    Material,
    PerspectiveCameras,
    PointLights,
    interpolate_face_attributes,
    look_at,
    render_meshes,
    render_rgb,
    shade_soft,
    soft_rasterize_meshes,
    softmax_rgb_blend,
)
from geomgen.structures import Meshes

D = torch.float64

FACES3 = torch.tensor([[0, 1, 2], [1, 3, 2], [0, 4, 1]])
VERTS3 = torch.tensor([[-0.6, -0.5, 0.0], [0.5, -0.4, 0.1], [0.0, 0.6, -0.1], [0.7, 0.5, 0.3], [-0.2, -0.9, 0.4]],
                      dtype=D)
COLORS3 = torch.tensor([[0.9, 0.2, 0.1], [0.1, 0.8, 0.3], [0.2, 0.3, 0.9], [0.7, 0.7, 0.2], [0.4, 0.1, 0.6]],
                       dtype=D)
K5 = torch.tensor([18.0, 19.0, 4.1, 3.9, 0.3], dtype=D)


def _k_from(k5):
    zero, one = torch.zeros_like(k5[0]), torch.ones_like(k5[0])
    return torch.stack([torch.stack([k5[0], k5[4], k5[2]]), torch.stack([zero, k5[1], k5[3]]),
                        torch.stack([zero, zero, one])])[None]


def _pose_from(top):
    return torch.cat([top, torch.tensor([[[0.0, 0.0, 0.0, 1.0]]], dtype=top.dtype)], 1)


def _top(eye=(0.3, 0.2, 3.0)):
    return look_at(torch.tensor([eye], dtype=D), torch.tensor([0.0, 0.05, 0.0], dtype=D))[:, :3].clone()


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("shading", ["phong", "lambert", "gouraud"])
def test_gradcheck_point_light(shading):
    """Vertices, vertex colours, pose, K, light location and colours, material, shininess."""

    def fn(v, top, k, col, loc, amb, dif, spc, mspec, shin):
        cams = PerspectiveCameras(_k_from(k), _pose_from(top), (8, 8))
        lights = PointLights(loc, ambient_color=amb, diffuse_color=dif, specular_color=spc)
        mat = Material(specular=mspec, shininess=shin)
        meshes = Meshes([v], [FACES3])
        frags = soft_rasterize_meshes(meshes, cams, blur_radius=0.08, faces_per_pixel=3)
        assert frags.mask.sum() >= 10
        c = shade_soft(meshes, frags, cams, lights, vertex_colors=col, shading=shading, material=mat)
        return c[frags.mask], softmax_rgb_blend(c, frags, 0.01, 0.3, background=(0.2, 0.3, 0.4), zfar=6.0)

    inputs = (VERTS3.clone(), _top(), K5.clone(), COLORS3.clone(), torch.tensor([[1.0, 2.0, 3.5]], dtype=D),
              torch.tensor([0.3, 0.25, 0.2], dtype=D), torch.tensor([0.6, 0.7, 0.5], dtype=D),
              torch.tensor([0.4, 0.3, 0.5], dtype=D), torch.tensor([0.9, 0.8, 1.0], dtype=D),
              torch.tensor([3.0], dtype=D))
    inputs = tuple(x.requires_grad_() for x in inputs)
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("smooth", [True, False])
def test_gradcheck_directional_light_render_rgb(smooth):
    """Directional light direction and colours, through the render_rgb convenience."""

    def fn(v, top, k, col, direction, dif, spc, bg):
        cams = PerspectiveCameras(_k_from(k), _pose_from(top), (7, 7))
        lights = DirectionalLights(direction, diffuse_color=dif, specular_color=spc)
        out = render_rgb(Meshes([v], [FACES3]), cams, lights, vertex_colors=[col], smooth=smooth,
                         material=Material(shininess=4.0), sigma=0.01, gamma=0.3, blur_radius=0.08,
                         faces_per_pixel=3, background=bg, depth_range=(1.0, 6.0))
        assert (out[..., 3] > 0.5).sum() >= 5
        return out

    inputs = (VERTS3.clone(), _top(), torch.tensor([16.0, 16.5, 3.6, 3.4, 0.2], dtype=D), COLORS3.clone(),
              torch.tensor([0.4, -0.5, 1.0], dtype=D), torch.tensor([0.6, 0.7, 0.5], dtype=D),
              torch.tensor([0.4, 0.3, 0.5], dtype=D), torch.tensor([0.2, 0.3, 0.4], dtype=D))
    inputs = tuple(x.requires_grad_() for x in inputs)
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


# --------------------------------------------------------------------------- against the hard renderer


def _sphere_scene(n_views=2, size=24):
    m = ico_sphere(2)
    v = m.verts_packed().to(D)
    v = v * torch.tensor([1.0, 0.8, 0.9], dtype=D)  # not a sphere: vertex normals vary
    col = (v * 0.5 + 0.5).clamp(0, 1)
    meshes = Meshes([v], [m.faces_packed()], verts_colors=[col])
    eyes = torch.tensor([[0.5, 0.8, 3.0], [-2.5, 0.3, 1.5]], dtype=D)[:n_views]
    f = 0.5 * size / math.tan(math.radians(20.0))
    K = torch.tensor([[f, 0.0, size / 2], [0.0, f, size / 2], [0.0, 0.0, 1.0]], dtype=D)
    cams = PerspectiveCameras(K, look_at(eyes), (size, size))
    return meshes, v, col, cams


@pytest.mark.parametrize("light", ["headlight", "directional"])
def test_lambert_matches_hard_render_meshes(light):
    """sigma -> 0, K = 1: render_rgb's Lambert image is render_meshes's on the covered pixels.

    render_meshes's light: ``light_direction`` is the world direction from the surface towards the
    light (None: a headlight at the camera centre), ``ambient + diffuse * max(0, n . l)`` with
    two-sided smooth normals: a PointLights at the camera centre / DirectionalLights(direction)
    with ambient_color = ambient, diffuse_color = diffuse, no specular.
    """
    meshes, v, col, cams = _sphere_scene()
    direction = torch.tensor([0.3, 1.0, 0.6], dtype=D)
    hard = render_meshes(meshes, cams, colors=col, ambient=0.35, diffuse=0.65,
                         light_direction=None if light == "headlight" else direction, background=(0.1, 0.2, 0.3))
    kw = dict(ambient_color=(0.35,) * 3, diffuse_color=(0.65,) * 3, specular_color=(0.0,) * 3)
    lights = PointLights(cams.centers(), **kw) if light == "headlight" else DirectionalLights(direction, **kw)
    soft = render_rgb(meshes, cams, lights, vertex_colors=col, shading="lambert", sigma=1e-10, gamma=1e-6,
                      blur_radius=0.0, faces_per_pixel=1, background=(0.1, 0.2, 0.3))
    rgb, alpha = soft[..., :3], soft[..., 3]
    mask = hard.mask
    assert mask.sum() > 200
    full = alpha > 1 - 1e-6
    assert (full == mask).float().mean() > 0.97  # only pixel centres within ~1e-5 px of an edge differ
    both = full & mask
    torch.testing.assert_close(rgb[both].float(), hard.image.permute(0, 2, 3, 1)[both], atol=2e-5, rtol=0)
    # and the background where nothing is within the (zero) blur radius
    empty = alpha == 0
    assert empty.sum() > 100
    torch.testing.assert_close(rgb[empty], torch.tensor([0.1, 0.2, 0.3], dtype=D).expand(int(empty.sum()), 3))


def test_phong_specular_value_on_a_facing_triangle():
    # camera at the origin looking down +z; a big triangle at z = 2 facing it; light along the view axis
    v = torch.tensor([[-3.0, -3.0, 2.0], [3.0, -3.0, 2.0], [0.0, 3.0, 2.0]], dtype=D)
    meshes = Meshes([v], [torch.tensor([[0, 1, 2]])])
    cams = PerspectiveCameras(torch.tensor([[10.0, 0, 4.0], [0, 10.0, 4.0], [0, 0, 1]], dtype=D), None, (8, 8))
    lights = DirectionalLights((0.0, 0.0, -1.0), ambient_color=(0.1, 0.2, 0.3), diffuse_color=(0.5, 0.4, 0.3),
                               specular_color=(0.3, 0.3, 0.3))
    frags = soft_rasterize_meshes(meshes, cams, faces_per_pixel=1)
    col = torch.tensor([0.8, 0.6, 0.4], dtype=D).expand(3, 3)
    out = shade_soft(meshes, frags, cams, lights, vertex_colors=col, material=Material(shininess=8.0))
    u, w = torch.meshgrid(torch.arange(8, dtype=D) + 0.5, torch.arange(8, dtype=D) + 0.5, indexing="xy")
    x = torch.stack([(u - 4.0) / 10.0 * 2, (w - 4.0) / 10.0 * 2, torch.full_like(u, 2.0)], -1)
    view = -x / x.norm(dim=-1, keepdim=True)
    rv = -view[..., 2]  # r = n = (0, 0, -1), r . v
    expected = (torch.tensor([0.8, 0.6, 0.4], dtype=D) * torch.tensor([0.6, 0.6, 0.6], dtype=D)
                + 0.3 * rv[..., None] ** 8)
    torch.testing.assert_close(out[0, :, :, 0], expected)
    lam = shade_soft(meshes, frags, cams, lights, vertex_colors=col, shading="lambert")
    torch.testing.assert_close(lam[0, :, :, 0], torch.tensor([0.48, 0.36, 0.24], dtype=D).expand(8, 8, 3))
    # Gouraud: the same model at the three corners, interpolated; only the specular term varies here
    gou = shade_soft(meshes, frags, cams, lights, vertex_colors=col, shading="gouraud",
                     material=Material(shininess=8.0))
    spec_corner = 0.3 * (2.0 / v.norm(dim=1)) ** 8  # r . v = -v_z = 2 / |corner| at each corner
    expected = lam[0, :, :, 0] + (frags.bary_coords[0, :, :, 0] * spec_corner).sum(-1, keepdim=True)
    torch.testing.assert_close(gou[0, :, :, 0], expected)


def test_two_sided_back_face_lit_like_front():
    meshes, v, col, cams = _sphere_scene(n_views=1)
    flipped = Meshes([v], [meshes.faces_packed()[:, [0, 2, 1]]])
    lights = PointLights(cams.centers())
    a = render_rgb(meshes, cams, lights, vertex_colors=col, sigma=1e-6, faces_per_pixel=3)
    b = render_rgb(flipped, cams, lights, vertex_colors=col, sigma=1e-6, faces_per_pixel=3)
    torch.testing.assert_close(a, b, atol=1e-8, rtol=1e-6)


def test_interpolate_face_attributes_on_soft_fragments():
    meshes, v, col, cams = _sphere_scene(n_views=1, size=12)
    frags = soft_rasterize_meshes(meshes, cams, blur_radius=0.01, faces_per_pixel=4)
    attrs = col[meshes.faces_packed()]
    out = interpolate_face_attributes(frags.pix_to_face, frags.bary_coords, attrs)
    assert out.shape == (1, 12, 12, 4, 3)
    m = frags.mask
    f, b = frags.pix_to_face[m], frags.bary_coords[m]
    torch.testing.assert_close(out[m], (b[:, :, None] * attrs[f]).sum(1))
    assert (out[~m] == 0).all()


# --------------------------------------------------------------------------- edge cases


def test_background_on_empty_pixels_and_default_colors():
    meshes, v, col, cams = _sphere_scene(n_views=1)
    out = render_rgb(Meshes([v], [meshes.faces_packed()]), cams, PointLights(cams.centers()), sigma=1e-5,
                     background=(0.0, 0.5, 1.0))
    empty = out[..., 3] == 0
    assert empty.any()
    assert (out[empty][:, :3] == torch.tensor([0.0, 0.5, 1.0], dtype=D)).all()
    # default albedo 0.7 * (ambient 0.5 + diffuse 0.3 * n.l) + specular: grey
    covered = out[..., 3] > 0.999
    assert torch.allclose(out[covered][:, 0], out[covered][:, 1]) and torch.allclose(out[covered][:, 1],
                                                                                      out[covered][:, 2])


@pytest.mark.parametrize("sigma", [1e-12, 1e-4])
@pytest.mark.parametrize("shading", ["phong", "gouraud"])
def test_finite_for_edge_on_degenerate_empty_meshes_and_tiny_sigma(sigma, shading):
    verts = torch.tensor([
        [-0.5, -0.5, 2.0], [0.5, -0.4, 2.1], [0.0, 0.5, 1.9],  # ordinary face
        [0.1, -0.3, 1.0], [0.2, -0.6, 2.0], [0.3, -0.9, 3.0],  # collinear (degenerate)
        [0.0, 0.1, 1.0], [0.0, 0.3, 2.0], [0.0, -0.2, 3.0],  # edge-on
        [-0.4, 0.3, -0.5], [0.4, 0.2, 1.0], [0.1, 0.6, 1.2],  # across the camera plane
        [0.3, 0.3, 1.5], [0.3, 0.3, 1.5], [0.3, 0.3, 1.5],  # a point
    ], dtype=D, requires_grad=True)
    faces = torch.arange(15).reshape(5, 3)
    empty_v = torch.zeros(0, 3, dtype=D, requires_grad=True)
    meshes = Meshes([verts, empty_v], [faces, torch.zeros(0, 3, dtype=torch.int64)])
    k = torch.tensor([[10.0, 0, 6.0], [0, 10.0, 5.0], [0, 0, 1]], dtype=D, requires_grad=True)
    top = torch.eye(4, dtype=D)[None, :3].expand(2, 3, 4).clone().requires_grad_()
    cams = PerspectiveCameras(k, torch.cat([top, torch.tensor([[[0, 0, 0, 1.0]]], dtype=D).expand(2, 1, 4)], 1),
                              (10, 12))
    col = torch.rand(15, 3, dtype=D, requires_grad=True)
    loc = torch.tensor([0.0, 0.0, 0.0], dtype=D, requires_grad=True)  # at the camera: l = v on the surface
    shin = torch.tensor(7.0, dtype=D, requires_grad=True)
    out = render_rgb(meshes, cams, PointLights(loc), vertex_colors=[col, torch.zeros(0, 3, dtype=D)],
                     shading=shading, material=Material(shininess=shin), sigma=sigma, gamma=1e-4,
                     blur_radius=0.05, faces_per_pixel=4)
    assert torch.isfinite(out).all()
    assert (out[1, ..., 3] == 0).all() and (out[1, ..., :3] == 1).all()  # the empty mesh's image
    out.sum().backward()
    for t in (verts, k, top, col, loc, shin):
        assert t.grad is not None and torch.isfinite(t.grad).all()
    assert col.grad.abs().sum() > 0 and verts.grad.abs().sum() > 0


def test_only_empty_meshes():
    ve = torch.zeros(0, 3, dtype=D, requires_grad=True)
    meshes = Meshes([ve], [torch.zeros(0, 3, dtype=torch.int64)])
    cams = PerspectiveCameras(torch.tensor([[5.0, 0, 3], [0, 5.0, 3], [0, 0, 1]], dtype=D), None, (6, 6))
    out = render_rgb(meshes, cams, DirectionalLights(), background=(0.2, 0.2, 0.2))
    assert torch.isfinite(out).all() and (out[..., :3] == 0.2).all() and (out[..., 3] == 0).all()


# --------------------------------------------------------------------------- bad arguments


def _bad(match, f, *a, **kw):
    with pytest.raises(InvalidInputError, match=match):
        f(*a, **kw)


def test_lights_and_material_validation():
    _bad("'location'", PointLights, (1.0, 2.0))
    _bad("'location'", PointLights, torch.tensor([[0, 0, 1]]))  # integer tensor
    _bad("'location'", PointLights, (0.0, float("nan"), 1.0))
    _bad("'ambient_color'", PointLights, ambient_color=(-0.1, 0.2, 0.3))
    _bad("'diffuse_color'", PointLights, torch.zeros(3, 3), diffuse_color=torch.zeros(2, 3))
    _bad("'specular_color'", DirectionalLights, specular_color="red")
    _bad("'direction'", DirectionalLights, (0.0, 0.0, 0.0))
    _bad("'shininess'", Material, shininess=0.0)
    _bad("'shininess'", Material, shininess=torch.tensor([-1.0]))
    _bad("'specular'", Material, specular=(1.0, 1.0))
    lights = PointLights(torch.zeros(4, 3))
    assert len(lights) == 4 and lights.location.shape == (4, 3) and lights.ambient_color.shape == (1, 3)
    assert len(Material(diffuse=torch.ones(2, 3))) == 2


def test_shade_soft_validation():
    meshes, v, col, cams = _sphere_scene(n_views=2, size=8)
    frags = soft_rasterize_meshes(meshes, cams, faces_per_pixel=2)
    L = PointLights()
    _bad("'frags'", shade_soft, meshes, (frags.pix_to_face,), cams, L)
    _bad("'meshes'", shade_soft, "mesh", frags, cams, L)
    _bad("'cameras'", shade_soft, meshes, frags, cams[:1], L)
    _bad("'cameras'", shade_soft, meshes, frags, "cams", L)
    _bad("'lights'", shade_soft, meshes, frags, cams, None)
    _bad("'lights'", shade_soft, meshes, frags, cams, PointLights(torch.zeros(3, 3)))
    _bad("'material'", shade_soft, meshes, frags, cams, L, material={"shininess": 3})
    _bad("'material'", shade_soft, meshes, frags, cams, L, material=Material(ambient=torch.ones(3, 3)))
    _bad("'shading'", shade_soft, meshes, frags, cams, L, shading="toon")
    _bad("'smooth'", shade_soft, meshes, frags, cams, L, smooth=1)
    _bad("'vertex_colors'", shade_soft, meshes, frags, cams, L, vertex_colors=col[:-1])
    _bad("'vertex_colors'", shade_soft, meshes, frags, cams, L, vertex_colors=[col, col])
    _bad(r"'vertex_colors\[0\]'", shade_soft, meshes, frags, cams, L, vertex_colors=[col[:, :2]])
    _bad("'vertex_colors'", shade_soft, meshes, frags, cams, L, vertex_colors=col.long())
    _bad("'sigma'", render_rgb, meshes, cams, L, sigma=0.0)
    _bad("'gamma'", render_rgb, meshes, cams, L, gamma=-1.0)
    _bad("'depth_range'", render_rgb, meshes, cams, L, depth_range=1.0)
    _bad("'faces_per_pixel'", render_rgb, meshes, cams, L, faces_per_pixel=0)
    _bad("'background'", render_rgb, meshes, cams, L, background=(1.0, 1.0))


def test_per_image_lights_and_materials_match_single_renders():
    meshes, v, col, cams = _sphere_scene(n_views=2, size=10)
    two = Meshes([v, v * 0.8], [meshes.faces_packed()] * 2)
    cams4 = PerspectiveCameras(cams.K.repeat(2, 1, 1), cams.world_from_camera.repeat(2, 1, 1), (10, 10))
    locs = torch.tensor([[0.0, 3.0, 2.0], [2.0, 0.0, 2.0], [-2.0, 1.0, 1.0], [0.0, -3.0, 3.0]], dtype=D)
    dif = torch.rand(4, 3, dtype=D)
    shin = torch.tensor([2.0, 8.0, 16.0, 64.0], dtype=D)
    cols = [col, col.flip(1)]
    kw = dict(sigma=1e-5, gamma=1e-3, faces_per_pixel=3)
    batched = render_rgb(two, cams4, PointLights(locs, diffuse_color=dif), vertex_colors=cols,
                         material=Material(shininess=shin), **kw)
    for b in range(4):
        one = render_rgb(Meshes([two.verts_list()[b // 2]], [two.faces_list()[b // 2]]), cams4[b],
                         PointLights(locs[b], diffuse_color=dif[b]), vertex_colors=cols[b // 2],
                         material=Material(shininess=float(shin[b])), **kw)
        torch.testing.assert_close(batched[b], one[0])


def test_fit_vertex_colors_and_light_to_rgb_renders():
    """Gradient descent through render_rgb recovers vertex colours and a light's diffuse colour (float32)."""
    torch.manual_seed(0)
    m = ico_sphere(1)
    v, f = m.verts_packed(), m.faces_packed()
    eyes = torch.tensor([[0.0, 0.5, 2.5], [2.5, 0.5, 0.0], [0.0, 0.5, -2.5], [-2.5, 0.5, 0.0]])
    K = torch.tensor([[20.0, 0, 8.0], [0, 20.0, 8.0], [0, 0, 1]])
    cams = PerspectiveCameras(K, look_at(eyes), (16, 16))
    meshes = Meshes([v], [f])
    target_col = torch.rand(v.shape[0], 3)
    kw = dict(sigma=1e-4, gamma=1e-3, faces_per_pixel=4)
    target = render_rgb(meshes, cams, PointLights(cams.centers(), diffuse_color=(0.6, 0.5, 0.4)),
                        vertex_colors=target_col, **kw)
    col = torch.full_like(target_col, 0.5).requires_grad_()
    dif = torch.tensor([0.3, 0.3, 0.3], requires_grad=True)
    opt = torch.optim.Adam([col, dif], lr=0.05)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        out = render_rgb(meshes, cams, PointLights(cams.centers(), diffuse_color=dif), vertex_colors=col, **kw)
        loss = ((out - target) ** 2).mean()
        loss.backward()
        opt.step()
        with torch.no_grad():
            dif.clamp_(min=0)
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0], losses[::10]


def test_gradcheck_camera_eye_through_look_at():
    def fn(eye, loc):
        pose = look_at(eye, torch.tensor([0.0, 0.05, 0.0], dtype=D))
        cams = PerspectiveCameras(_k_from(K5), pose, (8, 8))
        return render_rgb(Meshes([VERTS3], [FACES3]), cams, PointLights(loc), vertex_colors=COLORS3,
                          material=Material(shininess=4.0), sigma=0.01, gamma=0.3, blur_radius=0.08,
                          faces_per_pixel=3, depth_range=(1.0, 6.0))

    inputs = (torch.tensor([[0.3, 0.2, 3.0]], dtype=D, requires_grad=True),
              torch.tensor([0.5, 1.0, 2.0], dtype=D, requires_grad=True))
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)
