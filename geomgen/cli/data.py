"""``geomgen data``: list, inspect, build and preview datasets.

    geomgen data list
    geomgen data info NAME [--root DIR] [--split S] [--set KEY=VALUE]... [--json]
    geomgen data build NAME [--root DIR] [--split S] [--set KEY=VALUE]...     (default: train, val and test)
    geomgen data preview NAME [-o sheet.png] [--split S] [-n N] [--view V] [--root DIR] [--set KEY=VALUE]...

``--set`` passes a keyword to the dataset; the value is parsed as JSON when
it can be (``--set per_category=2``, ``--set categories='["chair","mug"]'``),
else kept as a string.  A key the dataset itself takes goes to it; other keys
of :class:`~geomgen.data.pipeline.SampleConfig` (``image_size``,
``num_views``, ...) go into its ``config`` when it takes one;
``config.KEY=VALUE`` always goes into ``config``
(:func:`geomgen.cli._args.route_dataset_options`).  The contact sheet is
:func:`geomgen.data.preview.make_contact_sheet`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from geomgen.cli._args import add_set_argument, parse_sets, route_dataset_options
from geomgen.errors import InvalidInputError

__all__ = ["configure", "run"]


def _dataset_kwargs(name: str, args: argparse.Namespace, split: str | None) -> dict[str, Any]:
    """Keyword arguments of ``geomgen.get_dataset`` from the command line."""
    base: dict[str, Any] = {} if split is None else {"split": split}
    if args.root is not None:
        base["root"] = args.root
    return route_dataset_options(name, parse_sets(args.set), base)


def _add_common(p: argparse.ArgumentParser, split_help: str) -> None:
    p.add_argument("name", metavar="NAME", help="dataset name (see `geomgen data list`)")
    p.add_argument("--root", default=None, help="dataset folder (for shapes: where to keep the generated cache)")
    p.add_argument("--split", default=None, help=f"train, val, test or all (default: {split_help})")
    add_set_argument(p)


def configure(parser: argparse.ArgumentParser) -> None:
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


def run(args: argparse.Namespace) -> int:
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
        from geomgen.data.preview import make_contact_sheet
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
