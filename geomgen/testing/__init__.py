"""Helpers shipped for tests of geomgen and of plugins (real test data, fixtures).

- :func:`geomgen.testing.cgal.cgal_data_dir`: real meshes from Debian's ``libcgal-demo``.
- :class:`geomgen.testing.plugins.PluginManager`: a plugin registry of a test's own.
"""
