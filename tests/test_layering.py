"""The house's layering, read from the imports: a layer imports only the layers below it.

Every ``import`` and ``from ... import`` under ``geomgen/`` counts, the lazy ones inside
functions included: a lazy import still makes the lower layer depend on the upper one.
The layers are the ones drawn in ``docs/architecture.md``; a new subpackage must be given
a layer here (the test fails for a package it does not know).  That plugins use public API
only is checked by ``tests/test_checks_public.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "geomgen"

#: Bottom to top. A module may import its own subpackage and anything in a lower layer; the
#: foundation's modules (no torch) may also import each other (the cycle test orders them).
LAYERS: list[tuple[str, set[str]]] = [
    ("foundation", {"errors", "config", "components", "hookspecs", "_registry", "_api", "__version__"}),
    ("kernels", {"kernels"}),
    ("backend and checks", {"backend", "checks"}),
    ("structures", {"structures"}),
    ("io and ops", {"io", "ops"}),
    ("losses, metrics, render", {"losses", "metrics", "render"}),
    ("nn, data, viewer", {"nn", "data", "viewer", "summary"}),
    ("train", {"train"}),
    ("weights", {"weights"}),
    ("models and generators", {"models", "generative"}),
    ("registry plugins and testing", {"builtin", "testing"}),
    ("cli", {"cli"}),
]
LAYER_OF = {unit: i for i, (_, units) in enumerate(LAYERS) for unit in units}
#: What ``from geomgen import NAME`` means for names the top-level package defines itself.
TOP_LEVEL_API = {"get_model", "get_model_builder", "get_model_config", "list_models", "list_plugins",
                 "list_metrics", "get_metric", "get_metric_spec", "list_datasets", "get_dataset",
                 "hookimpl", "PluginInfo"}


def _unit(path: Path) -> str:
    """The layer unit of a file: its subpackage, or its module name for top-level modules."""
    rel = path.relative_to(PKG)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path) -> list[tuple[int, str]]:
    """``(line, dotted target)`` of every geomgen import in ``path`` (lazy ones included)."""
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    package = package.removesuffix(".__init__")
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "geomgen":  # from geomgen import errors / checks / get_model
                out += [(node.lineno, f"geomgen.{alias.name}") for alias in node.names]
            else:
                out.append((node.lineno, target))
    return [(line, t) for line, t in out if t == "geomgen" or t.startswith("geomgen.")]


def _target_unit(target: str) -> str:
    parts = target.split(".")
    if len(parts) == 1 or parts[1] in TOP_LEVEL_API:
        return "_api"  # `import geomgen` then geomgen.get_model(...): the registry API
    return parts[1]


def _sources() -> list[Path]:
    # the top-level facade (geomgen/__init__.py) re-exports lazily from every layer by design
    return sorted(p for p in PKG.rglob("*.py") if p != PKG / "__init__.py")


def test_every_unit_has_a_layer() -> None:
    units = {_unit(p) for p in _sources()} | {_target_unit(t) for p in _sources() for _, t in _imports(p)}
    unknown = sorted(units - set(LAYER_OF))
    assert not unknown, f"give these geomgen packages/modules a layer in {__file__}: {unknown}"


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(PKG)))
def test_imports_only_lower_layers(path: Path) -> None:
    src = _unit(path)
    bad = []
    for line, target in _imports(path):
        dst = _target_unit(target)
        if dst == src or dst not in LAYER_OF or src not in LAYER_OF:
            continue
        if LAYER_OF[dst] == LAYER_OF[src] == 0:
            continue
        if LAYER_OF[dst] >= LAYER_OF[src]:
            bad.append(f"{path.relative_to(ROOT)}:{line} imports {target} "
                       f"({LAYERS[LAYER_OF[dst]][0]}) from layer {LAYERS[LAYER_OF[src]][0]!r}")
    assert not bad, "imports against the layering:\n" + "\n".join(bad)


def test_no_import_cycles_between_subpackages() -> None:
    graph: dict[str, set[str]] = {}
    for path in _sources():
        for _, target in _imports(path):
            src, dst = _unit(path), _target_unit(target)
            if src != dst:
                graph.setdefault(src, set()).add(dst)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)

