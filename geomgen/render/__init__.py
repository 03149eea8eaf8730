"""Cameras and a z-buffered triangle rasterizer with simple Lambert shading.

* :class:`PerspectiveCameras`, :func:`look_at`, :func:`orbit_poses` - pinhole
  cameras (OpenCV frame: x right, y down, z forward; pixel centres at
  ``+0.5``), batched world -> camera -> pixel transforms and back;
  :func:`default_intrinsics` / :func:`default_distance` (the ``shapes``
  renders' camera), :func:`scale_intrinsics` (``K`` of resized images),
  :func:`opencv_to_y_up` (camera-frame points shown upright).
* :func:`rasterize_meshes` -> :class:`Fragments` - per-pixel visible face,
  z-depth and perspective-correct barycentrics; numba kernels on the CPU, a
  pure-torch path elsewhere; exact near-plane clipping.
* :func:`soft_rasterize_meshes` -> :class:`SoftFragments` - differentiable
  soft rasterization (SoftRas / PyTorch3D): per pixel the ``K`` nearest faces
  within a blur radius, with signed distances, depths and barycentrics that
  carry gradients to vertices, poses and intrinsics; blended by
  :func:`soft_silhouette`, :func:`soft_depth` and :func:`softmax_rgb_blend`.
* :func:`shade_soft` / :func:`render_rgb` - differentiable Lambert, Phong and
  Gouraud shading of soft fragments with :class:`PointLights` or
  :class:`DirectionalLights` (world frame, direction towards the light) and a
  :class:`Material`, blended into RGBA.
* :func:`render_meshes` -> :class:`RenderResult` - depth, silhouette, world
  normals and a Lambert-shaded image; :func:`interpolate_face_attributes`,
  :func:`shade_lambert`.
* :func:`render_prediction` / :func:`render_samples` - a mesh (or a batch of
  meshes) rendered from a fixed orbit view, as ``geomgen predict --render``
  and ``geomgen sample`` draw them.
"""

from geomgen.render.blend import soft_depth, soft_silhouette, softmax_rgb_blend
from geomgen.render.cameras import (
    PerspectiveCameras,
    default_distance,
    default_intrinsics,
    look_at,
    opencv_to_y_up,
    orbit_poses,
    scale_intrinsics,
)
from geomgen.render.lights import DirectionalLights, Material, PointLights
from geomgen.render.preview import render_prediction, render_samples
from geomgen.render.rasterize import Fragments, rasterize_meshes
from geomgen.render.shading import RenderResult, interpolate_face_attributes, render_meshes, shade_lambert
from geomgen.render.soft_rasterize import SoftFragments, soft_rasterize_meshes
from geomgen.render.soft_shading import render_rgb, shade_soft

__all__ = [
    "PerspectiveCameras",
    "look_at",
    "orbit_poses",
    "default_intrinsics",
    "default_distance",
    "scale_intrinsics",
    "opencv_to_y_up",
    "Fragments",
    "rasterize_meshes",
    "SoftFragments",
    "soft_rasterize_meshes",
    "soft_silhouette",
    "soft_depth",
    "softmax_rgb_blend",
    "PointLights",
    "DirectionalLights",
    "Material",
    "shade_soft",
    "render_rgb",
    "RenderResult",
    "render_meshes",
    "interpolate_face_attributes",
    "shade_lambert",
    "render_prediction",
    "render_samples",
]
