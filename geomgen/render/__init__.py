"""Cameras and a z-buffered triangle rasterizer with simple Lambert shading.

* :class:`PerspectiveCameras`, :func:`look_at`, :func:`orbit_poses` - pinhole
  cameras (OpenCV frame: x right, y down, z forward; pixel centres at
  ``+0.5``), batched world -> camera -> pixel transforms and back.
* :func:`rasterize_meshes` -> :class:`Fragments` - per-pixel visible face,
  z-depth and perspective-correct barycentrics; numba kernels on the CPU, a
  pure-torch path elsewhere; exact near-plane clipping.
* :func:`render_meshes` -> :class:`RenderResult` - depth, silhouette, world
  normals and a Lambert-shaded image; :func:`interpolate_face_attributes`,
  :func:`shade_lambert`.
"""

from geomgen.render.cameras import PerspectiveCameras, look_at, orbit_poses
from geomgen.render.rasterize import Fragments, rasterize_meshes
from geomgen.render.shading import RenderResult, interpolate_face_attributes, render_meshes, shade_lambert

__all__ = [
    "PerspectiveCameras",
    "look_at",
    "orbit_poses",
    "Fragments",
    "rasterize_meshes",
    "RenderResult",
    "render_meshes",
    "interpolate_face_attributes",
    "shade_lambert",
]
