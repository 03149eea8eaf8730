#!/usr/bin/env python
"""Train the shipped pretrained models and write ``assets/pretrained/`` (weights + manifest).

Usage::

    python scripts/train_pretrained.py                 # every recipe in scripts/pretrained_recipes.json
    python scripts/train_pretrained.py voxel mesh      # only these
    python scripts/train_pretrained.py --baseline-only # refit the mean-shape baseline

For each representation: train with :func:`geomgen.models.train_representation`
(the recipe's TrainConfig, model config, fixed seed) on the ``shapes`` train
split, keep the best validation F1@0.3 checkpoint, save it as
``assets/pretrained/<name>.pt``, evaluate it on the held-out test split (Mesh
R-CNN protocol + voxel IoU, view 0) and record file, SHA-256, config, recipe,
wall time and evaluation in ``assets/pretrained/manifest.json``.  The
mean-shape baseline is fitted on the same train split and shipped the same way
(``mean-shape.pt``), so ``geomgen eval`` never needs the training data.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "scripts" / "pretrained_recipes.json"


def main(argv: list[str] | None = None) -> int:
    import torch

    import geomgen
    from geomgen.models import train_representation
    from geomgen.models.baseline import MeanShape
    from geomgen.models.evaluate import evaluate, format_table
    from geomgen.weights import assets_dir, save_model, write_manifest_entry, write_manifest_section

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help="representations to train (default: every recipe)")
    p.add_argument("--work-dir", default="/tmp/geomgen-pretrained", help="training runs go here")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--baseline-only", action="store_true", help="only refit the mean-shape baseline")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    recipes = json.loads(RECIPES.read_text())
    data_cfg = dict(recipes["dataset_config"])
    names = args.names or [n for n in recipes["models"]]
    out = assets_dir() / "pretrained"
    out.mkdir(parents=True, exist_ok=True)
    write_manifest_section("dataset", {"name": "shapes", "config": data_cfg, "eval_split": "test", "eval_view": 0})
    test = geomgen.get_dataset("shapes", split="test", view=0, **data_cfg)

    # the baseline: mean training occupancy (no gradient training)
    base_path = out / "mean-shape.pt"
    if args.baseline_only or not base_path.is_file():
        t0 = time.time()
        train = geomgen.get_dataset("shapes", split="train", view=0, **data_cfg)
        base = MeanShape().fit(train).eval()
        save_model(base, "mean-shape", base_path)
        rep = evaluate(base, test, progress=False, name="mean-shape")
        write_manifest_entry("mean-shape", base_path, base.config,
                             train={"fitted_on": len(train), "split": "train", "threshold": float(base.threshold),
                                    "wall_s": round(time.time() - t0, 1)},
                             eval=rep.to_dict(instances=False))
        print(format_table({"mean-shape": rep}, per_category=False))
    if args.baseline_only:
        return 0

    for name in names:
        if name not in recipes["models"]:
            print(f"error: no recipe for {name!r} in {RECIPES}", file=sys.stderr)
            return 2
        r = recipes["models"][name]
        run_dir = Path(args.work_dir) / name
        if run_dir.exists():
            shutil.rmtree(run_dir)
        train_cfg = {**r["train"], "out_dir": str(run_dir), "progress": True, "resume": False}
        t0 = time.time()
        result = train_representation(name, train_cfg, model_config=r.get("model_config", {}),
                                      dataset_config=data_cfg)
        wall = time.time() - t0
        path = save_model(result.model, name, out / f"{name}.pt")
        rep = evaluate(result.model, test, progress=False, name=name)
        s = result.summary
        write_manifest_entry(name, path, result.model.config,
                             train={"recipe": r["train"], "dataset_config": data_cfg, "steps": s.steps,
                                    "best_step": s.best_step, "best_val_F1@0.3": s.best_metric,
                                    "wall_s": round(wall, 1), "threads": torch.get_num_threads()},
                             eval=rep.to_dict(instances=False))
        print(format_table({name: rep}, per_category=False))
        print(f"{name}: {path} ({path.stat().st_size / 1e6:.2f} MB), trained in {wall / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
