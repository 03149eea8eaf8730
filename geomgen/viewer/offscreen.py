"""Offscreen PNG renders of geomgen data: Open3D's Filament renderer or geomgen's rasterizer.

:func:`render_png` lays the objects out as :func:`geomgen.viewer.scene.build_items`
does (several objects side by side, each normalised to a longest edge of 1),
fits a camera to the bounding sphere of the (first) item and writes a PNG:
white background, a default lit material, points as points.  With
``views > 1`` the camera orbits the scene (azimuths evenly spread over 360
degrees) and the views are laid out as one row.

**Camera** (:func:`fit_cameras`): vertical field of view :data:`FOV` degrees,
looking at the bounding-sphere centre from azimuth :data:`AZIMUTH` and
elevation :data:`ELEVATION` (degrees, :func:`geomgen.render.orbit_poses`,
``+y`` up), at the distance where the sphere fills the smaller image side
with a 5% margin.  The same ``K`` and ``camera_from_world`` are given to both
backends (Open3D's ``setup_camera(K, extrinsic, W, H)`` uses geomgen's
OpenCV-axes convention unchanged, pixel centres at half-integers; its near
plane is fixed at 0.1 and geomgen renders with ``znear=0.1`` too), so their
silhouettes match.  Open3D renders without post-processing (no tone mapping: the
background is pure white) and without antialiasing or MSAA (hard edges, like
geomgen's rasterizer).

**Backends.**  ``"open3d"``: ``open3d.visualization.rendering.OffscreenRenderer``
(headless: with no X display Filament falls back to EGL / Vulkan on Mesa's
software device).  ``"geomgen"``: :func:`geomgen.render.render_meshes`
(Lambert shading, headlight); point clouds are splatted as small octahedra
(8 triangles per point, radius :data:`SPLAT_RADIUS` of the normalised scene)
and voxels drawn as their cube mesh.  ``"auto"``: Open3D when it is installed
and its renderer starts, else geomgen.

**Crash safety.**  Filament can abort the whole process on a broken GPU
driver (no Python exception to catch).  So before the first in-process use
the renderer is probed once in a subprocess (a 16x16 render of a triangle,
timeout :data:`PROBE_TIMEOUT` s); the result is cached for the process
(:func:`open3d_renderer_available`).  ``"auto"`` falls back to geomgen when
the probe fails; ``"open3d"`` raises :class:`~geomgen.errors.BackendUnavailableError`
with the probe's stderr.
"""

from __future__ import annotations

import functools
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geomgen import checks as V
from geomgen.errors import BackendUnavailableError, InvalidInputError
from geomgen.viewer.scene import build_items, import_open3d, items_bounds

__all__ = ["render_png", "render_images", "render_masks", "fit_cameras", "open3d_renderer_available", "BACKENDS",
           "FOV", "AZIMUTH", "ELEVATION", "SPLAT_RADIUS", "PROBE_TIMEOUT"]

BACKENDS: tuple[str, ...] = ("auto", "open3d", "geomgen")
#: Vertical field of view of the fitted camera, degrees.
FOV: float = 40.0
#: Azimuth and elevation (degrees) of the first view.
AZIMUTH: float = 30.0
ELEVATION: float = 25.0
#: Radius of a point splat in the geomgen backend, relative to the bounding-sphere radius.
SPLAT_RADIUS: float = 0.012
#: Seconds the subprocess probe of Open3D's renderer may take.
PROBE_TIMEOUT: float = 120.0
#: Open3D's fixed near plane (``Camera::NEAR_PLANE``); geomgen renders with the same.
ZNEAR: float = 0.1

_PROBE = """
import numpy as np, open3d as o3d
r = o3d.visualization.rendering.OffscreenRenderer(16, 16)
m = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(np.array([[0., 0, 0], [1, 0, 0], [0, 1, 0]])),
                              o3d.utility.Vector3iVector(np.array([[0, 1, 2]], dtype=np.int32)))
mat = o3d.visualization.rendering.MaterialRecord()
mat.shader = "defaultUnlit"
r.scene.add_geometry("m", m, mat)
r.setup_camera(60.0, [0.3, 0.3, 0.0], [0.3, 0.3, 3.0], [0.0, 1.0, 0.0])
np.asarray(r.render_to_image())
print("ok", flush=True)
import os
os._exit(0)  # skip Filament's teardown, which can hang on a loaded machine
"""


