"""Z-buffered triangle rasterization of batched meshes seen by batched cameras.

Shape letters: ``M`` meshes, ``B`` images (= cameras), ``H``, ``W`` image
height and width, ``F`` packed faces of the mesh batch.

Definitions (conventions of :mod:`geomgen.render.cameras`):

* **Coverage**: a face covers pixel ``(u, v)`` when the ray through the pixel
  centre ``(u + 0.5, v + 0.5)`` meets it in front of the camera.  A centre
  exactly on an edge shared by two faces goes to exactly one of them (a
  top-left-like tie rule on the edge's direction), so a closed or tiled
  surface has neither holes nor doubly-covered pixels along shared edges.
* **Depth**: the camera-frame z of the hit point (z-depth, not ray length);
  the nearest fragment wins, equal depths go to the lower face index.
* **Barycentrics**: perspective-correct, w.r.t. the face's three vertices in
  the order of ``faces``: the hit point is ``sum_i bary_i * v_i`` (world or
  camera frame alike).
* **Near / far planes**: only hits with ``znear <= z <= zfar`` count.  This is
  exactly clipping every face at ``z = znear`` (a face crossing the plane
  keeps the part in front: 1 or 2 triangles) with barycentrics still
  referring to the original face; cameras inside or close to a mesh render
  correctly.  Fragments beyond ``zfar`` are discarded.
* Degenerate (zero-area) faces and faces seen exactly edge-on cover nothing
  (and produce no NaN).  ``cull_backfaces=True`` skips faces whose
  right-handed normal ``(v1 - v0) x (v2 - v0)`` points away from the camera
  (with outward-oriented meshes: the inside of the surface).
* **Batching**: ``B`` must be a multiple of ``M``; image ``b`` shows mesh
  ``b // (B // M)``, i.e. cameras are ordered mesh-major (``M`` meshes x
  ``V = B // M`` views).  Meshes without faces render as background.

Not differentiable: fragments are discrete; use them to gather attributes
(:func:`geomgen.render.interpolate_face_attributes`), gradients then flow to
the attributes, not to vertex positions.

Backends: ``"numba"`` (CPU kernels, :mod:`geomgen.kernels.rasterize_numba`),
``"torch"`` (vectorised over face/pixel candidates, any device; the
reference) and ``"auto"`` (numba for CPU meshes, torch otherwise), chosen by
:func:`geomgen.backend.resolve_backend`.  Both use
the same float64 arithmetic operation by operation and return identical
fragments.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch

from geomgen import checks as V
from geomgen.backend import OP_BACKENDS, check_backend, kernel_threads, resolve_backend
from geomgen.render.cameras import PerspectiveCameras

__all__ = ["Fragments", "rasterize_meshes", "RASTERIZE_BACKENDS"]

_FN = "rasterize_meshes"

#: Accepted values of ``rasterize_meshes(..., backend=...)`` (from :data:`geomgen.backend.OP_BACKENDS`).
RASTERIZE_BACKENDS = OP_BACKENDS[_FN].names

#: (face, pixel) candidates evaluated per block by the torch path.
_TORCH_CHUNK = 1 << 19

_MESH_METHODS = ("verts_packed", "faces_packed", "num_faces_per_mesh", "num_verts_per_mesh",
                 "mesh_to_verts_packed_first_idx", "mesh_to_faces_packed_first_idx")


class Fragments(NamedTuple):
    """Per-pixel rasterization output of ``B`` images of size ``(H, W)``.

    Attributes:
        pix_to_face: ``(B, H, W)`` int64 index of the visible face in
            ``meshes.faces_packed()``, ``-1`` on background.
        zbuf: ``(B, H, W)`` camera-frame z-depth of the visible surface, 0 on
            background (dtype of the mesh vertices).
        bary: ``(B, H, W, 3)`` perspective-correct barycentric coordinates
            w.r.t. the visible face's vertices (they sum to 1), 0 on background.
    """

    pix_to_face: torch.Tensor
    zbuf: torch.Tensor
    bary: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        """``(B, H, W)`` bool: pixels showing a face."""
        return self.pix_to_face >= 0


# --------------------------------------------------------------------------- #
# validation
# --------------------------------------------------------------------------- #


def _check_scene(meshes: Any, cameras: Any, znear: Any, zfar: Any, cull_backfaces: Any, backend: Any,
                 fn: str) -> tuple[float, float]:
    """The argument checks every rasterizer of this package shares (``fn`` is also the
    op's name in :data:`geomgen.backend.OP_BACKENDS`); returns ``(znear, zfar)`` as floats."""
    V.check_meshes(meshes, _MESH_METHODS, fn=fn)
    if not isinstance(cameras, PerspectiveCameras):
        raise V.fail("cameras", f"must be a geomgen.render.PerspectiveCameras, got {type(cameras).__name__}", fn)
    check_backend(fn, backend)
    V.check_bool(cull_backfaces, "cull_backfaces", fn=fn)
    zn = V.check_float(znear, "znear", positive=True, fn=fn)
    zf = V.check_float(zfar, "zfar", finite=False, fn=fn)  # inf: no far plane
    if not zf > zn:
        raise V.fail("zfar", f"must be > znear ({zn:g}), got {zf:g}", fn)
    M, B = len(meshes), len(cameras)
    if M == 0:
        raise V.fail("meshes", "must contain at least one mesh, got an empty batch", fn)
    if B == 0 or B % M:
        raise V.fail("cameras", f"must hold a positive multiple of len(meshes) = {M} cameras (M meshes x V "
                     f"views, mesh-major), got {B}", fn)
    device = meshes.verts_packed().device
    if cameras.device != device:
        raise V.fail("cameras", f"must be on the meshes' device {device}, got {cameras.device}", fn)
    return zn, zf


def _check_mesh_values(meshes: Any, fn: str) -> None:
    """Finite vertices and in-range face indices (batches built with ``validate=False``)."""
    verts, faces = meshes.verts_packed(), meshes.faces_packed()
    vk = verts.detach()
    if vk.numel() and not bool(torch.isfinite(vk).all()):
        V.check_finite(vk, "meshes (vertices)", fn=fn)  # raises with details
    if not getattr(meshes, "validated", True) and faces.numel():
        lo, hi = int(faces.min()), int(faces.max())
        if lo < 0 or hi >= verts.shape[0]:
            raise V.fail("meshes", f"has face indices outside [0, {verts.shape[0] - 1}] (got "
                         f"{lo if lo < 0 else hi})", fn)


def _prepare(meshes: Any, cameras: Any, znear: Any, zfar: Any, cull_backfaces: Any, backend: Any,
             fn: str) -> dict[str, Any]:
    """Check the arguments; return the packed mesh/camera tensors the backends use."""
    zn, zf = _check_scene(meshes, cameras, znear, zfar, cull_backfaces, backend, fn)
    M, B = len(meshes), len(cameras)
    verts = meshes.verts_packed()
    device = verts.device
    use = resolve_backend(fn, backend, device=device)
    _check_mesh_values(meshes, fn)
    faces = meshes.faces_packed()
    vk = verts.detach()
    pose = cameras.world_from_camera.detach().to(torch.float64)
    R, t = pose[:, :3, :3], pose[:, :3, 3:]
    Rt = R.transpose(1, 2)
    cam = torch.cat([Rt, -(Rt @ t)], dim=2).contiguous()  # (B, 3, 4) camera_from_world
    K = cameras.K.detach().to(torch.float64)
    intr = torch.stack([K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2], K[:, 0, 1], 1.0 / K[:, 0, 0],
                        1.0 / K[:, 1, 1]], dim=1).contiguous()
    dtype = verts.dtype if verts.is_floating_point() else torch.get_default_dtype()
    return dict(
        verts=vk.to(torch.float64).contiguous(), faces=faces.contiguous(),
        vfirst=meshes.mesh_to_verts_packed_first_idx().to(torch.int64),
        nverts=meshes.num_verts_per_mesh().to(torch.int64),
        ffirst=meshes.mesh_to_faces_packed_first_idx().to(torch.int64),
        nfaces=meshes.num_faces_per_mesh().to(torch.int64),
        img_mesh=torch.arange(B, device=device) // (B // M),
        cam=cam, intr=intr, H=cameras.image_size[0], W=cameras.image_size[1],
        znear=zn, zfar=zf, cull=bool(cull_backfaces), dtype=dtype, device=device, use=use,
    )


