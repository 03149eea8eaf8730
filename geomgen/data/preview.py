"""Contact sheets of dataset samples, and the ``geomgen data`` command.

:func:`make_contact_sheet` tiles a few samples of any geomgen dataset: one row
per sample, columns = the input image, its depth map (false colour, near
bright), its mask, and a render of the ground-truth mesh from a fixed 3/4
view (azimuth 45, elevation 30 degrees, same intrinsics), so a wrong camera,
a broken normalisation or a mislabelled mask shows at a glance.  Keys a
dataset does not provide (R2N2 has no depth) give a blank tile labelled
``"no <key>"``.

Command line (registered by :mod:`geomgen.builtin`)::

    geomgen data list
    geomgen data info NAME [--root DIR] [--split S] [--set KEY=VALUE]... [--json]
    geomgen data build NAME [--root DIR] [--split S] [--set KEY=VALUE]...     (default: train, val and test)
    geomgen data preview NAME [-o sheet.png] [--split S] [-n N] [--view V] [--root DIR] [--set KEY=VALUE]...

``--set`` passes a keyword to the dataset; the value is parsed as JSON when
it can be (``--set per_category=2``, ``--set categories='["chair","mug"]'``),
else kept as a string.  A key the dataset itself takes goes to it; other keys
of :class:`~geomgen.data.pipeline.SampleConfig` (``image_size``,
``num_views``, ...) go into its ``config`` when it takes one;
``config.KEY=VALUE`` always goes into ``config``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from geomgen.errors import InvalidInputError

__all__ = ["make_contact_sheet", "pick_indices", "configure_cli", "run_cli"]

#: Azimuth / elevation (degrees) of the ground-truth mesh render.
GT_VIEW = (45.0, 30.0)


def pick_indices(dataset: Any, num: int) -> list[int]:
    """``num`` sample indices that cycle through the categories (first sample of
    each category, then the second, ...), or ``0 .. num-1`` for datasets without
    ``records``."""
    n = len(dataset)
    records = getattr(dataset, "records", None) or getattr(dataset, "models", None)
    if not records:
        return list(range(min(num, n)))
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        groups.setdefault(getattr(r, "category", ""), []).append(i)
    out: list[int] = []
    depth = 0
    while len(out) < min(num, n):
        for idx in groups.values():
            if depth < len(idx) and len(out) < num:
                out.append(idx[depth])
        depth += 1
    return out


def _upsample(t: Any, factor: int) -> Any:
    """Nearest-neighbour upsampling of a ``(C, H, W)`` tensor by an integer factor."""
    return t.repeat_interleave(factor, -2).repeat_interleave(factor, -1) if factor > 1 else t


def make_contact_sheet(dataset: Any, indices: list[int] | None = None, *, num: int = 4, view: int = 0,
                       tile_size: int = 128, labels: bool = True) -> Any:
    """Contact sheet of samples of ``dataset`` (see the module docstring).

    Args:
        dataset: a geomgen dataset (``__getitem__`` returns sample dicts).
        indices: samples to show; default :func:`pick_indices` (``num`` of them).
        num: number of samples when ``indices`` is None (>= 1).
        view: which returned view of each sample to show (index into ``S``).
        tile_size: tiles are at least this many pixels: images, depths and masks
            are upsampled (nearest) by the smallest integer factor reaching it;
            the mesh is rendered directly at the tile size.
        labels: print the sample id / column names under the tiles.

    Returns:
        ``(3, H', W')`` float32 sheet in [0, 1] (rows = samples, 4 columns);
        see :func:`geomgen.io.image_grid` for the size.

    Raises:
        InvalidInputError: bad ``num``/``view``/``indices``, or samples without images.
    """
    import torch

    from geomgen.io.images import colorize_depth, image_grid

    if isinstance(num, bool) or not isinstance(num, int) or num < 1:
        raise InvalidInputError(f"make_contact_sheet: argument 'num' must be an int >= 1, got {num!r}")
    if isinstance(tile_size, bool) or not isinstance(tile_size, int) or tile_size < 1:
        raise InvalidInputError(f"make_contact_sheet: argument 'tile_size' must be an int >= 1, got {tile_size!r}")
    if indices is None:
        indices = pick_indices(dataset, num)
    if not indices:
        raise InvalidInputError("make_contact_sheet: no samples to show (empty dataset or indices)")
    tiles: list[torch.Tensor] = []
    names: list[str] = []
    for i in indices:
        s = dataset[i]
        if "images" not in s:
            raise InvalidInputError(f"make_contact_sheet: sample {i} of {type(dataset).__name__} has no images")
        S = s["images"].shape[0]
        if isinstance(view, bool) or not isinstance(view, int) or not 0 <= view < S:
            raise InvalidInputError(f"make_contact_sheet: argument 'view' must be an int in [0, {S}), got {view!r}")
        image = s["images"][view].float()
        H, W = image.shape[-2:]
        f = max(1, -(-tile_size // max(H, W)))
        blank = torch.ones(3, H * f, W * f)
        tiles.append(_upsample(image, f))
        names.append(f"{s.get('id', i)}")
        if "depths" in s:
            d = s["depths"][view].float()
            m = s["masks"][view] if "masks" in s else d > 0
            tiles.append(_upsample(colorize_depth(d, m), f) if bool(m.any()) else blank)
            names.append(f"depth {float(d[m].min()):.2f}-{float(d[m].max()):.2f}" if bool(m.any()) else "depth (empty)")
        else:
            tiles.append(blank)
            names.append("no depth")
        if "masks" in s:
            m = s["masks"][view]
            tiles.append(_upsample(m.float()[None].expand(3, -1, -1), f))
            names.append(f"mask {float(m.float().mean()):.0%}")
        else:
            tiles.append(blank)
            names.append("no mask")
        tiles.append(_render_gt(s, view, (H * f, W * f)) if "verts" in s and "K" in s else blank)
        names.append(f"mesh az{GT_VIEW[0]:.0f} el{GT_VIEW[1]:.0f}" if "verts" in s and "K" in s else "no mesh")
    return image_grid(tiles, 4, labels=names if labels else None)


def _render_gt(s: dict[str, Any], view: int, hw: tuple[int, int]) -> Any:
    """The GT mesh rendered from :data:`GT_VIEW` at the distance of the sample's camera."""
    import torch

    from geomgen.render import PerspectiveCameras, orbit_poses, render_meshes
    from geomgen.structures import Meshes

    K = s["K"][view].double().clone()
    H0, W0 = s["images"].shape[-2:]
    K[0] *= hw[1] / W0
    K[1] *= hw[0] / H0
    dist = float(s["world_from_camera"][view, :3, 3].norm())
    pose = orbit_poses(GT_VIEW[0], GT_VIEW[1], max(dist, 1e-3), up=(0.0, 1.0, 0.0)).double()
    mesh = Meshes([s["verts"].float()], [s["faces"]])
    cams = PerspectiveCameras(K.float(), pose.float(), hw)
    return render_meshes(mesh, cams, colors=torch.tensor([0.55, 0.7, 0.9])).image[0]


