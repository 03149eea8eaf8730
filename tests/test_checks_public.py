"""geomgen.checks is the one public home of argument checks: plugins use it (never private
modules), and its camera checks (intrinsics, poses) behave as documented."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import torch

from geomgen import checks as V
from geomgen.errors import InvalidInputError

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "plugins"
K0 = torch.tensor([[50.0, 0.0, 32.0], [0.0, 60.0, 24.0], [0.0, 0.0, 1.0]])


# ----------------------------------------------------------------------------- plugins: public API only
def _is_private(dotted: str) -> bool:
    """``geomgen._x``, ``geomgen.pkg._x`` or anything below them (dunders such as
    ``__version__`` are public)."""
    parts = dotted.split(".")
    return parts[0] == "geomgen" and any(p.startswith("_") and not p.endswith("__") for p in parts[1:])


def _attribute_path(node: ast.AST) -> str | None:
    names = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(names)])
    return None


def _private_uses(path: Path) -> list[str]:
    """Every use of a private geomgen module or name in ``path``: imports (also lazy ones
    inside functions), ``importlib.import_module`` / ``__import__`` strings, dotted
    strings such as ``monkeypatch.setattr("geomgen.x._y", ...)`` targets, and
    ``geomgen._x`` attribute chains."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        where = f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            found += [f"{where}: import {a.name}" for a in node.names if _is_private(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if _is_private(node.module):
                found.append(f"{where}: from {node.module} import ...")
            elif node.module.split(".")[0] == "geomgen":
                found += [f"{where}: from {node.module} import {a.name}" for a in node.names
                          if _is_private(f"{node.module}.{a.name}")]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if re.fullmatch(r"geomgen(\.\w+)+", node.value) and _is_private(node.value):
                found.append(f"{where}: {node.value!r}")
        elif isinstance(node, ast.Attribute):
            dotted = _attribute_path(node)
            if dotted and _is_private(dotted) and not _is_private(dotted.rsplit(".", 1)[0]):
                found.append(f"{where}: {dotted}")
    return found


def _plugin_files() -> list[Path]:
    return sorted(p for p in PLUGINS.glob("geomgen-*/**/*.py") if "build" not in p.relative_to(PLUGINS).parts)


def test_plugins_use_only_public_geomgen():
    files = _plugin_files()
    assert any("/tests/" in f.as_posix() for f in files) and any("/geomgen_" in f.as_posix() for f in files), files
    bad = [use for f in files for use in _private_uses(f)]
    assert not bad, "plugins must use geomgen's public API only (e.g. geomgen.checks, geomgen.testing.plugins):\n" \
        + "\n".join(bad)


@pytest.mark.parametrize("code, private", [
    ("import geomgen._registry", True),
    ("from geomgen import _api", True),
    ("from geomgen.structures._checks import as_tensor", True),
    ("from geomgen.structures import _checks", True),
    ("def f():\n    from geomgen.train._fs import atomic_write", True),
    ("import importlib\nimportlib.import_module('geomgen._registry')", True),
    ("import geomgen\ngeomgen._api.get_model", True),
    ("m.setattr('geomgen.models.predict._CACHE', {})", True),
    ("from geomgen import __version__, checks", False),
    ("from geomgen.checks import check_tensor\nimport geomgen.structures", False),
    ("from geomgen_mesh._private import x", False),  # the plugin's own modules are its business
])
def test_private_use_detector(tmp_path, code, private):
    path = tmp_path / "probe.py"
    path.write_text(code, encoding="utf-8")
    assert bool(_private_uses(path)) is private, _private_uses(path)


