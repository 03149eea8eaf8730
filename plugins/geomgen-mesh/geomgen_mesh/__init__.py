"""geomgen's first-party ``mesh`` representation plugin: Mesh R-CNN-style mesh prediction.

* :mod:`geomgen_mesh.model` - :class:`~geomgen_mesh.model.MeshPredictor` (encoder, stages, losses).
* :mod:`geomgen_mesh.init_mesh` - ico-sphere and cubified camera-frame voxel initial meshes.
* :mod:`geomgen_mesh.config` - its hyper-parameters, :class:`~geomgen_mesh.config.MeshConfig` (no torch).
* :mod:`geomgen_mesh.plugin` - registration through the public hooks.
"""
