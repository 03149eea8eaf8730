"""K nearest neighbours between batches of point clouds.

Shapes used in this module:

* ``N``  -- batch size (number of point-cloud pairs)
* ``P1`` -- (padded) number of query points per cloud in ``p1``
* ``P2`` -- (padded) number of reference points per cloud in ``p2``
* ``D``  -- point dimension (any ``D >= 1``; 3 for 3-D points)
* ``K``  -- number of neighbours asked for

Public API
----------
:func:`knn_points` (the dispatcher) and :func:`knn_gather`.  geomgen's own
modules that have validated their inputs already (Chamfer, F1, ...) call the
unchecked entry points :func:`knn_points_unchecked`,
:func:`nearest_neighbors_unchecked` and :func:`knn_gather_unchecked`, which skip
validation but choose their implementation the same way.  Results come as the
named tuple :class:`KNN` ``(dists, idx, knn)``, the same field names and order
as PyTorch3D's ``knn_points``, and ``dists`` are **squared** Euclidean distances,
as in PyTorch3D.

Padding convention (differs from PyTorch3D on ``idx`` only)
-----------------------------------------------------------
An output slot ``[n, i, k]`` is *invalid* when the query row is padding
(``i >= lengths1[n]``) or when the reference cloud has fewer than ``k + 1``
points (``k >= lengths2[n]``, which covers ``K > lengths2[n]``, ``K > P2`` and
empty reference clouds).  Invalid slots hold::

    dists[n, i, k] = 0      (same as PyTorch3D)
    idx[n, i, k]   = -1     (PyTorch3D documents 0 here)
    knn[n, i, k]   = 0      (same as PyTorch3D's knn_gather)

PyTorch3D's documentation says both ``dists`` and ``idx`` are "padded with
zeros" in these slots.  A zero index is a valid index (the first point of the
cloud), so code that does not also carry ``lengths`` cannot tell a real
neighbour from padding.  ``-1`` can never be a real index, so ``idx >= 0`` is a
complete validity mask, and :func:`knn_gather` turns ``-1`` into zero rows
without needing ``lengths``.  Code ported from PyTorch3D that indexes with
``idx`` directly must mask or ``clamp(min=0)`` first; code that only reads
``dists`` (e.g. Chamfer) behaves identically.  Gradients through invalid slots
are exactly zero.

Backends
--------
The choice goes through :func:`geomgen.backend.resolve_backend`.
``backend="auto"`` picks the fastest available implementation for the inputs:
the numba kernel (:mod:`geomgen.kernels.knn_numba`, a uniform grid searched
in parallel, ``O((P1 + P2) * few)`` instead of ``O(P1 * P2)``) for float32 /
float64 CPU tensors with ``D <= 3``, and the pure-torch reference
:func:`_knn_points_torch` otherwise (CUDA tensors, ``D > 3``, other dtypes).
``"torch"`` forces the reference; ``"numba"`` forces the kernel (CPU tensors
only; ``D > 3`` still runs the reference, float16/bfloat16 are searched in
float32); ``"pytorch3d"`` calls ``pytorch3d.ops.knn_points`` when it is
installed (results converted to the padding convention above) and raises
:class:`~geomgen.errors.BackendUnavailableError` otherwise.

The numba backend returns the same ``dists`` as the reference, bit for bit
(it computes them coordinate by coordinate in the input precision, in the
same order), and the same ``idx`` except among neighbours at exactly (or to
the last bit) equal distance: the kernel breaks ties by the lower index, the
reference by ``torch.topk``'s order.  It always returns sorted neighbours.
Its ``dists`` are differentiable through :class:`_KNNDists`, whose backward
scatters ``2 (p1 - p2[idx]) * grad`` (``sign(p1 - p2[idx]) * grad`` for
``norm=1``) into ``p1`` and ``p2`` -- the gradients the reference gets from
autograd.  numba never runs more threads than ``torch.get_num_threads()``
(:func:`geomgen.backend.kernel_threads`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from geomgen import checks as V
from geomgen.backend import OP_BACKENDS, check_backend, kernel_threads, require_pytorch3d, resolve_backend

__all__ = [
    "KNN",
    "knn_points",
    "knn_gather",
    "KNN_BACKENDS",
    "knn_points_unchecked",
    "nearest_neighbors_unchecked",
    "knn_gather_unchecked",
]

_FN = "knn_points"

#: Accepted values of ``knn_points(..., backend=...)`` (from :data:`geomgen.backend.OP_BACKENDS`).
KNN_BACKENDS = OP_BACKENDS[_FN].names

#: Point dimensions the numba kernel handles (smaller D is zero-padded to 3,
#: which changes no distance); larger D runs the torch reference.
_NUMBA_MAX_D = 3

#: Memory budget (bytes) for the working set of one block of the pairwise
#: distance matrix in the torch reference (about three block-sized buffers).
#: The reference never holds more than this (plus the (N, P1, K) outputs, and
#: at least one full row of P2 distances), whatever P1 and P2 are: a 65k x 65k
#: query works in a few MiB instead of 16 GiB.  Blocks of a few MiB also stay
#: in the CPU caches, which makes the element-wise passes several times faster
#: than with large blocks.
_CHUNK_BYTES = 4 * 2**20

#: The same budget on accelerators, where launch overhead rather than cache
#: size limits small blocks.
_CHUNK_BYTES_ACCEL = 256 * 2**20

#: Up to this D the block distances are accumulated coordinate by coordinate
#: (exact differences, same rounding as a direct kernel).  Above it the block
#: uses |a|^2 - 2ab + |b|^2 with a matmul (fast for feature vectors; only the
#: *choice* of neighbours is affected by its rounding, the returned ``dists``
#: are always recomputed from exact differences).
_EXACT_MAX_D = 16


class KNN(NamedTuple):
    """Result of :func:`knn_points`.

    Attributes:
        dists: ``(N, P1, K)`` squared Euclidean distances (0 in invalid slots).
        idx: ``(N, P1, K)`` int64 indices into ``p2`` (-1 in invalid slots).
        knn: ``(N, P1, K, D)`` neighbour coordinates when ``return_nn=True``
            (zeros in invalid slots), else ``None``.
    """

    dists: torch.Tensor
    idx: torch.Tensor
    knn: torch.Tensor | None


# --------------------------------------------------------------------------- #
# Reference implementation
# --------------------------------------------------------------------------- #


def _block_dists(a: torch.Tensor, b: torch.Tensor, norm: int) -> torch.Tensor:
    """Distances between rows of a (n, c, D) and b (n, P2, D) -> (n, c, P2).

    Squared L2 for ``norm=2``, L1 for ``norm=1``.
    """
    D = a.shape[-1]
    if D <= _EXACT_MAX_D:
        out = a.new_zeros(a.shape[0], a.shape[1], b.shape[1])
        for d in range(D):
            diff = a[:, :, d, None] - b[:, None, :, d]
            if norm == 2:
                out.addcmul_(diff, diff)
            else:
                out.add_(diff.abs_())
        return out
    if norm == 1:
        return torch.cdist(a, b, p=1.0)
    aa = a.square().sum(-1, keepdim=True)
    bb = b.square().sum(-1)[:, None, :]
    out = torch.baddbmm(aa + bb, a, b.transpose(1, 2), alpha=-2.0)
    return out.clamp_(min=0)


def _invalid_slots(
    lengths1: torch.Tensor, lengths2: torch.Tensor, P1: int, K: int, device: torch.device
) -> torch.Tensor:
    """``(N, P1, K)`` bool mask of the invalid output slots (see the module
    docstring): padded query rows ``i >= lengths1[n]`` and slots beyond each
    reference cloud's size ``k >= lengths2[n]``."""
    ar_k = torch.arange(K, device=device)
    ar_p = torch.arange(P1, device=device)
    return (ar_p[None, :, None] >= lengths1[:, None, None]) | (
        ar_k[None, None, :] >= lengths2[:, None, None]
    )


