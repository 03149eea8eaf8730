"""Real meshes and point sets from Debian's ``libcgal-demo`` package.

The package ships ``/usr/share/doc/libcgal-dev/data.tar.gz`` (~140 meshes under
``data/meshes/`` — bunny, armadillo, dragon, elephant, quads, holes, colours,
degenerate triangles — and point sets under ``data/points_3/``).  geomgen's tests
and demo extract it once into a cache folder.

Run ``python -m geomgen.testing.cgal`` to extract it and print the folder.
"""

from __future__ import annotations

import os
import sys
import tarfile
import tempfile
from pathlib import Path

from geomgen.errors import MeshFileNotFoundError

__all__ = ["CGAL_TARBALL", "cgal_data_dir"]

CGAL_TARBALL = Path("/usr/share/doc/libcgal-dev/data.tar.gz")
_MARKER = ".geomgen-extracted"


def _cache_root() -> Path:
    root = os.environ.get("GEOMGEN_TEST_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "geomgen-tests"


def cgal_data_dir(tarball: str | os.PathLike[str] = CGAL_TARBALL, cache: str | os.PathLike[str] | None = None) -> Path:
    """Extract the libcgal-demo data once and return its ``data`` folder.

    Args:
        tarball: the ``data.tar.gz`` shipped by ``libcgal-demo``.
        cache: where to extract (default ``$GEOMGEN_TEST_CACHE`` or
            ``~/.cache/geomgen-tests``); a marker file written after a complete
            extraction makes later calls free, and an interrupted one is redone.

    Raises:
        MeshFileNotFoundError: the tarball is missing (``apt-get install libcgal-demo``).
    """
    tarball = Path(tarball)
    if not tarball.is_file():
        raise MeshFileNotFoundError(f"{tarball}: not found; install it with `apt-get install libcgal-demo`")
    target = Path(cache) if cache is not None else _cache_root() / "cgal"
    marker = target / _MARKER
    stamp = f"{tarball.stat().st_size}:{int(tarball.stat().st_mtime)}"
    if marker.is_file() and marker.read_text() == stamp:
        return target / "data"
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target) as tmp:
        with tarfile.open(tarball) as tar:
            if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4
                tar.extractall(tmp, filter="data")
            else:  # pragma: no cover
                tar.extractall(tmp)
        final = target / "data"
        if final.exists():
            import shutil

            shutil.rmtree(final)
        (Path(tmp) / "data").rename(final)
    marker.write_text(stamp)
    return target / "data"


if __name__ == "__main__":  # pragma: no cover
    try:
        print(cgal_data_dir())
    except MeshFileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
