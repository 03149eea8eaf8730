"""Numba kernels behind :func:`geomgen.ops.voxelize` (CPU).

Everything here works in **grid coordinates** of each mesh's grid
(``g = (p - origin) / voxel_size``, x, y, z order), where voxel ``(k, j, i)``
is the box ``[i, i+1] x [j, j+1] x [k, k+1]`` with centre ``(i, j, k) + 0.5``.
The op validates every input first (face indices in range, finite vertices,
positive voxel sizes); nothing is checked again here.  Coordinates far outside
the grid are clamped in floating point before any integer conversion.

Surface test: a voxel is marked iff its closed box, enlarged by :data:`EPS`
voxel on each side, intersects the triangle, decided with the separating axis
theorem (3 box normals, the triangle normal, the 9 cross products of box and
triangle edges).  The candidate voxels of a triangle are, for every column
along the axis where the triangle's normal is largest, the voxels its plane
crosses inside that column (at most about 3 per column), so a triangle costs
about the area of its bounding box projected along that axis, never its
bounding-box volume.

Solid test: ray-crossing parity per axis.  For the ray axis ``a`` and every
column centre ``(u, v)`` inside a triangle's projection (top-left tie rule on
edges with edge functions evaluated in a canonical vertex order, so a centre
on an edge shared by two triangles is counted exactly once), the crossing
coordinate along ``a`` toggles the parity of every voxel whose centre lies
above it.  Triangles parallel to the ray are skipped.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["EPS", "DEGENERATE", "face_bounds", "surface_grid", "solid_fill", "ray_crossing"]

#: Enlargement of every voxel box (in voxels) in the surface test, so a
#: triangle lying exactly on a voxel face marks both neighbours despite
#: rounding in the world -> grid transform.
EPS = 1e-9

#: A triangle with ``|n| <= DEGENERATE * (longest edge)^2`` (n = cross
#: product of two edges, twice the area) is collinear up to rounding; its
#: normal is noise, so it is tested as the segment (or point) it is.
DEGENERATE = 1e-12

#: Slack of the candidate ranges (a superset; the SAT test decides).
_SLACK = 1e-6


@numba.njit(cache=True, nogil=True, inline="always")
def _ceil_f(x, lo, hi):  # pragma: no cover - compiled
    """ceil(x) clamped to [lo, hi] in floating point (safe for huge x)."""
    return math.ceil(min(max(x, lo - 1.0), hi + 1.0))


@numba.njit(cache=True, nogil=True, inline="always")
def _floor_f(x, lo, hi):  # pragma: no cover - compiled
    """floor(x) clamped to [lo, hi] in floating point (safe for huge x)."""
    return math.floor(min(max(x, lo - 1.0), hi + 1.0))


@numba.njit(cache=True, nogil=True, inline="always")
def _clamp_i(x, lo, hi):  # pragma: no cover - compiled
    return int(min(max(x, float(lo)), float(hi)))


@numba.njit(cache=True, nogil=True, inline="always")
def _lo_idx(x, n):  # pragma: no cover - compiled
    """First voxel whose box [i, i+1] reaches x (i >= x - 1), clamped to [0, n]."""
    return _clamp_i(_ceil_f(x, -1.0, n + 1.0) - 1.0, 0, n)


@numba.njit(cache=True, nogil=True, inline="always")
def _hi_idx(x, n):  # pragma: no cover - compiled
    """Last voxel whose box [i, i+1] starts at or below x (i <= x), clamped to [-1, n - 1]."""
    return _clamp_i(_floor_f(x, -1.0, n + 1.0), -1, n - 1)


@numba.njit(cache=True, nogil=True)
def _grid_coords(verts, faces, f, o, s):  # pragma: no cover - compiled
    a = faces[f, 0]
    b = faces[f, 1]
    c = faces[f, 2]
    return (
        (verts[a, 0] - o[0]) / s[0], (verts[a, 1] - o[1]) / s[1], (verts[a, 2] - o[2]) / s[2],
        (verts[b, 0] - o[0]) / s[0], (verts[b, 1] - o[1]) / s[1], (verts[b, 2] - o[2]) / s[2],
        (verts[c, 0] - o[0]) / s[0], (verts[c, 1] - o[1]) / s[1], (verts[c, 2] - o[2]) / s[2],
    )


@numba.njit(cache=True, nogil=True)
def face_bounds(verts, faces, face_mesh, N):  # pragma: no cover - compiled
    """(N, 3, 2) float64 xyz [min, max] of the vertices used by each mesh's faces."""
    out = np.empty((N, 3, 2), np.float64)
    out[:, :, 0] = np.inf
    out[:, :, 1] = -np.inf
    for f in range(faces.shape[0]):
        n = face_mesh[f]
        for c in range(3):
            a = faces[f, c]
            for d in range(3):
                x = np.float64(verts[a, d])
                if x < out[n, d, 0]:
                    out[n, d, 0] = x
                if x > out[n, d, 1]:
                    out[n, d, 1] = x
    return out


