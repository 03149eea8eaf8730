"""The ``geomgen`` command line: built-in commands, plugin commands, errors and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import geomgen
from geomgen._registry import PluginManager, set_plugin_manager
from geomgen.cli import main
from geomgen.components import CommandSpec

CUBE_OFF = """OFF
8 6 0
0 0 0
1 0 0
1 1 0
0 1 0
0 0 1
1 0 1
1 1 1
0 1 1
4 0 3 2 1
4 4 5 6 7
4 0 1 5 4
4 1 2 6 5
4 2 3 7 6
4 3 0 4 7
"""


@pytest.fixture
def cube(tmp_path):
    path = tmp_path / "cube.off"
    path.write_text(CUBE_OFF)
    return path


@pytest.fixture
def manager(monkeypatch):
    """A fresh process-wide manager with the built-ins, restored afterwards."""
    monkeypatch.delenv("GEOMGEN_STRICT_PLUGINS", raising=False)
    monkeypatch.delenv("GEOMGEN_DISABLE_PLUGINS", raising=False)
    pm = PluginManager()
    pm.load_default_plugins()
    saved = set_plugin_manager(pm)
    yield pm
    set_plugin_manager(saved)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_version_and_help(capsys, manager):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"geomgen {geomgen.__version__}"
    code, out, _ = run(capsys)
    assert code == 0 and "plugins" in out and "info" in out and "compare" in out


def test_usage_error_exits_2(capsys, manager):
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_plugins_table_and_json(capsys, manager):
    code, out, _ = run(capsys, "plugins")
    assert code == 0 and "core" in out and "chamfer-l2" in out and "NAME" in out
    code, out, _ = run(capsys, "plugins", "--json")
    data = json.loads(out)
    core = next(p for p in data if p["name"] == "core")
    assert core["status"] == "ok" and core["distribution"] == "geomgen" and core["version"] == geomgen.__version__
    assert set(core) >= {"name", "version", "distribution", "hooks", "components", "status", "error"}
    assert "geomgen_register_commands" in core["hooks"]


class Broken:
    @staticmethod
    @geomgen.hookimpl
    def geomgen_register_metrics(register):
        raise ImportError("needs libfoo")


class Hello:
    @staticmethod
    def _configure(parser):
        parser.add_argument("name")

    @staticmethod
    def _run(args):
        print(f"hello {args.name}")
        return 3

    @staticmethod
    @geomgen.hookimpl
    def geomgen_register_commands(register):
        register(CommandSpec(name="hello", help="say hello", configure=Hello._configure, run=Hello._run))


def test_broken_plugin_is_listed_and_the_rest_works(capsys, manager, cube):
    manager.add_plugin(Broken, "broken", distribution="geomgen-broken", version="0.0.1")
    manager.add_plugin(Hello, "hello-plugin")
    code, out, err = run(capsys, "plugins", "--json")
    assert code == 0
    broken = next(p for p in json.loads(out) if p["name"] == "broken")
    assert broken["status"] == "failed" and "needs libfoo" in broken["error"]
    assert "skipping plugin 'broken'" in err
    code, out, _ = run(capsys, "hello", "world")
    assert code == 3 and out.strip() == "hello world"
    code, out, _ = run(capsys, "info", str(cube))
    assert code == 0 and "num_faces" in out


def test_info_reports_mesh_statistics(capsys, manager, cube):
    code, out, _ = run(capsys, "info", "--json", str(cube))
    assert code == 0
    (report,) = json.loads(out)
    assert report["type"] == "mesh"
    assert report["num_verts"] == 8 and report["num_faces"] == 12 and report["num_edges"] == 18
    assert report["surface_area"] == pytest.approx(6.0)
    assert report["volume"] == pytest.approx(1.0)
    assert report["watertight"] and report["euler_characteristic"] == 2
    assert report["bbox"]["extent"] == pytest.approx([1.0, 1.0, 1.0])


def test_info_on_a_point_cloud(capsys, manager, tmp_path):
    path = tmp_path / "pts.xyz"
    path.write_text("0 0 0\n1 0 0\n0 2 0\n")
    code, out, _ = run(capsys, "info", "--json", str(path))
    (report,) = json.loads(out)
    assert code == 0 and report["type"] == "pointcloud" and report["num_points"] == 3


def test_compare_identical_shapes(capsys, manager, cube):
    code, out, _ = run(capsys, "compare", str(cube), str(cube), "--json", "--samples", "4000")
    assert code == 0
    result = json.loads(out)
    # gt-10 scaling: a 10-unit cube sampled twice with 4000 points; NN distances are small
    assert 0 < result["chamfer-l2"] < 0.2
    assert result["F1@0.5"] > 95


def test_compare_detects_a_shift(capsys, manager, cube, tmp_path):
    shifted = tmp_path / "shifted.off"
    lines = CUBE_OFF.splitlines()
    lines[2:10] = [" ".join(str(float(v) + (0.5 if i == 0 else 0)) for i, v in enumerate(row.split()))
                   for row in lines[2:10]]
    shifted.write_text("\n".join(lines) + "\n")
    code, out, _ = run(capsys, "compare", str(shifted), str(cube), "--json", "--metric", "chamfer-l2",
                       "--scale", "none", "--samples", "3000")
    assert code == 0
    assert json.loads(out)["chamfer-l2"] > 0.05


def test_convert_round_trip(capsys, manager, cube, tmp_path):
    out_path = tmp_path / "cube.ply"
    code, out, _ = run(capsys, "convert", str(cube), str(out_path))
    assert code == 0 and out_path.exists()
    code, out, _ = run(capsys, "info", "--json", str(out_path))
    assert json.loads(out)[0]["num_faces"] == 12


@pytest.mark.parametrize("argv, fragment", [
    (["info", "/nonexistent/mesh.obj"], "/nonexistent/mesh.obj"),
    (["compare", "/nonexistent/a.off", "/nonexistent/b.off"], "/nonexistent/a.off"),
    (["compare", "CUBE", "CUBE", "--metric", "nope"], "no metric named 'nope'"),
    (["compare", "CUBE", "CUBE", "--samples", "0"], "--samples"),
    (["convert", "CUBE", "OUT.xyz"], "cannot hold the faces"),
])
def test_errors_are_clean_and_exit_1(capsys, manager, cube, tmp_path, argv, fragment):
    argv = [a.replace("CUBE", str(cube)).replace("OUT", str(tmp_path / "out")) for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 1
    assert err.startswith("geomgen: error:") and fragment in err
    assert "Traceback" not in err


def test_empty_file_is_a_clean_error(capsys, manager, tmp_path):
    empty = tmp_path / "empty.ply"
    empty.write_bytes(b"")
    code, _, err = run(capsys, "info", str(empty))
    assert code == 1 and "empty.ply" in err


def test_console_script_runs_in_a_fresh_process():
    out = subprocess.run([sys.executable, "-m", "geomgen.cli", "plugins", "--json"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert any(p["name"] == "core" for p in json.loads(out.stdout))


def test_plugins_lists_a_broken_plugin_even_in_strict_mode(capsys, monkeypatch, cube):
    monkeypatch.setenv("GEOMGEN_STRICT_PLUGINS", "1")
    pm = PluginManager()
    pm.load_default_plugins()
    pm.add_plugin(Broken, "broken", distribution="geomgen-broken", version="0.0.1")
    saved = set_plugin_manager(pm)
    try:
        code, out, _ = run(capsys, "info", str(cube))  # strict: a broken plugin is an error...
        _, err = code, capsys.readouterr().err
        assert code == 1
        code, out, err = run(capsys, "plugins")  # ...but the listing still works
    finally:
        set_plugin_manager(saved)
    assert code == 0 and "core" in out


def test_strict_error_message(capsys, monkeypatch, cube):
    monkeypatch.setenv("GEOMGEN_STRICT_PLUGINS", "1")
    pm = PluginManager()
    pm.load_default_plugins()
    pm.add_plugin(Broken, "broken")
    saved = set_plugin_manager(pm)
    try:
        code, _, err = run(capsys, "info", str(cube))
    finally:
        set_plugin_manager(saved)
    assert code == 1
    assert err.startswith("geomgen: error: plugin 'broken'") and "GEOMGEN_STRICT_PLUGINS" in err
    assert "needs libfoo" in err


class MeshMetric:
    @staticmethod
    def _faces(pred, gt):
        import torch

        return torch.tensor([float(pred.num_faces_per_mesh()[0] - gt.num_faces_per_mesh()[0])])

    @staticmethod
    @geomgen.hookimpl
    def geomgen_register_metrics(register):
        from geomgen.components import MetricSpec

        register(MetricSpec(name="face-diff", fn=MeshMetric._faces, inputs="meshes"))


def test_compare_passes_meshes_to_mesh_metrics(capsys, manager, cube, tmp_path):
    manager.add_plugin(MeshMetric, "meshmetric")
    code, out, _ = run(capsys, "compare", str(cube), str(cube), "--json", "--samples", "500")
    assert code == 0 and "face-diff" not in json.loads(out)  # mesh metrics only on request
    code, out, _ = run(capsys, "compare", str(cube), str(cube), "--json", "--samples", "500", "--metric", "all")
    result = json.loads(out)
    assert code == 0 and result["face-diff"] == 0.0 and "chamfer-l2" in result
    # compare-meshes and f1 both report F1@0.1: the later one is qualified, nothing is overwritten
    assert "F1@0.1" in result and "f1:F1@0.1" in result and "Chamfer-L2" in result
    pts = tmp_path / "pts.xyz"
    pts.write_text("0 0 0\n1 0 0\n0 1 0\n")
    code, _, err = run(capsys, "compare", str(pts), str(cube), "--metric", "face-diff")
    assert code == 1 and "takes meshes" in err


def test_os_errors_are_clean(capsys, manager, cube, tmp_path):
    code, _, err = run(capsys, "convert", str(cube), str(tmp_path / "missing-dir" / "out.ply"))
    assert code == 1 and err.startswith("geomgen: error:") and "Traceback" not in err


# ----------------------------------------------------------------------------- lazy commands
NO_TORCH = """
import sys
from geomgen.cli import main
try:
    code = main({argv!r})
