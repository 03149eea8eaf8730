"""Numba CPU kernels of :func:`geomgen.ops.knn_points`: K nearest neighbours on a uniform grid.

Shapes used in this module:

* ``N``  -- batch size
* ``P1`` -- (padded) number of query points per cloud
* ``P2`` -- (padded) number of reference points per cloud
* ``M``  -- total number of valid reference points of the batch (``sum(lengths2)``)
* ``K``  -- neighbours per query

Algorithm
---------
*Grid.*  Each reference cloud is sorted into a uniform grid of cubic cells of
side ``h`` by a counting sort (count, prefix sum, stable scatter), then every
cell is sorted by x, so that each *row* of cells ``(:, y, z)`` is a contiguous
run of points sorted by x.  ``h`` gives about :data:`CELLS_PER_POINT` cells per
point over the bounding box; axes whose extent is below ``h`` (or below 1e-9
of the largest: points on a plane or a line) get a single cell, and the cell
count stays ``<= 8 * M + 64`` however skewed, tiny or huge the extents are
(sizes are solved in logarithms; a box that is a single point, subnormal, or
whose extent overflows float64, gets one cell).  Along an axis where a few
outliers stretch the box more than :data:`OUTLIER_STRETCH` times beyond the
bulk of the points, the grid spans the bulk and its end cells are unbounded
(see :func:`_plan_one`).

*Search.*  A query visits rows in square rings of growing Chebyshev radius
around its own ``(y, z)`` cell (coordinates clamped to the grid).  A row is
scanned from the query's x outwards in both directions; each direction stops
at the first point whose x-distance alone (plus the row's y/z gap) cannot beat
the current K-th distance.  Whole planes and rows whose lower bound cannot
beat it are skipped, and the rings stop when the distance to the nearest
unvisited row does not beat it.  Every bound adds the query's distance to the
cloud's bounding box along the other axes, which keeps queries outside the
cloud cheap.  The K best are kept sorted by (distance, index) (insertion
sort; registers for ``K == 1``).  Bounds are computed in float64 and
certified with a relative slack of 1e-6, so rounding of the input-precision
distances can never drop a true neighbour: results equal a brute-force search
except that, among exactly equal distances, the lower index is preferred
(the brute-force reference may order such ties differently).

*Precision.*  Distances are computed in the input precision (float32 or
float64), coordinate by coordinate in the same order as the torch reference
(``((dx*dx + dy*dy) + dz*dz)``), so they equal it bit for bit.

*Cost.*  Building is ``O(M)`` (plus sorting the few points of each cell).  A
query costs a few rows and 10-20 points for clouds sampled on surfaces or in
volumes; duplicates stop a query at once (distance 0).  Queries far outside
the reference cloud (farther than its size) visit up to all ``O(M^(2/3))``
rows, each rejected in a few instructions; a tiny dense cluster inside a huge
bounding box degrades towards scanning that cluster's rows.  Both stay
correct.

*Parallelism.*  The work lives in serial ``*_range`` functions; thin
``prange`` wrappers run them over dynamically scheduled chunks of queries
(:data:`SEARCH_CHUNK`) or over the clouds of a batch.  The entry points take
``threads``, the thread count the caller set up with
:func:`geomgen.backend.kernel_threads` (which gives 1 for small problems, a
thread budget of 1 and processes forked after numba's thread pool started);
with 1 they call the serial functions directly and never touch numba's pool,
as they do for a single cloud's grid or a single chunk of queries.  Cold, the
kernels compile in about 10 s per dtype on a 2-core machine; numba's on-disk
cache makes later processes load them in well under a second.

The kernels never validate: :func:`geomgen.ops.knn_points` and
:func:`geomgen.losses.chamfer_distance` check shapes, lengths, K and
finiteness before calling :func:`knn_search` / :func:`chamfer_nn`.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import prange

__all__ = ["build_grids", "knn_search", "chamfer_nn"]

#: Grid cells per reference point (over the bounding box).  The search cost
#: is flat within +-10% for 0.5-4 on volume and surface samples (measured).
CELLS_PER_POINT = 1.0
#: An axis whose bounding box is this many times wider than the central 98%
#: of the points gets a grid spanning (about) the latter only.
OUTLIER_STRETCH = 8.0
#: Points sampled (with a stride) to estimate those quantiles.
QUANTILE_SAMPLE = 256
#: Relative slack of the certification tests (guards against rounding).
_SLACK = 1.0 - 1e-6
_INV_SLACK = 1.0 / _SLACK


# --------------------------------------------------------------------------- #
# grid construction
# --------------------------------------------------------------------------- #


@numba.njit(cache=True, nogil=True)
def _grid_dims(ext, n_pts, cells_per_point, G):
    """Cell size ``h`` for a box of extents ``ext`` (3,) float64 holding
    ``n_pts`` points so that there are about ``cells_per_point * n_pts`` cells;
    fills ``G`` (3,) int64 with the cell counts and returns ``h`` (0.0 when the
    box is a single point or not representable: then ``G`` is all ones)."""
    for d in range(3):
        G[d] = 1
    maxext = 0.0
    for d in range(3):
        if ext[d] > maxext:
            maxext = ext[d]
    if not (maxext > 0.0) or not math.isfinite(maxext):
        return 0.0
    target = max(1.0, cells_per_point * n_pts)
    active = np.zeros(3, dtype=np.bool_)
    for d in range(3):
        active[d] = ext[d] > maxext * 1e-9
    h = maxext
    # Solve prod(ext_d / h) = target over the active axes (in logs: no
    # overflow), dropping axes thinner than one cell until stable.
    for _ in range(3):
        k = 0
        s = 0.0
        for d in range(3):
            if active[d]:
                k += 1
                s += math.log(ext[d])
        h = math.exp((s - math.log(target)) / k)
        changed = False
        for d in range(3):
            if active[d] and ext[d] < h:
                active[d] = False
                changed = True
        if not changed:
            break
    if not (h > 0.0) or not math.isfinite(h) or not math.isfinite(1.0 / h):
        return 0.0  # e.g. subnormal extents: one cell
    total = 1.0
    for d in range(3):
        if active[d]:
            g = math.ceil(ext[d] / h)
            g = min(max(g, 1.0), 1e7)
            G[d] = np.int64(g)
            total *= g
    if total > 8.0 * target + 64.0:  # cannot happen (each active axis has ext >= h)
        for d in range(3):
            G[d] = 1
        return 0.0
    return h


@numba.njit(cache=True, nogil=True)
def _cell_coord(v, lo, inv_h, g):
    """Cell index along one axis of coordinate ``v`` (float64), clamped to [0, g)."""
    c = (v - lo) * inv_h
    if not c >= 1.0:  # also catches negative values (and NaN, which cannot occur)
        return 0
    if c >= g - 1:
        return g - 1
    return np.int64(c)


@numba.njit(cache=True, nogil=True)
def _plan_one(pts, L, lo, hi, org, G, cells_per_point):
    """Bounding box (into ``lo``/``hi``), grid origin (into ``org``), cell
    counts (into ``G``) and ``1/h`` for the first ``L`` points of one cloud
    ``pts`` ``(P, 3)``.

    The grid spans the bounding box, except along an axis where a few
    outliers stretch the box more than :data:`OUTLIER_STRETCH` times beyond
    the bulk of the points (estimated from the 1% and 99% quantiles of a
    sample of :data:`QUANTILE_SAMPLE` points): there it spans the bulk widened
    by its width on both sides, and the first and last cells of the axis also
    hold everything beyond (the search treats them as unbounded).  A handful
    of far points then no longer crams the cloud into a few huge cells.
    """
    lo0 = lo1 = lo2 = np.inf
    hi0 = hi1 = hi2 = -np.inf
    for i in range(L):
        v0 = np.float64(pts[i, 0])
        v1 = np.float64(pts[i, 1])
        v2 = np.float64(pts[i, 2])
        lo0 = min(lo0, v0)
        hi0 = max(hi0, v0)
        lo1 = min(lo1, v1)
        hi1 = max(hi1, v1)
        lo2 = min(lo2, v2)
        hi2 = max(hi2, v2)
    if L == 0:
        lo0 = lo1 = lo2 = hi0 = hi1 = hi2 = 0.0
    lo[0], lo[1], lo[2] = lo0, lo1, lo2
    hi[0], hi[1], hi[2] = hi0, hi1, hi2
    ext = np.empty(3)
    for d in range(3):
        org[d] = lo[d]
        ext[d] = hi[d] - lo[d]
    S = QUANTILE_SAMPLE
    if L >= 2 * S:
        stride = L // S
        samp = np.empty(S)
        k = S // 100
        for d in range(3):
            smin = np.inf
            smax = -np.inf
            for i in range(S):
                v = np.float64(pts[i * stride, d])
                samp[i] = v
                smin = min(smin, v)
                smax = max(smax, v)
            if ext[d] <= OUTLIER_STRETCH * (smax - smin):
                continue  # the usual case: no need for quantiles
            samp.sort()
            a = samp[k]
            b = samp[S - 1 - k]
            w = b - a
            if ext[d] > OUTLIER_STRETCH * w:
                glo = max(lo[d], a - w)
                org[d] = glo
                ext[d] = min(hi[d], b + w) - glo
    h = _grid_dims(ext, L, cells_per_point, G)
    return 1.0 if h == 0.0 else 1.0 / h


@numba.njit(cache=True, nogil=True)
def _sort_by_x(spts, sidx, a, b):
    """Stable sort of ``spts[a:b]`` (and ``sidx``) by x, for crowded cells."""
    order = np.argsort(spts[a:b, 0], kind="mergesort")
    tmp = spts[a:b].copy()
    tmpi = sidx[a:b].copy()
    for k in range(b - a):
        spts[a + k, 0] = tmp[order[k], 0]
        spts[a + k, 1] = tmp[order[k], 1]
        spts[a + k, 2] = tmp[order[k], 2]
        sidx[a + k] = tmpi[order[k]]


@numba.njit(cache=True, nogil=True)
def _build_range(n0, n1, pts, lengths, cells_per_point, lo, hi, org, inv_h, G, cell_off, pt_off,
                 cell_start, spts, sidx, cid):
    """Grids of clouds ``n0 <= n < n1``: plan (:func:`_plan_one`), counting
    sort into the cells, then each cell sorted by x.  Each cloud owns the
    slice ``cell_off[n]:cell_off[n + 1]`` of ``cell_start`` (zeroed, sized
    for the largest grid :func:`_grid_dims` can choose) and
    ``pt_off[n]:pt_off[n + 1]`` of ``spts``/``sidx``/``cid``."""
    for n in range(n0, n1):
        inv_h[n] = _plan_one(pts[n], lengths[n], lo[n], hi[n], org[n], G[n], cells_per_point)
        L = lengths[n]
        g0, g1, g2 = G[n, 0], G[n, 1], G[n, 2]
        c0_ = cell_off[n]
        p0_ = pt_off[n]
        ih = inv_h[n]
        for i in range(L):
            a = _cell_coord(np.float64(pts[n, i, 0]), org[n, 0], ih, g0)
            b = _cell_coord(np.float64(pts[n, i, 1]), org[n, 1], ih, g1)
            c = _cell_coord(np.float64(pts[n, i, 2]), org[n, 2], ih, g2)
            cc = (c * g1 + b) * g0 + a
            cid[p0_ + i] = cc
            cell_start[c0_ + cc + 1] += 1
        ncell = g0 * g1 * g2
        for c in range(ncell):
            cell_start[c0_ + c + 1] += cell_start[c0_ + c]
        # scatter (stable): use the running start of each cell, then restore
        for i in range(L):
            cc = cid[p0_ + i]
            pos = cell_start[c0_ + cc]
            cell_start[c0_ + cc] = pos + 1
            spts[p0_ + pos, 0] = pts[n, i, 0]
            spts[p0_ + pos, 1] = pts[n, i, 1]
            spts[p0_ + pos, 2] = pts[n, i, 2]
            sidx[p0_ + pos] = i
        for c in range(ncell, 0, -1):
            cell_start[c0_ + c] = cell_start[c0_ + c - 1]
        cell_start[c0_] = 0
        # sort each cell by x (then by index), so that every row of cells is
        # sorted by x: the search scans rows outwards from the query's x
        for c in range(ncell):
            a = p0_ + cell_start[c0_ + c]
            b = p0_ + cell_start[c0_ + c + 1]
            if b - a > 32:
                _sort_by_x(spts, sidx, a, b)
                continue
            for i in range(a + 1, b):  # insertion sort, inline (no call overhead)
                x0 = spts[i, 0]
                x1 = spts[i, 1]
                x2 = spts[i, 2]
                xi = sidx[i]
                k = i
                while k > a and spts[k - 1, 0] > x0:
                    spts[k, 0] = spts[k - 1, 0]
                    spts[k, 1] = spts[k - 1, 1]
                    spts[k, 2] = spts[k - 1, 2]
                    sidx[k] = sidx[k - 1]
                    k -= 1
                spts[k, 0] = x0
                spts[k, 1] = x1
                spts[k, 2] = x2
                sidx[k] = xi


@numba.njit(parallel=True, cache=True, nogil=True)
def _build_par(pts, lengths, cells_per_point, lo, hi, org, inv_h, G, cell_off, pt_off,
               cell_start, spts, sidx, cid):
    """:func:`_build_range` in parallel over the clouds."""
    for n in prange(pts.shape[0]):
        _build_range(n, n + 1, pts, lengths, cells_per_point, lo, hi, org, inv_h, G, cell_off,
                     pt_off, cell_start, spts, sidx, cid)


# --------------------------------------------------------------------------- #
# search
# --------------------------------------------------------------------------- #


@numba.njit(cache=True, nogil=True, inline="always")
def _gap(q, a, b):
    """Distance from ``q`` to the interval [a, b] (0 inside)."""
    if q < a:
        return a - q
    if q > b:
        return q - b
    return 0.0


@numba.njit(cache=True, nogil=True)
def _search_range(t0, t1, q, qbatch, qrow, lref, K, norm, lo, hi, org, inv_h, G, cell_off,
                  cell_start, pt_off, sp, sidx, od, oi, big):
    """Search every query ``q[t]`` (a point of cloud ``qbatch[t]``) and write
    its ``min(K, lref[n])`` nearest neighbours, sorted by (distance, index),
    to row ``qrow[t]`` of ``od``/``oi`` ``(rows, K)``.

    ``q`` ``(Q, 3)`` are the queries, ``lref`` ``(N,)`` the reference
    cloud sizes, the grid arrays come from :func:`build_grids` (``sp`` is
    its ``spts`` flattened to ``(3 M,)``), ``od``/``oi`` are prefilled with
    0/-1 and ``big`` is +inf in the input dtype.  See the module docstring
    for the row-ring search.

    Everything is inlined in this one loop body on purpose: numba reference
    counts the arrays passed to helper functions with atomic operations,
    which would cost more than the search of a query.
    """
    for t in range(t0, t1):
        n = qbatch[t]
        L = lref[n]
        if L == 0:
            continue
        need = min(K, L)
        row = qrow[t]
        q0 = q[t, 0]
        q1 = q[t, 1]
        q2 = q[t, 2]
        qd0 = np.float64(q0)
        qd1 = np.float64(q1)
        qd2 = np.float64(q2)
        ih = inv_h[n]
        h = 1.0 / ih
        l1 = org[n, 1]
        l2 = org[n, 2]
        g0 = G[n, 0]
        g1 = G[n, 1]
        g2 = G[n, 2]
        cbase = cell_off[n]
        pbase = pt_off[n]
        c0 = _cell_coord(qd0, org[n, 0], ih, g0)
        c1 = _cell_coord(qd1, l1, ih, g1)
        c2 = _cell_coord(qd2, l2, ih, g2)
        # distance of the query to the bounding box, per axis (squared for norm 2)
        r0 = _gap(qd0, lo[n, 0], hi[n, 0])
        r1 = _gap(qd1, lo[n, 1], hi[n, 1])
        r2 = _gap(qd2, lo[n, 2], hi[n, 2])
        o0 = r0 * r0 if norm == 2 else r0
        o1 = r1 * r1 if norm == 2 else r1
        o2 = r2 * r2 if norm == 2 else r2
        rmax = max(max(c1, g1 - 1 - c1), max(c2, g2 - 1 - c2))
        bd = big  # K == 1: best distance (input dtype) and index live in registers
        bi = -1
        found = 0
        kth = np.inf
        done = False
        for rho in range(rmax + 1):
            if rho > 0 and found >= need:
                # lower bound of the distance to every row outside the square of radius rho - 1
                bound = np.inf
                if c1 - rho >= 0:
                    gp = max(qd1 - (l1 + (c1 - rho + 1) * h), 0.0)
                    bound = min(bound, (gp * gp if norm == 2 else gp) + o2 + o0)
                if c1 + rho <= g1 - 1:
                    gp = max(l1 + (c1 + rho) * h - qd1, 0.0)
                    bound = min(bound, (gp * gp if norm == 2 else gp) + o2 + o0)
                if c2 - rho >= 0:
                    gp = max(qd2 - (l2 + (c2 - rho + 1) * h), 0.0)
                    bound = min(bound, (gp * gp if norm == 2 else gp) + o1 + o0)
                if c2 + rho <= g2 - 1:
                    gp = max(l2 + (c2 + rho) * h - qd2, 0.0)
                    bound = min(bound, (gp * gp if norm == 2 else gp) + o1 + o0)
                if kth <= bound * _SLACK:
                    break
            zh = min(c2 + rho, g2 - 1)
            if rho == 0 or c1 - rho >= 0 or c1 + rho <= g1 - 1:
                zl = max(c2 - rho, 0)
                zstep = 1
            else:  # no row of this ring lies inside the planes between its two end planes
                zl = c2 - rho
                zstep = 2 * rho
            for z in range(zl, zh + 1, zstep):
                if z < 0:
                    continue
                # the first and last cells of an axis are unbounded outwards
                gz = max(_gap(qd2, l2 + z * h if z > 0 else -np.inf,
                              l2 + (z + 1) * h if z < g2 - 1 else np.inf), r2)
                gz = gz * gz if norm == 2 else gz
                if kth <= (gz + o1 + o0) * _SLACK:
                    continue
                if z == c2 - rho or z == c2 + rho:
                    ya = max(c1 - rho, 0)
                    yb = min(c1 + rho, g1 - 1)
                    ystep = 1
                else:  # only the two end rows of this plane belong to the ring
                    ya = c1 - rho
                    yb = c1 + rho
                    ystep = 2 * rho
                for y in range(ya, yb + 1, ystep):
                    if y < 0 or y > g1 - 1:
                        continue
                    gy = max(_gap(qd1, l1 + y * h if y > 0 else -np.inf,
                                  l1 + (y + 1) * h if y < g1 - 1 else np.inf), r1)
                    gyz = (gy * gy if norm == 2 else gy) + gz
                    if kth <= (gyz + o0) * _SLACK:
                        continue
                    rowc = cbase + (z * g1 + y) * g0
                    s0 = pbase + cell_start[rowc]
                    s1 = pbase + cell_start[rowc + g0]
                    if s0 == s1:
                        continue
                    if kth < np.inf:  # the row's x extent (its first and last points)
                        gx = _gap(qd0, np.float64(sp[3 * s0]), np.float64(sp[3 * s1 - 3]))
                        if kth <= ((gx * gx if norm == 2 else gx) + gyz) * _SLACK:
                            continue
                    # half-width of the x window that can still beat kth
                    w = np.inf
                    if kth < np.inf:
                        w = max(kth * _INV_SLACK - gyz, 0.0)
                        if norm == 2:
                            w = math.sqrt(w)
                    pos = pbase + cell_start[rowc + c0]
                    for direction in range(2):
                        # forward from the query's cell, then backward before it
                        sgn = 1.0 if direction == 0 else -1.0
                        j = pos if direction == 0 else pos - 1
                        jstep = 1 if direction == 0 else -1
                        while s0 <= j < s1:
                            p0 = sp[3 * j]
                            if (np.float64(p0) - qd0) * sgn > w:
                                break  # the rest of the row is farther along x
                            dx = q0 - p0
                            dy = q1 - sp[3 * j + 1]
                            dz = q2 - sp[3 * j + 2]
                            if norm == 2:
                                d = dx * dx + dy * dy + dz * dz
                            else:
                                d = abs(dx) + abs(dy) + abs(dz)
                            improved = False
                            if K == 1:
                                if d <= bd:
                                    jj = sidx[j]
                                    if d < bd or bi < 0 or jj < bi:
                                        bd = d
                                        bi = jj
                                        found = 1
                                        kth = np.float64(d)
                                        improved = True
                            else:
                                jj = sidx[j]
                                ins = True
                                if found == K:
                                    last = od[row, K - 1]
                                    if d > last or (d == last and jj > oi[row, K - 1]):
                                        ins = False
                                    k = K - 1
                                else:
                                    k = found
                                    found += 1
                                if ins:
                                    while k > 0 and (od[row, k - 1] > d or (
                                            od[row, k - 1] == d and oi[row, k - 1] > jj)):
                                        od[row, k] = od[row, k - 1]
                                        oi[row, k] = oi[row, k - 1]
                                        k -= 1
                                    od[row, k] = d
                                    oi[row, k] = jj
                                    if found >= need:
                                        kth = np.float64(od[row, need - 1])
                                        improved = True
                            if improved:
                                if kth == 0.0:
                                    done = True  # exact duplicates: nothing can be nearer
                                    break
                                w = max(kth * _INV_SLACK - gyz, 0.0)
                                if norm == 2:
                                    w = math.sqrt(w)
                            j += jstep
                        if done:
                            break
                    if done:
                        break
                if done:
                    break
            if done:
                break
        if K == 1:
            od[row, 0] = bd
            oi[row, 0] = bi


# --------------------------------------------------------------------------- #
# compiled variants and thread policy
# --------------------------------------------------------------------------- #


@numba.njit(parallel=True, cache=True, nogil=True)
def _search_par(chunk, q, qbatch, qrow, lref, K, norm, lo, hi, org, inv_h, G, cell_off,
                cell_start, pt_off, sp, sidx, od, oi, big):
    """:func:`_search_range` in parallel over chunks of ``chunk`` queries (one
    call per chunk: the reference counting of its array arguments is paid per
    chunk, not per query, and the search itself is compiled once)."""
    Q = q.shape[0]
    for c in prange((Q + chunk - 1) // chunk):
        _search_range(c * chunk, min(Q, (c + 1) * chunk), q, qbatch, qrow, lref, K, norm, lo,
                      hi, org, inv_h, G, cell_off, cell_start, pt_off, sp, sidx, od, oi, big)


#: Queries per dynamically scheduled chunk of a parallel search, so that a
#: thread that lost its core for a while does not hold the others back.
SEARCH_CHUNK = 1024


# --------------------------------------------------------------------------- #
# Python entry points (validated numpy inputs)
# --------------------------------------------------------------------------- #

#: The arrays of a batch of grids, as returned by :func:`build_grids`.
Grids = tuple


def _c(a: np.ndarray, dtype=None) -> np.ndarray:
    """C-contiguous (and ``dtype``) view or copy: one compiled specialization per dtype."""
    return np.ascontiguousarray(a, dtype=dtype)


def build_grids(pts: np.ndarray, lengths: np.ndarray, threads: int = 1) -> Grids:
    """Sort every cloud of a batch into its grid.

    Args:
        pts: ``(N, P, 3)`` C-contiguous float32/float64 array.
        lengths: ``(N,)`` int64 array, values in ``[0, P]``.
        threads: threads of numba's pool (set up by the caller with
            :func:`geomgen.backend.kernel_threads`); 1 builds serially.

    Returns:
        ``(lo, hi, org, inv_h, G, cell_off, cell_start, pt_off, spts, sidx)``:
        per cloud the bounding box ``lo``/``hi`` ``(N, 3)`` float64, the grid
        origin ``org`` ``(N, 3)``, the inverse cell size ``inv_h`` ``(N,)`` and
        the cell counts ``G`` ``(N, 3)`` int64 (cell ``(a, b, c)`` has linear
        index ``(c * G1 + b) * G0 + a``); offsets ``cell_off`` ``(N + 1,)`` of
        each cloud's ``ncell + 1`` entries in ``cell_start`` (int32, first
        point of each cell, local to the cloud); offsets ``pt_off``
        ``(N + 1,)`` of each cloud in ``spts`` ``(M, 3)`` (input dtype,
        ``M = sum(lengths)``), the points sorted by cell then x, and ``sidx``
        ``(M,)`` int32, their indices in their cloud.
    """
    pts, lengths = _c(pts), _c(lengths, np.int64)
    N = pts.shape[0]
    parallel = N > 1 and threads > 1
    lo = np.zeros((N, 3))
    hi = np.zeros((N, 3))
    org = np.zeros((N, 3))
    inv_h = np.ones(N)
    G = np.ones((N, 3), dtype=np.int64)
    # Each cloud gets room for the largest grid _grid_dims may pick (8 cells
    # per point + 64); np.zeros maps untouched pages lazily, so the unused
    # tail costs address space, not memory or time.
    cell_off = np.zeros(N + 1, dtype=np.int64)
    budget = 8 * np.maximum(np.ceil(CELLS_PER_POINT * lengths), 1).astype(np.int64) + 65
    np.cumsum(budget, out=cell_off[1:])
    pt_off = np.zeros(N + 1, dtype=np.int64)
    np.cumsum(lengths, out=pt_off[1:])
    M = int(pt_off[N])
    cell_start = np.zeros(int(cell_off[N]), dtype=np.int32)
    spts = np.empty((M, 3), dtype=pts.dtype)
    sidx = np.empty(M, dtype=np.int32)
    cid = np.empty(M, dtype=np.int32)
    args = (pts, lengths, CELLS_PER_POINT, lo, hi, org, inv_h, G, cell_off, pt_off, cell_start,
            spts, sidx, cid)
    if parallel:
        _build_par(*args)
    else:
        _build_range(0, N, *args)
    return lo, hi, org, inv_h, G, cell_off, cell_start, pt_off, spts, sidx


def _search_grid(q: np.ndarray, qbatch: np.ndarray, qrow: np.ndarray, lengths_ref: np.ndarray,
                 grid: Grids, K: int, norm: int, n_rows: int, threads: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    od = np.zeros((n_rows, K), dtype=q.dtype)
    oi = np.full((n_rows, K), -1, dtype=np.int64)
    if q.shape[0]:
        big = np.array(np.inf, dtype=q.dtype)[()]
        args = (q, qbatch, qrow, lengths_ref, K, norm, *grid[:8], grid[8].reshape(-1), grid[9],
                od, oi, big)
        if threads > 1 and q.shape[0] > SEARCH_CHUNK:
            old = numba.get_parallel_chunksize()
            numba.set_parallel_chunksize(1)  # chunks of queries, dynamically scheduled
            try:
                _search_par(max(1, SEARCH_CHUNK), *args)
            finally:
                numba.set_parallel_chunksize(old)
        else:
            _search_range(0, q.shape[0], *args)
    return od, oi


def _sorted_queries(grid: Grids, P: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The points of ``grid`` as queries in cell order: (points, batch, output row)."""
    pt_off, spts, sidx = grid[7], grid[8], grid[9]
    N = pt_off.shape[0] - 1
    qbatch = np.repeat(np.arange(N, dtype=np.int64), np.diff(pt_off))
    return spts, qbatch, qbatch * P + sidx


