"""Numba cubify for one ``(D, H, W)`` occupancy mask (CPU).

Serves :func:`geomgen.ops.cubify.cubify`, which validates the arguments; the
kernel thresholds the C-contiguous float values itself (first pass, which also
counts NaN values and stops before anything else if there are any; the op
then raises).

Output layout (reproduced exactly by the torch reference in the op module):

* vertices are the used grid corners ``(kc, jc, ic)`` in ``[0, D] x [0, H]
  x [0, W]``, in flat ``(kc, jc, ic)`` order.  A corner is used exactly when
  the 8 voxels around it (outside the grid = empty) are not all alike: the
  8 voxels form a connected 2x2x2 block, so a mixed block always has an
  occupied/empty face-neighbour pair, and that face touches the corner.
* faces: for each occupied voxel in ``(k, j, i)`` order, each side whose
  neighbour is empty or outside the grid, in the order ``-x, +x, -y, +y,
  -z, +z``, gives two triangles (:data:`QUAD_TRIS`), counter-clockwise seen
  from outside.

Passes over z-slices (serial ``nogil`` kernels, shared between threads by
:func:`geomgen.kernels.marching_cubes_numba.run_slabs`): threshold into a
byte mask with a border of empty voxels (so every neighbour access is in
bounds and the counts are branch-free sums) and a state per row (empty /
full / mixed, so uniform regions are skipped row by row); count faces per
voxel row and used corners per corner row; prefix sums; write corner ids and
positions; write faces.
"""

from __future__ import annotations

import numba
import numpy as np

from geomgen.kernels.marching_cubes_numba import run_slabs, slab_lists

__all__ = ["QUAD_TRIS", "cubify_numba"]


def _quad_tris() -> np.ndarray:
    """(6, 2, 3, 3) corner offsets (dx, dy, dz) of the 2 triangles of each side.

    Side ``2 * a + s`` lies on the plane ``coord[a] = voxel[a] + s``.  With the
    cyclic axes ``u = a + 1``, ``v = a + 2`` (``e_u x e_v = e_a``) the corners
    ``p0 = 0, p1 = e_u, p2 = e_u + e_v, p3 = e_v`` run counter-clockwise
    around ``+e_a``: the ``+a`` side uses ``(p0, p1, p2), (p0, p2, p3)``, the
    ``-a`` side the reversed triangles.
    """
    out = np.zeros((6, 2, 3, 3), dtype=np.int64)
    for a in range(3):
        u, v = (a + 1) % 3, (a + 2) % 3
        for s in range(2):
            p = []
            for du, dv in ((0, 0), (1, 0), (1, 1), (0, 1)):
                off = [0, 0, 0]
                off[a] = s
                off[u] = du
                off[v] = dv
                p.append(off)
            tris = [(p[0], p[1], p[2]), (p[0], p[2], p[3])]
            if s == 0:
                tris = [(t[0], t[2], t[1]) for t in tris]
            out[2 * a + s] = np.array(tris)
    out.setflags(write=False)
    return out


#: (6, 2, 3, 3): side ``-x, +x, -y, +y, -z, +z`` -> 2 triangles -> 3 corner offsets (dx, dy, dz).
QUAD_TRIS = _quad_tris()


@numba.njit(cache=True, nogil=True)
def _classify(vals, thresh, greater, m, rstate, bad, ks):  # pragma: no cover - compiled
    """m[k+1, j+1, i+1] = 1 for occupied voxels (``>= thresh`` when ``greater``,
    else ``<= thresh``; ``m`` has a zero border); rstate[k+1, j+1]: 0 = voxel
    row empty, 1 = full, 2 = mixed (border rows stay 0); bad[k] = NaN count."""
    D, H, W = vals.shape
    for k in ks:
        nbad = 0
        for j in range(H):
            row = vals[k, j]
            out = m[k + 1, j + 1]
            n = 0
            nnan = 0
            if greater:
                for i in range(W):
                    v = row[i]
                    b = 1 if v >= thresh else 0
                    out[i + 1] = b
                    n += b
                    nnan += 1 if v != v else 0
            else:
                for i in range(W):
                    v = row[i]
                    b = 1 if v <= thresh else 0
                    out[i + 1] = b
                    n += b
                    nnan += 1 if v != v else 0
            rstate[k + 1, j + 1] = 0 if n == 0 else (1 if n == W else 2)
            nbad += nnan
        bad[k] = nbad


