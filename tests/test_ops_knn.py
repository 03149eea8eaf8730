"""Tests of geomgen.ops.knn against a naive double loop and scipy's cKDTree."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

import geomgen.ops.knn as knn_mod
from geomgen.errors import BackendUnavailableError, InvalidInputError
from geomgen.ops import KNN, knn_gather, knn_points


def naive_knn(p1, p2, lengths1, lengths2, K, norm=2):
    """Double loop in float64 numpy; invalid slots 0 / -1 (geomgen's convention)."""
    p1 = p1.detach().double().numpy()
    p2 = p2.detach().double().numpy()
    N, P1, _ = p1.shape
    dists = np.zeros((N, P1, K))
    idx = np.full((N, P1, K), -1, dtype=np.int64)
    for n in range(N):
        for i in range(int(lengths1[n])):
            cand = []
            for j in range(int(lengths2[n])):
                diff = p1[n, i] - p2[n, j]
                d = float((diff * diff).sum()) if norm == 2 else float(np.abs(diff).sum())
                cand.append((d, j))
            cand.sort()
            for k, (d, j) in enumerate(cand[:K]):
                dists[n, i, k] = d
                idx[n, i, k] = j
    return torch.from_numpy(dists), torch.from_numpy(idx)


def _rand_batch(gen, N, P1, P2, D, hetero=True, dtype=torch.float32):
    p1 = torch.randn(N, P1, D, generator=gen, dtype=dtype)
    p2 = torch.randn(N, P2, D, generator=gen, dtype=dtype)
    if hetero:
        l1 = torch.randint(0, P1 + 1, (N,), generator=gen)
        l2 = torch.randint(0, P2 + 1, (N,), generator=gen)
        l1[0], l2[0] = P1, P2  # keep one full element
    else:
        l1 = torch.full((N,), P1)
        l2 = torch.full((N,), P2)
    return p1, p2, l1, l2


# --------------------------------------------------------------------------- #
# correctness
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("D", [2, 3])
@pytest.mark.parametrize("K", [1, 4, 40])
@pytest.mark.parametrize("hetero", [False, True])
@pytest.mark.parametrize("norm", [1, 2])
def test_matches_naive(D, K, hetero, norm):
    gen = torch.Generator().manual_seed(100 * D + K + (7 if hetero else 0) + norm)
    p1, p2, l1, l2 = _rand_batch(gen, 4, 23, 31, D, hetero)
    out = knn_points(p1, p2, l1 if hetero else None, l2 if hetero else None, K=K,
                     return_nn=True, norm=norm)
    assert isinstance(out, KNN)
    ref_d, ref_i = naive_knn(p1, p2, l1, l2, K, norm)
    assert out.dists.shape == (4, 23, K) and out.idx.shape == (4, 23, K)
    assert out.idx.dtype == torch.int64 and out.dists.dtype == torch.float32
    assert torch.equal(out.idx, ref_i)
    torch.testing.assert_close(out.dists.double(), ref_d, rtol=1e-5, atol=1e-6)
    # knn holds the neighbours' coordinates, zeros in invalid slots
    ref_nn = torch.zeros(4, 23, K, D)
    for n in range(4):
        for i in range(23):
            for k in range(K):
                if ref_i[n, i, k] >= 0:
                    ref_nn[n, i, k] = p2[n, ref_i[n, i, k]]
    assert out.knn.shape == (4, 23, K, D)
    torch.testing.assert_close(out.knn, ref_nn)


def test_padding_convention_explicit():
    p1 = torch.tensor([[[0.0, 0, 0], [1, 0, 0], [9, 9, 9]]])
    p2 = torch.tensor([[[0.0, 0, 0.5], [3, 0, 0], [7, 7, 7]]])
    out = knn_points(p1, p2, torch.tensor([2]), torch.tensor([2]), K=4)
    # row 2 is padding: all slots invalid
    assert out.idx[0, 2].tolist() == [-1, -1, -1, -1]
    assert out.dists[0, 2].tolist() == [0, 0, 0, 0]
    # only 2 valid reference points: slots 2 and 3 invalid; p2[2] (padding) never used
    assert out.idx[0, 0].tolist() == [0, 1, -1, -1]
    assert out.dists[0, 0].tolist() == [0.25, 9.0, 0.0, 0.0]
    assert out.idx[0, 1].tolist() == [0, 1, -1, -1]
    torch.testing.assert_close(out.dists[0, 1], torch.tensor([1.25, 4.0, 0.0, 0.0]))


def test_k_larger_than_p2_and_empty_reference():
    gen = torch.Generator().manual_seed(3)
    p1 = torch.randn(2, 5, 3, generator=gen)
    p2 = torch.randn(2, 2, 3, generator=gen)
    out = knn_points(p1, p2, lengths2=torch.tensor([2, 0]), K=3)
    assert out.idx.shape == (2, 5, 3)
    assert (out.idx[0, :, 2] == -1).all() and (out.idx[0, :, :2] >= 0).all()
    assert (out.idx[1] == -1).all() and (out.dists[1] == 0).all()
    # P2 == 0 altogether
    out = knn_points(p1, torch.zeros(2, 0, 3), K=2, return_nn=True)
    assert (out.idx == -1).all() and (out.dists == 0).all() and (out.knn == 0).all()
    # P1 == 0 and N == 0
    assert knn_points(torch.zeros(2, 0, 3), p2, K=2).idx.shape == (2, 0, 2)
    assert knn_points(torch.zeros(0, 4, 3), torch.zeros(0, 6, 3), K=2).idx.shape == (0, 4, 2)


def test_single_point_clouds():
    p1 = torch.tensor([[[1.0, 2.0, 3.0]]])
    p2 = torch.tensor([[[1.0, 2.0, 6.0]]])
    out = knn_points(p1, p2, K=2, return_nn=True)
    assert out.idx.tolist() == [[[0, -1]]]
    assert out.dists.tolist() == [[[9.0, 0.0]]]
    assert out.knn[0, 0, 0].tolist() == [1.0, 2.0, 6.0]
    assert out.knn[0, 0, 1].tolist() == [0.0, 0.0, 0.0]


def test_duplicate_points_ties_dists_only():
    gen = torch.Generator().manual_seed(5)
    base = torch.randn(1, 10, 3, generator=gen)
    p2 = torch.cat([base, base, base[:, :3]], dim=1)  # many exact duplicates
    p1 = torch.cat([base[:, :4], torch.randn(1, 6, 3, generator=gen)], dim=1)
    out = knn_points(p1, p2, K=5)
    ref_d, _ = naive_knn(p1, p2, [10], [23], 5)
    torch.testing.assert_close(out.dists.double(), ref_d, rtol=1e-5, atol=1e-6)
    # whatever tie is picked, the index must point at a point at that distance
    nn = knn_gather(p2, out.idx)
    torch.testing.assert_close(((nn - p1[:, :, None]) ** 2).sum(-1), out.dists)
    assert (out.dists[0, :4, :2] == 0).all()  # exact duplicates found at distance 0


@pytest.mark.parametrize("D", [2, 3])
def test_against_ckdtree(D):
    spatial = pytest.importorskip("scipy.spatial")
    gen = torch.Generator().manual_seed(11)
    p1 = torch.rand(1, 3000, D, generator=gen, dtype=torch.float64)
    p2 = torch.rand(1, 2500, D, generator=gen, dtype=torch.float64)
    out = knn_points(p1, p2, K=8)
    d, i = spatial.cKDTree(p2[0].numpy()).query(p1[0].numpy(), k=8)
    torch.testing.assert_close(out.dists[0], torch.from_numpy(d) ** 2, rtol=1e-10, atol=1e-12)
    assert torch.equal(out.idx[0], torch.from_numpy(i).long())


def test_high_dimensional_features_path():
    """D > 16 uses the matmul form for the search; dists are still exact."""
    gen = torch.Generator().manual_seed(8)
    p1, p2, l1, l2 = _rand_batch(gen, 2, 12, 20, 32, hetero=True, dtype=torch.float64)
    for norm in (1, 2):
        out = knn_points(p1, p2, l1, l2, K=3, norm=norm)
        ref_d, ref_i = naive_knn(p1, p2, l1, l2, 3, norm)
        assert torch.equal(out.idx, ref_i)
        torch.testing.assert_close(out.dists, ref_d)


def test_chunking_is_bounded_and_exact(monkeypatch):
    """The torch reference's blocks stay within the budget (auto runs numba on CPU)."""
    gen = torch.Generator().manual_seed(9)
    p1, p2, l1, l2 = _rand_batch(gen, 3, 700, 500, 3, hetero=True)
    full = knn_points(p1, p2, l1, l2, K=5, backend="torch")
    seen = []
    orig = knn_mod._block_dists

    def spy(a, b, norm):
        out = orig(a, b, norm)
        seen.append(out.numel() * out.element_size())
        return out

    budget = 64 * 1024
    monkeypatch.setattr(knn_mod, "_block_dists", spy)
    monkeypatch.setattr(knn_mod, "_CHUNK_BYTES", budget)
    chunked = knn_points(p1, p2, l1, l2, K=5, backend="torch")
    assert len(seen) > 10
    assert max(seen) <= budget
    assert torch.equal(chunked.idx, full.idx)
    torch.testing.assert_close(chunked.dists, full.dists)


def test_large_query_does_not_allocate_full_matrix(monkeypatch):
    """A 65k x 65k query would need 16 GiB at once; the blocks stay within the budget."""
    seen = []
    orig = knn_mod._block_dists

    def spy(a, b, norm):
        seen.append(a.shape[0] * a.shape[1] * b.shape[1])
        # Stop after the first block: we only check its size, not the full 65k^2 work.
        raise RuntimeError("stop")

    monkeypatch.setattr(knn_mod, "_block_dists", spy)
    p = torch.zeros(1, 65536, 3)
    with pytest.raises(RuntimeError, match="stop"):
        knn_points(p, p, backend="torch")
    assert seen and seen[0] * 4 <= knn_mod._CHUNK_BYTES
    assert seen[0] < 65536 * 65536 // 16


def test_return_sorted_false_same_set():
    gen = torch.Generator().manual_seed(12)
    p1, p2, l1, l2 = _rand_batch(gen, 2, 15, 9, 3, hetero=True)
    a = knn_points(p1, p2, l1, l2, K=12, return_sorted=False)
    b = knn_points(p1, p2, l1, l2, K=12)
    assert torch.equal(a.idx.sort(-1).values, b.idx.sort(-1).values)
    valid = b.idx >= 0
    assert torch.equal(a.idx >= 0, valid)


def test_backends():
    gen = torch.Generator().manual_seed(13)
    p1, p2, l1, l2 = _rand_batch(gen, 2, 8, 9, 3)
    a = knn_points(p1, p2, l1, l2, K=2, backend="auto")
    b = knn_points(p1, p2, l1, l2, K=2, backend="torch")
    assert torch.equal(a.idx, b.idx) and torch.equal(a.dists, b.dists)
    with pytest.raises(InvalidInputError, match="backend"):
        knn_points(p1, p2, K=1, backend="numba-gpu")
    if importlib.util.find_spec("pytorch3d") is None:
        with pytest.raises(BackendUnavailableError, match="pytorch3d"):
            knn_points(p1, p2, K=1, backend="pytorch3d")
    else:  # pragma: no cover - only where PyTorch3D is installed
        c = knn_points(p1, p2, l1, l2, K=2, backend="pytorch3d")
        assert torch.equal(c.idx, b.idx)
        torch.testing.assert_close(c.dists, b.dists)


# --------------------------------------------------------------------------- #
# gradients
# --------------------------------------------------------------------------- #


def test_gradcheck_dists_wrt_p1_and_p2():
    gen = torch.Generator().manual_seed(21)
    p1 = torch.randn(2, 5, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    p2 = torch.randn(2, 6, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    l1 = torch.tensor([5, 3])
    l2 = torch.tensor([6, 2])
    for norm in (2, 1):
        def f(a, b):
            return knn_points(a, b, l1, l2, K=3, norm=norm).dists

        assert torch.autograd.gradcheck(f, (p1, p2), eps=1e-6, atol=1e-6)


def test_gradients_match_analytic_and_padding_gets_none():
    p1 = torch.tensor([[[0.0, 0, 0], [5, 5, 5]]], requires_grad=True)
    p2 = torch.tensor([[[1.0, 2, 0], [9, 9, 9]]], requires_grad=True)
    out = knn_points(p1, p2, torch.tensor([1]), torch.tensor([1]), K=2)
    out.dists.sum().backward()
    # d = |p1_0 - p2_0|^2 -> grad p1_0 = 2 (p1_0 - p2_0), grad p2_0 = -that
    assert p1.grad[0, 0].tolist() == [-2.0, -4.0, 0.0]
    assert p2.grad[0, 0].tolist() == [2.0, 4.0, 0.0]
    assert (p1.grad[0, 1] == 0).all() and (p2.grad[0, 1] == 0).all()


# --------------------------------------------------------------------------- #
# knn_gather
# --------------------------------------------------------------------------- #


def test_knn_gather():
    x = torch.arange(2 * 4 * 2, dtype=torch.float32).reshape(2, 4, 2)
    idx = torch.tensor([[[3, -1], [0, 1]], [[2, 2], [-1, -1]]])
    out = knn_gather(x, idx)
    assert out.shape == (2, 2, 2, 2)
    assert out[0, 0, 0].tolist() == x[0, 3].tolist()
    assert out[0, 0, 1].tolist() == [0.0, 0.0]
    assert out[1, 1].abs().sum() == 0
    masked = knn_gather(x, idx, lengths=torch.tensor([4, 1]))
    assert masked[1, 0, 1].tolist() == [0.0, 0.0]  # k=1 >= lengths[1]
    assert masked[1, 0, 0].tolist() == x[1, 2].tolist()
    # differentiable w.r.t. x
    xg = x.clone().requires_grad_(True)
    knn_gather(xg, idx).sum().backward()
    assert xg.grad[0, 3].tolist() == [1.0, 1.0] and xg.grad[1, 2].tolist() == [2.0, 2.0]


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(x=torch.zeros(4, 2)), "x"),
        (dict(idx=torch.zeros(2, 3, 1)), "idx"),  # float indices
        (dict(idx=torch.zeros(3, 3, 1, dtype=torch.long)), "idx"),  # N mismatch
        (dict(idx=torch.full((2, 3, 1), 4)), "idx"),  # out of range
        (dict(idx=torch.full((2, 3, 1), -2)), "idx"),
        (dict(lengths=torch.tensor([1, 5])), "lengths"),
    ],
)
def test_knn_gather_validation(kwargs, name):
    args = dict(x=torch.zeros(2, 4, 3), idx=torch.zeros(2, 3, 1, dtype=torch.long), lengths=None)
    args.update(kwargs)
    with pytest.raises(InvalidInputError, match=f"'{name}'"):
        knn_gather(**args)


