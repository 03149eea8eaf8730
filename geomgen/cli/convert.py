"""``geomgen convert SRC DST``: a mesh or point cloud to another file format (by DST's extension)."""

from __future__ import annotations

import argparse
from pathlib import Path

from geomgen.cli._args import POINTCLOUD_SUFFIXES, load_shape
from geomgen.errors import InvalidInputError

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of ``geomgen convert``."""
    parser.add_argument("src", metavar="SRC", help="input mesh or point cloud")
    parser.add_argument("dst", metavar="DST", help="output file; the format follows the extension")


def run(args: argparse.Namespace) -> int:
    """Convert ``SRC`` to ``DST``; returns 0."""
    from geomgen.io import save_mesh, save_pointcloud

    kind, obj = load_shape(args.src)
    if kind == "mesh" and Path(args.dst).suffix.lower() in POINTCLOUD_SUFFIXES:
        raise InvalidInputError(f"{args.dst}: a point-cloud format cannot hold the faces of {args.src}")
    (save_mesh if kind == "mesh" else save_pointcloud)(args.dst, obj)
    print(f"wrote {args.dst}")
    return 0