@numba.njit(cache=True, nogil=True)
def _uniform4(rstate, k, j):  # pragma: no cover - compiled
    """State shared by padded rows (k, j), (k, j+1), (k+1, j), (k+1, j+1), or 2 if they differ / mix."""
    a = rstate[k, j]
    if a == 2 or rstate[k, j + 1] != a or rstate[k + 1, j] != a or rstate[k + 1, j + 1] != a:
        return 2
    return a


@numba.njit(cache=True, nogil=True)
def _count(m, rstate, fcount, ccount, ks):  # pragma: no cover - compiled
    """fcount[k * H + j]: triangles of voxel row (k, j); ccount[kc * (H + 1) + jc]:
    used corners of corner row (kc, jc).  ``ks`` are corner slices 0 .. D."""
    Dp, Hp, Wp = m.shape
    D, H, W = Dp - 2, Hp - 2, Wp - 2
    for k in ks:
        if k < D:
            for j in range(H):
                st = rstate[k + 1, j + 1]
                n = 0
                if st == 1 and rstate[k + 1, j] == 1 and rstate[k + 1, j + 2] == 1 \
                        and rstate[k, j + 1] == 1 and rstate[k + 2, j + 1] == 1:
                    n = 2  # a full row inside a full neighbourhood: only its two x ends
                elif st != 0:
                    r = m[k + 1, j + 1]
                    ym = m[k + 1, j]
                    yp = m[k + 1, j + 2]
                    zm = m[k, j + 1]
                    zp = m[k + 2, j + 1]
                    for i in range(1, W + 1):
                        n += np.int64(r[i]) * (
                            6 - np.int64(r[i - 1]) - np.int64(r[i + 1]) - np.int64(ym[i])
                            - np.int64(yp[i]) - np.int64(zm[i]) - np.int64(zp[i])
                        )
                fcount[k * H + j] = 2 * n
        # corner (kc, jc, ic) touches padded voxels (kc | kc+1, jc | jc+1, ic | ic+1)
        for jc in range(H + 1):
            u = _uniform4(rstate, k, jc)
            if u != 2:
                ccount[k * (H + 1) + jc] = 0 if u == 0 else 2  # all full: only the two x ends
                continue
            a = m[k, jc]
            b = m[k, jc + 1]
            c = m[k + 1, jc]
            d = m[k + 1, jc + 1]
            n = 0
            prev = np.int64(a[0]) + np.int64(b[0]) + np.int64(c[0]) + np.int64(d[0])
            for ic in range(W + 1):
                cur = np.int64(a[ic + 1]) + np.int64(b[ic + 1]) + np.int64(c[ic + 1]) + np.int64(d[ic + 1])
                tot = prev + cur
                n += 1 if (tot != 0 and tot != 8) else 0
                prev = cur
            ccount[k * (H + 1) + jc] = n


@numba.njit(cache=True, nogil=True)
def _emit_corners(m, rstate, coff, org, size, cid, verts, ks):  # pragma: no cover - compiled
    Dp, Hp, Wp = m.shape
    D, H, W = Dp - 2, Hp - 2, Wp - 2
    for kc in ks:
        for jc in range(H + 1):
            r = kc * (H + 1) + jc
            o = coff[r]
            if o == coff[r + 1]:
                continue
            a = m[kc, jc]
            b = m[kc, jc + 1]
            c = m[kc + 1, jc]
            d = m[kc + 1, jc + 1]
            y = org[1] + jc * size[1]
            z = org[2] + kc * size[2]
            prev = np.int64(a[0]) + np.int64(b[0]) + np.int64(c[0]) + np.int64(d[0])
            for ic in range(W + 1):
                cur = np.int64(a[ic + 1]) + np.int64(b[ic + 1]) + np.int64(c[ic + 1]) + np.int64(d[ic + 1])
                tot = prev + cur
                prev = cur
                if tot != 0 and tot != 8:
                    cid[kc, jc, ic] = o
                    verts[o, 0] = org[0] + ic * size[0]
                    verts[o, 1] = y
                    verts[o, 2] = z
                    o += 1


