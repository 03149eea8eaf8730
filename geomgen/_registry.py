"""The plugin manager: loads plugins safely, collects their components, reports status.

Design (see ``hookspecs.py`` for the hooks themselves):

* Built-in plugins (``DEFAULT_PLUGINS``) go through exactly the same hooks as
  third-party ones; plugins are found through the ``geomgen`` entry-point group.
* A plugin that fails to import, has a misspelled/ill-typed hook, raises inside a
  hook, returns something from a hook, or registers a record of the wrong type is
  recorded as ``failed`` with its error, warned about (:class:`PluginWarning`) and
  skipped as a whole: none of its components are registered, everything else works.
* ``GEOMGEN_STRICT_PLUGINS=1`` turns every such failure (and name collisions) into a
  :class:`~geomgen.errors.PluginError`.
* ``GEOMGEN_DISABLE_PLUGINS`` is a comma-separated list of plugin names or fnmatch
  patterns to block; the word ``external`` blocks every plugin that does not ship
  with the ``geomgen`` distribution.
* Two plugins registering the same component name is not an error until the name
  is used: then :class:`~geomgen.errors.PluginConflictError` names both
  distributions and the qualified ``plugin:name`` that picks one.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import importlib.metadata
import inspect
import os
import threading
import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import pluggy

from geomgen import hookspecs
from geomgen.components import KINDS
from geomgen.errors import (
    PluginConflictError,
    PluginError,
    PluginWarning,
    UnknownComponentError,
)

__all__ = [
    "PluginManager",
    "PluginInfo",
    "get_plugin_manager",
    "ENTRY_POINT_GROUP",
    "ENV_STRICT",
    "ENV_DISABLE",
]

ENTRY_POINT_GROUP = "geomgen"
ENV_STRICT = "GEOMGEN_STRICT_PLUGINS"
ENV_DISABLE = "GEOMGEN_DISABLE_PLUGINS"
#: The distribution whose plugins count as first-party ("builtin").
FIRST_PARTY_DISTRIBUTION = "geomgen"
#: Plugins registered even when geomgen runs from a source tree without metadata.
DEFAULT_PLUGINS: dict[str, str] = {"core": "geomgen.builtin"}

_HOOK_PREFIX = hookspecs.PROJECT + "_"
_DEFAULT_IMPL_OPTS = getattr(hookspecs.hookimpl(lambda: None), hookspecs.PROJECT + "_impl")

Status = Literal["ok", "failed", "blocked"]


@dataclass
class PluginInfo:
    """What ``geomgen plugins`` reports about one plugin.

    Attributes:
        name: plugin name (the entry-point name).
        distribution: the installed distribution providing it (``None`` when
            registered in-process).
        version: that distribution's version.
        module: the import path of the plugin module.
        file: the plugin module's file, when known.
        builtin: ``True`` for plugins shipped with geomgen itself.
        status: ``"ok"``, ``"failed"`` or ``"blocked"``.
        error: why it failed or is blocked, else ``None``.
        hooks: names of the hooks it implements.
        components: kind -> names it registered (empty unless ``ok``).
        configs: model name -> the schema of its hyper-parameters
            (:meth:`geomgen.config.ModelConfig.schema`), for each model it
            registered with a config class.
    """

    name: str
    distribution: str | None = None
    version: str | None = None
    module: str | None = None
    file: str | None = None
    builtin: bool = False
    status: Status = "ok"
    error: str | None = None
    hooks: list[str] = field(default_factory=list)
    components: dict[str, list[str]] = field(default_factory=dict)
    configs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (used by ``geomgen plugins --json``)."""
        return asdict(self)

    def describe(self) -> str:
        """``name (distribution version)`` for messages."""
        if self.distribution:
            return f"{self.name!r} (distribution {self.distribution} {self.version or ''})".replace(" )", ")")
        return f"{self.name!r} (registered in-process)"


