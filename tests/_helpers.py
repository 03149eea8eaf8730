"""Helpers shared by test modules (``tests/test_io_*.py``, the rasterizer references).

Imported as ``from _helpers import ...``: pytest puts this folder on
``sys.path`` for the test modules in it (no ``__init__.py``, default
``prepend`` import mode).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from geomgen.structures import Meshes

#: Tolerance of colours that went through 8-bit quantisation.
COLOR_ATOL = 0.5 / 255 + 1e-6


def stored_normals(m: Meshes, i: int = 0):
    """Normals a Meshes holds (given / read from a file), or None if it would compute them."""
    has = getattr(m, "has_verts_normals", None)
    if has is not None:
        return m.verts_normals_list()[i] if (has() if callable(has) else has) else None
    stored = m._normals_list  # noqa: SLF001 - no public flag yet
    return None if stored is None else stored[i]


def write(path: Path, data: str | bytes) -> Path:
    """Write ``data`` (text is UTF-8 encoded) to ``path`` and return ``path``."""
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def raises_naming(exc, path, call, match=None):
    """``call()`` raises ``exc`` whose message names ``path`` (and contains ``match``)."""
    with pytest.raises(exc) as info:
        call()
    assert str(path) in str(info.value), info.value
    if match:
        assert match in str(info.value), info.value
    return info.value


def clip_polygon(poly: list[tuple[np.ndarray, np.ndarray]], znear: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """Keep the part of a polygon [(point, bary)] with z >= znear."""
    out = []
    n = len(poly)
    for i in range(n):
        (p, b), (q, c) = poly[i], poly[(i + 1) % n]
        pin, qin = p[2] >= znear, q[2] >= znear
        if pin:
            out.append((p, b))
        if pin != qin:
            t = (znear - p[2]) / (q[2] - p[2])
            out.append((p + t * (q - p), b + t * (c - b)))
    return out
