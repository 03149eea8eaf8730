"""Tests of geomgen.nn.graph_conv: GraphConvBlock over packed mesh vertices."""

from __future__ import annotations

import pytest
import torch

from geomgen.errors import InvalidInputError
from geomgen.nn.graph_conv import GraphConvBlock
from geomgen.nn.init import init_weights
from geomgen.ops.ico_sphere import ico_sphere
from geomgen.ops.mesh_edges import edges_to_adjacency
from geomgen.structures import join_meshes_as_batch


def nparams(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def meshes():
    return join_meshes_as_batch([ico_sphere(0), ico_sphere(1)])


def test_shapes_on_a_batch_of_meshes(meshes):
    verts, edges = meshes.verts_packed(), meshes.edges_packed()
    x = torch.randn(verts.shape[0], 16)
    assert GraphConvBlock(16)(x, edges).shape == (54, 16)  # 12 + 42 vertices
    blk = GraphConvBlock(16, 8, norm="batch")
    assert isinstance(blk.skip, torch.nn.Linear)
    assert blk(x, edges).shape == (54, 8)
    assert nparams(GraphConvBlock(128)) == 33_024  # reported in the docstring
    assert GraphConvBlock(4)(torch.randn(0, 4), torch.zeros(0, 2, dtype=torch.int64)).shape == (0, 4)


def test_definition(meshes):
    edges = meshes.edges_packed()
    x = torch.randn(54, 6)
    plain = GraphConvBlock(6, 5, residual=False, act="tanh")
    assert torch.allclose(plain(x, edges), torch.tanh(plain.gconv(x, edges)))
    res = GraphConvBlock(6, 5, norm="layer")
    y = res.gconv(x, edges)
    y = torch.nn.functional.layer_norm(y, (5,))
    assert torch.allclose(res(x, edges), torch.relu(y + x @ res.skip.weight.t()), atol=1e-5)
    zero = GraphConvBlock(6, init="zero")  # graph convolution starts at zero: relu(x)
    assert torch.allclose(zero(x, edges), torch.relu(x))


def test_adjacency_input_and_directed(meshes):
    edges = meshes.edges_packed()
    x = torch.randn(54, 6)
    blk = GraphConvBlock(6, 4)
    adj = edges_to_adjacency(edges, 54)
    assert torch.allclose(blk(x, adj), blk(x, edges), atol=1e-5)
    directed = GraphConvBlock(6, 4, directed=True)
    directed.load_state_dict(blk.state_dict())
    assert not torch.allclose(directed(x, edges), blk(x, edges))


def test_meshes_are_independent(meshes):
    """Packed features of one mesh do not leak into another (no norm across the batch)."""
    edges = meshes.edges_packed()
    blk = GraphConvBlock(6, norm="layer")
    x = torch.randn(54, 6)
    x2 = x.clone()
    x2[12:] += 5  # change the second mesh only
    assert torch.allclose(blk(x, edges)[:12], blk(x2, edges)[:12])


def test_batch_norm_train_eval(meshes):
    edges = meshes.edges_packed()
    blk = GraphConvBlock(6, norm="batch")
    x = torch.randn(54, 6)
    x2 = x.clone()
    x2[12:] += 5
    assert not torch.allclose(blk(x, edges)[:12], blk(x2, edges)[:12])  # statistics over all vertices
    blk.eval()
    assert torch.allclose(blk(x, edges)[:12], blk(x2, edges)[:12])


def test_gradients_and_init(meshes):
    edges = meshes.edges_packed()
    blk = GraphConvBlock(64, 32, norm="group")
    x = torch.randn(54, 64, requires_grad=True)
    blk(x, edges).square().sum().backward()
    assert all(p.grad is not None for p in blk.parameters()) and x.grad is not None
    assert blk.gconv.w0.weight.std().item() == pytest.approx(0.01, rel=0.1)
    init_weights(blk, "kaiming")  # keeps the graph convolution's own N(0, 0.01^2)
    assert blk.gconv.w0.weight.std().item() == pytest.approx(0.01, rel=0.1)
    assert blk.skip.weight.std().item() == pytest.approx((2 / 64) ** 0.5, rel=0.1)


def test_bad_arguments(meshes):
    edges = meshes.edges_packed()
    blk = GraphConvBlock(6)
    with pytest.raises(InvalidInputError, match="'x'.*2-D"):
        blk(torch.randn(1, 54, 6), edges)
    with pytest.raises(InvalidInputError, match="'x'.*C_in=6"):
        blk(torch.randn(54, 5), edges)
    with pytest.raises(InvalidInputError, match="'edges'"):
        blk(torch.randn(10, 6), edges)  # indices out of range
    with pytest.raises(InvalidInputError, match="'edges'"):
        blk(torch.randn(54, 6), edges.float())
    with pytest.raises(InvalidInputError, match="'norm'"):
        GraphConvBlock(6, norm="instance")
    with pytest.raises(InvalidInputError, match="'init'"):
        GraphConvBlock(6, init="kaiming")
    with pytest.raises(InvalidInputError, match="'residual'"):
        GraphConvBlock(6, residual=1)
