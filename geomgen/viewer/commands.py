"""``geomgen view`` and ``geomgen render``.

* ``geomgen view PATH... [--side-by-side | --batch] [--point-size X] [--wireframe]
  [--normals] [--screenshot PNG]`` - an interactive Open3D window (keys: see
  :data:`geomgen.viewer.window.KEY_HELP`).  Several paths are shown side by side
  (default) or one after the other with ``--batch`` (N / P page through).
  ``--screenshot PNG`` saves the first view to PNG and closes the window.
* ``geomgen render PATH... -o OUT.png [--size 512] [--views N] [--backend
  auto|open3d|geomgen]`` - an offscreen PNG (several paths side by side, ``N``
  orbit views in a row); prints the path and the backend used.

Errors (missing or unreadable files, no display, Open3D missing) are
:mod:`geomgen.errors` errors: the CLI prints them and exits with status 1;
usage errors exit with 2 (argparse).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from geomgen.errors import InvalidInputError, MeshFileNotFoundError

__all__ = ["configure_view", "run_view", "configure_render", "run_render"]


def _check_paths(paths: list[str]) -> None:
    for p in paths:
        if not Path(p).expanduser().exists():
            raise MeshFileNotFoundError(f"{p}: no such file")


def configure_view(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="mesh, point cloud or voxel files (OBJ, PLY, OFF, STL, GLB, XYZ, PWN, NPZ, NPY, BINVOX)")
    layout = parser.add_mutually_exclusive_group()
    layout.add_argument("--side-by-side", dest="layout", action="store_const", const="side-by-side",
                        help="show the files next to each other, each scaled to the same size (default)")
    layout.add_argument("--batch", dest="layout", action="store_const", const="batch",
                        help="show the files one at a time; N / P (or Right / Left) page through them")
    parser.set_defaults(layout="side-by-side")
    parser.add_argument("--point-size", type=float, default=3.0, metavar="X",
                        help="point size in pixels (default: %(default)s)")
    parser.add_argument("--wireframe", action="store_true", help="start with the mesh wireframe shown (key W)")
    parser.add_argument("--normals", action="store_true", help="start with normals shown (key O)")
    parser.add_argument("--size", type=int, nargs=2, default=(960, 720), metavar=("W", "H"),
                        help="window size (default: 960 720)")
    parser.add_argument("--screenshot", metavar="PNG", default=None,
                        help="save a screenshot of the first view to PNG and close (no interaction)")


def run_view(args: argparse.Namespace) -> int:
    from geomgen.viewer.window import check_display, show

    _check_paths(args.paths)
    if not args.point_size > 0:
        raise InvalidInputError(f"--point-size: must be > 0, got {args.point_size}")
    check_display()
    titles = [Path(p).name for p in args.paths] if args.layout == "batch" else None
    viewer = show(*args.paths, titles=titles, width=args.size[0], height=args.size[1],
                  point_size=args.point_size, wireframe=args.wireframe, show_normals=args.normals,
                  block=False, layout=args.layout, window_name="geomgen view: " + " | ".join(
                      Path(p).name for p in args.paths), verbose=args.screenshot is None)
    assert viewer is not None
    try:
        if args.screenshot is not None:
            viewer.step()
            print(f"wrote {viewer.screenshot(args.screenshot)}")
        else:
            viewer.run()
    finally:
        viewer.close()
    return 0


def configure_render(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="mesh, point cloud or voxel files; several are laid out side by side")
    parser.add_argument("-o", "--output", required=True, metavar="OUT.png", help="the PNG to write")
    parser.add_argument("--size", type=int, default=512, metavar="PX",
                        help="pixels per view, square (default: %(default)s)")
    parser.add_argument("--views", type=int, default=1, metavar="N",
                        help="orbit views laid out in a row (default: %(default)s)")
    parser.add_argument("--backend", choices=("auto", "open3d", "geomgen"), default="auto",
                        help="renderer: Open3D's offscreen renderer, geomgen's rasterizer, or auto = Open3D "
                             "when it starts, else geomgen (default: %(default)s)")
    parser.add_argument("--point-size", type=float, default=3.0, metavar="X",
                        help="point size in pixels, Open3D backend (default: %(default)s)")


def run_render(args: argparse.Namespace) -> int:
    from geomgen.viewer.offscreen import render_png

    _check_paths(args.paths)
    if not 16 <= args.size <= 8192:
        raise InvalidInputError(f"--size: must be in [16, 8192], got {args.size}")
    if not 1 <= args.views <= 64:
        raise InvalidInputError(f"--views: must be in [1, 64], got {args.views}")
    if Path(args.output).suffix.lower() != ".png":
        raise InvalidInputError(f"-o {args.output}: the output must be a .png file")
    path, backend = render_png(list(args.paths), args.output, width=args.size, height=args.size,
                               views=args.views, backend=args.backend, point_size=args.point_size)
    print(f"wrote {path} (backend: {backend})")
    return 0
