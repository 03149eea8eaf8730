# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 04 · Generative models: autoregressive, VAE and GAN
#
# geomgen ships three unconditional voxel generators as plugins, all subclasses of
# `geomgen.generative.ShapeGenerator`:
#
# | name | model | likelihood | resolution |
# |---|---|---|---|
# | `autoregressive` | 3D PixelCNN over voxels in raster order | `"exact"`: `log_prob` | 16³ |
# | `vae` | 3D conv VAE | `"elbo"`: `elbo`, IWAE estimate `log_prob` | 32³ |
# | `gan` | 3D conv WGAN-GP | `None`: raises `LikelihoodUnavailableError` | 32³ |
#
# Conventions (`geomgen/generative/base.py`):
#
# * **Frame**: shapes in the object frame `[-0.5, 0.5]³`, +Y up; voxel grids cover that
#   cube (origin `-0.5`, voxel size `1/R`), indexed `[n, z, y, x]`.
# * **Units**: `log_prob` and `elbo` are **nats per shape**, summed over the `R³` voxels, one
#   value per shape `(N,)`; bits per voxel = `-log p(x) / (R³ ln 2)`.
# * **Randomness**: `sample(n, condition=None, seed=s)` draws every random number from one
#   `torch.Generator` seeded with `s`: the same seed gives the same shapes.
#
# This tutorial uses the shipped weights when `assets/pretrained/manifest.json` lists them
# (`list_pretrained(kind="generator")`); otherwise it builds untrained models and says so —
# the API is the same, only the samples are noise.

# %%
import os
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch

import geomgen
from geomgen.data import collate_samples
from geomgen.generative import LikelihoodUnavailableError, train_generator
from geomgen.io import image_grid, save_image, save_mesh
from geomgen.metrics import generative_metrics
from geomgen.render import render_prediction
from geomgen.weights import list_pretrained, load_pretrained
from geomgen.structures import Meshes
from geomgen.testing.generative import ToyShapes
from geomgen.train import TrainConfig

SMALL = os.environ.get("GEOMGEN_TUTORIAL_SMALL") == "1"
OUT = Path(os.environ.get("GEOMGEN_TUTORIAL_OUT", "out/tutorials/04_generative_models"))
OUT.mkdir(parents=True, exist_ok=True)
N_SAMPLES = 4 if SMALL else 8
torch.manual_seed(0)

print("generators:", geomgen.list_models(kind="generator"))
shipped = list_pretrained(kind="generator")
print("pretrained generators:", shipped or "none yet")

# %% [markdown]
# ## Load (or build) the three generators

# %%
models, pretrained = {}, {}
for name in ("autoregressive", "vae", "gan"):
    pretrained[name] = False
    if name in shipped:
        try:
            models[name] = load_pretrained(name)  # size and SHA-256 checked against the manifest, eval mode
            pretrained[name] = True
        except geomgen.errors.GeomgenError as e:  # e.g. weights being rewritten while training
            print(f"{name}: cannot load the shipped weights ({e}); using an untrained model")
    if not pretrained[name]:
        models[name] = geomgen.get_model(name).eval()  # default config, random weights
    m = models[name]
    print(f"{name:>14}: {'pretrained' if pretrained[name] else 'UNTRAINED (no shipped weights yet)'}, "
          f"R={m.resolution}, likelihood={m.likelihood!r}, "
          f"{sum(p.numel() for p in m.parameters()) / 1e6:.2f} M parameters")

# %% [markdown]
# ## Seeded samples → meshes → a grid PNG
#
# `sample` returns `Voxels` of `n` grids `(n, R, R, R)` in `[0, 1]`: binary for the
# autoregressive model, decoder probabilities for the VAE and GAN.  `to_meshes` runs
# marching cubes at level 0.5 (closed meshes in the object frame; an empty sample gives a
# mesh without faces).

# %%
size = 96
tiles, labels = [], []
for name, m in models.items():
    samples = m.sample(N_SAMPLES, seed=0)
    again = m.sample(N_SAMPLES, seed=0)
    assert torch.equal(samples.grids, again.grids), "same seed, same samples"
    meshes = m.to_meshes(samples)
    occ = (samples.grids > 0.5).float().mean((1, 2, 3))
    print(f"{name:>14}: grids {tuple(samples.grids.shape)}, occupied fraction {[round(float(o), 3) for o in occ]}, "
          f"faces {meshes.num_faces_per_mesh().tolist()}")
    (OUT / "samples" / name).mkdir(parents=True, exist_ok=True)
    for i, (v, f) in enumerate(zip(meshes.verts_list(), meshes.faces_list())):
        if f.shape[0]:
            save_mesh(OUT / "samples" / name / f"sample-{i}.obj", Meshes([v], [f]))
        tiles.append(render_prediction(v, f, "object", size, fit=False))
        labels.append(f"{'AR' if name == 'autoregressive' else name} #{i}")
save_image(OUT / "grid.png", image_grid(tiles, N_SAMPLES, labels=labels))
print("wrote", OUT / "grid.png")

