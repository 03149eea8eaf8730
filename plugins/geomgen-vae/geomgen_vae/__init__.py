"""geomgen's 'vae' generator plugin (registered through the public hooks).

* :mod:`geomgen_vae.voxel` - :class:`~geomgen_vae.voxel.VoxelVAE` (``"vae"``),
  occupancy grids, ELBO / IWAE likelihoods.
* :mod:`geomgen_vae.points` - :class:`~geomgen_vae.points.PointVAE`
  (``"vae-points"``), point clouds, chamfer loss.
* :mod:`geomgen_vae.common` - the shared :class:`~geomgen_vae.common.VAEGenerator` base.
* :mod:`geomgen_vae.config` - their hyper-parameters (:class:`~geomgen_vae.config.VoxelVAEConfig`,
  :class:`~geomgen_vae.config.PointVAEConfig`; no torch).
* :mod:`geomgen_vae.plugin` - registration.
"""
