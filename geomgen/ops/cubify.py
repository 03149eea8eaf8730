"""Cubify: a closed box surface around the occupied voxels of a batch of grids.

Shape letters: ``N`` grids, ``D``, ``H``, ``W`` voxels along z, y, x
(``grid[n, k, j, i]`` is voxel ``(k, j, i)`` with x index ``i``, as in
:class:`~geomgen.structures.Voxels`), ``V``/``F`` vertices/faces of one mesh.

Conventions
-----------
* **Occupied.**  Raw tensors: ``value >= thresh`` (default 0.5), exactly
  PyTorch3D's test (``voxels.ge(thresh)``; its docstring says "larger than"
  but the code uses ``>=``).  :class:`Voxels`: :meth:`Voxels.occupancy`
  with ``thresh`` (occupancy: ``value >= thresh``, default 0.5; sdf:
  ``value <= thresh``, default 0).  ``thresh`` is rounded to the values'
  dtype first (as torch's ``voxels >= thresh`` does); bool/integer values
  are compared as float32.
* **Placement.**  Voxel ``(k, j, i)`` becomes the box ``[i, i+1] x [j, j+1]
  x [k, k+1]`` in grid units for a raw tensor (vertices are grid corners with
  integer coordinates, x, y, z order), and ``origin + [i, i+1] x ... *
  voxel_size`` in world units for a :class:`Voxels` (exactly the region the
  voxel covers).  PyTorch3D instead maps the grid to NDC ``[-1, 1]``; pass
  ``align="topleft" | "corner" | "center"`` (raw tensors only) for its
  layout: coordinate ``c`` (x, y or z, with grid size ``S`` = W, H or D
  along it) becomes ``2 c / (S - 1) - 1`` for ``"topleft"``,
  ``2 c / S - 1`` for ``"corner"`` and ``2 (c - 0.5) / (S - 1) - 1`` for
  ``"center"``.
* **Topology.**  Vertices are shared grid corners (one per used corner);
  faces between two occupied voxels are dropped; every remaining side is
  two triangles, counter-clockwise seen from outside (right-hand normals
  point out of the occupied region, ``Meshes.volume()`` is the occupied
  volume).  The result is closed; it is a 2-manifold unless two occupied
  voxels touch only along an edge (that grid edge then has 4 faces) or only
  at a corner (a non-manifold vertex), as in PyTorch3D.  Voxels on the grid
  border get their outer sides (the region outside the grid counts as
  empty).
* **Order.**  Vertices in flat corner order ``(kc, jc, ic)``; faces by voxel
  in ``(k, j, i)`` order, then side ``-x, +x, -y, +y, -z, +z``, two
  triangles each.  Both backends give identical meshes.
* **Empty.**  A grid with no occupied voxel gives a mesh with 0 vertices
  and 0 faces.
* Not differentiable (the output only depends on the thresholded mask).
* Backends: ``"auto"`` runs the numba kernel on CPU tensors (in the calling
  thread unless ``workers`` asks for more) and the torch reference
  elsewhere; both give identical meshes.

PyTorch3D's ``feats`` (a per-face ``TexturesAtlas``, ``align="center"``
only) and ``device`` arguments are not offered: ``return_face_voxels=True``
gives each face's voxel, with which any per-voxel feature can be gathered
(``feats.permute(0, 2, 3, 4, 1).reshape(-1, K)[face_voxels]``), and the
output lives on the input's device (use ``.to()``).
"""

from __future__ import annotations


import numpy as np
import torch

from geomgen import checks as V
from geomgen.backend import OP_BACKENDS, check_backend, require_pytorch3d, resolve_backend
from geomgen.ops.marching_cubes import _resolve_workers
from geomgen.structures import Meshes, Voxels

__all__ = ["cubify", "CUBIFY_BACKENDS"]

_FN = "cubify"

#: Accepted values of ``cubify(..., backend=...)`` (from :data:`geomgen.backend.OP_BACKENDS`).
CUBIFY_BACKENDS = OP_BACKENDS[_FN].names

_ALIGNS = (None, "topleft", "corner", "center")


