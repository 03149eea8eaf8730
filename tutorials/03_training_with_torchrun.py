# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 03 · Training a representation: in-process, then data parallel with `torchrun`
#
# Every representation trains with the same core trainer (`geomgen.train`): checkpoints,
# `--resume`, `metrics.csv`, a `loss.png` curve, early stopping and `torchrun` data
# parallelism (gloo on the CPU, NCCL on GPUs).  Here we train the `pointcloud`
# representation on a *tiny* configuration of the procedural `shapes` dataset:
#
# 1. in-process with `geomgen.models.train_representation`,
# 2. with two processes: `torchrun --nproc_per_node=2 --standalone -m geomgen.cli train ...`,
# 3. resume that run from its last checkpoint,
# 4. read `metrics.csv` and look at `loss.png`.
#
# Sizes are tiny so that this runs in about a minute on two CPU cores; the shipped weights
# used 1000 shapes × 6 views and 2000 steps (`scripts/train_pretrained.py`).

# %%
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch

import geomgen
from geomgen.models import train_representation
from geomgen.train import TrainConfig
from geomgen.weights import load_model

SMALL = os.environ.get("GEOMGEN_TUTORIAL_SMALL") == "1"
OUT = Path(os.environ.get("GEOMGEN_TUTORIAL_OUT", "out/tutorials/03_training_with_torchrun")).resolve()
OUT.mkdir(parents=True, exist_ok=True)
STEPS = 2 if SMALL else 20

# The dataset: two categories, a few shapes each, a coarse SDF resolution.  A private
# cache root keeps this tiny config apart from the default cache.
DATA = {"root": str(OUT / "data"), "categories": ["box", "sphere"], "per_category": 2 if SMALL else 8,
        "resolution": 20, "progress": False}
MODEL = {"num_points": 128, "mesh_resolution": 24}  # 128 predicted points instead of 1024
print("representations:", geomgen.list_models(kind="representation"))

# %% [markdown]
# ## Build the dataset cache once
#
# Samples are built on first use and written to the cache atomically (one file per
# sample plus a manifest with SHA-256 sums).  Build the splits **before** starting
# several processes, so the ranks only read.

# %%
for split in ("train", "val"):
    ds = geomgen.get_dataset("shapes", split=split, **DATA)
    print(f"{split}: {len(ds)} shapes")
s = ds[0]
print("a sample:", {k: tuple(v.shape) for k, v in s.items() if isinstance(v, torch.Tensor)})

# %% [markdown]
# ## 1. In-process training
#
# `train_representation(name, TrainConfig(...), model_config=..., dataset_config=...)` builds
# `geomgen.get_model(name, **model_config)`, trains on the `train` split (a random view per
# sample), validates on `val` (view 0; `F1@0.3` etc. in percent) and writes `model.pt`,
# `metrics.csv`, `loss.png`, `config.json` and `checkpoints/` into `out_dir`.  The result
# is a `TrainedModel(model, summary, model_path)`.

# %%
cfg = TrainConfig(max_steps=STEPS, batch_size=2, lr=1e-3, warmup_steps=0, val_every=STEPS,
                  checkpoint_every=STEPS, out_dir=str(OUT / "inprocess"), progress=False, seed=0)
result = train_representation("pointcloud", cfg, model_config=MODEL, dataset_config=DATA)
print(f"trained {result.summary.steps} steps in {result.summary.wall_time_s:.1f} s -> {result.model_path}")
model = load_model(result.model_path)
print("reloaded:", type(model).__name__, "output", model.output, "frame", model.frame)

# %% [markdown]
# ## 2. Data parallel with `torchrun`
#
# `geomgen train NAME` takes every `TrainConfig` field as a flag.  Under `torchrun` each
# process reads its shard of the dataset (`DistributedSampler`) with `--batch-size`
# samples per step, gradients are averaged across processes (gloo on the CPU), and only
# rank 0 writes files and prints.  `OMP_NUM_THREADS=1` gives each rank one core.

# %%
RUN = OUT / "torchrun"


def geomgen_train(steps, *extra):
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
           "-m", "geomgen.cli", "train", "pointcloud",
           "--data-config", json.dumps(DATA), "--model-config", json.dumps(MODEL),
           "--out-dir", str(RUN), "--max-steps", str(steps), "--batch-size", "2",
           "--val-every", str(max(steps // 2, 1)), "--checkpoint-every", str(max(steps // 2, 1)),
           "--warmup-steps", "0", "--no-progress", *extra]
    print("$", " ".join(cmd[2:5]), "...", " ".join(cmd[-14:]))
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    print(proc.stdout.strip())
    if proc.returncode != 0:
        print(proc.stderr[-4000:], file=sys.stderr)
        raise SystemExit(f"torchrun failed with exit code {proc.returncode}")
    return proc


geomgen_train(STEPS)

# %% [markdown]
# ## 3. Resume
#
# `--resume` continues from the newest checkpoint in `--out-dir` (model, optimizer,
# scheduler, data order and RNG state): asking for `2 * STEPS` steps runs only the
# missing ones and appends to `metrics.csv`.

# %%
geomgen_train(2 * STEPS, "--resume")
print("checkpoints:", sorted(p.name for p in (RUN / "checkpoints").iterdir()))

# %% [markdown]
# ## 4. `metrics.csv` and `loss.png`
#
# `metrics.csv` has one row per logged step: `train/...` averages of the loss terms, the
# learning rate, and `val/...` metrics on validation steps.  `loss.png` is redrawn at every
# checkpoint and at the end.

# %%
rows = list(csv.DictReader(open(RUN / "metrics.csv")))
print("columns:", list(rows[0]))
for r in rows:
    print({k: v for k, v in r.items() if v not in ("", None)})
steps = [int(r["step"]) for r in rows]
assert steps == sorted(steps) and max(steps) == 2 * STEPS, steps
print("loss.png:", (RUN / "loss.png").stat().st_size, "bytes")

final = load_model(RUN / "model.pt")
pts = geomgen.predict(str(Path(geomgen.__file__).resolve().parent.parent / "assets/examples/sphere.png"),
                      model=final)
print("prediction of the 2-process model:", tuple(pts.points_padded().shape))

# %%
try:  # shows the curve inline in a notebook; a no-op as a script
    from IPython.display import Image, display

    if "ipykernel" in sys.modules:
        display(Image(str(RUN / "loss.png")))
except ImportError:
    pass
