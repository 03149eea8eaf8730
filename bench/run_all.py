"""Run every benchmark script and print one markdown table per area.

Usage::

    OMP_WAIT_POLICY=PASSIVE python bench/run_all.py [REPEATS] [AREA ...]

AREA is one of chamfer, marching_cubes, voxelize_sampling, mesh_ops, metrics (default: all).
Each script times geomgen and the peers side by side in the same process, so
the ratios are comparable even when absolute times drift between machines.
``OMP_WAIT_POLICY=PASSIVE`` (set before Python starts) stops torch's and numba's
OpenMP pools from spinning against each other on machines with few cores.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_table  # noqa: E402

AREAS = ["chamfer", "marching_cubes", "voxelize_sampling", "mesh_ops", "metrics", "render"]


def main(argv: list[str]) -> int:
    repeats = int(argv[0]) if argv and argv[0].isdigit() else 5
    areas = [a for a in argv if not a.isdigit()] or AREAS
    unknown = sorted(set(areas) - set(AREAS))
    if unknown:
        print(f"unknown area(s): {', '.join(unknown)}; choose from {', '.join(AREAS)}", file=sys.stderr)
        return 2
    import torch

    print(f"# geomgen benchmarks: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}, load {os.getloadavg()[0]:.1f}")
    for area in areas:
        module = importlib.import_module(f"bench_{area}")
        print_table(module.run(repeats), area.replace("_", " "))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
