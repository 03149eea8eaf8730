"""geomgen's first-party 'voxel' representation plugin (see :mod:`geomgen_voxel.plugin`)."""
