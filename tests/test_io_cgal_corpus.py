"""Every mesh and point set of CGAL's sample data through geomgen.io.

Each file must either load into a valid structure or raise a
:class:`~geomgen.errors.GeomgenError`; any other exception fails the test.
Files known to be rejected (and why) are listed below: they must keep failing
with that reason, every other file must load.  A summary of the results is
printed at the end of the module.

The file list is read from the tarball's member names at collection time; the
``cgal_data`` fixture (tests/conftest.py) extracts the files once per machine.
The whole module takes about 10-15 s on two cores.
"""

from __future__ import annotations

import tarfile
import time
from pathlib import Path

import pytest
import torch

from geomgen.errors import GeomgenError
from geomgen.io import load_mesh, load_pointcloud
from geomgen.testing.cgal import CGAL_TARBALL as TARBALL

#: files that are not what their folder suggests; value: part of the expected message
EXPECTED_MESH_FAILURES = {
    # a point set saved as PLY with "element face 0"
    "b9.ply": "has no faces",
}
EXPECTED_POINT_FAILURES = {
    # nine numbers per line: a triangle soup (three points per line), not x y z [nx ny nz]
    "triangles.xyz": "9 columns",
}


def _members(prefix: str) -> list[str]:
    if not TARBALL.is_file():
        return []
    with tarfile.open(TARBALL, "r:gz") as tf:
        return sorted(
            m.name[len(prefix) :]
            for m in tf.getmembers()
            if m.isfile() and m.name.startswith(prefix)
        )


_ALL = _members("data/")
MESH_FILES = [n[len("meshes/") :] for n in _ALL if n.startswith("meshes/")]
POINT_FILES = [n[len("points_3/") :] for n in _ALL if n.startswith("points_3/")]

_RESULTS: dict[str, list[tuple[str, str, float]]] = {"meshes": [], "points_3": []}


@pytest.fixture(scope="module", autouse=True)
def _summary(request: pytest.FixtureRequest):
    start = time.perf_counter()
    yield
    elapsed = time.perf_counter() - start
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    lines = [f"CGAL corpus summary ({elapsed:.1f} s):"]
    for folder, rows in _RESULTS.items():
        if not rows:
            continue
        ok = sum(1 for _, status, _ in rows if status == "ok")
        lines.append(f"  {folder}: {ok}/{len(rows)} loaded, {len(rows) - ok} rejected")
        lines += [f"    {name}: {status}" for name, status, _ in rows if status != "ok"]
        slow = sorted(rows, key=lambda r: -r[2])[:3]
        lines.append("    slowest: " + ", ".join(f"{n} {t:.2f}s" for n, _, t in slow))
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:  # pragma: no cover - unusual plugin setups
        print("\n".join(lines))
        return
    with capture.global_and_fixture_disabled():  # show it without -s too
        reporter.write_line("")
        for line in lines:
            reporter.write_line(line)


def _run(folder: str, name: str, loader, check, expected: dict[str, str], data: Path) -> None:
    path = data / folder / name
    t0 = time.perf_counter()
    try:
        result = loader(path)
    except GeomgenError as e:
        _RESULTS[folder].append((name, f"{type(e).__name__}: {e}", time.perf_counter() - t0))
        assert str(path) in str(e), f"error message does not name the file: {e}"
        if name not in expected:
            pytest.fail(f"{name} was expected to load but raised {type(e).__name__}: {e}")
        assert expected[name] in str(e)
        return
    except Exception as e:  # noqa: BLE001 - anything else is a bug in geomgen.io
        _RESULTS[folder].append((name, f"NOT A GEOMGEN ERROR {type(e).__name__}: {e}", 0.0))
        pytest.fail(f"{name}: non-geomgen exception {type(e).__name__}: {e}")
    _RESULTS[folder].append((name, "ok", time.perf_counter() - t0))
    assert name not in expected, f"{name} was expected to fail ({expected[name]}) but loaded"
    check(result)


def _check_mesh(m) -> None:
    assert len(m) == 1
    verts, faces = m.verts_list()[0], m.faces_list()[0]
    assert verts.ndim == 2 and verts.shape[1] == 3 and verts.shape[0] > 0
    assert torch.isfinite(verts).all()
    assert faces.dtype == torch.int64 and faces.ndim == 2 and faces.shape[1] == 3
    assert faces.shape[0] > 0
    assert int(faces.min()) >= 0 and int(faces.max()) < verts.shape[0]
    colors = m.verts_colors_list()
    if colors is not None:
        assert colors[0].shape[0] == verts.shape[0]
        assert float(colors[0].min()) >= 0.0 and float(colors[0].max()) <= 1.0


def _check_points(pc) -> None:
    assert len(pc) == 1
    points = pc.points_list()[0]
    assert points.ndim == 2 and points.shape[1] == 3 and points.shape[0] > 0
    assert torch.isfinite(points).all()
    for extra in (pc.normals_list(), pc.features_list()):
        if extra is not None:
            assert extra[0].shape[0] == points.shape[0]
            assert torch.isfinite(extra[0]).all()


@pytest.mark.parametrize(
    "name", MESH_FILES or [pytest.param("-", marks=pytest.mark.skip("no CGAL data"))]
)
def test_cgal_mesh(name: str, cgal_data: Path) -> None:
    _run("meshes", name, load_mesh, _check_mesh, EXPECTED_MESH_FAILURES, cgal_data)


@pytest.mark.parametrize(
    "name", POINT_FILES or [pytest.param("-", marks=pytest.mark.skip("no CGAL data"))]
)
def test_cgal_point_set(name: str, cgal_data: Path) -> None:
    _run("points_3", name, load_pointcloud, _check_points, EXPECTED_POINT_FAILURES, cgal_data)


def test_cgal_corpus_is_complete(cgal_data: Path) -> None:
    """The extracted cache holds exactly the files the tarball lists."""
    on_disk = sorted(p.name for p in (cgal_data / "meshes").iterdir() if p.is_file())
    assert on_disk == sorted(MESH_FILES)
    assert len(MESH_FILES) > 100 and len(POINT_FILES) > 20
