"""Tests of geomgen.ops.graph_conv: gather_scatter and GraphConv."""

from __future__ import annotations

import pytest
import torch

from geomgen.errors import InvalidInputError
from geomgen.ops.graph_conv import GraphConv, gather_scatter
from geomgen.ops.ico_sphere import ico_sphere
from geomgen.ops.mesh_edges import edges_to_adjacency, mesh_adjacency
from geomgen.structures import join_meshes_as_batch


def naive_gather_scatter(x: torch.Tensor, edges: torch.Tensor, directed: bool) -> torch.Tensor:
    out = torch.zeros_like(x)
    for i, j in edges.tolist():
        out[i] += x[j]
        if not directed:
            out[j] += x[i]
    return out


def naive_graph_conv(layer: GraphConv, x: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """Dense reference: W0 f_i + b0 + sum_j (W1 f_j + b1) with a dense adjacency."""
    nv = x.shape[0]
    A = torch.zeros(nv, nv, dtype=x.dtype)
    for i, j in edges.tolist():
        A[i, j] += 1
        if not layer.directed:
            A[j, i] += 1
    return layer.w0(x) + A @ layer.w1(x)


def random_graph(nv=25, ne=70, seed=0):
    g = torch.Generator().manual_seed(seed)
    e = torch.randint(0, nv, (ne, 2), generator=g)
    return torch.cat([e, e[:4], torch.tensor([[2, 2]])])  # repeats and a self-loop


@pytest.mark.parametrize("backend", ["auto", "sparse", "torch"])
@pytest.mark.parametrize("directed", [False, True])
def test_gather_scatter_against_naive(backend, directed):
    edges = random_graph()
    x = torch.randn(25, 6, dtype=torch.float64)
    ref = naive_gather_scatter(x, edges, directed)
    assert torch.allclose(gather_scatter(x, edges, directed, backend=backend), ref)
    adj = edges_to_adjacency(edges, 25, directed=directed)
    assert torch.allclose(gather_scatter(x, adj, directed, backend=backend), ref)
    x32 = x.float()
    assert torch.allclose(gather_scatter(x32, edges, directed, backend=backend), ref.float(), atol=1e-5)


def test_gather_scatter_edge_cases_and_dtypes():
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    none = torch.zeros(0, 2, dtype=torch.int64)
    assert torch.equal(gather_scatter(x, none), torch.zeros(5, 3))
    assert gather_scatter(torch.randn(0, 3), none).shape == (0, 3)
    e = torch.tensor([[0, 1], [1, 2]], dtype=torch.int32)
    h = gather_scatter(x.to(torch.bfloat16), e)  # "auto" falls back to the torch path
    assert h.dtype == torch.bfloat16
    assert torch.allclose(h.float(), naive_gather_scatter(x.to(torch.bfloat16).float(), e, False),
                          rtol=2e-2, atol=1e-2)  # bfloat16 keeps ~3 significant digits


@pytest.mark.parametrize("directed", [False, True])
def test_gather_scatter_gradcheck(directed):
    edges = random_graph(12, 30, seed=1)
    x = torch.randn(12, 3, dtype=torch.float64, requires_grad=True)
    for backend in ("sparse", "torch"):
        assert torch.autograd.gradcheck(lambda t: gather_scatter(t, edges, directed, backend=backend), (x,))
    small = torch.randn(6, 2, dtype=torch.float64, requires_grad=True)
    e = edges[edges.max(1).values < 6]
    assert torch.autograd.gradgradcheck(lambda t: gather_scatter(t, e, directed, backend="sparse"), (small,))


@pytest.mark.parametrize("dims", [(4, 7), (7, 4), (5, 5)])
@pytest.mark.parametrize("directed", [False, True])
def test_graph_conv_against_dense_reference(dims, directed):
    torch.manual_seed(0)
    layer = GraphConv(*dims, directed=directed).double()
    with torch.no_grad():  # non-zero biases so the deg * b1 term is exercised
        layer.w0.bias.normal_()
        layer.w1.bias.normal_()
        layer.w0.weight.normal_()
        layer.w1.weight.normal_()
    edges = random_graph()
    x = torch.randn(25, dims[0], dtype=torch.float64, requires_grad=True)
    out = layer(x, edges)
    ref = naive_graph_conv(layer, x, edges)
    assert out.shape == (25, dims[1]) and torch.allclose(out, ref)
    g = torch.randn_like(out)
    grads = torch.autograd.grad(out, [x, *layer.parameters()], g)
    ref_grads = torch.autograd.grad(ref, [x, *layer.parameters()], g)
    for a, b in zip(grads, ref_grads):
        assert torch.allclose(a, b)
    assert torch.allclose(layer(x, edges_to_adjacency(edges, 25, directed)), ref)


@pytest.mark.parametrize("sparse", [False, True])
def test_graph_conv_gradcheck_float64(sparse):
    torch.manual_seed(1)
    edges = random_graph(10, 20, seed=2)
    if sparse:  # a prebuilt adjacency always takes the sparse-product path
        edges = edges_to_adjacency(edges, 10)
    for dims in ((3, 4), (4, 3)):
        layer = GraphConv(*dims).double()
        with torch.no_grad():
            for p in layer.parameters():
                p.normal_()
        x = torch.randn(10, dims[0], dtype=torch.float64, requires_grad=True)
        params = list(layer.parameters())

        def fn(x, w0, b0, w1, b1):
            return torch.func.functional_call(
                layer, {"w0.weight": w0, "w0.bias": b0, "w1.weight": w1, "w1.bias": b1}, (x, edges)
            )

        assert torch.autograd.gradcheck(fn, (x, *[p.detach().requires_grad_() for p in params]))


def test_real_mesh_batch_against_dense(cgal_data):
    from geomgen.io import load_mesh

    a = load_mesh(cgal_data / "meshes" / "blob.off")
    b = load_mesh(cgal_data / "meshes" / "joint.off")
    m = join_meshes_as_batch([a, b, ico_sphere(1)])
    edges = m.edges_packed()
    nv = m.verts_packed().shape[0]
    torch.manual_seed(0)
    layer = GraphConv(3, 8).double()
    x = m.verts_packed().double()
    assert torch.allclose(layer(x, edges), naive_graph_conv(layer, x, edges))
    assert torch.allclose(layer(x, mesh_adjacency(m)), layer(x, edges))
    assert nv == 138 + 221 + 42


def test_against_pytorch3d():
    pytest.importorskip("pytorch3d")
    from pytorch3d.ops import GraphConv as P3DGraphConv

    m = join_meshes_as_batch([ico_sphere(2), ico_sphere(1)])
    edges = m.edges_packed()
    for dims in ((16, 32), (32, 16)):
        for directed in (False, True):
            torch.manual_seed(0)
            ref = P3DGraphConv(*dims, directed=directed)
            with torch.no_grad():
                ref.w0.bias.normal_()
                ref.w1.bias.normal_()
            ours = GraphConv(*dims, directed=directed)
            ours.load_state_dict(ref.state_dict())  # same parameter names
            x = torch.randn(m.verts_packed().shape[0], dims[0], requires_grad=True)
            a, b = ours(x, edges), ref(x, edges)
            assert torch.allclose(a, b, atol=1e-5)
            g = torch.randn_like(a)
            ga = torch.autograd.grad(a, [x, *ours.parameters()], g)
            gb = torch.autograd.grad(b, [x, *ref.parameters()], g)
            for u, v in zip(ga, gb):
                assert torch.allclose(u, v, rtol=1e-4, atol=1e-4)


def test_adjacency_cache_sees_in_place_edits_and_new_tensors():
    layer = GraphConv(2, 3).double()
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_()
    x = torch.randn(6, 2, dtype=torch.float64)
    edges = torch.tensor([[0, 1], [1, 2], [3, 4]])
    first = layer(x, edges)
    assert torch.allclose(first, naive_graph_conv(layer, x, edges))
    edges[2, 1] = 5  # in place: the cached adjacency must not be reused
    assert torch.allclose(layer(x, edges), naive_graph_conv(layer, x, edges))
    for _ in range(20):  # many short-lived tensors: ids get reused, results must stay right
        e = torch.randint(0, 6, (4, 2))
        assert torch.allclose(layer(x, e), naive_graph_conv(layer, x, e))
    with torch.inference_mode():
        ei = torch.tensor([[0, 5]])
        assert torch.allclose(layer(x, ei), naive_graph_conv(layer, x, ei))


def test_init_repr_state_dict_and_empty():
    z = GraphConv(3, 4, init="zero")
    assert all((p == 0).all() for p in z.parameters())
    assert torch.equal(z(torch.randn(5, 3), torch.tensor([[0, 1]])), torch.zeros(5, 4))
    torch.manual_seed(0)
    n = GraphConv(128, 128)
    assert n.w0.weight.std().item() == pytest.approx(0.01, rel=0.05) and (n.w1.bias == 0).all()
    assert set(n.state_dict()) == {"w0.weight", "w0.bias", "w1.weight", "w1.bias"}
    assert "3 -> 4" in repr(z) and "directed=False" in repr(z)
    x = torch.randn(0, 3, requires_grad=True)
    out = z(x, torch.zeros(0, 2, dtype=torch.int64))
    assert out.shape == (0, 4)
    out.sum().backward()
    assert x.grad.shape == (0, 3)


def test_validation():
    layer = GraphConv(3, 4)
    x = torch.randn(5, 3)
    e = torch.tensor([[0, 1]])
    with pytest.raises(InvalidInputError, match="input_dim"):
        GraphConv(0, 4)
    with pytest.raises(InvalidInputError, match="init"):
        GraphConv(3, 4, init="xavier")
    with pytest.raises(InvalidInputError, match="directed"):
        GraphConv(3, 4, directed="no")
    with pytest.raises(InvalidInputError, match="verts"):
        layer(torch.randn(5, 2), e)
    with pytest.raises(InvalidInputError, match="verts"):
        layer(x.double(), e)
    with pytest.raises(InvalidInputError, match="edges"):
        layer(x, torch.tensor([[0, 5]]))
    with pytest.raises(InvalidInputError, match="edges"):
        layer(x, torch.tensor([[0.0, 1.0]]))
    with pytest.raises(InvalidInputError, match="edges"):
        layer(x, edges_to_adjacency(e, 5, directed=True))
    with pytest.raises(InvalidInputError, match="edges"):
        layer(x, edges_to_adjacency(e, 6))
    with pytest.raises(InvalidInputError, match="backend"):
        gather_scatter(x, e, backend="cuda")
    with pytest.raises(InvalidInputError, match="input"):
        gather_scatter(x.half(), e, backend="sparse")
    with pytest.raises(InvalidInputError, match="input"):
        gather_scatter(torch.randn(5), e)
