"""Attribute interpolation and Lambert shading on top of :func:`rasterize_meshes`.

Shape letters: ``M`` meshes, ``B`` images, ``H``, ``W`` image size, ``F``
packed faces, ``D`` attribute channels.

Lighting model (per covered pixel)::

    image = clamp(albedo * (ambient + diffuse * max(0, n . l)), 0, 1)

with ``n`` the unit world-frame normal made **two-sided**: it is flipped when
the face it belongs to is seen from its back (its right-handed geometric
normal points away from the camera), as OpenGL's two-sided lighting does, so
open meshes and inner walls are lit like outer ones.  ``l`` is the unit
direction from the surface towards the light: by default a *headlight* (a
point light at the camera centre: ``l`` points back along each pixel's ray),
or one fixed world direction per image.  Smooth shading interpolates vertex
normals with the perspective-correct barycentrics (a smooth normal may then
point slightly away from the camera near silhouettes: ``n . l`` is clamped
at 0); flat shading uses the face normals.  Background pixels get the
background colour, normals and depth 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch

from geomgen import checks as V
from geomgen.render.cameras import PerspectiveCameras
from geomgen.render.rasterize import Fragments, rasterize_meshes

__all__ = ["RenderResult", "render_meshes", "interpolate_face_attributes", "shade_lambert", "DEFAULT_COLOR"]

#: Albedo of meshes without colours when ``colors`` is None.
DEFAULT_COLOR = (0.7, 0.7, 0.7)


class RenderResult(NamedTuple):
    """Output of :func:`render_meshes` for ``B`` images.

    Attributes:
        image: ``(B, 3, H, W)`` float32 RGB in ``[0, 1]``.
        depth: ``(B, H, W)`` camera-frame z-depth, 0 on background.
        mask: ``(B, H, W)`` bool silhouette.
        normals: ``(B, H, W, 3)`` unit world-frame shading normals, flipped to
            face the camera (two-sided), 0 on background.
        fragments: the :class:`~geomgen.render.Fragments` they came from.
    """

    image: torch.Tensor
    depth: torch.Tensor
    mask: torch.Tensor
    normals: torch.Tensor
    fragments: Fragments


def interpolate_face_attributes(
    pix_to_face: torch.Tensor, bary: torch.Tensor, face_attributes: torch.Tensor
) -> torch.Tensor:
    """Per-pixel (or per-fragment) attributes ``sum_i bary_i * face_attributes[face, i]``.

    Works on the hard fragments of :func:`rasterize_meshes` (``(B, H, W)``)
    and on the ``K`` slots of :func:`~geomgen.render.soft_rasterize_meshes`
    (``(B, H, W, K)``, ``pix_to_face`` and ``bary_coords`` of
    :class:`~geomgen.render.SoftFragments`).

    Args:
        pix_to_face: ``(B, H, W)`` or ``(B, H, W, K)`` int64 packed face
            indices, ``-1`` = background / unused slot.
        bary: ``(*pix_to_face.shape, 3)`` barycentric coordinates.
        face_attributes: ``(F, 3, D)`` attributes of each face's three
            vertices (e.g. ``verts_normals_packed()[faces_packed()]``).

    Returns:
        ``(*pix_to_face.shape, D)`` in the promoted dtype of ``bary`` and the
        attributes, 0 on background and unused slots.  Differentiable w.r.t.
        ``bary`` and ``face_attributes``.

    Raises:
        InvalidInputError: bad shapes/dtypes/devices, face indices out of range.
    """
    fn = "interpolate_face_attributes"
    V.check_tensor(pix_to_face, "pix_to_face", ndim=(3, 4), shape_desc="(B, H, W) or (B, H, W, K)", integer=True,
                   fn=fn)
    V.check_tensor(bary, "bary", shape=(*pix_to_face.shape, 3), shape_desc="(*pix_to_face.shape, 3)",
                   floating=True, fn=fn)
    V.check_tensor(face_attributes, "face_attributes", ndim=3, shape_desc="(F, 3, D)", floating=True, fn=fn)
    if face_attributes.shape[1] != 3:
        raise V.fail("face_attributes", f"must have shape (F, 3, D), got {tuple(face_attributes.shape)}", fn)
    V.check_same_device({"pix_to_face": pix_to_face, "bary": bary, "face_attributes": face_attributes}, fn=fn)
    F = face_attributes.shape[0]
    if pix_to_face.numel():
        lo, hi = int(pix_to_face.min()), int(pix_to_face.max())
        if lo < -1 or hi >= F:
            raise V.fail("pix_to_face", f"values must lie in [-1, {F - 1}], got {lo if lo < -1 else hi}", fn)
    return _interpolate(pix_to_face, bary, face_attributes)


def _interpolate(pix_to_face: torch.Tensor, bary: torch.Tensor, face_attributes: torch.Tensor) -> torch.Tensor:
    """:func:`interpolate_face_attributes` without checks, for any shape ``(*S)`` of ``pix_to_face``."""
    dtype = torch.promote_types(bary.dtype, face_attributes.dtype)
    mask = pix_to_face >= 0
    idx = pix_to_face.clamp(min=0)
    vals = face_attributes.to(dtype)[idx]  # (*S, 3, D)
    out = (bary.to(dtype).unsqueeze(-1) * vals).sum(dim=-2)
    return out * mask.unsqueeze(-1).to(dtype)


def shade_lambert(
    normals: torch.Tensor,
    albedo: torch.Tensor,
    light_directions: torch.Tensor,
    mask: torch.Tensor,
    *,
    ambient: float = 0.35,
    diffuse: float = 0.65,
    background: float | Sequence[float] | torch.Tensor = (1.0, 1.0, 1.0),
) -> torch.Tensor:
    """Lambert shading ``clamp(albedo * (ambient + diffuse * max(0, n . l)), 0, 1)``.

    Args:
        normals: ``(B, H, W, 3)`` unit normals ``n``.
        albedo: ``(B, H, W, 3)`` RGB albedo in ``[0, 1]``.
        light_directions: unit directions ``l`` from the surface towards the
            light, ``(B, H, W, 3)`` per pixel or ``(B, 3)`` per image.
        mask: ``(B, H, W)`` bool; pixels outside get ``background``.
        ambient: non-negative weights.
        diffuse: non-negative weights.
        background: RGB (3 numbers) or one grey level, in ``[0, 1]``.

    Returns:
        ``(B, 3, H, W)`` float32 image in ``[0, 1]``.  Differentiable w.r.t.
        normals, albedo and light directions (inside the clamps).
    """
    fn = "shade_lambert"
    V.check_tensor(normals, "normals", ndim=4, shape_desc="(B, H, W, 3)", floating=True, fn=fn)
    if normals.shape[-1] != 3:
        raise V.fail("normals", f"must have shape (B, H, W, 3), got {tuple(normals.shape)}", fn)
    V.check_tensor(albedo, "albedo", shape=tuple(normals.shape), shape_desc="(B, H, W, 3)", floating=True, fn=fn)
    V.check_tensor(mask, "mask", shape=tuple(normals.shape[:3]), shape_desc="(B, H, W)", dtype=torch.bool, fn=fn)
    V.check_tensor(light_directions, "light_directions", ndim=(2, 4), floating=True, fn=fn)
    B = normals.shape[0]
    if light_directions.dim() == 2:
        if tuple(light_directions.shape) != (B, 3):
            raise V.fail("light_directions", f"must have shape ({B}, 3) or (B, H, W, 3), got "
                         f"{tuple(light_directions.shape)}", fn)
        light_directions = light_directions[:, None, None, :]
    elif tuple(light_directions.shape) != tuple(normals.shape):
        raise V.fail("light_directions", f"must have shape {tuple(normals.shape)} or ({B}, 3), got "
                     f"{tuple(light_directions.shape)}", fn)
    V.check_same_device({"normals": normals, "albedo": albedo, "light_directions": light_directions,
                         "mask": mask}, fn=fn)
    amb = V.check_float(ambient, "ambient", nonnegative=True, fn=fn)
    dif = V.check_float(diffuse, "diffuse", nonnegative=True, fn=fn)
    bg = _rgb(background, "background", fn, normals.device)
    lit = _lambert(normals, albedo, light_directions.expand_as(normals), amb, dif)
    img = torch.where(mask.unsqueeze(-1), lit, bg.expand_as(lit))
    return img.permute(0, 3, 1, 2).contiguous()


def _lambert(n: torch.Tensor, albedo: torch.Tensor, light: torch.Tensor, ambient: float,
             diffuse: float) -> torch.Tensor:
    """``clamp(albedo * (ambient + diffuse * max(0, n . l)), 0, 1)`` as float32 (``(..., 3)`` inputs)."""
    ndotl = (n * light.to(n.dtype)).sum(-1).clamp(min=0)
    return (albedo.to(n.dtype) * (ambient + diffuse * ndotl).unsqueeze(-1)).clamp(0.0, 1.0).to(torch.float32)


def _rgb(value: Any, name: str, fn: str, device: torch.device) -> torch.Tensor:
    """A colour (3 numbers or one grey level) in [0, 1] as a (3,) float32 tensor."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = (float(value),) * 3
    try:
        t = torch.as_tensor(value.detach() if isinstance(value, torch.Tensor) else value, dtype=torch.float32)
    except Exception:
        raise V.fail(name, f"must be 3 numbers in [0, 1] (or one grey level), got {value!r}", fn) from None
    t = t.reshape(-1) if t.dim() == 0 else t
    if t.numel() == 1:
        t = t.expand(3)
    if tuple(t.shape) != (3,):
        raise V.fail(name, f"must be 3 numbers in [0, 1] (or one grey level), got shape {tuple(t.shape)}", fn)
    if not bool(((t >= 0) & (t <= 1)).all()):
        raise V.fail(name, f"must lie in [0, 1], got {t.tolist()}", fn)
    return t.to(device)