@numba.njit(cache=True, nogil=True)
def _emit_faces(m, foff, quad, cid, faces, fvox, want_fvox, ks):  # pragma: no cover - compiled
    Dp, Hp, Wp = m.shape
    D, H, W = Dp - 2, Hp - 2, Wp - 2
    for k in ks:
        for j in range(H):
            fo = foff[k * H + j]
            if fo == foff[k * H + j + 1]:
                continue
            r = m[k + 1, j + 1]
            ym = m[k + 1, j]
            yp = m[k + 1, j + 2]
            zm = m[k, j + 1]
            zp = m[k + 2, j + 1]
            for i in range(W):
                ip = i + 1
                if r[ip] == 0:
                    continue
                bits = (
                    (1 - np.int64(r[ip - 1])) | ((1 - np.int64(r[ip + 1])) << 1)
                    | ((1 - np.int64(ym[ip])) << 2) | ((1 - np.int64(yp[ip])) << 3)
                    | ((1 - np.int64(zm[ip])) << 4) | ((1 - np.int64(zp[ip])) << 5)
                )
                if bits == 0:
                    continue
                for side in range(6):
                    if (bits >> side) & 1 == 0:
                        continue
                    for t in range(2):
                        for c in range(3):
                            q = quad[side, t, c]
                            faces[fo, c] = cid[k + q[2], j + q[1], i + q[0]]
                        if want_fvox:
                            fvox[fo] = (k * H + j) * W + i
                        fo += 1


@numba.njit(cache=True, nogil=True)
def _offsets(counts):  # pragma: no cover - compiled
    out = np.empty(counts.shape[0] + 1, dtype=np.int64)
    out[0] = 0
    for r in range(counts.shape[0]):
        out[r + 1] = out[r] + counts[r]
    return out


def cubify_numba(
    vals: np.ndarray,
    thresh: float,
    greater: bool,
    origin: np.ndarray,
    size: np.ndarray,
    dtype: np.dtype,
    want_face_voxels: bool = False,
    workers: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Cubes of the occupied voxels of one grid (validated by the caller except for NaN).

    Args:
        vals: ``(D, H, W)`` C-contiguous float32/float64 values.  The first
            pass thresholds them and counts NaN values; with any NaN nothing
            else runs.
        thresh: occupied when ``value >= thresh`` (``greater``) or
            ``value <= thresh`` (not ``greater``).
        greater: see ``thresh``.
        origin: ``(3,)`` float64 xyz world position of grid corner ``(0, 0, 0)``.
        size: ``(3,)`` float64 xyz voxel edge lengths.
        dtype: float32 or float64, dtype of the returned vertices.
        want_face_voxels: also return each face's voxel ``(k * H + j) * W + i``.
        workers: threads sharing the z-slices of each pass (1: run inline).

    Returns:
        ``verts`` ``(V, 3)``, ``faces`` ``(F, 3)`` int64, ``face_voxels``
        ``(F,)`` int64 (empty unless asked), and the number of NaN values
        (when > 0 the arrays are empty and the caller must raise).
    """
    D, H, W = vals.shape
    voxel_slabs = slab_lists(D, workers)
    corner_slabs = slab_lists(D + 1, workers)
    mask = np.zeros((D + 2, H + 2, W + 2), dtype=np.uint8)  # border of empty voxels
    rstate = np.zeros((D + 2, H + 2), dtype=np.uint8)
    bad = np.zeros(D, dtype=np.int64)
    run_slabs(_classify, (vals, float(thresh), bool(greater), mask, rstate, bad), voxel_slabs)
    n_bad = int(bad.sum())
    if n_bad:
        return np.empty((0, 3), dtype=dtype), np.empty((0, 3), dtype=np.int64), np.empty(0, dtype=np.int64), n_bad
    fcount = np.empty(D * H, dtype=np.int64)
    ccount = np.empty((D + 1) * (H + 1), dtype=np.int64)
    run_slabs(_count, (mask, rstate, fcount, ccount), corner_slabs)
    foff = _offsets(fcount)
    coff = _offsets(ccount)
    nv, nf = int(coff[-1]), int(foff[-1])
    verts = np.empty((nv, 3), dtype=dtype)
    faces = np.empty((nf, 3), dtype=np.int64)
    fvox = np.empty(nf if want_face_voxels else 0, dtype=np.int64)
    if nf:
        cid = np.empty((D + 1, H + 1, W + 1), dtype=np.int64)  # only used corners are written and read
        run_slabs(_emit_corners, (mask, rstate, coff, origin, size, cid, verts), corner_slabs)
        run_slabs(_emit_faces, (mask, foff, QUAD_TRIS, cid, faces, fvox, bool(want_face_voxels)), voxel_slabs)
    return verts, faces, fvox, 0
