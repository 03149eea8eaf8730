"""Fit a mesh to calibrated multi-view silhouettes by differentiable rendering.

:func:`fit_mesh_to_silhouettes` deforms a starting mesh (an ico-sphere by
default) so that its soft silhouettes (:func:`geomgen.render.soft_rasterize_meshes`
+ :func:`geomgen.render.soft_silhouette`) match ``V`` masks seen by ``V``
calibrated cameras, the loop of PyTorch3D's "deform a sphere to silhouettes"
tutorial: Adam on per-vertex offsets, minimising

``w_silhouette * mean((alpha - mask)^2) + w_edge * mesh_edge_loss
+ w_laplacian * mesh_laplacian_smoothing + w_normal * mesh_normal_consistency``.

It lives in :mod:`geomgen.train` because it needs the renderer, the losses and
the ops at once (one floor above them); ``geomgen fit`` is its command line.

Shape letters: ``V`` views, ``H``, ``W`` image height and width, ``N``
vertices of the mesh.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from geomgen import checks as C
from geomgen.losses import mesh_edge_loss, mesh_laplacian_smoothing, mesh_normal_consistency
from geomgen.ops import ico_sphere
from geomgen.render import PerspectiveCameras, render_meshes, soft_rasterize_meshes, soft_silhouette
from geomgen.structures import Meshes
from geomgen.train.task import NonFiniteLossError

__all__ = ["FitResult", "fit_mesh_to_silhouettes", "silhouette_iou"]

#: The loss terms recorded per iteration, in :attr:`FitResult.losses`.
LOSS_TERMS = ("total", "silhouette", "edge", "laplacian", "normal")


@dataclass
class FitResult:
    """What :func:`fit_mesh_to_silhouettes` returns.

    Attributes:
        mesh: the fitted mesh, a detached :class:`~geomgen.structures.Meshes`
            of one mesh (``N`` vertices) on the masks' device.
        init: the starting mesh (same topology).
        losses: per term (``"total"``, ``"silhouette"``, ``"edge"``,
            ``"laplacian"``, ``"normal"``; unweighted, the total weighted), one
            float per iteration.
        iou_init: mean over views of the IoU between the hard silhouette of
            ``init`` and the masks thresholded at 0.5.
        iou: the same for the fitted mesh.
    """

    mesh: Meshes
    init: Meshes
    losses: dict[str, list[float]] = field(default_factory=dict)
    iou_init: float = float("nan")
    iou: float = float("nan")


def _check_masks(masks: Any, fn: str) -> torch.Tensor:
    m = C.check_tensor(masks, "masks", ndim=3, shape_desc="(V, H, W)", fn=fn)
    if m.dtype == torch.bool:
        m = m.float()
    if not m.is_floating_point():
        raise C.fail("masks", f"must be a bool or floating (V, H, W) tensor, got dtype {m.dtype}", fn)
    C.check_finite(m, "masks", fn=fn)
    if m.numel() and (bool((m < 0).any()) or bool((m > 1).any())):
        raise C.fail("masks", "must hold values in [0, 1]", fn)
    if 0 in m.shape:
        raise C.fail("masks", f"must be non-empty, got shape {tuple(m.shape)}", fn)
    empty = (m > 0.5).flatten(1).sum(1) == 0
    if bool(empty.any()):
        i = int(torch.nonzero(empty)[0])
        raise C.fail("masks", f"mask {i} is empty (no pixel > 0.5): every view must see the object", fn)
    return m


def _check_cameras(cameras: Any, masks: torch.Tensor, fn: str) -> PerspectiveCameras:
    if not isinstance(cameras, PerspectiveCameras):
        raise C.fail("cameras", f"must be PerspectiveCameras, got {type(cameras).__name__}", fn)
    if len(cameras) != masks.shape[0]:
        raise C.fail("cameras", f"has {len(cameras)} cameras but there are {masks.shape[0]} masks "
                     "(one camera per mask)", fn)
    if tuple(cameras.image_size) != tuple(masks.shape[1:]):
        raise C.fail("cameras", f"image_size {tuple(cameras.image_size)} differs from the masks' (H, W) "
                     f"{tuple(masks.shape[1:])}", fn)
    return cameras.to(device=masks.device)


def _init_mesh(init: Any, level: int, radius: float, center: Any, device: torch.device, fn: str) -> Meshes:
    if isinstance(init, Meshes):
        if len(init) != 1:
            raise C.fail("init", f"must hold one mesh, got {len(init)}", fn)
        if int(init.num_faces_per_mesh()[0]) == 0:
            raise C.fail("init", "has no faces", fn)
        return Meshes([init.verts_list()[0].detach().to(device, torch.float32)],
                      [init.faces_list()[0].to(device)])
    if init != "sphere":
        raise C.fail("init", f"must be 'sphere' or a Meshes, got {init!r}", fn)
    level = C.check_int(level, "level", min_value=0, max_value=6, fn=fn)
    radius = C.check_float(radius, "radius", gt=0.0, finite=True, fn=fn)
    c = torch.zeros(3) if center is None else torch.as_tensor(center, dtype=torch.float32)
    if tuple(c.shape) != (3,) or not bool(torch.isfinite(c).all()):
        raise C.fail("center", f"must be 3 finite numbers, got {center!r}", fn)
    sphere = ico_sphere(level, device=device)
    return Meshes([sphere.verts_list()[0] * radius + c.to(device)], sphere.faces_list())


def silhouette_iou(mesh: Meshes, cameras: PerspectiveCameras, masks: torch.Tensor) -> torch.Tensor:
    """IoU of the hard silhouettes of one mesh with ``V`` masks.

    Args:
        mesh: :class:`~geomgen.structures.Meshes` of one mesh.
        cameras: ``V`` cameras of the masks' image size.
        masks: ``(V, H, W)`` bool or floats (thresholded at 0.5).

    Returns:
        ``(V,)`` float32 IoU per view (1 where both are empty).
    """
    with torch.no_grad():
        drawn = render_meshes(mesh, cameras).mask
    target = masks > 0.5 if masks.dtype != torch.bool else masks
    inter = (drawn & target).flatten(1).sum(1).float()
    union = (drawn | target).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def fit_mesh_to_silhouettes(
    masks: torch.Tensor,
    cameras: PerspectiveCameras,
    *,
    init: str | Meshes = "sphere",
    level: int = 4,
    radius: float = 0.6,
    center: Any = None,
    iterations: int = 300,
    lr: float = 0.01,
    sigma: float = 1e-4,
    faces_per_pixel: int = 20,
    blur_radius: float | None = None,
    w_silhouette: float = 1.0,
    w_edge: float = 1.0,
    w_laplacian: float = 1.0,
    w_normal: float = 0.01,
    views_per_iteration: int | None = None,
    progress: bool = True,
    seed: int = 0,
    callback: Callable[[int, dict[str, float]], None] | None = None,
) -> FitResult:
    """Deform a mesh so that its soft silhouettes match ``V`` calibrated masks.

    Args:
        masks: ``(V, H, W)`` bool or floats in ``[0, 1]`` (1 = object); no
            mask may be empty.
        cameras: ``V`` :class:`~geomgen.render.PerspectiveCameras` with
            ``image_size == (H, W)``, mask ``i`` seen by camera ``i``.
        init: ``"sphere"`` (an ico-sphere of ``level``, ``radius``, centred
            at ``center``) or a :class:`~geomgen.structures.Meshes` of one
            mesh to start from (its topology is kept).
        level: ico-sphere subdivision level, ``0..6`` (4: 2562 vertices).
        radius: ico-sphere radius, ``> 0``.
        center: ``(3,)`` ico-sphere centre; None: the origin.
        iterations: Adam steps, ``>= 0``.
        lr: Adam learning rate on the vertex offsets, ``> 0``.
        sigma: sharpness of :func:`~geomgen.render.soft_silhouette`, ``> 0``
            (squared NDC units).
        faces_per_pixel: faces blended per pixel, ``>= 1``.
        blur_radius: ``>= 0``; None: ``log(1 / 1e-4 - 1) * sigma``, where a
            face's probability has fallen to 1e-4.
        w_silhouette: weight of the silhouette mean squared error, ``>= 0``.
        w_edge: weight of :func:`~geomgen.losses.mesh_edge_loss`, ``>= 0``.
        w_laplacian: weight of :func:`~geomgen.losses.mesh_laplacian_smoothing`
            (uniform), ``>= 0``.
        w_normal: weight of :func:`~geomgen.losses.mesh_normal_consistency`,
            ``>= 0``.
        views_per_iteration: render a random subset of this many views per
            step (seeded by ``seed``); None: all ``V``.
        progress: show a tqdm progress bar (on stderr; the default).
        seed: seed of the view subsets.
        callback: called as ``callback(iteration, losses)`` after each step.

    Returns:
        :class:`FitResult` (the fitted and starting meshes, the per-iteration
        losses, the mean silhouette IoU before and after).

    Raises:
        InvalidInputError: masks not ``(V, H, W)`` in ``[0, 1]``, an empty
            mask, a camera count or image size that does not match, a bad
            ``init``, an argument out of range; :class:`geomgen.train.NonFiniteLossError`
            when the loss becomes NaN/Inf.
    """
    fn = "fit_mesh_to_silhouettes"
    masks = _check_masks(masks, fn)
    cameras = _check_cameras(cameras, masks, fn)
    iterations = C.check_int(iterations, "iterations", min_value=0, fn=fn)
    lr = C.check_float(lr, "lr", gt=0.0, finite=True, fn=fn)
    sigma = C.check_float(sigma, "sigma", gt=0.0, finite=True, fn=fn)
    faces_per_pixel = C.check_int(faces_per_pixel, "faces_per_pixel", min_value=1, fn=fn)
    if blur_radius is None:
        blur_radius = math.log(1.0 / 1e-4 - 1.0) * sigma
    blur_radius = C.check_float(blur_radius, "blur_radius", ge=0.0, finite=True, fn=fn)
    weights = {name: C.check_float(w, name, ge=0.0, finite=True, fn=fn) for name, w in
               (("w_silhouette", w_silhouette), ("w_edge", w_edge), ("w_laplacian", w_laplacian),
                ("w_normal", w_normal))}
    n_views = masks.shape[0]
    if views_per_iteration is not None:
        views_per_iteration = C.check_int(views_per_iteration, "views_per_iteration", min_value=1,
                                          max_value=n_views, fn=fn)
    seed = C.check_int(seed, "seed", fn=fn)
    C.check_bool(progress, "progress", fn=fn)

    device = masks.device
    start = _init_mesh(init, level, radius, center, device, fn)
    cams32 = cameras.to(dtype=torch.float32)
    iou_init = float(silhouette_iou(start, cams32, masks).mean())
    target = masks.float()
    offsets = torch.zeros_like(start.verts_packed(), requires_grad=True)
    optimizer = torch.optim.Adam([offsets], lr=lr)
    gen = torch.Generator().manual_seed(seed)
    losses: dict[str, list[float]] = {k: [] for k in LOSS_TERMS}

    from tqdm import tqdm

    bar = tqdm(range(iterations), desc="fit", disable=not progress, leave=False, dynamic_ncols=True)
    for it in bar:
        optimizer.zero_grad(set_to_none=True)
        mesh = start.offset_verts(offsets)
        if views_per_iteration is None or views_per_iteration == n_views:
            views, cams = slice(None), cams32
        else:
            views = torch.randperm(n_views, generator=gen)[:views_per_iteration].sort().values
            cams = cams32[views.tolist()]
        frags = soft_rasterize_meshes(mesh, cams, blur_radius=blur_radius, faces_per_pixel=faces_per_pixel)
        alpha = soft_silhouette(frags, sigma)
        terms = {
            "silhouette": ((alpha - target[views]) ** 2).mean(),
            "edge": mesh_edge_loss(mesh),
            "laplacian": mesh_laplacian_smoothing(mesh, method="uniform"),
            "normal": mesh_normal_consistency(mesh),
        }
        total = sum(weights[f"w_{k}"] * v for k, v in terms.items())
        if not bool(torch.isfinite(total.detach())):
            raise NonFiniteLossError(f"{fn}: the loss became {float(total.detach())} at iteration {it}; "
                                     "lower lr or raise the regulariser weights")
        total.backward()
        optimizer.step()
        row = {"total": float(total.detach()), **{k: float(v.detach()) for k, v in terms.items()}}
        for k, v in row.items():
            losses[k].append(v)
        if progress:
            bar.set_postfix(loss=f"{row['total']:.4g}", sil=f"{row['silhouette']:.4g}")
        if callback is not None:
            callback(it, row)
    bar.close()
    with torch.no_grad():
        final = start.offset_verts(offsets.detach())
    iou = float(silhouette_iou(final, cams32, masks).mean())
    return FitResult(mesh=final, init=start, losses=losses, iou_init=iou_init, iou=iou)
