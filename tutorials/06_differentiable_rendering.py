# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 06 · Differentiable rendering: fitting shapes, cameras and colours to images
#
# geomgen's soft rasterizer (`geomgen.render.soft_rasterize_meshes`) keeps, for every pixel,
# the few faces nearest in depth within a blur radius, with their signed distances and
# barycentrics, and lets gradients flow back to vertex positions, vertex colours, lights and
# camera poses.  On top of it sit `soft_silhouette` (coverage), `soft_depth` and
# `render_rgb` (Phong/Lambert shading + softmax blending).  This tutorial uses them for three
# fits, each from a start that is clearly wrong:
#
# 1. **shape from silhouettes**: deform an ico-sphere until its silhouettes match masks of a
#    target mesh seen by calibrated cameras (`geomgen.train.fit_mesh_to_silhouettes`, with
#    edge, Laplacian and normal-consistency regularisers); scored with F1@0.3 under the
#    Mesh R-CNN protocol (`geomgen.metrics.compare_meshes`) and silhouette IoU;
# 2. **camera from a silhouette**: recover a camera's pose (its centre, oriented by `look_at`)
#    from one mask, starting from a perturbed pose; scored by the rotation error in degrees;
# 3. **shape and colour from RGB images**: fit vertex offsets and per-vertex colours to lit
#    renders (`render_rgb` with a point light); scored by the image MSE.
#
# The target is a procedural `mug` from `geomgen.data.procedural.generate_shape` (nothing is
# downloaded).  `GEOMGEN_TUTORIAL_SMALL=1` runs a shrunken version (few views, small images,
# coarse spheres, few steps); the default is the full setting (20 views of 128×128, an
# ico-sphere of level 4), whose first story alone takes about 3 s per iteration on a 2-core
# CPU (400 iterations).  Outputs go to `$GEOMGEN_TUTORIAL_OUT` (default
# `out/tutorials/06_differentiable_rendering`): `results.json`, and per story a loss curve and
# a targets-vs-fits sheet.

# %%
import json
import math
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch

import geomgen
from geomgen.data.procedural import generate_shape
from geomgen.io import image_grid, save_image
from geomgen.losses import mesh_edge_loss, mesh_laplacian_smoothing, mesh_normal_consistency
from geomgen.metrics import compare_meshes
from geomgen.ops import ico_sphere
from geomgen.render import (PerspectiveCameras, PointLights, default_distance, look_at, orbit_poses, render_meshes,
                            render_rgb, soft_rasterize_meshes, soft_silhouette)
from geomgen.structures import Meshes
from geomgen.train import fit_mesh_to_silhouettes, plot_loss_curve, silhouette_iou

SMALL = os.environ.get("GEOMGEN_TUTORIAL_SMALL") == "1"
OUT = Path(os.environ.get("GEOMGEN_TUTORIAL_OUT", "out/tutorials/06_differentiable_rendering"))
OUT.mkdir(parents=True, exist_ok=True)
torch.manual_seed(0)
T0 = time.perf_counter()
RESULTS: dict = {"small": SMALL}


def save_curves(name: str, curves: dict[str, list[float]], title: str) -> None:
    """Write the per-iteration values to ``<name>.csv`` and draw them into ``<name>.png``."""
    keys = list(curves)
    rows = ["step," + ",".join(keys)]
    rows += [f"{i}," + ",".join(f"{curves[k][i]:.6g}" for k in keys) for i in range(len(curves[keys[0]]))]
    (OUT / f"{name}.csv").write_text("\n".join(rows) + "\n")
    plot_loss_curve(OUT / f"{name}.csv", OUT / f"{name}.png", keys=keys, log_y=True, title=title)


def as_rgb(img: torch.Tensor) -> torch.Tensor:
    """``(H, W)`` grey or ``(H, W, 3)`` colour in [0, 1] -> ``(3, H', W')`` for image_grid,
    small images enlarged (nearest neighbour) to at least 96 pixels so that the labels fit."""
    img = img.detach().float().clamp(0, 1)
    img = img.expand(3, *img.shape) if img.dim() == 2 else img.permute(2, 0, 1)
    k = max(1, math.ceil(96 / img.shape[-1]))
    return img.repeat_interleave(k, dim=1).repeat_interleave(k, dim=2)


print("geomgen", geomgen.__version__, "| small run" if SMALL else "| full run", "| outputs in", OUT)

# %% [markdown]
# ## The target and the cameras
#
# `generate_shape` returns a closed mesh, +Y up, bounding box centred at the origin with
# longest edge 1.  The cameras orbit it at `default_distance()` (the distance at which the
# unit cube fits a 40° field of view), with azimuths spread over the full circle and
# elevations alternating above and below the equator.

