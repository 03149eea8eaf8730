"""geomgen-sdf: an example third-party geomgen plugin.

It adds, through geomgen's public plugin hooks:

* the metric ``volume-iou`` (volumetric IoU of two meshes, Occupancy Networks
  protocol), and
* the command ``geomgen sdf`` (voxelize a mesh's solid occupancy to ``.binvox``
  or its signed distance field to ``.npz``).

The geometry lives in :mod:`geomgen_sdf.winding` (generalized winding number and
exact signed distance, pure PyTorch).  Importing this package is cheap: torch is
only imported with :mod:`geomgen_sdf.winding`.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