except SystemExit as exc:
    code = exc.code
heavy = sorted(m for m in ("torch", "numpy", "geomgen.cli.info", "geomgen.cli.train") if m in sys.modules)
print("HEAVY", heavy, "CODE", code)
"""


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["plugins"], ["plugins", "--json"]])
def test_version_help_and_plugins_import_no_torch(argv):
    """The top-level parser names every command without importing its module."""
    out = subprocess.run([sys.executable, "-c", NO_TORCH.format(argv=argv)], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert "HEAVY [] CODE 0" in out.stdout, out.stdout + out.stderr
    if argv == ["--help"]:
        for name in ("plugins", "info", "compare", "convert", "models", "data", "train", "eval", "sample", "predict",
                     "view", "render", "fit"):
            assert f"    {name} " in out.stdout, name


LAZY_MODULE = '''
import sys

IMPORTED = True


def configure(parser):
    parser.add_argument("word")


def run(args):
    print(f"lazy {args.word}")
    return 4
'''


class Lazy:
    @staticmethod
    @geomgen.hookimpl
    def geomgen_register_commands(register):
        register(CommandSpec(name="lazy", help="a command in its own module", module="geomgen_test_lazy_cmd"))
        register(CommandSpec(name="gone", help="its module is missing", module="geomgen_test_no_such_module"))


def test_module_commands_are_imported_only_when_invoked(capsys, manager, cube, tmp_path, monkeypatch):
    (tmp_path / "geomgen_test_lazy_cmd.py").write_text(LAZY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "geomgen_test_lazy_cmd", raising=False)
    manager.add_plugin(Lazy, "lazy-plugin")
    code, out, _ = run(capsys)  # the listing names both without importing either
    assert code == 0 and "lazy" in out and "a command in its own module" in out and "gone" in out
    code, out, _ = run(capsys, "info", str(cube))
    assert code == 0 and "geomgen_test_lazy_cmd" not in sys.modules
    code, out, _ = run(capsys, "lazy", "hi")
    assert code == 4 and out.strip() == "lazy hi" and "geomgen_test_lazy_cmd" in sys.modules
    with pytest.raises(SystemExit) as exc:  # a broken command warns and is left out: a usage error
        main(["gone"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "failed to configure" in err and "geomgen_test_no_such_module" in err


def test_command_spec_takes_callables_or_a_module():
    spec = CommandSpec(name="x", help="h", module="geomgen.cli.info")
    configure, run_ = spec.load()
    assert configure.__module__ == run_.__module__ == "geomgen.cli.info"
    assert CommandSpec("y", "h", Hello._configure, Hello._run).load() == (Hello._configure, Hello._run)
    with pytest.raises(TypeError, match="give configure and run, or module"):
        CommandSpec(name="x", help="h")
    with pytest.raises(TypeError, match="run must be callable"):
        CommandSpec(name="x", help="h", configure=Hello._configure)
    with pytest.raises(TypeError, match="not both"):
        CommandSpec(name="x", help="h", configure=Hello._configure, run=Hello._run, module="a.b")
    with pytest.raises(TypeError, match="dotted module name"):
        CommandSpec(name="x", help="h", module="not a module")
    with pytest.raises(TypeError, match="no callable 'configure'"):
        CommandSpec(name="x", help="h", module="geomgen.errors").load()


def test_models_lists_every_model_and_its_config_schema(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0
    for name in geomgen.list_models():
        assert f"\n{name} " in "\n" + out, name
    code, out, _ = run(capsys, "models", "voxel")
    assert code == 0 and "geomgen_voxel.config.VoxelConfig" in out
    assert "code_dim" in out and "an integer >= 1" in out and "128" in out
    code, out, _ = run(capsys, "models", "--kind", "generator", "--json")
    records = json.loads(out)
    assert code == 0 and {r["name"] for r in records} == set(geomgen.list_models(kind="generator"))
    for r in records:  # the schema is the config class's own, defaults included
        assert {p["name"]: p["default"] for p in r["schema"]} == geomgen.get_model_config(r["name"]).defaults()


def test_models_unknown_name_is_a_clean_error(capsys):
    code, _, err = run(capsys, "models", "voxl")
    assert code == 1 and "'voxel'" in err and "Traceback" not in err


@pytest.mark.parametrize("setting, fragment", [("code_dim=0", "'code_dim' must be an integer >= 1, got 0"),
                                               ("cod_dim=3", "did you mean 'code_dim'"),
                                               ("code_dim", "expected KEY=VALUE")])
def test_train_set_is_checked_against_the_model_config(capsys, tmp_path, setting, fragment):
    code, _, err = run(capsys, "train", "voxel", "--set", setting, "--max-steps", "1", "--warmup-steps", "0",
                       "--out-dir", str(tmp_path / "run"))
    assert code == 1 and fragment in err, err
    assert not (tmp_path / "run").exists()
