"""``geomgen plugins [--json]``: installed plugins, their status and components.

Part of the CLI itself, not of a plugin: it must work when every plugin is broken
(even in strict mode), and it imports no torch.
"""

from __future__ import annotations

import argparse
import json

from geomgen._registry import PluginInfo, PluginManager, get_plugin_manager
from geomgen.errors import PluginError

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of ``geomgen plugins``."""
    parser.description = ("List installed plugins: name, version, distribution, hooks, components and status "
                          "(ok / failed: reason / blocked).")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def _plugin_infos() -> list[PluginInfo]:
    """Every plugin's status; in strict mode a broken plugin must not hide the list."""
    try:
        return get_plugin_manager().plugins()
    except PluginError:
        pm = PluginManager(strict=False)
        pm.load_default_plugins()
        pm.load_entrypoints()
        return pm.plugins()


def run(args: argparse.Namespace) -> int:
    """Print the plugin table (or JSON); returns 0."""
    infos = _plugin_infos()
    if args.json:
        print(json.dumps([i.to_dict() for i in infos], indent=2))
        return 0
    rows = [("NAME", "VERSION", "DISTRIBUTION", "HOOKS", "STATUS")]
    details = []
    for i in infos:
        hooks = ",".join(h.replace("geomgen_register_", "") for h in i.hooks) or "-"
        rows.append((i.name, i.version or "-", i.distribution or "-", hooks, i.status))
        if i.status == "ok":
            details.append("; ".join(f"{kind}: {', '.join(names)}" for kind, names in i.components.items()))
        else:
            details.append(f"{i.status}: {i.error}")
    widths = [max(len(r[c]) for r in rows) for c in range(5)]
    for n, r in enumerate(rows):
        print("  ".join(r[c].ljust(widths[c]) for c in range(5)).rstrip())
        if n and details[n - 1]:
            print(f"    {details[n - 1]}")
    return 0