@numba.njit(cache=True, nogil=True, inline="always")
def _axis_sep(pa, pb, c, rad):  # pragma: no cover - compiled
    """Projections pa, pb of the triangle (two distinct values suffice), box
    centre projection c, box radius rad: True when the axis separates."""
    lo = min(pa, pb) - c
    hi = max(pa, pb) - c
    return lo > rad or hi < -rad


@numba.njit(cache=True, nogil=True)
def _mark_triangle(g, x0, y0, z0, x1, y1, z1, x2, y2, z2, W, H, D):  # pragma: no cover
    """Mark in g (D, H, W) every voxel whose enlarged closed box meets the
    triangle (grid coordinates, x, y, z)."""
    h = 0.5 + EPS
    lox = _lo_idx(min(x0, x1, x2) - EPS, W)
    hix = _hi_idx(max(x0, x1, x2) + EPS, W)
    loy = _lo_idx(min(y0, y1, y2) - EPS, H)
    hiy = _hi_idx(max(y0, y1, y2) + EPS, H)
    loz = _lo_idx(min(z0, z1, z2) - EPS, D)
    hiz = _hi_idx(max(z0, z1, z2) + EPS, D)
    if lox > hix or loy > hiy or loz > hiz:
        return
    if lox == hix and loy == hiy and loz == hiz:
        # one candidate voxel; if the triangle's bounding box lies inside its
        # box (not merely clamped to the grid), the box tests suffice
        if (
            min(x0, x1, x2) >= lox and max(x0, x1, x2) <= lox + 1.0
            and min(y0, y1, y2) >= loy and max(y0, y1, y2) <= loy + 1.0
            and min(z0, z1, z2) >= loz and max(z0, z1, z2) <= loz + 1.0
        ):
            g[loz, loy, lox] = 1
            return
    # edges and normal
    e0x, e0y, e0z = x1 - x0, y1 - y0, z1 - z0
    e1x, e1y, e1z = x2 - x1, y2 - y1, z2 - z1
    e2x, e2y, e2z = x0 - x2, y0 - y2, z0 - z2
    nx = e0y * (-e2z) - e0z * (-e2y)
    ny = e0z * (-e2x) - e0x * (-e2z)
    nz = e0x * (-e2y) - e0y * (-e2x)
    # collinear up to rounding: the normal is noise, test as a segment
    l0 = e0x * e0x + e0y * e0y + e0z * e0z
    l1 = e1x * e1x + e1y * e1y + e1z * e1z
    l2 = e2x * e2x + e2y * e2y + e2z * e2z
    lmax = max(l0, l1, l2)
    if nx * nx + ny * ny + nz * nz <= DEGENERATE * DEGENERATE * lmax * lmax:
        nx = 0.0
        ny = 0.0
        nz = 0.0
    # plane used to generate candidates: the triangle's, or for a degenerate
    # triangle (segment or point) any plane containing it
    px, py, pz = nx, ny, nz
    if px == 0.0 and py == 0.0 and pz == 0.0:
        dx, dy, dz = e0x, e0y, e0z
        if abs(e1x) + abs(e1y) + abs(e1z) > abs(dx) + abs(dy) + abs(dz):
            dx, dy, dz = e1x, e1y, e1z
        if abs(e2x) + abs(e2y) + abs(e2z) > abs(dx) + abs(dy) + abs(dz):
            dx, dy, dz = e2x, e2y, e2z
        ax, ay, az = abs(dx), abs(dy), abs(dz)
        # cross with the axis along which the segment extends least
        if ax <= ay and ax <= az:
            px, py, pz = 0.0, dz, -dy
        elif ay <= az:
            px, py, pz = -dz, 0.0, dx
        else:
            px, py, pz = dy, -dx, 0.0
    apx, apy, apz = abs(px), abs(py), abs(pz)
    if apz >= apx and apz >= apy:
        dom = 2
    elif apy >= apx:
        dom = 1
    else:
        dom = 0
    # plane offset for the triangle normal test
    nd = nx * x0 + ny * y0 + nz * z0
    nrad = h * (abs(nx) + abs(ny) + abs(nz))
    # edge-axis projections (two distinct values per axis)
    # X x e = (0, -ez, ey); Y x e = (ez, 0, -ex); Z x e = (-ey, ex, 0)
    r0x = h * (abs(e0z) + abs(e0y))
    r0y = h * (abs(e0z) + abs(e0x))
    r0z = h * (abs(e0y) + abs(e0x))
    r1x = h * (abs(e1z) + abs(e1y))
    r1y = h * (abs(e1z) + abs(e1x))
    r1z = h * (abs(e1y) + abs(e1x))
    r2x = h * (abs(e2z) + abs(e2y))
    r2y = h * (abs(e2z) + abs(e2x))
    r2z = h * (abs(e2y) + abs(e2x))
    # edge 0 (v0 -> v1): vertices v0 (= v1) and v2
    a0x_a, a0x_b = -e0z * y0 + e0y * z0, -e0z * y2 + e0y * z2
    a0y_a, a0y_b = e0z * x0 - e0x * z0, e0z * x2 - e0x * z2
    a0z_a, a0z_b = -e0y * x0 + e0x * y0, -e0y * x2 + e0x * y2
    # edge 1 (v1 -> v2): vertices v1 (= v2) and v0
    a1x_a, a1x_b = -e1z * y1 + e1y * z1, -e1z * y0 + e1y * z0
    a1y_a, a1y_b = e1z * x1 - e1x * z1, e1z * x0 - e1x * z0
    a1z_a, a1z_b = -e1y * x1 + e1x * y1, -e1y * x0 + e1x * y0
    # edge 2 (v2 -> v0): vertices v2 (= v0) and v1
    a2x_a, a2x_b = -e2z * y2 + e2y * z2, -e2z * y1 + e2y * z1
    a2y_a, a2y_b = e2z * x2 - e2x * z2, e2z * x1 - e2x * z1
    a2z_a, a2z_b = -e2y * x2 + e2x * y2, -e2y * x1 + e2x * y1

    # columns over the two non-dominant axes (u, v); range along dom from the plane
    if dom == 2:
        lou, hiu, lov, hiv, loa, hia = lox, hix, loy, hiy, loz, hiz
        pu, pv, pa, ou, ov, oa = px, py, pz, x0, y0, z0
    elif dom == 1:
        lou, hiu, lov, hiv, loa, hia = lox, hix, loz, hiz, loy, hiy
        pu, pv, pa, ou, ov, oa = px, pz, py, x0, z0, y0
    else:
        lou, hiu, lov, hiv, loa, hia = loy, hiy, loz, hiz, lox, hix
        pu, pv, pa, ou, ov, oa = py, pz, px, y0, z0, x0
    has_plane = pa != 0.0
    su = 0.0
    sv = 0.0
    base = 0.0
    if has_plane:
        su = -pu / pa
        sv = -pv / pa
        base = oa - su * ou - sv * ov
    for iu in range(lou, hiu + 1):
        u0 = iu - _SLACK
        u1 = iu + 1.0 + _SLACK
        cu_lo = min(su * u0, su * u1)
        cu_hi = max(su * u0, su * u1)
        for iv in range(lov, hiv + 1):
            ka = loa
            kb = hia
            if has_plane:
                v0_ = iv - _SLACK
                v1_ = iv + 1.0 + _SLACK
                amin = base + cu_lo + min(sv * v0_, sv * v1_)
                amax = base + cu_hi + max(sv * v0_, sv * v1_)
                ka = max(ka, _lo_idx(amin - _SLACK, 1 << 30))
                kb = min(kb, _hi_idx(amax + _SLACK, 1 << 30))
            for kk in range(ka, kb + 1):
                if dom == 2:
                    i, j, k = iu, iv, kk
                elif dom == 1:
                    i, j, k = iu, kk, iv
                else:
                    i, j, k = kk, iu, iv
                if g[k, j, i] != 0:
                    continue
                cx = i + 0.5
                cy = j + 0.5
                cz = k + 0.5
                if abs(nd - (nx * cx + ny * cy + nz * cz)) > nrad:
                    continue
                if _axis_sep(a0x_a, a0x_b, -e0z * cy + e0y * cz, r0x):
                    continue
                if _axis_sep(a0y_a, a0y_b, e0z * cx - e0x * cz, r0y):
                    continue
                if _axis_sep(a0z_a, a0z_b, -e0y * cx + e0x * cy, r0z):
                    continue
                if _axis_sep(a1x_a, a1x_b, -e1z * cy + e1y * cz, r1x):
                    continue
                if _axis_sep(a1y_a, a1y_b, e1z * cx - e1x * cz, r1y):
                    continue
                if _axis_sep(a1z_a, a1z_b, -e1y * cx + e1x * cy, r1z):
                    continue
                if _axis_sep(a2x_a, a2x_b, -e2z * cy + e2y * cz, r2x):
                    continue
                if _axis_sep(a2y_a, a2y_b, e2z * cx - e2x * cz, r2y):
                    continue
                if _axis_sep(a2z_a, a2z_b, -e2y * cx + e2x * cy, r2z):
                    continue
                g[k, j, i] = 1


