import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def cgal_data() -> Path:
    """The ``data`` folder of CGAL's sample data (``meshes/``, ``points_3/``, ...).

    The tarball of the Debian package ``libcgal-demo`` is extracted once into
    ``$GEOMGEN_TEST_CACHE/cgal`` (default ``~/.cache/geomgen-tests/cgal``) by
    :func:`geomgen.testing.cgal.cgal_data_dir`, which writes a marker file after
    a complete extraction and reuses the folder while the marker matches the
    tarball.  Skips when the tarball is not installed.
    """
    from geomgen.testing.cgal import CGAL_TARBALL, cgal_data_dir

    if not CGAL_TARBALL.is_file():
        if os.environ.get("CI"):  # the README's test command installs it: missing in CI is a bug
            pytest.fail(f"CGAL sample data not found at {CGAL_TARBALL}; scripts/setup.sh should install libcgal-demo")
        pytest.skip(
            f"CGAL sample data not found at {CGAL_TARBALL} (install the Debian package libcgal-demo)"
        )
    return cgal_data_dir()


@pytest.fixture
def no_pytorch3d(monkeypatch):
    """Make ``import pytorch3d`` fail for the test, as on a machine without it."""
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.split(".")[0] == "pytorch3d":
            raise ImportError("no pytorch3d here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
