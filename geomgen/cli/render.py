"""``geomgen render PATH... -o OUT.png [--size 512] [--views N] [--backend auto|open3d|geomgen]``:
an offscreen PNG (:func:`geomgen.viewer.render_png`; several paths side by side, ``N``
orbit views in a row); prints the path and the backend used.  Takes the dataset and
prediction sources of ``geomgen view`` (:func:`geomgen.cli.view.add_sources`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from geomgen.cli.view import add_sources, load_sources
from geomgen.errors import InvalidInputError

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of ``geomgen render``."""
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="mesh, point cloud, voxel or depth-map files (as for geomgen view); several are laid out "
                             "side by side")
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
    add_sources(parser)



def run(args: argparse.Namespace) -> int:
    """Render and write the PNG; returns 0."""
    from geomgen.viewer.offscreen import render_png

    if not 16 <= args.size <= 8192:
        raise InvalidInputError(f"--size: must be in [16, 8192], got {args.size}")
    if not 1 <= args.views <= 64:
        raise InvalidInputError(f"--views: must be in [1, 64], got {args.views}")
    if Path(args.output).suffix.lower() != ".png":
        raise InvalidInputError(f"-o {args.output}: the output must be a .png file")
    objects, _ = load_sources(args)
    path, backend = render_png(objects, args.output, width=args.size, height=args.size,
                               views=args.views, backend=args.backend, point_size=args.point_size)
    print(f"wrote {path} (backend: {backend})")
    return 0