# --------------------------------------------------------------------------- #
# validation
# --------------------------------------------------------------------------- #

_P1 = torch.zeros(2, 4, 3)
_P2 = torch.zeros(2, 5, 3)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(p1=[[0.0, 0.0, 0.0]]), "p1"),
        (dict(p1=torch.zeros(4, 3)), "p1"),
        (dict(p1=torch.zeros(2, 4, 3, dtype=torch.long)), "p1"),
        (dict(p2=torch.zeros(5, 3)), "p2"),
        (dict(p2=torch.zeros(3, 5, 3)), "p2"),  # N mismatch
        (dict(p2=torch.zeros(2, 5, 2)), "p2"),  # D mismatch
        (dict(p2=torch.zeros(2, 5, 3, dtype=torch.float64)), "p2"),  # dtype mismatch
        (dict(p1=torch.zeros(2, 4, 0), p2=torch.zeros(2, 5, 0)), "p1"),  # D == 0
        (dict(lengths1=torch.tensor([4])), "lengths1"),
        (dict(lengths1=torch.tensor([4, 5])), "lengths1"),
        (dict(lengths1=torch.tensor([4.0, 1.0])), "lengths1"),
        (dict(lengths2=torch.tensor([-1, 2])), "lengths2"),
        (dict(lengths2=torch.tensor([6, 2])), "lengths2"),
        (dict(lengths2="5"), "lengths2"),
        (dict(K=0), "K"),
        (dict(K=1.5), "K"),
        (dict(K=True), "K"),
        (dict(norm=3), "norm"),
        (dict(return_nn=1), "return_nn"),
        (dict(return_sorted=None), "return_sorted"),
        (dict(p1=torch.zeros(2, 4, 3).index_fill_(1, torch.tensor([2]), float("nan"))), "p1"),
        (dict(p2=torch.zeros(2, 5, 3).index_fill_(1, torch.tensor([0]), float("inf"))), "p2"),
        (dict(backend="fast"), "backend"),
    ],
)
def test_validation_errors_name_argument(kwargs, name):
    args = dict(p1=_P1, p2=_P2)
    args.update(kwargs)
    with pytest.raises(InvalidInputError) as info:
        knn_points(**args)
    assert f"'{name}'" in str(info.value)
    assert "knn_points" in str(info.value)
    assert isinstance(info.value, ValueError)  # InvalidInputError is a ValueError


