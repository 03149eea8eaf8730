"""Model hyper-parameters declared once (geomgen.config): every first-party model has a config
class; get_model builds its defaults and rejects unknown keys and out-of-range values naming the
key; configs round-trip through to_dict/from_dict and JSON; schemas are JSON-able and listed
without torch; the shipped pretrained models and training recipes still load; docs/models.md
is generated from the config classes."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import geomgen
from geomgen.components import GeneratorSpec, RepresentationSpec
from geomgen.config import GeneratorConfig, ModelConfig, PredictorConfig, doublings, param
from geomgen.errors import InvalidInputError

ROOT = Path(__file__).resolve().parents[1]
#: Every model geomgen ships (core baseline + first-party plugins).
SHIPPED = {"mean-shape", "depth", "voxel", "implicit", "pointcloud", "mesh",
           "autoregressive", "vae", "vae-points", "gan", "gan-points"}


def _first_party() -> list[str]:
    names = []
    for info in geomgen.list_plugins():
        if info.builtin and info.status == "ok":
            for kind in ("representation", "generator"):
                names += info.components.get(kind, [])
    return sorted(names)


FIRST_PARTY = _first_party()


def _docs_script() -> Any:
    """scripts/gen_model_docs.py as a module."""
    spec = importlib.util.spec_from_file_location("gen_model_docs", ROOT / "scripts" / "gen_model_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bad_values(p: dict[str, Any]) -> list[Any]:
    """Values the schema entry ``p`` must reject: out of each bound, off the choices, of the wrong type."""
    kind = p["type"].split(" | ")
    scalar = next((k for k in kind if not k.startswith("list") and k != "None"), None)
    listed = next((k[5:-1] for k in kind if k.startswith("list[")), None)
    bad: list[Any] = []
    step = 1 if (scalar or listed) == "int" else 0.5
    for key, value in (("ge", p.get("ge")), ("gt", p.get("gt")), ("le", p.get("le")), ("lt", p.get("lt"))):
        if value is None:
            continue
        out = value - step if key == "ge" else value + step if key == "le" else value
        out = int(out) if step == 1 else float(out)
        if scalar:
            bad.append(out)
        if listed:
            n = p.get("length") or 1
            bad.append([out] * n)
    if "choices" in p:
        bad.append("no-such-choice" if scalar == "str" else 999)
    if "length" in p and listed:
        bad.append([1] * (p["length"] + 1))
    if p.get("min_length"):
        bad.append([])
    bad += {"int": [True, 1.5, "1"], "float": [True, "0.5", float("nan")], "bool": [1, "yes"], "str": [3],
            None: []}[scalar]
    if listed:
        bad.append([True] if listed in ("int", "float") else [3])
        if scalar is None:
            bad.append("abc")
    if "None" not in kind:
        bad.append(None)
    return bad


# ----------------------------------------------------------------------------- the registry
def test_every_shipped_model_has_a_config_class():
    assert set(FIRST_PARTY) >= SHIPPED, FIRST_PARTY
    for name in FIRST_PARTY:
        cls = geomgen.get_model_config(name)
        assert isinstance(cls, type) and issubclass(cls, ModelConfig), name
        assert cls.model_name == name
        base = PredictorConfig if geomgen.get_model_spec(name).kind == "representation" else GeneratorConfig
        assert issubclass(cls, base), name
        assert dict(geomgen.get_model_spec(name).default_config) == cls.defaults()


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_defaults_are_what_get_model_builds(name):
    model = geomgen.get_model(name)
    cls = geomgen.get_model_config(name)
    assert model.config == cls.defaults()
    assert cls.from_dict(model.config) == cls()


def test_get_model_names_the_bad_key():
    with pytest.raises(InvalidInputError, match=r"^voxel config: 'code_dim' must be an integer >= 1, got 0$"):
        geomgen.get_model("voxel", code_dim=0)
    with pytest.raises(InvalidInputError, match=r"'mesh_level' must be a number in \(0, 1\), got 1\.5"):
        geomgen.get_model("voxel", mesh_level=1.5)
    with pytest.raises(InvalidInputError, match=r"voxel config: unknown key 'code_dims' \(did you mean 'code_dim'\?\); "
                                                r"accepted keys: encoder, code_dim, .*image_size, fov$"):
        geomgen.get_model("voxel", code_dims=64)
    with pytest.raises(InvalidInputError, match=r"'start_resolution' must be <= decoder_resolution \(8\)"):
        geomgen.get_model("voxel", start_resolution=16, decoder_resolution=8)
    with pytest.raises(InvalidInputError, match=r"'categories' has 1 names but num_classes=2"):
        geomgen.get_model("vae", num_classes=2, categories=["box"])
    with pytest.raises(geomgen.errors.UnknownComponentError, match="no model named 'voxle'"):
        geomgen.get_model("voxle", code_dim=0)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_bound_raises_naming_the_key(name):
    cls = geomgen.get_model_config(name)
    for p in cls.schema():
        for value in _bad_values(p):
            with pytest.raises(InvalidInputError) as info:
                cls.from_dict({p["name"]: value})
            message = str(info.value)
            assert message.startswith(f"{name} config: '{p['name']}' must be"), (p["name"], value, message)
            assert p["allowed"] in message and "got " in message, message


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_vocabularies_are_checked_when_the_model_is_built(name):
    """A string key whose allowed names live with torch code (``vocabulary``) is checked by the
    model itself: the default is one of them and anything else raises naming the key."""
    vocabulary_names = _docs_script().vocabulary_names
    for p in geomgen.get_model_config(name).schema():
        if "vocabulary" not in p:
            continue
        assert p["default"] in vocabulary_names(p["vocabulary"]), p
        with pytest.raises(InvalidInputError, match=rf"^{name} config: '{p['name']}' must be one of .*got 'bogus'$"):
            geomgen.get_model(name, **{p["name"]: "bogus"})


# ----------------------------------------------------------------------------- conversions
@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_round_trip_and_schema(name):
    cls = geomgen.get_model_config(name)
    cfg = cls()
    d = cfg.to_dict()
    assert not any(isinstance(v, tuple) for v in d.values())
    assert cls.from_dict(json.loads(json.dumps(d))) == cfg
    assert cls.resolve(d) == cfg and cls.resolve(cfg) is cfg and cls.resolve(None) == cfg
    schema = json.loads(json.dumps(cls.schema(), allow_nan=False))
    assert [p["name"] for p in schema] == list(d)
    for p in schema:
        assert {"name", "type", "default", "doc", "allowed"} <= set(p)
        assert p["default"] == d[p["name"]]
        assert p["doc"] and "\n" not in p["doc"]


def test_shipped_pretrained_models_load_with_their_manifest_configs():
    from geomgen.models import list_pretrained, load_pretrained, pretrained_info

    names = list_pretrained()
    assert set(names) >= {"mean-shape", "depth", "voxel", "implicit", "pointcloud", "mesh", "autoregressive",
                          "vae", "gan"}, names
    for name in names:
        config = pretrained_info(name)["config"]
        assert geomgen.get_model_config(name).from_dict(config).to_dict() == config, name
        assert load_pretrained(name).config == config, name


@pytest.mark.parametrize("recipes", ["pretrained_recipes.json", "generator_recipes.json"])
def test_training_recipes_are_valid_configs(recipes):
    data = json.loads((ROOT / "scripts" / recipes).read_text())
    for name, recipe in data["models"].items():
        geomgen.get_model_config(name).from_dict(recipe["model_config"])


def test_plugins_list_schemas_without_importing_torch():
    code = ("import sys, json, geomgen; "
            "s = {n: c.schema() for n in geomgen.list_models() if (c := geomgen.get_model_config(n))}; "
            "d = [i.to_dict() for i in geomgen.list_plugins()]; json.dumps([s, d]); "
            "c = {k: v for i in d for k, v in i['configs'].items()}; "
            "print(sorted(c) == sorted(s), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False"], out.stdout
    info = next(i for i in geomgen.list_plugins() if "voxel" in i.components.get("representation", []))
    assert info.to_dict()["configs"] == {"voxel": geomgen.get_model_config("voxel").schema()}


def test_models_page_is_up_to_date():
    text = _docs_script().render()
    assert (ROOT / "docs" / "models.md").read_text(encoding="utf-8") == text, \
        "docs/models.md is out of date: run python scripts/gen_model_docs.py"
    for name in SHIPPED:
        assert f"### `{name}`" in text


# ----------------------------------------------------------------------------- the ModelConfig machinery
class Toy(PredictorConfig):
    model_name = "toy"

    width: int = param(8, "hidden width", ge=1)
    scale: float = param(1.0, "a scale", gt=0.0, le=10.0)
    flag: bool = param(False, "a switch")
    mode: str = param("a", "a mode", choices=("a", "b"))
    sizes: tuple[int, ...] = param([4, 4], "layer sizes", ge=1, min_length=1)
    kernel: int | tuple[int, ...] = param(3, "one side or three", ge=1, length=3)
    radius: float | None = param(None, "optional radius", gt=0.0)

    def check(self) -> None:
        super().check()
        if self.width < len(self.sizes):
            raise self.fail("width", f"must be >= len(sizes) ({len(self.sizes)}), got {self.width}")


def test_model_config_converts_and_validates():
    c = Toy(scale=2, sizes=[1, 2], kernel=[1, 3, 5])
    assert c.scale == 2.0 and isinstance(c.scale, float) and c.sizes == (1, 2) and c.kernel == (1, 3, 5)
    assert c.to_dict() == {"width": 8, "scale": 2.0, "flag": False, "mode": "a", "sizes": [1, 2],
                           "kernel": [1, 3, 5], "radius": None, "image_size": 64, "fov": 40.0}
    assert Toy.defaults()["sizes"] == [4, 4] and Toy().kernel == 3
    assert hash(c) == hash(Toy.from_dict(c.to_dict()))
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.width = 3  # type: ignore[misc]
    assert c.replace(width=16).width == 16 and c.width == 8
    for kw, match in [({"width": True}, "'width' must be an integer >= 1, got True"),
                      ({"flag": 1}, "'flag' must be True or False, got 1"),
                      ({"scale": 11}, r"'scale' must be a number in \(0, 10\], got 11"),
                      ({"mode": "c"}, "'mode' must be one of 'a', 'b', got 'c'"),
                      ({"sizes": []}, r"'sizes' must be a non-empty list of integers >= 1, got \[\]"),
                      ({"kernel": [3, 3]}, "'kernel' must be an integer >= 1 or a list of 3 integers >= 1"),
                      ({"radius": 0}, "'radius' must be None or a number > 0, got 0"),
                      ({"width": 1, "sizes": [1, 1]}, r"'width' must be >= len\(sizes\) \(2\), got 1"),
                      ({"fov": 180}, r"'fov' must be a number in \(0, 180\), got 180")]:
        with pytest.raises(InvalidInputError, match=rf"^toy config: {match}"):
            Toy(**kw)
    with pytest.raises(InvalidInputError, match=r"^mine config: 'width' must be"):
        Toy.from_dict({"width": 0}, name="mine")
    with pytest.raises(InvalidInputError, match=r"unknown keys 'widht' \(did you mean 'width'\?\), 'zzz'; accepted"):
        Toy.from_dict({"widht": 1, "zzz": 2})
    with pytest.raises(InvalidInputError, match="expected a Toy, a mapping or None, got int"):
        Toy.resolve(3)  # type: ignore[arg-type]
    assert Toy.resolve(c, width=9) == c.replace(width=9)
    assert doublings(32, 4) == 3 and doublings(4, 4) == 0 and doublings(24, 4) is None and doublings(2, 4) is None


def test_fields_must_be_declared_with_param():
    class Bare(ModelConfig):
        width: int = 3

    with pytest.raises(TypeError, match=r"Bare\.width: declare every field with geomgen\.config\.param"):
        Bare()
    with pytest.raises(TypeError, match="doc must be one non-empty line"):
        param(1, "")


def test_specs_derive_default_config_from_the_config_class():
    spec = RepresentationSpec(name="toy", build=lambda **kw: None, config=Toy)
    assert spec.default_config == Toy.defaults()
    tuned = GeneratorSpec(name="toy-big", build=lambda **kw: None, config=Toy, default_config={"width": 64})
    assert tuned.default_config == {**Toy.defaults(), "width": 64}
    with pytest.raises(InvalidInputError, match="toy-big config: 'width'"):
        GeneratorSpec(name="toy-big", build=lambda **kw: None, config=Toy, default_config={"width": 0})
    with pytest.raises(TypeError, match="config must be a geomgen.config.ModelConfig subclass"):
        RepresentationSpec(name="toy", build=lambda **kw: None, config=dict)  # type: ignore[arg-type]