# --------------------------------------------------------------------------- #
# public op
# --------------------------------------------------------------------------- #


def rasterize_meshes(
    meshes: Any,
    cameras: PerspectiveCameras,
    *,
    znear: float = 1e-2,
    zfar: float = math.inf,
    cull_backfaces: bool = False,
    backend: str = "auto",
) -> Fragments:
    """Rasterize a batch of meshes into per-pixel face indices, depths and barycentrics.

    See the module docstring for the exact coverage, depth, tie, near/far and
    batching rules.

    Args:
        meshes: :class:`geomgen.structures.Meshes` of ``M >= 1`` meshes
            (world coordinates).
        cameras: :class:`~geomgen.render.PerspectiveCameras` of ``B = M * V``
            cameras, mesh-major: image ``b`` shows mesh ``b // V``.  Same device.
        znear: near clipping plane (camera-frame z, world units), ``> 0``.
        zfar: far plane, ``> znear``; ``inf`` (default) = none.
        cull_backfaces: skip faces whose normal points away from the camera.
        backend: ``"auto"``, ``"numba"`` (CPU only) or ``"torch"``.

    Returns:
        :class:`Fragments` ``(pix_to_face (B, H, W) int64, zbuf (B, H, W),
        bary (B, H, W, 3))`` on the meshes' device; ``zbuf`` and ``bary`` in
        the vertices' dtype (computed in float64).  Not differentiable.

    Raises:
        InvalidInputError: not a Meshes / PerspectiveCameras, an empty mesh
            batch, ``B`` not a positive multiple of ``M``, mismatched devices,
            NaN/Inf vertices, out-of-range face indices (batches built with
            ``validate=False``), ``znear <= 0`` or ``zfar <= znear``, an
            unknown backend.
        BackendUnavailableError: ``backend="numba"`` with CUDA tensors.
    """
    fn = _FN
    a = _prepare(meshes, cameras, znear, zfar, cull_backfaces, backend, fn)
    if a["use"] == "numba":
        from geomgen.kernels import rasterize_numba as K

        img_mesh, nfaces = a["img_mesh"].numpy(), a["nfaces"].numpy()
        work = int(nfaces[img_mesh].sum()) + img_mesh.shape[0] * a["H"] * a["W"]  # faces drawn + pixels
        with kernel_threads(work) as threads:
            p2f, zb, bary = K.rasterize(
                a["verts"].numpy(), a["faces"].numpy(), a["vfirst"].numpy(), a["nverts"].numpy(),
                a["ffirst"].numpy(), nfaces, img_mesh, a["cam"].numpy(),
                a["intr"].numpy(), a["H"], a["W"], a["znear"], a["zfar"], a["cull"], threads,
            )
        p2f_t, zb_t, bary_t = torch.from_numpy(p2f), torch.from_numpy(zb), torch.from_numpy(bary)
    else:
        with torch.no_grad():
            p2f_t, zb_t, bary_t = _rasterize_torch(a)
    return Fragments(p2f_t, zb_t.to(a["dtype"]), bary_t.to(a["dtype"]))


