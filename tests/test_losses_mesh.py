"""Tests of geomgen.losses.mesh_regularizers (edge, Laplacian, normal consistency)."""

from __future__ import annotations

import math
from collections import defaultdict

import pytest
import torch

from geomgen.errors import InvalidInputError
from geomgen.losses.mesh_regularizers import mesh_edge_loss, mesh_laplacian_smoothing, mesh_normal_consistency
from geomgen.ops.ico_sphere import ico_sphere
from geomgen.structures import Meshes


def unique_edges(faces):
    return sorted({tuple(sorted((f[i], f[j]))) for f in faces.tolist() for i, j in ((0, 1), (1, 2), (2, 0))})


# ----------------------------------------------------------------- references


def naive_edge_loss(vs, fs, target):
    per_mesh = []
    for v, f in zip(vs, fs):
        e = unique_edges(f)
        terms = [(torch.linalg.vector_norm(v[a] - v[b]) - target) ** 2 for a, b in e]
        per_mesh.append(sum(terms) / len(terms) if terms else torch.zeros((), dtype=v.dtype))
    return sum(per_mesh) / len(per_mesh)


def corner_cot(p, q, r):
    """cot of the angle at p in triangle (p, q, r), via cos / sin (not the law of cosines)."""
    a, b = q - p, r - p
    cos = torch.dot(a, b)
    sin = torch.linalg.vector_norm(torch.linalg.cross(a, b, dim=0))
    return cos / sin


def naive_laplacian(vs, fs, method):
    """Dense-matrix reference of the per-vertex Laplacian norms, mean per mesh, mean over meshes."""
    per_mesh = []
    for v, f in zip(vs, fs):
        nv = v.shape[0]
        Lw = torch.zeros(nv, nv, dtype=v.dtype)
        area = torch.zeros(nv, dtype=v.dtype)
        if method == "uniform":
            for a, b in unique_edges(f):
                Lw[a, b] = Lw[b, a] = 1.0
        else:
            for tri in f.tolist():
                for k in range(3):
                    p, q, r = tri[k], tri[(k + 1) % 3], tri[(k + 2) % 3]
                    c = corner_cot(v[p], v[q], v[r])  # opposite edge (q, r)
                    Lw[q, r] += c
                    Lw[r, q] += c
                t = v[tri]
                ar = 0.5 * torch.linalg.vector_norm(torch.linalg.cross(t[1] - t[0], t[2] - t[0], dim=0))
                area[tri] += ar
        s = Lw.sum(1)
        terms = []
        for i in range(nv):
            if s[i] == 0:
                terms.append(torch.zeros((), dtype=v.dtype))
                continue
            if method == "cotcurv":
                delta = (Lw[i] @ v - s[i] * v[i]) / (4 * area[i])
            else:
                delta = Lw[i] @ v / s[i] - v[i]
            terms.append(torch.linalg.vector_norm(delta))
        per_mesh.append(sum(terms) / nv)
    return sum(per_mesh) / len(per_mesh)


def naive_normal_consistency(vs, fs):
    per_mesh = []
    for v, f in zip(vs, fs):
        opp = defaultdict(list)  # edge -> vertices opposite it in the faces that hold it
        for tri in f.tolist():
            for k in range(3):
                opp[tuple(sorted((tri[(k + 1) % 3], tri[(k + 2) % 3])))].append(tri[k])
        terms = []
        for (a, b), others in opp.items():
            for i in range(len(others)):
                for j in range(i + 1, len(others)):
                    n0 = torch.linalg.cross(v[b] - v[a], v[others[i]] - v[a], dim=0)
                    n1 = torch.linalg.cross(v[others[j]] - v[a], v[b] - v[a], dim=0)
                    terms.append(1 - torch.dot(n0, n1) / (n0.norm() * n1.norm()))
        per_mesh.append(sum(terms) / len(terms) if terms else torch.zeros((), dtype=v.dtype))
    return sum(per_mesh) / len(per_mesh)


