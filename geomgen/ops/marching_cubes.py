"""Marching cubes: the triangle mesh of a level set of a batch of dense volumes.

Shape letters: ``N`` volumes, ``D``, ``H``, ``W`` samples along z, y, x
(``volume[n, k, j, i]`` is the sample with x index ``i``, y index ``j``, z
index ``k``, as in :class:`~geomgen.structures.Voxels`), ``V``/``F`` vertices
and faces of one output mesh.

Conventions
-----------
* **Inside.**  ``kind="occupancy"``: a sample is inside when
  ``value >= level`` (default level 0.5); ``kind="sdf"``: inside when
  ``value <= level`` (default 0).  A sample exactly *at* the level therefore
  counts as inside, the same rule as :meth:`Voxels.occupancy`, so
  ``marching_cubes`` and ``voxels.occupancy(level)`` always agree.  Such a
  sample gets the vertices of its crossed edges exactly on it (zero-area
  triangles may appear; the mesh stays closed).  The level is rounded to
  the volume's dtype before comparing (as torch's ``vol >= level`` does),
  so every backend classifies alike.
* **Placement.**  For a :class:`Voxels` the sample ``(k, j, i)`` sits at its
  voxel centre ``origin + (i + 0.5, j + 0.5, k + 0.5) * voxel_size`` (per
  grid).  For a raw tensor it sits at ``origin + (i, j, k) * spacing``
  (defaults ``origin = 0``, ``spacing = 1``: grid index units, x, y, z order).
  Note that ``spacing`` is x, y, z ordered, unlike scikit-image's (which
  follows the array axes z, y, x).
* **Vertices.**  Exactly one vertex per crossed grid edge (an edge whose two
  samples are on different sides), placed by linear interpolation of the two
  values, shared by every triangle around that edge.  Vertex coordinates are
  x, y, z (scikit-image returns array-index order z, y, x).
* **Faces.**  Counter-clockwise seen from outside: right-hand normals point
  from inside to outside (``Meshes.volume()`` is positive).  The mesh is
  closed (every edge shared by exactly two faces with opposite directions)
  wherever the level set does not reach the volume's boundary samples; it is
  open along the boundary (pad the volume with outside values to close it).
  The case table is generated from one rule (see
  :mod:`geomgen.kernels._mc_tables`): on a face with two diagonal inside
  corners the inside corners are kept apart, so two blobs that come within
  one sample of each other stay two separate closed surfaces.
* **Empty results.**  A volume with no crossed edge (constant, all inside,
  all outside, or a level outside the data range) gives a mesh with 0
  vertices and 0 faces, not an error (scikit-image raises instead).
* **Gradients.**  Vertex positions are differentiable w.r.t. the volume
  values (through the interpolation weight ``t = (level - a) / (b - a)``)
  and w.r.t. ``origin`` / ``voxel_size`` / ``spacing`` tensors (numba and
  torch backends; the numba kernel then only supplies the topology and the
  positions are recomputed with torch ops); the topology (which edges are
  crossed) is piecewise constant and has no gradient.  The ``"pytorch3d"``
  backend is not differentiable.

PyTorch3D
---------
``pytorch3d.ops.marching_cubes.marching_cubes(vol_batch, isolevel=None,
return_local_coords=True)`` treats ``value < isolevel`` as inside, which is
our ``kind="sdf"`` (up to samples exactly at the level), and returns lists of
vertices and faces.  Its default ``isolevel`` is ``(max + min) / 2`` per
volume; ours is the kind's level (0.5 or 0).  ``return_local_coords=False``
gives the same coordinates as our raw-tensor default; for its
``return_local_coords=True`` pass ``spacing=(2/(W-1), 2/(H-1), 2/(D-1))`` and
``origin=(-1, -1, -1)``.  Raw tensors default to ``kind="occupancy"`` (the
default kind of :class:`Voxels`; larger values inside, like scikit-image's
default ``gradient_direction="descent"``): pass ``kind="sdf"`` for
PyTorch3D's orientation.

Backends
--------
``"auto"``: numba kernel (:mod:`geomgen.kernels.marching_cubes_numba`) for CPU
tensors, the torch reference for other devices (:func:`geomgen.backend.resolve_backend`);
``"numba"`` / ``"torch"`` force one; ``"pytorch3d"`` runs PyTorch3D's extension
(its own table and vertex order: no closedness guarantee; output converted to
our placement and orientation).  The numba and torch backends give identical
meshes (same vertex and face order).  The numba kernel runs in the calling
thread unless ``workers`` asks for more (scipy's convention, -1 = the whole
thread budget :func:`geomgen.backend.thread_budget`, i.e.
``torch.get_num_threads()``): on a busy machine extra threads often cost
more than they save, so one is the default.  The torch
reference holds an int64 id per grid edge (``3 * D * H * W`` entries, a few
hundred MB at 256^3) and is meant for accelerators and tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from geomgen import checks as V
from geomgen.backend import OP_BACKENDS, check_backend, require_pytorch3d, resolve_backend, thread_budget
from geomgen.structures import Meshes, Voxels
from geomgen.structures._checks import broadcast_batch_param

__all__ = ["marching_cubes", "MC_BACKENDS"]

_FN = "marching_cubes"

#: Accepted values of ``marching_cubes(..., backend=...)`` (from :data:`geomgen.backend.OP_BACKENDS`).
MC_BACKENDS = OP_BACKENDS[_FN].names

_KINDS = ("occupancy", "sdf")
_DEFAULT_LEVEL = {"occupancy": 0.5, "sdf": 0.0}

#: Volumes with fewer samples always run the numba kernel in the calling
#: thread: below this size starting threads costs more than it saves.
_PARALLEL_MIN_SAMPLES = 1 << 18


def _resolve_workers(workers: Any, size: int, fn: str) -> int:
    """Validate ``workers`` (scipy's convention: 1 = calling thread, n > 1 = up to
    n threads, -1 = :func:`geomgen.backend.thread_budget`) and return the thread count."""
    workers = V.check_int(workers, "workers", min_value=-1, fn=fn)
    if workers == 0:
        raise V.fail("workers", "must be >= 1 or -1 (all threads), got 0", fn)
    if size < _PARALLEL_MIN_SAMPLES or workers == 1:
        return 1
    if workers == -1:
        return thread_budget()
    return workers


# --------------------------------------------------------------------------- #
# Argument handling
# --------------------------------------------------------------------------- #


def _batch_vectors(
    value: Any, name: str, n: int, dtype: torch.dtype, device: torch.device, default: float, positive: bool
) -> torch.Tensor:
    """``(N, 3)`` tensor from None, a scalar, a (3,) or an (N, 3) value."""
    if isinstance(value, torch.Tensor) and value.device != device:
        raise V.fail(name, f"must be on the volume's device ({device}), got {value.device}", _FN)
    try:
        t = broadcast_batch_param(value, name, n, 3, dtype, device, default=default)
    except Exception as exc:  # InvalidInputError from the structures helper; re-word with fn
        raise V.fail(name, f"must be a scalar, a (3,) or an ({n}, 3) sequence of numbers ({exc})", _FN) from exc
    d = t.detach()
    if not bool(torch.isfinite(d).all()):
        raise V.fail(name, "must be finite", _FN)
    if positive and not bool((d > 0).all()):
        raise V.fail(name, "must be > 0", _FN)
    return t


def _parse(
    volume: Any, level: Any, kind: Any, spacing: Any, origin: Any
) -> tuple[torch.Tensor, str, float, torch.Tensor, torch.Tensor]:
    """Validated ``(grids (N, D, H, W) float, kind, level, sample0 (N, 3), step (N, 3))``.

    ``sample0`` is the world position of sample ``[n, 0, 0, 0]`` and ``step``
    the xyz distance between neighbouring samples.
    """
    if kind is not None:
        V.check_choice(kind, "kind", _KINDS, fn=_FN)
    if isinstance(volume, Voxels):
        if kind is not None and kind != volume.kind:
            raise V.fail("kind", f"is {kind!r} but the Voxels have kind {volume.kind!r} (leave it None)", _FN)
        for name, val in (("spacing", spacing), ("origin", origin)):
            if val is not None:
                raise V.fail(name, "must be None for a Voxels input (its origin and voxel_size are used)", _FN)
        grids = volume.grids
        kind = volume.kind
        step = volume.voxel_size
        sample0 = volume.origin + 0.5 * step
    elif isinstance(volume, torch.Tensor):
        V.check_tensor(volume, "volume", ndim=(3, 4), shape_desc="(N, D, H, W) or (D, H, W)", fn=_FN)
        if volume.is_complex():
            raise V.fail("volume", f"must have real values, got dtype {volume.dtype}", _FN)
        grids = volume if volume.dim() == 4 else volume.unsqueeze(0)
        if not grids.is_floating_point():
            grids = grids.to(torch.get_default_dtype())
        kind = "occupancy" if kind is None else kind
        n = grids.shape[0]
        step = _batch_vectors(spacing, "spacing", n, grids.dtype, grids.device, 1.0, True)
        sample0 = _batch_vectors(origin, "origin", n, grids.dtype, grids.device, 0.0, False)
    else:
        raise V.fail("volume", f"must be a Voxels or a torch.Tensor, got {type(volume).__name__}", _FN)
    if grids.dtype in (torch.float16, torch.bfloat16):
        grids = grids.float()
        step, sample0 = step.float(), sample0.float()
    d, h, w = grids.shape[1:]
    if min(d, h, w) < 2:
        raise V.fail("volume", f"must have at least 2 samples along each axis, got (D, H, W) = ({d}, {h}, {w})", _FN)
    level = _DEFAULT_LEVEL[kind] if level is None else V.check_float(level, "level", fn=_FN)
    # compare in the volume's dtype (as torch does): every backend classifies alike
    level = float(torch.tensor(level, dtype=grids.dtype))
    return grids, kind, level, sample0, step


# --------------------------------------------------------------------------- #
# Vertex positions from crossed-edge codes (shared by both backends)
# --------------------------------------------------------------------------- #


def _verts_from_codes(
    vol: torch.Tensor, codes: torch.Tensor, level: float, sample0: torch.Tensor, step: torch.Tensor
) -> torch.Tensor:
    """``(V, 3)`` positions of the crossed edges ``codes = 3 * flat(lower sample) + axis``.

    Plain torch ops: differentiable w.r.t. ``vol`` (D, H, W), ``sample0`` (3,)
    and ``step`` (3,).
    """
    D, H, W = vol.shape
    flat = vol.reshape(-1)
    a = torch.div(codes, 3, rounding_mode="floor")
    axis = codes - 3 * a
    strides = torch.tensor([1, W, H * W], dtype=codes.dtype, device=codes.device)
    va = flat[a]
    vb = flat[a + strides[axis]]
    t = (level - va) / (vb - va)
    i = a % W
    j = torch.div(a, W, rounding_mode="floor") % H
    k = torch.div(a, H * W, rounding_mode="floor")
    g = torch.stack([i, j, k], dim=1).to(vol.dtype)
    onehot = torch.nn.functional.one_hot(axis, 3).to(vol.dtype)
    g = g + onehot * t[:, None]
    return sample0 + g * step


# --------------------------------------------------------------------------- #
# Reference implementation (pure torch, any device)
# --------------------------------------------------------------------------- #


def _tables_on(device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    from geomgen.kernels._mc_tables import mc_tables

    t = mc_tables()
    return (
        torch.from_numpy(t.tri.astype(np.int64)).to(device),
        torch.from_numpy(t.ntri.copy()).to(device),
        torch.from_numpy(t.edge_axis.copy()).to(device),
        torch.from_numpy(t.edge_offset.copy()).to(device),
    )


def _mc_torch_one(vol: torch.Tensor, level: float, greater: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Topology of one volume: ``codes`` (V,) and ``faces`` (F, 3), same order as the kernel."""
    D, H, W = vol.shape
    dev = vol.device
    v = vol.detach()
    ins = v >= level if greater else v <= level
    cross = torch.zeros((D, H, 3, W), dtype=torch.bool, device=dev)
    cross[:, :, 0, :-1] = ins[:, :, :-1] != ins[:, :, 1:]
    cross[:, :-1, 1, :] = ins[:, :-1, :] != ins[:, 1:, :]
    cross[:-1, :, 2, :] = ins[:-1, :, :] != ins[1:, :, :]
    flat = cross.reshape(-1)
    pos = flat.nonzero().squeeze(1)  # (V,) in (k, j, axis, i) order
    ids = torch.full((D * H * 3 * W,), -1, dtype=torch.int64, device=dev)
    ids[pos] = torch.arange(pos.numel(), device=dev)
    i = pos % W
    axis = torch.div(pos, W, rounding_mode="floor") % 3
    row = torch.div(pos, 3 * W, rounding_mode="floor")
    codes = (row * W + i) * 3 + axis

    tri, ntri, e_axis, e_off = _tables_on(dev)
    case = torch.zeros((D - 1, H - 1, W - 1), dtype=torch.int64, device=dev)
    for c in range(8):
        dx, dy, dz = c & 1, (c >> 1) & 1, (c >> 2) & 1
        case |= ins[dz : D - 1 + dz, dy : H - 1 + dy, dx : W - 1 + dx].to(torch.int64) << c
    cubes = (ntri[case] > 0).nonzero()  # (A, 3) k, j, i in order
    if cubes.numel() == 0:
        return codes, torch.zeros((0, 3), dtype=torch.int64, device=dev)
    kc, jc, ic = cubes.unbind(1)
    cc = case[kc, jc, ic]
    # (A, 12) vertex id of each cube edge: ids[(k + dz), (j + dy), axis, (i + dx)]
    eid = (
        ((kc[:, None] + e_off[None, :, 2]) * H + (jc[:, None] + e_off[None, :, 1])) * 3 + e_axis[None, :]
    ) * W + (ic[:, None] + e_off[None, :, 0])
    edge_ids = ids[eid]
    local = tri[cc]  # (A, T, 3), -1 padded
    valid = torch.arange(tri.shape[1], device=dev)[None, :] < ntri[cc][:, None]
    faces = torch.gather(edge_ids, 1, local.clamp(min=0).reshape(len(cc), -1)).reshape(local.shape)
    return codes, faces[valid]


