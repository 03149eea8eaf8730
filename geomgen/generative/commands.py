"""``geomgen sample`` and the generator side of ``geomgen train`` / ``geomgen eval``.

* ``geomgen sample --generator vae -n 16 -o samples/`` - draws shapes with a
  (pretrained) generator, writes one mesh per sample (plus the raw voxel grid
  or point cloud with ``--raw``) and a PNG grid of renders.
* ``geomgen train NAME`` with a generator name runs
  :func:`~geomgen.generative.train_generator`.
* ``geomgen eval NAME`` with generator names prints MMD / COV / 1-NNA and the
  likelihood against the test split (:func:`~geomgen.generative.evaluate_generator`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from geomgen.errors import InvalidInputError, UnknownComponentError

__all__ = ["load_generator", "render_samples", "configure_sample", "run_sample", "run_eval_generators",
           "MESH_FORMATS"]

#: Mesh formats ``geomgen sample --format`` writes.
MESH_FORMATS: tuple[str, ...] = ("obj", "ply", "off", "stl")


def load_generator(name: str | None = None, weights: str | Path | None = None,
                   device: Any = None) -> tuple[str, Any]:
    """``(registry name, model)``: the model file ``weights`` (whose name must be
    ``name`` unless that is None) or the pretrained weights of generator ``name``,
    in eval mode on ``device`` (default cpu).

    Raises:
        UnknownComponentError: ``name`` is not an installed generator (with suggestions).
        InvalidInputError: the weights are another model; neither argument given.
        geomgen.weights.PretrainedNotFoundError: no shipped weights for ``name``.
    """
    import geomgen
    from geomgen.generative.base import ShapeGenerator

    dev = torch.device(device) if device is not None else torch.device("cpu")
    if weights is not None:
        from geomgen.errors import MeshFileNotFoundError
        from geomgen.weights import load_model
        from geomgen.train.checkpoint import load_checkpoint

        path = Path(weights).expanduser()
        if not path.is_file():
            raise MeshFileNotFoundError(f"sample: weights file '{path}' does not exist")
        found = load_checkpoint(path, map_location="cpu").get("name")
        if name is not None and found != name:
            raise InvalidInputError(f"sample: weights '{path}' are a {found!r} model, not {name!r}")
        model = load_model(path, map_location=dev)
        name = str(found)
    else:
        if name is None:
            raise InvalidInputError("sample: give a generator name or weights")
        generators = geomgen.list_models(kind="generator")
        if name not in generators:
            import difflib

            close = difflib.get_close_matches(name, generators, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            what = " (a representation: use geomgen predict)" if name in geomgen.list_models(kind="representation") \
                else ""
            raise UnknownComponentError(f"no generator named {name!r}{what}.{hint} Available: "
                                        f"{', '.join(generators) or 'none'}")
        from geomgen.weights import load_pretrained

        model = load_pretrained(name, device=dev)
    if not isinstance(model, ShapeGenerator):
        raise InvalidInputError(f"sample: {name!r} is not a generator ({type(model).__name__})")
    return name, model.to(dev).eval()


def render_samples(meshes: Any, size: int = 128, labels: list[str] | None = None,
                   ncols: int | None = None) -> torch.Tensor:
    """``(3, H, W)`` contact sheet: each mesh of the batch rendered from an
    orbit view (azimuth 30, elevation 20 degrees), at the object frame's
    scale (the ``[-0.5, 0.5]^3`` cube fills a tile), Lambert shaded; empty
    meshes give white tiles."""
    import math

    from geomgen.io import image_grid
    from geomgen.models.commands import render_prediction

    tiles = [render_prediction(v, f, "object", size, fit=False) for v, f in zip(meshes.verts_list(),
                                                                                  meshes.faces_list())]
    n = len(tiles)
    cols = ncols or max(1, math.ceil(math.sqrt(n)))
    return image_grid(tiles, cols, labels=labels)


# ----------------------------------------------------------------------------- sample
def configure_sample(parser: argparse.ArgumentParser) -> None:
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


def run_sample(args: argparse.Namespace) -> int:
    from geomgen.io import save_image, save_mesh
    from geomgen.models.commands import _json_arg

    if args.num < 1:
        raise InvalidInputError(f"-n: must be >= 1, got {args.num}")
    if args.tile_size < 16:
        raise InvalidInputError(f"--tile-size: must be >= 16, got {args.tile_size}")
    options = _json_arg(args.options, "--options")
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


# ----------------------------------------------------------------------------- eval
def run_eval_generators(args: argparse.Namespace, names: list[str], dcfg: dict[str, Any]) -> int:
    """The generator part of ``geomgen eval``: one row per generator."""
    import geomgen
    from geomgen.generative.evaluate import evaluate_generator, format_generator_table

    weights = list(args.weights or [])
    if weights and len(weights) != len(names):
        raise InvalidInputError(f"--weights: give one per NAME ({len(names)}: {', '.join(names)}), got {len(weights)}")
    models = [load_generator(n, weights[i] if weights else None, args.device) for i, n in enumerate(names)]
    test = geomgen.get_dataset(args.dataset, split=args.split, view=0, **dcfg)
    points = args.num_samples or 2048
    reports = {}
    for name, model in models:
        reports[name] = evaluate_generator(model, test, num_samples=args.generate, seed=args.seed,
                                           num_points=points, name=name)
    r0 = next(iter(reports.values()))
    print(f"{args.dataset} {args.split} split: {r0.num_references} reference shapes, {r0.num_samples} samples "
          f"(seed {args.seed}), Chamfer on {points} points (squared, summed, object frame), IoU at each "
          "model's resolution; 1-NNA ideal 50 %")
    print(format_generator_table(reports))
    if args.markdown:
        Path(args.markdown).write_text(format_generator_table(reports, markdown=True) + "\n")
        print(f"wrote {args.markdown}")
    if args.json:
        Path(args.json).write_text(json.dumps({k: r.to_dict() for k, r in reports.items()}, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0