# ---------------------------------------------------------------- fixtures


def hetero(seed=0, dtype=torch.float64, isolated=True, faceless=True):
    g = torch.Generator().manual_seed(seed)
    s = ico_sphere(1)
    vs = [s.verts_packed().to(dtype) + 0.1 * torch.randn(42, 3, generator=g, dtype=dtype),
          torch.randn(6, 3, generator=g, dtype=dtype)]
    fan = torch.tensor([[0, 1, 2], [0, 2, 3], [0, 3, 4], [0, 4, 1], [1, 2, 4]])
    fs = [s.faces_packed(), torch.cat([fan, torch.tensor([[1, 2, 5]])])]  # edge (1, 2) in 3 faces
    if isolated:
        vs.append(torch.randn(5, 3, generator=g, dtype=dtype))
        fs.append(torch.tensor([[0, 1, 2], [0, 2, 3]]))  # vertex 4 in no face
    if faceless:
        vs.append(torch.randn(3, 3, generator=g, dtype=dtype))
        fs.append(torch.zeros(0, 3, dtype=torch.int64))
    return vs, fs


def real_meshes(cgal_data, names=("blob.off", "joint.off")):
    from geomgen.io import load_mesh

    vs, fs = [], []
    for n in names:
        m = load_mesh(cgal_data / "meshes" / n)
        vs.append(m.verts_packed().double())
        fs.append(m.faces_packed())
    return vs, fs


# ------------------------------------------------------------------- tests


@pytest.mark.parametrize("target", [0.0, 0.3])
def test_edge_loss_against_naive(target):
    vs, fs = hetero()
    got = mesh_edge_loss(Meshes(vs, fs), target)
    assert got.dim() == 0 and got.dtype == torch.float64
    assert torch.allclose(got, naive_edge_loss(vs, fs, target))


@pytest.mark.parametrize("method", ["uniform", "cot", "cotcurv"])
def test_laplacian_against_naive(method):
    vs, fs = hetero(1)
    got = mesh_laplacian_smoothing(Meshes(vs, fs), method)
    assert got.dim() == 0 and torch.allclose(got, naive_laplacian(vs, fs, method))


def test_normal_consistency_against_naive():
    vs, fs = hetero(2)
    got = mesh_normal_consistency(Meshes(vs, fs))
    assert got.dim() == 0 and torch.allclose(got, naive_normal_consistency(vs, fs))


def test_real_meshes_against_naive(cgal_data):
    vs, fs = real_meshes(cgal_data)
    m = Meshes(vs, fs)
    assert torch.allclose(mesh_edge_loss(m, 0.05), naive_edge_loss(vs, fs, 0.05))
    assert torch.allclose(mesh_normal_consistency(m), naive_normal_consistency(vs, fs))
    for method in ("uniform", "cot"):
        assert torch.allclose(mesh_laplacian_smoothing(m, method), naive_laplacian(vs, fs, method))


