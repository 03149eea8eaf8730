"""Numba kernels behind :func:`geomgen.render.rasterize_meshes` (CPU).

The op validates everything first (face indices in range, finite vertices and
cameras, ``0 < znear < zfar``); nothing is checked again here.

Arithmetic (mirrored operation by operation by the torch path in
:mod:`geomgen.render.rasterize`, so both give the same bits):

* camera-frame vertex ``p = ((c00 X + c01 Y) + c02 Z) + c03`` (rows of
  ``camera_from_world``);
* for a face with camera-frame corners ``p0, p1, p2`` the *homogeneous edge
  functions* ``e_i(d) = d . (p_j x p_k)`` (``(i, j, k)`` cyclic) of the pixel
  ray ``d = K^-1 (px, py, 1)`` are affine in the pixel position:
  ``e_i = A_i px + (B_i py + C_i)``.  With ``D = p0 . (p1 x p2)`` and the edge
  functions multiplied by ``sign(D)``, the ray through the pixel centre meets
  the triangle in front of the camera iff every ``e_i >= 0`` and
  ``s = (e0 + e1) + e2 > 0``; the hit's z-depth is ``|D| / s`` and its
  perspective-correct barycentrics are ``e_i / s``.  For a triangle in front
  of the camera ``e_i`` is the usual 2D edge function times a positive
  factor, so this is the pixel-centre coverage rule.  Requiring ``z >= znear``
  on top is exactly clipping the triangle at ``z = znear`` (the clipped
  polygon is the part of the triangle with ``z >= znear``), with barycentrics
  of the original face; no vertex ever needs projecting behind the camera.
* Ties: a pixel centre on an edge (``e_i == 0``) belongs to the face iff that
  edge's ``(A_i, B_i)`` is "positive" (``A > 0``, or ``A == 0`` and ``B > 0``).
  Two faces sharing an edge compute exactly negated coefficients for it (the
  cross products of the same two vertices in opposite orders), so a centre on
  a shared edge goes to exactly one of them: no holes, no double coverage.
* Faces with ``D == 0`` (degenerate, or edge-on: their plane contains the
  camera centre) cover nothing; with ``cull`` faces with ``D > 0`` (the camera
  behind their right-handed normal ``(p1 - p0) x (p2 - p0)``) are skipped.
* The nearest fragment wins; equal depths go to the lower face index.

Candidate pixels of a face are its clipped polygon's projected bounding box
(vertices in front of ``znear`` plus the edges' crossings of ``z = znear``),
widened by :data:`BOX_SLACK` pixels; the edge functions decide.

Passes per image: camera-frame vertices and their projections, each face's
candidate box, then the faces are drawn in order.  Parallelism (no atomics):
with at least as many images as threads, each thread draws whole images with
its own scratch; with fewer, every pass runs in parallel over chunks of
vertices / faces, the faces are binned (counting sort, face order kept) into
row bands their boxes meet, and one task per (image, band) draws its bin into
rows only it writes (a face's edge setup is redone in each band it spans,
which is rare).  With ``threads == 1`` -- what :func:`geomgen.backend.kernel_threads`
gives for a thread budget of 1, small jobs and processes forked after numba's
pool started -- everything runs serially, without touching numba's pool.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import prange

__all__ = ["BOX_SLACK", "rasterize"]

#: Widening (pixels) of each face's candidate box, so rounding in the
#: projection can never drop a pixel the edge functions accept.
BOX_SLACK = 1e-3
#: Vertices / faces per parallel chunk of the setup passes.
_CHUNK = 4096
#: Scratch memory (bytes) per kernel call; larger batches are split by images.
_SCRATCH_BYTES = 1 << 26
#: Row bands per thread for one image (load balance across uneven rows).
_BANDS_PER_THREAD = 4
#: Fewest rows per band.
_MIN_BAND_ROWS = 4
_EMPTY = np.int32(1 << 30)


@numba.njit(cache=True, nogil=True)
def _verts_range(r0, r1, vo, verts, vfirst, img_mesh, b0, cam, intr, znear, pv):  # pragma: no cover
    """Camera-frame coordinates and projections of scratch vertex rows [r0, r1)."""
    k = np.searchsorted(vo, r0, side="right") - 1
    for r in range(r0, r1):
        while r >= vo[k + 1]:
            k += 1
        b = b0 + k
        i = vfirst[img_mesh[b]] + (r - vo[k])
        X = verts[i, 0]
        Y = verts[i, 1]
        Z = verts[i, 2]
        x = ((cam[b, 0, 0] * X + cam[b, 0, 1] * Y) + cam[b, 0, 2] * Z) + cam[b, 0, 3]
        y = ((cam[b, 1, 0] * X + cam[b, 1, 1] * Y) + cam[b, 1, 2] * Z) + cam[b, 1, 3]
        z = ((cam[b, 2, 0] * X + cam[b, 2, 1] * Y) + cam[b, 2, 2] * Z) + cam[b, 2, 3]
        pv[r, 0] = x
        pv[r, 1] = y
        pv[r, 2] = z
        if z >= znear:
            pv[r, 3] = (intr[b, 0] * x + intr[b, 4] * y) / z + intr[b, 2]
            pv[r, 4] = (intr[b, 1] * y) / z + intr[b, 3]
        else:
            pv[r, 3] = 0.0
            pv[r, 4] = 0.0


@numba.njit(cache=True, nogil=True, inline="always")
def _cross_proj(pv, ra, rb, znear, fx, fy, cx, cy, s):  # pragma: no cover - compiled
    """Projection of the point where the segment ra -> rb (one end in front of
    znear, one behind) crosses z = znear."""
    za = pv[ra, 2]
    t = (znear - za) / (pv[rb, 2] - za)
    X = pv[ra, 0] + t * (pv[rb, 0] - pv[ra, 0])
    Y = pv[ra, 1] + t * (pv[rb, 1] - pv[ra, 1])
    return (fx * X + s * Y) / znear + cx, (fy * Y) / znear + cy


@numba.njit(cache=True, nogil=True, inline="always")
def _edge(ax, ay, az, bx, by, bz, ifx, ify, cx, cy, s, sg):  # pragma: no cover - compiled
    """Pixel-space coefficients (A, B, C) of sg * d . (a x b), d = K^-1 (px, py, 1)."""
    wx = ay * bz - az * by
    wy = az * bx - ax * bz
    wz = ax * by - ay * bx
    A = wx * ifx
    B = (wy - A * s) * ify
    C = (wz - A * cx) - B * cy
    return sg * A, sg * B, sg * C


@numba.njit(cache=True, nogil=True, inline="always")
def _first_px(lo, n):  # pragma: no cover - compiled
    """First pixel index whose centre i + 0.5 >= lo, clamped to [0, n]."""
    return max(0, int(math.ceil(min(max(lo - 0.5, -1.0), n + 1.0))))


@numba.njit(cache=True, nogil=True, inline="always")
def _last_px(hi, n):  # pragma: no cover - compiled
    """Last pixel index whose centre i + 0.5 <= hi, clamped to [-1, n - 1]."""
    return min(int(math.floor(min(max(hi - 0.5, -2.0), n + 1.0))), n - 1)


@numba.njit(cache=True, nogil=True)
def _clipped_box(pv, ra, rb, rc, znear, fx, fy, cx, cy, s):  # pragma: no cover - compiled
    """Projected bounding box (umin, umax, vmin, vmax) of the part of triangle
    (ra, rb, rc) with z >= znear: its vertices in front plus the crossings."""
    umin = math.inf
    umax = -math.inf
    vmin = math.inf
    vmax = -math.inf
    for e in range(3):
        r = ra if e == 0 else (rb if e == 1 else rc)
        rn = rb if e == 0 else (rc if e == 1 else ra)
        fr = pv[r, 2] >= znear
        if fr:
            umin = min(umin, pv[r, 3])
            umax = max(umax, pv[r, 3])
            vmin = min(vmin, pv[r, 4])
            vmax = max(vmax, pv[r, 4])
        if fr != (pv[rn, 2] >= znear):
            u, v = _cross_proj(pv, r, rn, znear, fx, fy, cx, cy, s)
            umin = min(umin, u)
            umax = max(umax, u)
            vmin = min(vmin, v)
            vmax = max(vmax, v)
    return umin, umax, vmin, vmax


@numba.njit(cache=True, nogil=True)
def _boxes_range(q0, q1, fo, vo, faces, vfirst, ffirst, img_mesh, b0, intr, H, W, znear, zfar, pv,
                 fbox):  # pragma: no cover - compiled
    """Candidate pixel boxes ``(u0, u1, v0, v1)`` of scratch face rows [q0, q1)
    (``v0 > v1`` = none) and the faces' scratch vertex rows (columns 4-6)."""
    k = np.searchsorted(fo, q0, side="right") - 1
    for q in range(q0, q1):
        while q >= fo[k + 1]:
            k += 1
        b = b0 + k
        m = img_mesh[b]
        gf = ffirst[m] + (q - fo[k])
        base = vo[k] - vfirst[m]
        ra = faces[gf, 0] + base
        rb = faces[gf, 1] + base
        rc = faces[gf, 2] + base
        fbox[q, 4] = ra
        fbox[q, 5] = rb
        fbox[q, 6] = rc
        fbox[q, 2] = _EMPTY
        fbox[q, 3] = -1
        za = pv[ra, 2]
        zb = pv[rb, 2]
        zc = pv[rc, 2]
        if max(za, zb, zc) < znear or min(za, zb, zc) > zfar:
            continue
        if min(za, zb, zc) >= znear:
            umin = min(pv[ra, 3], pv[rb, 3], pv[rc, 3])
            umax = max(pv[ra, 3], pv[rb, 3], pv[rc, 3])
            vmin = min(pv[ra, 4], pv[rb, 4], pv[rc, 4])
            vmax = max(pv[ra, 4], pv[rb, 4], pv[rc, 4])
        else:
            umin, umax, vmin, vmax = _clipped_box(pv, ra, rb, rc, znear, intr[b, 0], intr[b, 1], intr[b, 2],
                                                  intr[b, 3], intr[b, 4])
        if not (math.isfinite(umin) and math.isfinite(umax) and math.isfinite(vmin) and math.isfinite(vmax)):
            # a crossing projected out of range: fall back to the whole image
            umin, umax, vmin, vmax = -1.0, W + 1.0, -1.0, H + 1.0
        fbox[q, 0] = _first_px(umin - BOX_SLACK, W)
        fbox[q, 1] = _last_px(umax + BOX_SLACK, W)
        fbox[q, 2] = _first_px(vmin - BOX_SLACK, H)
        fbox[q, 3] = _last_px(vmax + BOX_SLACK, H)