# --------------------------------------------------------------------------- #
# Backends
# --------------------------------------------------------------------------- #


def _run_numba(vol: torch.Tensor, level: float, greater: bool, sample0: torch.Tensor, step: torch.Tensor,
               differentiable: bool, workers: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Numba backend on one CPU volume; None when the volume holds NaN/Inf."""
    from geomgen.kernels.marching_cubes_numba import marching_cubes_numba

    arr = vol.detach().contiguous().numpy()
    org = sample0.detach().to(torch.float64).numpy()
    sp = step.detach().to(torch.float64).numpy()
    verts, faces, codes, n_bad = marching_cubes_numba(
        arr, level, greater, org, sp, want_codes=differentiable, workers=workers
    )
    if n_bad:  # the kernel's first pass counts NaN/Inf (free); the caller names the first one
        return None
    faces_t = torch.from_numpy(faces)
    if differentiable:
        return _verts_from_codes(vol, torch.from_numpy(codes), level, sample0, step), faces_t
    return torch.from_numpy(verts), faces_t


def _run_pytorch3d(vol: torch.Tensor, level: float, greater: bool, sample0: torch.Tensor,
                   step: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    p3d_mc = require_pytorch3d(_FN, "pytorch3d.ops.marching_cubes").marching_cubes
    v = vol.detach().float()  # its extension takes float32 only
    # PyTorch3D: value < isolevel is inside; flip occupancy-like volumes to match
    src, iso = (-v, -level) if greater else (v, level)
    verts_l, faces_l = p3d_mc(src[None].contiguous(), isolevel=iso, return_local_coords=False)
    verts, faces = verts_l[0], faces_l[0]
    if not isinstance(verts, torch.Tensor) or verts.numel() == 0:
        return vol.new_zeros((0, 3)), torch.zeros((0, 3), dtype=torch.int64, device=vol.device)
    verts = sample0 + verts.to(vol.dtype) * step
    return verts, faces.to(torch.int64)


def marching_cubes(
    volume: Voxels | torch.Tensor,
    level: float | None = None,
    *,
    kind: str | None = None,
    spacing: float | Sequence[float] | torch.Tensor | None = None,
    origin: Sequence[float] | torch.Tensor | None = None,
    backend: str = "auto",
    workers: int = 1,
) -> Meshes:
    """Triangle mesh of the level set ``value == level`` of each volume.

    See the module docstring for the conventions (inside test, placement,
    orientation, closedness, PyTorch3D differences).

    Args:
        volume: a :class:`~geomgen.structures.Voxels` batch (its ``kind``,
            ``origin`` and ``voxel_size`` are used; samples at voxel centres),
            or a raw tensor ``(N, D, H, W)`` or ``(D, H, W)`` with ``D, H, W
            >= 2`` (integer/bool tensors are converted to the default float
            dtype, float16/bfloat16 to float32).  Values must be finite.
        level: iso level; default 0.5 for ``kind="occupancy"``, 0 for
            ``kind="sdf"``.
        kind: for raw tensors: ``"occupancy"`` (default; ``value >= level``
            is inside) or ``"sdf"`` (``value <= level`` is inside).  For a
            Voxels it must be None or equal to ``volume.kind``.
        spacing: raw tensors only: xyz distance between neighbouring samples,
            a positive scalar, ``(3,)`` or ``(N, 3)``; default 1.
        origin: raw tensors only: xyz world position of sample ``[0, 0, 0]``,
            ``(3,)`` or ``(N, 3)``; default 0.
        backend: ``"auto"``, ``"numba"`` (CPU tensors), ``"torch"`` or
            ``"pytorch3d"``.
        workers: threads of the numba backend, scipy's convention: 1
            (default) runs in the calling thread, ``n > 1`` shares the
            z-slices among ``n`` threads, -1 uses the thread budget
            (:func:`geomgen.backend.thread_budget`: ``torch.get_num_threads()``).
            Volumes under 2^18 samples always use one thread.  Other
            backends ignore it.

    Returns:
        :class:`~geomgen.structures.Meshes` of ``N`` meshes, vertices
        ``(V_n, 3)`` in the volume's float dtype on its device, faces
        ``(F_n, 3)`` int64 with outward right-hand normals.  Volumes without
        a crossing give empty meshes.  A ``(D, H, W)`` input gives ``N = 1``.

    Raises:
        InvalidInputError: ``volume`` of the wrong type or shape, fewer than 2
            samples along an axis, NaN/Inf values, a non-finite ``level``, an
            unknown ``kind``/``backend``, a ``kind`` that contradicts the
            Voxels, ``spacing``/``origin`` given with a Voxels, or of the
            wrong shape, non-positive spacing, ``workers`` 0 or < -1.
        BackendUnavailableError: ``backend="numba"`` on a non-CPU tensor;
            ``backend="pytorch3d"`` without PyTorch3D.
    """
    check_backend(_FN, backend)
    grids, kind, level, sample0, step = _parse(volume, level, kind, spacing, origin)
    n_threads = _resolve_workers(workers, int(grids[0].numel()) if len(grids) else 0, _FN)
    greater = kind == "occupancy"
    use = resolve_backend(_FN, backend, device=grids.device)
    if use != "numba":  # the numba kernel checks finiteness in its first pass
        V.check_finite(grids, "volume", fn=_FN)
    differentiable = torch.is_grad_enabled() and (
        grids.requires_grad or sample0.requires_grad or step.requires_grad
    )
    verts_list: list[torch.Tensor] = []
    faces_list: list[torch.Tensor] = []
    for n in range(grids.shape[0]):
        vol = grids[n]
        if use == "numba":
            out = _run_numba(vol, level, greater, sample0[n], step[n], differentiable, n_threads)
            if out is None:
                V.check_finite(grids, "volume", fn=_FN)  # raises, naming the first bad index
                raise V.fail("volume", "must be finite", _FN)  # pragma: no cover - unreachable
            verts, faces = out
        elif use == "pytorch3d":
            verts, faces = _run_pytorch3d(vol, level, greater, sample0[n], step[n])
        else:
            codes, faces = _mc_torch_one(vol, level, greater)
            verts = _verts_from_codes(vol, codes, level, sample0[n], step[n])
        verts_list.append(verts)
        faces_list.append(faces)
    # Built by construction: finite vertices, face indices in range.
    return Meshes(verts_list, faces_list, validate=False)