@functools.lru_cache(maxsize=1)
def _probe() -> tuple[bool, str]:
    try:
        import_open3d()
    except BackendUnavailableError as exc:
        return False, str(exc)
    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                              timeout=PROBE_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        if "ok" in out:  # it rendered, then hung on exit
            return True, ""
        return False, f"Open3D's offscreen renderer did not start within {PROBE_TIMEOUT:g} s"
    except OSError as exc:
        return False, f"cannot run the Open3D probe subprocess: {exc}"
    if proc.returncode != 0 or "ok" not in proc.stdout:
        return False, (f"Open3D's offscreen renderer failed to start (exit {proc.returncode}): "
                       f"{proc.stderr.strip()[-500:]}")
    return True, ""


def open3d_renderer_available() -> tuple[bool, str]:
    """``(ok, reason)``: whether Open3D is importable and its ``OffscreenRenderer``
    starts, probed once per process in a subprocess (so a driver crash cannot
    take this process down); ``reason`` says why not."""
    return _probe()


def fit_cameras(lo: np.ndarray, hi: np.ndarray, width: int, height: int, views: int = 1) -> Any:
    """``views`` :class:`geomgen.render.PerspectiveCameras` (float64) fitted to the
    bounding sphere of the box ``[lo, hi]`` (each ``(3,)``): see the module docstring.

    View ``k`` looks from azimuth ``AZIMUTH + 360 k / views``, elevation ``ELEVATION``.
    """
    from geomgen.render import PerspectiveCameras, orbit_poses

    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    centre = (lo + hi) / 2
    radius = max(float(np.linalg.norm(hi - lo)) / 2, 1e-6)
    half = math.radians(FOV) / 2
    half_h = math.atan(math.tan(half) * min(width, height) / height)  # the smaller side's half angle
    distance = max(1.05 * radius / math.sin(half_h), radius + 2 * ZNEAR)
    az = torch.tensor([AZIMUTH + 360.0 * k / views for k in range(views)], dtype=torch.float64)
    poses = orbit_poses(az, torch.full_like(az, ELEVATION), torch.full_like(az, distance),
                        at=torch.as_tensor(centre))
    return PerspectiveCameras.from_fov(FOV, (height, width), poses)


# ----------------------------------------------------------------------------- open3d backend
def _render_open3d(item: list[Any], cameras: Any, width: int, height: int, point_size: float) -> list[np.ndarray]:
    o3d = import_open3d("render_png")
    rendering = o3d.visualization.rendering
    renderer = rendering.OffscreenRenderer(width, height)
    try:
        renderer.scene.set_background([1.0, 1.0, 1.0, 1.0])
        renderer.scene.view.set_post_processing(False)  # no tone mapping: the background stays pure white
        renderer.scene.view.set_antialiasing(False)  # hard edges: the silhouette is the coverage at pixel centres
        renderer.scene.view.set_sample_count(1)
        lit = rendering.MaterialRecord()
        lit.shader = "defaultLit"
        points = rendering.MaterialRecord()
        points.shader = "defaultUnlit"
        points.point_size = float(point_size)
        for i, g in enumerate(item):
            is_points = isinstance(g, o3d.geometry.PointCloud)
            renderer.scene.add_geometry(f"g{i}", g, points if is_points else lit)
        renderer.scene.scene.set_sun_light([-0.4, -1.0, -0.6], [1.0, 1.0, 1.0], 75000)
        renderer.scene.scene.enable_sun_light(True)
        images = []
        for K, E in zip(cameras.K.numpy(), cameras.camera_from_world.numpy()):
            renderer.setup_camera(K, E, width, height)
            images.append(np.asarray(renderer.render_to_image())[..., :3].copy())
        return images
    finally:
        del renderer


# ----------------------------------------------------------------------------- geomgen backend
def _splat_mesh(points: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """An octahedron of ``radius`` around every point: ``(6P, 3)`` verts, ``(8P, 3)`` faces."""
    offsets = radius * np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], np.float64)
    tris = np.array([[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]])
    verts = (points[:, None, :] + offsets[None]).reshape(-1, 3)
    faces = (tris[None] + 6 * np.arange(len(points))[:, None, None]).reshape(-1, 3)
    return verts, faces