@numba.njit(cache=True, nogil=True, inline="always")
def _raster_face(b, gf, ra, rb, rc, u0, u1, vlo, vhi, pv, intr, znear, zfar, cull, p2f, zbuf,
                 bary):  # pragma: no cover - compiled
    """Z-test face ``gf`` (scratch vertex rows ra, rb, rc) on rows [vlo, vhi],
    columns [u0, u1] of image ``b``."""
    xa = pv[ra, 0]
    ya = pv[ra, 1]
    za = pv[ra, 2]
    xb = pv[rb, 0]
    yb = pv[rb, 1]
    zb = pv[rb, 2]
    xc = pv[rc, 0]
    yc = pv[rc, 1]
    zc = pv[rc, 2]
    # D = pa . (pb x pc); 0 for degenerate and edge-on faces
    D = (xa * (yb * zc - zb * yc) + ya * (zb * xc - xb * zc)) + za * (xb * yc - yb * xc)
    if not (D != 0.0) or not math.isfinite(D) or (cull and D > 0.0):
        return
    sg = 1.0 if D > 0.0 else -1.0
    absD = abs(D)
    cx = intr[b, 2]
    cy = intr[b, 3]
    s = intr[b, 4]
    ifx = intr[b, 5]
    ify = intr[b, 6]
    A0, B0, C0 = _edge(xb, yb, zb, xc, yc, zc, ifx, ify, cx, cy, s, sg)
    A1, B1, C1 = _edge(xc, yc, zc, xa, ya, za, ifx, ify, cx, cy, s, sg)
    A2, B2, C2 = _edge(xa, ya, za, xb, yb, zb, ifx, ify, cx, cy, s, sg)
    t0 = (A0 > 0.0) | ((A0 == 0.0) & (B0 > 0.0))
    t1 = (A1 > 0.0) | ((A1 == 0.0) & (B1 > 0.0))
    t2 = (A2 > 0.0) | ((A2 == 0.0) & (B2 > 0.0))
    for v in range(vlo, vhi + 1):
        py = v + 0.5
        k0 = B0 * py + C0
        k1 = B1 * py + C1
        k2 = B2 * py + C2
        for u in range(u0, u1 + 1):
            px = u + 0.5
            e0 = A0 * px + k0
            if e0 < 0.0 or (e0 == 0.0 and not t0):
                continue
            e1 = A1 * px + k1
            if e1 < 0.0 or (e1 == 0.0 and not t1):
                continue
            e2 = A2 * px + k2
            if e2 < 0.0 or (e2 == 0.0 and not t2):
                continue
            sm = (e0 + e1) + e2
            if not (sm > 0.0):
                continue
            z = absD / sm
            if z < znear or z > zfar or not (z < zbuf[b, v, u]):
                continue
            zbuf[b, v, u] = z
            p2f[b, v, u] = gf
            bary[b, v, u, 0] = e0 / sm
            bary[b, v, u, 1] = e1 / sm
            bary[b, v, u, 2] = e2 / sm