# ----------------------------------------------------------------------------- CLI
def _parse_sets(items: list[str] | None) -> list[tuple[str, Any]]:
    out = []
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(f"--set {item!r}: expected KEY=VALUE")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        out.append((key.strip(), value))
    return out


def _builder_keywords(build: Any) -> set[str] | None:
    """Keywords a dataset builder accepts: those of the class named by its
    ``dataset_class`` attribute (``"module:Class"``, as geomgen's builders set),
    else of its own signature; None when unknown (``**kwargs``)."""
    import importlib
    import inspect

    from geomgen.builtin import _accepted_keywords

    target = getattr(build, "dataset_class", None)
    if isinstance(target, str) and ":" in target:
        module, _, attr = target.partition(":")
        return _accepted_keywords(getattr(importlib.import_module(module), attr))
    try:
        params = inspect.signature(build).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _dataset_kwargs(name: str, args: argparse.Namespace, split: str | None) -> dict[str, Any]:
    """Keyword arguments of ``geomgen.get_dataset`` from the command line."""
    import dataclasses

    from geomgen._registry import get_plugin_manager
    from geomgen.data.pipeline import SampleConfig

    spec = get_plugin_manager().get_spec("dataset", name)  # unknown name: error with suggestions
    accepted = _builder_keywords(spec.build)
    uses_config = accepted is not None and "config" in accepted
    fields = {f.name for f in dataclasses.fields(SampleConfig)}
    kwargs: dict[str, Any] = {} if split is None else {"split": split}
    if args.root is not None:
        kwargs["root"] = args.root
    config: dict[str, Any] = {}
    for key, value in _parse_sets(args.set):
        if key.startswith("config."):
            config[key[len("config."):]] = value
        elif key in fields and uses_config and key not in accepted:  # type: ignore[operator]
            config[key] = value
        else:
            kwargs[key] = value
    if config:
        kwargs["config"] = SampleConfig.from_dict({**dict(kwargs.get("config") or {}), **config})
    return kwargs


