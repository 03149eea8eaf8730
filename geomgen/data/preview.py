"""Contact sheets of dataset samples (what ``geomgen data preview`` writes).

:func:`make_contact_sheet` tiles a few samples of any geomgen dataset: one row
per sample, columns = the input image, its depth map (false colour, near
bright), its mask, and a render of the ground-truth mesh from a fixed 3/4
view (azimuth 45, elevation 30 degrees, same intrinsics), so a wrong camera,
a broken normalisation or a mislabelled mask shows at a glance.  Keys a
dataset does not provide (R2N2 has no depth) give a blank tile labelled
``"no <key>"``.

The ``geomgen data`` command lives in :mod:`geomgen.cli.data`.
"""

from __future__ import annotations

from typing import Any

from geomgen.errors import InvalidInputError

__all__ = ["make_contact_sheet", "pick_indices"]

#: Azimuth / elevation (degrees) of the ground-truth mesh render.
GT_VIEW = (45.0, 30.0)


def pick_indices(dataset: Any, num: int) -> list[int]:
    """``num`` sample indices that cycle through the categories (first sample of
    each category, then the second, ...), or ``0 .. num-1`` for datasets without
    ``records``."""
    n = len(dataset)
    records = getattr(dataset, "records", None) or getattr(dataset, "models", None)
    if not records:
        return list(range(min(num, n)))
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        groups.setdefault(getattr(r, "category", ""), []).append(i)
    out: list[int] = []
    depth = 0
    while len(out) < min(num, n):
        for idx in groups.values():
            if depth < len(idx) and len(out) < num:
                out.append(idx[depth])
        depth += 1
    return out


def _upsample(t: Any, factor: int) -> Any:
    """Nearest-neighbour upsampling of a ``(C, H, W)`` tensor by an integer factor."""
    return t.repeat_interleave(factor, -2).repeat_interleave(factor, -1) if factor > 1 else t


def make_contact_sheet(dataset: Any, indices: list[int] | None = None, *, num: int = 4, view: int = 0,
                       tile_size: int = 128, labels: bool = True) -> Any:
    """Contact sheet of samples of ``dataset`` (see the module docstring).

    Args:
        dataset: a geomgen dataset (``__getitem__`` returns sample dicts).
        indices: samples to show; default :func:`pick_indices` (``num`` of them).
        num: number of samples when ``indices`` is None (>= 1).
        view: which returned view of each sample to show (index into ``S``).
        tile_size: tiles are at least this many pixels: images, depths and masks
            are upsampled (nearest) by the smallest integer factor reaching it;
            the mesh is rendered directly at the tile size.
        labels: print the sample id / column names under the tiles.

    Returns:
        ``(3, H', W')`` float32 sheet in [0, 1] (rows = samples, 4 columns);
        see :func:`geomgen.io.image_grid` for the size.

    Raises:
        InvalidInputError: bad ``num``/``view``/``indices``, or samples without images.
    """
    import torch

    from geomgen import checks as V
    from geomgen.io.images import colorize_depth, image_grid

    fn = "make_contact_sheet"
    num = V.check_int(num, "num", min_value=1, fn=fn)
    tile_size = V.check_int(tile_size, "tile_size", min_value=1, fn=fn)
    if indices is None:
        indices = pick_indices(dataset, num)
    if not indices:
        raise InvalidInputError("make_contact_sheet: no samples to show (empty dataset or indices)")
    tiles: list[torch.Tensor] = []
    names: list[str] = []
    for i in indices:
        s = dataset[i]
        if "images" not in s:
            raise InvalidInputError(f"make_contact_sheet: sample {i} of {type(dataset).__name__} has no images")
        S = s["images"].shape[0]
        view = V.check_int(view, "view", min_value=0, max_value=S - 1, fn=fn)
        image = s["images"][view].float()
        H, W = image.shape[-2:]
        f = max(1, -(-tile_size // max(H, W)))
        blank = torch.ones(3, H * f, W * f)
        tiles.append(_upsample(image, f))
        names.append(f"{s.get('id', i)}")
        if "depths" in s:
            d = s["depths"][view].float()
            m = s["masks"][view] if "masks" in s else d > 0
            tiles.append(_upsample(colorize_depth(d, m), f) if bool(m.any()) else blank)
            names.append(f"depth {float(d[m].min()):.2f}-{float(d[m].max()):.2f}" if bool(m.any()) else "depth (empty)")
        else:
            tiles.append(blank)
            names.append("no depth")
        if "masks" in s:
            m = s["masks"][view]
            tiles.append(_upsample(m.float()[None].expand(3, -1, -1), f))
            names.append(f"mask {float(m.float().mean()):.0%}")
        else:
            tiles.append(blank)
            names.append("no mask")
        tiles.append(_render_gt(s, view, (H * f, W * f)) if "verts" in s and "K" in s else blank)
        names.append(f"mesh az{GT_VIEW[0]:.0f} el{GT_VIEW[1]:.0f}" if "verts" in s and "K" in s else "no mesh")
    return image_grid(tiles, 4, labels=names if labels else None)


def _render_gt(s: dict[str, Any], view: int, hw: tuple[int, int]) -> Any:
    """The GT mesh rendered from :data:`GT_VIEW` at the distance of the sample's camera."""
    import torch

    from geomgen.render import PerspectiveCameras, orbit_poses, render_meshes
    from geomgen.structures import Meshes

    K = s["K"][view].double().clone()
    H0, W0 = s["images"].shape[-2:]
    K[0] *= hw[1] / W0
    K[1] *= hw[0] / H0
    dist = float(s["world_from_camera"][view, :3, 3].norm())
    pose = orbit_poses(GT_VIEW[0], GT_VIEW[1], max(dist, 1e-3), up=(0.0, 1.0, 0.0)).double()
    mesh = Meshes([s["verts"].float()], [s["faces"]])
    cams = PerspectiveCameras(K.float(), pose.float(), hw)
    return render_meshes(mesh, cams, colors=torch.tensor([0.55, 0.7, 0.9])).image[0]