# %% [markdown]
# ## Likelihoods on held-out shapes
#
# We score a few shapes of the `shapes` **test** split (the generators trained on the
# train split).  Each sample dict's `voxels` is a 32³ solid grid; `collate_samples` makes a
# `Voxels` batch, and the models downsample it to their `R` by volume fraction.
#
# * PixelCNN: `log_prob` is the **exact** log-likelihood, `p(x) = Π_i p(x_i | x_<i)`.
# * VAE: `elbo` is a lower bound (one reparameterised sample, KL in closed form), and
#   `log_prob(x, num_samples=K)` the importance-weighted (IWAE) estimate, a tighter bound
#   that tends to `log p(x)` as `K` grows: expect `elbo ≤ log_prob`.
# * GAN: no likelihood at all; compare its samples with MMD / COV / 1-NNA instead.

# %%
test = geomgen.get_dataset("shapes", split="test", per_category=1, seed=0, resolution=32, view=0, progress=False)
refs = [test[i] for i in range(0, len(test), 3 if SMALL else 1)]
batch = collate_samples(refs)
x = batch["voxels"]
print("held-out shapes:", [r["category"] for r in refs], "voxels", tuple(x.grids.shape))

ar = models["autoregressive"]
with torch.no_grad():
    ll = ar.log_prob(x)
print(f"autoregressive log p(x): {[round(float(v), 1) for v in ll]} nats; "
      f"{float(ar.bits_per_voxel(x).detach().mean()):.4f} bits/voxel (R={ar.resolution})")

vae = models["vae"]
torch.manual_seed(0)  # elbo and the IWAE draw from torch's global RNG
with torch.no_grad():
    elbo = vae.elbo(x)
    iwae = vae.log_prob(x, num_samples=8 if SMALL else 64)
R3 = vae.resolution ** 3
print(f"vae ELBO mean {float(elbo.mean()):.1f} nats  <=  IWAE log p(x) mean {float(iwae.mean()):.1f} nats "
      f"({-float(iwae.mean()) / (R3 * 0.6931471805599453):.4f} bits/voxel)")

try:
    models["gan"].log_prob(x)
except LikelihoodUnavailableError as e:
    print("gan.log_prob raised LikelihoodUnavailableError:", str(e)[:120], "...")

# %% [markdown]
# ## VAE latent interpolation
#
# `vae.interpolate(a, b, steps)` decodes latents on the segment between the posterior
# means of two shapes (the first is `a`'s reconstruction, the last `b`'s), thresholded at
# 0.5.

# %%
a, b = refs[0]["voxels"], refs[-1]["voxels"]
path = vae.interpolate(a, b, steps=5 if SMALL else 8)
pm = vae.to_meshes(path)
tiles = [render_prediction(v, f, "object", size, fit=False) for v, f in zip(pm.verts_list(), pm.faces_list())]
save_image(OUT / "interpolation.png", image_grid(tiles, len(tiles)))
print(f"interpolated {refs[0]['category']} -> {refs[-1]['category']}: grids {tuple(path.grids.shape)}; wrote",
      OUT / "interpolation.png")

# %% [markdown]
# ## Fit a tiny model on `ToyShapes` and measure MMD / COV / 1-NNA before and after
#
# `geomgen.testing.generative.ToyShapes` is a synthetic dataset of boxes and spheres built
# analytically in milliseconds — enough to watch a generator learn in seconds.
# `generative_metrics(samples, references, distance="iou")` compares two sets of grids with
# the distance `1 - IoU` (PointFlow's definitions): **MMD** (mean distance from each
# reference to its closest sample, lower is better), **COV** (fraction of references that
# are the nearest neighbour of some sample, higher is better) and **1-NNA** (leave-one-out
# 1-NN classifier accuracy between the two sets; 0.5 is ideal, 1.0 means fully separable).
#
# `train_generator(name, TrainConfig, model_config=..., train_data=...)` runs the same
# trainer as `geomgen train vae`.

# %%
TINY = {"resolution": 16, "latent_dim": 16, "enc_channels": [8, 16, 16], "enc_feat": 64,
        "dec_channels": [16, 16, 8]}
toy_train = ToyShapes(n=32, resolution=16, seed=0)
toy_ref = ToyShapes(n=16, resolution=16, seed=1)
ref_grids = torch.stack([toy_ref[i]["voxels"] for i in range(len(toy_ref))])  # (16, 16, 16, 16)

torch.manual_seed(0)
untrained = geomgen.get_model("vae", **TINY)
before = generative_metrics(untrained.sample(len(toy_ref), seed=0), ref_grids, distance="iou")

steps = 60 if SMALL else 300
fit = train_generator("vae", TrainConfig(max_steps=steps, batch_size=16, lr=3e-3, warmup_steps=0, progress=False,
                                          seed=0, out_dir=str(OUT / "toy-vae")),
                      model_config=TINY, train_data=toy_train)
after = generative_metrics(fit.model.sample(len(toy_ref), seed=0), ref_grids, distance="iou")
print(f"trained {fit.summary.steps} steps in {fit.summary.wall_time_s:.1f} s")
for key in ("MMD", "COV", "1-NNA"):
    print(f"  {key:>5}: before {before[key]:.3f}  after {after[key]:.3f}")

toy = fit.model.sample(8, seed=1)
tm = fit.model.to_meshes(toy)
tiles = [render_prediction(v, f, "object", size, fit=False) for v, f in zip(tm.verts_list(), tm.faces_list())]
save_image(OUT / "toy_samples.png", image_grid(tiles, 8))
print("wrote", OUT / "toy_samples.png")
