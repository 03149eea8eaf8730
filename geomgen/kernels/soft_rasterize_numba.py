"""Numba kernel behind the fragment selection of :func:`geomgen.render.soft_rasterize_meshes` (CPU).

The op validates its inputs and sets up every (image, face) pair in float64
torch code (``geomgen.render.soft_rasterize._setup``): one row per pair that
can give a fragment, with its edge coefficients, clipped polygon, corner
depths and candidate pixel box.  This kernel does the expensive, gradient-free
part: for every (pair, pixel of its box) candidate it decides whether the pixel
keeps the face and at which depth, and keeps the ``K`` nearest per pixel.  The
differentiable values of the kept fragments are then computed by the torch
code again, so both backends differ only here.

Arithmetic: operation by operation that of the torch reference
(``soft_rasterize._select``'s candidate blocks: ``_polygon_distance``, the edge
functions of :mod:`geomgen.render.rasterize`, ``_edge_depth``), so both make
the same float64 decisions.  Order: the ``K`` nearest of each pixel by depth,
equal depths to the lower pair (= lower face index within an image); the
result is sorted by pixel, then depth, exactly as the reference's.

Parallelism (no atomics): the pairs' boxes are binned (counting sort, pair
order kept) into ``TILE x TILE`` pixel tiles of each image; one task per
(image, tile) evaluates its bin on the pixels of its tile only and keeps a
small insertion-sorted list of ``K`` per pixel, so the work grows with the
candidates (faces per pixel), not faces x pixels.  With ``threads == 1`` the
serial driver runs and numba's pool is left alone (a forked worker may be
running us).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import prange

__all__ = ["TILE", "select"]

#: Side (pixels) of the screen tiles the faces are binned into.
TILE = 8
#: Pixels per task of the parallel compaction.
_PIX_CHUNK = 1 << 14


@numba.njit(cache=True, nogil=True)
def _bin(r0, r1, box, ts, ntx, tile_off, cur, bin_rows, fill):  # pragma: no cover - compiled
    """Tiles of one image met by the boxes of rows [r0, r1): with ``fill``
    False count them into ``cur[tile]``; with ``fill`` True write the rows,
    ascending, from ``tile_off[tile]`` on."""
    if fill:
        for t in range(cur.shape[0]):
            cur[t] = tile_off[t]
    else:
        cur[:] = 0
    for r in range(r0, r1):
        tx0 = box[r, 0] // ts
        tx1 = box[r, 1] // ts
        for ty in range(box[r, 2] // ts, box[r, 3] // ts + 1):
            for tx in range(tx0, tx1 + 1):
                t = ty * ntx + tx
                if fill:
                    bin_rows[cur[t]] = r
                cur[t] += 1


@numba.njit(cache=True, nogil=True)
def _tile(b, ty, tx, ts, rows, T, box, H, W, K, znear, zfar, blur, scale2, cnt, opair, oflag, zs, ks, lc,
          eg):  # pragma: no cover - compiled
    """The ``K`` nearest fragments of the pixels of tile (ty, tx) of image ``b``
    among the rows ``rows`` (ascending) into ``cnt``, ``opair`` and ``oflag``
    (``edge + 4 * inside``).  Scratch (the tile's sorted lists): ``zs`` (depths)
    and ``ks`` (``8 * row + flag``), ``(ts * ts, K)``; ``lc`` ``(ts * ts,)``;
    ``eg`` ``(5, 4)``."""
    tu0 = tx * ts
    tv0 = ty * ts
    tu1 = min(W, tu0 + ts) - 1
    tv1 = min(H, tv0 + ts) - 1
    lc[:] = 0
    for i in range(rows.shape[0]):
        r = rows[i]
        u0 = max(box[r, 0], tu0)
        u1 = min(box[r, 1], tu1)
        v0 = max(box[r, 2], tv0)
        v1 = min(box[r, 3], tv1)
        # the row's constants, loaded once (the values the per-candidate expressions would give)
        for e in range(4):
            n = (e + 1) & 3
            ax = T[r, 10 + 2 * e]
            ay = T[r, 11 + 2 * e]
            ex = T[r, 10 + 2 * n] - ax
            ey = T[r, 11 + 2 * n] - ay
            eg[0, e] = ax
            eg[1, e] = ay
            eg[2, e] = ex
            eg[3, e] = ey
            eg[4, e] = ex * ex + ey * ey
        A0 = T[r, 0]
        A1 = T[r, 3]
        A2 = T[r, 6]
        absD = T[r, 9]
        for v in range(v0, v1 + 1):
            py = v + 0.5
            k0 = T[r, 1] * py + T[r, 2]
            k1 = T[r, 4] * py + T[r, 5]
            k2 = T[r, 7] * py + T[r, 8]
            for u in range(u0, u1 + 1):
                px = u + 0.5
                # nearest polygon edge (_polygon_distance: first minimum wins, NaN propagates)
                d2 = 0.0
                edge = 0
                tt = 0.0
                for e in range(4):
                    ex = eg[2, e]
                    ey = eg[3, e]
                    den = eg[4, e]
                    wx = px - eg[0, e]
                    wy = py - eg[1, e]
                    num = wx * ex + wy * ey
                    t = num / den if den > 0.0 else 0.0
                    t = min(max(t, 0.0), 1.0)
                    dx = wx - t * ex
                    dy = wy - t * ey
                    dd = dx * dx + dy * dy
                    if e == 0 or dd < d2 or math.isnan(dd):
                        d2 = dd
                        edge = e
                        tt = t
                        if math.isnan(dd):
                            break
                e0 = A0 * px + k0
                e1 = A1 * px + k1
                e2 = A2 * px + k2
                sm = (e0 + e1) + e2
                z = 0.0
                ins = e0 >= 0.0 and e1 >= 0.0 and e2 >= 0.0 and sm > 0.0
                if ins:
                    z = absD / sm
                    ins = z >= znear
                if not ins:
                    if not (d2 * scale2 < blur):
                        continue
                    z0 = T[r, 18 + edge]
                    z1 = T[r, 18 + ((edge + 1) & 3)]
                    zz = 1.0 / ((1.0 - tt) / z0 + tt / z1)
                    z = zz + ((z0 if z0 == z1 else zz) - zz)  # _edge_depth's value
                if not (z <= zfar):
                    continue
                # insertion into the pixel's sorted list (equal depths: the earlier row first)
                loc = (v - tv0) * ts + (u - tu0)
                c = lc[loc]
                if c == K and not (z < zs[loc, K - 1]):
                    continue
                j = c if c < K else K - 1
                while j > 0 and z < zs[loc, j - 1]:
                    zs[loc, j] = zs[loc, j - 1]
                    ks[loc, j] = ks[loc, j - 1]
                    j -= 1
                zs[loc, j] = z
                ks[loc, j] = 8 * r + edge + (4 if ins else 0)
                if c < K:
                    lc[loc] = c + 1
    for v in range(tv0, tv1 + 1):
        for u in range(tu0, tu1 + 1):
            p = (b * H + v) * W + u
            loc = (v - tv0) * ts + (u - tu0)
            c = lc[loc]
            cnt[p] = c
            for j in range(c):
                k = ks[loc, j]
                opair[p, j] = k >> 3
                oflag[p, j] = k & 7


@numba.njit(cache=True, nogil=True)
def _tiles_range(t0, t1, ts, nty, ntx, tile_off, bin_rows, T, box, H, W, K, znear, zfar, blur, scale2, cnt, opair,
                 oflag, zs, ks, lc, eg):  # pragma: no cover - compiled
    """Tasks [t0, t1): task t is tile t % (nty * ntx) of image t // (nty * ntx)."""
    nt = nty * ntx
    for t in range(t0, t1):
        b = t // nt
        k = t - b * nt
        ty = k // ntx
        _tile(b, ty, k - ty * ntx, ts, bin_rows[tile_off[t]:tile_off[t + 1]], T, box, H, W, K, znear, zfar, blur,
              scale2, cnt, opair, oflag, zs, ks, lc, eg)


@numba.njit(cache=True, nogil=True)
def _emit_range(p0, p1, cnt, off, opair, oflag, keep, pair, pix, rank, inside, edge):  # pragma: no cover
    """The kept fragments of pixels [p0, p1), pixel-major, from ``off[p]`` on."""
    for p in range(p0, p1):
        o = off[p]
        for j in range(cnt[p]):
            f = oflag[p, j]
            pair[o + j] = keep[opair[p, j]]
            pix[o + j] = p
            rank[o + j] = j
            inside[o + j] = f >= 4
            edge[o + j] = f & 3


@numba.njit(cache=True, nogil=True)
def _run_ser(ro, box, T, keep, B, H, W, K, znear, zfar, blur, scale2, ts, nty, ntx, cnt,
             opair, oflag):  # pragma: no cover - compiled
    nt = nty * ntx
    counts = np.zeros(B * nt, np.int64)
    cur = np.empty(nt, np.int64)
    dummy = np.empty(0, np.int64)
    for b in range(B):
        _bin(ro[b], ro[b + 1], box, ts, ntx, counts, cur, dummy, False)
        counts[b * nt:(b + 1) * nt] = cur
    tile_off = np.zeros(B * nt + 1, np.int64)
    tile_off[1:] = np.cumsum(counts)
    bin_rows = np.empty(tile_off[B * nt], np.int64)
    for b in range(B):
        _bin(ro[b], ro[b + 1], box, ts, ntx, tile_off[b * nt:], cur, bin_rows, True)
    zs = np.empty((ts * ts, K), np.float64)
    ks = np.empty((ts * ts, K), np.int64)
    lc = np.empty(ts * ts, np.int64)
    eg = np.empty((5, 4), np.float64)
    _tiles_range(0, B * nt, ts, nty, ntx, tile_off, bin_rows, T, box, H, W, K, znear, zfar, blur, scale2, cnt, opair,
                 oflag, zs, ks, lc, eg)


@numba.njit(parallel=True, cache=True, nogil=True)
def _run_par(ro, box, T, keep, B, H, W, K, znear, zfar, blur, scale2, ts, nty, ntx, cnt,
             opair, oflag):  # pragma: no cover - compiled
    nt = nty * ntx
    counts = np.zeros(B * nt, np.int64)
    dummy = np.empty(0, np.int64)
    for b in prange(B):
        cur = np.empty(nt, np.int64)
        _bin(ro[b], ro[b + 1], box, ts, ntx, counts, cur, dummy, False)
        counts[b * nt:(b + 1) * nt] = cur
    tile_off = np.zeros(B * nt + 1, np.int64)
    tile_off[1:] = np.cumsum(counts)
    bin_rows = np.empty(tile_off[B * nt], np.int64)
    for b in prange(B):
        cur = np.empty(nt, np.int64)
        _bin(ro[b], ro[b + 1], box, ts, ntx, tile_off[b * nt:], cur, bin_rows, True)
    for t in prange(B * nt):
        zs = np.empty((ts * ts, K), np.float64)
        ks = np.empty((ts * ts, K), np.int64)
        lc = np.empty(ts * ts, np.int64)
        eg = np.empty((5, 4), np.float64)
        _tiles_range(t, t + 1, ts, nty, ntx, tile_off, bin_rows, T, box, H, W, K, znear, zfar, blur, scale2, cnt,
                     opair, oflag, zs, ks, lc, eg)


@numba.njit(parallel=True, cache=True, nogil=True)
def _emit_par(cnt, off, opair, oflag, keep, pair, pix, rank, inside, edge):  # pragma: no cover - compiled
    n = cnt.shape[0]
    for c in prange((n + _PIX_CHUNK - 1) // _PIX_CHUNK):
        _emit_range(c * _PIX_CHUNK, min(n, (c + 1) * _PIX_CHUNK), cnt, off, opair, oflag, keep, pair, pix, rank,
                    inside, edge)


def select(
    table: np.ndarray,
    box: np.ndarray,
    img: np.ndarray,
    keep: np.ndarray,
    B: int,
    H: int,
    W: int,
    K: int,
    znear: float,
    zfar: float,
    blur: float,
    scale2: float,
    threads: int = 1,
) -> tuple[np.ndarray, ...]:
    """The ``K`` nearest fragments of every pixel (validated, set-up inputs).

    Args:
        table: ``(n, 22)`` float64 rows of the pairs that can give fragments:
            edge coefficients ``A0 B0 C0 A1 B1 C1 A2 B2 C2``, ``|D|``, the
            clipped polygon's 4 projected corners ``u0 v0 ... u3 v3``, their
            depths ``z0 .. z3``.
        box: ``(n, 4)`` int64 candidate pixels ``(u0, u1, v0, v1)``, inclusive,
            non-empty, inside the image.
        img: ``(n,)`` int64 image of each row, non-decreasing.
        keep: ``(n,)`` int64 pair index of each row, increasing.
        B, H, W: images and their size; K: fragments kept per pixel.
        znear, zfar, blur, scale2: the op's planes, blur radius (squared NDC)
            and squared NDC units per squared pixel.
        threads: threads of numba's pool (set by the caller with
            :func:`geomgen.backend.kernel_threads`); 1 runs the serial kernels.

    Returns:
        ``(pair, pix, rank, inside, edge)``, each ``(N,)`` (int64, bool for
        ``inside``), sorted by ``pix = (b * H + v) * W + u``, then ``rank``.
    """
    n_pix = B * H * W
    ts = int(TILE)
    nty = -(-H // ts)
    ntx = -(-W // ts)
    ro = np.searchsorted(img, np.arange(B + 1)).astype(np.int64)
    cnt = np.empty(n_pix, np.int32)
    opair = np.empty((n_pix, K), np.int32 if table.shape[0] < 2**31 else np.int64)
    oflag = np.empty((n_pix, K), np.int8)
    args = (ro, box, table, keep, B, H, W, K, float(znear), float(zfar), float(blur), float(scale2), ts, nty,
            ntx, cnt, opair, oflag)
    parallel = threads > 1
    if parallel:
        old = numba.get_parallel_chunksize()
        numba.set_parallel_chunksize(1)  # dynamically scheduled tiles
        try:
            _run_par(*args)
        finally:
            numba.set_parallel_chunksize(old)
    else:
        _run_ser(*args)
    off = np.zeros(n_pix + 1, np.int64)
    np.cumsum(cnt, out=off[1:])
    N = int(off[-1])
    pair = np.empty(N, np.int64)
    pix = np.empty(N, np.int64)
    rank = np.empty(N, np.int64)
    inside = np.empty(N, np.bool_)
    edge = np.empty(N, np.int64)
    out = (cnt, off, opair, oflag, keep, pair, pix, rank, inside, edge)
    if parallel:
        _emit_par(*out)
    else:
        _emit_range(0, n_pix, *out)
    return pair, pix, rank, inside, edge
