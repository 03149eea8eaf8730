"""Numba kernels behind :func:`geomgen.ops.sample_points_from_meshes` (CPU).

The kernels are serial: the whole job takes a few milliseconds, less than
what thread start-up and OpenMP barriers cost on a busy 2-core machine.

Inputs are validated by the op: face indices lie in ``[0, V)``, vertices are
finite, every mesh has at least one face of positive area, and the uniform
numbers lie in ``[0, 1)``.  Nothing here checks again.

The face choice is the inverse CDF of the per-mesh face areas, exactly
``searchsorted(cdf, u * total, right=True)`` (the first face whose cumulative
area exceeds the target), found in O(1) expected time with a guide table
(one bucket per face) instead of a binary search, and clamped to the mesh's
last face of positive area (so a target that rounds up to the total never
picks a zero-area face).
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["all_finite", "face_cdf", "sample_faces"]


@numba.njit(cache=True, nogil=True)
def all_finite(x):  # pragma: no cover - compiled
    """True when every entry of the float array x is finite."""
    for v in x.reshape(-1):
        if not math.isfinite(v):
            return False
    return True


@numba.njit(cache=True, nogil=True)
def face_cdf(verts, faces, first, counts):  # pragma: no cover - compiled
    """Per-mesh cumulative face areas (float64, restarting at 0 for each mesh).

    Args:
        verts: (V, 3) float32/float64 packed vertices.
        faces: (F, 3) int64 packed faces.
        first: (N,) int64 first packed face of each mesh.
        counts: (N,) int64 faces per mesh (>= 1).

    Returns:
        cdf (F,) float64, total (N,) float64, last_pos (N,) int64 = the last
        face of positive area of each mesh (-1 if none).
    """
    F = faces.shape[0]
    N = first.shape[0]
    cdf = np.empty(F, np.float64)
    for f in range(F):
        a = faces[f, 0]
        b = faces[f, 1]
        c = faces[f, 2]
        ux = np.float64(verts[b, 0]) - np.float64(verts[a, 0])
        uy = np.float64(verts[b, 1]) - np.float64(verts[a, 1])
        uz = np.float64(verts[b, 2]) - np.float64(verts[a, 2])
        vx = np.float64(verts[c, 0]) - np.float64(verts[a, 0])
        vy = np.float64(verts[c, 1]) - np.float64(verts[a, 1])
        vz = np.float64(verts[c, 2]) - np.float64(verts[a, 2])
        nx = uy * vz - uz * vy
        ny = uz * vx - ux * vz
        nz = ux * vy - uy * vx
        cdf[f] = 0.5 * math.sqrt(nx * nx + ny * ny + nz * nz)
    total = np.zeros(N, np.float64)
    last_pos = np.full(N, -1, np.int64)
    for n in range(N):
        acc = 0.0
        f0 = first[n]
        for f in range(f0, f0 + counts[n]):
            if cdf[f] > 0.0:
                last_pos[n] = f
            acc += cdf[f]
            cdf[f] = acc
        total[n] = acc
    return cdf, total, last_pos


@numba.njit(cache=True, nogil=True)
def _guide(cdf, f0, nf, total, guide):  # pragma: no cover - compiled
    """guide[b] = first face f in [f0, f0 + nf) with cdf[f] > b * total / nf."""
    f = f0
    end = f0 + nf
    for b in range(nf):
        t = b * (total / nf)
        while f < end - 1 and cdf[f] <= t:
            f += 1
        guide[f0 + b] = f


@numba.njit(cache=True, nogil=True)
def _pick(cdf, f0, nf, last, total, guide, t):  # pragma: no cover - compiled
    """The first face f of the mesh with cdf[f] > t, clamped to ``last``."""
    b = int(t * (nf / total))
    if b < 0:
        b = 0
    elif b > nf - 1:
        b = nf - 1
    f = guide[f0 + b]
    # exact correction in both directions: the bucket guess may be off by
    # rounding, the result never is
    while f > f0 and cdf[f - 1] > t:
        f -= 1
    end = f0 + nf
    while f < end and cdf[f] <= t:
        f += 1
    if f > last:
        f = last
    return f


@numba.njit(cache=True, nogil=True)
def sample_faces(
    verts, faces, cdf, total, last_pos, first, counts, u, w, want_points, want_normals
):  # pragma: no cover
    """Choose a face per sample and (optionally) place the sample on it.

    The position and normal use the same arithmetic, in the same order and
    precision, as the torch path of the op: ``s = sqrt(w0)``, ``b0 = 1 - s``,
    ``b1 = s * (1 - w1)``, ``b2 = s * w1``, ``p = b0 * a + b1 * b + b2 * c``;
    normal ``(b - a) x (c - a)`` divided by ``max(|n|, 1e-12)``.

    Args:
        verts: (V, 3) float32/float64.
        faces: (F, 3) int64.
        cdf, total, last_pos: from :func:`face_cdf`.
        first, counts: (N,) int64 first packed face and face count per mesh.
        u: (N, S) float64 uniforms for the face choice.
        w: (N, S, 2) uniforms in the vertices' dtype for the barycentrics.
        want_points, want_normals: fill the positions / normals (otherwise
            those outputs are empty (0, 0, 3) arrays).

    Returns:
        face_idx (N, S) int64 packed faces, samples (N, S, 3), normals
        (N, S, 3), the last two in the vertices' dtype.
    """
    N, S = u.shape
    guide = np.empty(cdf.shape[0], np.int64)
    for n in range(N):
        _guide(cdf, first[n], counts[n], total[n], guide)
    face_idx = np.empty((N, S), np.int64)
    P = N if want_points else 0
    Q = N if want_normals else 0
    out = np.empty((P, S if want_points else 0, 3), verts.dtype)
    nrm = np.empty((Q, S if want_normals else 0, 3), verts.dtype)
    one = np.ones(1, verts.dtype)[0]
    tiny = np.full(1, 1e-12, verts.dtype)[0]
    for n in range(N):
        tot = total[n]
        f0 = first[n]
        nf = counts[n]
        last = last_pos[n]
        for i in range(S):
            f = _pick(cdf, f0, nf, last, tot, guide, u[n, i] * tot)
            face_idx[n, i] = f
            if not (want_points or want_normals):
                continue
            ia = faces[f, 0]
            ib = faces[f, 1]
            ic = faces[f, 2]
            if want_points:
                s = math.sqrt(w[n, i, 0])
                b0 = one - s
                b1 = s * (one - w[n, i, 1])
                b2 = s * w[n, i, 1]
                for d in range(3):
                    out[n, i, d] = b0 * verts[ia, d] + b1 * verts[ib, d] + b2 * verts[ic, d]
            if want_normals:
                ux = verts[ib, 0] - verts[ia, 0]
                uy = verts[ib, 1] - verts[ia, 1]
                uz = verts[ib, 2] - verts[ia, 2]
                vx = verts[ic, 0] - verts[ia, 0]
                vy = verts[ic, 1] - verts[ia, 1]
                vz = verts[ic, 2] - verts[ia, 2]
                nx = uy * vz - uz * vy
                ny = uz * vx - ux * vz
                nz = ux * vy - uy * vx
                ln = math.sqrt(nx * nx + ny * ny + nz * nz)
                if ln < tiny:
                    ln = tiny
                nrm[n, i, 0] = nx / ln
                nrm[n, i, 1] = ny / ln
                nrm[n, i, 2] = nz / ln
    return face_idx, out, nrm
