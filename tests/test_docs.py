"""The documentation site builds cleanly: ``mkdocs build --strict`` (mkdocs.yml, docs/).

The build needs the ``docs`` packages (mkdocs, mkdocstrings, mkdocstrings-python), which the
``dev`` extra also installs; without them these tests fail (they do not skip), so a CI that
forgot them is noticed.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DIRECTIVE = re.compile(r"^:::\s+(\S+)\s*$", re.MULTILINE)
KEY_PAGES = ["index.html", "architecture.html", "conventions.html", "benchmarks.html", "api/index.html"]
INSTALL_HINT = (
    "the documentation tools are not installed: run "
    "`pip install -e '.[dev]' -c constraints.txt` (or the 'docs' extra); CI installs them "
    "through scripts/test.sh"
)


def _require_mkdocs() -> None:
    missing = [m for m in ("mkdocs", "mkdocstrings", "mkdocstrings_handlers.python")
               if _find_spec(m) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing; {INSTALL_HINT}", pytrace=False)


def _find_spec(name: str):
    try:
        return importlib.util.find_spec(name)
    except ModuleNotFoundError:
        return None


def _directives() -> dict[str, list[str]]:
    """``{page (relative to docs/): [::: targets]}``."""
    out: dict[str, list[str]] = {}
    for md in sorted(DOCS.rglob("*.md")):
        targets = DIRECTIVE.findall(md.read_text(encoding="utf-8"))
        if targets:
            out[md.relative_to(DOCS).as_posix()] = targets
    return out


def _resolve(path: str):
    """Import the longest importable module prefix of ``path``, then getattr the rest."""
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(path)


def test_every_directive_target_imports():
    pages = _directives()
    assert "api/geomgen.md" in pages and "api/structures.md" in pages, sorted(pages)
    failures = []
    for page, targets in pages.items():
        for target in targets:
            try:
                _resolve(target)
            except Exception as exc:  # noqa: BLE001 - report every broken target at once
                failures.append(f"docs/{page}: ::: {target} -> {type(exc).__name__}: {exc}")
    assert not failures, "\n".join(failures)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    _require_mkdocs()
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    log = proc.stdout + proc.stderr
    if proc.returncode != 0 and "No module named mkdocs" in log:
        pytest.fail(f"mkdocs is not importable by {sys.executable}; {INSTALL_HINT}", pytrace=False)
    assert proc.returncode == 0, f"mkdocs build --strict failed (rc={proc.returncode}):\n{log[-8000:]}"
    assert "WARNING" not in log, log[-8000:]
    return out


@pytest.mark.slow
def test_site_builds_strict_with_key_pages(site: Path):
    for page in KEY_PAGES:
        assert (site / page).is_file(), f"{page} missing from the built site"
    for md in _directives():
        html = site / Path(md).with_suffix(".html")
        assert html.is_file(), f"{html.relative_to(site)} missing from the built site"
        assert 'class="doc doc-' in html.read_text(encoding="utf-8"), f"{md}: no API content rendered"
    conventions = (site / "conventions.html").read_text(encoding="utf-8")
    for phrase in ("squared", "F1@t", "1-NNA", "world_from_camera", "bits per voxel"):
        assert phrase in conventions, phrase


@pytest.mark.slow
def test_every_public_class_and_function_is_rendered(site: Path):
    """Each class/function in the ``__all__`` of a package given a ``:::`` page is rendered
    somewhere (griffe hides names that shadow a submodule or that load lazily; those pages
    must add an explicit block)."""
    ids: set[str] = set()
    for html in (site / "api").glob("*.html"):
        ids.update(re.findall(r'id="(geomgen[\w.]*)"', html.read_text(encoding="utf-8")))
    missing = []
    for targets in _directives().values():
        for target in targets:
            module = _resolve(target)
            if not inspect.ismodule(module) or not hasattr(module, "__all__") or target == "geomgen":
                continue
            for name in module.__all__:
                obj = getattr(module, name, None)  # a name in __all__ that does not exist is not a docs matter
                if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                    continue
                canonical = f"{obj.__module__}.{obj.__qualname__}"
                if f"{target}.{name}" not in ids and canonical not in ids:
                    missing.append(f"{target}.{name}")
    assert not missing, f"public names not rendered in docs/api: {missing}"
