"""``geomgen render PATH... -o OUT.png [--size 512] [--views N] [--backend auto|open3d|geomgen]``:
an offscreen PNG (:func:`geomgen.viewer.render_png`; several paths side by side, ``N``
orbit views in a row); prints the path and the backend used.  Takes the dataset and
prediction sources of ``geomgen view`` (:func:`geomgen.cli.view.add_sources`).

``--save-cameras CAMERAS.json`` writes the views' cameras (:func:`geomgen.io.save_cameras`)
and ``--save-masks DIR`` their silhouettes as ``DIR/view_000.png`` ... (white = object;
:func:`geomgen.viewer.render_masks`), the input of ``geomgen fit DIR --cameras CAMERAS.json``.
The cameras are those of the PNG's views, in the frame of the normalised scene (each object
centred and scaled to a longest edge of 1).
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
    parser.add_argument("--save-cameras", metavar="CAMERAS.json",
                        help="also write the views' cameras (K, world_from_camera; the input of geomgen fit)")
    parser.add_argument("--save-masks", metavar="DIR",
                        help="also write each view's silhouette as DIR/view_000.png, ... (created)")
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
    if args.save_cameras is not None and Path(args.save_cameras).suffix.lower() != ".json":
        raise InvalidInputError(f"--save-cameras {args.save_cameras}: the cameras file must be a .json file")
    objects, _ = load_sources(args)
    path, backend = render_png(objects, args.output, width=args.size, height=args.size,
                               views=args.views, backend=args.backend, point_size=args.point_size)
    print(f"wrote {path} (backend: {backend})")
    if args.save_cameras is not None or args.save_masks is not None:
        _save_views(objects, args)
    return 0


def _save_views(objects: list, args: argparse.Namespace) -> None:
    """``--save-cameras`` / ``--save-masks``: the views' cameras and silhouettes."""
    import os

    from geomgen.io import save_cameras, save_image
    from geomgen.viewer.offscreen import render_masks

    objs = tuple(objects) if isinstance(objects, (list, tuple)) else (objects,)
    masks, cameras = render_masks(*objs, width=args.size, height=args.size, views=args.views)
    names = [f"view_{i:03d}" for i in range(len(cameras))]
    files = None
    if args.save_masks is not None:
        folder = Path(args.save_masks).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        files = [folder / f"{name}.png" for name in names]
        for file, mask in zip(files, masks):
            save_image(file, mask)
        print(f"wrote {len(files)} masks to {folder}")
    if args.save_cameras is not None:
        out = Path(args.save_cameras).expanduser()
        out.parent.mkdir(parents=True, exist_ok=True)
        rel = None if files is None else [Path(os.path.relpath(f, out.parent)).as_posix() for f in files]
        save_cameras(out, cameras, names=names, masks=rel)
        print(f"wrote {out} ({len(cameras)} cameras)")
