"""Shared helpers of the benchmark scripts: timing, real test data, the result table.

Every script times geomgen beside the peers a user would pick, in the same run,
and prints ratios (geomgen / peer: below 1 means geomgen is faster).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Row:
    """One line of the table: a piece of work, geomgen's time, a peer's time, the target ratio."""

    work: str
    geomgen_ms: float
    peer: str = ""
    peer_ms: float | None = None
    target: str = ""
    first_call_ms: float | None = None

    @property
    def ratio(self) -> float | None:
        return None if not self.peer_ms else self.geomgen_ms / self.peer_ms


def timeit(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in milliseconds after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def first_call_ms(fn: Callable[[], Any]) -> float:
    """Time of one call, e.g. the first one that compiles (or loads cached) numba kernels."""
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def real_mesh(name: str = "armadillo.off") -> tuple[np.ndarray, np.ndarray]:
    """(V, 3) float64 vertices and (F, 3) int64 faces of a libcgal-demo mesh."""
    from geomgen.io import load_mesh
    from geomgen.testing.cgal import cgal_data_dir

    mesh = load_mesh(cgal_data_dir() / "meshes" / name)
    return mesh.verts_list()[0].double().numpy(), mesh.faces_list()[0].numpy()


def print_table(rows: list[Row], title: str) -> None:
    """Markdown table: work | geomgen | peer | peer time | ratio | target | first call."""
    print(f"\n### {title}\n")
    print("| work | geomgen (ms) | peer | peer (ms) | ratio | target | first call (ms) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        peer_ms = f"{r.peer_ms:.1f}" if r.peer_ms is not None else ""
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else ""
        first = f"{r.first_call_ms:.0f}" if r.first_call_ms is not None else ""
        print(f"| {r.work} | {r.geomgen_ms:.1f} | {r.peer} | {peer_ms} | {ratio} | {r.target} | {first} |")