def test_geometric_sanity():
    # planar grid: normal consistency 0, uniform Laplacian 0 at interior vertices only
    n = 5
    xy = torch.stack(torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij"), -1).reshape(-1, 2).double()
    v = torch.cat([xy, torch.zeros(n * n, 1, dtype=torch.float64)], 1)
    f = []
    for i in range(n - 1):
        for j in range(n - 1):
            a, b, c, d = i * n + j, (i + 1) * n + j, (i + 1) * n + j + 1, i * n + j + 1
            f += [[a, b, c], [a, c, d]]
    grid = Meshes([v], [torch.tensor(f)])
    assert mesh_normal_consistency(grid).item() == pytest.approx(0.0, abs=1e-12)
    assert mesh_laplacian_smoothing(grid, "cotcurv").item() > 0  # boundary vertices only
    # edge loss: 2D scaling by s multiplies it by s^2; translation invariance of all losses
    m = Meshes(*hetero(3, isolated=False))
    moved = m.offset_verts(torch.tensor([3.0, -2.0, 7.0], dtype=torch.float64))
    for fn in (mesh_edge_loss, mesh_normal_consistency, mesh_laplacian_smoothing,
               lambda x: mesh_laplacian_smoothing(x, "cot"), lambda x: mesh_laplacian_smoothing(x, "cotcurv")):
        assert torch.allclose(fn(m), fn(moved))
    assert torch.allclose(mesh_edge_loss(m.scale_verts(2.0)), 4 * mesh_edge_loss(m))
    assert torch.allclose(mesh_laplacian_smoothing(m.scale_verts(2.0), "cotcurv"),
                          0.5 * mesh_laplacian_smoothing(m, "cotcurv"))
    # a finer icosphere is smoother
    assert mesh_normal_consistency(ico_sphere(3)) < mesh_normal_consistency(ico_sphere(1))
    # folding one face over flips its normal: 1 - cos = 2 for that pair
    v = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 1, 0]], dtype=torch.float64)
    v[3] = torch.tensor([0.3, 0.4, 0.0])  # b on the same side as a: folded
    folded = Meshes([v], [torch.tensor([[0, 1, 2], [1, 0, 3]])])
    assert mesh_normal_consistency(folded).item() == pytest.approx(2.0)
    v[3] = torch.tensor([0.3, -0.4, 0.0])  # opened flat
    assert mesh_normal_consistency(Meshes([v], [torch.tensor([[0, 1, 2], [1, 0, 3]])])).item() == pytest.approx(0.0)


def test_isolated_vertex_contributes_zero_and_empty_batches():
    v = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [5, 5, 5]], dtype=torch.float64)
    m = Meshes([v], [torch.tensor([[0, 1, 2]])])
    m2 = Meshes([v + 10], [torch.tensor([[0, 1, 2]])])
    for method in ("uniform", "cot", "cotcurv"):
        assert torch.allclose(mesh_laplacian_smoothing(m, method), mesh_laplacian_smoothing(m2, method))
    for fn in (mesh_edge_loss, mesh_laplacian_smoothing, mesh_normal_consistency):
        for batch in (Meshes([], []), Meshes([torch.rand(3, 3, requires_grad=True)], [torch.zeros(0, 3, dtype=torch.int64)])):
            out = fn(batch)
            assert out.dim() == 0 and out.item() == 0.0
    verts = torch.rand(3, 3, requires_grad=True)
    mesh_edge_loss(Meshes([verts], [torch.zeros(0, 3, dtype=torch.int64)])).backward()
    assert torch.equal(verts.grad, torch.zeros(3, 3))
    # a single triangle has no shared edge: normal consistency 0
    assert mesh_normal_consistency(m).item() == 0.0


def test_gradcheck():
    vs, fs = hetero(4, isolated=True, faceless=False)
    vs = [vs[1], vs[2]]
    fs = [fs[1], fs[2]]
    vv = [v.clone().requires_grad_() for v in vs]

    def run(fn):
        return lambda a, b: fn(Meshes([a, b], fs))

    # fast_mode: a random projection of the Jacobian (one pass instead of one per input)
    assert torch.autograd.gradcheck(run(lambda m: mesh_edge_loss(m, 0.2)), tuple(vv), fast_mode=True)
    assert torch.autograd.gradcheck(run(mesh_normal_consistency), tuple(vv))  # full Jacobian
    # uniform weights do not depend on the positions; the cotangent weights do, and are
    # constants for autograd (as in PyTorch3D): see test_laplacian_weights_are_constants
    assert torch.autograd.gradcheck(run(lambda m: mesh_laplacian_smoothing(m, "uniform")), tuple(vv), fast_mode=True)


