"""geomgen's first-party 'depth' representation plugin (see :mod:`geomgen_depth.plugin`)."""
