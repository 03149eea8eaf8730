"""geomgen's first-party 'implicit' representation plugin (see :mod:`geomgen_implicit.plugin`)."""
