"""geomgen's first-party 'mesh' representation plugin (see :mod:`geomgen_mesh.plugin`)."""
