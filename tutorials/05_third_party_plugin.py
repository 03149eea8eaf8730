# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 05 · Writing, installing and using a third-party plugin
#
# Everything beyond geomgen's core — representations, generators, metrics, datasets, CLI
# commands — is registered through [pluggy](https://pluggy.readthedocs.io) hooks, and
# geomgen's own plugins use exactly the public hooks a third party uses.  A plugin is an
# ordinary Python distribution with an entry point in the group `geomgen`:
#
# ```toml
# [project.entry-points.geomgen]
# chamfer_hausdorff = "geomgen_hausdorff.plugin"   # plugin name = module with hook implementations
# ```
#
# In this tutorial we write a complete distribution into a temporary folder, with
#
# * a metric `hausdorff` (`geomgen_register_metrics`, a `MetricSpec`), and
# * a command `geomgen hausdorff PRED GT` (`geomgen_register_commands`, a `CommandSpec`),
#
# install it **outside** the virtual environment with
# `pip install --no-deps --no-build-isolation --target <tmp>/site <dir>` (offline: the
# build uses the setuptools already installed), and use it from fresh processes with
# `PYTHONPATH=<tmp>/site`.  Then we install a broken plugin and watch geomgen report and
# skip it.  The environment itself is never modified.
#
# A fuller example lives in `plugins/geomgen-sdf` (a volumetric IoU metric and a
# `geomgen sdf` command, with its own tests).

# %%
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

SMALL = os.environ.get("GEOMGEN_TUTORIAL_SMALL") == "1"
OUT = Path(os.environ.get("GEOMGEN_TUTORIAL_OUT", "out/tutorials/05_third_party_plugin")).resolve()
OUT.mkdir(parents=True, exist_ok=True)
TMP = Path(tempfile.mkdtemp(prefix="geomgen-plugin-"))
SITE = TMP / "site"
print("working in", TMP)

# %% [markdown]
# ## 1. The distribution
#
# The plugin module only imports geomgen's light modules at import time (the registry
# imports every plugin when it is first used); heavy imports go inside the functions.
#
# The metric takes two point sets `(N, P, 3)` (`inputs="pointclouds"`) and returns the
# symmetric Hausdorff distance per item, `(N,)`: the largest nearest-neighbour distance in
# either direction.  `chamfer_distance(..., point_reduction="max")` gives the largest
# **squared** distance per direction (summed over both); we take the max of the two
# directions' values separately and a square root, so the result is in length units.

# %%
DIST = TMP / "geomgen-hausdorff"
(DIST / "geomgen_hausdorff").mkdir(parents=True)
(DIST / "pyproject.toml").write_text(textwrap.dedent('''
    [build-system]
    requires = ["setuptools>=61"]
    build-backend = "setuptools.build_meta"

    [project]
    name = "geomgen-hausdorff"
    version = "0.2.0"
    description = "Tutorial plugin: the hausdorff metric and the `geomgen hausdorff` command"
    requires-python = ">=3.10"
    dependencies = ["geomgen"]

    [project.entry-points.geomgen]
    hausdorff = "geomgen_hausdorff.plugin"

    [tool.setuptools]
    packages = ["geomgen_hausdorff"]
'''))
(DIST / "geomgen_hausdorff" / "__init__.py").write_text('"""Tutorial plugin for geomgen."""\n')
(DIST / "geomgen_hausdorff" / "plugin.py").write_text(textwrap.dedent('''
    """Hook implementations of the geomgen-hausdorff plugin."""
    from __future__ import annotations

    import geomgen
    from geomgen.components import CommandSpec, MetricSpec


    def hausdorff(pred, gt):
        """Symmetric Hausdorff distance of two point sets (N, P, 3) / (N, Q, 3) -> (N,)."""
        from geomgen.losses import chamfer_distance

        kw = dict(point_reduction="max", batch_reduction=None, single_directional=True)
        ab = chamfer_distance(pred, gt, **kw)[0]   # max over pred of the squared NN distance to gt
        ba = chamfer_distance(gt, pred, **kw)[0]
        return ab.maximum(ba).sqrt()


    @geomgen.hookimpl
    def geomgen_register_metrics(register):
        register(MetricSpec(name="hausdorff", fn=hausdorff, inputs="pointclouds", higher_is_better=False,
                            description="symmetric Hausdorff distance (unsquared, length units)"))


    def _configure(parser):
        parser.add_argument("pred", help="predicted mesh file")
        parser.add_argument("gt", help="ground-truth mesh file")
        parser.add_argument("--samples", type=int, default=10000, help="points sampled on each mesh")


    def _run(args):
        import torch
        from geomgen.io import load_mesh
        from geomgen.ops import sample_points_from_meshes

        g = torch.Generator().manual_seed(0)
        a = sample_points_from_meshes(load_mesh(args.pred), args.samples, generator=g)
        b = sample_points_from_meshes(load_mesh(args.gt), args.samples, generator=g)
        print(f"hausdorff {float(hausdorff(a, b)[0]):.6f}")
        return 0


    @geomgen.hookimpl
    def geomgen_register_commands(register):
        register(CommandSpec(name="hausdorff", help="Hausdorff distance of two meshes (sampled)",
                             configure=_configure, run=_run))
'''))
print(*sorted(str(p.relative_to(TMP)) for p in DIST.rglob("*") if p.is_file()), sep="\n")

# %% [markdown]
# ## 2. Install it into a private folder
#
# `--target` puts the package *and* its `.dist-info` (which holds `entry_points.txt`) into
# `SITE`; `--no-deps` skips geomgen itself (already installed) and `--no-build-isolation`
# builds with the environment's setuptools instead of downloading one.