@numba.njit(cache=True, nogil=True, parallel=True)
def surface_grid(verts, faces, face_mesh, origin, voxel_size, grid):  # pragma: no cover
    """Mark surface voxels of every mesh in ``grid`` (N, D, H, W) uint8 (in place).

    Args:
        verts: (V, 3) float32/float64 packed vertices.
        faces: (F, 3) int64 packed faces.
        face_mesh: (F,) int64 mesh index of each face.
        origin, voxel_size: (N, 3) float64 per-mesh grid placement (xyz).
        grid: (N, D, H, W) float32/float64 (or uint8), zero-initialised by
            the caller; surface voxels are set to 1.

    Parallel over faces; threads only ever write the value 1, so concurrent
    writes to one voxel are benign.
    """
    N, D, H, W = grid.shape
    for f in numba.prange(faces.shape[0]):
        n = face_mesh[f]
        x0, y0, z0, x1, y1, z1, x2, y2, z2 = _grid_coords(verts, faces, f, origin[n], voxel_size[n])
        _mark_triangle(grid[n], x0, y0, z0, x1, y1, z1, x2, y2, z2, W, H, D)


@numba.njit(cache=True, nogil=True, inline="always")
def _edge_fn(ax, ay, bx, by, px, py):  # pragma: no cover - compiled
    """Edge function of directed edge a->b at p, evaluated in a canonical
    vertex order so that edge b->a gives exactly the negated value."""
    if ax < bx or (ax == bx and ay < by):
        return (bx - ax) * (py - ay) - (by - ay) * (px - ax)
    return -((ax - bx) * (py - by) - (ay - by) * (px - bx))


