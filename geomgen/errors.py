"""Exceptions raised by geomgen.

Every error geomgen raises on purpose derives from :class:`GeomgenError`, so
``except geomgen.errors.GeomgenError`` catches all of them.  The subclasses also
derive from the matching built-in exception (``ValueError``, ``OSError``, ...)
so code written against the standard library keeps working.

Messages always name the offending file, argument or plugin and say what is
wrong with it.
"""

from __future__ import annotations

__all__ = [
    "GeomgenError",
    "InvalidInputError",
    "FileFormatError",
    "MeshFileNotFoundError",
    "BackendUnavailableError",
    "DisplayUnavailableError",
    "PluginError",
    "PluginConflictError",
    "UnknownComponentError",
    "PluginWarning",
    "DatasetError",
]


class GeomgenError(Exception):
    """Base class of every error raised by geomgen."""


class InvalidInputError(GeomgenError, ValueError):
    """An argument has the wrong type, dtype, shape or values.

    Examples: NaN/Inf coordinates, face indices that are negative or out of
    range, a ``(N, V, 2)`` tensor where ``(N, V, 3)`` is expected.
    """


class DatasetError(InvalidInputError):
    """A dataset cannot be served: its split is empty (no source files, or every
    one was skipped), or a cached sample cannot be rebuilt.  The message names the
    dataset, its root and split, and why."""


class FileFormatError(GeomgenError, ValueError):
    """A file exists but cannot be read: empty, truncated, corrupt, or of an
    unsupported format.  The message names the file."""


class MeshFileNotFoundError(GeomgenError, FileNotFoundError):
    """A file to be read does not exist.  The message names the file."""


class BackendUnavailableError(GeomgenError, ImportError):
    """An optional backend (PyTorch3D, Open3D, ...) was asked for but is not
    installed, or cannot run on the given device."""


class DisplayUnavailableError(GeomgenError, RuntimeError):
    """An interactive window was asked for but no display is available (no
    ``DISPLAY`` / ``WAYLAND_DISPLAY`` on Linux, or the window could not be
    created).  The message suggests ``xvfb-run`` or ``geomgen render ... -o out.png``."""


class PluginError(GeomgenError):
    """A plugin failed to load, raised inside a hook, or returned or
    registered something of the wrong type."""


class PluginConflictError(PluginError):
    """Two plugins registered a component under the same name.  The message
    names both distributions and the qualified ``plugin:name`` to pick one."""


class UnknownComponentError(GeomgenError, KeyError):
    """No installed plugin provides the requested model, metric or dataset."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class PluginWarning(UserWarning):
    """Emitted when a plugin is skipped because it is broken (set
    ``GEOMGEN_STRICT_PLUGINS=1`` to raise :class:`PluginError` instead)."""
