"""``geomgen train NAME``: train a representation or a generator with the core trainer.

:func:`~geomgen.models.train_representation` (or, for a generator name,
:func:`~geomgen.generative.train_generator`) with every
:class:`~geomgen.train.TrainConfig` flag.  Defaults: the shipped model's recipe
(pretrained manifest) where there is one, else the defaults shown; flags given
on the command line override both; ``--out-dir runs/NAME``.  Works under
``torchrun -m geomgen.cli train ...``.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from geomgen.cli._args import data_config, is_generator, json_arg, manifest, parse_sets, route_dataset_options

__all__ = ["configure", "run", "recipe"]

OUT_DIR_HELP = "folder for model.pt, metrics.csv, loss.png and checkpoints (default: runs/NAME)"


class _Default:
    """A flag's default value, not given on the command line."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return repr(self.value)


def _fields(cls: type) -> list[Any]:
    return [f for f in dataclasses.fields(cls) if not f.name.startswith("_")]


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of ``geomgen train``: the dataset and model options, then every TrainConfig flag."""
    from geomgen.train import TrainConfig

    parser.add_argument("name", metavar="NAME", help="representation or generator to train (geomgen plugins lists "
                                                     "them)")
    parser.add_argument("--dataset", default="shapes", help="registered dataset (default: %(default)s)")
    parser.add_argument("--data-config", metavar="JSON", default=None,
                        help="dataset options as JSON, e.g. '{\"per_category\": {\"train\": 100}}' "
                             "(default: the shipped weights' dataset config)")
    parser.add_argument("--model-config", metavar="JSON", default=None,
                        help="model build options as JSON (default: the model's config defaults; "
                             "'geomgen models NAME' lists the keys)")
    parser.add_argument("--set", dest="model_set", action="append", default=None, metavar="KEY=VALUE",
                        help="one model config key, repeatable, over --model-config; JSON values "
                             "(e.g. code_dim=64, decoder_channels='[32,16,8]'); checked against the model's config")
    defaults = TrainConfig(max_steps=2000, val_every=250, early_stopping_metric="F1@0.3",
                           early_stopping_mode="max")
    actions = TrainConfig.add_arguments(parser, defaults)
    actions["out_dir"].help = OUT_DIR_HELP
    parser.description = ("Train a representation or a generator with the core trainer. Defaults: the shipped "
                          "weights' recipe (pretrained manifest) where there is one, else the defaults shown (for "
                          "generators: validation loss, no early stopping); flags override both.")
    # defaults are wrapped so that run can tell them from given flags: recipe < flags
    parser.set_defaults(**{name: _Default(action.default) for name, action in actions.items()})


def recipe(name: str) -> dict[str, Any]:
    """TrainConfig fields of the shipped weights' recipe of ``name`` (manifest
    ``models[name]["train"]["recipe"]``), without the run-specific ones (out_dir,
    resume, device, progress, num_workers, tensorboard, plot); ``{}`` when none."""
    from geomgen.train import TrainConfig

    entry = manifest().get("models", {}).get(name) or {}
    train = entry.get("train") or {}
    if isinstance(train, dict):  # {"recipe": {...}} (scripts/train_pretrained.py), {"config": {...}} or flat
        train = train.get("recipe", train.get("config", train))
    names = {f.name for f in dataclasses.fields(TrainConfig)} - {"out_dir", "resume", "device", "progress",
                                                                  "num_workers", "tensorboard", "plot"}
    return {k: v for k, v in train.items() if k in names} if isinstance(train, dict) else {}


def run(args: argparse.Namespace) -> int:
    """Train, then print where the model, metrics and plot are; returns 0."""
    from geomgen.models import training
    from geomgen.train import TrainConfig

    generator = is_generator(args.name)
    shipped = recipe(args.name)  # the shipped recipe beats our defaults, given flags beat the recipe
    cfg: dict[str, Any] = {}
    for f in _fields(TrainConfig):
        value = getattr(args, f.name, None)
        if isinstance(value, _Default):
            default = value.value
            if generator and f.name in ("early_stopping_metric", "early_stopping_mode"):
                default = None if f.name == "early_stopping_metric" else "min"  # no F1 for generators
            value = shipped.get(f.name, default)
        cfg[f.name] = value
    if cfg.get("out_dir") is None:
        cfg["out_dir"] = str(Path("runs") / args.name)
    if isinstance(cfg.get("betas"), list):
        cfg["betas"] = tuple(cfg["betas"])
    config = TrainConfig.from_dict(cfg)
    if generator:
        from geomgen.generative.training import train_generator as train
    else:
        train = training.train_representation
    dataset_config = route_dataset_options(args.dataset, data_config(args.dataset, args.data_config))
    model_config = {**json_arg(args.model_config, "--model-config"), **dict(parse_sets(args.model_set))}
    result = train(args.name, config, model_config=model_config,
                   dataset=args.dataset, dataset_config=dataset_config)
    if result.model_path is None:  # not the main process under torchrun
        return 0
    out = Path(config.out_dir)
    s = result.summary
    best = f", best {config.early_stopping_metric} {s.best_metric:.4g} at step {s.best_step}" \
        if s.best_metric is not None else ""
    print(f"trained {args.name}: {s.steps} steps in {s.wall_time_s:.1f} s{best}")
    print(f"  model:   {result.model_path}")
    for label, file in (("metrics", "metrics.csv"), ("plot", "loss.png"), ("config", "config.json")):
        if (out / file).exists():
            print(f"  {label + ':':<8} {out / file}")
    print(f"evaluate with: geomgen eval {args.name} --weights {result.model_path}")
    if generator:
        print(f"sample with:   geomgen sample --weights {result.model_path} -n 16 -o samples/")
    return 0
