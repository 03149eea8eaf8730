"""Start-up time of the ``geomgen`` command line: median wall time of fresh processes.

Usage::

    python bench/cli_startup.py [RUNS]        (default 10 runs per command)

Times ``geomgen --version``, ``geomgen --help`` and ``geomgen plugins`` (the
console script next to this Python when there is one, else ``python -m
geomgen.cli``), each in a new process, and prints a markdown table.  Target:
median below 0.4 s; none of these three imports torch (the commands are
imported only when invoked).  ``python -c pass`` is the floor of any Python
command on this machine.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_S = 0.4
COMMANDS = (["--version"], ["--help"], ["plugins"])


def _geomgen() -> list[str]:
    """How to start the CLI: the console script beside ``sys.executable``, else ``python -m geomgen.cli``."""
    script = Path(sys.executable).with_name("geomgen")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    found = shutil.which("geomgen")
    return [found] if found else [sys.executable, "-m", "geomgen.cli"]


def wall_times(cmd: list[str], runs: int) -> list[float]:
    """Wall time in seconds of ``runs`` fresh runs of ``cmd`` (after one untimed warm-up run)."""
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        out.append(time.perf_counter() - t0)
    return out


def main(argv: list[str]) -> int:
    """Print the table; exit status 1 when a median misses the target."""
    runs = int(argv[0]) if argv and argv[0].isdigit() else 10
    cli = _geomgen()
    shown = "geomgen" if len(cli) == 1 else "python -m geomgen.cli"
    print(f"# geomgen CLI start-up: {runs} runs each, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}, Python {sys.version.split()[0]}\n")
    print("| command | median s | min s | max s | target |")
    print("|---|---:|---:|---:|---|")
    ok = True
    rows = [("python -c pass", [sys.executable, "-c", "pass"], "")]
    rows += [(f"{shown} {' '.join(args)}", cli + args, f"< {TARGET_S}") for args in COMMANDS]
    for label, cmd, target in rows:
        t = wall_times(cmd, runs)
        med = statistics.median(t)
        if target:
            ok &= med < TARGET_S
        print(f"| `{label}` | {med:.3f} | {min(t):.3f} | {max(t):.3f} | {target} |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