@dataclass(frozen=True)
class _Entry:
    plugin: str
    spec: Any


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _parse_patterns(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        value = os.environ.get(ENV_DISABLE, "")
    if isinstance(value, str):
        value = value.split(",")
    return tuple(p.strip() for p in value if p and p.strip())


def _matches(name: str, include: str | Iterable[str] | None) -> bool:
    if include is None:
        return True
    patterns = [include] if isinstance(include, str) else list(include)
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


class PluginManager(pluggy.PluginManager):
    """geomgen's pluggy manager with safe loading and a component registry.

    Args:
        strict: raise :class:`PluginError` on any broken plugin or name collision
            instead of warning; default from ``GEOMGEN_STRICT_PLUGINS``.
        disabled: plugin names/fnmatch patterns to block (``"external"`` blocks all
            third-party plugins); default from ``GEOMGEN_DISABLE_PLUGINS``.

    Nothing is loaded on construction: call :meth:`load_default_plugins` and
    :meth:`load_entrypoints` (``get_plugin_manager()`` does both), or
    :meth:`add_plugin` in tests.
    """

    def __init__(self, *, strict: bool | None = None, disabled: str | Iterable[str] | None = None) -> None:
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        self.strict = _env_flag(ENV_STRICT) if strict is None else bool(strict)
        self.disabled = _parse_patterns(disabled)
        self._infos: dict[str, PluginInfo] = {}
        self._components: dict[str, dict[str, list[_Entry]]] | None = None
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ discovery
    def parse_hookimpl_opts(self, plugin: Any, name: str):  # type: ignore[override]
        """Treat every ``geomgen_*`` function as a hook implementation, decorated
        or not, so that a misspelled hook name is caught instead of ignored."""
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name.startswith(_HOOK_PREFIX):
            try:
                attr = inspect.getattr_static(plugin, name)
            except AttributeError:
                return None
            if isinstance(attr, (staticmethod, classmethod)) or inspect.isroutine(attr):
                return dict(_DEFAULT_IMPL_OPTS)
        return opts

    def is_blocked(self, name: str, builtin: bool) -> bool:
        """Whether ``GEOMGEN_DISABLE_PLUGINS`` (or ``disabled=``) blocks this plugin."""
        for pattern in self.disabled:
            if pattern == "external" and not builtin:
                return True
            if fnmatch.fnmatchcase(name, pattern):
                return True
        return False

    def load_default_plugins(self) -> None:
        """Register the plugins that ship inside the ``geomgen`` package."""
        try:
            version = importlib.metadata.version(FIRST_PARTY_DISTRIBUTION)
        except importlib.metadata.PackageNotFoundError:  # running from a source tree
            from geomgen import __version__ as version
        for name, module_name in DEFAULT_PLUGINS.items():
            info = PluginInfo(name=name, distribution=FIRST_PARTY_DISTRIBUTION, version=version,
                              module=module_name, builtin=True)
            self._load_and_add(info, lambda m=module_name: importlib.import_module(m))

    def load_entrypoints(self, group: str = ENTRY_POINT_GROUP) -> None:
        """Load every plugin advertised in the ``geomgen`` entry-point group.

        Import errors are recorded against the plugin, never raised (unless strict).
        """
        defaults = set(DEFAULT_PLUGINS.values())
        seen: set[tuple[str, str]] = set()
        metadata: dict[int, tuple[str | None, str | None]] = {}  # one parse per distribution
        for ep in importlib.metadata.entry_points(group=group):
            if ep.value in defaults or (ep.name, ep.value) in seen:
                continue  # already registered, or the same distribution seen twice on sys.path
            seen.add((ep.name, ep.value))
            dist = getattr(ep, "dist", None)
            if id(dist) not in metadata:
                md = dist.metadata if dist is not None else None
                metadata[id(dist)] = (md["Name"], md["Version"]) if md is not None else (None, None)
            dist_name, version = metadata[id(dist)]
            builtin = (dist_name or "").lower() == FIRST_PARTY_DISTRIBUTION
            info = PluginInfo(name=ep.name, distribution=dist_name, version=version,
                              module=ep.value, builtin=builtin)
            self._load_and_add(info, ep.load)

    def add_plugin(self, plugin: Any, name: str | None = None, *, distribution: str | None = None,
                   version: str | None = None, builtin: bool = False) -> PluginInfo:
        """Register an already imported plugin object or module (safe: failures
        are recorded on the returned :class:`PluginInfo`)."""
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        info = PluginInfo(name=name, distribution=distribution, version=version,
                          module=getattr(plugin, "__name__", type(plugin).__name__), builtin=builtin)
        self._load_and_add(info, lambda: plugin)
        return info

    def _load_and_add(self, info: PluginInfo, load: Any) -> None:
        with self._lock:
            self._components = None
            if info.name in self._infos:
                other = self._infos[info.name]
                key = f"{info.name}@{info.distribution or id(info)}"
                self._infos[key] = info  # listed as failed, never registered with pluggy
                self._fail(info, f"plugin name {info.name!r} is already used by {other.describe()}",
                           conflict=True)
                return
            self._infos[info.name] = info
            if self.is_blocked(info.name, info.builtin):
                info.status = "blocked"
                info.error = f"blocked by {ENV_DISABLE}={','.join(self.disabled)}"
                return
            try:
                plugin = load()
            except (Exception, SystemExit) as exc:
                self._fail(info, f"failed to import: {type(exc).__name__}: {exc}", exc)
                return
            info.file = getattr(plugin, "__file__", None)
            try:
                self.register(plugin, name=info.name)
            except Exception as exc:  # pluggy.PluginValidationError, ValueError
                self._fail(info, f"invalid hook implementation: {exc}", exc)
                return
            info.hooks = sorted(hc.name for hc in self.get_hookcallers(plugin) or [])
            unknown = [h for h in info.hooks if h not in hookspecs.REGISTER_HOOKS]
            if unknown:
                hints = []
                for h in unknown:
                    close = difflib.get_close_matches(h, hookspecs.REGISTER_HOOKS, n=1)
                    hints.append(f"{h!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
                self._fail(info, "unknown hook " + ", ".join(hints))

    def _fail(self, info: PluginInfo, reason: str, exc: BaseException | None = None,
              conflict: bool = False) -> None:
        info.status = "failed"
        info.error = reason
        info.components = {}
        info.configs = {}
        registered = self.get_plugin(info.name)
        if registered is not None and self._infos.get(info.name) is info:
            self.unregister(registered)
        if self.strict:
            raise (PluginConflictError if conflict else PluginError)(
                f"plugin {info.describe()} is broken ({ENV_STRICT} is set): {reason}") from exc
        warnings.warn(f"geomgen: skipping plugin {info.describe()}: {reason}", PluginWarning, stacklevel=4)

    # ------------------------------------------------------------------ components
    def _collect(self) -> dict[str, dict[str, list[_Entry]]]:
        with self._lock:
            if self._components is not None:
                return self._components
            order = {name: i for i, name in enumerate(self._infos)}
            staged: dict[str, list[_Entry]] = {}
            for hook_name, kind in hookspecs.REGISTER_HOOKS.items():
                impls = getattr(self.hook, hook_name).get_hookimpls()
                for impl in sorted(impls, key=lambda i: order.get(i.plugin_name, len(order))):
                    info = self._infos.get(impl.plugin_name)
                    if info is None or info.status != "ok":
                        continue
                    error = self._call_register_hook(impl, hook_name, kind, staged.setdefault(info.name, []))
                    if error:
                        staged.pop(info.name, None)
                        self._fail(info, error)
            components: dict[str, dict[str, list[_Entry]]] = {kind: {} for kind in KINDS}
            for plugin_name, entries in staged.items():
                info = self._infos[plugin_name]
                info.components = {}
                info.configs = {}
                for entry in entries:
                    components[entry.spec.kind].setdefault(entry.spec.name, []).append(entry)
                    info.components.setdefault(entry.spec.kind, []).append(entry.spec.name)
                    if getattr(entry.spec, "config", None) is not None:
                        info.configs[entry.spec.name] = entry.spec.config.schema()
            self._components = components
            for kind, names in components.items():
                for name, entries in names.items():
                    if len(entries) > 1:
                        message = self._conflict_message(kind, name, entries)
                        if self.strict:
                            raise PluginConflictError(message)
                        warnings.warn(message, PluginWarning, stacklevel=3)
            return components

    def _call_register_hook(self, impl: Any, hook_name: str, kind: str, out: list[_Entry]) -> str | None:
        """Call one plugin's implementation; return an error message or None."""
        expected = KINDS[kind]
        problems: list[str] = []
        mine: set[str] = {e.spec.name for e in out if e.spec.kind == kind}

        def register(spec: Any) -> None:
            if not isinstance(spec, expected):
                problems.append(f"{hook_name} registered a {type(spec).__name__}; "
                                f"expected geomgen.components.{expected.__name__}")
                raise PluginError(problems[-1])
            if spec.name in mine:
                problems.append(f"{hook_name} registered the {kind} {spec.name!r} twice")
                raise PluginError(problems[-1])
            mine.add(spec.name)
            out.append(_Entry(impl.plugin_name, spec))

        kwargs = {"register": register} if "register" in impl.argnames else {}
        try:
            result = impl.function(**kwargs)
        except Exception as exc:
            return problems[0] if problems else f"{hook_name} raised {type(exc).__name__}: {exc}"
        if problems:
            return problems[0]
        if result is not None:
            return (f"{hook_name} returned a {type(result).__name__}; "
                    "implementations must call register(...) and return None")
        return None

    def _conflict_message(self, kind: str, name: str, entries: list[_Entry]) -> str:
        who = " and ".join(self._infos[e.plugin].describe() for e in entries)
        picks = " or ".join(f"'{e.plugin}:{name}'" for e in entries)
        return (f"{kind} {name!r} is registered by {len(entries)} plugins: {who}; "
                f"use {picks} to pick one, or block one with {ENV_DISABLE}")

    def plugins(self) -> list[PluginInfo]:
        """Every plugin seen, in load order, with status and components."""
        self._collect()
        return list(self._infos.values())

    def list_components(self, kind: str, include: str | Iterable[str] | None = None,
                        exclude: str | Iterable[str] | None = None) -> list[str]:
        """Sorted names of the components of ``kind`` (fnmatch ``include``/``exclude``).

        A name registered by several plugins is listed once per plugin in its
        qualified form ``plugin:name``.
        """
        self._check_kind(kind)
        names: list[str] = []
        for name, entries in self._collect()[kind].items():
            if len(entries) == 1:
                names.append(name)
            else:
                names.extend(f"{e.plugin}:{name}" for e in entries)
        exclude_patterns = [] if exclude is None else ([exclude] if isinstance(exclude, str) else list(exclude))
        return sorted(n for n in names if _matches(n, include)
                      and not any(fnmatch.fnmatchcase(n, p) for p in exclude_patterns))

    def get_spec(self, kind: str, name: str) -> Any:
        """The record registered for ``name`` (or ``plugin:name``) of ``kind``.

        Raises:
            UnknownComponentError: no plugin provides it (the message lists what is available).
            PluginConflictError: two plugins provide it and ``name`` is not qualified.
        """
        self._check_kind(kind)
        if not isinstance(name, str):
            raise UnknownComponentError(f"{kind} name must be a string, got {type(name).__name__}")
        components = self._collect()[kind]
        plugin, _, short = name.rpartition(":")
        entries = components.get(short, [])
        if plugin:
            entries = [e for e in entries if e.plugin == plugin]
        if not entries:
            available = self.list_components(kind)
            close = difflib.get_close_matches(short, [a.rpartition(":")[2] for a in available], n=3)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            failed = [i.name for i in self._infos.values() if i.status == "failed"]
            note = f" (plugins that failed to load: {', '.join(failed)}; see `geomgen plugins`)" if failed else ""
            raise UnknownComponentError(
                f"no {kind} named {name!r}.{hint} Available: {', '.join(available) or 'none'}{note}")
        if len(entries) > 1:
            raise PluginConflictError(self._conflict_message(kind, short, entries))
        return entries[0].spec

    def provider(self, kind: str, name: str) -> PluginInfo:
        """The plugin that registered ``name`` of ``kind``."""
        spec = self.get_spec(kind, name)
        for entries in self._collect()[kind].values():
            for e in entries:
                if e.spec is spec:
                    return self._infos[e.plugin]
        raise UnknownComponentError(name)  # pragma: no cover - get_spec found it

    @staticmethod
    def _check_kind(kind: str) -> None:
        if kind not in KINDS:
            raise UnknownComponentError(f"unknown component kind {kind!r}; one of {', '.join(KINDS)}")


_manager: PluginManager | None = None
_manager_lock = threading.Lock()


def get_plugin_manager() -> PluginManager:
    """The process-wide manager, created on first use with built-ins and entry points loaded."""
    global _manager
    with _manager_lock:
        if _manager is None:
            pm = PluginManager()
            pm.load_default_plugins()
            pm.load_entrypoints()
            _manager = pm
        return _manager


def set_plugin_manager(pm: PluginManager | None) -> PluginManager | None:
    """Replace the process-wide manager (tests); ``None`` reloads on next use. Returns the old one."""
    global _manager
    with _manager_lock:
        old, _manager = _manager, pm
        return old