@numba.njit(cache=True, nogil=True, inline="always")
def _owns(e, dx, dy):  # pragma: no cover - compiled
    """Inside test for one edge of a counter-clockwise triangle with the
    top-left tie rule: strictly inside, or on an edge whose direction
    (dx, dy) satisfies dy < 0 or (dy == 0 and dx < 0)."""
    if e > 0.0:
        return True
    if e < 0.0:
        return False
    return dy < 0.0 or (dy == 0.0 and dx < 0.0)


@numba.njit(cache=True, nogil=True, inline="always")
def ray_crossing(u0, v0, a0, u1, v1, a1, u2, v2, a2, pu, pv):  # pragma: no cover - compiled
    """Where the line through ``(pu, pv)`` along the ray axis crosses a
    triangle, or NaN when it does not (shared by the solid voxelizer and
    :mod:`geomgen.kernels.points_in_meshes_numba`).

    The triangle is given projected, ``(u, v)`` across the ray and ``a``
    along it, **counter-clockwise** in ``(u, v)`` (non-zero area).  It owns
    ``(pu, pv)`` when every edge function is positive, a zero one deciding by
    the top-left rule (:func:`_owns`); edge functions are evaluated in a
    canonical vertex order, so two triangles sharing an edge see exactly
    opposite values and a point on a shared edge or vertex of a watertight
    mesh's projection is owned by exactly one of the triangles on each sheet
    (the rule amounts to moving the point by ``(+e, -e^2)`` for a vanishing
    ``e``).  Returns the ray-axis coordinate of the crossing (barycentric
    interpolation of ``a0, a1, a2``).
    """
    w0 = _edge_fn(u1, v1, u2, v2, pu, pv)  # opposite v0
    w1 = _edge_fn(u2, v2, u0, v0, pu, pv)  # opposite v1
    w2 = _edge_fn(u0, v0, u1, v1, pu, pv)  # opposite v2
    if _owns(w0, u2 - u1, v2 - v1) and _owns(w1, u0 - u2, v0 - v2) and _owns(w2, u1 - u0, v1 - v0):
        ws = w0 + w1 + w2
        if ws > 0.0:
            return (w0 * a0 + w1 * a1 + w2 * a2) / ws
    return np.nan


