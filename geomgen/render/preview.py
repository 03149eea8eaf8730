"""Quick looks at predicted and sampled meshes: one fixed orbit view, Lambert shaded.

:func:`render_prediction` draws one mesh as ``geomgen predict --render`` shows
it next to its input image; :func:`render_samples` tiles a batch of meshes as
``geomgen sample`` writes its ``grid.png``.  The camera is the one of the
``shapes`` renders (vertical field of view 40 degrees, at
:func:`~geomgen.render.cameras.default_distance`) on an orbit at azimuth 30,
elevation 20 degrees, +Y up.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from geomgen import checks as V
from geomgen.render.cameras import (
    PerspectiveCameras,
    default_distance,
    default_intrinsics,
    opencv_to_y_up,
    orbit_poses,
)
from geomgen.render.shading import render_meshes
from geomgen.structures import Meshes

__all__ = ["render_prediction", "render_samples"]

#: Azimuth / elevation (degrees) of the view.
VIEW = (30.0, 20.0)
#: Vertical field of view (degrees) of the camera.
FOV = 40.0
#: Colour of the meshes (light blue), RGB in [0, 1].
COLOR = (0.55, 0.7, 0.9)


def render_prediction(verts: torch.Tensor, faces: torch.Tensor, frame: str, size: int = 128,
                      fit: bool = True) -> torch.Tensor:
    """Lambert render of one mesh from an orbit view (azimuth 30, elevation 20 degrees).

    Args:
        verts: ``(V, 3)`` vertices.
        faces: ``(F, 3)`` int64 vertex indices.
        frame: ``"object"`` (+Y up already) or ``"camera"`` (OpenCV axes of the
            input camera: turned Y-up with :func:`~geomgen.render.cameras.opencv_to_y_up`
            first, so azimuth 0 is the input camera's side).
        size: the image is ``size x size`` pixels.
        fit: centre the mesh and scale it so its bounding box's longest edge is 1
            (fills the view); ``False`` renders it as is, so the object frame's
            ``[-0.5, 0.5]^3`` cube fills the view and sizes stay comparable.

    Returns:
        ``(3, size, size)`` float32 image in [0, 1] on the CPU, white background;
        a mesh without faces (or vertices) gives a white image.

    Raises:
        InvalidInputError: ``frame`` is not ``"object"`` or ``"camera"``.
    """
    V.check_choice(frame, "frame", ("object", "camera"), fn="render_prediction")
    if faces.shape[0] == 0 or verts.shape[0] == 0:
        return torch.ones(3, size, size)
    v = verts.detach().float().cpu()
    if frame == "camera":
        v = opencv_to_y_up(v)
    if fit:
        lo, hi = v.min(0).values, v.max(0).values
        extent = float((hi - lo).max())
        v = (v - (lo + hi) / 2) / (extent if extent > 0 else 1.0)
    K = default_intrinsics(1, size, size, FOV)
    pose = orbit_poses(VIEW[0], VIEW[1], default_distance(FOV), up=(0.0, 1.0, 0.0)).float()
    cams = PerspectiveCameras(K, pose, (size, size))
    return render_meshes(Meshes([v], [faces.cpu()]), cams, colors=torch.tensor(COLOR)).image[0]


def render_samples(meshes: Any, size: int = 128, labels: list[str] | None = None,
                   ncols: int | None = None) -> torch.Tensor:
    """Contact sheet of a batch of object-frame meshes, one tile each (:func:`render_prediction`
    with ``fit=False``: the ``[-0.5, 0.5]^3`` cube fills a tile).

    Args:
        meshes: :class:`~geomgen.structures.Meshes` of ``N`` meshes ``(V_i, 3)`` / ``(F_i, 3)``
            in the object frame; empty meshes give white tiles.
        size: pixels per tile (square).
        labels: ``N`` captions under the tiles, or None.
        ncols: tiles per row (default ``ceil(sqrt(N))``).

    Returns:
        ``(3, H, W)`` float32 image in [0, 1] (see :func:`geomgen.io.image_grid` for the layout).
    """
    from geomgen.io import image_grid

    tiles = [render_prediction(v, f, "object", size, fit=False)
             for v, f in zip(meshes.verts_list(), meshes.faces_list())]
    cols = ncols or max(1, math.ceil(math.sqrt(len(tiles))))
    return image_grid(tiles, cols, labels=labels)
