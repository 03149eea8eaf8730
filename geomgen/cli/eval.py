"""``geomgen eval NAME... | all``: evaluate single-view models or generators on a dataset split.

* Representations: :func:`~geomgen.models.evaluate` (Mesh R-CNN protocol) on the
  test split, beside the mean-shape baseline, printed as a table (``--json``,
  ``--markdown`` also write it).
* Generators: :func:`~geomgen.generative.evaluate.evaluate_generator` (MMD, COV,
  1-NNA against the split, and the likelihood), one row per generator.
"""

from __future__ import annotations

import argparse
from typing import Any

from geomgen.cli._args import data_config, is_generator, route_dataset_options, weights_per_name, write_report
from geomgen.errors import InvalidInputError

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of ``geomgen eval``."""
    parser.add_argument("names", nargs="+", metavar="NAME",
                        help="representations to evaluate ('all' = every pretrained one; 'mean-shape' = the "
                             "baseline alone) or generators (their samples against the split: MMD, COV, 1-NNA, NLL)")
    parser.add_argument("--weights", action="append", metavar="PATH",
                        help="model file instead of the pretrained weights (repeat once per NAME, in order)")
    parser.add_argument("--dataset", default="shapes", help="registered dataset (default: %(default)s)")
    parser.add_argument("--split", default="test", help="split to evaluate on (default: %(default)s)")
    parser.add_argument("--data-config", metavar="JSON", default=None,
                        help="dataset options as JSON (default: the shipped weights' dataset config)")
    parser.add_argument("--view", type=int, default=0, help="view fed to the models (default: %(default)s)")
    parser.add_argument("--num-samples", type=int, default=None,
                        help="points per predicted and GT cloud (default: 10000; generators: 2048)")
    parser.add_argument("--generate", type=int, default=None, metavar="G",
                        help="generators: shapes to sample (default: as many as the split has)")
    parser.add_argument("--batch-size", type=int, default=16, help="images per forward pass (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the point sampling (default: %(default)s)")
    parser.add_argument("--device", default=None, help="device of the models (default: cpu)")
    parser.add_argument("--no-baseline", action="store_true", help="leave out the mean-shape baseline")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--per-category", dest="per_category", action="store_true", default=True,
                       help="one block per category, then the means (default)")
    group.add_argument("--summary", dest="per_category", action="store_false", help="only the means")
    parser.add_argument("--json", metavar="PATH", help="also write every report (per instance) as JSON")
    parser.add_argument("--markdown", metavar="PATH", help="also write the table as markdown")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                        help="progress bars (default: on)")


def _dataset(args: argparse.Namespace, dcfg: dict[str, Any], split: str, view: int) -> Any:
    import geomgen

    return geomgen.get_dataset(args.dataset, **route_dataset_options(args.dataset, dcfg, {"split": split,
                                                                                        "view": view}))


def _eval_models(args: argparse.Namespace) -> list[tuple[str, Any]]:
    """``(label, model)`` per NAME ('all' expanded; 'mean-shape' is handled by the caller)."""
    from geomgen.models.predict import resolve_model
    from geomgen.weights import list_pretrained

    names: list[str] = []
    for n in args.names:
        if n == "all":
            pre = list_pretrained(kind="representation")
            if not pre:
                from geomgen.weights import manifest_path

                raise InvalidInputError(f"eval all: no pretrained weights are installed (manifest "
                                        f"'{manifest_path()}'); train one with: geomgen train NAME")
            names.extend(p for p in pre if p not in names and p != "mean-shape")
        elif n not in names:
            names.append(n)
    models_only = [n for n in names if n != "mean-shape"]
    weights = weights_per_name(args.weights, models_only)
    return [(n, resolve_model(n, w, device=args.device)) for n, w in zip(models_only, weights)]


def _baseline(args: argparse.Namespace, dcfg: dict[str, Any]) -> Any:
    """The shipped mean-shape baseline when it was fitted on this dataset's train
    split (same dataset and config as the manifest's), else one fitted now."""
    from geomgen.models.baseline import MeanShape
    from geomgen.weights import list_pretrained, load_pretrained, read_manifest

    shipped = read_manifest().get("dataset", {})
    same = {k: v for k, v in dcfg.items() if k != "progress"} == {
        k: v for k, v in dict(shipped.get("config", {})).items() if k != "progress"}
    if "mean-shape" in list_pretrained() and args.dataset == shipped.get("name") and same:
        return load_pretrained("mean-shape")
    train = _dataset(args, dcfg, "train", args.view)
    return MeanShape().fit(train, progress=args.progress).eval()


def run(args: argparse.Namespace) -> int:
    """Evaluate, print the table and write the reports asked for; returns 0."""
    from geomgen.models.evaluate import evaluate, format_table

    dcfg = data_config(args.dataset, args.data_config)
    dcfg.setdefault("progress", args.progress)
    generators = [n for n in args.names if n != "all" and is_generator(n)]
    if generators:
        if len(generators) != len(args.names):
            raise InvalidInputError(f"eval: evaluate generators ({', '.join(generators)}) and representations "
                                    "in separate calls")
        return _run_generators(args, generators, dcfg)
    if args.num_samples is None:
        args.num_samples = 10000
    models = _eval_models(args)  # fail fast on unknown names / missing weights, before building data
    want_baseline = not args.no_baseline or "mean-shape" in args.names
    test = _dataset(args, dcfg, args.split, args.view)
    if want_baseline:
        models.append(("mean-shape", _baseline(args, dcfg)))
    reports = {}
    for label, model in models:
        reports[label] = evaluate(model, test, view=args.view, num_samples=args.num_samples,
                                  batch_size=args.batch_size, seed=args.seed, progress=args.progress,
                                  device=args.device, name=label)
    print(f"{args.dataset} {args.split} split: {len(test)} shapes, view {args.view}, {args.num_samples} points, "
          "gt-10 scale (Chamfer-L2 of squared distances, F1 in %, IoU fraction)")
    print(format_table(reports, per_category=args.per_category))
    write_report(args.markdown, lambda: format_table(reports, per_category=args.per_category, markdown=True))
    write_report(args.json, lambda: {k: r.to_dict() for k, r in reports.items()})
    return 0


def _run_generators(args: argparse.Namespace, names: list[str], dcfg: dict[str, Any]) -> int:
    """The generator part of ``geomgen eval``: one row per generator."""
    from geomgen.generative import load_generator
    from geomgen.generative.evaluate import evaluate_generator, format_generator_table

    weights = weights_per_name(args.weights, names)
    models = [load_generator(n, w, args.device) for n, w in zip(names, weights)]
    test = _dataset(args, dcfg, args.split, 0)
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
    write_report(args.markdown, lambda: format_generator_table(reports, markdown=True))
    write_report(args.json, lambda: {k: r.to_dict() for k, r in reports.items()})
    return 0
