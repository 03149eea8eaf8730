"""Tests of geomgen.ops.mesh_edges: edge views and graph adjacency."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from geomgen.errors import InvalidInputError
from geomgen.ops.ico_sphere import ico_sphere
from geomgen.ops.mesh_edges import GraphAdjacency, edges_to_adjacency, mesh_adjacency, mesh_edges
from geomgen.structures import Meshes


def naive_edges(faces: torch.Tensor) -> list[tuple[int, int]]:
    return sorted({tuple(sorted((f[i], f[j]))) for f in faces.tolist() for i, j in ((0, 1), (1, 2), (2, 0))})


def hetero_meshes():
    s = ico_sphere(1)
    return Meshes(
        [s.verts_packed(), torch.rand(5, 3), torch.rand(2, 3), torch.rand(4, 3)],
        [s.faces_packed(), torch.tensor([[0, 1, 2], [2, 1, 3]]), torch.zeros(0, 3, dtype=torch.int64),
         torch.tensor([[3, 2, 1]])],
    )


def naive_neighbours(edges: torch.Tensor, num_verts: int, directed: bool) -> list[Counter]:
    nb = [Counter() for _ in range(num_verts)]
    for i, j in edges.tolist():
        nb[i][j] += 1
        if not directed:
            nb[j][i] += 1
    return nb


def test_mesh_edges_views_against_naive():
    m = hetero_meshes()
    packed = mesh_edges(m)
    assert packed is m.edges_packed()
    lst = mesh_edges(m, view="list")
    pad = mesh_edges(m, view="padded")
    counts = [len(naive_edges(f)) for f in m.faces_list()]
    assert pad.shape == (4, max(counts), 2) and pad.dtype == torch.int64
    for i, f in enumerate(m.faces_list()):
        ref = torch.tensor(naive_edges(f), dtype=torch.int64).reshape(-1, 2)
        assert torch.equal(lst[i], ref)
        assert torch.equal(pad[i, : counts[i]], ref) and (pad[i, counts[i]:] == -1).all()
    first = m.mesh_to_verts_packed_first_idx()
    assert torch.equal(torch.cat([e + first[i] for i, e in enumerate(lst)]), packed)


def test_mesh_edges_empty_batch():
    m = Meshes([], [])
    assert mesh_edges(m).shape == (0, 2)
    assert mesh_edges(m, view="list") == []
    assert mesh_edges(m, view="padded").shape == (0, 0, 2)


@pytest.mark.parametrize("directed", [False, True])
def test_adjacency_against_naive(directed):
    g = torch.Generator().manual_seed(0)
    nv = 30
    edges = torch.randint(0, nv, (80, 2), generator=g)
    edges = torch.cat([edges, edges[:5], torch.tensor([[3, 3], [7, 7]])])  # repeats and self-loops
    adj = edges_to_adjacency(edges, nv, directed=directed)
    assert isinstance(adj, GraphAdjacency) and adj.num_verts == nv and adj.directed == directed
    ref = naive_neighbours(edges, nv, directed)
    for i in range(nv):
        lo, hi = adj.crow_indices[i].item(), adj.crow_indices[i + 1].item()
        got = dict(zip(adj.col_indices[lo:hi].tolist(), adj.counts[lo:hi].tolist()))
        assert got == dict(ref[i])
        assert adj.col_indices[lo:hi].tolist() == sorted(ref[i])  # sorted, unique
    assert torch.equal(adj.degree(), torch.tensor([sum(c.values()) for c in ref]))
    assert adj.num_terms == (1 if directed else 2) * edges.shape[0]
    dense = torch.zeros(nv, nv, dtype=torch.float64)
    for i, c in enumerate(ref):
        for j, k in c.items():
            dense[i, j] = k
    assert torch.equal(adj.matrix(torch.float64).to_dense(), dense)
    t = adj.transpose()
    assert torch.equal(t.matrix(torch.float64).to_dense(), dense.t())
    assert (t is adj) == (not directed)
    assert t.transpose() is adj


def test_mesh_adjacency_and_empty_graphs():
    m = hetero_meshes()
    a = mesh_adjacency(m)
    b = edges_to_adjacency(m.edges_packed(), m.verts_packed().shape[0])
    assert torch.equal(a.crow_indices, b.crow_indices) and torch.equal(a.col_indices, b.col_indices)
    assert (a.counts == 1).all() and not a.directed
    e = edges_to_adjacency(torch.zeros(0, 2, dtype=torch.int64), 4)
    assert e.num_terms == 0 and torch.equal(e.degree(), torch.zeros(4, dtype=torch.int64))
    z = edges_to_adjacency(torch.zeros(0, 2, dtype=torch.int32), 0)
    assert z.matrix().shape == (0, 0) and "num_verts=0" in repr(z)


def test_validation():
    with pytest.raises(InvalidInputError, match="meshes"):
        mesh_edges(torch.zeros(3, 3))
    with pytest.raises(InvalidInputError, match="view"):
        mesh_edges(ico_sphere(0), view="dense")
    with pytest.raises(InvalidInputError, match="meshes"):
        mesh_adjacency([1, 2])
    with pytest.raises(InvalidInputError, match="edges"):
        edges_to_adjacency(torch.tensor([[0, 5]]), 5)
    with pytest.raises(InvalidInputError, match="edges"):
        edges_to_adjacency(torch.tensor([[-1, 2]]), 5)
    with pytest.raises(InvalidInputError, match="edges"):
        edges_to_adjacency(torch.tensor([[0.0, 1.0]]), 5)
    with pytest.raises(InvalidInputError, match="edges"):
        edges_to_adjacency(torch.tensor([0, 1]), 5)
    with pytest.raises(InvalidInputError, match="num_verts"):
        edges_to_adjacency(torch.tensor([[0, 1]]), -1)
    with pytest.raises(InvalidInputError, match="directed"):
        edges_to_adjacency(torch.tensor([[0, 1]]), 2, directed=1)