def test_lengths_as_list_accepted():
    out = knn_points(_P1, _P2, [4, 2], [5, 1], K=2)
    assert (out.idx[1, 2:] == -1).all()
    assert (out.idx[1, :2, 1] == -1).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    gen = torch.Generator().manual_seed(31)
    p1, p2, l1, l2 = _rand_batch(gen, 3, 300, 200, 3, hetero=True)
    cpu = knn_points(p1, p2, l1, l2, K=4, return_nn=True)
    gpu = knn_points(p1.cuda(), p2.cuda(), l1.cuda(), l2, K=4, return_nn=True)
    assert gpu.idx.device.type == "cuda"
    assert torch.equal(gpu.idx.cpu(), cpu.idx)
    torch.testing.assert_close(gpu.dists.cpu(), cpu.dists)
    torch.testing.assert_close(gpu.knn.cpu(), cpu.knn)


# --------------------------------------------------------------------------- #
# numba backend (the default on CPU)
# --------------------------------------------------------------------------- #


def _unambiguous(p1, p2, l1, l2, dists, norm):
    """(N, P1, K) mask of slots whose distance no other valid reference point shares."""
    N, P1, K = dists.shape
    mask = torch.zeros(N, P1, K, dtype=torch.bool)
    for n in range(N):
        a, b = p1[n, : l1[n]], p2[n, : l2[n]]
        if len(a) == 0 or len(b) == 0:
            continue
        diff = a[:, None, :] - b[None, :, :]
        full = diff.square().sum(-1) if norm == 2 else diff.abs().sum(-1)
        ties = (full[:, None, :] == dists[n, : l1[n], :, None]).sum(-1)
        mask[n, : l1[n]] = ties == 1
    return mask


