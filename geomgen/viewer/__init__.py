"""Interactive viewers and offscreen renders of geomgen data (Open3D optional).

* :func:`show` - an Open3D window paging through a batch (keys: N/P next and
  previous, W wireframe, O normals, +/- point size, S screenshot, Q close);
  :mod:`geomgen.viewer.window`.
* :func:`render_png` - a PNG from Open3D's offscreen renderer, or from
  geomgen's own rasterizer when Open3D is missing or cannot start;
  :mod:`geomgen.viewer.offscreen`; :func:`render_masks` - the silhouettes
  and cameras of those views (``geomgen render --save-cameras``).
* :func:`build_items` / :func:`to_items` - Meshes, PointClouds, Voxels,
  DepthMaps, sample dicts, files and point tensors as lists of Open3D
  geometries, several objects side by side; :mod:`geomgen.viewer.scene`.

Importing this package does not import Open3D; install it with
``pip install geomgen[viewer]``.
"""

from geomgen.viewer.offscreen import fit_cameras, open3d_renderer_available, render_images, render_masks, render_png
from geomgen.viewer.scene import build_items, to_items
from geomgen.viewer.window import KEY_HELP, Viewer, show

__all__ = ["show", "Viewer", "KEY_HELP", "render_png", "render_images", "render_masks", "fit_cameras",
           "open3d_renderer_available", "build_items", "to_items"]
