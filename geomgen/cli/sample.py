"""``geomgen sample --generator NAME -n 16 -o samples/``: draw shapes with a (pretrained) generator.

Writes one mesh per sample (plus the raw voxel grid or point cloud with
``--raw``) and a PNG grid of renders (:func:`geomgen.render.render_samples`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from geomgen.cli._args import json_arg
from geomgen.errors import InvalidInputError

__all__ = ["configure", "run", "MESH_FORMATS"]

#: Mesh formats ``geomgen sample --format`` writes.
MESH_FORMATS: tuple[str, ...] = ("obj", "ply", "off", "stl")


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of ``geomgen sample``."""
    parser.add_argument("--generator", "-g", metavar="NAME", default=None,
                        help="generator to sample (geomgen plugins lists them); default: the one in --weights")
    parser.add_argument("-n", "--num", type=int, default=16, metavar="N", help="shapes to draw (default: %(default)s)")
    parser.add_argument("-o", "--output", required=True, metavar="DIR",
                        help="folder for sample-000.obj ... and grid.png (created)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default: %(default)s)")
    parser.add_argument("--condition", metavar="CLASS", default=None,
                        help="class name or integer label for class-conditional generators")
    parser.add_argument("--weights", metavar="PATH", default=None,
                        help="model file (geomgen train's model.pt) instead of the pretrained weights")
    parser.add_argument("--format", choices=MESH_FORMATS, default="obj", help="mesh format (default: %(default)s)")
    parser.add_argument("--raw", action="store_true",
                        help="also write the raw samples: .binvox grids (voxel generators) or .ply point clouds")
    parser.add_argument("--grid", metavar="PNG", default=None, help="PNG grid of renders (default: DIR/grid.png)")
    parser.add_argument("--no-grid", action="store_true", help="do not render the PNG grid")
    parser.add_argument("--tile-size", type=int, default=128, help="pixels per rendered sample (default: %(default)s)")
    parser.add_argument("--options", metavar="JSON", default=None,
                        help="model-specific sampling options as JSON, e.g. '{\"temperature\": 0.9}'")
    parser.add_argument("--device", default=None, help="device (default: cpu)")


def _condition(text: str | None) -> Any:
    if text is None:
        return None
    return int(text) if text.lstrip("-").isdigit() else text


def run(args: argparse.Namespace) -> int:
    """Sample, write the meshes (and raw samples) and the grid; returns 0."""
    from geomgen.generative import load_generator
    from geomgen.io import save_image, save_mesh
    from geomgen.render import render_samples

    if args.num < 1:
        raise InvalidInputError(f"-n: must be >= 1, got {args.num}")
    if args.tile_size < 16:
        raise InvalidInputError(f"--tile-size: must be >= 16, got {args.tile_size}")
    options = json_arg(args.options, "--options")
    name, model = load_generator(args.generator, args.weights, args.device)
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"-o {out}: exists and is not a folder")
    samples = model.sample(args.num, condition=_condition(args.condition), seed=args.seed, **options)
    meshes = model.to_meshes(samples).cpu()
    out.mkdir(parents=True, exist_ok=True)
    digits = max(3, len(str(args.num - 1)))
    written = []
    for i in range(args.num):
        path = out / f"sample-{i:0{digits}d}.{args.format}"
        save_mesh(path, meshes, i)
        written.append(path)
        if args.raw:
            written.append(_write_raw(out / f"sample-{i:0{digits}d}", samples, i))
    empty = sum(int(f.shape[0] == 0) for f in meshes.faces_list())
    print(f"{name}: {args.num} samples (seed {args.seed}) -> {out}/sample-*.{args.format}"
          + (f" ({empty} empty)" if empty else ""))
    if not args.no_grid:
        grid = Path(args.grid) if args.grid else out / "grid.png"
        if grid.suffix.lower() != ".png":
            raise InvalidInputError(f"--grid {grid}: must be a .png file")
        labels = [f"#{i}" for i in range(args.num)]
        grid.parent.mkdir(parents=True, exist_ok=True)
        save_image(grid, render_samples(meshes, args.tile_size, labels))
        print(f"  grid: {grid}")
    return 0


def _write_raw(stem: Path, samples: Any, i: int) -> Path:
    if hasattr(samples, "grids"):
        from geomgen.io import save_binvox

        path = stem.with_suffix(".binvox")
        save_binvox(path, samples, i, threshold=0.5)
        return path
    from geomgen.io import save_pointcloud

    path = stem.with_name(stem.name + ".points.ply")
    save_pointcloud(path, samples, i)
    return path