def _item_mesh(item: list[Any], radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One item merged into a triangle soup: verts (V, 3), faces (F, 3), vertex colours (V, 3)."""
    verts, faces, colors, n = [], [], [], 0
    for g in item:  # duck-typed: Open3D geometries or geomgen.viewer._lite stand-ins
        if hasattr(g, "triangles"):
            v, f = np.asarray(g.vertices), np.asarray(g.triangles)
            c = np.asarray(g.vertex_colors) if g.has_vertex_colors() else np.full_like(v, 0.7)
        elif hasattr(g, "points"):
            p = np.asarray(g.points)
            v, f = _splat_mesh(p, radius)
            c = np.repeat(np.asarray(g.colors), 6, axis=0) if g.has_colors() else np.full_like(v, 0.5)
        elif hasattr(g, "get_voxels"):
            o3d = import_open3d("render_png")
            cube = o3d.geometry.TriangleMesh()
            for vox in g.get_voxels():
                box = o3d.geometry.TriangleMesh.create_box(g.voxel_size, g.voxel_size, g.voxel_size)
                box.translate(g.get_voxel_center_coordinate(vox.grid_index) - g.voxel_size / 2)
                cube += box
            v, f = np.asarray(cube.vertices), np.asarray(cube.triangles)
            c = np.full_like(v, 0.7)
        else:
            continue
        verts.append(v)
        faces.append(f + n)
        colors.append(c)
        n += len(v)
    if not verts:
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64), np.zeros((0, 3))
    return np.concatenate(verts), np.concatenate(faces), np.concatenate(colors)


def _render_geomgen(item: list[Any], cameras: Any, radius: float) -> list[np.ndarray]:
    from geomgen.render import render_meshes
    from geomgen.structures import Meshes

    v, f, c = _item_mesh(item, SPLAT_RADIUS * radius)
    height, width = int(cameras.K[0, 1, 2] * 2), int(cameras.K[0, 0, 2] * 2)
    if len(f) == 0:
        return [np.full((height, width, 3), 255, np.uint8) for _ in range(len(cameras))]
    meshes = Meshes([torch.from_numpy(v)], [torch.from_numpy(f.astype(np.int64))])
    out = render_meshes(meshes, cameras, colors=torch.from_numpy(c), znear=ZNEAR, background=(1.0, 1.0, 1.0))
    images = out.image  # (B, H, W, 3) or (B, 3, H, W)
    if images.shape[-1] != 3:
        images = images.permute(0, 2, 3, 1)
    return [(images[i].clamp(0, 1).numpy() * 255).round().astype(np.uint8) for i in range(len(cameras))]


# ----------------------------------------------------------------------------- public API
def _scene(objects: Any, width: Any, height: Any, views: Any, layout: str, normalize: bool, item: Any,
           use_open3d: bool, fn: str) -> tuple[list[Any], Any, float]:
    """The checked view sizes, then ``(geometries of item, orbit cameras fitted to them, scene radius)``:
    what :func:`render_images` and :func:`render_masks` share so their views are the same."""
    width = V.check_int(width, "width", min_value=16, max_value=8192, fn=fn)
    height = V.check_int(height, "height", min_value=16, max_value=8192, fn=fn)
    views = V.check_int(views, "views", min_value=1, max_value=64, fn=fn)
    items = build_items(*objects, layout=layout, normalize=normalize, use_open3d=use_open3d)
    if not -len(items) <= item < len(items):
        raise InvalidInputError(f"item: {item} is out of range for {len(items)} items")
    geoms = items[item]
    lo, hi = items_bounds(geoms)
    return geoms, fit_cameras(lo, hi, width, height, views), max(float(np.linalg.norm(hi - lo)) / 2, 1e-6)


def render_images(*objects: Any, width: int = 512, height: int = 512, views: int = 1, backend: str = "auto",
                  point_size: float = 3.0, layout: str = "side-by-side", normalize: bool = True,
                  item: int = 0) -> tuple[np.ndarray, str]:
    """Render item ``item`` of the objects' layout from ``views`` orbit views.

    Args:
        objects: anything :func:`geomgen.viewer.scene.build_items` accepts.
        width: size of one view in pixels (>= 16).
        height: size of one view in pixels (>= 16).
        views: number of orbit views (>= 1).
        backend: ``"auto"``, ``"open3d"`` or ``"geomgen"`` (module docstring).
        point_size: point size in pixels (Open3D backend).
        layout: see :func:`~geomgen.viewer.scene.build_items`.
        normalize: see :func:`~geomgen.viewer.scene.build_items`.
        item: which item (batch element) to render.

    Returns:
        ``(image, backend)``: ``(height, views * width, 3)`` uint8 RGB (views
        side by side in a row) and the backend that drew it.

    Raises:
        InvalidInputError: bad sizes, views, backend or item.
        BackendUnavailableError: ``backend="open3d"`` but Open3D is missing or
            its renderer does not start.
    """
    V.check_choice(backend, "backend", BACKENDS, fn="render_png")
    if backend == "open3d":
        ok, reason = open3d_renderer_available()
        if not ok:
            raise BackendUnavailableError(f"render_png: backend 'open3d' is unavailable: {reason}")
        chosen = "open3d"
    elif backend == "auto":
        chosen = "open3d" if open3d_renderer_available()[0] else "geomgen"
    else:
        chosen = "geomgen"
    geoms, cameras, radius = _scene(objects, width, height, views, layout, normalize, item, chosen == "open3d",
                                    "render_png")
    if chosen == "open3d":
        tiles = _render_open3d(geoms, cameras, width, height, point_size)
    else:
        tiles = _render_geomgen(geoms, cameras, radius)
    return np.concatenate(tiles, axis=1), chosen


def render_masks(*objects: Any, width: int = 512, height: int = 512, views: int = 1, layout: str = "side-by-side",
                 normalize: bool = True, item: int = 0) -> tuple[torch.Tensor, Any]:
    """The silhouettes of item ``item`` from the ``views`` cameras of :func:`render_images`, with those cameras.

    Drawn by geomgen's rasterizer (points splatted, voxels as cubes, as the
    ``"geomgen"`` backend draws them) from exactly the cameras the PNG of
    :func:`render_images` uses (same layout and normalisation, so the cameras
    live in the normalised scene's frame): what ``geomgen render
    --save-cameras --save-masks`` writes for ``geomgen fit``.

    Args:
        objects: see :func:`render_images`.
        width: size of one view in pixels (>= 16).
        height: size of one view in pixels (>= 16).
        views: number of orbit views (>= 1).
        layout: see :func:`render_images`.
        normalize: see :func:`render_images`.
        item: see :func:`render_images`.

    Returns:
        ``(masks, cameras)``: ``(V, H, W)`` bool silhouettes and the ``V``
        float64 :class:`~geomgen.render.PerspectiveCameras` (``V = views``).

    Raises:
        InvalidInputError: bad sizes, views or item.
    """
    from geomgen.render import render_meshes
    from geomgen.structures import Meshes

    geoms, cameras, radius = _scene(objects, width, height, views, layout, normalize, item, False, "render_masks")
    v, f, _ = _item_mesh(geoms, SPLAT_RADIUS * radius)
    if len(f) == 0:
        return torch.zeros(views, height, width, dtype=torch.bool), cameras
    meshes = Meshes([torch.from_numpy(v)], [torch.from_numpy(f.astype(np.int64))])
    return render_meshes(meshes, cameras, znear=ZNEAR).mask, cameras


def render_png(objects: Any, path: str | Path, width: int = 512, height: int = 512, views: int = 1,
               backend: str = "auto", *, point_size: float = 3.0, layout: str = "side-by-side",
               normalize: bool = True, item: int = 0) -> tuple[Path, str]:
    """Render objects offscreen to a PNG file.

    Args:
        objects: one object or a list/tuple of objects to lay side by side
            (``Meshes`` (N, V, 3), ``PointClouds`` (N, P, 3), ``Voxels``,
            ``DepthMaps``, sample dicts, paths, ``(P, 3)`` point tensors; a
            list of Open3D geometries counts as one object).
        path: the PNG to write (its folder is created).
        width: pixels of one view; the PNG is ``views * width`` wide.
        height: pixels of one view; the PNG is ``views * width`` wide.
        views: orbit views laid out as one row.
        backend: ``"auto"`` | ``"open3d"`` | ``"geomgen"``; see the module docstring.
        point_size: see :func:`render_images`.
        layout: see :func:`render_images`.
        normalize: see :func:`render_images`.
        item: see :func:`render_images`.

    Returns:
        ``(path, backend used)``.

    Raises:
        See :func:`render_images`; plus :mod:`geomgen.io` errors writing the file.
    """
    from geomgen.io import save_image

    if isinstance(objects, (list, tuple)):
        o3d = None
        try:
            o3d = import_open3d("render_png")
        except BackendUnavailableError:
            pass
        if o3d is not None and objects and all(isinstance(g, o3d.geometry.Geometry) for g in objects):
            objects = (list(objects),)
        objs = tuple(objects)
    else:
        objs = (objects,)
    image, used = render_images(*objs, width=width, height=height, views=views, backend=backend,
                                point_size=point_size, layout=layout, normalize=normalize, item=item)
    out = Path(path).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    save_image(out, image)
    return out, used
