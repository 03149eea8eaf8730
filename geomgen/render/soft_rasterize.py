"""Soft (differentiable) rasterization: the K nearest faces of every pixel within a blur radius.

Shape letters: ``M`` meshes, ``B`` images (= cameras), ``H``, ``W`` image
height and width, ``K`` faces per pixel, ``F`` packed faces of the mesh batch.

This is the rasterizer of SoftRas (Liu et al. 2019) with PyTorch3D's
``blur_radius`` / ``faces_per_pixel`` semantics; the blending functions of
:mod:`geomgen.render.blend` turn its fragments into soft silhouettes, depths
and colours.  The conventions are those of :func:`geomgen.render.rasterize_meshes`
(OpenCV camera frame, pixel centres at ``+0.5``, mesh-major batching ``B = M x
V``, packed face indices, the same near-plane clipping); what is new:

* **Candidates**: face ``f`` is a candidate of pixel ``p`` when the centre of
  ``p`` lies inside the projection of ``f`` (the ray through it meets ``f`` at
  ``znear <= z <= zfar``, the coverage rule of ``rasterize_meshes``), or when
  ``dists < blur_radius`` (see below).  Of its candidates every pixel keeps the
  ``K = faces_per_pixel`` nearest in ``zbuf`` (ties: lower face index first),
  sorted near to far; unused slots have ``pix_to_face = -1`` and ``zbuf``,
  ``bary_coords`` and ``dists`` equal to ``-1`` (PyTorch3D's fill).
* **Distances, units** (PyTorch3D's NDC): ``dists`` is the *signed squared*
  distance, in the image plane, from the pixel centre to the projected face:
  negative inside, positive outside, measured in PyTorch3D's NDC units where
  the shorter image side spans 2 (one pixel is ``2 / min(H, W)`` NDC units)::

      dists = +-(distance in pixels)^2 * (2 / min(H, W))^2

  ``blur_radius`` is compared with ``dists`` as PyTorch3D compares it (a
  squared NDC distance despite its name), so faces whose projection comes
  within ``sqrt(blur_radius) * min(H, W) / 2`` pixels of a pixel centre are
  candidates.  PyTorch3D's values therefore carry over unchanged: its tutorials'
  ``blur_radius = log(1 / 1e-4 - 1) * sigma`` with the same ``sigma`` in
  :func:`~geomgen.render.soft_silhouette` gives the same blur.  To think in
  pixels, ``blur_radius = (r_px * 2 / min(H, W))^2``.
* **Depth and barycentrics**: inside the projected face, ``zbuf`` is the
  camera-frame z of the surface point seen through the pixel centre and
  ``bary_coords`` its perspective-correct barycentrics (exactly those of
  ``rasterize_meshes``).  Outside it (``dists > 0``) they are those of the
  point of the face whose projection is nearest to the pixel centre, so they
  lie in the triangle (in ``[0, 1]``, summing to 1) and ``zbuf`` is that point's
  depth (``>= znear``).  PyTorch3D instead clamps the pixel's
  perspective-correct barycentrics to ``[0, 1]`` and renormalises them: also a
  point of the triangle, the same inside it, but not the nearest one outside,
  and undefined for faces nearly edge-on or crossing the camera plane.
* **Near / far planes**: every face is clipped at ``z = znear`` as in
  ``rasterize_meshes``: only its part with ``z >= znear`` (a triangle or a
  quadrilateral in the image) is rasterized, distances are taken to that
  polygon (the clip line is one of its edges) and barycentrics still refer to
  the original face, so faces crossing the near plane or behind the camera give
  finite values and gradients; faces wholly in front of the camera but behind
  ``znear`` contribute nothing.  Fragments with ``zbuf > zfar`` are dropped.
* Degenerate (zero-area) faces and faces seen edge-on are skipped, as by
  ``rasterize_meshes`` (and PyTorch3D, which skips faces of zero screen
  area), up to rounding: those whose camera-frame corners have ``|a . (b x
  c)| <= 1e-12 |a| |b| |c|``.  ``cull_backfaces`` skips the faces
  ``rasterize_meshes`` culls.
* ``image_size`` (default: the cameras') renders at another resolution with
  the same field of view: ``K``'s first row is scaled by ``W / W_cam`` and its
  second by ``H / H_cam`` (:func:`~geomgen.render.scale_intrinsics`).

Gradients: ``zbuf``, ``bary_coords`` and ``dists`` are differentiable with
respect to the vertex positions, ``cameras.world_from_camera`` and
``cameras.K`` (almost everywhere: which faces a pixel keeps, whether it is
inside each and which edge is nearest are held fixed, as in PyTorch3D).  The
candidates are chosen without gradients in float64; the kept (pixel, face)
pairs are then evaluated again with torch operations in the promoted dtype of
the vertices and the cameras.

Memory: faces are binned by their bounding boxes (expanded by the blur radius)
and the (face, pixel) candidates evaluated in blocks; a ``B x H x W x F``
tensor is never built.

Backends (:func:`geomgen.backend.resolve_backend`): the choice of the
fragments is made either by this module's torch code (``"torch"``, any device;
the reference) or by the numba kernel of
:mod:`geomgen.kernels.soft_rasterize_numba` (``"numba"``, CPU: faces binned
into screen tiles, the ``K`` nearest of each pixel kept by insertion), with the
same float64 arithmetic and the same result, ties included; ``"auto"`` is numba
for CPU meshes, torch otherwise.  The differentiable values are computed by
the same torch code in both cases, so outputs and gradients are identical.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch

from geomgen import checks as V
from geomgen.backend import OP_BACKENDS, kernel_threads, resolve_backend
from geomgen.render.cameras import PerspectiveCameras
from geomgen.render.rasterize import _check_mesh_values, _check_scene, _edge, _first_px, _last_px

__all__ = ["SoftFragments", "soft_rasterize_meshes", "SOFT_RASTERIZE_BACKENDS"]

_FN = "soft_rasterize_meshes"

#: Accepted values of ``soft_rasterize_meshes(..., backend=...)`` (from :data:`geomgen.backend.OP_BACKENDS`).
SOFT_RASTERIZE_BACKENDS = OP_BACKENDS[_FN].names

#: (face, pixel) candidates evaluated per block while choosing the fragments.
_CHUNK = 1 << 18

#: Pixels added around every candidate box against rounding (the distance test decides).
_BOX_SLACK = 1e-3

#: Faces with ``|a . (b x c)| <= _FLAT * |a| |b| |c|`` (camera-frame corners) are degenerate
#: or seen edge-on up to rounding, and skipped.
_FLAT = 1e-12


class SoftFragments(NamedTuple):
    """The ``K`` nearest faces of every pixel of ``B`` images of size ``(H, W)``.

    Attributes:
        pix_to_face: ``(B, H, W, K)`` int64 indices into ``meshes.faces_packed()``,
            sorted by depth (nearest first, as computed in float64: in float32
            outputs two depths equal to rounding may differ by an ulp the other
            way); ``-1`` in unused slots, which come last.
        zbuf: ``(B, H, W, K)`` camera-frame z of each fragment, ``-1`` in unused slots.
        bary_coords: ``(B, H, W, K, 3)`` perspective-correct barycentrics
            w.r.t. the face's vertices, in the triangle; ``-1`` in unused slots.
        dists: ``(B, H, W, K)`` signed squared distance from the pixel centre
            to the projected face in NDC units (negative inside; see
            :func:`soft_rasterize_meshes`), ``-1`` in unused slots.
    """

    pix_to_face: torch.Tensor
    zbuf: torch.Tensor
    bary_coords: torch.Tensor
    dists: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        """``(B, H, W, K)`` bool: the slots holding a face."""
        return self.pix_to_face >= 0


# --------------------------------------------------------------------------- #
# public op
# --------------------------------------------------------------------------- #


def soft_rasterize_meshes(
    meshes: Any,
    cameras: PerspectiveCameras,
    *,
    image_size: int | tuple[int, int] | None = None,
    blur_radius: float = 0.0,
    faces_per_pixel: int = 1,
    znear: float = 1e-2,
    zfar: float = math.inf,
    cull_backfaces: bool = False,
    backend: str = "auto",
) -> SoftFragments:
    """Per pixel, the ``faces_per_pixel`` nearest faces within ``blur_radius``, differentiably.

    See the module docstring for the exact rules (units, depth and barycentrics
    outside a face, near/far planes, what carries gradients) and how they
    compare with PyTorch3D's ``rasterize_meshes``.

    Args:
        meshes: :class:`geomgen.structures.Meshes` of ``M >= 1`` meshes (world
            coordinates); gradients flow to their vertices.
        cameras: :class:`~geomgen.render.PerspectiveCameras` of ``B = M * V``
            cameras, mesh-major (image ``b`` shows mesh ``b // V``), on the
            meshes' device; gradients flow to ``world_from_camera`` and ``K``.
        image_size: ``(H, W)`` or ``S`` (square) to render at, the cameras'
            field of view kept (``K`` rescaled); None: ``cameras.image_size``.
        blur_radius: ``>= 0``, squared NDC distance (PyTorch3D's unit): a face
            is a candidate of the pixels inside it and of those with ``dists <
            blur_radius``.  0 keeps only the faces covering the pixel centre.
        faces_per_pixel: ``K >= 1`` fragments kept per pixel.
        znear: near clipping plane (camera-frame z), ``> 0``.
        zfar: far plane, ``> znear``; ``inf`` (default) = none.
        cull_backfaces: skip faces whose normal points away from the camera.
        backend: ``"auto"``, ``"numba"`` (CPU only: the numba kernel chooses
            the fragments) or ``"torch"``; identical results.

    Returns:
        :class:`SoftFragments` ``(pix_to_face (B, H, W, K) int64, zbuf (B, H,
        W, K), bary_coords (B, H, W, K, 3), dists (B, H, W, K))`` on the meshes'
        device, floats in the promoted dtype of the vertices and the cameras.

    Raises:
        InvalidInputError: not a Meshes / PerspectiveCameras, an empty mesh
            batch, ``B`` not a positive multiple of ``M``, mismatched devices,
            NaN/Inf vertices, out-of-range face indices, a bad ``image_size``,
            ``blur_radius < 0``, ``faces_per_pixel < 1``, ``znear <= 0``,
            ``zfar <= znear``, an unknown backend.
        BackendUnavailableError: ``backend="numba"`` with CUDA tensors.
    """
    fn = _FN
    zn, zf = _check_scene(meshes, cameras, znear, zfar, cull_backfaces, backend, fn)
    H, W = _image_size(image_size, cameras, fn)
    blur = V.check_float(blur_radius, "blur_radius", nonnegative=True, fn=fn)
    K = V.check_int(faces_per_pixel, "faces_per_pixel", min_value=1, fn=fn)
    _check_mesh_values(meshes, fn)

    verts = meshes.verts_packed()
    faces = meshes.faces_packed()
    dev = verts.device
    use = resolve_backend(fn, backend, device=dev)
    dtype = torch.promote_types(verts.dtype, cameras.dtype)
    M, B = len(meshes), len(cameras)
    img_mesh = torch.arange(B, device=dev) // (B // M)
    Kmat = cameras.K.to(dtype)
    Hc, Wc = cameras.image_size
    if (H, W) != (Hc, Wc):
        rows = torch.tensor([W / Wc, H / Hc, 1.0], dtype=dtype, device=dev)
        Kmat = Kmat * rows[None, :, None]
    pose = cameras.world_from_camera.to(dtype)
    scale2 = (2.0 / min(H, W)) ** 2  # squared NDC units per squared pixel

    # the (image, face) pairs: every face of the mesh each image shows
    nf_img = meshes.num_faces_per_mesh().to(dev, torch.int64)[img_mesh]
    Q = int(nf_img.sum())
    pair_img = torch.repeat_interleave(torch.arange(B, device=dev), nf_img, output_size=Q)
    first = torch.cumsum(nf_img, 0) - nf_img
    ffirst = meshes.mesh_to_faces_packed_first_idx().to(dev, torch.int64)
    pair_face = torch.arange(Q, device=dev) - first[pair_img] + ffirst[img_mesh[pair_img]]

    with torch.no_grad():
        pair, pix, rank, inside, edge, front = _select(
            verts.detach().to(torch.float64), faces, pair_img, pair_face,
            pose.detach().to(torch.float64), Kmat.detach().to(torch.float64),
            H, W, zn, zf, blur, scale2, K, bool(cull_backfaces), use,
        )
    zbuf, bary, dists = _evaluate(verts.to(dtype), faces, pair_img, pair_face, pose, Kmat, front,
                                  pair, pix, inside, edge, H, W, zn, scale2)

    slot = pix * K + rank
    n = B * H * W * K
    p2f = torch.full((n,), -1, dtype=torch.int64, device=dev)
    p2f[slot] = pair_face[pair]
    # in place into new tensors (autograd records it; no copy of the B*H*W*K outputs)
    zbuf_o = torch.full((n,), -1.0, dtype=dtype, device=dev).index_put_((slot,), zbuf)
    dists_o = torch.full((n,), -1.0, dtype=dtype, device=dev).index_put_((slot,), dists)
    bary_o = torch.full((n, 3), -1.0, dtype=dtype, device=dev).index_put_((slot,), bary)
    return SoftFragments(p2f.view(B, H, W, K), zbuf_o.view(B, H, W, K), bary_o.view(B, H, W, K, 3),
                         dists_o.view(B, H, W, K))


def _image_size(image_size: Any, cameras: PerspectiveCameras, fn: str) -> tuple[int, int]:
    return cameras.image_size if image_size is None else V.check_image_size(image_size, fn=fn)


# --------------------------------------------------------------------------- #
# geometry shared by the selection (float64, no gradients) and the evaluation
# --------------------------------------------------------------------------- #


def _camera_faces(verts: torch.Tensor, faces: torch.Tensor, pimg: torch.Tensor, pface: torch.Tensor,
                  pose: torch.Tensor) -> torch.Tensor:
    """``(Q, 3, 3)`` camera-frame corners ``[pair, corner, xyz]`` of face ``pface`` seen by camera ``pimg``."""
    R = pose[pimg, None, :3, :3]
    d = verts[faces[pface]] - pose[pimg, None, :3, 3]
    # R^T (x - t) element by element (not a matmul), so equal corners stay exactly equal
    return (d[..., 0:1] * R[..., 0, :] + d[..., 1:2] * R[..., 1, :]) + d[..., 2:3] * R[..., 2, :]


def _intrinsics(Kmat: torch.Tensor, pimg: torch.Tensor) -> torch.Tensor:
    """``(Q, 5)`` ``(fx, fy, cx, cy, s)`` of the camera of each pair."""
    k = Kmat[pimg]
    return torch.stack([k[:, 0, 0], k[:, 1, 1], k[:, 0, 2], k[:, 1, 2], k[:, 0, 1]], dim=1)


def _clip(P: torch.Tensor, front: torch.Tensor, znear: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The part of each face with ``z >= znear`` (Sutherland-Hodgman against one plane).

    Args:
        P: ``(Q, 3, 3)`` camera-frame corners.
        front: ``(Q, 3)`` bool, corner ``z >= znear`` (decided by the caller).

    Returns:
        ``(pts (Q, 4, 3), bary (Q, 4, 3), count (Q,))``: the clipped polygon's
        corners in order and their barycentrics w.r.t. the face; triangles
        repeat their first corner in slot 3; ``count < 3``: nothing in front.
    """
    Q = P.shape[0]
    eye = torch.eye(3, dtype=P.dtype, device=P.device)
    pts, bary, ok = [], [], []
    for i in range(3):
        j = (i + 1) % 3
        a, b = P[:, i], P[:, j]
        pts.append(a)
        bary.append(eye[i].expand(Q, 3))
        ok.append(front[:, i])
        cross = front[:, i] != front[:, j]
        den = b[:, 2] - a[:, 2]
        t = ((znear - a[:, 2]) / torch.where(cross & (den != 0), den, torch.ones_like(den))).clamp(0.0, 1.0)
        t = torch.where(cross, t, torch.zeros_like(t))[:, None]
        c = a + t * (b - a)
        zc = torch.where(cross, torch.full_like(c[:, 2], znear), c[:, 2])  # exactly on the plane
        pts.append(torch.cat([c[:, :2], zc[:, None]], dim=1))
        bary.append(eye[i] * (1 - t) + eye[j] * t)
        ok.append(cross)
    okt = torch.stack(ok, dim=1)
    count = okt.sum(1)
    order = torch.argsort((~okt).to(torch.int32), dim=1, stable=True)[:, :4]
    order[:, 3] = torch.where(count >= 4, order[:, 3], order[:, 0])
    idx = order[:, :, None].expand(Q, 4, 3)
    return torch.stack(pts, 1).gather(1, idx), torch.stack(bary, 1).gather(1, idx), count


def _project(pts: torch.Tensor, kp: torch.Tensor, znear: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(uv (Q, 4, 2), z (Q, 4))`` of corners with ``z >= znear`` (clamped there against rounding)."""
    z = pts[..., 2].clamp(min=znear)
    fx, fy, cx, cy, s = (kp[:, i, None] for i in range(5))
    u = (fx * pts[..., 0] + s * pts[..., 1]) / z + cx
    v = (fy * pts[..., 1]) / z + cy
    return torch.stack([u, v], dim=-1), z


def _polygon_distance(px: torch.Tensor, py: torch.Tensor, poly: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Squared distance from points to the boundary of 4-corner polygons.

    Args:
        px: ``(N,)`` x of the points.
        py: ``(N,)`` y of the points.
        poly: ``(N, 4, 2)`` corners in order.

    Returns:
        ``(d2 (N,), edge (N,) int64, t (N,))``: the squared distance to the
        nearest edge ``edge`` (from corner ``edge`` to ``edge + 1 mod 4``) and
        the parameter of the nearest point on it.  Zero-length edges are safe.
    """
    a = poly
    e = torch.roll(poly, -1, dims=1) - a
    wx = px[:, None] - a[..., 0]
    wy = py[:, None] - a[..., 1]
    den = e[..., 0] * e[..., 0] + e[..., 1] * e[..., 1]
    ok = den > 0
    num = wx * e[..., 0] + wy * e[..., 1]
    t = torch.where(ok, num / torch.where(ok, den, torch.ones_like(den)), torch.zeros_like(den)).clamp(0.0, 1.0)
    dx = wx - t * e[..., 0]
    dy = wy - t * e[..., 1]
    d2, edge = (dx * dx + dy * dy).min(dim=1)
    return d2, edge, t.gather(1, edge[:, None]).squeeze(1)


def _segment_distance(px: torch.Tensor, py: torch.Tensor, a: torch.Tensor, b: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared distance ``(N,)`` from points ``(px, py)`` to segments ``a -> b`` (``(N, 2)`` each)
    and the parameter ``(N,)`` of the nearest point (0 on a zero-length segment)."""
    ex, ey = b[:, 0] - a[:, 0], b[:, 1] - a[:, 1]
    wx, wy = px - a[:, 0], py - a[:, 1]
    den = ex * ex + ey * ey
    ok = den > 0
    t = torch.where(ok, (wx * ex + wy * ey) / torch.where(ok, den, torch.ones_like(den)), torch.zeros_like(den))
    t = t.clamp(0.0, 1.0)
    dx, dy = wx - t * ex, wy - t * ey
    return dx * dx + dy * dy, t


def _edge_depth(t: torch.Tensor, z0: torch.Tensor, z1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Depth ``(N,)`` of the point at image parameter ``t`` of edges with end depths ``z0``,
    ``z1`` (``1 / z`` is affine in the image), and its perspective-correct parameter in 3D."""
    zz = 1.0 / ((1 - t) / z0 + t / z1)
    zz = zz + (torch.where(z0 == z1, z0, zz) - zz).detach()  # the value exact for equal depths (the clip edge)
    return zz, t * zz / z1


# --------------------------------------------------------------------------- #
# choosing the fragments (float64, no gradients)
# --------------------------------------------------------------------------- #


def _setup(verts: torch.Tensor, faces: torch.Tensor, pair_img: torch.Tensor, pair_face: torch.Tensor,
           pose: torch.Tensor, Kmat: torch.Tensor, H: int, W: int, znear: float, zfar: float, blur: float,
           scale2: float, cull: bool) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
    """Per (image, face) pair set-up of the selection (both backends): ``(front, faces)``.

    ``front (Q, 3)``: which corners of each pair's face lie at ``z >= znear``.
    ``faces``: None when no pair can give a fragment, else ``(keep, table, box)``:
    the pairs that can (``(n,)``, ascending), one float64 row each of edge
    coefficients (9), ``|D|``, clipped polygon corners (8) and corner depths
    (4) (``(n, 22)``), and their candidate pixel boxes ``(u0, u1, v0, v1)``
    (``(n, 4)`` int64, inclusive, the blur radius included).
    """
    P = _camera_faces(verts, faces, pair_img, pair_face, pose)
    front = P[..., 2] >= znear
    Q = P.shape[0]
    if Q == 0:
        return front, None
    pts, _, count = _clip(P, front, znear)
    kp = _intrinsics(Kmat, pair_img)
    uv, zc = _project(pts, kp, znear)
    a, b, c = P[:, 0], P[:, 1], P[:, 2]
    D = (a * torch.linalg.cross(b, c, dim=1)).sum(1)
    flat = D.abs() <= _FLAT * (a.norm(dim=1) * b.norm(dim=1) * c.norm(dim=1))  # degenerate or edge-on
    valid = (count >= 3) & ~flat & torch.isfinite(D) & (zc.amin(1) <= zfar)
    if cull:
        valid &= ~(D > 0)
    r = math.sqrt(blur / scale2) + _BOX_SLACK  # blur radius in pixels
    u0 = _first_px(uv[..., 0].amin(1) - r, W)
    u1 = _last_px(uv[..., 0].amax(1) + r, W)
    v0 = _first_px(uv[..., 1].amin(1) - r, H)
    v1 = _last_px(uv[..., 1].amax(1) + r, H)
    valid &= (u0 <= u1) & (v0 <= v1)
    keep = valid.nonzero().flatten()
    if keep.numel() == 0:
        return front, None

    # inside test: the edge functions of rasterize_meshes (ray through the pixel centre meets the face)
    sg = torch.where(D > 0, 1.0, -1.0).to(torch.float64)
    fx, fy, cx, cy, s = kp.unbind(1)
    ifx, ify = 1.0 / fx, 1.0 / fy
    xyz = [P[:, i].unbind(1) for i in range(3)]
    coef = []
    for i, j in ((1, 2), (2, 0), (0, 1)):
        coef.extend(_edge(*xyz[i], *xyz[j], ifx, ify, cx, cy, s, sg))
    # one row per face: edge coefficients (9), |D|, polygon corners (8), corner depths (4)
    table = torch.cat([torch.stack(coef + [D.abs()], dim=1), uv.reshape(-1, 8), zc], dim=1)[keep]
    box = torch.stack([u0, u1, v0, v1], dim=1)[keep]
    return front, (keep, table, box)


def _select(verts: torch.Tensor, faces: torch.Tensor, pair_img: torch.Tensor, pair_face: torch.Tensor,
            pose: torch.Tensor, Kmat: torch.Tensor, H: int, W: int, znear: float, zfar: float, blur: float,
            scale2: float, K: int, cull: bool, use: str = "torch"
            ) -> tuple[torch.Tensor, ...]:
    """The kept fragments: ``(pair, pix, rank, inside, edge)``, each ``(N,)``, and ``front (Q, 3)``.

    ``pair`` indexes the (image, face) pairs, ``pix = (b * H + v) * W + u`` is
    the flat pixel, ``rank`` the fragment's slot (by depth), ``inside`` whether
    the pixel centre is inside the projected face, ``edge`` the polygon edge
    nearest to it (see :func:`_clip`) and ``front`` which corners of each
    pair's face lie at ``z >= znear``.  Sorted by ``pix``, then ``rank``.
    ``use``: ``"torch"`` (the candidates in blocks of torch ops, the
    reference) or ``"numba"`` (:mod:`geomgen.kernels.soft_rasterize_numba`,
    the same arithmetic and the same result).
    """
    dev = verts.device
    empty = torch.zeros(0, dtype=torch.int64, device=dev)
    front, found = _setup(verts, faces, pair_img, pair_face, pose, Kmat, H, W, znear, zfar, blur, scale2, cull)
    if found is None:
        return empty, empty, empty, empty.bool(), empty, front
    keep, table, box = found
    if use == "numba":
        from geomgen.kernels import soft_rasterize_numba as SK

        kimg = pair_img[keep]
        B = len(pose)
        work = int(((box[:, 1] - box[:, 0] + 1) * (box[:, 3] - box[:, 2] + 1)).sum()) + B * H * W
        with kernel_threads(work) as threads:
            out = SK.select(table.contiguous().numpy(), box.contiguous().numpy(), kimg.numpy(), keep.numpy(),
                            B, H, W, K, znear, zfar, blur, scale2, threads)
        pair, pix, rank, ins, edge = (torch.from_numpy(x) for x in out)
        return pair, pix, rank, ins, edge, front

    u0, u1, v0, v1 = box.unbind(1)
    wu = u1 - u0 + 1
    counts = wu * (v1 - v0 + 1)
    ends = torch.cumsum(counts, 0)
    total = int(ends[-1])
    # and its integers: first pixel of its box (u0, v0), box width, first candidate, pair, image row offset
    itable = torch.stack([u0, v0, wu, ends - counts, keep, pair_img[keep] * H], dim=1)

    cap = max(4 * len(pose) * H * W * K, 1 << 22)  # compact the kept fragments beyond this many
    acc: list[tuple[torch.Tensor, ...]] = []
    held = 0
    for q0 in range(0, total, _CHUNK):
        qq = torch.arange(q0, min(total, q0 + _CHUNK), device=dev)
        f = torch.searchsorted(ends, qq, right=True)
        it = itable.index_select(0, f)
        rr = qq - it[:, 3]
        u = it[:, 0] + rr % it[:, 2]
        v = it[:, 1] + rr // it[:, 2]
        px = u.to(torch.float64) + 0.5
        py = v.to(torch.float64) + 0.5
        cf = table.index_select(0, f)
        d2, edge, t = _polygon_distance(px, py, cf[:, 10:18].view(-1, 4, 2))
        e0 = cf[:, 0] * px + (cf[:, 1] * py + cf[:, 2])
        e1 = cf[:, 3] * px + (cf[:, 4] * py + cf[:, 5])
        e2 = cf[:, 6] * px + (cf[:, 7] * py + cf[:, 8])
        sm = (e0 + e1) + e2
        ins = (e0 >= 0) & (e1 >= 0) & (e2 >= 0) & (sm > 0)
        z_in = cf[:, 9] / torch.where(ins, sm, torch.ones_like(sm))
        ins &= z_in >= znear
        zq = cf[:, 18:22]
        z_out, _ = _edge_depth(t, zq.gather(1, edge[:, None]).squeeze(1),
                               zq.gather(1, ((edge + 1) % 4)[:, None]).squeeze(1))
        z = torch.where(ins, z_in, z_out)
        ok = (ins | (d2 * scale2 < blur)) & (z <= zfar)
        sel = ok.nonzero().flatten()
        if sel.numel() == 0:
            continue
        its = it[sel]
        acc.append((its[:, 4], (its[:, 5] + v[sel]) * W + u[sel], z[sel], ins[sel], edge[sel]))
        held += sel.numel()
        if held > cap and len(acc) > 1:
            acc = [_compact(acc, K)[:-1]]
            held = acc[0][0].numel()
    if not acc:
        return empty, empty, empty, empty.bool(), empty, front
    pair, pix, _, ins, edge, rank = _compact(acc, K)
    return pair, pix, rank, ins, edge, front


def _compact(acc: list[tuple[torch.Tensor, ...]], K: int) -> tuple[torch.Tensor, ...]:
    """The ``K`` nearest of the fragments ``[(pair, pix, z, *more), ...]`` of every pixel,
    sorted by pixel then depth (equal depths keep their order: lower pair first),
    and their ranks: ``(pair, pix, z, *more, rank)``."""
    cols = [torch.cat(x) for x in zip(*acc)]
    pix, z = cols[1], cols[2]
    order = torch.argsort(z, stable=True)
    order = order[torch.argsort(pix[order], stable=True)]
    pix_s = pix[order]
    n = pix_s.numel()
    pos = torch.arange(n, device=pix.device)
    start = torch.ones(n, dtype=torch.bool, device=pix.device)
    start[1:] = pix_s[1:] != pix_s[:-1]
    rank = pos - torch.cummax(torch.where(start, pos, torch.zeros_like(pos)), 0).values
    kept = rank < K
    o = order[kept]
    return (*(c[o] for c in cols), rank[kept])


# --------------------------------------------------------------------------- #
# the differentiable values of the kept fragments
# --------------------------------------------------------------------------- #


def _evaluate(verts: torch.Tensor, faces: torch.Tensor, pair_img: torch.Tensor, pair_face: torch.Tensor,
              pose: torch.Tensor, Kmat: torch.Tensor, front: torch.Tensor, pair: torch.Tensor, pix: torch.Tensor,
              inside: torch.Tensor, edge: torch.Tensor, H: int, W: int, znear: float, scale2: float
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(zbuf (N,), bary (N, 3), dists (N,))`` of the fragments, with torch ops (autograd);
    the nearest edge of each is the one :func:`_select` found."""
    # every (image, face) pair (as many as _select has set up), indexed by the fragments' pair
    inv = pair
    P = _camera_faces(verts, faces, pair_img, pair_face, pose)
    pts, bry, _ = _clip(P, front, znear)
    kp = _intrinsics(Kmat, pair_img)
    uv, zc = _project(pts, kp, znear)

    u = pix % W
    v = (pix // W) % H
    px = u.to(verts.dtype) + 0.5
    py = v.to(verts.dtype) + 0.5
    i0 = inv * 4 + edge  # the nearest edge's corners in the flattened (U * 4) corner lists
    i1 = inv * 4 + (edge + 1) % 4
    uvf = uv.reshape(-1, 2)
    d2, t = _segment_distance(px, py, uvf.index_select(0, i0), uvf.index_select(0, i1))
    dists = torch.where(inside, -d2, d2) * scale2

    n = pair.numel()
    zbuf = torch.zeros(n, dtype=verts.dtype, device=verts.device)
    bary = torch.zeros(n, 3, dtype=verts.dtype, device=verts.device)
    out = (~inside).nonzero().flatten()
    if out.numel():  # the nearest point of the (clipped) face, on that edge
        j0, j1 = i0[out], i1[out]
        zcf, bf = zc.reshape(-1), bry.reshape(-1, 3)
        zo, so = _edge_depth(t.index_select(0, out), zcf.index_select(0, j0), zcf.index_select(0, j1))
        bo = bf.index_select(0, j0) * (1 - so[:, None]) + bf.index_select(0, j1) * so[:, None]
        zbuf = zbuf.index_put((out,), zo)
        bary = bary.index_put((out,), bo.clamp(0.0, 1.0))  # in [0, 1] up to rounding already
    inn = inside.nonzero().flatten()
    if inn.numel():  # the ray through the pixel centre meets the face
        i = inv[inn]
        a, b, c = P[:, 0], P[:, 1], P[:, 2]
        cr = torch.stack([torch.linalg.cross(b, c, dim=1), torch.linalg.cross(c, a, dim=1),
                          torch.linalg.cross(a, b, dim=1)], dim=1)  # (U, 3, 3)
        D = (a * cr[:, 0]).sum(1)
        fx, fy, cx, cy, s = kp.index_select(0, i).unbind(1)
        yn = (py[inn] - cy) / fy
        xn = (px[inn] - cx - s * yn) / fx
        ray = torch.stack([xn, yn, torch.ones_like(xn)], dim=1)
        e = (cr.index_select(0, i) * ray[:, None, :]).sum(2)  # (n_in, 3)
        sm = e.sum(1)
        tiny = torch.finfo(sm.dtype).tiny
        sm = torch.where(sm.abs() > tiny, sm, torch.full_like(sm, tiny))
        bi = (e / sm[:, None]).clamp(min=0.0)
        bary = bary.index_put((inn,), bi / bi.sum(1, keepdim=True))
        zbuf = zbuf.index_put((inn,), D.index_select(0, i) / sm)
    return zbuf, bary, dists