@numba.njit(cache=True, nogil=True)
def _project(x0, y0, z0, x1, y1, z1, x2, y2, z2, axis):  # pragma: no cover
    """(u, v, a) coordinates of the 3 vertices for ray axis ``axis``
    (a = ray axis; (u, v) the other two in cyclic order)."""
    if axis == 2:
        return x0, y0, z0, x1, y1, z1, x2, y2, z2
    if axis == 1:
        return z0, x0, y0, z1, x1, y1, z2, x2, y2
    return y0, z0, x0, y1, z1, x1, y2, z2, x2


@numba.njit(cache=True, nogil=True)
def _column_box(u0, v0, u1, v1, u2, v2, nu, nv):  # pragma: no cover
    """Range of column indices whose centres (iu + .5, iv + .5) lie in the
    projected triangle's bounding box, clamped to the grid."""
    lou = _clamp_i(_ceil_f(min(u0, u1, u2) - 0.5, 0.0, nu), 0, nu)
    hiu = _clamp_i(_floor_f(max(u0, u1, u2) - 0.5, -1.0, nu - 1.0), -1, nu - 1)
    lov = _clamp_i(_ceil_f(min(v0, v1, v2) - 0.5, 0.0, nv), 0, nv)
    hiv = _clamp_i(_floor_f(max(v0, v1, v2) - 0.5, -1.0, nv - 1.0), -1, nv - 1)
    return lou, hiu, lov, hiv


@numba.njit(cache=True, nogil=True)
def _face_crossings(x0, y0, z0, x1, y1, z1, x2, y2, z2, n, axis, W, H, D, base, offset, write, out):  # pragma: no cover
    """Crossings of a triangle (grid coordinates, mesh n) with the columns
    along ``axis``; returns the number of column centres in its projected
    bounding box.  With ``write``, ``out[base:base + count]`` receives
    ``offset`` + the flat (n, D, H, W) index of the first voxel above each
    crossing, or -1."""
    if axis == 2:
        nu, nv, na = W, H, D
    elif axis == 1:
        nu, nv, na = D, W, H
    else:
        nu, nv, na = H, D, W
    u0, v0, a0, u1, v1, a1, u2, v2, a2 = _project(x0, y0, z0, x1, y1, z1, x2, y2, z2, axis)
    lou, hiu, lov, hiv = _column_box(u0, v0, u1, v1, u2, v2, nu, nv)
    cnt = max(hiu - lou + 1, 0) * max(hiv - lov + 1, 0)
    if not write or cnt == 0:
        return cnt
    for q in range(cnt):
        out[base + q] = -1
    # counter-clockwise in (u, v)
    area = (u1 - u0) * (v2 - v0) - (v1 - v0) * (u2 - u0)
    if area == 0.0:
        return cnt
    if area < 0.0:
        u1, v1, a1, u2, v2, a2 = u2, v2, a2, u1, v1, a1
    c = 0
    for iu in range(lou, hiu + 1):
        pu = iu + 0.5
        for iv in range(lov, hiv + 1):
            pv = iv + 0.5
            ac = ray_crossing(u0, v0, a0, u1, v1, a1, u2, v2, a2, pu, pv)
            if ac == ac:  # not NaN: the column crosses the triangle
                t = int(math.floor(min(max(ac + 0.5, -1.0), na + 1.0)))
                if t < na:
                    if t < 0:
                        t = 0
                    if axis == 2:
                        i, j, k = iu, iv, t
                    elif axis == 1:
                        i, j, k = iv, t, iu
                    else:
                        i, j, k = t, iu, iv
                    out[base + c] = offset + ((n * D + k) * H + j) * W + i
            c += 1
    return cnt


