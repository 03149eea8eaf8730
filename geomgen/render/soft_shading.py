"""Differentiable shading of soft fragments: Lambert, Phong and Gouraud with point/directional lights.

Shape letters: ``M`` meshes, ``B`` images (= cameras, ``B = M x V``
mesh-major), ``H``, ``W`` image size, ``K`` fragments per pixel, ``V`` packed
vertices, ``F`` packed faces.

Model (world frame; ``x`` the fragment's surface point, interpolated from the
face's world vertices with the fragment's barycentrics)::

    n  = unit normal at x, flipped to face the camera (two-sided)
    l  = unit direction from x towards the light          (lights.to_light)
    v  = unit direction from x towards the camera centre
    r  = 2 (n . l) n - l                                  (l mirrored about n)
    ambient  = lights.ambient_color  * material.ambient
    diffuse  = lights.diffuse_color  * material.diffuse  * max(0, n . l)
    specular = lights.specular_color * material.specular * max(0, r . v) ^ shininess   (0 where n . l <= 0)
    colour   = albedo * (ambient + diffuse) + specular

(the Phong reflection model as PyTorch3D's shaders evaluate it; no clamping, so
colours may exceed 1 with bright lights).  ``shading`` chooses where it is
evaluated and what is kept:

* ``"phong"``: per fragment, with ``n`` interpolated from the vertex normals
  by the fragment's barycentrics (``smooth=False``: the face normal);
* ``"lambert"``: the same without the specular term;
* ``"gouraud"``: at the face's three corners (their positions, vertex normals
  and colours), the colours then interpolated with the barycentrics.

**Two-sided**, as :func:`~geomgen.render.render_meshes`: ``n`` is flipped when
the face's right-handed geometric normal points away from the camera (``face_n
. v < 0``), so inner walls and open meshes are lit like outer faces (PyTorch3D
does not flip).  The flip is piecewise constant (no gradient).

``albedo`` is the vertex colour interpolated with the barycentrics
(``vertex_colors``, else the meshes' own colours, else
:data:`~geomgen.render.shading.DEFAULT_COLOR`).

Gradients flow to the vertex positions (through ``x``, the normals, the
barycentrics, and in :func:`render_rgb` the depths and distances of the
blend), the vertex colours, every light and material parameter given as a
tensor that requires grad, ``cameras.world_from_camera`` (through ``v``, the
two-sided test and the fragments) and ``cameras.K`` (through the fragments).

With ``shading="lambert"``, a :class:`~geomgen.render.PointLights` at the
camera centre (``ambient_color = a``, ``diffuse_color = d``, material all
ones), ``faces_per_pixel=1`` and ``sigma -> 0``, :func:`render_rgb` gives
:func:`~geomgen.render.render_meshes`'s headlight image (``ambient=a,
diffuse=d``) on the covered pixels, and a :class:`DirectionalLights` its
``light_direction`` image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from geomgen import checks as V
from geomgen.render.blend import softmax_rgb_blend
from geomgen.render.cameras import PerspectiveCameras
from geomgen.render.lights import DirectionalLights, Material, PointLights
from geomgen.render.shading import DEFAULT_COLOR, _interpolate
from geomgen.render.soft_rasterize import SoftFragments, soft_rasterize_meshes

__all__ = ["shade_soft", "render_rgb", "SHADINGS"]

#: Accepted values of ``shading``.
SHADINGS = ("phong", "lambert", "gouraud")


def _unit(x: torch.Tensor) -> torch.Tensor:
    """``x / |x|`` along the last axis; 0 (and zero gradient) for zero vectors."""
    return x * torch.rsqrt((x * x).sum(-1, keepdim=True).clamp(min=1e-24))


def _vertex_colors(meshes: Any, vertex_colors: Any, fn: str) -> torch.Tensor:
    """``(V, 3)`` packed albedo."""
    nv = int(meshes.verts_packed().shape[0])
    device = meshes.verts_packed().device
    if vertex_colors is None:
        vc = meshes.verts_colors_packed() if callable(getattr(meshes, "verts_colors_packed", None)) else None
        if vc is not None:
            return vc[:, :3]
        return torch.tensor(DEFAULT_COLOR, dtype=meshes.verts_packed().dtype, device=device).expand(nv, 3)
    if isinstance(vertex_colors, (list, tuple)):
        if len(vertex_colors) != len(meshes):
            raise V.fail("vertex_colors", f"must hold one (V_i, 3) tensor per mesh ({len(meshes)}), got "
                         f"{len(vertex_colors)}", fn)
        counts = meshes.num_verts_per_mesh().tolist()
        for i, (c, n) in enumerate(zip(vertex_colors, counts)):
            V.check_tensor(c, f"vertex_colors[{i}]", shape=(n, 3), shape_desc=f"({n}, 3)", floating=True,
                           finite=True, fn=fn)
            V.check_same_device({f"vertex_colors[{i}]": c}, device=device, fn=fn)
        if not vertex_colors:
            return torch.zeros(0, 3, device=device)
        dtype = vertex_colors[0].dtype
        for c in vertex_colors[1:]:
            dtype = torch.promote_types(dtype, c.dtype)
        return torch.cat([c.to(dtype) for c in vertex_colors], 0)
    V.check_tensor(vertex_colors, "vertex_colors", shape=(nv, 3), shape_desc=f"(V, 3) = ({nv}, 3) packed, or a "
                   "list of (V_i, 3)", floating=True, finite=True, fn=fn)
    V.check_same_device({"vertex_colors": vertex_colors}, device=device, fn=fn)
    return vertex_colors


def _coefficients(lights: Any, mat: Material, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    """Per-light ``(ambient, diffuse, specular (N, 3), shininess (N, 1))`` products of lights and material."""
    def c(t: torch.Tensor) -> torch.Tensor:
        return t.to(dtype)
    return (c(lights.ambient_color) * c(mat.ambient), c(lights.diffuse_color) * c(mat.diffuse),
            c(lights.specular_color) * c(mat.specular), c(mat.shininess))


def _reflect(n: torch.Tensor, l_dir: torch.Tensor, v: torch.Tensor, img: torch.Tensor, albedo: torch.Tensor,
             coef: tuple[torch.Tensor, ...], specular: bool) -> torch.Tensor:
    """The Phong model of the module docstring on ``(..., 3)`` inputs, ``img`` of shape ``(...)``."""
    ka, kd, ks, sh = (t if t.shape[0] == 1 else t[img] for t in coef)  # one row broadcasts
    ndotl = (n * l_dir).sum(-1, keepdim=True)
    out = albedo.to(n.dtype) * (ka + kd * ndotl.clamp(min=0))
    if specular:
        rv = 2 * ndotl * (n * v).sum(-1, keepdim=True) - (l_dir * v).sum(-1, keepdim=True)  # r . v
        on = (rv > 0) & (ndotl > 0)
        base = torch.where(on, rv, torch.ones_like(rv))  # 0 ** shininess would give NaN gradients to shininess
        out = out + ks * torch.where(on, base ** sh, torch.zeros_like(rv))
    return out


def shade_soft(
    meshes: Any,
    frags: SoftFragments,
    cameras: PerspectiveCameras,
    lights: PointLights | DirectionalLights,
    *,
    vertex_colors: torch.Tensor | Sequence[torch.Tensor] | None = None,
    shading: str = "phong",
    smooth: bool = True,
    material: Material | None = None,
) -> torch.Tensor:
    """Colour of every fragment of :func:`~geomgen.render.soft_rasterize_meshes` (see the module docstring).

    Args:
        meshes: the :class:`geomgen.structures.Meshes` (``M`` meshes) that
            ``frags`` were rasterized from.
        frags: :class:`~geomgen.render.SoftFragments` ``(B, H, W, K)``.
        cameras: the ``B`` :class:`~geomgen.render.PerspectiveCameras` of
            ``frags`` (their centres give the view direction; gradients flow
            to ``world_from_camera``).
        lights: :class:`~geomgen.render.PointLights` or
            :class:`~geomgen.render.DirectionalLights` with 1 or ``B`` lights
            (world frame).
        vertex_colors: albedo per vertex, ``(V, 3)`` packed or a list of ``M``
            ``(V_i, 3)`` tensors (any finite values; ``[0, 1]`` is usual);
            None: the meshes' vertex colours (RGB of RGBA) if they have some,
            else :data:`~geomgen.render.shading.DEFAULT_COLOR`.
        shading: ``"phong"``, ``"lambert"`` (no specular term) or
            ``"gouraud"`` (lit at the vertices, colours interpolated).
        smooth: interpolate vertex normals (True) or use face normals.
            Vertex normals are the meshes' (``verts_normals_packed()``):
            computed from the positions, so differentiable w.r.t. them,
            unless the Meshes were built with fixed ``verts_normals``.
        material: :class:`~geomgen.render.Material` with 1 or ``B`` rows;
            None = ``Material()`` (reflectances 1, shininess 64).

    Returns:
        ``(B, H, W, K, 3)`` RGB per fragment in the promoted dtype of the
        barycentrics and the vertices, 0 in unused slots; feed it to
        :func:`~geomgen.render.softmax_rgb_blend` with the same ``frags``.

    Raises:
        InvalidInputError: ``frags`` not SoftFragments, ``cameras`` not
            PerspectiveCameras, ``B`` not ``len(cameras)`` or not a multiple of
            ``M``, face indices out of range, bad ``vertex_colors``, ``lights``
            or ``material`` of the wrong type or batch size, an unknown
            ``shading``, devices that differ.
    """
    fn = "shade_soft"
    V.check_meshes(meshes, ["verts_packed", "faces_packed", "verts_normals_packed", "faces_normals_packed"],
                   fn=fn)
    if not isinstance(frags, SoftFragments):
        raise V.fail("frags", f"must be geomgen.render.SoftFragments (from soft_rasterize_meshes), got "
                     f"{type(frags).__name__}", fn)
    if not isinstance(cameras, PerspectiveCameras):
        raise V.fail("cameras", f"must be geomgen.render.PerspectiveCameras, got {type(cameras).__name__}", fn)
    if not isinstance(lights, (PointLights, DirectionalLights)):
        raise V.fail("lights", f"must be geomgen.render.PointLights or DirectionalLights, got "
                     f"{type(lights).__name__}", fn)
    if material is not None and not isinstance(material, Material):
        raise V.fail("material", f"must be geomgen.render.Material or None, got {type(material).__name__}", fn)
    V.check_choice(shading, "shading", SHADINGS, fn=fn)
    V.check_bool(smooth, "smooth", fn=fn)
    p2f = frags.pix_to_face
    B, H, W, K = p2f.shape
    M = len(meshes)
    if B != len(cameras):
        raise V.fail("cameras", f"must hold one camera per image of frags ({B}), got {len(cameras)}", fn)
    if M < 1 or B % M:
        raise V.fail("cameras", f"must hold a positive multiple of the {M} meshes, got {B}", fn)
    for name, obj in (("lights", lights), ("material", material)):
        if obj is not None and len(obj) not in (1, B):
            raise V.fail(name, f"must hold 1 or {B} (one per image) rows, got {len(obj)}", fn)
    verts, faces = meshes.verts_packed(), meshes.faces_packed()
    device = verts.device
    if material is None:
        ones = torch.ones(3, device=device)
        material = Material(ambient=ones, diffuse=ones, specular=ones)
    V.check_same_device({"frags": p2f, "cameras": cameras.K, "lights": lights.ambient_color,
                         "material": material.ambient}, device=device, fn=fn)
    nf = int(faces.shape[0])
    if p2f.numel() and int(p2f.max()) >= nf:
        raise V.fail("frags", f"face indices must be < {nf} (the meshes' faces), got {int(p2f.max())}", fn)
    albedo_v = _vertex_colors(meshes, vertex_colors, fn)
    dtype = torch.promote_types(frags.bary_coords.dtype, verts.dtype)
    out = torch.zeros(B * H * W * K, 3, dtype=dtype, device=device)
    sel = (p2f.reshape(-1) >= 0).nonzero().flatten()
    if sel.numel() == 0:
        return out.view(B, H, W, K, 3) + 0 * frags.bary_coords.sum()  # keep the graph (zero gradients)

    face = p2f.reshape(-1)[sel]
    bary = frags.bary_coords.reshape(-1, 3)[sel].to(dtype)
    img = torch.div(sel, H * W * K, rounding_mode="floor")
    fv = faces[face]  # (P, 3)
    corners = verts.to(dtype)[fv]  # (P, 3, 3) world corners
    x = (bary.unsqueeze(-1) * corners).sum(1)
    centre = cameras.world_from_camera.to(dtype)[img, :3, 3]
    face_n = meshes.faces_normals_packed().to(dtype)[face]
    flip = torch.where((face_n * (centre - x)).sum(-1, keepdim=True) < 0, -1.0, 1.0).to(dtype).detach()
    spec = shading != "lambert"
    coef = _coefficients(lights, material, dtype)
    if shading == "gouraud":
        vn = meshes.verts_normals_packed().to(dtype)[fv] if smooth else face_n.unsqueeze(1).expand(-1, 3, -1)
        img3 = img.unsqueeze(1).expand(-1, 3)
        n3 = _unit(vn) * flip.unsqueeze(1)
        c3 = _reflect(n3, lights.to_light(corners, img3), _unit(centre.unsqueeze(1) - corners), img3,
                      albedo_v[fv], coef, spec)
        col = (bary.unsqueeze(-1) * c3).sum(1)
    else:  # interpolate_face_attributes' kernel, on the used slots only
        n = _interpolate(face, bary, meshes.verts_normals_packed()[faces]) if smooth else face_n
        n = _unit(n.to(dtype)) * flip
        albedo = _interpolate(face, bary, albedo_v[faces])
        col = _reflect(n, lights.to_light(x, img), _unit(centre - x), img, albedo, coef, spec)
    out = out.index_put((sel,), col.to(dtype))
    return out.view(B, H, W, K, 3)


def render_rgb(
    meshes: Any,
    cameras: PerspectiveCameras,
    lights: PointLights | DirectionalLights,
    *,
    vertex_colors: torch.Tensor | Sequence[torch.Tensor] | None = None,
    shading: str = "phong",
    smooth: bool = True,
    material: Material | None = None,
    sigma: float = 1e-4,
    gamma: float = 1e-4,
    blur_radius: float | None = None,
    faces_per_pixel: int = 10,
    image_size: int | tuple[int, int] | None = None,
    background: Sequence[float] | torch.Tensor = (1.0, 1.0, 1.0),
    znear: float = 1e-2,
    zfar: float = math.inf,
    depth_range: tuple[float, float] = (1.0, 100.0),
    cull_backfaces: bool = False,
) -> torch.Tensor:
    """Soft-rasterize, shade and blend: a differentiable RGBA image.

    ``softmax_rgb_blend(shade_soft(meshes, frags, cameras, lights, ...), frags,
    sigma, gamma, background=background)`` with ``frags =
    soft_rasterize_meshes(meshes, cameras, blur_radius=..., faces_per_pixel=...)``.

    Args:
        meshes: :class:`geomgen.structures.Meshes`, ``M`` meshes.
        cameras: ``B = M x V`` :class:`~geomgen.render.PerspectiveCameras`.
        lights: see :func:`shade_soft`.
        vertex_colors: see :func:`shade_soft`.
        shading: see :func:`shade_soft`.
        smooth: see :func:`shade_soft`.
        material: see :func:`shade_soft`.
        sigma: ``> 0`` coverage sharpness, squared NDC units (see
            :func:`~geomgen.render.softmax_rgb_blend`).
        gamma: ``> 0`` depth softmax temperature.
        blur_radius: squared NDC units; None = ``log(1 / 1e-4 - 1) * sigma``
            (coverage below 1e-4 is dropped, PyTorch3D's tutorials' choice).
        faces_per_pixel: ``K >= 1``.
        image_size: see :func:`~geomgen.render.soft_rasterize_meshes`.
        background: RGB (3 numbers or a ``(3,)`` tensor, differentiable).
        znear: near clipping plane of the rasterizer (camera z, ``> 0``).
        zfar: far clipping plane of the rasterizer.
        depth_range: ``(znear, zfar)`` of the blend's depth normalisation
            (PyTorch3D's defaults ``(1, 100)``).
        cull_backfaces: see :func:`~geomgen.render.soft_rasterize_meshes`.

    Returns:
        ``(B, H, W, 4)``: RGB then the soft silhouette (alpha).

    Raises:
        InvalidInputError: as the three functions it calls, naming the argument.
    """
    fn = "render_rgb"
    sigma = V.check_float(sigma, "sigma", positive=True, fn=fn)
    if blur_radius is None:
        blur_radius = math.log(1.0 / 1e-4 - 1.0) * sigma
    if not (isinstance(depth_range, Sequence) and len(depth_range) == 2):
        raise V.fail("depth_range", f"must be a pair (znear, zfar), got {depth_range!r}", fn)
    frags = soft_rasterize_meshes(meshes, cameras, image_size=image_size, blur_radius=blur_radius,
                                  faces_per_pixel=faces_per_pixel, znear=znear, zfar=zfar,
                                  cull_backfaces=cull_backfaces)
    colors = shade_soft(meshes, frags, cameras, lights, vertex_colors=vertex_colors, shading=shading,
                        smooth=smooth, material=material)
    return softmax_rgb_blend(colors, frags, sigma, gamma, background=background, znear=depth_range[0],
                             zfar=depth_range[1])
