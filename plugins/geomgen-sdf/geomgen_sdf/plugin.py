"""The geomgen plugin module of ``geomgen-sdf`` (the ``geomgen`` entry point ``sdf``).

It registers, through geomgen's public hooks only:

* the metric ``volume-iou`` (:func:`volume_iou`), and
* the command ``geomgen sdf`` (voxelize a mesh: occupancy ``.binvox`` or
  signed-distance ``.npz``).

Importing this module is cheap: it needs only ``geomgen``'s light modules;
torch, NumPy and :mod:`geomgen_sdf.winding` are imported by the functions
that use them.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import geomgen
from geomgen.components import CommandSpec, MetricSpec
from geomgen.errors import InvalidInputError

__all__ = ["volume_iou", "voxelize", "geomgen_register_metrics", "geomgen_register_commands"]

#: Largest ``--resolution`` the ``sdf`` command accepts (1024^3 float32 = 4 GiB).
MAX_RESOLUTION = 1024
OUTPUT_SUFFIXES = (".binvox", ".npz")


# ----------------------------------------------------------------------------- metric
def _check_meshes(name: str, value: Any) -> None:
    if not (callable(getattr(value, "verts_list", None)) and callable(getattr(value, "faces_list", None))):
        raise InvalidInputError(f"{name}: expected a geomgen.structures.Meshes, got {type(value).__name__}")


def volume_iou(pred: Any, gt: Any, num_points: int = 100_000, generator: Any = None,
               chunk_size: int | None = None) -> Any:
    """Volumetric IoU of two batches of meshes (the Occupancy Networks protocol).

    For each batch element, ``num_points`` points are drawn uniformly in the
    joint axis-aligned bounding box of both meshes' triangles; a point is inside a mesh
    when its generalized winding number is ``> 0.5`` (so meshes need not be
    perfectly watertight, but must be outward oriented).  Then
    ``IoU = |inside pred and inside gt| / |inside pred or inside gt|``.
    The box only sets the sampling density: points outside both shapes do not
    enter the ratio, so the estimate is unbiased, with a standard error of
    about ``sqrt(IoU (1 - IoU) / (num_points * union / box volume))``.

    Convention for empty volumes: when no sample falls inside either mesh
    (both meshes empty, open, flat or degenerate), the two shapes agree that
    there is no volume and the IoU is defined as **1.0**.  One empty and one
    solid shape gives 0.0.

    Args:
        pred: :class:`~geomgen.structures.Meshes` with ``N`` meshes.
        gt: :class:`~geomgen.structures.Meshes` with ``N`` meshes, same length unit.
        num_points: samples per batch element (default 100 000, as in
            Occupancy Networks).
        generator: ``torch.Generator`` for the samples; default a CPU generator
            seeded with 0, so the metric is deterministic.  Samples are drawn
            on the generator's device, then moved to the meshes' device.
        chunk_size: (point, triangle) pairs evaluated at once; see
            :func:`geomgen_sdf.winding.winding_number`.

    Returns:
        ``(N,)`` float32 tensor of IoUs in ``[0, 1]`` on ``pred``'s device
        (higher is better).

    Raises:
        InvalidInputError: not meshes, batch sizes differ, bad ``num_points``.
    """
    import torch

    from geomgen import checks as V
    from geomgen_sdf.winding import contains

    _check_meshes("pred", pred)
    _check_meshes("gt", gt)
    num_points = V.check_int(num_points, "num_points", min_value=1, fn="volume_iou")
    pred_verts, pred_faces = pred.verts_list(), pred.faces_list()
    gt_verts, gt_faces = gt.verts_list(), gt.faces_list()
    if len(pred_verts) != len(gt_verts):
        raise InvalidInputError(f"pred and gt must hold the same number of meshes, got {len(pred_verts)} "
                                f"and {len(gt_verts)}")
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    elif not isinstance(generator, torch.Generator):
        raise InvalidInputError(f"generator: expected a torch.Generator or None, got {type(generator).__name__}")
    device = pred_verts[0].device if pred_verts else torch.device("cpu")
    ious: list[float] = []
    with torch.no_grad():
        for vp, fp, vg, fg in zip(pred_verts, pred_faces, gt_verts, gt_faces):
            dtype = torch.promote_types(vp.dtype, vg.dtype)
            vp, vg = vp.to(device=device, dtype=dtype), vg.to(device=device, dtype=dtype)
            fp, fg = fp.to(device), fg.to(device)
            used = [v[f.reshape(-1).long()] for v, f in ((vp, fp), (vg, fg)) if f.numel()]
            if not used:  # neither mesh has a triangle: no volume on either side
                ious.append(1.0)
                continue
            corners = torch.cat(used)
            lo, hi = corners.amin(0), corners.amax(0)
            extent = hi - lo
            # a flat box (planar meshes) would put every sample on the surface
            pad = torch.where(extent > 0, torch.zeros_like(extent),
                              torch.clamp(extent.max() * 1e-3, min=1e-6).expand_as(extent))
            lo, extent = lo - pad, extent + 2 * pad
            u = torch.rand(num_points, 3, generator=generator, device=generator.device, dtype=torch.float64)
            points = lo + u.to(device=device, dtype=dtype) * extent
            in_pred = contains(points, vp, fp, chunk_size=chunk_size)
            in_gt = contains(points, vg, fg, chunk_size=chunk_size)
            union = int((in_pred | in_gt).sum())
            ious.append(1.0 if union == 0 else int((in_pred & in_gt).sum()) / union)
    return torch.tensor(ious, dtype=torch.float32, device=device)


@geomgen.hookimpl
def geomgen_register_metrics(register: Any) -> None:
    register(MetricSpec(
        name="volume-iou", fn=volume_iou, inputs="meshes", higher_is_better=True,
        description="volumetric IoU (Occupancy Networks): 100k uniform samples in the joint bbox, "
                    "inside = winding number > 0.5; two empty volumes give 1.0"))


# ----------------------------------------------------------------------------- command
def voxelize(verts: Any, faces: Any, resolution: int = 32, padding: float = 0.05, sdf: bool = False,
             chunk_size: int | None = None) -> Any:
    """Sample a mesh's solid occupancy or signed distance on a cubic voxel grid.

    The grid is a cube of ``resolution`` voxels per axis centred on the mesh's
    bounding box; its edge is the box's longest edge times ``1 + 2 * padding``.
    Values are taken at voxel centres: occupancy is ``winding number > 0.5``,
    the SDF is :func:`geomgen_sdf.winding.signed_distance` (negative inside).

    Args:
        verts: ``(V, 3)`` vertex positions.
        faces: ``(F, 3)`` vertex indices (at least one face).
        resolution: voxels per axis, >= 2.
        padding: empty margin on each side, as a fraction of the longest edge, >= 0.
        sdf: return a ``"sdf"`` grid (world units) instead of an occupancy grid.
        chunk_size: see :func:`geomgen_sdf.winding.winding_number`.

    Returns:
        :class:`~geomgen.structures.Voxels` with one ``(R, R, R)`` grid
        (``grids[0, k, j, i]`` is the voxel at x index ``i``, y ``j``, z ``k``),
        ``origin`` the min corner of voxel ``(0, 0, 0)`` and one voxel size.

    Raises:
        InvalidInputError: bad resolution or padding, no faces, or a mesh whose
            bounding box has zero size.
    """
    import torch

    from geomgen import checks as V
    from geomgen.structures import Voxels
    from geomgen_sdf.winding import signed_distance, winding_number

    resolution = V.check_int(resolution, "resolution", min_value=2, max_value=MAX_RESOLUTION, fn="voxelize")
    padding = V.check_float(padding, "padding", nonnegative=True, fn="voxelize")
    verts = torch.as_tensor(verts)
    faces = torch.as_tensor(faces)
    if faces.ndim != 2 or faces.shape[0] == 0:
        raise InvalidInputError("faces: the mesh has no faces, so it has no inside to voxelize")
    if not verts.is_floating_point():
        verts = verts.to(torch.get_default_dtype())
    used = verts[faces.reshape(-1).long()]
    lo, hi = used.amin(0), used.amax(0)
    edge = float((hi - lo).max())
    if not edge > 0:
        raise InvalidInputError("the mesh's bounding box has zero size (all its vertices coincide)")
    side = edge * (1.0 + 2.0 * float(padding))
    voxel_size = side / resolution
    origin = (lo + hi) / 2 - side / 2
    idx = (torch.arange(resolution, dtype=verts.dtype, device=verts.device) + 0.5) * voxel_size
    z, y, x = torch.meshgrid(origin[2] + idx, origin[1] + idx, origin[0] + idx, indexing="ij")
    centres = torch.stack([x, y, z], -1).reshape(-1, 3)  # (R^3, 3) in (k, j, i) order
    with torch.no_grad():
        if sdf:
            values = signed_distance(centres, verts, faces, chunk_size=chunk_size)
        else:
            values = winding_number(centres, verts, faces, chunk_size=chunk_size) > 0.5
    grid = values.reshape(1, resolution, resolution, resolution)
    return Voxels(grid, kind="sdf" if sdf else "occupancy", origin=origin, voxel_size=voxel_size)


def _configure_sdf(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("mesh", metavar="MESH", help="input triangle mesh (obj, ply, off, stl, glb, gltf)")
    parser.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="OUT.binvox: solid occupancy (winding number > 0.5 at voxel centres); "
                             "OUT.npz: signed distance grid (arrays 'sdf' (R, R, R) indexed [z, y, x], "
                             "'origin' (3,) xyz min corner of voxel (0, 0, 0), 'voxel_size')")
    parser.add_argument("--resolution", type=int, default=32, metavar="R",
                        help=f"voxels per axis, 2..{MAX_RESOLUTION} (default: %(default)s)")
    parser.add_argument("--padding", type=float, default=0.05,
                        help="empty margin on each side, as a fraction of the mesh's longest "
                             "bounding-box edge (default: %(default)s)")


def _run_sdf(args: argparse.Namespace) -> int:
    out = Path(args.output)
    suffix = out.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise InvalidInputError(f"-o {args.output}: the output must end in .binvox (occupancy) "
                                f"or .npz (signed distance), not {suffix or 'no extension'!r}")
    if args.resolution < 2 or args.resolution > MAX_RESOLUTION:
        raise InvalidInputError(f"--resolution: expected an integer in [2, {MAX_RESOLUTION}], got {args.resolution}")
    if not 0 <= args.padding < float("inf"):
        raise InvalidInputError(f"--padding: expected a finite number >= 0, got {args.padding}")
    if not out.parent.is_dir():
        raise InvalidInputError(f"-o {args.output}: folder {str(out.parent)!r} does not exist")

    import numpy as np

    from geomgen.io import load_mesh, save_binvox

    mesh = load_mesh(args.mesh)
    verts, faces = mesh.verts_list()[0], mesh.faces_list()[0]
    try:
        voxels = voxelize(verts, faces, args.resolution, args.padding, sdf=suffix == ".npz")
    except InvalidInputError as exc:
        raise InvalidInputError(f"{args.mesh}: {exc}") from None
    occupied = float(voxels.occupancy().float().mean())
    size = float(voxels.voxel_size[0, 0])
    origin = voxels.origin[0].tolist()
    if suffix == ".binvox":
        save_binvox(out, voxels)
        what = "occupancy"
    else:
        np.savez_compressed(out, sdf=voxels.grids[0].cpu().numpy().astype(np.float32),
                            origin=np.asarray(origin, dtype=np.float32),
                            voxel_size=np.float32(size))
        what = "signed distance"
    r = args.resolution
    print(f"wrote {out}: {r}x{r}x{r} {what} grid of {args.mesh}, voxel size {size:.6g}, "
          f"origin ({', '.join(f'{c:.6g}' for c in origin)}), occupied fraction {occupied:.4f}")
    return 0


@geomgen.hookimpl
def geomgen_register_commands(register: Any) -> None:
    register(CommandSpec(name="sdf", help="voxelize a mesh: solid occupancy (.binvox) or signed distance (.npz)",
                         configure=_configure_sdf, run=_run_sdf))
