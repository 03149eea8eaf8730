"""Interactive Open3D window: page through a batch, toggle wireframe and normals.

:func:`show` opens an ``open3d.visualization.VisualizerWithKeyCallback``
window on the items of :func:`geomgen.viewer.scene.build_items` (one item per
batch element; several objects side by side).  Keys (printed when the window
opens, see :data:`KEY_HELP`):

====================  ==================================================
``N`` / ``Right``     next batch element
``P`` / ``Left``      previous batch element
``W``                 toggle wireframe (``mesh_show_wireframe``)
``O``                 toggle normals (``point_show_normal`` for point
                      clouds, normals estimated when missing; vertex
                      normals drawn as short lines for meshes)
``+`` / ``-``         increase / decrease the point size
``S``                 save a screenshot PNG (``geomgen-view-NNN.png`` in
                      the working directory)
``H``                 print the key help again
``Q`` / ``Esc``       close
====================  ==================================================

The mouse works as in every Open3D window (drag: rotate, wheel: zoom,
shift-drag: pan).

``show(..., block=False)`` returns a :class:`Viewer` handle without entering
the event loop: call :meth:`Viewer.step` regularly (or drive it from a test:
``next()``, ``toggle_wireframe()``, ``screenshot(path)``, ``close()``).

Display: on Linux without ``DISPLAY`` and ``WAYLAND_DISPLAY``, or when the
window cannot be created, :class:`~geomgen.errors.DisplayUnavailableError` is
raised; run under ``xvfb-run -a geomgen view ...`` or render a PNG instead
(``geomgen render ... -o out.png``, :func:`geomgen.viewer.render_png`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from geomgen import checks as V
from geomgen.errors import DisplayUnavailableError, InvalidInputError
from geomgen.viewer.scene import build_items, import_open3d, items_bounds

__all__ = ["show", "Viewer", "KEY_HELP", "check_display"]

KEY_HELP = """geomgen viewer keys:
  N / Right   next batch element        P / Left   previous batch element
  W           toggle wireframe          O          toggle normals
  + / -       point size up / down      S          save screenshot PNG
  H           this help                 Q / Esc    close
  mouse: drag rotate, wheel zoom, shift+drag pan"""

_NO_DISPLAY_HINT = ("run it under a virtual X server (xvfb-run -a geomgen view ...) or render a PNG "
                    "instead: geomgen render PATH... -o out.png")

# GLFW key codes
_KEY_RIGHT, _KEY_LEFT, _KEY_ESCAPE = 262, 263, 256
_KEY_EQUAL, _KEY_MINUS, _KEY_KP_ADD, _KEY_KP_SUBTRACT = 61, 45, 334, 333


def check_display() -> None:
    """Raise :class:`~geomgen.errors.DisplayUnavailableError` on Linux when
    neither ``DISPLAY`` nor ``WAYLAND_DISPLAY`` is set (other platforms: no check)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise DisplayUnavailableError(f"geomgen view: no display available (DISPLAY and WAYLAND_DISPLAY are "
                                      f"unset); {_NO_DISPLAY_HINT}")