# %%
N_VIEWS = 6 if SMALL else 20
SIZE = 48 if SMALL else 128
LEVEL = 2 if SMALL else 4

verts, faces = generate_shape("mug", seed=3, resolution=20 if SMALL else 64)
target = Meshes([verts], [faces])
print("target:", verts.shape[0], "verts,", faces.shape[0], "faces")

DIST = default_distance()
azim = torch.linspace(0.0, 360.0, N_VIEWS + 1)[:-1]
elev = torch.tensor([25.0 if i % 2 == 0 else -10.0 for i in range(N_VIEWS)])
cameras = PerspectiveCameras.from_fov(40.0, (SIZE, SIZE), orbit_poses(azim, elev, DIST))
masks = render_meshes(target, cameras).mask.float()  # (V, H, W) hard silhouettes of the target
print(f"{N_VIEWS} views of {SIZE}x{SIZE}, camera distance {DIST:.2f}")

# %% [markdown]
# ## 1. Deform a sphere to match silhouettes
#
# `fit_mesh_to_silhouettes` optimises per-vertex offsets of an ico-sphere with Adam,
# minimising the mean squared error between the soft silhouettes and the masks plus three
# regularisers that keep the surface well shaped: `mesh_edge_loss` (short, even edges),
# `mesh_laplacian_smoothing` (each vertex near the mean of its neighbours) and
# `mesh_normal_consistency` (neighbouring faces facing the same way).  Without them the
# silhouette term alone crumples the mesh, since only its outline is seen.

# %%
t = time.perf_counter()
fit = fit_mesh_to_silhouettes(
    masks, cameras, level=LEVEL, radius=0.4, iterations=150 if SMALL else 400, lr=0.01,
    sigma=1e-4, faces_per_pixel=10 if SMALL else 20,
    w_edge=1.0, w_laplacian=1.0, w_normal=0.01, progress=not SMALL,
)
seconds = time.perf_counter() - t
gen = torch.Generator().manual_seed(0)
before = compare_meshes(fit.init, target, num_samples=5000 if SMALL else 10000, generator=gen)
after = compare_meshes(fit.mesh, target, num_samples=5000 if SMALL else 10000, generator=gen)
RESULTS["silhouettes"] = {
    "views": N_VIEWS, "image_size": SIZE, "ico_level": LEVEL, "iterations": len(fit.losses["total"]),
    "iou_before": fit.iou_init, "iou_after": fit.iou,
    "f1@0.3_before": float(before["F1@0.3"]), "f1@0.3_after": float(after["F1@0.3"]),
    "chamfer_l2_before": float(before["Chamfer-L2"]), "chamfer_l2_after": float(after["Chamfer-L2"]),
    "seconds": seconds,
}
print(f"silhouette IoU {fit.iou_init:.3f} -> {fit.iou:.3f}; "
      f"F1@0.3 {float(before['F1@0.3']):.1f} -> {float(after['F1@0.3']):.1f}; {seconds:.1f} s")

# %% [markdown]
# The loss curves (each term unweighted) and the masks next to the hard silhouettes of
# the fitted mesh:

# %%
save_curves("silhouette_fit_loss", {f"loss_{k}": v for k, v in fit.losses.items()}, "sphere -> silhouettes")