@numba.njit(cache=True, nogil=True, parallel=True)
def _count_crossings(verts, faces, face_mesh, origin, voxel_size, W, H, D, counts):  # pragma: no cover
    """counts[f, axis] = column centres in face f's projected bounding box."""
    dummy = np.empty(0, np.int64)
    for f in numba.prange(faces.shape[0]):
        n = face_mesh[f]
        x0, y0, z0, x1, y1, z1, x2, y2, z2 = _grid_coords(verts, faces, f, origin[n], voxel_size[n])
        for axis in range(3):
            counts[f, axis] = _face_crossings(
                x0, y0, z0, x1, y1, z1, x2, y2, z2, n, axis, W, H, D, 0, 0, False, dummy
            )


@numba.njit(cache=True, nogil=True, parallel=True)
def _write_crossings(
    verts, faces, face_mesh, origin, voxel_size, W, H, D, counts, starts, stride, out
):  # pragma: no cover
    """out[starts[f, axis] + c] = axis * stride + flat voxel index of each crossing (or -1)."""
    for f in numba.prange(faces.shape[0]):
        if counts[f, 0] == 0 and counts[f, 1] == 0 and counts[f, 2] == 0:
            continue
        n = face_mesh[f]
        x0, y0, z0, x1, y1, z1, x2, y2, z2 = _grid_coords(verts, faces, f, origin[n], voxel_size[n])
        for axis in range(3):
            if counts[f, axis]:
                _face_crossings(
                    x0, y0, z0, x1, y1, z1, x2, y2, z2, n, axis, W, H, D,
                    starts[f, axis], axis * stride, True, out,
                )


@numba.njit(cache=True, nogil=True)
def _apply_toggles(idx, tog):  # pragma: no cover - compiled
    for c in range(idx.shape[0]):
        q = idx[c]
        if q >= 0:
            tog[q] ^= 1


@numba.njit(cache=True, nogil=True, parallel=True)
def _fill_inside(tog, grid):  # pragma: no cover - compiled
    """Set grid = 1 where at least 2 of the 3 running parities (prefix XOR of
    the toggles along x, y and z) are odd.  tog: (3, N, D, H, W) uint8 with
    axis 0 = x rays, 1 = y, 2 = z; grid: (N, D, H, W) float."""
    _, N, D, H, W = tog.shape
    vxy = np.empty((N, D, H, W), np.uint8)
    # x and y parities, one (n, k) slab per task
    for q in numba.prange(N * D):
        n = q // D
        k = q - n * D
        acc_y = np.zeros(W, np.uint8)
        for j in range(H):
            acc_x = 0
            for i in range(W):
                acc_x ^= tog[0, n, k, j, i]
                acc_y[i] ^= tog[1, n, k, j, i]
                vxy[n, k, j, i] = acc_x + acc_y[i]
    # z parity, one (n, j) row of columns per task, and the vote
    for q in numba.prange(N * H):
        n = q // H
        j = q - n * H
        acc_z = np.zeros(W, np.uint8)
        for k in range(D):
            for i in range(W):
                acc_z[i] ^= tog[2, n, k, j, i]
                if vxy[n, k, j, i] + acc_z[i] >= 2:
                    grid[n, k, j, i] = 1


def solid_fill(verts, faces, face_mesh, origin, voxel_size, grid):
    """Add to ``grid`` (N, D, H, W) float, holding the surface voxels, every
    voxel whose centre has odd crossing parity along at least 2 of the 3 axes
    (rays toward -x, -y, -z).  Same arguments as :func:`surface_grid`."""
    N, D, H, W = grid.shape
    F = faces.shape[0]
    counts = np.empty((F, 3), np.int64)
    _count_crossings(verts, faces, face_mesh, origin, voxel_size, W, H, D, counts)
    flat = counts.reshape(-1)
    starts = np.zeros(F * 3, np.int64)
    if F * 3 > 1:
        np.cumsum(flat[:-1], out=starts[1:])
    out = np.empty(int(flat.sum()), np.int64)
    stride = N * D * H * W
    _write_crossings(verts, faces, face_mesh, origin, voxel_size, W, H, D, counts, starts.reshape(F, 3), stride, out)
    tog = np.zeros(3 * stride, np.uint8)
    _apply_toggles(out, tog)
    _fill_inside(tog.reshape(3, N, D, H, W), grid)
