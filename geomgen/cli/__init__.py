"""The ``geomgen`` command line.

``geomgen plugins`` is part of the CLI itself (it must work when every plugin is
broken); every other sub-command comes from a plugin's
``geomgen_register_commands`` hook — geomgen's own (``info``, ``compare``,
``convert``, ``data``, ``train``, ``eval``, ``sample``, ``predict``, ``view``,
``render``) included.  Each of geomgen's commands is one module of this
package (``geomgen.cli.<name>``) with ``configure(parser)`` and ``run(args)``;
:mod:`geomgen.cli._args` holds what several commands share.

Commands are lazy: the top-level parser lists every command's name and help
from its :class:`~geomgen.components.CommandSpec` without importing the
command's module; only the command invoked is imported and configured.  So
``geomgen --version``, ``geomgen --help`` and ``geomgen plugins`` import no
torch.

Exit codes: 0 success, 1 a geomgen error (bad file, bad argument, broken
plugin), 2 a usage error (argparse), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from geomgen import __version__
from geomgen.errors import GeomgenError, PluginWarning

__all__ = ["main", "build_parser"]

PROG = "geomgen"

#: The commands of the CLI itself: name -> (module, help).
CORE_COMMANDS: dict[str, tuple[str, str]] = {
    "plugins": ("geomgen.cli.plugins", "list installed plugins, their status and components"),
}

Runner = Callable[[argparse.Namespace], "int | None"]


def _command_name(argv: Sequence[str]) -> str | None:
    """The sub-command of ``argv``: its first token that is not an option (the
    top-level parser has no option that takes a value)."""
    return next((a for a in argv if not a.startswith("-")), None)


def _load_core(name: str) -> tuple[Callable[[argparse.ArgumentParser], None], Runner]:
    import importlib

    module = importlib.import_module(CORE_COMMANDS[name][0])
    return module.configure, module.run


def build_parser(plugin_commands: bool = True, command: str | None = None
                 ) -> tuple[argparse.ArgumentParser, dict[str, Runner]]:
    """The argument parser: ``plugins`` and (``plugin_commands``) every plugin's sub-commands.

    Every command is listed with its name and help; only ``command`` is
    configured (its module imported, for a :class:`~geomgen.components.CommandSpec`
    with ``module``).  A command whose module fails to import or whose
    ``configure`` fails is left out with a :class:`~geomgen.errors.PluginWarning`.

    Args:
        plugin_commands: also list the commands registered by plugins (loads the
            plugins; False lists ``plugins`` only).
        command: the sub-command to configure, or None (none: enough for
            ``--help`` and ``--version``).

    Returns:
        ``(parser, runners)``: ``runners`` maps the configured command's name to
        its ``run(args)`` callable.

    Raises:
        PluginError: in strict mode (``GEOMGEN_STRICT_PLUGINS=1``), a broken plugin.
    """
    skip: set[str] = set()
    while True:
        parser, runners, failed = _build(plugin_commands, command, skip)
        if failed is None:
            return parser, runners
        skip.add(failed)  # rebuild without it: argparse then reports an invalid choice


def _build(plugin_commands: bool, command: str | None, skip: set[str]
           ) -> tuple[argparse.ArgumentParser, dict[str, Runner], str | None]:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="geomgen: 3D vision and generative modelling on PyTorch.",
        epilog="Run 'geomgen COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    runners: dict[str, Runner] = {}

    entries: list[tuple[str, str, Any]] = [(name, help_, None) for name, (_, help_) in CORE_COMMANDS.items()]
    if plugin_commands:
        from geomgen._registry import get_plugin_manager

        pm = get_plugin_manager()
        for name in pm.list_components("command"):
            if name in CORE_COMMANDS:
                warnings.warn(f"geomgen: plugin command {name!r} hides a built-in command; ignored",
                              PluginWarning, stacklevel=3)
                continue
            spec = pm.get_spec("command", name)
            entries.append((name, spec.help, spec))

    for name, help_, spec in entries:
        if name in skip:
            continue
        p = sub.add_parser(name, help=help_, description=help_)
        if name != command:
            continue
        try:
            configure, run = _load_core(name) if spec is None else spec.load()
            configure(p)
        except Exception as exc:  # a plugin's broken parser must not break the CLI
            if spec is None:
                raise
            warnings.warn(f"geomgen: command {name!r} from plugin "
                          f"{pm.provider('command', name).describe()} failed to configure: {exc}",
                          PluginWarning, stacklevel=3)
            return parser, runners, name
        runners[name] = run
    return parser, runners, None


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
    command = _command_name(argv)
    try:
        # `geomgen plugins` must work even when a broken plugin makes loading fail (strict mode)
        parser, runners = build_parser(plugin_commands=command != "plugins", command=command)
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        code = runners[args.command](args)
        return int(code or 0)
    except BrokenPipeError:  # `geomgen plugins | head`
        return 0
    except (GeomgenError, OSError) as exc:  # bad input, or e.g. an unwritable output file
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