def test_laplacian_weights_are_constants():
    vs, fs = hetero(5, isolated=False, faceless=False)
    v = vs[0].clone().requires_grad_()
    m = Meshes([v], [fs[0]])
    for method in ("cot", "cotcurv"):
        (g,) = torch.autograd.grad(mesh_laplacian_smoothing(m, method), v)
        # reference: the same expression with the weights from a detached copy
        d = v.detach()
        ref_v = v.clone()
        nv = d.shape[0]
        Lw = torch.zeros(nv, nv, dtype=d.dtype)
        area = torch.zeros(nv, dtype=d.dtype)
        for tri in fs[0].tolist():
            for k in range(3):
                p, q, r = tri[k], tri[(k + 1) % 3], tri[(k + 2) % 3]
                c = corner_cot(d[p], d[q], d[r])
                Lw[q, r] += c
                Lw[r, q] += c
            t = d[tri]
            area[tri] += 0.5 * torch.linalg.vector_norm(torch.linalg.cross(t[1] - t[0], t[2] - t[0], dim=0))
        s = Lw.sum(1, keepdim=True)
        if method == "cot":
            delta = Lw @ ref_v / s - ref_v
        else:
            delta = (Lw @ ref_v - s * ref_v) / (4 * area[:, None])
        (g_ref,) = torch.autograd.grad(torch.linalg.vector_norm(delta, dim=1).mean(), v)
        assert torch.allclose(g, g_ref)


@pytest.mark.filterwarnings("ignore:Sparse invariant checks:UserWarning")
def test_against_pytorch3d(cgal_data):
    pytest.importorskip("pytorch3d")
    from pytorch3d.loss import mesh_edge_loss as p3d_edge
    from pytorch3d.loss import mesh_laplacian_smoothing as p3d_lap
    from pytorch3d.loss import mesh_normal_consistency as p3d_nc
    from pytorch3d.structures import Meshes as P3DMeshes

    vs, fs = hetero(6, isolated=False, faceless=False)
    rv, rf = real_meshes(cgal_data)
    vs, fs = [v.float() for v in vs + rv], fs + rf
    pairs = [
        (lambda m: mesh_edge_loss(m, 0.1), lambda m: p3d_edge(m, 0.1)),
        (mesh_normal_consistency, p3d_nc),
    ] + [
        (lambda m, k=k: mesh_laplacian_smoothing(m, k), lambda m, k=k: p3d_lap(m, k))
        for k in ("uniform", "cot", "cotcurv")
    ]
    # values on the whole batch; gradients without joint.off, a CAD part whose flat regions have
    # a cotangent Laplacian of exactly 0, where the gradient of |delta| is rounding noise
    for sel in (slice(None), slice(0, 3)):
        ours_v = [v.clone().requires_grad_() for v in vs[sel]]
        ref_v = [v.clone().requires_grad_() for v in vs[sel]]
        ours, ref = Meshes(ours_v, fs[sel]), P3DMeshes(ref_v, fs[sel])
        for ours_fn, ref_fn in pairs:
            a, b = ours_fn(ours), ref_fn(ref).sum()
            assert a.item() == pytest.approx(b.item(), rel=1e-5)
            if sel.stop is None:
                continue
            ga = torch.autograd.grad(a, ours_v)
            gb = torch.autograd.grad(b, ref_v)
            scale = max(float(y.abs().max()) for y in gb)
            for x, y in zip(ga, gb):  # float32: compare relative to the largest gradient entry
                assert torch.allclose(x, y, rtol=1e-3, atol=1e-4 * scale)


def test_validation():
    m = ico_sphere(0)
    for fn in (mesh_edge_loss, mesh_laplacian_smoothing, mesh_normal_consistency):
        with pytest.raises(InvalidInputError, match="meshes"):
            fn(torch.rand(3, 3))
    with pytest.raises(InvalidInputError, match="target_length"):
        mesh_edge_loss(m, -1.0)
    with pytest.raises(InvalidInputError, match="target_length"):
        mesh_edge_loss(m, float("nan"))
    with pytest.raises(InvalidInputError, match="method"):
        mesh_laplacian_smoothing(m, "cotan")
    assert math.isfinite(mesh_laplacian_smoothing(m, "cotcurv").item())