# --------------------------------------------------------------------------- #
# pure-torch path (any device; the reference of the numba kernels)
# --------------------------------------------------------------------------- #


def _exclusive_cumsum(x: torch.Tensor) -> torch.Tensor:
    return torch.cumsum(x, 0) - x


def _edge(ax: torch.Tensor, ay: torch.Tensor, az: torch.Tensor, bx: torch.Tensor, by: torch.Tensor,
          bz: torch.Tensor, ifx: torch.Tensor, ify: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor,
          s: torch.Tensor, sg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Same operations as the kernel's ``_edge``: coefficients of sg * d . (a x b)."""
    wx = ay * bz - az * by
    wy = az * bx - ax * bz
    wz = ax * by - ay * bx
    A = wx * ifx
    Bc = (wy - A * s) * ify
    C = (wz - A * cx) - Bc * cy
    return sg * A, sg * Bc, sg * C


def _first_px(lo: torch.Tensor, n: int) -> torch.Tensor:
    return torch.ceil((lo - 0.5).clamp(-1.0, n + 1.0)).long().clamp(min=0)


def _last_px(hi: torch.Tensor, n: int) -> torch.Tensor:
    return torch.floor((hi - 0.5).clamp(-2.0, n + 1.0)).long().clamp(max=n - 1)


def _rasterize_torch(a: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(pix_to_face (B, H, W) int64, zbuf (B, H, W) float64, bary (B, H, W, 3) float64)."""
    from geomgen.kernels.rasterize_numba import BOX_SLACK  # the kernels' candidate-box slack

    verts, faces, img_mesh = a["verts"], a["faces"], a["img_mesh"]
    cam, intr, H, W = a["cam"], a["intr"], a["H"], a["W"]
    znear, zfar, cull, dev = a["znear"], a["zfar"], a["cull"], a["device"]
    B = img_mesh.shape[0]
    f64 = dict(dtype=torch.float64, device=dev)
    p2f = torch.full((B * H * W,), -1, dtype=torch.int64, device=dev)
    zbuf = torch.zeros(B * H * W, **f64)
    bary = torch.zeros(B * H * W, 3, **f64)

    # camera-frame vertices of every image ("scratch rows", image-major)
    nv_img = a["nverts"][img_mesh]
    R = int(nv_img.sum())
    vo = _exclusive_cumsum(nv_img)
    row_img = torch.repeat_interleave(torch.arange(B, device=dev), nv_img, output_size=R)
    vidx = torch.arange(R, device=dev) - vo[row_img] + a["vfirst"][img_mesh[row_img]]
    P = verts[vidx]
    c = cam[row_img]
    X, Y, Z = P[:, 0], P[:, 1], P[:, 2]
    x = ((c[:, 0, 0] * X + c[:, 0, 1] * Y) + c[:, 0, 2] * Z) + c[:, 0, 3]
    y = ((c[:, 1, 0] * X + c[:, 1, 1] * Y) + c[:, 1, 2] * Z) + c[:, 1, 3]
    z = ((c[:, 2, 0] * X + c[:, 2, 1] * Y) + c[:, 2, 2] * Z) + c[:, 2, 3]
    k = intr[row_img]
    front_v = z >= znear
    zs = torch.where(front_v, z, torch.ones_like(z))
    pu = torch.where(front_v, (k[:, 0] * x + k[:, 4] * y) / zs + k[:, 2], torch.zeros_like(z))
    pvv = torch.where(front_v, (k[:, 1] * y) / zs + k[:, 3], torch.zeros_like(z))

    # per-face setup
    nf_img = a["nfaces"][img_mesh]
    Q = int(nf_img.sum())
    if Q == 0:
        return p2f.view(B, H, W), zbuf.view(B, H, W), bary.view(B, H, W, 3)
    fo = _exclusive_cumsum(nf_img)
    f_img = torch.repeat_interleave(torch.arange(B, device=dev), nf_img, output_size=Q)
    m = img_mesh[f_img]
    gf = torch.arange(Q, device=dev) - fo[f_img] + a["ffirst"][m]
    rows = faces[gf] + (vo[f_img] - a["vfirst"][m])[:, None]
    ra, rb, rc = rows[:, 0], rows[:, 1], rows[:, 2]
    xa, ya, za = x[ra], y[ra], z[ra]
    xb, yb, zb = x[rb], y[rb], z[rb]
    xc, yc, zc = x[rc], y[rc], z[rc]
    zmax = torch.maximum(torch.maximum(za, zb), zc)
    zmin = torch.minimum(torch.minimum(za, zb), zc)
    D = (xa * (yb * zc - zb * yc) + ya * (zb * xc - xb * zc)) + za * (xb * yc - yb * xc)
    valid = (D != 0) & torch.isfinite(D) & ~(zmax < znear) & ~(zmin > zfar)
    if cull:
        valid &= ~(D > 0)
    sg = torch.where(D > 0, 1.0, -1.0).to(torch.float64)
    kf = intr[f_img]
    fx, fy, cx, cy, s, ifx, ify = kf.unbind(1)
    A0, B0, C0 = _edge(xb, yb, zb, xc, yc, zc, ifx, ify, cx, cy, s, sg)
    A1, B1, C1 = _edge(xc, yc, zc, xa, ya, za, ifx, ify, cx, cy, s, sg)
    A2, B2, C2 = _edge(xa, ya, za, xb, yb, zb, ifx, ify, cx, cy, s, sg)
    tl0 = (A0 > 0) | ((A0 == 0) & (B0 > 0))
    tl1 = (A1 > 0) | ((A1 == 0) & (B1 > 0))
    tl2 = (A2 > 0) | ((A2 == 0) & (B2 > 0))

    # candidate boxes of the parts with z >= znear
    inf = torch.full_like(D, math.inf)
    umin, umax, vmin, vmax = inf, -inf, inf, -inf
    for r, rn in ((ra, rb), (rb, rc), (rc, ra)):
        fr, fn_ = front_v[r], front_v[rn]
        umin = torch.minimum(umin, torch.where(fr, pu[r], inf))
        umax = torch.maximum(umax, torch.where(fr, pu[r], -inf))
        vmin = torch.minimum(vmin, torch.where(fr, pvv[r], inf))
        vmax = torch.maximum(vmax, torch.where(fr, pvv[r], -inf))
        cross = fr != fn_
        zr = z[r]
        den = torch.where(cross, z[rn] - zr, torch.ones_like(zr))
        t = (znear - zr) / den
        Xc = x[r] + t * (x[rn] - x[r])
        Yc = y[r] + t * (y[rn] - y[r])
        uc = (fx * Xc + s * Yc) / znear + cx
        vc = (fy * Yc) / znear + cy
        umin = torch.minimum(umin, torch.where(cross, uc, inf))
        umax = torch.maximum(umax, torch.where(cross, uc, -inf))
        vmin = torch.minimum(vmin, torch.where(cross, vc, inf))
        vmax = torch.maximum(vmax, torch.where(cross, vc, -inf))
    bad = ~(torch.isfinite(umin) & torch.isfinite(umax) & torch.isfinite(vmin) & torch.isfinite(vmax))
    umin = torch.where(bad, -1.0, umin)
    umax = torch.where(bad, W + 1.0, umax)
    vmin = torch.where(bad, -1.0, vmin)
    vmax = torch.where(bad, H + 1.0, vmax)
    u0, u1 = _first_px(umin - BOX_SLACK, W), _last_px(umax + BOX_SLACK, W)
    v0, v1 = _first_px(vmin - BOX_SLACK, H), _last_px(vmax + BOX_SLACK, H)
    valid &= (u0 <= u1) & (v0 <= v1)

    keep = valid.nonzero().flatten()
    if keep.numel() == 0:
        return p2f.view(B, H, W), zbuf.view(B, H, W), bary.view(B, H, W, 3)
    coef = torch.stack([A0, B0, C0, A1, B1, C1, A2, B2, C2, D.abs()], dim=1)[keep]
    tls = torch.stack([tl0, tl1, tl2], dim=1)[keep]
    u0, v0, f_img_k, gf_k = u0[keep], v0[keep], f_img[keep], gf[keep]
    wu = u1[keep] - u0 + 1
    counts = wu * (v1[keep] - v0 + 1)
    ends = torch.cumsum(counts, 0)
    total = int(ends[-1])

    frag_pix, frag_face, frag_z, frag_e = [], [], [], []
    for q0 in range(0, total, _TORCH_CHUNK):
        qq = torch.arange(q0, min(total, q0 + _TORCH_CHUNK), device=dev)
        f = torch.searchsorted(ends, qq, right=True)
        r = qq - (ends - counts)[f]
        u = u0[f] + r % wu[f]
        v = v0[f] + r // wu[f]
        px = u.to(torch.float64) + 0.5
        py = v.to(torch.float64) + 0.5
        cf = coef[f]
        t = tls[f]
        e0 = cf[:, 0] * px + (cf[:, 1] * py + cf[:, 2])
        e1 = cf[:, 3] * px + (cf[:, 4] * py + cf[:, 5])
        e2 = cf[:, 6] * px + (cf[:, 7] * py + cf[:, 8])
        ok = ((e0 > 0) | ((e0 == 0) & t[:, 0])) & ((e1 > 0) | ((e1 == 0) & t[:, 1])) \
            & ((e2 > 0) | ((e2 == 0) & t[:, 2]))
        sm = (e0 + e1) + e2
        ok &= sm > 0
        zz = cf[:, 9] / torch.where(ok, sm, torch.ones_like(sm))
        ok &= (zz >= znear) & (zz <= zfar)
        sel = ok.nonzero().flatten()
        if sel.numel() == 0:
            continue
        fs = f[sel]
        frag_pix.append((f_img_k[fs] * H + v[sel]) * W + u[sel])
        frag_face.append(gf_k[fs])
        frag_z.append(zz[sel])
        frag_e.append(torch.stack([e0[sel], e1[sel], e2[sel], sm[sel]], dim=1))
    if not frag_pix:
        return p2f.view(B, H, W), zbuf.view(B, H, W), bary.view(B, H, W, 3)
    pix = torch.cat(frag_pix)
    face = torch.cat(frag_face)
    zz = torch.cat(frag_z)
    ee = torch.cat(frag_e)
    best_z = torch.full((B * H * W,), math.inf, **f64).scatter_reduce(0, pix, zz, reduce="amin")
    win = zz == best_z[pix]
    big = torch.iinfo(torch.int64).max
    best_f = torch.full((B * H * W,), big, dtype=torch.int64, device=dev)
    best_f = best_f.scatter_reduce(0, pix[win], face[win], reduce="amin")
    win &= face == best_f[pix]
    w = win.nonzero().flatten()
    pw = pix[w]
    p2f[pw] = face[w]
    zbuf[pw] = zz[w]
    bary[pw] = ee[w, :3] / ee[w, 3:]
    return p2f.view(B, H, W), zbuf.view(B, H, W), bary.view(B, H, W, 3)
