"""geomgen's first-party 'pointcloud' representation plugin (see :mod:`geomgen_pointcloud.plugin`)."""