class Viewer:
    """A window on a sequence of items (each a list of Open3D geometries).

    Build it with :func:`show` (``block=False``).  ``index`` is the shown
    item; ``items`` the list; ``titles`` one label per item.  All methods are
    no-ops (or raise, for :meth:`screenshot`) once the window is closed.
    """

    def __init__(self, items: list[list[Any]], titles: Sequence[str] | None = None, *, width: int = 960,
                 height: int = 720, point_size: float = 3.0, wireframe: bool = False,
                 show_normals: bool = False, window_name: str = "geomgen view", verbose: bool = True) -> None:
        if not items:
            raise InvalidInputError("Viewer: no items to show")
        if titles is not None and len(titles) not in (1, len(items)):
            raise InvalidInputError(f"titles: expected {len(items)} titles (one per item), got {len(titles)}")
        width = V.check_int(width, "width", min_value=16, fn="Viewer")
        height = V.check_int(height, "height", min_value=16, fn="Viewer")
        point_size = V.check_float(point_size, "point_size", positive=True, fn="Viewer")
        check_display()
        self._o3d = import_open3d("geomgen.viewer.show")
        self.items = items
        self.titles = list(titles) * (len(items) if titles is not None and len(titles) == 1 else 1) \
            if titles is not None else [f"item {i + 1}/{len(items)}" for i in range(len(items))]
        self.index = 0
        self.point_size = float(point_size)
        self.wireframe = bool(wireframe)
        self.show_normals = bool(show_normals)
        self.verbose = verbose
        self.closed = False
        self._shots = 0
        self._shown: list[Any] = []
        vis = self._o3d.visualization.VisualizerWithKeyCallback()
        try:
            ok = vis.create_window(window_name=window_name, width=width, height=height, visible=True)
        except Exception as exc:  # noqa: BLE001 - GLFW errors surface as RuntimeError or others
            raise DisplayUnavailableError(f"geomgen view: cannot open a window ({exc}); {_NO_DISPLAY_HINT}") from exc
        if not ok:
            raise DisplayUnavailableError(f"geomgen view: Open3D could not create a window (no usable display "
                                          f"or OpenGL context); {_NO_DISPLAY_HINT}")
        self._vis = vis
        self._register_keys()
        self._apply_options()
        self._load(reset_view=True)
        if verbose:
            print(KEY_HELP, flush=True)

    # ------------------------------------------------------------------ internals
    def _register_keys(self) -> None:
        def cb(action: Any) -> Any:
            def callback(_vis: Any) -> bool:
                action()
                return True
            return callback

        keys = {
            ord("N"): self.next, _KEY_RIGHT: self.next,
            ord("P"): self.previous, _KEY_LEFT: self.previous,
            ord("W"): self.toggle_wireframe,
            ord("O"): self.toggle_normals,
            _KEY_EQUAL: lambda: self.set_point_size(self.point_size + 1.0),
            _KEY_KP_ADD: lambda: self.set_point_size(self.point_size + 1.0),
            _KEY_MINUS: lambda: self.set_point_size(self.point_size - 1.0),
            _KEY_KP_SUBTRACT: lambda: self.set_point_size(self.point_size - 1.0),
            ord("S"): self._key_screenshot,
            ord("H"): lambda: print(KEY_HELP, flush=True),
            ord("Q"): self._request_close, _KEY_ESCAPE: self._request_close,
        }
        for key, action in keys.items():
            self._vis.register_key_callback(key, cb(action))

    def _request_close(self) -> None:
        self._vis.close()

    def _key_screenshot(self) -> None:
        while True:
            path = Path(f"geomgen-view-{self._shots:03d}.png")
            self._shots += 1
            if not path.exists():
                break
        self.screenshot(path)

    def _apply_options(self) -> None:
        opt = self._vis.get_render_option()
        opt.point_size = self.point_size
        opt.mesh_show_wireframe = self.wireframe
        opt.mesh_show_back_face = True
        opt.point_show_normal = self.show_normals
        opt.background_color = np.ones(3)

    def _normal_lines(self) -> list[Any]:
        """Short line segments along the vertex normals of the current item's meshes."""
        o3d = self._o3d
        lo, hi = items_bounds(self.items[self.index])
        length = 0.03 * max(float((hi - lo).max()), 1e-9)
        out = []
        for g in self.items[self.index]:
            if isinstance(g, o3d.geometry.TriangleMesh) and len(g.vertices):
                if not g.has_vertex_normals():
                    g.compute_vertex_normals()
                v = np.asarray(g.vertices)
                n = np.asarray(g.vertex_normals)
                pts = np.concatenate([v, v + length * n])
                lines = np.stack([np.arange(len(v)), np.arange(len(v)) + len(v)], axis=1)
                ls = o3d.geometry.LineSet(o3d.utility.Vector3dVector(pts), o3d.utility.Vector2iVector(lines))
                ls.paint_uniform_color([0.1, 0.3, 0.9])
                out.append(ls)
            elif isinstance(g, o3d.geometry.PointCloud) and len(g.points) and not g.has_normals():
                g.estimate_normals()
        return out

    def _load(self, reset_view: bool) -> None:
        vis = self._vis
        view = vis.get_view_control().convert_to_pinhole_camera_parameters() if not reset_view else None
        vis.clear_geometries()
        self._shown = list(self.items[self.index])
        if self.show_normals:
            self._shown += self._normal_lines()
        for g in self._shown:
            vis.add_geometry(g, reset_bounding_box=True)
        if view is not None:
            vis.get_view_control().convert_from_pinhole_camera_parameters(view, allow_arbitrary=True)
        if self.verbose:
            print(f"[{self.index + 1}/{len(self.items)}] {self.titles[self.index]}", flush=True)
        self._render()

    def _render(self) -> None:
        self._vis.poll_events()
        self._vis.update_renderer()

    # ------------------------------------------------------------------ public API
    def step(self) -> bool:
        """Process pending window events and redraw once; False when the window was closed."""
        if self.closed:
            return False
        alive = bool(self._vis.poll_events())
        if not alive:
            self.close()
            return False
        self._vis.update_renderer()
        return True

    def go_to(self, index: int) -> None:
        """Show item ``index`` (wraps around; negative counts from the end)."""
        if self.closed:
            return
        self.index = int(index) % len(self.items)
        self._load(reset_view=True)

    def next(self) -> None:
        """Show the next batch element (wraps around)."""
        self.go_to(self.index + 1)

    def previous(self) -> None:
        """Show the previous batch element (wraps around)."""
        self.go_to(self.index - 1)

    def toggle_wireframe(self) -> bool:
        """Toggle the mesh wireframe overlay; returns the new state."""
        self.wireframe = not self.wireframe
        if not self.closed:
            self._vis.get_render_option().mesh_show_wireframe = self.wireframe
            self._render()
        return self.wireframe

    def toggle_normals(self) -> bool:
        """Toggle normals (point-cloud normals, mesh vertex-normal lines); returns the new state."""
        self.show_normals = not self.show_normals
        if not self.closed:
            self._vis.get_render_option().point_show_normal = self.show_normals
            self._load(reset_view=False)
        return self.show_normals

    def set_point_size(self, size: float) -> float:
        """Set the point size in pixels (clamped to [1, 25]); returns it."""
        self.point_size = float(min(max(size, 1.0), 25.0))
        if not self.closed:
            self._vis.get_render_option().point_size = self.point_size
            self._render()
        return self.point_size

    def capture(self) -> np.ndarray:
        """``(H, W, 3)`` float RGB in ``[0, 1]`` of the window as drawn now."""
        if self.closed:
            raise InvalidInputError("Viewer.capture: the window is closed")
        self._render()
        return np.asarray(self._vis.capture_screen_float_buffer(do_render=True)).copy()

    def screenshot(self, path: str | Path) -> Path:
        """Save the window as an 8-bit RGB PNG at ``path`` (folders created); returns the path."""
        from geomgen.io import save_image

        image = self.capture()
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        save_image(out, np.clip(image, 0.0, 1.0).astype(np.float32))
        if self.verbose:
            print(f"saved screenshot {out}", flush=True)
        return out

    def run(self) -> None:
        """Enter the event loop until the window is closed (``Q`` / ``Esc`` / the close button)."""
        if self.closed:
            return
        self._vis.run()
        self.close()

    def close(self) -> None:
        """Close the window and release it (idempotent)."""
        if self.closed:
            return
        self.closed = True
        self._vis.destroy_window()

    def __enter__(self) -> "Viewer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def show(*objects: Any, titles: Sequence[str] | None = None, width: int = 960, height: int = 720,
         point_size: float = 3.0, wireframe: bool = False, show_normals: bool = False, block: bool = True,
         layout: str = "side-by-side", normalize: bool = True, voxels_as: str = "mesh",
         window_name: str = "geomgen view", verbose: bool = True) -> Viewer | None:
    """Show geomgen data in an interactive Open3D window.

    Args:
        objects: ``Meshes`` (N, V, 3), ``PointClouds`` (N, P, 3), ``Voxels``
            (N, D, H, W), ``DepthMaps`` (N, H, W), sample dicts, file paths,
            ``(P, 3)`` / ``(N, P, 3)`` point tensors (see
            :mod:`geomgen.viewer.scene`).  Several objects are placed side by
            side along +x (e.g. ``show(pred, gt)``), each normalised to a
            longest edge of 1; ``N``/``P`` page through the batch.
        titles: one label per shown item (printed when it is shown), or one for all.
        width: window size in pixels.
        height: window size in pixels.
        point_size: point size in pixels.
        wireframe: initial state of the ``W`` / ``O`` toggles.
        show_normals: initial state of the ``W`` / ``O`` toggles.
        block: run the event loop until closed and return None; False: return
            the :class:`Viewer` handle at once (drive it with ``step()``).
        layout: see :func:`geomgen.viewer.scene.build_items`.
        normalize: see :func:`geomgen.viewer.scene.build_items`.
        voxels_as: see :func:`geomgen.viewer.scene.build_items`.
        window_name: the window title.
        verbose: print the key help and the item titles.

    Returns:
        None with ``block=True``, else the open :class:`Viewer`.

    Raises:
        DisplayUnavailableError: no display (see the module docstring).
        BackendUnavailableError: Open3D is missing (``pip install geomgen[viewer]``).
        InvalidInputError / FileFormatError / MeshFileNotFoundError: bad objects.
    """
    import_open3d("geomgen.viewer.show")
    check_display()
    items = build_items(*objects, layout=layout, normalize=normalize, voxels_as=voxels_as)
    viewer = Viewer(items, titles, width=width, height=height, point_size=point_size, wireframe=wireframe,
                    show_normals=show_normals, window_name=window_name, verbose=verbose)
    if not block:
        return viewer
    try:
        viewer.run()
    finally:
        viewer.close()
    return None
