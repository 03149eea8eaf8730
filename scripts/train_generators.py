#!/usr/bin/env python
"""Train the shipped generators and record them in ``assets/pretrained/manifest.json``.

Usage::

    python scripts/train_generators.py                  # every recipe in scripts/generator_recipes.json
    python scripts/train_generators.py vae gan          # only these
    python scripts/train_generators.py --eval-only vae  # re-evaluate the shipped weights

For each generator: train with :func:`geomgen.generative.train_generator` (the
recipe's TrainConfig and model config, fixed seed) on the ``shapes`` train
split, save ``assets/pretrained/<name>.pt``, evaluate it against the held-out
test split with :func:`geomgen.generative.evaluate_generator` (as many samples
as test shapes, seed 0; MMD / COV / 1-NNA with Chamfer on 2048 points and with
1 - IoU; NLL or negative ELBO), and record file, SHA-256, config, recipe,
wall time and evaluation (manifest entry with ``"kind": "generator"``).  An
untrained model of the same config is evaluated the same way and recorded
beside it (``eval_untrained``), the reference point of the quality test.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "scripts" / "generator_recipes.json"


def main(argv: list[str] | None = None) -> int:
    import torch

    import geomgen
    from geomgen.generative import train_generator
    from geomgen.generative.evaluate import evaluate_generator, format_generator_table
    from geomgen.weights import assets_dir, load_pretrained, pretrained_info, save_model, write_manifest_entry

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help="generators to train (default: every recipe)")
    p.add_argument("--work-dir", default="/tmp/geomgen-generators", help="training runs go here")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--eval-only", action="store_true", help="re-evaluate the shipped weights, no training")
    p.add_argument("--recipes", default=str(RECIPES), help="recipes file (default: %(default)s); "
                   "with GEOMGEN_ASSETS=DIR the weights and manifest go to DIR/pretrained instead")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    recipes = json.loads(Path(args.recipes).read_text())
    data_cfg = dict(recipes["dataset_config"])
    names = args.names or list(recipes["models"])
    out = assets_dir() / "pretrained"
    out.mkdir(parents=True, exist_ok=True)
    test = geomgen.get_dataset("shapes", split="test", view=0, **data_cfg)
    for name in names:
        if name not in recipes["models"]:
            print(f"error: no recipe for {name!r} in {args.recipes}", file=sys.stderr)
            return 2
        r = recipes["models"][name]
        if args.eval_only:
            model = load_pretrained(name)
            train_info = pretrained_info(name)["train"]
        else:
            run_dir = Path(args.work_dir) / name
            if run_dir.exists():
                shutil.rmtree(run_dir)
            train_cfg = {**r["train"], "out_dir": str(run_dir), "progress": True, "resume": False}
            t0 = time.time()
            result = train_generator(name, train_cfg, model_config=r.get("model_config", {}),
                                     dataset_config=data_cfg)
            wall = time.time() - t0
            model = result.model
            s = result.summary
            train_info = {"recipe": r["train"], "dataset_config": data_cfg, "steps": s.steps,
                          "wall_s": round(wall, 1), "threads": torch.get_num_threads(),
                          "final_val": s.val_metrics}
        path = save_model(model, name, out / f"{name}.pt")
        rep = evaluate_generator(model, test, seed=0, name=name)
        torch.manual_seed(0)
        untrained = geomgen.get_model(name, **model.config)
        rep0 = evaluate_generator(untrained, test, seed=0, name=f"{name} (untrained)")
        write_manifest_entry(name, path, model.config, train=train_info, eval=rep.to_dict(), kind="generator",
                             extra={"eval_untrained": rep0.to_dict()})
        print(format_generator_table({name: rep, f"{name} (untrained)": rep0}))
        print(f"{name}: {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
