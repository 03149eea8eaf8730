"""Sample image feature maps at vertex positions ("perceptual feature pooling").

Shape letters used in this module:

* ``N`` - batch size (images = meshes / point clouds)
* ``C`` - channels of one feature map (``sum(C)`` over a list of maps)
* ``H``, ``W`` - height and width of one feature map
* ``V`` - (padded) number of vertices / points per item, ``sum(V)`` packed

Coordinate convention (PyTorch3D's ``vert_align`` and
:func:`torch.nn.functional.grid_sample`): the vertex ``x`` and ``y``
coordinates are *normalised image coordinates*, ``x`` to the right and ``y``
**down**: ``(-1, -1)`` is the top-left and ``(+1, +1)`` the bottom-right of
the map (the centres of the corner pixels with ``align_corners=True``, the
outer corners of those pixels with ``False``).  ``z`` is ignored.  Note that
this is *not* PyTorch3D's NDC camera space (``+x`` left, ``+y`` up): project
vertices to the image first and flip the axes as needed.  In the pixel
convention of :class:`~geomgen.structures.DepthMaps` (pixel ``(u, v)`` centred
at ``(u + 0.5, v + 0.5)``, image spanning ``[0, W] x [0, H]``) the
``align_corners=False`` coordinates are ``x = 2 u_px / W - 1``,
``y = 2 v_px / H - 1``.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F

from geomgen import checks as V

__all__ = ["vert_align"]

_FN = "vert_align"


def _grid_of(verts: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(N, V, >=2)`` positions and, for structures, the padded-to-packed index."""
    if isinstance(verts, torch.Tensor):
        V.check_tensor(verts, "verts", ndim=3, shape_desc="(N, V, 3)", floating=True, fn=_FN)
        if verts.shape[2] < 2:
            raise V.fail("verts", f"must have at least 2 coordinates (x, y) per vertex, got {verts.shape[2]}", _FN)
        return verts, None
    if callable(getattr(verts, "verts_padded", None)) and callable(getattr(verts, "verts_padded_to_packed_idx", None)):
        return verts.verts_padded(), verts.verts_padded_to_packed_idx()
    if callable(getattr(verts, "points_padded", None)) and callable(getattr(verts, "padded_to_packed_idx", None)):
        return verts.points_padded(), verts.padded_to_packed_idx()
    raise V.fail(
        "verts",
        f"must be a (N, V, 3) tensor, a Meshes or a PointClouds, got {type(verts).__name__}",
        _FN,
    )


def vert_align(
    feats: torch.Tensor | Sequence[torch.Tensor],
    verts: Any,
    return_packed: bool = False,
    interp_mode: str = "bilinear",
    padding_mode: str = "zeros",
    align_corners: bool = True,
) -> torch.Tensor:
    """Sample feature maps at the ``(x, y)`` positions of vertices.

    Same signature, defaults and results as PyTorch3D's ``vert_align``
    (see the module docstring for the coordinate convention).  One
    difference: with a PointClouds and ``return_packed=True`` we return the
    packed ``(sum(V), C)`` features; PyTorch3D returns ``(N * max(V), C)``
    padded rows there.

    Args:
        feats: ``(N, C, H, W)`` feature maps, or a list of such maps whose
            ``C``, ``H``, ``W`` may differ (e.g. levels of a feature pyramid);
            the samples of each map are concatenated along channels, in list
            order.
        verts: ``(N, V, 3)`` tensor (only ``x``, ``y`` are used; ``(N, V, 2)``
            works too), or a :class:`~geomgen.structures.Meshes` /
            :class:`~geomgen.structures.PointClouds` (their padded
            vertices/points are used).
        return_packed: return ``(sum(V), sum(C))`` features of the packed
            vertices of a Meshes / PointClouds; for a tensor ``verts`` the
            ``(N * V, sum(C))`` flattening.
        interp_mode: ``"bilinear"`` or ``"nearest"`` (``grid_sample``'s ``mode``).
        padding_mode: ``"zeros"``, ``"border"`` or ``"reflection"``: value of
            positions outside ``[-1, 1]``.
        align_corners: see the module docstring (``grid_sample``'s meaning).

    Returns:
        ``(N, V, sum(C))`` sampled features (padded rows of a ragged batch are
        the samples at the padding position ``(0, 0)``), or the packed view
        above.  Dtype of ``feats``; differentiable w.r.t. ``feats`` and the
        vertex positions (bilinear mode).

    Raises:
        InvalidInputError: wrong types/shapes/devices, batch sizes that differ
            between ``feats`` and ``verts``, unknown modes.
    """
    maps = [feats] if isinstance(feats, torch.Tensor) else feats
    if not isinstance(maps, (list, tuple)) or len(maps) == 0:
        raise V.fail("feats", f"must be a (N, C, H, W) tensor or a non-empty list of them, got {feats!r:.60}", _FN)
    V.check_choice(interp_mode, "interp_mode", ("bilinear", "nearest"), fn=_FN)
    V.check_choice(padding_mode, "padding_mode", ("zeros", "border", "reflection"), fn=_FN)
    V.check_bool(align_corners, "align_corners", fn=_FN)
    V.check_bool(return_packed, "return_packed", fn=_FN)
    pos, pad2pack = _grid_of(verts)
    n = pos.shape[0]
    for i, fm in enumerate(maps):
        name = "feats" if isinstance(feats, torch.Tensor) else f"feats[{i}]"
        V.check_tensor(fm, name, ndim=4, shape_desc="(N, C, H, W)", floating=True, fn=_FN)
        if fm.shape[0] != n:
            raise V.fail(name, f"must have the batch size N={n} of 'verts', got {fm.shape[0]}", _FN)
        if fm.device != pos.device:
            raise V.fail(name, f"must be on the device of 'verts' ({pos.device}), got {fm.device}", _FN)
        if fm.dtype != maps[0].dtype:
            raise V.fail(name, f"must have the dtype of feats[0] ({maps[0].dtype}), got {fm.dtype}", _FN)
    grid = pos[:, None, :, :2].to(maps[0].dtype)  # (N, 1, V, 2)
    samples = [
        F.grid_sample(fm, grid, mode=interp_mode, padding_mode=padding_mode, align_corners=align_corners)[:, :, 0]
        for fm in maps
    ]  # each (N, C_k, V)
    out = (samples[0] if len(samples) == 1 else torch.cat(samples, dim=1)).transpose(1, 2)  # (N, V, sum(C))
    if not return_packed:
        return out
    flat = out.reshape(-1, out.shape[-1])
    return flat if pad2pack is None else flat[pad2pack]
