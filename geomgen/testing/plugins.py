"""A plugin registry of a test's own: :class:`PluginManager` (tests of plugins use this, never ``geomgen._registry``).

    from geomgen.testing.plugins import PluginManager

    pm = PluginManager(strict=True, disabled=())   # strict: a broken plugin or name clash raises
    pm.load_default_plugins()                      # the plugins shipped with geomgen
    info = pm.add_plugin(my_plugin_module, "mine")
    assert info.status == "ok"
    spec = pm.get_spec("metric", "my-metric")

:func:`set_plugin_manager` makes such a manager the one ``geomgen.get_model`` & co.
use (it returns the previous one, to put back afterwards).
"""

from __future__ import annotations

from geomgen._registry import PluginManager, set_plugin_manager

__all__ = ["PluginManager", "set_plugin_manager"]
