"""The tutorials (``tutorials/NN_*.py``) run end to end at small size.

Each tutorial is a jupytext percent script that also runs as a plain Python
script; ``GEOMGEN_TUTORIAL_SMALL=1`` shrinks it (few shapes, few steps) and
``GEOMGEN_TUTORIAL_OUT`` says where its outputs go.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
TUTORIALS = ROOT / "tutorials"

#: tutorial -> (timeout in seconds, files it must write under GEOMGEN_TUTORIAL_OUT)
CASES = {
    "01_quickstart": (240, ["quickstart.png", "gt.obj", "sphere.ply"]),
    "02_single_view_prediction": (240, ["sheet.png", "metrics.json"]
                                  + [f"{r}/chair.obj" for r in ("depth", "voxel", "implicit", "pointcloud", "mesh")]),
    "03_training_with_torchrun": (420, ["inprocess/model.pt", "inprocess/metrics.csv", "torchrun/model.pt",
                                       "torchrun/metrics.csv", "torchrun/loss.png",
                                       "torchrun/checkpoints/ckpt-00000004.pt"]),
    "04_generative_models": (300, ["grid.png", "interpolation.png", "toy_samples.png", "toy-vae/model.pt"]),
    "05_third_party_plugin": (300, ["plugins.txt"]),
    "06_differentiable_rendering": (240, ["results.json", "silhouette_fit.png", "silhouette_fit_loss.png",
                                          "camera_fit.png", "camera_fit_loss.png", "rgb_fit.png",
                                          "rgb_fit_loss.png"]),
}


def test_every_tutorial_is_tested():
    assert sorted(p.stem for p in TUTORIALS.glob("[0-9][0-9]_*.py")) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_tutorial_runs(name, tmp_path):
    timeout, expected = CASES[name]
    out = tmp_path / "out"
    env = dict(os.environ, GEOMGEN_TUTORIAL_SMALL="1", GEOMGEN_TUTORIAL_OUT=str(out), OMP_NUM_THREADS="1",
               OMP_WAIT_POLICY="PASSIVE", MPLBACKEND="Agg")
    for var in ("GEOMGEN_STRICT_PLUGINS", "GEOMGEN_DISABLE_PLUGINS", "WORLD_SIZE", "RANK", "LOCAL_RANK"):
        env.pop(var, None)
    proc = subprocess.run([sys.executable, str(TUTORIALS / f"{name}.py")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
    for rel in expected:
        path = out / rel
        assert path.is_file(), f"{name} did not write {rel}; wrote {sorted(str(p.relative_to(out)) for p in out.rglob('*'))}"
        assert path.stat().st_size > 0, f"{name} wrote an empty {rel}"
    for png in out.rglob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{png} is not a PNG"