@numba.njit(cache=True, nogil=True)
def _bin_range(k0, k1, fo, fbox, bh, nbands, counts, bin_off, bin_faces, fill):  # pragma: no cover
    """Row-band binning of the faces of chunk images [k0, k1): with ``fill``
    False count the faces whose box meets each band into ``counts[k, band]``;
    with ``fill`` True write their rows, ascending, into ``bin_faces`` from
    ``bin_off[k * nbands + band]`` on."""
    for k in range(k0, k1):
        if fill:
            for j in range(nbands):
                counts[k, j] = bin_off[k * nbands + j]
        else:
            for j in range(nbands):
                counts[k, j] = 0
        for q in range(fo[k], fo[k + 1]):
            v0 = fbox[q, 2]
            v1 = fbox[q, 3]
            if v0 > v1 or fbox[q, 0] > fbox[q, 1]:
                continue
            j1 = v1 // bh
            for j in range(v0 // bh, j1 + 1):
                if fill:
                    bin_faces[counts[k, j]] = q
                counts[k, j] += 1


@numba.njit(cache=True, nogil=True, inline="always")
def _clear_rows(b, r0, r1, W, p2f, zbuf, bary):  # pragma: no cover - compiled
    for v in range(r0, r1):
        for u in range(W):
            zbuf[b, v, u] = math.inf
            p2f[b, v, u] = -1
            bary[b, v, u, 0] = 0.0
            bary[b, v, u, 1] = 0.0
            bary[b, v, u, 2] = 0.0


@numba.njit(cache=True, nogil=True, inline="always")
def _finish_rows(b, r0, r1, W, p2f, zbuf):  # pragma: no cover - compiled
    for v in range(r0, r1):
        for u in range(W):
            if p2f[b, v, u] < 0:
                zbuf[b, v, u] = 0.0


@numba.njit(cache=True, nogil=True)
def _raster_range(t0, t1, nbands, bh, fo, ffirst, img_mesh, b0, H, W, znear, zfar, cull, intr, pv,
                  fbox, bin_off, bin_faces, p2f, zbuf, bary):  # pragma: no cover - compiled
    """Tasks [t0, t1): task t is row band t % nbands of chunk image t // nbands."""
    for t in range(t0, t1):
        k = t // nbands
        band = t - k * nbands
        b = b0 + k
        r0 = band * bh
        r1 = min(H, r0 + bh)
        if r0 >= r1:
            continue
        _clear_rows(b, r0, r1, W, p2f, zbuf, bary)
        fbase = ffirst[img_mesh[b]] - fo[k]
        for i in range(bin_off[t], bin_off[t + 1]):
            q = bin_faces[i]
            vlo = max(fbox[q, 2], r0)
            vhi = min(fbox[q, 3], r1 - 1)
            _raster_face(b, fbase + q, fbox[q, 4], fbox[q, 5], fbox[q, 6], fbox[q, 0], fbox[q, 1], vlo, vhi,
                         pv, intr, znear, zfar, cull, p2f, zbuf, bary)
        _finish_rows(b, r0, r1, W, p2f, zbuf)


@numba.njit(parallel=True, cache=True, nogil=True)
def _run_bands(verts, faces, vfirst, ffirst, img_mesh, b0, vo, fo, cam, intr, H, W, znear, zfar, cull,
               nbands, bh, pv, fbox, p2f, zbuf, bary):  # pragma: no cover - compiled
    """A few images, each split into row bands: every pass in parallel."""
    nv = vo[vo.shape[0] - 1]
    for c in prange((nv + _CHUNK - 1) // _CHUNK):
        _verts_range(c * _CHUNK, min(nv, (c + 1) * _CHUNK), vo, verts, vfirst, img_mesh, b0, cam, intr,
                     znear, pv)
    nf = fo[fo.shape[0] - 1]
    for c in prange((nf + _CHUNK - 1) // _CHUNK):
        _boxes_range(c * _CHUNK, min(nf, (c + 1) * _CHUNK), fo, vo, faces, vfirst, ffirst, img_mesh, b0,
                     intr, H, W, znear, zfar, pv, fbox)
    n_img = fo.shape[0] - 1
    counts = np.empty((n_img, nbands), np.int64)
    bin_off = np.zeros(n_img * nbands + 1, np.int64)
    empty = np.empty(0, np.int64)
    for k in prange(n_img):
        _bin_range(k, k + 1, fo, fbox, bh, nbands, counts, bin_off, empty, False)
    bin_off[1:] = np.cumsum(counts.ravel())
    bin_faces = np.empty(bin_off[n_img * nbands], np.int64)
    for k in prange(n_img):
        _bin_range(k, k + 1, fo, fbox, bh, nbands, counts, bin_off, bin_faces, True)
    for t in prange(n_img * nbands):
        _raster_range(t, t + 1, nbands, bh, fo, ffirst, img_mesh, b0, H, W, znear, zfar, cull, intr, pv,
                      fbox, bin_off, bin_faces, p2f, zbuf, bary)


@numba.njit(cache=True, nogil=True)
def _one_image(b, verts, faces, vfirst, nverts, ffirst, nfaces, img_mesh, cam, intr, H, W, znear, zfar, cull,
               pv, fbox, p2f, zbuf, bary):  # pragma: no cover - compiled
    """Image ``b`` from start to end on this thread, scratch rows from 0."""
    m = img_mesh[b]
    nv = nverts[m]
    nf = nfaces[m]
    vo = np.empty(2, np.int64)
    vo[0] = 0
    vo[1] = nv
    fo = np.empty(2, np.int64)
    fo[0] = 0
    fo[1] = nf
    _verts_range(0, nv, vo, verts, vfirst, img_mesh, b, cam, intr, znear, pv)
    _boxes_range(0, nf, fo, vo, faces, vfirst, ffirst, img_mesh, b, intr, H, W, znear, zfar, pv, fbox)
    _clear_rows(b, 0, H, W, p2f, zbuf, bary)
    fbase = ffirst[m]
    for q in range(nf):
        vlo = fbox[q, 2]
        vhi = fbox[q, 3]
        if vlo > vhi or fbox[q, 0] > fbox[q, 1]:
            continue
        _raster_face(b, fbase + q, fbox[q, 4], fbox[q, 5], fbox[q, 6], fbox[q, 0], fbox[q, 1], vlo, vhi,
                     pv, intr, znear, zfar, cull, p2f, zbuf, bary)
    _finish_rows(b, 0, H, W, p2f, zbuf)


@numba.njit(parallel=True, cache=True, nogil=True)
def _run_images_par(verts, faces, vfirst, nverts, ffirst, nfaces, img_mesh, cam, intr, H, W, znear, zfar, cull,
                    pv, fbox, p2f, zbuf, bary):  # pragma: no cover - compiled
    """Many images: worker slot w draws images w, w + T, ... with its own scratch pv[w], fbox[w]."""
    T = pv.shape[0]
    B = img_mesh.shape[0]
    for w in prange(T):
        for b in range(w, B, T):
            _one_image(b, verts, faces, vfirst, nverts, ffirst, nfaces, img_mesh, cam, intr, H, W, znear, zfar,
                       cull, pv[w], fbox[w], p2f, zbuf, bary)


@numba.njit(cache=True, nogil=True)
def _run_images_ser(verts, faces, vfirst, nverts, ffirst, nfaces, img_mesh, cam, intr, H, W, znear, zfar, cull,
                    pv, fbox, p2f, zbuf, bary):  # pragma: no cover - compiled
    for b in range(img_mesh.shape[0]):
        _one_image(b, verts, faces, vfirst, nverts, ffirst, nfaces, img_mesh, cam, intr, H, W, znear, zfar,
                   cull, pv[0], fbox[0], p2f, zbuf, bary)


def rasterize(
    verts: np.ndarray,
    faces: np.ndarray,
    vfirst: np.ndarray,
    nverts: np.ndarray,
    ffirst: np.ndarray,
    nfaces: np.ndarray,
    img_mesh: np.ndarray,
    cam: np.ndarray,
    intr: np.ndarray,
    H: int,
    W: int,
    znear: float,
    zfar: float,
    cull: bool,
    threads: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rasterize ``B`` images of ``M`` meshes (validated inputs).

    Args:
        verts: ``(sum V, 3)`` float64 packed world vertices.
        faces: ``(sum F, 3)`` int64 packed faces (indices into ``verts``).
        vfirst, nverts, ffirst, nfaces: ``(M,)`` int64 first packed vertex /
            face of each mesh and their counts.
        img_mesh: ``(B,)`` int64 mesh shown in each image.
        cam: ``(B, 3, 4)`` float64 top rows of ``camera_from_world``.
        intr: ``(B, 7)`` float64 ``(fx, fy, cx, cy, skew, 1 / fx, 1 / fy)``.
        H, W: image size; znear > 0, zfar > znear (may be inf); cull: skip
            faces whose normal points away from the camera.
        threads: threads of numba's pool (set up by the caller with
            :func:`geomgen.backend.kernel_threads`); 1 runs the serial kernels.

    Returns:
        ``pix_to_face`` ``(B, H, W)`` int64 packed face index or -1, ``zbuf``
        ``(B, H, W)`` float64 (0 on background), ``bary`` ``(B, H, W, 3)`` float64.
    """
    B = img_mesh.shape[0]
    p2f = np.empty((B, H, W), np.int64)
    zbuf = np.empty((B, H, W), np.float64)
    bary = np.empty((B, H, W, 3), np.float64)
    if B == 0 or H * W == 0:
        return p2f, zbuf, bary
    nv_img = nverts[img_mesh]
    nf_img = nfaces[img_mesh]
    parallel = threads > 1
    znear, zfar, cull = float(znear), float(zfar), bool(cull)
    if not parallel:  # never touch numba's thread pool here (a forked worker may be running us)
        pv = np.empty((1, max(1, int(nv_img.max())), 5), np.float64)
        fbox = np.empty((1, max(1, int(nf_img.max())), 7), np.int32)
        _run_images_ser(verts, faces, vfirst, nverts, ffirst, nfaces, img_mesh, cam, intr, H, W, znear, zfar,
                        cull, pv, fbox, p2f, zbuf, bary)
        return p2f, zbuf, bary
    T = numba.get_num_threads()  # set by the caller's kernel_threads
    old = numba.get_parallel_chunksize()
    numba.set_parallel_chunksize(1)  # dynamically scheduled tasks
    try:
        if B >= T:
            # whole images per thread, scratch per worker slot
            pv = np.empty((T, max(1, int(nv_img.max())), 5), np.float64)
            fbox = np.empty((T, max(1, int(nf_img.max())), 7), np.int32)
            _run_images_par(verts, faces, vfirst, nverts, ffirst, nfaces, img_mesh, cam, intr, H, W, znear, zfar,
                            cull, pv, fbox, p2f, zbuf, bary)
            return p2f, zbuf, bary
        # fewer images than threads: split each image into row bands
        cost = nv_img * 40 + nf_img * 28 + 1
        start = 0
        while start < B:  # chunks of images whose scratch fits the budget
            csum = np.cumsum(cost[start:])
            stop = start + max(1, int(np.searchsorted(csum, _SCRATCH_BYTES, side="right")))
            n_img = stop - start
            vo = np.zeros(n_img + 1, np.int64)
            np.cumsum(nv_img[start:stop], out=vo[1:])
            fo = np.zeros(n_img + 1, np.int64)
            np.cumsum(nf_img[start:stop], out=fo[1:])
            pv = np.empty((int(vo[-1]), 5), np.float64)
            fbox = np.empty((int(fo[-1]), 7), np.int32)
            nb = max(1, min(-(-T * _BANDS_PER_THREAD // n_img), H // _MIN_BAND_ROWS))
            bh = -(-H // nb)
            nb = -(-H // bh)
            _run_bands(verts, faces, vfirst, ffirst, img_mesh, start, vo, fo, cam, intr, H, W, znear, zfar, cull,
                       nb, bh, pv, fbox, p2f, zbuf, bary)
            start = stop
    finally:
        numba.set_parallel_chunksize(old)
    return p2f, zbuf, bary