@pytest.mark.parametrize("D", [1, 2, 3])
@pytest.mark.parametrize("norm", [1, 2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_numba_backend_matches_reference(D, norm, dtype):
    gen = torch.Generator().manual_seed(40 + D + 3 * norm)
    p1, p2, l1, l2 = _rand_batch(gen, 5, 120, 90, D, hetero=True, dtype=dtype)
    for K in (1, 6):
        a = knn_points(p1, p2, l1, l2, K=K, norm=norm, return_nn=True, backend="numba")
        b = knn_points(p1, p2, l1, l2, K=K, norm=norm, return_nn=True, backend="torch")
        assert a.dists.dtype == dtype and a.idx.dtype == torch.int64
        torch.testing.assert_close(a.dists.sort(-1).values, b.dists.sort(-1).values,
                                   rtol=1e-6, atol=0)
        assert torch.equal(a.idx >= 0, b.idx >= 0)
        same = _unambiguous(p1, p2, l1, l2, a.dists, norm) & (a.dists == b.dists)
        assert torch.equal(a.idx[same], b.idx[same])
        # knn rows are the neighbours' coordinates
        torch.testing.assert_close(a.knn, knn_gather(p2, a.idx))


def test_auto_picks_numba_on_cpu_and_torch_otherwise(monkeypatch):
    import geomgen.kernels.knn_numba as kn

    calls = []
    orig = kn.knn_search
    monkeypatch.setattr(kn, "knn_search", lambda *a, **k: calls.append(1) or orig(*a, **k))
    gen = torch.Generator().manual_seed(41)
    p1, p2, l1, l2 = _rand_batch(gen, 2, 30, 20, 3)
    knn_points(p1, p2, l1, l2, K=2)
    assert len(calls) == 1
    knn_points(p1, p2, l1, l2, K=2, backend="torch")
    knn_points(p1.half(), p2.half(), l1, l2, K=2)  # auto: reference for half precision
    p1h, p2h, l1h, l2h = _rand_batch(gen, 2, 30, 20, 5)
    out = knn_points(p1h, p2h, l1h, l2h, K=3, backend="numba")  # D > 3: the reference runs
    assert len(calls) == 1
    ref = naive_knn(p1h, p2h, l1h, l2h, 3)
    torch.testing.assert_close(out.dists.double(), ref[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
@pytest.mark.parametrize("D", [3, 5])
def test_unchecked_entry_points_equal_the_checked_ones(dtype, D):
    """knn_points_unchecked / nearest_neighbors_unchecked / knn_gather_unchecked (what
    chamfer and F1 call) give knn_points' / knn_gather's results bit for bit."""
    from geomgen.ops.knn import knn_gather_unchecked, knn_points_unchecked, nearest_neighbors_unchecked

    gen = torch.Generator().manual_seed(44 + D)
    p1, p2, l1, l2 = _rand_batch(gen, 3, 300, 200, D, dtype=dtype)
    for backend in ("auto", "torch", "numba"):
        a = knn_points(p1, p2, l1, l2, K=4, return_nn=True, backend=backend)
        b = knn_points_unchecked(p1, p2, l1, l2, K=4, return_nn=True, backend=backend)
        for x, y in zip(a, b):
            assert torch.equal(x, y)
        assert torch.equal(knn_gather(p2, a.idx), knn_gather_unchecked(p2, a.idx))
    for both in (True, False):
        out = nearest_neighbors_unchecked(p1, p2, l1, l2, norm=1, both=both)
        assert len(out) == (2 if both else 1)
        ref = [knn_points(p1, p2, l1, l2, norm=1), knn_points(p2, p1, l2, l1, norm=1)]
        for (d, i), r in zip(out, ref):
            assert torch.equal(d, r.dists) and torch.equal(i, r.idx)
    with pytest.raises(InvalidInputError, match="argument 'backend'"):
        knn_points_unchecked(p1, p2, l1, l2, backend="cuda")


def test_numba_backend_half_precision_searches_in_float32():
    gen = torch.Generator().manual_seed(42)
    p1, p2, l1, l2 = _rand_batch(gen, 2, 40, 30, 3)
    out = knn_points(p1.half(), p2.half(), l1, l2, K=3, backend="numba")
    assert out.dists.dtype == torch.float16
    ref = knn_points(p1.half().float(), p2.half().float(), l1, l2, K=3, backend="torch")
    assert torch.equal(out.idx >= 0, ref.idx >= 0)
    torch.testing.assert_close(out.dists.float(), ref.dists, rtol=2e-3, atol=1e-3)


@pytest.mark.parametrize("norm", [2, 1])
def test_numba_gradcheck_and_gradients_equal_reference(norm):
    gen = torch.Generator().manual_seed(43)
    p1 = torch.randn(3, 7, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    p2 = torch.randn(3, 6, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    l1, l2 = torch.tensor([7, 4, 0]), torch.tensor([6, 2, 5])

    def f(a, b):
        return knn_points(a, b, l1, l2, K=3, norm=norm, backend="numba").dists

    assert torch.autograd.gradcheck(f, (p1, p2), eps=1e-6, atol=1e-6)
    assert torch.autograd.gradgradcheck(f, (p1, p2), eps=1e-6, atol=1e-6)
    # float32 gradients equal those autograd gives the reference
    gen = torch.Generator().manual_seed(44)
    x, y, lx, ly = _rand_batch(gen, 4, 200, 150, 3)
    grads = []
    for backend in ("numba", "torch"):
        a = x.clone().requires_grad_(True)
        b = y.clone().requires_grad_(True)
        out = knn_points(a, b, lx, ly, K=4, norm=norm, backend=backend)
        (out.dists * torch.linspace(0.5, 2.0, 4)).sum().backward()
        grads.append((a.grad, b.grad))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    torch.testing.assert_close(grads[0][1], grads[1][1])


def test_numba_dists_need_no_grad_when_inputs_do_not():
    gen = torch.Generator().manual_seed(45)
    p1, p2, l1, l2 = _rand_batch(gen, 2, 50, 40, 3)
    out = knn_points(p1, p2, l1, l2, K=2, backend="numba")
    assert not out.dists.requires_grad
    with torch.no_grad():
        out = knn_points(p1.requires_grad_(True), p2, l1, l2, K=2, backend="numba")
    assert not out.dists.requires_grad


def test_numba_backend_rejects_cuda_tensors():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    p = torch.zeros(1, 4, 3, device="cuda")
    with pytest.raises(BackendUnavailableError, match="numba"):
        knn_points(p, p, backend="numba")


def test_numba_vs_pytorch3d():
    pytest.importorskip("pytorch3d.ops")
    gen = torch.Generator().manual_seed(46)
    p1, p2, l1, l2 = _rand_batch(gen, 4, 500, 400, 3, hetero=True)
    for K, norm in [(1, 2), (5, 2), (3, 1)]:
        a = knn_points(p1, p2, l1, l2, K=K, norm=norm, backend="numba")
        c = knn_points(p1, p2, l1, l2, K=K, norm=norm, backend="pytorch3d")
        assert torch.equal(a.idx >= 0, c.idx >= 0)
        torch.testing.assert_close(a.dists, c.dists, rtol=1e-5, atol=1e-6)
        agree = (a.idx == c.idx).float().mean()
        assert agree > 0.99  # the rest are (near-)ties


def test_numba_real_mesh_against_ckdtree(cgal_data):
    spatial = pytest.importorskip("scipy.spatial")
    from geomgen.io import load_mesh

    v = load_mesh(cgal_data / "meshes" / "armadillo.off").verts_list()[0].double()
    gen = torch.Generator().manual_seed(47)
    q = v[torch.randperm(len(v), generator=gen)[:3000]] + 0.3 * torch.randn(3000, 3, generator=gen,
                                                                              dtype=torch.float64)
    out = knn_points(q[None], v[None], K=5)
    d, i = spatial.cKDTree(v.numpy()).query(q.numpy(), k=5)
    torch.testing.assert_close(out.dists[0].sqrt(), torch.from_numpy(d), rtol=1e-12, atol=1e-12)
    assert (out.idx[0] == torch.from_numpy(i)).float().mean() > 0.999