# %%
def pip_install(src):
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
           "--disable-pip-version-check", "--quiet", "--target", str(SITE), str(src)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode:
        raise SystemExit(f"pip failed:\n{proc.stdout}\n{proc.stderr}")


pip_install(DIST)
print(sorted(p.name for p in SITE.iterdir()))
print((next(SITE.glob("geomgen_hausdorff-*.dist-info")) / "entry_points.txt").read_text())

# %% [markdown]
# ## 3. Use it from a fresh process
#
# `PYTHONPATH=SITE` makes the distribution visible; `geomgen plugins` lists it next to the
# built-ins, `geomgen.get_metric("hausdorff")` returns it and `geomgen hausdorff` runs its
# command.  (We call `python -m geomgen.cli`, the same entry point as the `geomgen` script.)

# %%
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SITE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
ENV.pop("GEOMGEN_STRICT_PLUGINS", None)
ENV.pop("GEOMGEN_DISABLE_PLUGINS", None)


def run(*args, check=True):
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=ENV, timeout=300)
    if check and proc.returncode:
        raise SystemExit(f"{args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


listing = run("-m", "geomgen.cli", "plugins").stdout
print(listing)
assert "geomgen-hausdorff" in listing

infos = json.loads(run("-m", "geomgen.cli", "plugins", "--json").stdout)
mine = next(i for i in infos if i["name"] == "hausdorff")
print(json.dumps(mine, indent=1))
assert mine["status"] == "ok"

code = '''
import torch, geomgen
print("metrics:", geomgen.list_metrics())
a = torch.zeros(1, 1, 3); b = torch.tensor([[[0.0, 0.0, 0.0], [3.0, 4.0, 0.0]]])
print("hausdorff:", geomgen.get_metric("hausdorff")(a, b).tolist())         # 5: the far point of b
print("by plugin name:", geomgen.get_metric("hausdorff:hausdorff")(a, b).tolist())
'''
out = run("-c", code).stdout
print(out)
assert "hausdorff: [5.0]" in out

# %%
# the command on two meshes: a unit ico-sphere and the same sphere shifted by 0.25 along x
import torch  # noqa: E402

from geomgen.io import save_mesh  # noqa: E402
from geomgen.ops import ico_sphere  # noqa: E402
from geomgen.structures import Meshes  # noqa: E402

s = ico_sphere(2)
save_mesh(TMP / "a.obj", s)
save_mesh(TMP / "b.obj", Meshes([s.verts_packed() + torch.tensor([0.25, 0.0, 0.0])], [s.faces_packed()]))
samples = "2000" if SMALL else "10000"
print(run("-m", "geomgen.cli", "hausdorff", str(TMP / "a.obj"), str(TMP / "b.obj"), "--samples", samples).stdout)

# %% [markdown]
# ## 4. A broken plugin is reported and skipped
#
# A plugin that fails to import, raises in a hook, registers the wrong type or misspells a
# hook name gets status `failed: reason` and a warning; everything else keeps working.
# `GEOMGEN_STRICT_PLUGINS=1` turns that into an error (for CI), and
# `GEOMGEN_DISABLE_PLUGINS=name` (or `external`) blocks plugins without uninstalling them.
# Here a second distribution's hook raises.

# %%
BROKEN = TMP / "geomgen-broken"
(BROKEN / "geomgen_broken").mkdir(parents=True)
(BROKEN / "pyproject.toml").write_text(textwrap.dedent('''
    [build-system]
    requires = ["setuptools>=61"]
    build-backend = "setuptools.build_meta"

    [project]
    name = "geomgen-broken"
    version = "0.0.1"
    dependencies = ["geomgen"]

    [project.entry-points.geomgen]
    broken = "geomgen_broken.plugin"

    [tool.setuptools]
    packages = ["geomgen_broken"]
'''))
(BROKEN / "geomgen_broken" / "__init__.py").write_text("")
(BROKEN / "geomgen_broken" / "plugin.py").write_text(textwrap.dedent('''
    import geomgen

    @geomgen.hookimpl
    def geomgen_register_metrics(register):
        raise RuntimeError("this plugin is broken on purpose")
'''))
pip_install(BROKEN)

proc = run("-m", "geomgen.cli", "plugins")
print(proc.stdout)
print("stderr (warnings):", proc.stderr.strip()[-600:])
infos = {i["name"]: i for i in json.loads(run("-m", "geomgen.cli", "plugins", "--json").stdout)}
print("broken:", infos["broken"]["status"], "-", infos["broken"].get("error"))
assert infos["broken"]["status"].startswith("failed") and infos["hausdorff"]["status"] == "ok"
print(run("-c", code).stdout)  # the good plugin still works

ENV["GEOMGEN_DISABLE_PLUGINS"] = "broken"
print("with GEOMGEN_DISABLE_PLUGINS=broken:",
      {i["name"]: i["status"] for i in json.loads(run("-m", "geomgen.cli", "plugins", "--json").stdout)})
ENV.pop("GEOMGEN_DISABLE_PLUGINS")

ENV["GEOMGEN_STRICT_PLUGINS"] = "1"
strict = run("-c", code, check=False)
print("with GEOMGEN_STRICT_PLUGINS=1: exit code", strict.returncode, "|", strict.stderr.strip().splitlines()[-1][:200])
ENV.pop("GEOMGEN_STRICT_PLUGINS")

(OUT / "plugins.txt").write_text(proc.stdout)
print("wrote", OUT / "plugins.txt")

# %% [markdown]
# ## Clean up
#
# Nothing was installed into the environment: removing the temporary folder uninstalls
# both plugins.  (In a real project you would `pip install .` the distribution instead.)

# %%
import shutil  # noqa: E402

shutil.rmtree(TMP, ignore_errors=True)
print("removed", TMP)
