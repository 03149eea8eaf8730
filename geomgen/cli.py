"""The ``geomgen`` command line.

``geomgen plugins`` is part of the CLI itself (it must work when every plugin is
broken); every other sub-command comes from a plugin's
``geomgen_register_commands`` hook — geomgen's own (``info``, ``compare``,
``convert``) included.

Exit codes: 0 success, 1 a geomgen error (bad file, bad argument, broken
plugin), 2 a usage error (argparse), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence

from geomgen import __version__
from geomgen._registry import PluginInfo, PluginManager, get_plugin_manager
from geomgen.errors import GeomgenError, PluginError, PluginWarning

__all__ = ["main", "build_parser"]

PROG = "geomgen"


def _configure_plugins(parser: argparse.ArgumentParser) -> None:
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


def _run_plugins(args: argparse.Namespace) -> int:
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


def build_parser(plugin_commands: bool = True) -> tuple[argparse.ArgumentParser, dict[str, object]]:
    """The argument parser with the built-in and (``plugin_commands``) every plugin's sub-commands.

    Returns:
        ``(parser, runners)`` where ``runners`` maps a sub-command name to its
        ``run(args)`` callable.
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="geomgen: 3D vision and generative modelling on PyTorch.",
        epilog="Run 'geomgen COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    runners: dict[str, object] = {}

    p = sub.add_parser("plugins", help="list installed plugins, their status and components",
                       description="List installed plugins: name, version, distribution, hooks, "
                                   "components and status (ok / failed: reason / blocked).")
    _configure_plugins(p)
    runners["plugins"] = _run_plugins

    if not plugin_commands:
        return parser, runners
    pm = get_plugin_manager()
    for name in pm.list_components("command"):
        spec = pm.get_spec("command", name)
        if name in runners:
            warnings.warn(f"geomgen: plugin command {name!r} hides a built-in command; ignored",
                          PluginWarning, stacklevel=2)
            continue
        p = sub.add_parser(name, help=spec.help, description=spec.help)
        try:
            spec.configure(p)
        except Exception as exc:  # a plugin's broken parser must not break the CLI
            warnings.warn(f"geomgen: command {name!r} from plugin "
                          f"{pm.provider('command', name).describe()} failed to configure: {exc}",
                          PluginWarning, stacklevel=2)
            continue
        runners[name] = spec.run
    return parser, runners


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script exits with it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("default", PluginWarning)
        warnings.showwarning = _show_warning
        return _main(argv)


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: object = None, line: str | None = None) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        # `geomgen plugins` must work even when a broken plugin makes loading fail (strict mode)
        parser, runners = build_parser(plugin_commands=argv[:1] != ["plugins"])
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        code = runners[args.command](args)  # type: ignore[operator]
        return int(code or 0)
    except BrokenPipeError:  # `geomgen plugins | head`
        return 0
    except (GeomgenError, OSError) as exc:  # bad input, or e.g. an unwritable output file
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