shown = list(range(0, N_VIEWS, max(1, N_VIEWS // 5)))[:5]
fitted_masks = render_meshes(fit.mesh, cameras).mask
tiles = [as_rgb(masks[v]) for v in shown] + [as_rgb(fitted_masks[v].float()) for v in shown]
labels = [f"target {v}" for v in shown] + [f"fit {v}" for v in shown]
save_image(OUT / "silhouette_fit.png", image_grid(tiles, len(shown), labels=labels, background=0.5))

# %% [markdown]
# ## 2. Recover a camera pose from one silhouette
#
# One camera sees the target; we know its intrinsics and the mesh, not its pose.  We
# parameterise the pose by the camera centre `eye`, looking at the object's centre (the
# origin) with +Y up: `look_at(eye)` builds a rigid `world_from_camera` differentiably, so Adam
# moves `eye` to match the soft silhouette.  The start is the true centre turned by 15° about
# a random axis through the origin and moved 10% further away (its rotation error is smaller
# than 15°, as `look_at` keeps the image upright).  `faces_per_pixel` must
# cover the faces within the blur radius of a pixel: when it is too small for the mesh's face
# size, the nearest-in-depth candidates are neighbours that miss the pixel and the silhouette
# fades inside the object (with a wider `sigma`, hence a wider blur radius, this needs a
# larger `faces_per_pixel`).  The error is the angle of the relative rotation
# `R_fit^T R_true`.


# %%
def rotation(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rotation matrix of an axis-angle vector (the matrix exponential of its skew matrix)."""
    x, y, z = axis_angle.tolist()
    return torch.linalg.matrix_exp(torch.tensor([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]]))


def angle_deg(Ra: torch.Tensor, Rb: torch.Tensor) -> float:
    cos = ((Ra.T @ Rb).trace() - 1.0) / 2.0
    return math.degrees(math.acos(float(cos.clamp(-1.0, 1.0))))


CAM_SIZE = 48 if SMALL else 128
true_pose = orbit_poses(torch.tensor([35.0]), torch.tensor([20.0]), DIST)[0]
gen = torch.Generator().manual_seed(1)
axis = torch.randn(3, generator=gen)
axis = axis / axis.norm()
start_eye = 1.1 * rotation(axis * math.radians(15.0)) @ true_pose[:3, 3]
start_pose = look_at(start_eye)[0]
K = PerspectiveCameras.from_fov(40.0, (CAM_SIZE, CAM_SIZE)).K
target_mask = render_meshes(target, PerspectiveCameras(K, true_pose[None], (CAM_SIZE, CAM_SIZE))).mask.float()

CAM_SIGMA = 1e-4
CAM_BLUR = math.log(1.0 / 1e-4 - 1.0) * CAM_SIGMA
eye = start_eye.clone().requires_grad_(True)
CAM_STEPS = 60 if SMALL else 200
CAM_FACES_PER_PIXEL = 20 if SMALL else 50  # the full-size mug has 8x the faces: more candidates per pixel
optimizer = torch.optim.Adam([eye], lr=0.02)
# the full run decays the step (cosine) so that it settles on the pose instead of drifting past it
schedule = None if SMALL else torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, CAM_STEPS)
cam_losses, cam_errors = [], []
t = time.perf_counter()
for it in range(CAM_STEPS):
    optimizer.zero_grad()
    pose = look_at(eye)[0]
    cams = PerspectiveCameras(K, pose[None], (CAM_SIZE, CAM_SIZE))
    alpha = soft_silhouette(soft_rasterize_meshes(target, cams, blur_radius=CAM_BLUR,
                                                  faces_per_pixel=CAM_FACES_PER_PIXEL), CAM_SIGMA)
    loss = ((alpha - target_mask) ** 2).mean()
    loss.backward()
    optimizer.step()
    if schedule is not None:
        schedule.step()
    cam_losses.append(float(loss.detach()))
    cam_errors.append(angle_deg(pose.detach()[:3, :3], true_pose[:3, :3]))
seconds = time.perf_counter() - t
final_pose = look_at(eye.detach())[0]
err_before = angle_deg(start_pose[:3, :3], true_pose[:3, :3])
err_after = angle_deg(final_pose[:3, :3], true_pose[:3, :3])
RESULTS["camera"] = {
    "image_size": CAM_SIZE, "iterations": len(cam_losses),
    "angle_error_deg_before": err_before, "angle_error_deg_after": err_after,
    "centre_error_before": float((start_pose[:3, 3] - true_pose[:3, 3]).norm()),
    "centre_error_after": float((final_pose[:3, 3] - true_pose[:3, 3]).norm()),
    "seconds": seconds,
}
print(f"camera rotation error {err_before:.2f}° -> {err_after:.2f}°; centre error "
      f"{RESULTS['camera']['centre_error_before']:.3f} -> {RESULTS['camera']['centre_error_after']:.3f}; "
      f"{seconds:.1f} s")

# %%
save_curves("camera_fit_loss", {"loss_silhouette": cam_losses, "rotation_error_deg": cam_errors},
            "camera pose from one silhouette")

# red: the target mask, green: the render of the target through the camera; yellow where they agree
tiles = []
for pose in (true_pose, start_pose, final_pose):
    drawn = render_meshes(target, PerspectiveCameras(K, pose[None], (CAM_SIZE, CAM_SIZE))).mask[0].float()
    tiles.append(as_rgb(torch.stack([target_mask[0], drawn, torch.zeros_like(drawn)], -1)))
save_image(OUT / "camera_fit.png", image_grid(tiles, 3, labels=["target", "start", "fit"], background=0.5))

# %% [markdown]
# ## 3. Fit geometry and vertex colours to RGB renders
#
# The target now carries per-vertex colours (a smooth function of position) and is lit by a
# point light above the cameras.  `render_rgb` returns `(B, H, W, 4)`: RGB blended over a white
# background, then the soft silhouette.  We optimise vertex offsets of an ico-sphere and its
# vertex colours together; the loss is the RGB mean squared error plus the silhouette error
# and the same regularisers as in story 1.

# %%
RGB_VIEWS = 4 if SMALL else 20
RGB_SIZE = 32 if SMALL else 128
rgb_cams = PerspectiveCameras.from_fov(
    40.0, (RGB_SIZE, RGB_SIZE),
    orbit_poses(torch.linspace(0.0, 360.0, RGB_VIEWS + 1)[:-1],
                torch.tensor([25.0 if i % 2 == 0 else -10.0 for i in range(RGB_VIEWS)]), DIST))
lights = PointLights(location=(0.0, 3.0, 2.0))
v = target.verts_packed()
target_colors = (0.5 + 0.5 * torch.stack([torch.sin(6 * v[:, 1]), v[:, 0] * 2, torch.cos(4 * v[:, 2])], -1)).clamp(0, 1)
RGB_SIGMA, RGB_GAMMA = 1e-4, 1e-4
with torch.no_grad():
    target_rgba = render_rgb(target, rgb_cams, lights, vertex_colors=target_colors, shading="lambert",
                             sigma=RGB_SIGMA, gamma=RGB_GAMMA)

sphere = ico_sphere(LEVEL)
start = Meshes([sphere.verts_list()[0] * 0.4], sphere.faces_list())
offsets = torch.zeros_like(start.verts_packed(), requires_grad=True)
colors = torch.full_like(start.verts_packed(), 0.5).requires_grad_(True)
optimizer = torch.optim.Adam([{"params": [offsets], "lr": 0.01}, {"params": [colors], "lr": 0.05}])
rgb_losses: dict[str, list[float]] = {"total": [], "rgb": [], "silhouette": []}


def render_fit(mesh, cols):
    return render_rgb(mesh, rgb_cams, lights, vertex_colors=cols, shading="lambert", sigma=RGB_SIGMA,
                      gamma=RGB_GAMMA, faces_per_pixel=10)


with torch.no_grad():
    rgb_before = float(((render_fit(start, colors)[..., :3] - target_rgba[..., :3]) ** 2).mean())
t = time.perf_counter()
for it in range(150 if SMALL else 400):
    optimizer.zero_grad()
    mesh = start.offset_verts(offsets)
    rgba = render_fit(mesh, colors)
    rgb = ((rgba[..., :3] - target_rgba[..., :3]) ** 2).mean()
    sil = ((rgba[..., 3] - target_rgba[..., 3]) ** 2).mean()
    total = (rgb + sil + mesh_edge_loss(mesh) + mesh_laplacian_smoothing(mesh, method="uniform")
             + 0.01 * mesh_normal_consistency(mesh))
    total.backward()
    optimizer.step()
    for name, value in (("total", total), ("rgb", rgb), ("silhouette", sil)):
        rgb_losses[name].append(float(value.detach()))
seconds = time.perf_counter() - t
with torch.no_grad():
    fitted = start.offset_verts(offsets)
    fitted_rgba = render_fit(fitted, colors.clamp(0, 1))
    start_rgba = render_fit(start, torch.full_like(colors, 0.5))
rgb_after = float(((fitted_rgba[..., :3] - target_rgba[..., :3]) ** 2).mean())
RESULTS["rgb"] = {
    "views": RGB_VIEWS, "image_size": RGB_SIZE, "ico_level": LEVEL, "iterations": len(rgb_losses["total"]),
    "mse_before": rgb_before, "mse_after": rgb_after,
    "iou_before": float(silhouette_iou(start, rgb_cams, target_rgba[..., 3]).mean()),
    "iou_after": float(silhouette_iou(fitted, rgb_cams, target_rgba[..., 3]).mean()),
    "seconds": seconds,
}
print(f"RGB image MSE {rgb_before:.4f} -> {rgb_after:.4f}; silhouette IoU "
      f"{RESULTS['rgb']['iou_before']:.3f} -> {RESULTS['rgb']['iou_after']:.3f}; {seconds:.1f} s")

# %%
save_curves("rgb_fit_loss", {f"loss_{k}": v for k, v in rgb_losses.items()}, "geometry + colours -> RGB")

shown = list(range(0, RGB_VIEWS, max(1, RGB_VIEWS // 4)))[:4]
tiles, labels = [], []
for name, img in (("target", target_rgba), ("start", start_rgba), ("fit", fitted_rgba)):
    tiles += [as_rgb(img[i, ..., :3]) for i in shown]
    labels += [f"{name} {i}" for i in shown]
save_image(OUT / "rgb_fit.png", image_grid(tiles, len(shown), labels=labels))

# %% [markdown]
# ## Results

# %%
RESULTS["total_seconds"] = time.perf_counter() - T0
(OUT / "results.json").write_text(json.dumps(RESULTS, indent=2) + "\n")
print(json.dumps(RESULTS, indent=2))
