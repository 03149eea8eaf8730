"""End to end: the example plugin ``plugins/geomgen-sdf`` as a real installed distribution.

The plugin is pip-installed (non-editable, so its entry point comes from real
``dist-info`` metadata) into the interpreter running the tests, exercised
through fresh ``python -m geomgen.cli`` / ``python -c`` processes (the
registry of this process is never touched), and uninstalled afterwards.

No network: ``--no-deps --no-build-isolation --no-index`` builds the wheel with
the setuptools already installed.  The source is copied to a temporary folder
first, so the build's ``build/`` and ``*.egg-info`` never land in the repository.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
PLUGIN_SOURCE = REPO / "plugins" / "geomgen-sdf"
DIST = "geomgen-sdf"
VERSION = "0.1.0"
TIMEOUT = 300


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("GEOMGEN_DISABLE_PLUGINS", "GEOMGEN_STRICT_PLUGINS", "PYTHONPATH")}
    env.update(PIP_NO_INPUT="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONDONTWRITEBYTECODE="1")
    env.update(extra)
    return env


def _run(args: list[str], cwd: Path, check: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
    start = time.perf_counter()
    result = subprocess.run(args, cwd=cwd, env=_env(**env), capture_output=True, text=True, timeout=TIMEOUT)
    elapsed = time.perf_counter() - start
    print(f"$ {' '.join(args[:6])}{' ...' if len(args) > 6 else ''}  [{elapsed:.1f}s, exit {result.returncode}]")
    if check and result.returncode != 0:
        pytest.fail(f"command failed with exit code {result.returncode}: {args}\n"
                    f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}")
    return result


def _pip(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return _run([sys.executable, "-m", "pip", *args], cwd)


def _cli(*args: str, cwd: Path, check: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
    return _run([sys.executable, "-m", "geomgen.cli", *args], cwd, check=check, **env)


def _plugins(cwd: Path, **env: str) -> dict[str, dict[str, Any]]:
    result = _cli("plugins", "--json", cwd=cwd, **env)
    try:
        listed = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"`geomgen plugins --json` printed no JSON:\n{result.stdout}\n--- stderr ---\n{result.stderr}")
    return {p["name"]: p for p in listed}


def _python(code: str, cwd: Path, **env: str) -> Any:
    """Run ``code`` in a fresh interpreter; it prints one JSON document last."""
    result = _run([sys.executable, "-c", textwrap.dedent(code)], cwd, **env)
    return json.loads(result.stdout.strip().splitlines()[-1])


def _installed() -> bool:
    try:
        importlib.metadata.distribution(DIST)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


class Installation:
    """The plugin installed in this interpreter's environment; ``uninstall()`` is idempotent."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.installed = False
        self.install_seconds = 0.0

    def install(self) -> None:
        source = self.workdir / "geomgen-sdf"
        shutil.copytree(PLUGIN_SOURCE, source,
                        ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__", "tests"))
        start = time.perf_counter()
        self.installed = True  # a half-finished install is still cleaned up
        _pip("install", "--no-deps", "--no-build-isolation", "--no-index", "--no-cache-dir", str(source),
             cwd=self.workdir)
        self.install_seconds = time.perf_counter() - start
        print(f"pip install {DIST}: {self.install_seconds:.1f}s")

    def uninstall(self) -> None:
        if self.installed:
            _pip("uninstall", "-y", DIST, cwd=self.workdir)
            self.installed = False


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    """Install ``plugins/geomgen-sdf``; uninstall at the end of the module whatever happens."""
    workdir = tmp_path_factory.mktemp("geomgen_sdf_e2e")
    if _installed():
        warnings.warn(f"{DIST} was already installed in this environment; the test reinstalls it from "
                      "source and uninstalls it at the end", stacklevel=1)
    installation = Installation(workdir)
    try:
        installation.install()
        yield installation
    finally:
        installation.uninstall()


@pytest.fixture(scope="module")
def cube(plugin) -> Path:
    """A unit cube centred at the origin, written with trimesh."""
    import trimesh

    path = plugin.workdir / "cube.obj"
    trimesh.creation.box(extents=(1.0, 1.0, 1.0)).export(path)
    return path


def test_plugins_lists_the_installed_plugin(plugin):
    listed = _plugins(plugin.workdir)
    assert "sdf" in listed, f"sdf plugin not listed: {sorted(listed)}"
    info = listed["sdf"]
    assert info["status"] == "ok", info
    assert info["error"] is None
    assert info["distribution"] == DIST
    assert info["version"] == VERSION
    assert info["module"] == "geomgen_sdf.plugin"
    assert info["builtin"] is False
    # imported from the installed copy, not from the source tree
    site_packages = Path(sysconfig.get_paths()["purelib"]).resolve()
    assert info["file"] and Path(info["file"]).resolve() == site_packages / "geomgen_sdf" / "plugin.py"
    assert info["hooks"] == ["geomgen_register_commands", "geomgen_register_metrics"]
    assert info["components"] == {"metric": ["volume-iou"], "command": ["sdf"]}
    assert listed["core"]["status"] == "ok"  # geomgen's own plugin is unaffected

    table = _cli("plugins", cwd=plugin.workdir).stdout
    assert any(line.split()[:3] == ["sdf", VERSION, DIST] for line in table.splitlines()), table
    assert "sdf" in _cli("--help", cwd=plugin.workdir).stdout


def test_volume_iou_metric_is_available(plugin):
    result = _python("""
        import json, torch, trimesh, geomgen
        from geomgen.structures import Meshes
        box = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
        verts = torch.tensor(box.vertices, dtype=torch.float32)
        faces = torch.tensor(box.faces)
        cube = Meshes([verts, verts], [faces, faces])
        shifted = Meshes([verts, verts + torch.tensor([0.5, 0.0, 0.0])], [faces, faces])
        spec = geomgen.get_metric_spec("volume-iou")
        iou = geomgen.get_metric("volume-iou")(cube, shifted, num_points=20000)
        print(json.dumps({"metrics": geomgen.list_metrics(), "inputs": spec.inputs,
                          "higher_is_better": spec.higher_is_better, "iou": iou.tolist()}))
    """, plugin.workdir)
    assert "volume-iou" in result["metrics"]
    assert {"chamfer-l2", "f1"} <= set(result["metrics"])  # built-in metrics still there
    assert result["inputs"] == "meshes" and result["higher_is_better"] is True
    assert result["iou"][0] == pytest.approx(1.0)
    assert result["iou"][1] == pytest.approx(1 / 3, abs=0.02)


def test_sdf_command_writes_a_binvox_that_loads_back(plugin, cube):
    from geomgen.io import load_binvox

    out = plugin.workdir / "cube.binvox"
    result = _cli("sdf", str(cube), "--resolution", "8", "--padding", "0.5", "-o", str(out), cwd=plugin.workdir)
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and "occupied fraction 0.1250" in lines[0], result.stdout
    voxels = load_binvox(out)
    assert voxels.resolution == (8, 8, 8)
    occupancy = voxels.occupancy()[0]
    assert int(occupancy.sum()) == 64 and bool(occupancy[2:6, 2:6, 2:6].all())
    assert voxels.origin[0].tolist() == pytest.approx([-1.0, -1.0, -1.0])
    assert voxels.voxel_size[0].tolist() == pytest.approx([0.25, 0.25, 0.25])


def test_sdf_command_writes_an_npz(plugin, cube):
    import numpy as np

    out = plugin.workdir / "cube.npz"
    _cli("sdf", str(cube), "--resolution", "4", "--padding", "0.5", "-o", str(out), cwd=plugin.workdir)
    data = np.load(out)
    assert data["sdf"].shape == (4, 4, 4)
    # voxel centres at +-0.25 and +-0.75: inner ones are 0.25 deep, corner ones sqrt(3) * 0.25 out
    assert data["sdf"][1:3, 1:3, 1:3] == pytest.approx(np.full((2, 2, 2), -0.25), abs=1e-6)
    assert float(data["sdf"][0, 0, 0]) == pytest.approx(0.25 * 3 ** 0.5, abs=1e-6)


def test_sdf_command_bad_arguments_give_clean_errors(plugin, cube):
    result = _cli("sdf", str(cube), "--resolution", "1", "-o", str(plugin.workdir / "x.binvox"),
                  cwd=plugin.workdir, check=False)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("geomgen: error: --resolution"), result.stderr
    assert "Traceback" not in result.stderr
    result = _cli("sdf", str(plugin.workdir / "missing.obj"), "-o", str(plugin.workdir / "x.binvox"),
                  cwd=plugin.workdir, check=False)
    assert result.returncode == 1 and "missing.obj" in result.stderr and "Traceback" not in result.stderr


def test_external_plugins_can_be_blocked(plugin):
    listed = _plugins(plugin.workdir, GEOMGEN_DISABLE_PLUGINS="external")
    info = listed["sdf"]
    assert info["status"] == "blocked"
    assert "GEOMGEN_DISABLE_PLUGINS" in info["error"]
    assert info["distribution"] == DIST and info["components"] == {}
    assert listed["core"]["status"] == "ok"
    result = _python("""
        import json, geomgen
        from geomgen.errors import UnknownComponentError
        try:
            geomgen.get_metric("volume-iou")
            error = None
        except UnknownComponentError as exc:
            error = str(exc)
        print(json.dumps({"metrics": geomgen.list_metrics(), "error": error}))
    """, plugin.workdir, GEOMGEN_DISABLE_PLUGINS="external")
    assert "volume-iou" not in result["metrics"] and "chamfer-l2" in result["metrics"]
    assert result["error"] and "volume-iou" in result["error"]
    # its command is gone too: argparse rejects it (usage error, exit code 2)
    result = _cli("sdf", "x.obj", "-o", "x.binvox", cwd=plugin.workdir, check=False,
                  GEOMGEN_DISABLE_PLUGINS="external")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_blocked_by_name(plugin):
    assert _plugins(plugin.workdir, GEOMGEN_DISABLE_PLUGINS="sdf")["sdf"]["status"] == "blocked"


def test_uninstall_removes_it(plugin):
    """Runs last in this module: uninstalls, then checks that nothing is left."""
    plugin.uninstall()
    listed = _plugins(plugin.workdir)
    assert "sdf" not in listed
    assert listed["core"]["status"] == "ok"
    result = _python("""
        import json, geomgen
        print(json.dumps(geomgen.list_metrics()))
    """, plugin.workdir)
    assert "volume-iou" not in result
