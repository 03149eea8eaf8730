"""Make the tests use the ``geomgen_sdf`` package in this source folder.

The package is imported from its file location rather than by putting
``plugins/geomgen-sdf`` on ``sys.path``: a build leaves ``*.egg-info``
metadata in that folder, and on ``sys.path`` it would advertise the plugin's
entry point to every other test of the session.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

PACKAGE = "geomgen_sdf"
SOURCE = Path(__file__).resolve().parents[1] / PACKAGE


def _import_from_source() -> None:
    loaded = sys.modules.get(PACKAGE)
    if loaded is not None and Path(loaded.__file__ or "").resolve().parent == SOURCE:
        return
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]  # an installed copy imported earlier
    spec = importlib.util.spec_from_file_location(PACKAGE, SOURCE / "__init__.py",
                                                  submodule_search_locations=[str(SOURCE)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    spec.loader.exec_module(module)


_import_from_source()
