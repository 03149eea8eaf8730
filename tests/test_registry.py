"""The plugin registry: loading, isolation of broken plugins, switches, collisions, API."""

from __future__ import annotations

import inspect
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch

import geomgen
from geomgen import hookspecs
from geomgen._registry import PluginManager, set_plugin_manager
from geomgen.components import (
    CommandSpec,
    DatasetSpec,
    GeneratorSpec,
    MetricSpec,
    RepresentationSpec,
)
from geomgen.errors import (
    InvalidInputError,
    PluginConflictError,
    PluginError,
    PluginWarning,
    UnknownComponentError,
)


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture
def make_dist(tmp_path, monkeypatch):
    """Write a fake installed distribution (dist-info + module) and put it on sys.path,
    so that importlib.metadata finds its ``geomgen`` entry point exactly as for a pip install."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    created: list[str] = []

    def make(dist: str, module: str, source: str, version: str = "1.0", ep_name: str | None = None) -> Path:
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[geomgen]\n{ep_name or module} = {module}\n")
        created.append(module)
        return site

    yield make
    for module in created:
        sys.modules.pop(module, None)


def _manager(monkeypatch, **env: str) -> PluginManager:
    for key in ("GEOMGEN_STRICT_PLUGINS", "GEOMGEN_DISABLE_PLUGINS"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    pm = PluginManager()
    pm.load_default_plugins()
    pm.load_entrypoints()
    return pm


@pytest.fixture
def use_manager():
    """Install a manager as the process-wide one for the public API, restore afterwards."""
    saved = set_plugin_manager(None)

    def use(pm: PluginManager) -> PluginManager:
        set_plugin_manager(pm)
        return pm

    yield use
    set_plugin_manager(saved)


def _info(pm: PluginManager, name: str):
    return next(i for i in pm.plugins() if i.name == name)


GOOD = """
    import geomgen
    from geomgen.components import MetricSpec

    def _metric(pred, gt):
        return (pred - gt).abs().sum()

    @geomgen.hookimpl
    def geomgen_register_metrics(register):
        register(MetricSpec(name="{name}", fn=_metric, description="test metric"))
