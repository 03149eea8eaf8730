"""File input/output and conversion to other 3D libraries.

* Meshes: :func:`load_mesh`, :func:`load_meshes`, :func:`save_mesh`
  (OBJ, PLY, OFF, STL, GLB, GLTF, through trimesh).
* Point clouds: :func:`load_pointcloud`, :func:`save_pointcloud`
  (PLY, XYZ, PWN, NPZ; mesh files give their vertices).
* Voxels: :func:`load_binvox`, :func:`save_binvox`.
* Depth maps with intrinsics: :func:`load_depthmaps`, :func:`save_depthmaps` (NPZ).
* Cameras: :func:`load_cameras`, :func:`save_cameras` (JSON: ``K`` and
  ``world_from_camera`` per view, mask file names).
* Images: :func:`load_image`, :func:`save_image`, :func:`colorize_depth`,
  :func:`image_grid` (through Pillow).
* Converters: :func:`to_trimesh` / :func:`from_trimesh`,
  :func:`to_open3d` / :func:`from_open3d`, :func:`to_pytorch3d` /
  :func:`from_pytorch3d` (Open3D and PyTorch3D are optional).

Importing this package is cheap: trimesh, Open3D and PyTorch3D are imported
by the functions that need them.  Every error derives from
:class:`geomgen.errors.GeomgenError`; errors about files name the file.
"""

from geomgen.io import binvox, cameras, converters, depthmaps, meshes, pointclouds
from geomgen.io import images
from geomgen.io.binvox import load_binvox, save_binvox
from geomgen.io.cameras import CAMERAS_FORMAT, CAMERAS_VERSION, CameraFile, load_cameras, save_cameras
from geomgen.io.converters import (
    from_open3d,
    from_pytorch3d,
    from_trimesh,
    to_open3d,
    to_pytorch3d,
    to_trimesh,
)
from geomgen.io.depthmaps import load_depthmaps, save_depthmaps
from geomgen.io.images import IMAGE_SAVE_FORMATS, colorize_depth, image_grid, load_image, save_image
from geomgen.io.meshes import load_mesh, load_meshes, save_mesh
from geomgen.io.pointclouds import load_pointcloud, save_pointcloud

# Each submodule declares its public names once; the package re-exports them all.
__all__: list[str] = []
__all__ += meshes.__all__
__all__ += pointclouds.__all__
__all__ += binvox.__all__
__all__ += depthmaps.__all__
__all__ += cameras.__all__
__all__ += converters.__all__
__all__ += images.__all__