def _face_colors(meshes: Any, colors: Any, M: int, fn: str, dtype: torch.dtype,
                 device: torch.device) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(per-mesh (M, 3) colours, or None) and (per-face-vertex (F, 3, 3) colours, or None)."""
    if colors is None:
        vc = meshes.verts_colors_packed() if callable(getattr(meshes, "verts_colors_packed", None)) else None
        if vc is not None:
            return None, vc[:, :3].to(dtype)[meshes.faces_packed()]
        return torch.tensor(DEFAULT_COLOR, dtype=dtype, device=device).expand(M, 3), None
    V.check_tensor(colors, "colors", ndim=(1, 2), shape_desc="(3,), (M, 3) or (sum(V), 3)", floating=True, fn=fn)
    if colors.device != device:
        raise V.fail("colors", f"must be on the meshes' device {device}, got {colors.device}", fn)
    V.check_finite(colors, "colors", fn=fn)
    if bool(((colors < 0) | (colors > 1)).any()):
        raise V.fail("colors", "must lie in [0, 1]", fn)
    c = colors.to(dtype)
    nv = int(meshes.verts_packed().shape[0])
    if c.dim() == 1:
        if c.shape[0] != 3:
            raise V.fail("colors", f"must have shape (3,), (M, 3) or (sum(V), 3), got {tuple(c.shape)}", fn)
        return c.expand(M, 3), None
    if c.shape[1] != 3 or c.shape[0] not in (nv, M):
        raise V.fail("colors", f"must have shape (3,), ({M}, 3) per mesh or ({nv}, 3) per packed vertex, "
                     f"got {tuple(c.shape)}", fn)
    if c.shape[0] == nv:
        return None, c[meshes.faces_packed()]
    return c, None


def render_meshes(
    meshes: Any,
    cameras: PerspectiveCameras,
    *,
    colors: torch.Tensor | None = None,
    light_direction: torch.Tensor | Sequence[float] | None = None,
    ambient: float = 0.35,
    diffuse: float = 0.65,
    background: float | Sequence[float] | torch.Tensor = (1.0, 1.0, 1.0),
    smooth: bool = True,
    znear: float = 1e-2,
    zfar: float = math.inf,
    cull_backfaces: bool = False,
    backend: str = "auto",
) -> RenderResult:
    """Render depth, silhouette, normals and a Lambert-shaded image.

    Args:
        meshes: :class:`geomgen.structures.Meshes` of ``M`` meshes.
        cameras: ``B = M * V`` cameras, mesh-major (see :func:`rasterize_meshes`).
        colors: albedo in ``[0, 1]``: ``(3,)`` for every mesh, ``(M, 3)`` per
            mesh, or ``(sum(V), 3)`` per packed vertex (interpolated; chosen
            when the row count equals the number of vertices).  None: the
            meshes' vertex colours if they have some (RGB of RGBA), else
            :data:`DEFAULT_COLOR`.
        light_direction: None = headlight; else a world direction from the
            surface towards the light, ``(3,)`` or ``(B, 3)`` (normalised here).
        ambient: Lambert weights (>= 0).
        diffuse: Lambert weights (>= 0).
        background: background RGB in ``[0, 1]`` (or one grey level).
        smooth: interpolate vertex normals (True) or use face normals.
        znear: see :func:`rasterize_meshes`.
        zfar: see :func:`rasterize_meshes`.
        cull_backfaces: see :func:`rasterize_meshes`.
        backend: see :func:`rasterize_meshes`.

    Returns:
        :class:`RenderResult`; see the module docstring for the model.  The
        image is not differentiable w.r.t. vertex positions (rasterization is
        discrete).

    Raises:
        InvalidInputError: bad arguments (see :func:`rasterize_meshes`), bad
            colours, a zero light direction.
    """
    fn = "render_meshes"
    V.check_bool(smooth, "smooth", fn=fn)
    amb = V.check_float(ambient, "ambient", nonnegative=True, fn=fn)
    dif = V.check_float(diffuse, "diffuse", nonnegative=True, fn=fn)
    frags = rasterize_meshes(meshes, cameras, znear=znear, zfar=zfar, cull_backfaces=cull_backfaces,
                             backend=backend)  # validates meshes and cameras first
    M, B = len(meshes), len(cameras)
    H, W = cameras.image_size
    device = frags.zbuf.device
    dtype = frags.zbuf.dtype
    per_mesh, per_vertex = _face_colors(meshes, colors, M, fn, dtype, device)
    bg = _rgb(background, "background", fn, device)
    light = None if light_direction is None else _light(light_direction, B, fn, dtype, device)
    mask = frags.mask

    # everything below is computed for the covered pixels only
    sel = mask.reshape(-1).nonzero().squeeze(1)
    face = frags.pix_to_face.reshape(-1)[sel]
    bary = frags.bary.reshape(-1, 3)[sel]
    img = torch.div(sel, H * W, rounding_mode="floor")
    rem = sel - img * (H * W)
    v = torch.div(rem, W, rounding_mode="floor")
    u = rem - v * W
    # unit directions from the surface points back to the camera (against each pixel's ray), world frame
    K = cameras.K.to(dtype)[img]
    R = cameras.world_from_camera.to(dtype)[img, :3, :3]
    yn = (v.to(dtype) + 0.5 - K[:, 1, 2]) / K[:, 1, 1]
    xn = (u.to(dtype) + 0.5 - K[:, 0, 2] - K[:, 0, 1] * yn) / K[:, 0, 0]
    ray = torch.stack([xn, yn, torch.ones_like(xn)], dim=1)
    to_cam = -(R @ ray.unsqueeze(2)).squeeze(2)
    to_cam = to_cam / to_cam.norm(dim=1, keepdim=True)

    faces = meshes.faces_packed()
    face_n = meshes.faces_normals_packed().to(dtype)[face]  # geometric normals of the visible faces
    if smooth:
        vn = meshes.verts_normals_packed().to(dtype)[faces[face]]  # (P, 3, 3)
        n = (bary.unsqueeze(2) * vn).sum(1)
        length = n.norm(dim=1, keepdim=True)
        n = torch.where(length > 1e-12, n / length.clamp(min=1e-12), face_n)
    else:
        n = face_n
    facing = torch.where((face_n * to_cam).sum(1) < 0, -1.0, 1.0).to(dtype)  # two-sided
    n = n * facing.unsqueeze(1)
    l_dir = to_cam if light is None else light[img]
    if per_vertex is not None:
        albedo = (bary.unsqueeze(2) * per_vertex[face]).sum(1)
    else:
        assert per_mesh is not None
        albedo = per_mesh[torch.div(img, B // M, rounding_mode="floor")]
    lit = _lambert(n, albedo, l_dir, amb, dif)

    image = bg.reshape(1, 3).expand(B * H * W, 3).clone()
    image[sel] = lit
    normals = torch.zeros(B * H * W, 3, dtype=dtype, device=device)
    normals[sel] = n
    image = image.reshape(B, H, W, 3).permute(0, 3, 1, 2).contiguous()
    return RenderResult(image, frags.zbuf, mask, normals.reshape(B, H, W, 3), frags)


def _light(light_direction: Any, B: int, fn: str, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``(B, 3)`` unit light directions from a ``(3,)`` or ``(B, 3)`` argument."""
    ld = light_direction if isinstance(light_direction, torch.Tensor) else torch.as_tensor(
        light_direction, dtype=dtype)
    V.check_tensor(ld, "light_direction", ndim=(1, 2), shape_desc="(3,) or (B, 3)", floating=True, fn=fn)
    ld = ld.to(device, dtype)
    if ld.dim() == 1:
        ld = ld.unsqueeze(0).expand(B, -1)
    if tuple(ld.shape) != (B, 3):
        raise V.fail("light_direction", f"must have shape (3,) or ({B}, 3), got {tuple(ld.shape)}", fn)
    V.check_finite(ld, "light_direction", fn=fn)
    ln = ld.norm(dim=1, keepdim=True)
    if bool((ln <= 0).any()):
        raise V.fail("light_direction", "must be non-zero", fn)
    return ld / ln