def _knn_idx_torch(
    p1: torch.Tensor,
    p2: torch.Tensor,
    lengths1: torch.Tensor,
    lengths2: torch.Tensor,
    K: int,
    norm: int,
    chunk_bytes: int,
) -> torch.Tensor:
    """Indices of the K nearest neighbours (no autograd); -1 in invalid slots."""
    N, P1, D = p1.shape
    P2 = p2.shape[1]
    device = p1.device
    idx = torch.full((N, P1, K), -1, dtype=torch.int64, device=device)
    Kc = min(K, P2)
    if N == 0 or P1 == 0 or Kc == 0:
        return idx

    # Block sizes: a block is (nb, rows, P2) floats; with D <= _EXACT_MAX_D we
    # hold about three such buffers at once (accumulator, difference, topk work).
    elem = p1.element_size()
    budget_elems = max(1, chunk_bytes // (3 * elem))
    rows = max(1, min(P1, budget_elems // max(P2, 1)))
    nb = max(1, min(N, budget_elems // max(P2 * P1, 1))) if rows == P1 else 1

    p2_pad = torch.arange(P2, device=device)[None, :] >= lengths2[:, None]  # (N, P2)
    any_p2_pad = bool(p2_pad.any())

    for n0 in range(0, N, nb):
        n1 = min(N, n0 + nb)
        b = p2[n0:n1]
        pad_b = p2_pad[n0:n1, None, :] if any_p2_pad else None
        for r0 in range(0, P1, rows):
            r1 = min(P1, r0 + rows)
            d2 = _block_dists(p1[n0:n1, r0:r1], b, norm)
            if pad_b is not None:
                d2.masked_fill_(pad_b, float("inf"))
            if Kc == 1:  # min returns the first minimal index on ties
                ib = torch.argmin(d2, dim=2, keepdim=True)
            else:
                # Always sorted: with padded reference clouds the +inf entries
                # must land in the last slots so the k >= lengths2 mask is right.
                ib = torch.topk(d2, Kc, dim=2, largest=False, sorted=True).indices
            idx[n0:n1, r0:r1, :Kc] = ib
            del d2, ib

    return idx.masked_fill_(_invalid_slots(lengths1, lengths2, P1, K, device), -1)


def _knn_points_torch(
    p1: torch.Tensor,
    p2: torch.Tensor,
    lengths1: torch.Tensor,
    lengths2: torch.Tensor,
    K: int,
    return_nn: bool = False,
    return_sorted: bool = True,
    norm: int = 2,
    chunk_bytes: int | None = None,
) -> KNN:
    """Pure-torch reference KNN on already validated inputs.

    ``lengths1``/``lengths2`` must be int64 tensors of shape ``(N,)`` on the
    device of the points.  The neighbour *search* runs without autograd in
    blocks of at most ``chunk_bytes`` (default :data:`_CHUNK_BYTES`); the
    returned ``dists`` are recomputed from the gathered neighbours with plain
    torch ops, so they are differentiable w.r.t. both ``p1`` and ``p2`` (and
    ``torch.autograd.gradcheck`` passes in float64).  Ties: with K=1 the
    lowest index among equally near points; with K>1 ``torch.topk`` decides
    the order among equal distances.
    """
    if chunk_bytes is None:
        chunk_bytes = _CHUNK_BYTES if p1.device.type == "cpu" else _CHUNK_BYTES_ACCEL
    with torch.no_grad():
        idx = _knn_idx_torch(
            p1.detach(), p2.detach(), lengths1, lengths2, K, norm, chunk_bytes
        )
    nn = knn_gather_unchecked(p2, idx)  # (N, P1, K, D), zeros where idx == -1
    diff = p1[:, :, None, :] - nn
    dists = diff.square().sum(-1) if norm == 2 else diff.abs().sum(-1)
    dists = torch.where(idx >= 0, dists, dists.new_zeros(()))
    return KNN(dists=dists, idx=idx, knn=nn if return_nn else None)


def _knn_points_pytorch3d(
    p1: torch.Tensor,
    p2: torch.Tensor,
    lengths1: torch.Tensor,
    lengths2: torch.Tensor,
    K: int,
    return_nn: bool,
    return_sorted: bool,
    norm: int,
) -> KNN:
    p3d_knn_points = require_pytorch3d(_FN, "pytorch3d.ops").knn_points
    out = p3d_knn_points(
        p1, p2, lengths1=lengths1, lengths2=lengths2, norm=norm, K=K,
        return_nn=False, return_sorted=return_sorted,
    )
    invalid = _invalid_slots(lengths1, lengths2, p1.shape[1], K, p1.device)
    idx = out.idx.masked_fill(invalid, -1)
    dists = out.dists.masked_fill(invalid, 0)
    nn = knn_gather_unchecked(p2, idx) if return_nn else None
    return KNN(dists=dists, idx=idx, knn=nn)


# --------------------------------------------------------------------------- #
# numba backend
# --------------------------------------------------------------------------- #


class _KNNDists(torch.autograd.Function):
    """``dists`` of the numba backend as a differentiable function of ``p1`` and ``p2``.

    Forward returns the kernel's distances ``(N, P1, K)`` unchanged (they
    equal ``((p1[:, :, None] - p2[idx]) ** 2).sum(-1)`` bit for bit, or the
    L1 sum for ``norm=1``); backward scatters ``2 (p1 - p2[idx]) * grad``
    (``sign(p1 - p2[idx]) * grad`` for ``norm=1``) into ``p1`` and, negated,
    into the rows ``idx`` of ``p2``.  Invalid slots (``idx == -1``) get no
    gradient.  The backward is made of differentiable torch ops, so double
    backward works too.
    """

    @staticmethod
    def forward(ctx, p1: torch.Tensor, p2: torch.Tensor, idx: torch.Tensor, dists: torch.Tensor,
                norm: int) -> torch.Tensor:
        ctx.save_for_backward(p1, p2, idx)
        ctx.norm = norm
        return dists

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        p1, p2, idx = ctx.saved_tensors
        need1, need2 = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if not (need1 or need2):
            return None, None, None, None, None
        N, P1, K = idx.shape
        D = p1.shape[2]
        diff = p1[:, :, None, :] - knn_gather_unchecked(p2, idx)  # (N, P1, K, D)
        grad = torch.where(idx >= 0, grad, grad.new_zeros(()))
        g = (2.0 * diff if ctx.norm == 2 else diff.sign()) * grad[..., None]
        g1 = g.sum(2) if need1 else None
        g2 = None
        if need2:
            g2 = p2.new_zeros(p2.shape)
            if g2.numel():
                flat = idx.clamp(min=0).reshape(N, P1 * K, 1).expand(N, P1 * K, D)
                g2 = g2.scatter_add(1, flat, -g.reshape(N, P1 * K, D))
        return g1, g2, None, None, None


def _as_kernel_array(t: torch.Tensor, D: int):  # -> np.ndarray
    """Detached, C-contiguous float32/float64 numpy view (copy if needed) with
    the points zero-padded to 3 coordinates."""
    t = t.detach()
    if t.dtype not in (torch.float32, torch.float64):
        t = t.float()
    if D < 3:
        t = torch.nn.functional.pad(t, (0, 3 - D))
    return t.contiguous().numpy()


def _knn_points_numba(
    p1: torch.Tensor,
    p2: torch.Tensor,
    lengths1: torch.Tensor,
    lengths2: torch.Tensor,
    K: int,
    return_nn: bool,
    norm: int,
) -> KNN:
    """numba backend on validated CPU inputs with ``D <= 3`` (see the module docstring)."""
    from geomgen.kernels import knn_numba

    N, P1, D = p1.shape
    l1, l2 = lengths1.numpy(), lengths2.numpy()
    with kernel_threads(_work(l1, l2)) as threads:
        d_np, i_np = knn_numba.knn_search(
            _as_kernel_array(p1, D), _as_kernel_array(p2, D), l1, l2, K, norm, threads
        )
    idx = torch.from_numpy(i_np)
    if p1.dtype in (torch.float32, torch.float64):
        dists = torch.from_numpy(d_np)
        if torch.is_grad_enabled() and (p1.requires_grad or p2.requires_grad):
            dists = _KNNDists.apply(p1, p2, idx, dists, norm)
    else:  # searched in float32: distances in the input dtype, as the reference
        diff = p1[:, :, None, :] - knn_gather_unchecked(p2, idx)
        dists = diff.square().sum(-1) if norm == 2 else diff.abs().sum(-1)
        dists = torch.where(idx >= 0, dists, dists.new_zeros(()))
    nn = knn_gather_unchecked(p2, idx) if return_nn else None
    return KNN(dists=dists, idx=idx, knn=nn)


def _work(lengths1, lengths2) -> int:  # (N,) int64 numpy arrays
    """Size of a search for the thread policy: points in the larger side."""
    return max(int(lengths1.sum()), int(lengths2.sum()))


def _numba_applicable(p: torch.Tensor) -> bool:
    """Whether ``backend="auto"`` runs the numba kernel for these points (CPU
    float32/float64 with ``D <= 3``; a forced ``"numba"`` takes any float dtype)."""
    return (
        p.device.type == "cpu"
        and p.dtype in (torch.float32, torch.float64)
        and p.shape[2] <= _NUMBA_MAX_D
    )


# --------------------------------------------------------------------------- #
# Public API
# --------------------------------------------------------------------------- #


def knn_points(
    p1: torch.Tensor,
    p2: torch.Tensor,
    lengths1: torch.Tensor | None = None,
    lengths2: torch.Tensor | None = None,
    K: int = 1,
    return_nn: bool = False,
    return_sorted: bool = True,
    *,
    norm: int = 2,
    backend: str = "auto",
) -> KNN:
    """K nearest neighbours in ``p2`` of every point of ``p1`` (squared L2 distances).

    Same call and result as PyTorch3D's ``knn_points(p1, p2, lengths1, lengths2,
    K=K, return_nn=..., return_sorted=..., norm=...)`` except that invalid
    slots hold ``idx = -1`` instead of 0 (see below and the module docstring).
    PyTorch3D takes ``norm`` as the fifth positional argument; here ``K`` is
    the fifth (as in PyTorch3D before ``norm`` existed) and ``norm`` and
    ``backend`` are keyword-only.

    Args:
        p1: ``(N, P1, D)`` floating tensor of query clouds.
        p2: ``(N, P2, D)`` floating tensor of reference clouds, same N, D, dtype
            and device as ``p1``.
        lengths1: optional ``(N,)`` integer tensor, values in ``[0, P1]``: the
            number of valid (leading) points of each cloud in ``p1``.  ``None``
            means all ``P1``.
        lengths2: likewise for ``p2``, values in ``[0, P2]``.
        K: number of neighbours, ``>= 1``.  ``K`` may exceed ``P2`` or
            ``lengths2[n]``: the extra slots are invalid (below).
        return_nn: also return the neighbour coordinates ``(N, P1, K, D)``.
        return_sorted: sort the K neighbours by increasing distance.  When
            False the order among the valid neighbours is unspecified (the
            torch reference always sorts; faster backends may not).  Invalid
            slots always come last.
        norm: 2 (default) for **squared** Euclidean distances, 1 for L1
            distances (sum of absolute differences; neighbours chosen by L1).
        backend: ``"auto"`` (numba kernel for float32/float64 CPU points
            with ``D <= 3``, else the torch reference), ``"torch"`` (pure-torch
            reference, any device), ``"numba"`` (CPU only; ``D > 3`` falls
            back to the reference) or ``"pytorch3d"`` (needs PyTorch3D).
            PyTorch3D has no such argument.

    Returns:
        :class:`KNN` ``(dists, idx, knn)``:

            - ``dists`` ``(N, P1, K)``: **squared** Euclidean distances (L1 with
              ``norm=1``), same dtype
              as ``p1``, differentiable w.r.t. ``p1`` and ``p2``.
            - ``idx`` ``(N, P1, K)`` int64: ``p2[n, idx[n, i, k]]`` is the k-th
              nearest neighbour of ``p1[n, i]``.
            - ``knn`` ``(N, P1, K, D)`` or ``None``.

            A slot ``[n, i, k]`` is invalid when ``i >= lengths1[n]`` (padded
            query) or ``k >= lengths2[n]`` (fewer than ``k + 1`` reference points,
            including ``K > P2`` and empty reference clouds).  Invalid slots hold
            ``dists = 0``, ``idx = -1``, ``knn = 0`` and receive no gradient.
            PyTorch3D also puts 0 in ``dists`` there but documents 0 (a valid
            index) in ``idx``; we use -1 so ``idx >= 0`` is a complete mask.

    Raises:
        InvalidInputError: wrong dims/dtypes, N or D mismatch, lengths out of
            range or of the wrong shape, ``K < 1``, NaN/Inf coordinates, an
            unknown ``backend``, ``norm`` not 1 or 2; the message names the
            argument.
        BackendUnavailableError: ``backend="pytorch3d"`` without PyTorch3D,
            or ``backend="numba"`` with CUDA tensors.

    Memory and time: the reference works on blocks of the P1 x P2 distance
    matrix of a few MiB (see ``_CHUNK_BYTES``), so large queries (65k x 65k)
    never allocate the full matrix, but it takes ``O(P1 * P2)`` time.  The
    numba backend takes ``O(P1 + P2)`` memory and, for points sampled on
    surfaces or volumes, about ``O(P1 + P2)`` time (queries far outside the
    reference cloud's bounding box cost more, up to ``O(P2 ** (2/3))`` each).
    """
    fn = _FN
    check_backend(fn, backend)
    lengths1, lengths2 = V.check_point_cloud_pair(p1, p2, lengths1, lengths2, ("p1", "p2", "lengths1", "lengths2"),
                                                  fn=fn)
    K = V.check_int(K, "K", min_value=1, fn=fn)
    norm = V.check_int(norm, "norm", fn=fn)
    V.check_choice(norm, "norm", (1, 2), fn=fn)
    V.check_bool(return_nn, "return_nn", fn=fn)
    V.check_bool(return_sorted, "return_sorted", fn=fn)
    return knn_points_unchecked(p1, p2, lengths1, lengths2, K, return_nn, return_sorted, norm=norm, backend=backend)


def knn_points_unchecked(
    p1: torch.Tensor,
    p2: torch.Tensor,
    lengths1: torch.Tensor,
    lengths2: torch.Tensor,
    K: int = 1,
    return_nn: bool = False,
    return_sorted: bool = True,
    *,
    norm: int = 2,
    backend: str = "auto",
) -> KNN:
    """:func:`knn_points` without argument validation, for geomgen's hot paths.

    Chooses the implementation exactly as :func:`knn_points` does (through
    :func:`geomgen.backend.resolve_backend`) and returns the same results, but
    checks nothing: the caller guarantees what :func:`knn_points` would have
    checked.  Bad input here gives wrong results or a crash, not an error.

    Args:
        p1: ``(N, P1, D)`` finite floating tensor.
        p2: ``(N, P2, D)`` finite tensor, same dtype and device as ``p1``.
        lengths1: ``(N,)`` int64 tensor on the points' device, values in ``[0, P1]``.
        lengths2: ``(N,)`` int64 tensor on the points' device, values in ``[0, P2]``.
        K: number of neighbours, ``>= 1``.
        return_nn: as in :func:`knn_points`.
        return_sorted: as in :func:`knn_points`.
        norm: 2 (squared Euclidean) or 1 (L1).
        backend: one of :data:`KNN_BACKENDS`, as in :func:`knn_points`.

    Returns:
        :class:`KNN` ``(dists (N, P1, K), idx (N, P1, K), knn (N, P1, K, D) or None)``.

    Raises:
        InvalidInputError: an unknown ``backend``.
        BackendUnavailableError: as :func:`knn_points`.
    """
    if backend == "auto":
        numba_ok = _numba_applicable(p1)
    else:  # a forced "numba" searches other float dtypes in float32; D > 3 runs the reference
        numba_ok = p1.shape[2] <= _NUMBA_MAX_D
    use = resolve_backend(_FN, backend, device=p1.device, numba_ok=numba_ok)
    if use == "pytorch3d":
        return _knn_points_pytorch3d(p1, p2, lengths1, lengths2, K, return_nn, return_sorted, norm)
    if use == "numba":
        return _knn_points_numba(p1, p2, lengths1, lengths2, K, return_nn, norm)
    return _knn_points_torch(p1, p2, lengths1, lengths2, K, return_nn, return_sorted, norm)


def nearest_neighbors_unchecked(
    x: torch.Tensor,
    y: torch.Tensor,
    x_lengths: torch.Tensor,
    y_lengths: torch.Tensor,
    *,
    norm: int = 2,
    both: bool = True,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Nearest neighbour (K = 1) of every point of ``x`` in ``y`` and, with
    ``both``, of ``y`` in ``x``: the two searches of a Chamfer distance, unchecked.

    ``backend="auto"`` rules (:func:`geomgen.backend.resolve_backend`): float32 /
    float64 CPU clouds with ``D <= 3`` run one fused numba call
    (:func:`geomgen.kernels.knn_numba.chamfer_nn`: each cloud's grid is built
    once and serves both directions) whose distances are differentiable through
    an analytic backward; everything else runs :func:`knn_points_unchecked`
    once per direction.  Both paths give the torch reference's distances bit for
    bit.  Nothing is validated (see :func:`knn_points_unchecked`).

    Args:
        x: ``(N, P1, D)`` finite floating tensor.
        y: ``(N, P2, D)`` finite tensor, same dtype and device.
        x_lengths: ``(N,)`` int64 tensor on the points' device, values in ``[0, P1]``.
        y_lengths: ``(N,)`` int64 tensor on the points' device, values in ``[0, P2]``.
        norm: 2 (squared Euclidean) or 1 (L1).
        both: also search ``y -> x``.

    Returns:
        ``[(dists (N, P1, 1), idx (N, P1, 1))]`` for ``x -> y``, followed with
        ``both`` by ``(dists (N, P2, 1), idx (N, P2, 1))`` for ``y -> x``; padded
        rows and rows whose target cloud is empty hold 0 and -1.
    """
    use = resolve_backend(_FN, "auto", device=x.device, numba_ok=_numba_applicable(x))
    if use != "numba":
        out = [knn_points_unchecked(x, y, x_lengths, y_lengths, K=1, norm=norm)[:2]]
        if both:
            out.append(knn_points_unchecked(y, x, y_lengths, x_lengths, K=1, norm=norm)[:2])
        return out

    from geomgen.kernels import knn_numba

    D = x.shape[2]
    lx, ly = x_lengths.numpy(), y_lengths.numpy()
    with kernel_threads(_work(lx, ly)) as threads:
        res = knn_numba.chamfer_nn(_as_kernel_array(x, D), _as_kernel_array(y, D), lx, ly, norm, both, threads)
    grad = torch.is_grad_enabled() and (x.requires_grad or y.requires_grad)
    out = []
    for (d_np, i_np), (a, b) in zip(((res[0], res[1]), (res[2], res[3])), ((x, y), (y, x))):
        if d_np is None:
            break
        idx = torch.from_numpy(i_np)[..., None]
        dists = torch.from_numpy(d_np)[..., None]
        if grad:
            dists = _KNNDists.apply(a, b, idx, dists, norm)
        out.append((dists, idx))
    return out


def knn_gather(
    x: torch.Tensor, idx: torch.Tensor, lengths: torch.Tensor | None = None
) -> torch.Tensor:
    """Gather rows of ``x`` with the indices returned by :func:`knn_points`.

    ``out[n, i, k] = x[n, idx[n, i, k]]``, differentiable w.r.t. ``x``.

    Args:
        x: ``(N, P2, C)`` tensor (points, normals or any per-point features).
        idx: ``(N, P1, K)`` integer tensor with values in ``[-1, P2)``.
        lengths: optional ``(N,)`` valid sizes of ``x`` (values in ``[0, P2]``).
            Slots with ``k >= lengths[n]`` are zeroed, as in PyTorch3D (this is
            only needed for indices that do not already use -1 for padding).

    Returns:
        ``(N, P1, K, C)`` tensor; rows where ``idx == -1`` (and, when
        ``lengths`` is given, where ``k >= lengths[n]``) are zeros.
    """
    fn = "knn_gather"
    V.check_tensor(x, "x", ndim=3, shape_desc="(N, P2, C)", fn=fn)
    V.check_tensor(idx, "idx", ndim=3, shape_desc="(N, P1, K)", integer=True, fn=fn)
    N, P2, C = x.shape
    if idx.shape[0] != N:
        raise V.fail("idx", f"must have the same batch size N={N} as 'x', got {idx.shape[0]}", fn)
    V.check_same_device({"x": x, "idx": idx}, fn=fn)
    if idx.numel():
        lo, hi = int(idx.min()), int(idx.max())
        if lo < -1 or hi >= P2:
            raise V.fail("idx", f"values must lie in [-1, {P2 - 1}], got {lo if lo < -1 else hi}", fn)
    if lengths is not None:
        lengths = V.check_lengths(lengths, "lengths", batch_size=N, max_len=P2, device=x.device, fn=fn)
    return knn_gather_unchecked(x, idx.to(torch.int64), lengths)


def knn_gather_unchecked(x: torch.Tensor, idx: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`knn_gather` without validation, for geomgen's hot paths.

    Args:
        x: ``(N, P2, C)`` tensor.
        idx: ``(N, P1, K)`` int64 tensor on ``x``'s device, values in ``[-1, P2)``.
        lengths: optional ``(N,)`` int64 tensor, values in ``[0, P2]``.

    Returns:
        ``(N, P1, K, C)``: ``x[n, idx[n, i, k]]``, zeros where ``idx == -1`` (or
        ``k >= lengths[n]``).
    """
    N, P2, C = x.shape
    _, P1, K = idx.shape
    valid = idx >= 0
    if lengths is not None:
        valid = valid & (torch.arange(K, device=x.device)[None, None, :] < lengths[:, None, None])
    if P2 == 0:
        return x.new_zeros(N, P1, K, C)
    flat = idx.clamp(min=0).reshape(N, P1 * K, 1).expand(N, P1 * K, C)
    out = torch.gather(x, 1, flat).reshape(N, P1, K, C)
    return torch.where(valid[..., None], out, out.new_zeros(()))
