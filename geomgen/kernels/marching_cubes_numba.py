"""Numba marching cubes for one dense ``(D, H, W)`` volume (CPU).

Serves :func:`geomgen.ops.marching_cubes.marching_cubes`; the public op
validates every argument, so the kernel assumes a C-contiguous float32 or
float64 volume with ``D, H, W >= 2``.  Finiteness is checked by the first
pass (which reads every value anyway, so the check is free): with any NaN/Inf
the kernel stops before computing anything from the values and reports the
count, and the op raises.

Algorithm (three passes over z-slices, no hash maps)
----------------------------------------------------
1. **classify**: ``s[k, j, i] = 1`` when sample ``(k, j, i)`` is inside
   (one byte per sample, rows padded to whole 8-byte words), and a state
   per row: all outside, all inside, or mixed.
2. **count**: per grid row ``r = k * H + j`` count the crossed edges the
   row's samples own (sample ``(k, j, i)`` owns the edges going ``+x``, ``+y``
   and ``+z`` from it) and the triangles of the cube row ``(k, j)`` (case
   table).  A row whose 4 neighbouring rows ``(k | k+1, j | j+1)`` are all
   uniform and alike is skipped in O(1); inside a row, 8 cubes at a time are
   tested with 64-bit word operations and only the cut cubes are visited.
3. **prefix sums** give every row a vertex block laid out as
   ``[x-edge vertices | y-edge vertices | z-edge vertices]``, each in
   increasing ``i``, and a triangle block.
4. **emit**: each row visits its cut cubes (same word test) with one running
   vertex id per (row, axis) it touches; the running ids only advance on
   crossed edges, all of which belong to cut cubes, so the id of every crossed
   edge is known without any lookup structure.  The row writes the vertices
   it owns (linear interpolation along the edge) and the case's triangles.

Vertex ids are thus assigned per crossed grid edge: every crossed edge gives
exactly one vertex, shared by all cubes around it.  The ordering (rows in
``(k, j)`` order, then axis, then ``i``; triangles in cube order, then table
order) is reproduced exactly by the torch reference in the op module.

Threads: every pass is a serial ``nogil`` function over a list of z-slices;
:func:`run_slabs` runs several lists in Python threads (``workers`` > 1).
This keeps compile time low (no parfor lowering), avoids OpenMP worker
pools (fork safety, spinning threads on a shared machine) and lets the op
default to one thread, which measured fastest on a busy 2-core machine.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numba
import numpy as np

from geomgen.kernels._mc_tables import mc_tables

__all__ = ["marching_cubes_numba", "run_slabs", "slab_lists"]


_ONES8 = np.uint64(0x0101010101010101)


@numba.njit(cache=True, nogil=True)
def _classify(vol, level, greater, s, rstate, bad, ks):  # pragma: no cover - compiled
    """s[k, j, i] = 1 for inside samples; rstate[k, j] = 0 (row all outside),
    1 (all inside) or 2 (mixed); bad[k] = number of NaN/Inf samples in slice k."""
    D, H, W = vol.shape
    for k in ks:
        nbad = 0
        for j in range(H):
            row = vol[k, j]
            out = s[k, j]
            n_in = 0
            n_fin = 0
            if greater:
                for i in range(W):
                    v = row[i]
                    b = 1 if v >= level else 0
                    out[i] = b
                    n_in += b
                    n_fin += 1 if abs(v) < np.inf else 0
            else:
                for i in range(W):
                    v = row[i]
                    b = 1 if v <= level else 0
                    out[i] = b
                    n_in += b
                    n_fin += 1 if abs(v) < np.inf else 0
            rstate[k, j] = 0 if n_in == 0 else (1 if n_in == W else 2)
            nbad += W - n_fin
        bad[k] = nbad


@numba.njit(cache=True, nogil=True, inline="always")
def _quad_uniform(rstate, k, j, kn, jn):  # pragma: no cover - compiled
    """True when rows (k, j), (k, jn), (kn, j), (kn, jn) all lie on one side."""
    a = rstate[k, j]
    return a != 2 and rstate[k, jn] == a and rstate[kn, j] == a and rstate[kn, jn] == a


@numba.njit(cache=True, nogil=True, inline="always")
def _col(s00, s01, s10, s11, i):  # pragma: no cover - compiled
    """Corner bits of the cube column at sample i (the x = 0 corners 0, 2, 4, 6)."""
    return (
        np.int64(s00[i]) | (np.int64(s01[i]) << 2) | (np.int64(s10[i]) << 4) | (np.int64(s11[i]) << 6)
    )


@numba.njit(cache=True, nogil=True, inline="always")
def _word(w, c):  # pragma: no cover - compiled
    """Word ``c`` of a row of packed bytes, 0 past the end."""
    return w[c] if c < w.shape[0] else np.uint64(0)


@numba.njit(cache=True, nogil=True, inline="always")
def _chunk_mask(w00, w01, w10, w11, c):  # pragma: no cover - compiled
    """Bit ``8 * b`` is set when cube ``8 * c + b`` of the 4 rows is cut, i.e.
    its 8 corners (samples ``i`` and ``i + 1`` of the 4 rows) are not all on
    one side.  Every crossed edge owned by sample ``i`` of row (k, j) is an
    edge of that cube, so unset samples can be skipped.  (Bytes hold 0/1, so
    xor/or never carry between bytes.)"""
    a00 = w00[c]
    a01 = w01[c]
    a10 = w10[c]
    a11 = w11[c]
    sh = np.uint64(8)
    top = np.uint64(56)
    b00 = (a00 >> sh) | (_word(w00, c + 1) << top)
    b01 = (a01 >> sh) | (_word(w01, c + 1) << top)
    b10 = (a10 >> sh) | (_word(w10, c + 1) << top)
    b11 = (a11 >> sh) | (_word(w11, c + 1) << top)
    return (a00 ^ a01) | (a00 ^ a10) | (a00 ^ a11) | (a00 ^ b00) | (a00 ^ b01) | (a00 ^ b10) | (a00 ^ b11)


@numba.njit(cache=True, nogil=True)
def _count(s, s64, rstate, W, ntri, cnt, tcount, ks):  # pragma: no cover - compiled
    """cnt[r, axis]: crossed edges owned by row r = k * H + j; tcount[r]:
    triangles of cube row r (0 for the last row/slice)."""
    D, H, _ = s.shape
    nchunk = s64.shape[2]
    for k in ks:
        for j in range(H):
            r = k * H + j
            # rows beyond the volume are replaced by row (k, j): xor gives no crossing
            jn = min(j + 1, H - 1)
            kn = min(k + 1, D - 1)
            cnt[r, 0] = 0
            cnt[r, 1] = 0
            cnt[r, 2] = 0
            tcount[r] = 0
            if _quad_uniform(rstate, k, j, kn, jn):
                continue
            s00 = s[k, j]
            s01 = s[k, jn]
            s10 = s[kn, j]
            s11 = s[kn, jn]
            w00 = s64[k, j]
            w01 = s64[k, jn]
            w10 = s64[kn, j]
            w11 = s64[kn, jn]
            nx = 0
            ny = 0
            nz = 0
            nt = 0
            for c in range(nchunk):
                d = _chunk_mask(w00, w01, w10, w11, c)
                if d == 0:
                    continue
                for b in range(8):
                    if (d >> np.uint64(8 * b)) & np.uint64(1) == 0:
                        continue
                    i = 8 * c + b
                    if i >= W:
                        break
                    a = np.int64(s00[i])
                    ny += a ^ np.int64(s01[i])
                    nz += a ^ np.int64(s10[i])
                    if i + 1 < W:
                        nx += a ^ np.int64(s00[i + 1])
                        nt += ntri[_col(s00, s01, s10, s11, i) | (_col(s00, s01, s10, s11, i + 1) << 1)]
            cnt[r, 0] = nx
            cnt[r, 1] = ny
            cnt[r, 2] = nz
            tcount[r] = nt if (k + 1 < D and j + 1 < H) else 0


@numba.njit(cache=True, nogil=True)
def _emit(  # pragma: no cover - compiled
    vol, level, s, s64, cnt, voff, toff, tri, ntri, emask, org, sp, verts, faces, codes, want_codes, ks
):
    D, H, W = vol.shape
    nchunk = s64.shape[2]
    for k in ks:
        ids = np.empty(12, dtype=np.int64)
        for j in range(H):
            r = k * H + j
            if voff[r + 1] == voff[r] and toff[r + 1] == toff[r]:
                continue
            cubes = k + 1 < D and j + 1 < H
            jn = min(j + 1, H - 1)
            kn = min(k + 1, D - 1)
            r01 = k * H + jn
            r10 = kn * H + j
            r11 = kn * H + jn
            s00 = s[k, j]
            s01 = s[k, jn]
            s10 = s[kn, j]
            s11 = s[kn, jn]
            w00 = s64[k, j]
            w01 = s64[k, jn]
            w10 = s64[kn, j]
            w11 = s64[kn, jn]
            v00 = vol[k, j]
            v01 = vol[k, jn]
            v10 = vol[kn, j]
            y = org[1] + j * sp[1]
            z = org[2] + k * sp[2]
            # running vertex ids at sample i: x-edges of the 4 rows, y-edges of
            # rows (k, j) and (k+1, j), z-edges of rows (k, j) and (k, j+1)
            cx0 = voff[r]
            cx1 = voff[r01]
            cx2 = voff[r10]
            cx3 = voff[r11]
            cy0 = voff[r] + cnt[r, 0]
            cy1 = voff[r10] + cnt[r10, 0]
            cz0 = voff[r] + cnt[r, 0] + cnt[r, 1]
            cz1 = voff[r01] + cnt[r01, 0] + cnt[r01, 1]
            fo = toff[r]
            base = (k * H + j) * W
            for c in range(nchunk):
                d = _chunk_mask(w00, w01, w10, w11, c)
                if d == 0:
                    continue
                for b in range(8):
                    if (d >> np.uint64(8 * b)) & np.uint64(1) == 0:
                        continue
                    i = 8 * c + b
                    if i >= W:
                        break
                    # -- vertices owned by sample (k, j, i): ids cx0, cy0, cz0
                    a = s00[i]
                    va = v00[i]
                    if i + 1 < W and s00[i + 1] != a:
                        t = (level - va) / (v00[i + 1] - va)
                        verts[cx0, 0] = org[0] + (i + t) * sp[0]
                        verts[cx0, 1] = y
                        verts[cx0, 2] = z
                        if want_codes:
                            codes[cx0] = (base + i) * 3
                    if s01[i] != a:
                        t = (level - va) / (v01[i] - va)
                        verts[cy0, 0] = org[0] + i * sp[0]
                        verts[cy0, 1] = org[1] + (j + t) * sp[1]
                        verts[cy0, 2] = z
                        if want_codes:
                            codes[cy0] = (base + i) * 3 + 1
                    if s10[i] != a:
                        t = (level - va) / (v10[i] - va)
                        verts[cz0, 0] = org[0] + i * sp[0]
                        verts[cz0, 1] = y
                        verts[cz0, 2] = org[2] + (k + t) * sp[2]
                        if want_codes:
                            codes[cz0] = (base + i) * 3 + 2
                    if i + 1 == W:
                        break
                    # -- cube (k, j, i)
                    case = _col(s00, s01, s10, s11, i) | (_col(s00, s01, s10, s11, i + 1) << 1)
                    m = emask[case]
                    if cubes and m != 0:
                        ids[0] = cx0
                        ids[1] = cx1
                        ids[2] = cx2
                        ids[3] = cx3
                        ids[4] = cy0
                        ids[5] = cy0 + ((m >> 4) & 1)
                        ids[6] = cy1
                        ids[7] = cy1 + ((m >> 6) & 1)
                        ids[8] = cz0
                        ids[9] = cz0 + ((m >> 8) & 1)
                        ids[10] = cz1
                        ids[11] = cz1 + ((m >> 10) & 1)
                        for t3 in range(ntri[case]):
                            faces[fo, 0] = ids[tri[case, t3, 0]]
                            faces[fo, 1] = ids[tri[case, t3, 1]]
                            faces[fo, 2] = ids[tri[case, t3, 2]]
                            fo += 1
                    # advance the running ids past sample i
                    cx0 += m & 1
                    cx1 += (m >> 1) & 1
                    cx2 += (m >> 2) & 1
                    cx3 += (m >> 3) & 1
                    cy0 += (m >> 4) & 1
                    cy1 += (m >> 6) & 1
                    cz0 += (m >> 8) & 1
                    cz1 += (m >> 10) & 1


@numba.njit(cache=True, nogil=True)
def _offsets(cnt, tcount):  # pragma: no cover - compiled
    """Exclusive prefix sums: vertex block and triangle block of every row."""
    R = tcount.shape[0]
    voff = np.empty(R + 1, dtype=np.int64)
    toff = np.empty(R + 1, dtype=np.int64)
    voff[0] = 0
    toff[0] = 0
    for r in range(R):
        voff[r + 1] = voff[r] + cnt[r, 0] + cnt[r, 1] + cnt[r, 2]
        toff[r + 1] = toff[r] + tcount[r]
    return voff, toff


def slab_lists(n: int, workers: int, block: int = 4) -> list[np.ndarray]:
    """Split slices ``0 .. n-1`` into ``workers`` lists, dealt round-robin in
    blocks of ``block`` slices so that work concentrated in a few slices is
    still shared."""
    idx = np.arange(n, dtype=np.int64)
    if workers <= 1:
        return [idx]
    owner = (idx // block) % workers
    return [idx[owner == w] for w in range(workers) if np.any(owner == w)]


def run_slabs(fn: Callable[..., Any], args: tuple[Any, ...], slabs: list[np.ndarray]) -> None:
    """Call ``fn(*args, ks)`` for every slab list, in parallel threads when
    there are several (the kernels are ``nogil``); the first list runs in the
    calling thread.  Re-raises the first exception of any thread."""
    if len(slabs) == 1:
        fn(*args, slabs[0])
        return
    errors: list[BaseException] = []

    def work(ks: np.ndarray) -> None:
        try:
            fn(*args, ks)
        except BaseException as exc:  # pragma: no cover - kernels do not raise
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(ks,), daemon=True) for ks in slabs[1:]]
    for t in threads:
        t.start()
    work(slabs[0])
    for t in threads:
        t.join()
    if errors:  # pragma: no cover
        raise errors[0]


def marching_cubes_numba(
    vol: np.ndarray,
    level: float,
    greater: bool,
    origin: np.ndarray,
    spacing: np.ndarray,
    want_codes: bool = False,
    workers: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Marching cubes of one volume (validated by the caller except for finiteness).

    Args:
        vol: ``(D, H, W)`` C-contiguous float32/float64, ``D, H, W >= 2``.  The
            first pass also counts NaN/Inf values (it reads every value
            anyway); if there are any, nothing else runs.
        level: iso level.
        greater: True when ``value >= level`` is inside (occupancy-like), False
            when ``value <= level`` is inside (sdf-like).
        origin: ``(3,)`` float64 xyz world position of sample ``[0, 0, 0]``.
        spacing: ``(3,)`` float64 xyz distance between neighbouring samples.
        want_codes: also return, per vertex, ``3 * flat_index(lower endpoint) + axis``.
        workers: threads sharing the z-slices of each pass (1: run inline).

    Returns:
        ``verts`` ``(V, 3)`` in ``vol.dtype`` (xyz), ``faces`` ``(F, 3)`` int64
        (outward, right-hand rule), ``codes`` ``(V,)`` int64 (empty unless asked),
        and the number of NaN/Inf values (when > 0 the arrays are empty and the
        caller must raise).
    """
    t = mc_tables()
    D, H, W = vol.shape
    level = float(level)
    slabs = slab_lists(D, workers)
    s = np.empty((D, H, (W + 7) // 8 * 8), dtype=np.uint8)  # rows padded to whole 8-byte words
    s[:, :, W:] = 0  # padding bytes only ever meet the shift in _chunk_mask; keep them defined
    s64 = s.view(np.uint64)
    rstate = np.empty((D, H), dtype=np.uint8)
    bad = np.zeros(D, dtype=np.int64)
    run_slabs(_classify, (vol, level, bool(greater), s, rstate, bad), slabs)
    n_bad = int(bad.sum())
    if n_bad:  # the caller raises; nothing is computed from non-finite values
        return np.empty((0, 3), dtype=vol.dtype), np.empty((0, 3), dtype=np.int64), np.empty(0, dtype=np.int64), n_bad
    cnt = np.empty((D * H, 3), dtype=np.int64)
    tcount = np.empty(D * H, dtype=np.int64)
    run_slabs(_count, (s, s64, rstate, W, t.ntri, cnt, tcount), slabs)
    voff, toff = _offsets(cnt, tcount)
    nv, nf = int(voff[-1]), int(toff[-1])
    verts = np.empty((nv, 3), dtype=vol.dtype)
    faces = np.empty((nf, 3), dtype=np.int64)
    codes = np.empty(nv if want_codes else 0, dtype=np.int64)
    if nv:
        run_slabs(
            _emit,
            (vol, level, s, s64, cnt, voff, toff, t.tri, t.ntri, t.edge_mask, origin, spacing,
             verts, faces, codes, bool(want_codes)),
            slabs,
        )
    return verts, faces, codes, 0