def knn_search(p1: np.ndarray, p2: np.ndarray, lengths1: np.ndarray, lengths2: np.ndarray,
               K: int, norm: int, threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """K nearest neighbours of the valid points of ``p1`` among those of ``p2``.

    Args:
        p1: ``(N, P1, 3)`` C-contiguous float32/float64 array (queries).
        p2: ``(N, P2, 3)`` C-contiguous array of the same dtype (references).
        lengths1, lengths2: ``(N,)`` int64 arrays of valid sizes.
        K: ``>= 1``.
        norm: 2 (squared Euclidean) or 1 (L1).
        threads: threads of numba's pool (set up by the caller with
            :func:`geomgen.backend.kernel_threads`); ``<= 1`` runs the serial kernels.

    Returns:
        ``(dists, idx)``, both ``(N, P1, K)``: distances in the input dtype and
        int64 indices into ``p2``, sorted by (distance, index).  Invalid slots
        (padded query rows, ``k >= lengths2[n]``) hold 0 and -1.
    """
    p1, p2 = _c(p1), _c(p2, p1.dtype)
    lengths1, lengths2 = _c(lengths1, np.int64), _c(lengths2, np.int64)
    N, P1, _ = p1.shape
    if N == 0 or P1 == 0:
        return np.zeros((N, P1, K), dtype=p1.dtype), np.full((N, P1, K), -1, dtype=np.int64)
    grid = build_grids(p2, lengths2, threads)
    valid = np.arange(P1, dtype=np.int64)[None, :] < lengths1[:, None]
    rows = np.flatnonzero(valid.reshape(-1)).astype(np.int64)
    q = p1.reshape(N * P1, 3)[rows]
    od, oi = _search_grid(q, rows // P1, rows, lengths2, grid, K, norm, N * P1, threads)
    return od.reshape(N, P1, K), oi.reshape(N, P1, K)


def chamfer_nn(x: np.ndarray, y: np.ndarray, lengths_x: np.ndarray, lengths_y: np.ndarray,
               norm: int, both: bool = True, threads: int = 1
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Nearest neighbour (K = 1) of every valid point of ``x`` in ``y`` and,
    when ``both``, of ``y`` in ``x`` -- the two searches of a Chamfer distance.

    Each cloud's grid is built once and serves as the reference of one
    direction and as the visiting order of the queries of the other (queries
    in cell order reuse the cache lines of their neighbours).

    Args:
        x: ``(N, P1, 3)`` C-contiguous float32/float64 array.
        y: ``(N, P2, 3)`` C-contiguous array of the same dtype.
        lengths_x, lengths_y: ``(N,)`` int64 arrays of valid sizes.
        norm: 2 (squared Euclidean) or 1 (L1).
        both: also search y -> x.
        threads: threads of numba's pool (set up by the caller with
            :func:`geomgen.backend.kernel_threads`); ``<= 1`` runs the serial kernels.

    Returns:
        ``(d_xy, i_xy, d_yx, i_yx)``: ``(N, P1)`` distances (input dtype) and
        int64 indices into ``y``, and ``(N, P2)`` ones into ``x`` (``None``
        unless ``both``).  Padded rows and rows whose target cloud is empty
        hold 0 and -1.
    """
    x, y = _c(x), _c(y, x.dtype)
    lengths_x, lengths_y = _c(lengths_x, np.int64), _c(lengths_y, np.int64)
    N, P1, _ = x.shape
    P2 = y.shape[1]
    grid_y = build_grids(y, lengths_y, threads)
    if both:
        grid_x = build_grids(x, lengths_x, threads)
        q, qb, qr = _sorted_queries(grid_x, P1)
    else:
        valid = np.arange(P1, dtype=np.int64)[None, :] < lengths_x[:, None]
        qr = np.flatnonzero(valid.reshape(-1)).astype(np.int64)
        q, qb = x.reshape(N * P1, 3)[qr], qr // max(P1, 1)
    d_xy, i_xy = _search_grid(q, qb, qr, lengths_y, grid_y, 1, norm, N * P1, threads)
    if not both:
        return d_xy.reshape(N, P1), i_xy.reshape(N, P1), None, None
    q, qb, qr = _sorted_queries(grid_y, P2)
    d_yx, i_yx = _search_grid(q, qb, qr, lengths_x, grid_x, 1, norm, N * P2, threads)
    return d_xy.reshape(N, P1), i_xy.reshape(N, P1), d_yx.reshape(N, P2), i_yx.reshape(N, P2)