def test_each_check_has_one_definition():
    """The camera checks and the lengths/device checks are defined once, in geomgen.checks."""
    names = {"check_intrinsics", "check_pose", "check_lengths", "check_same_device"}
    where: dict[str, list[str]] = {n: [] for n in names}
    for path in sorted((ROOT / "geomgen").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and node.name.lstrip("_") in names:
                where[node.name.lstrip("_")].append(str(path.relative_to(ROOT)))
    assert where == {n: ["geomgen/checks.py"] for n in names}, where


# ----------------------------------------------------------------------------- scalars
def test_check_int_types_and_bounds():
    import numpy as np

    assert V.check_int(np.int64(3), "n") == 3 and type(V.check_int(np.int64(3), "n")) is int
    assert V.check_int(2, "r", min_value=2, max_value=2) == 2
    for value, kwargs, message in [
        (True, {}, r"^f: argument 'n' must be an integer, got True \(bool\)$"),
        (1.0, {}, r"must be an integer, got 1\.0 \(float\)"),
        (torch.tensor(1), {}, r"must be an integer, got .* \(Tensor\)"),
        (0, {"min_value": 1}, r"^f: argument 'n' must be >= 1, got 0$"),
        (9, {"max_value": 8}, r"must be <= 8, got 9$"),
        (1, {"min_value": 2, "max_value": 512}, r"must be in \[2, 512\], got 1$"),
        (513, {"min_value": 2, "max_value": 512}, r"must be in \[2, 512\], got 513$"),
    ]:
        with pytest.raises(InvalidInputError, match=message):
            V.check_int(value, "n", fn="f", **kwargs)


def test_check_float_types_bounds_and_infinity():
    import numpy as np

    assert V.check_float(np.float32(0.5), "x", gt=0, lt=1) == 0.5
    assert V.check_float(3, "x") == 3.0 and type(V.check_float(3, "x")) is float
    assert V.check_float(0, "x", nonnegative=True) == 0.0 and V.check_float(2, "x", ge=-2, le=2) == 2.0
    assert V.check_float(float("inf"), "zfar", finite=False, gt=1.0) == float("inf")
    for value, kwargs, message in [
        (True, {}, r"^f: argument 'x' must be a real number, got True \(bool\)$"),
        ("1", {}, r"must be a real number, got '1' \(str\)"),
        (float("nan"), {}, r"must be finite, got nan$"),
        (float("inf"), {"positive": True}, r"must be finite, got inf$"),
        (float("nan"), {"finite": False}, r"^f: argument 'x' must not be NaN$"),
        (float("-inf"), {"finite": False, "gt": 0.5}, r"must be > 0\.5, got -inf$"),
        (0, {"positive": True}, r"^f: argument 'x' must be > 0, got 0\.0$"),
        (-1, {"nonnegative": True}, r"must be >= 0, got -1\.0$"),
        (1.0, {"gt": 0, "lt": 1}, r"must be in \(0, 1\), got 1\.0$"),
        (0.0, {"positive": True, "lt": 1}, r"must be in \(0, 1\), got 0\.0$"),
        (2.5, {"ge": -2.0, "le": 2.0}, r"must be in \[-2, 2\], got 2\.5$"),
        (1.0, {"nonnegative": True, "lt": 1}, r"must be in \[0, 1\), got 1\.0$"),
        (3.0, {"le": 2}, r"must be <= 2, got 3\.0$"),
    ]:
        with pytest.raises(InvalidInputError, match=message):
            V.check_float(value, "x", fn="f", **kwargs)
    with pytest.raises(TypeError, match="at most one lower bound"):
        V.check_float(1.0, "x", positive=True, ge=0)
    with pytest.raises(TypeError, match="one upper bound"):
        V.check_float(1.0, "x", lt=2, le=2)


# ----------------------------------------------------------------------------- check_intrinsics
def test_intrinsics_shapes_dtype_and_views():
    out = V.check_intrinsics(K0, n=3)
    assert out.shape == (3, 3, 3) and torch.equal(out[2], K0)
    assert V.check_intrinsics(K0).shape == (1, 3, 3)
    batch = torch.stack([K0, K0 * torch.tensor([[2.0], [2.0], [1.0]])])
    assert V.check_intrinsics(batch) is batch
    assert V.check_intrinsics(batch, n=2, dtype=torch.float64).dtype == torch.float64
    skewed = K0.clone()
    skewed[0, 1] = 0.5  # skew is allowed
    V.check_intrinsics(skewed)
    assert V.check_intrinsics(torch.zeros(0, 3, 3), n=0).shape == (0, 3, 3)
    grad = batch.clone().requires_grad_(True)
    V.check_intrinsics(grad, n=2).sum().backward()  # autograd kept
    assert grad.grad is not None


@pytest.mark.parametrize("entry, value, message", [
    ((1, 0, 0), -50.0, r"argument 'K' is invalid: K\[1\]: fx \(K\[0, 0\]\) must be > 0, got -50"),
    ((0, 1, 1), 0.0, r"K\[0\]: fy \(K\[1, 1\]\) must be > 0, got 0"),
    ((0, 1, 0), 0.5, r"K\[0\]: K\[1, 0\] must be 0 \(upper triangular\), got 0.5"),
    ((1, 2, 2), 2.0, r"K\[1\]: bottom row must be \[0, 0, 1\], got \[0.0, 0.0, 2.0\]"),
    ((1, 0, 2), float("nan"), r"K\[1\]: contains 1 NaN/Inf entries"),
    ((0, 1, 2), float("inf"), r"K\[0\]: contains 1 NaN/Inf entries"),
])
def test_intrinsics_value_rules(entry, value, message):
    K = torch.stack([K0, K0]).clone()
    K[entry] = value
    with pytest.raises(InvalidInputError, match=message):
        V.check_intrinsics(K)
    with pytest.raises(InvalidInputError, match="^my_op: argument 'K' is invalid"):
        V.check_intrinsics(K, fn="my_op")


def test_intrinsics_first_rule_then_first_matrix():
    """Rules are tried in order (finite, fx, fy, K[1, 0], bottom row), each naming its first bad matrix."""
    K = torch.stack([K0, K0, K0]).clone()
    K[2, 0, 0] = -1.0
    K[1, 1, 1] = -1.0
    with pytest.raises(InvalidInputError, match=r"K\[2\]: fx"):
        V.check_intrinsics(K)


@pytest.mark.parametrize("K, kwargs, message", [
    ([[1.0, 0, 0], [0, 1, 0], [0, 0, 1]], {}, r"argument 'K' must be a tensor of shape \(N, 3, 3\) or \(3, 3\), got list"),
    (torch.ones(4), {}, r"argument 'K' must be a 2 or 3-D tensor"),
    (torch.eye(2), {}, r"must have shape \(N, 3, 3\) or \(3, 3\), got \(2, 2\)"),
    (torch.eye(3).expand(3, 3, 3), {"n": 2}, r"must have shape \(2, 3, 3\) or \(3, 3\), got \(3, 3, 3\)"),
    (torch.eye(3, dtype=torch.int64), {}, r"must have a floating dtype, got torch.int64"),
    (torch.eye(3, device="meta"), {"device": "cpu"}, r"must be on device cpu, got meta"),
    (torch.eye(3), {"name": "intrinsics", "fn": "f"}, None),
])
def test_intrinsics_bad_arguments(K, kwargs, message):
    if message is None:
        assert V.check_intrinsics(K, **kwargs).shape == (1, 3, 3)
        return
    with pytest.raises(InvalidInputError, match=message):
        V.check_intrinsics(K, **kwargs)


# ----------------------------------------------------------------------------- check_pose
def _rot_z(deg: float) -> torch.Tensor:
    a = torch.tensor(deg, dtype=torch.float64).deg2rad()
    T = torch.eye(4, dtype=torch.float64)
    T[:2, :2] = torch.stack([torch.stack([a.cos(), -a.sin()]), torch.stack([a.sin(), a.cos()])])
    T[:3, 3] = torch.tensor([1.0, 2.0, 3.0])
    return T


def test_pose_shapes_and_rigid():
    T = _rot_z(30.0)
    out = V.check_pose(T, n=4, rigid=True)
    assert out.shape == (4, 4, 4) and torch.equal(out[3], T)
    assert V.check_pose(T.float()[None], dtype=torch.float64).dtype == torch.float64
    scaled = T.clone()
    scaled[:3, :3] *= 2.0
    assert V.check_pose(scaled).shape == (1, 4, 4)  # affine is fine unless rigid=True
    with pytest.raises(InvalidInputError, match=r"world_from_camera' must be a rigid pose .*pose 1 has"):
        V.check_pose(torch.stack([T, scaled]), rigid=True)
    mirror = T.clone()
    mirror[:3, 0] *= -1.0
    with pytest.raises(InvalidInputError, match=r"^cams: argument 'world_from_camera' must be a proper rotation"):
        V.check_pose(mirror, rigid=True, fn="cams")


@pytest.mark.parametrize("T, kwargs, message", [
    (torch.eye(4).index_put((torch.tensor(3), torch.tensor(0)), torch.tensor(1.0)), {},
     r"must have bottom row \[0, 0, 0, 1\]"),
    (torch.full((4, 4), float("nan")), {}, "must be finite"),
    (torch.eye(4).expand(3, 4, 4), {"n": 2}, r"must have shape \(2, 4, 4\) or \(4, 4\), got \(3, 4, 4\)"),
    (torch.eye(3), {}, r"must have shape \(N, 4, 4\) or \(4, 4\), got \(3, 3\)"),
    (torch.eye(4), {"name": "pose"}, None),
])
def test_pose_bad_arguments(T, kwargs, message):
    if message is None:
        V.check_pose(T, **kwargs)
        return
    with pytest.raises(InvalidInputError, match=message):
        V.check_pose(T, **kwargs)


# ----------------------------------------------------------------------------- check_same_device
def test_same_device_against_first_or_given_device():
    a, b, m = torch.zeros(1), torch.zeros(2), torch.zeros(1, device="meta")
    V.check_same_device({"a": a, "b": b, "c": None})
    V.check_same_device({})
    with pytest.raises(InvalidInputError, match=r"^f: argument 'm' must be on the same device as 'a' \(cpu\), got meta"):
        V.check_same_device({"a": a, "m": m}, fn="f")
    V.check_same_device({"m": m}, device="meta")
    with pytest.raises(InvalidInputError, match=r"argument 'x\[1\]' must be on device cpu, got meta"):
        V.check_same_device({"x[0]": a, "x[1]": m}, device=torch.device("cpu"))


def test_check_point_cloud_pair_is_the_one_rule_of_knn_chamfer_and_f1():
    import torch

    from geomgen import checks as V
    from geomgen.errors import InvalidInputError
    from geomgen.losses import chamfer_distance
    from geomgen.metrics import f1_score
    from geomgen.ops import knn_points

    x, y = torch.rand(2, 5, 3), torch.rand(2, 7, 3)
    lx, ly = V.check_point_cloud_pair(x, y, None, torch.tensor([7, 3]), fn="f")
    assert lx.tolist() == [5, 5] and ly.tolist() == [7, 3] and lx.dtype == torch.int64
    bad = [(torch.rand(3, 7, 3), "same batch size N=2"), (torch.rand(2, 7, 2), "same point dimension D=3"),
           (torch.rand(2, 7, 3, dtype=torch.float64), "same dtype"), (torch.rand(2, 7), "(N, P2, D)")]
    for yy, fragment in bad:
        for call, names in ((lambda a, b: knn_points(a, b), ("p1", "p2")),
                            (lambda a, b: chamfer_distance(a, b), ("x", "y")),
                            (lambda a, b: f1_score(a, b), ("pred", "gt"))):
            with pytest.raises(InvalidInputError, match=rf"argument '{names[1]}'.*{re.escape(fragment)}"):
                call(x, yy)
    with pytest.raises(InvalidInputError, match=r"'y_lengths' values must lie in \[0, 7\], got 8"):
        V.check_point_cloud_pair(x, y, None, [7, 8])
    with pytest.raises(InvalidInputError, match="'x' must have point dimension D >= 1"):
        V.check_point_cloud_pair(torch.rand(2, 5, 0), torch.rand(2, 7, 0), None, None)
    with pytest.raises(InvalidInputError, match="'x'.*NaN"):
        V.check_point_cloud_pair(x.clone().fill_(float("nan")), y, None, None)


def test_check_image_size_is_the_one_rule_of_image_sizes():
    import numpy as np

    from geomgen.render import PerspectiveCameras

    assert V.check_image_size(32) == (32, 32) and V.check_image_size((24, 32)) == (24, 32)
    assert V.check_image_size(torch.tensor([5, 7])) == (5, 7) and V.check_image_size(np.int64(3)) == (3, 3)
    for bad in (0, (0, 4), (4,), (4, 4, 4), (4.0, 4), True, "32", None):
        with pytest.raises(InvalidInputError, match=r"f: argument 'image_size' must be an int >= 1 or an \(H, W\)"):
            V.check_image_size(bad, fn="f")
    with pytest.raises(InvalidInputError, match=r"must be an \(H, W\) pair of ints >= 1, got 32"):
        V.check_image_size(32, allow_int=False)
    with pytest.raises(InvalidInputError, match=r"argument 'image_size' must be an \(H, W\) pair"):
        PerspectiveCameras(K=torch.eye(3)[None], image_size=(0, 4))