def _add_common(p: argparse.ArgumentParser, split_help: str) -> None:
    p.add_argument("name", metavar="NAME", help="dataset name (see `geomgen data list`)")
    p.add_argument("--root", default=None, help="dataset folder (for shapes: where to keep the generated cache)")
    p.add_argument("--split", default=None, help=f"train, val, test or all (default: {split_help})")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="dataset option, repeatable; JSON values (e.g. per_category=2, image_size=128); "
                        "SampleConfig keys go into config (force with config.KEY=VALUE)")


def configure_cli(parser: argparse.ArgumentParser) -> None:
    """Sub-commands of ``geomgen data``: list, info, build, preview."""
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")
    sub.required = True
    sub.add_parser("list", help="list the installed datasets")
    p = sub.add_parser("info", help="build (if needed) and summarise a dataset split")
    _add_common(p, "the dataset's default")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p = sub.add_parser("build", help="build a dataset's cache ahead of time (e.g. before a multi-process job)")
    _add_common(p, "every split")
    p = sub.add_parser("preview", help="write a PNG contact sheet of a few samples")
    _add_common(p, "the dataset's default")
    p.add_argument("-o", "--output", default="sheet.png", help="PNG file to write (default: %(default)s)")
    p.add_argument("-n", "--num", type=int, default=4, help="samples (rows) to show (default: %(default)s)")
    p.add_argument("--view", type=int, default=0, help="which view of each sample to show (default: %(default)s)")
    p.add_argument("--tile-size", type=int, default=128, help="minimum tile size in pixels (default: %(default)s)")


def _run_list() -> int:
    import geomgen
    from geomgen._registry import get_plugin_manager

    pm = get_plugin_manager()
    names = geomgen.list_datasets()
    width = max((len(n) for n in names), default=4)
    for n in names:
        print(f"{n:<{width}}  {pm.get_spec('dataset', n).description}")
    return 0


def run_cli(args: argparse.Namespace) -> int:
    """Run ``geomgen data ACTION``; returns the exit code."""
    import geomgen

    action = args.data_command
    if action == "list":
        return _run_list()
    if action == "preview" and args.num < 1:
        raise InvalidInputError(f"--num: must be >= 1, got {args.num}")
    from geomgen.errors import DatasetError

    splits: list[str | None] = ["train", "val", "test"] if action == "build" and args.split is None else [args.split]
    datasets, built = [], []
    for split in splits:
        kwargs = _dataset_kwargs(args.name, args, split)
        try:
            datasets.append(geomgen.get_dataset(args.name, **kwargs))
            built.append(split)
        except DatasetError as e:
            if len(splits) == 1:
                raise
            print(f"{args.name} [{split}]: {e}")
    if not datasets:
        raise DatasetError(f"{args.name}: every split is empty")
    splits = built
    ds = datasets[0]
    if action == "preview":
        from geomgen.io.images import save_image

        out = Path(args.output)
        if out.suffix.lower() != ".png":
            raise InvalidInputError(f"-o/--output: the contact sheet is a PNG, got '{out}'")
        sheet = make_contact_sheet(ds, num=args.num, view=args.view, tile_size=args.tile_size)
        save_image(out, sheet)
        print(f"wrote {out} ({sheet.shape[2]}x{sheet.shape[1]} px, {min(args.num, len(ds))} samples of "
              f"{args.name} {getattr(ds, 'split', args.split)})")
        return 0
    infos = [d.info() if hasattr(d, "info") else {"name": args.name, "split": getattr(d, "split", s),
                                                  "samples": len(d)} for d, s in zip(datasets, splits)]
    if action == "info" and args.json:
        print(json.dumps(infos[0], indent=2))
        return 0
    for info in infos:
        _print_info(info)
    return 0


def _print_info(info: dict[str, Any]) -> None:
    out = sys.stdout
    print(f"{info.get('name')} [{info.get('split')}]: {info.get('samples')} samples", file=out)
    for key, value in info.items():
        if key in ("name", "split", "samples"):
            continue
        if key == "categories" and isinstance(value, dict):
            value = ", ".join(f"{c} {n}" for c, n in value.items())
        elif key == "cache_bytes":
            value = f"{value / 1e6:.1f} MB"
        elif isinstance(value, dict):
            value = json.dumps(value)
        print(f"  {key:<12} {value}", file=out)