"""


# ----------------------------------------------------------------------------- loading
def test_builtin_plugin_goes_through_the_hooks(monkeypatch):
    pm = _manager(monkeypatch)
    core = _info(pm, "core")
    assert core.status == "ok" and core.builtin and core.distribution == "geomgen"
    assert "geomgen_register_metrics" in core.hooks
    assert {"chamfer-l2", "f1"} <= set(core.components["metric"])
    assert {"info", "compare", "convert"} <= set(core.components["command"])


def test_entry_point_plugin_is_found_with_distribution_and_version(make_dist, monkeypatch):
    make_dist("geomgen-good", "gg_good_plugin", GOOD.format(name="good-metric"), version="2.3")
    pm = _manager(monkeypatch)
    info = _info(pm, "gg_good_plugin")
    assert (info.status, info.distribution, info.version, info.builtin) == ("ok", "geomgen-good", "2.3", False)
    assert info.file and info.file.endswith("gg_good_plugin.py")
    assert pm.list_components("metric", include="good*") == ["good-metric"]


def test_plugin_that_fails_to_import_is_reported_and_skipped(make_dist, monkeypatch):
    make_dist("geomgen-broken", "gg_broken_plugin", "import this_module_does_not_exist_xyz\n")
    make_dist("geomgen-good", "gg_good_plugin", GOOD.format(name="good-metric"))
    with pytest.warns(PluginWarning, match=r"gg_broken_plugin.*geomgen-broken.*No module named"):
        pm = _manager(monkeypatch)
    broken = _info(pm, "gg_broken_plugin")
    assert broken.status == "failed" and "ModuleNotFoundError" in broken.error
    assert _info(pm, "gg_good_plugin").status == "ok"
    assert "good-metric" in pm.list_components("metric")
    assert "chamfer-l2" in pm.list_components("metric")


def test_plugin_calling_sys_exit_on_import_does_not_kill_the_host(make_dist, monkeypatch):
    make_dist("geomgen-exit", "gg_exit_plugin", "import sys\nsys.exit(3)\n")
    with pytest.warns(PluginWarning, match="SystemExit"):
        pm = _manager(monkeypatch)
    assert _info(pm, "gg_exit_plugin").status == "failed"


class RaisesInHook:
    @staticmethod
    @geomgen.hookimpl
    def geomgen_register_datasets(register):
        register(DatasetSpec(name="fine-dataset", build=lambda **kw: [1, 2, 3]))

    @staticmethod
    @geomgen.hookimpl
    def geomgen_register_metrics(register):
        raise RuntimeError("boom in metrics")


class ReturnsSomething:
    @staticmethod
    @geomgen.hookimpl
    def geomgen_register_metrics(register):
        return [MetricSpec(name="returned", fn=len)]


class RegistersWrongType:
    @staticmethod
    @geomgen.hookimpl
    def geomgen_register_metrics(register):
        register({"name": "dict-metric", "fn": len})


class SwallowsTheError:
    @staticmethod
    @geomgen.hookimpl
    def geomgen_register_metrics(register):
        try:
            register("not a spec")
        except Exception:
            pass


class RegistersTwice:
    @staticmethod
    def geomgen_register_metrics(register):
        register(MetricSpec(name="twice", fn=len))
        register(MetricSpec(name="twice", fn=len))


@pytest.mark.parametrize(
    "plugin, reason",
    [
        (RaisesInHook, "raised RuntimeError: boom in metrics"),
        (ReturnsSomething, "returned a list"),
        (RegistersWrongType, "registered a dict; expected geomgen.components.MetricSpec"),
        (SwallowsTheError, "registered a str"),
        (RegistersTwice, "registered the metric 'twice' twice"),
    ],
)
def test_plugin_misbehaving_inside_a_hook_is_skipped_whole(plugin, reason, monkeypatch):
    pm = _manager(monkeypatch)
    pm.add_plugin(plugin, "bad", distribution="geomgen-bad", version="0.1")
    with pytest.warns(PluginWarning, match="skipping plugin 'bad'"):
        infos = pm.plugins()
    bad = next(i for i in infos if i.name == "bad")
    assert bad.status == "failed" and reason in bad.error and bad.components == {}
    # nothing of the failed plugin survives, not even what it registered before failing
    assert "fine-dataset" not in pm.list_components("dataset")
    assert pm.list_components("metric", include="chamfer*") == ["chamfer-l1", "chamfer-l2"]


class Misspelled:
    @staticmethod
    @geomgen.hookimpl
    def geomgen_register_metric(register):  # missing the final "s"
        pass


class MisspelledUndecorated:
    @staticmethod
    def geomgen_regster_datasets(register):
        pass


@pytest.mark.parametrize("plugin, hint", [
    (Misspelled, "did you mean 'geomgen_register_metrics'"),
    (MisspelledUndecorated, "did you mean 'geomgen_register_datasets'"),
])
def test_misspelled_hook_is_an_error_with_a_suggestion(plugin, hint, monkeypatch):
    pm = _manager(monkeypatch)
    with pytest.warns(PluginWarning, match="unknown hook"):
        info = pm.add_plugin(plugin, "typo")
    assert info.status == "failed" and hint in info.error
    assert pm.get_plugin("typo") is None  # unregistered from pluggy too


def test_hook_with_an_argument_the_spec_lacks_is_rejected(monkeypatch):
    class WrongArgs:
        @staticmethod
        @geomgen.hookimpl
        def geomgen_register_metrics(register, config):
            pass

    pm = _manager(monkeypatch)
    with pytest.warns(PluginWarning, match="invalid hook implementation"):
        info = pm.add_plugin(WrongArgs, "wrongargs")
    assert info.status == "failed" and "config" in info.error


def test_hook_may_take_fewer_arguments_than_the_spec(monkeypatch):
    calls = []

    class NoArgs:
        @staticmethod
        @geomgen.hookimpl
        def geomgen_register_metrics():
            calls.append(1)

    pm = _manager(monkeypatch)
    info = pm.add_plugin(NoArgs, "noargs")
    pm.plugins()
    assert info.status == "ok" and calls == [1]


# ----------------------------------------------------------------------------- switches
def test_strict_mode_turns_failures_into_errors(make_dist, monkeypatch):
    make_dist("geomgen-broken", "gg_broken_plugin", "raise ValueError('bad plugin')\n")
    with pytest.raises(PluginError, match="gg_broken_plugin.*bad plugin"):
        _manager(monkeypatch, GEOMGEN_STRICT_PLUGINS="1")


def test_strict_mode_raises_inside_hooks_too(monkeypatch):
    pm = _manager(monkeypatch, GEOMGEN_STRICT_PLUGINS="true")
    pm.add_plugin(RaisesInHook, "bad")
    with pytest.raises(PluginError, match="boom in metrics"):
        pm.plugins()


def test_disable_by_name_and_pattern(make_dist, monkeypatch):
    make_dist("geomgen-good", "gg_good_plugin", GOOD.format(name="good-metric"))
    pm = _manager(monkeypatch, GEOMGEN_DISABLE_PLUGINS="gg_good_*, other")
    info = _info(pm, "gg_good_plugin")
    assert info.status == "blocked" and "GEOMGEN_DISABLE_PLUGINS" in info.error
    assert "good-metric" not in pm.list_components("metric")
    assert _info(pm, "core").status == "ok"


def test_disable_external_keeps_first_party(make_dist, monkeypatch):
    make_dist("geomgen-good", "gg_good_plugin", GOOD.format(name="good-metric"))
    pm = _manager(monkeypatch, GEOMGEN_DISABLE_PLUGINS="external")
    assert _info(pm, "gg_good_plugin").status == "blocked"
    assert _info(pm, "core").status == "ok"
    assert "chamfer-l2" in pm.list_components("metric")


# ----------------------------------------------------------------------------- collisions
def test_two_plugins_with_one_component_name(make_dist, monkeypatch, use_manager):
    make_dist("geomgen-alpha", "gg_alpha", GOOD.format(name="dup"), version="1.1")
    make_dist("geomgen-beta", "gg_beta", GOOD.format(name="dup"), version="2.2")
    with pytest.warns(PluginWarning, match="registered by 2 plugins"):
        pm = use_manager(_manager(monkeypatch))
        names = geomgen.list_metrics(include="*dup")
    assert names == ["gg_alpha:dup", "gg_beta:dup"]
    with pytest.raises(PluginConflictError) as err:
        geomgen.get_metric("dup")
    message = str(err.value)
    assert "geomgen-alpha 1.1" in message and "geomgen-beta 2.2" in message and "'gg_alpha:dup'" in message
    assert callable(geomgen.get_metric("gg_beta:dup"))
    assert pm.provider("metric", "gg_beta:dup").distribution == "geomgen-beta"


def test_collision_is_an_error_in_strict_mode(make_dist, monkeypatch):
    make_dist("geomgen-alpha", "gg_alpha", GOOD.format(name="dup"))
    make_dist("geomgen-beta", "gg_beta", GOOD.format(name="dup"))
    pm = _manager(monkeypatch, GEOMGEN_STRICT_PLUGINS="1")
    with pytest.raises(PluginConflictError, match="geomgen-alpha.*geomgen-beta"):
        pm.plugins()


def test_two_distributions_with_one_plugin_name(make_dist, monkeypatch):
    make_dist("geomgen-one", "gg_one", GOOD.format(name="m1"), ep_name="same")
    make_dist("geomgen-two", "gg_two", GOOD.format(name="m2"), ep_name="same")
    with pytest.warns(PluginWarning, match="already used by"):
        pm = _manager(monkeypatch)
    same = [i for i in pm.plugins() if i.name == "same"]
    assert sorted(i.status for i in same) == ["failed", "ok"]
    failed = next(i for i in same if i.status == "failed")
    assert "geomgen-one" in failed.error or "geomgen-two" in failed.error


# ----------------------------------------------------------------------------- the API
class Tiny(torch.nn.Module):
    def __init__(self, width: int = 4, depth: int = 1):
        super().__init__()
        self.layers = torch.nn.Sequential(*[torch.nn.Linear(width, width) for _ in range(depth)])


class ModelPlugin:
    @staticmethod
    @geomgen.hookimpl
    def geomgen_register_representations(register):
        register(RepresentationSpec(name="tiny-voxel", build=Tiny, output="voxels",
                                    default_config={"width": 8}))
        register(RepresentationSpec(name="tiny-mesh", build=Tiny, output="mesh"))
        register(RepresentationSpec(name="not-a-module", build=lambda: "oops"))

    @staticmethod
    @geomgen.hookimpl
    def geomgen_register_generators(register):
        register(GeneratorSpec(name="tiny-vae", build=Tiny, output="voxels"))

    @staticmethod
    @geomgen.hookimpl
    def geomgen_register_datasets(register):
        register(DatasetSpec(name="numbers", build=lambda root=None, split="train", n=3: list(range(n))))


@pytest.fixture
def models(monkeypatch, use_manager):
    # built-ins only (no entry points): the installed first-party plugins would add their models
    for key in ("GEOMGEN_STRICT_PLUGINS", "GEOMGEN_DISABLE_PLUGINS"):
        monkeypatch.delenv(key, raising=False)
    pm = PluginManager()
    pm.load_default_plugins()
    pm = use_manager(pm)
    pm.add_plugin(ModelPlugin, "models", distribution="geomgen-models", version="0.3")
    return pm


def test_list_models_with_patterns_and_kinds(models):
    # "mean-shape" is the core plugin's baseline
    assert geomgen.list_models() == ["mean-shape", "not-a-module", "tiny-mesh", "tiny-vae", "tiny-voxel"]
    assert geomgen.list_models(kind="generator") == ["tiny-vae"]
    assert geomgen.list_models(include="tiny-*", exclude=["*vae"]) == ["tiny-mesh", "tiny-voxel"]
    assert geomgen.list_models(include=["*mesh", "*vae"]) == ["tiny-mesh", "tiny-vae"]
    with pytest.raises(InvalidInputError, match="kind"):
        geomgen.list_models(kind="metric")


def test_get_model_merges_default_config(models):
    model = geomgen.get_model("tiny-voxel", depth=2)
    assert isinstance(model, Tiny) and len(model.layers) == 2 and model.layers[0].in_features == 8
    assert geomgen.get_model("models:tiny-vae").layers[0].in_features == 4
    assert geomgen.get_model_builder("tiny-mesh") is Tiny


def test_get_model_errors(models):
    with pytest.raises(UnknownComponentError, match=r"no model named 'tiny-voxle'.*Did you mean 'tiny-voxel'"):
        geomgen.get_model("tiny-voxle")
    with pytest.raises(InvalidInputError, match="tiny-voxel.*colour"):
        geomgen.get_model("tiny-voxel", colour="red")
    with pytest.raises(PluginError, match=r"not-a-module.*geomgen-models.*built a str"):
        geomgen.get_model("not-a-module")


def test_datasets_and_metrics_through_the_api(models):
    assert "numbers" in geomgen.list_datasets()
    assert geomgen.get_dataset("numbers", n=5) == [0, 1, 2, 3, 4]
    spec = geomgen.get_metric_spec("chamfer-l2")
    assert spec.inputs == "pointclouds" and not spec.higher_is_better
    with pytest.raises(UnknownComponentError, match="no metric named 'nope'"):
        geomgen.get_metric("nope")


def test_unknown_component_lists_failed_plugins(models):
    models.add_plugin(RaisesInHook, "bad")
    with pytest.warns(PluginWarning):
        with pytest.raises(UnknownComponentError, match=r"plugins that failed to load: bad"):
            geomgen.get_dataset("fine-dataset")


# ----------------------------------------------------------------------------- specs
def test_records_validate_names_and_callables():
    with pytest.raises(TypeError, match="name"):
        MetricSpec(name="has space", fn=len)
    with pytest.raises(TypeError, match="name"):
        MetricSpec(name="plug:name", fn=len)
    with pytest.raises(TypeError, match="callable"):
        RepresentationSpec(name="x", build="not callable")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="run must be callable"):
        CommandSpec(name="x", help="h", configure=print, run=None)  # type: ignore[arg-type]


def test_model_builders_can_be_named_lazily(monkeypatch):
    """``build="package.module:Class"`` is imported on the first build, not when registering."""
    import sys

    from geomgen.components import GeneratorSpec

    spec = RepresentationSpec(name="lazy", build="collections:OrderedDict")
    assert spec.build == "collections:OrderedDict" and spec.load_build() is __import__("collections").OrderedDict
    monkeypatch.delitem(sys.modules, "geomgen_voxel.model", raising=False)
    gen = GeneratorSpec(name="lazy-gen", build="geomgen_voxel.model:VoxelPredictor")
    assert "geomgen_voxel.model" not in sys.modules
    assert gen.load_build().__name__ == "VoxelPredictor" and "geomgen_voxel.model" in sys.modules
    for bad in ("no_colon", "a.b:", ":Cls", "a b:C", "a:1x"):
        with pytest.raises(TypeError, match="package.module:attribute"):
            RepresentationSpec(name="x", build=bad)
    with pytest.raises(ModuleNotFoundError):
        RepresentationSpec(name="x", build="no_such_module_xyz:Cls").load_build()
    with pytest.raises(TypeError, match="not callable"):
        RepresentationSpec(name="x", build="math:pi").load_build()


def test_every_hook_is_typed_documented_and_versioned():
    specs = {n: f for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith("geomgen_")}
    assert set(specs) == set(hookspecs.REGISTER_HOOKS)
    for name, fn in specs.items():
        doc = inspect.getdoc(fn) or ""
        assert "Example::" in doc and "versionadded" in doc, name
        assert "register" in inspect.signature(fn).parameters, name
        assert fn.__annotations__.get("register"), name
    # and every hook is implemented by a plugin in some test
    source = "".join(p.read_text() for p in Path(__file__).parent.glob("test_*.py"))
    for name in specs:
        assert f"def {name}(" in source, f"{name} has no test"


def test_public_api_is_light_to_import():
    code = ("import sys, geomgen; geomgen.list_plugins; "
            "heavy = [m for m in ('trimesh', 'open3d', 'numba', 'torch') if m in sys.modules]; "
            "print(','.join(heavy))")
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "", f"`import geomgen` imported {out.stdout.strip()}"


def test_no_warning_on_a_clean_install(monkeypatch):
    with warnings.catch_warnings():
        warnings.simplefilter("error", PluginWarning)
        pm = _manager(monkeypatch)
        assert all(i.status == "ok" for i in pm.plugins() if i.builtin)