def _check_no_nan(vals: torch.Tensor) -> None:
    """Raise naming the first NaN of ``vals`` (N, D, H, W); Inf is a valid value here."""
    nan = torch.isnan(vals)
    if bool(nan.any()):
        first = tuple(int(i) for i in nan.nonzero()[0].tolist())
        raise V.fail("voxels", f"must not contain NaN, but has {int(nan.sum())} (first at index {first})", _FN)


def _quad_tris_t(device: torch.device) -> torch.Tensor:
    from geomgen.kernels.cubify_numba import QUAD_TRIS

    return torch.from_numpy(QUAD_TRIS.copy()).to(device)


def _cubify_torch_one(
    mask: torch.Tensor, origin: torch.Tensor, size: torch.Tensor, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Reference on one ``(D, H, W)`` bool mask: ``verts``, ``faces``, ``face_voxels``."""
    D, H, W = mask.shape
    dev = mask.device
    p = torch.nn.functional.pad(mask.to(torch.uint8), (1, 1, 1, 1, 1, 1)).bool()
    c = p[1:-1, 1:-1, 1:-1]
    # neighbour is empty, per side -x, +x, -y, +y, -z, +z
    empty_nb = torch.stack(
        [
            ~p[1:-1, 1:-1, :-2], ~p[1:-1, 1:-1, 2:],
            ~p[1:-1, :-2, 1:-1], ~p[1:-1, 2:, 1:-1],
            ~p[:-2, 1:-1, 1:-1], ~p[2:, 1:-1, 1:-1],
        ],
        dim=-1,
    ) & c[..., None]  # (D, H, W, 6)
    sides = empty_nb.nonzero()  # (Q, 4): k, j, i, side in output order
    if sides.numel() == 0:
        empty = torch.zeros((0, 3), dtype=torch.int64, device=dev)
        return torch.zeros((0, 3), dtype=dtype, device=dev), empty, torch.zeros(0, dtype=torch.int64, device=dev)
    quad = _quad_tris_t(dev)[sides[:, 3]]  # (Q, 2, 3, 3) offsets dx, dy, dz
    kc = sides[:, 0, None, None] + quad[..., 2]
    jc = sides[:, 1, None, None] + quad[..., 1]
    ic = sides[:, 2, None, None] + quad[..., 0]
    corner = ((kc * (H + 1) + jc) * (W + 1) + ic).reshape(-1, 3)  # (2Q, 3) flat corner index
    used = torch.zeros((D + 1) * (H + 1) * (W + 1), dtype=torch.bool, device=dev)
    used[corner.reshape(-1)] = True
    ids = torch.cumsum(used, 0) - 1
    faces = ids[corner]
    cflat = used.nonzero().squeeze(1)
    ci = cflat % (W + 1)
    cj = torch.div(cflat, W + 1, rounding_mode="floor") % (H + 1)
    ck = torch.div(cflat, (W + 1) * (H + 1), rounding_mode="floor")
    verts = origin + torch.stack([ci, cj, ck], dim=1).to(dtype) * size
    face_vox = ((sides[:, 0] * H + sides[:, 1]) * W + sides[:, 2]).repeat_interleave(2)
    return verts, faces, face_vox


def _cubify_numba_one(
    vals: torch.Tensor, thresh: float, greater: bool, origin: torch.Tensor, size: torch.Tensor,
    dtype: torch.dtype, want_fvox: bool, workers: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """Numba backend on one CPU grid of values; None when it holds NaN."""
    from geomgen.kernels.cubify_numba import cubify_numba

    arr = vals.detach().contiguous().numpy()
    verts, faces, fvox, n_bad = cubify_numba(
        arr, thresh, greater, origin.to(torch.float64).numpy(), size.to(torch.float64).numpy(),
        np.dtype(str(dtype).replace("torch.", "")), want_fvox, workers,
    )
    if n_bad:
        return None
    return torch.from_numpy(verts), torch.from_numpy(faces), torch.from_numpy(fvox)


def _cubify_pytorch3d_one(mask: torch.Tensor, origin: torch.Tensor, size: torch.Tensor,
                          dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    p3d_cubify = require_pytorch3d(_FN, "pytorch3d.ops").cubify
    # pad by one empty voxel: PyTorch3D's cubify fails on axes of size 1
    padded = torch.nn.functional.pad(mask.float(), (1, 1, 1, 1, 1, 1))
    D, H, W = padded.shape
    m = p3d_cubify(padded[None], 0.5, align="corner")
    verts, faces = m.verts_list()[0], m.faces_list()[0]
    if faces.numel() == 0:
        return (torch.zeros((0, 3), dtype=dtype, device=mask.device),
                torch.zeros((0, 3), dtype=torch.int64, device=mask.device), torch.zeros(0, dtype=torch.int64))
    # "corner": c_ndc = 2 c / S - 1  ->  c = (c_ndc + 1) S / 2 (rounded: grid corners), minus the padding
    s = torch.tensor([W, H, D], dtype=torch.float64, device=verts.device)
    grid = ((verts.double() + 1.0) * 0.5 * s).round() - 1.0
    # renumber the vertices in our order (flat corner index (kc, jc, ic))
    gi = grid.to(torch.int64)
    key = (gi[:, 2] * (H - 1) + gi[:, 1]) * (W - 1) + gi[:, 0]
    order = torch.argsort(key)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(order.numel(), device=order.device)
    grid, faces = grid[order], rank[faces]
    return origin + grid.to(dtype) * size, faces, torch.zeros(0, dtype=torch.int64)


def cubify(
    voxels: Voxels | torch.Tensor,
    thresh: float | None = None,
    *,
    align: str | None = None,
    return_face_voxels: bool = False,
    backend: str = "auto",
    workers: int = 1,
) -> Meshes | tuple[Meshes, torch.Tensor]:
    """Replace every occupied voxel by a cube; shared corners, no interior faces.

    Same name and occupancy test as PyTorch3D's ``cubify(voxels, thresh)``;
    see the module docstring for placement (grid units or world units instead
    of PyTorch3D's NDC, unless ``align`` is given), orientation, manifoldness
    and ordering.

    Args:
        voxels: a :class:`~geomgen.structures.Voxels` batch (cubes placed in
            world space by its ``origin`` / ``voxel_size``), or a raw tensor
            ``(N, D, H, W)`` or ``(D, H, W)`` of occupancy values (any real
            dtype; bool works with the default threshold).
        thresh: occupancy threshold.  Raw tensors and occupancy Voxels:
            occupied when ``value >= thresh`` (default 0.5).  sdf Voxels:
            occupied when ``value <= thresh`` (default 0).
        align: raw tensors only: ``None`` (default; grid units, voxel ``(k,
            j, i)`` is ``[i, i+1] x [j, j+1] x [k, k+1]``) or PyTorch3D's NDC
            layouts ``"topleft"``, ``"corner"``, ``"center"``.
        return_face_voxels: also return ``(sum(F),)`` int64: for each packed
            face the flat index ``((n * D + k) * H + j) * W + i`` of its voxel.
        backend: ``"auto"`` (numba on CPU, torch elsewhere), ``"numba"``,
            ``"torch"`` or ``"pytorch3d"`` (its ``cubify``; placement and
            dtype converted to ours, face order differs, no face voxels).
        workers: threads of the numba backend, as in
            :func:`~geomgen.ops.marching_cubes.marching_cubes`: 1 (default)
            runs in the calling thread, ``n > 1`` uses ``n`` threads, -1 the
            thread budget (:func:`geomgen.backend.thread_budget`).  Other
            backends ignore it.

    Returns:
        :class:`~geomgen.structures.Meshes` of ``N`` meshes on the input's
        device, vertices in its float dtype (the default float dtype for
        integer/bool input, float32 for float16/bfloat16), faces int64; with
        ``return_face_voxels`` a tuple ``(meshes, face_voxels)``.

    Raises:
        InvalidInputError: wrong type/shape/dtype of ``voxels``, NaN values,
            a non-finite ``thresh``, ``align`` unknown or given with a Voxels
            (or ``"topleft"``/``"center"`` with a size-1 axis), an unknown
            ``backend``, ``return_face_voxels`` with ``backend="pytorch3d"``,
            ``workers`` 0 or < -1.
        BackendUnavailableError: ``backend="numba"`` on a non-CPU tensor,
            ``backend="pytorch3d"`` without PyTorch3D.
    """
    check_backend(_FN, backend)
    V.check_bool(return_face_voxels, "return_face_voxels", fn=_FN)
    if align not in _ALIGNS:
        raise V.fail("align", f"must be one of {list(_ALIGNS)!r}, got {align!r}", _FN)
    if thresh is not None:
        thresh = V.check_float(thresh, "thresh", fn=_FN)
    if isinstance(voxels, Voxels):
        if align is not None:
            raise V.fail("align", "must be None for a Voxels input (its origin and voxel_size place the cubes)", _FN)
        vals = voxels.grids
        greater = voxels.kind == "occupancy"
        t = (0.5 if greater else 0.0) if thresh is None else thresh
        origin, size = voxels.origin, voxels.voxel_size
        dtype = vals.dtype
    elif isinstance(voxels, torch.Tensor):
        V.check_tensor(voxels, "voxels", ndim=(3, 4), shape_desc="(N, D, H, W) or (D, H, W)", fn=_FN)
        if voxels.is_complex():
            raise V.fail("voxels", f"must have real values, got dtype {voxels.dtype}", _FN)
        vals = voxels if voxels.dim() == 4 else voxels.unsqueeze(0)
        greater = True
        t = 0.5 if thresh is None else thresh
        dtype = vals.dtype if vals.is_floating_point() else torch.get_default_dtype()
        n = vals.shape[0]
        origin = torch.zeros((n, 3), dtype=torch.float64, device=vals.device)
        size = torch.ones((n, 3), dtype=torch.float64, device=vals.device)
    else:
        raise V.fail("voxels", f"must be a Voxels or a torch.Tensor, got {type(voxels).__name__}", _FN)
    vals = vals.detach()
    if vals.dtype not in (torch.float32, torch.float64):
        # bool / integer / half values: compared as float32 (exact for 0/1 and small integers)
        vals = vals.to(torch.float32)
    t = float(torch.tensor(t, dtype=vals.dtype))  # compare in the values' dtype, as torch does
    if dtype in (torch.float16, torch.bfloat16):
        dtype = torch.float32
    N, D, H, W = vals.shape
    n_threads = _resolve_workers(workers, D * H * W, _FN)
    if align in ("topleft", "center") and min(D, H, W) < 2:
        raise V.fail("align", f"{align!r} divides by (size - 1): every axis needs >= 2 voxels, got {(D, H, W)}", _FN)
    if backend == "pytorch3d" and return_face_voxels:
        raise V.fail("return_face_voxels", "is not supported with backend='pytorch3d'", _FN)
    use = resolve_backend(_FN, backend, device=vals.device)
    mask = None
    if use != "numba":  # the numba kernel thresholds and checks for NaN in its first pass
        _check_no_nan(vals)
        mask = vals >= t if greater else vals <= t

    origin = origin.detach().to(dtype)
    size = size.detach().to(dtype)
    if align is not None:
        # grid corner c -> NDC: 2 (c - shift) / (S - margin) - 1, per axis (S = W, H, D)
        s = torch.tensor([W, H, D], dtype=dtype, device=vals.device)
        margin = 0.0 if align == "corner" else 1.0
        shift = 0.5 if align == "center" else 0.0
        size = (2.0 / (s - margin)).expand(N, 3)
        origin = (-2.0 * shift / (s - margin) - 1.0).expand(N, 3)

    verts_list, faces_list, fvox_list = [], [], []
    for n in range(N):
        if use == "numba":
            out = _cubify_numba_one(vals[n], t, greater, origin[n], size[n], dtype, return_face_voxels, n_threads)
            if out is None:
                _check_no_nan(vals)  # raises, naming the first NaN
            v, f, fv = out  # type: ignore[misc]
        elif use == "pytorch3d":
            v, f, fv = _cubify_pytorch3d_one(mask[n], origin[n], size[n], dtype)
        else:
            v, f, fv = _cubify_torch_one(mask[n], origin[n], size[n], dtype)
        verts_list.append(v)
        faces_list.append(f)
        if return_face_voxels:
            fvox_list.append(fv + n * D * H * W)
    meshes = Meshes(verts_list, faces_list, validate=False)  # valid by construction
    if return_face_voxels:
        fvox = torch.cat(fvox_list) if fvox_list else torch.zeros(0, dtype=torch.int64, device=vals.device)
        return meshes, fvox
    return meshes
