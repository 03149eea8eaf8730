"""Tests of geomgen.losses.chamfer_distance against a naive Python reference."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from geomgen.errors import InvalidInputError
from geomgen.losses import chamfer_distance


# --------------------------------------------------------------------------- #
# naive reference (plain Python floats, written from the documented semantics)
# --------------------------------------------------------------------------- #


def _dist(a, b, norm):
    if norm == 2:
        return sum((p - q) ** 2 for p, q in zip(a, b))
    return sum(abs(p - q) for p, q in zip(a, b))


def _cos(a, b, eps=1e-6):
    na = math.sqrt(sum(p * p for p in a))
    nb = math.sqrt(sum(q * q for q in b))
    return sum(p * q for p, q in zip(a, b)) / (max(na, eps) * max(nb, eps))


def _direction(x, y, xl, yl, xn, yn, norm, abs_cos):
    """Per-point lists (padded with 0 to the padded size) for one batch element."""
    P = len(x)
    d = [0.0] * P
    c = [0.0] * P
    for i in range(xl):
        best, bj = None, None
        for j in range(yl):
            dd = _dist(x[i], y[j], norm)
            if best is None or dd < best:
                best, bj = dd, j
        d[i] = 0.0 if best is None else best
        if xn is not None:
            near = [0.0] * len(x[i]) if bj is None else yn[bj]
            cs = _cos(xn[i], near)
            c[i] = 1 - (abs(cs) if abs_cos else cs)
    return d, c


def naive_chamfer(x, y, xl, yl, xn, yn, w, batch_reduction, point_reduction, norm, single, abs_cos):
    N = len(x)
    use_n = xn is not None
    per = {"x": [], "y": []}
    for n in range(N):
        wn = 1.0 if w is None else w[n]
        dx, cx = _direction(x[n], y[n], xl[n], yl[n], xn[n] if use_n else None,
                            yn[n] if use_n else None, norm, abs_cos)
        dy, cy = _direction(y[n], x[n], yl[n], xl[n], yn[n] if use_n else None,
                            xn[n] if use_n else None, norm, abs_cos)
        per["x"].append(([v * wn for v in dx], [v * wn for v in cx], xl[n]))
        per["y"].append(([v * wn for v in dy], [v * wn for v in cy], yl[n]))

    if point_reduction is None:
        def stack(side, k):
            return torch.tensor([e[k] for e in per[side]], dtype=torch.float64)
        if single:
            return stack("x", 0), (stack("x", 1) if use_n else None)
        return (stack("x", 0), stack("y", 0)), ((stack("x", 1), stack("y", 1)) if use_n else None)

    def reduce(vals, length):
        if point_reduction == "max":
            return max(vals) if vals else 0.0
        s = sum(vals)
        return s / max(length, 1) if point_reduction == "mean" else s

    loss, loss_n = [], []
    for n in range(N):
        lx = reduce(per["x"][n][0], per["x"][n][2])
        cx = reduce(per["x"][n][1], per["x"][n][2])
        if single:
            loss.append(lx)
            loss_n.append(cx)
            continue
        ly = reduce(per["y"][n][0], per["y"][n][2])
        cy = reduce(per["y"][n][1], per["y"][n][2])
        loss.append(max(lx, ly) if point_reduction == "max" else lx + ly)
        loss_n.append(cx + cy)

    def breduce(vals):
        if batch_reduction is None:
            return torch.tensor(vals, dtype=torch.float64)
        s = sum(vals)
        if batch_reduction == "sum":
            return torch.tensor(s, dtype=torch.float64)
        div = N if w is None else (sum(w) if sum(w) != 0 else 1.0)
        return torch.tensor(s / div, dtype=torch.float64)

    return breduce(loss), (breduce(loss_n) if use_n and point_reduction != "max" else None)


def _data(seed, D=3, N=3, P1=9, P2=7, hetero=True):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, P1, D, generator=g, dtype=torch.float64)
    y = torch.randn(N, P2, D, generator=g, dtype=torch.float64)
    xn = torch.randn(N, P1, D, generator=g, dtype=torch.float64)
    yn = torch.randn(N, P2, D, generator=g, dtype=torch.float64)
    xl = torch.tensor([P1, max(1, P1 - 5), 1][:N]) if hetero else torch.full((N,), P1)
    yl = torch.tensor([P2, P2 - 1, min(3, P2)][:N]) if hetero else torch.full((N,), P2)
    w = torch.rand(N, generator=g, dtype=torch.float64) + 0.2
    return x, y, xl, yl, xn, yn, w


def _assert_match(got, ref):
    if ref is None:
        assert got is None
    elif isinstance(ref, tuple):
        assert isinstance(got, tuple) and len(got) == len(ref)
        for g, r in zip(got, ref):
            torch.testing.assert_close(g, r)
    else:
        torch.testing.assert_close(got, ref)


_COMBOS = [
    (pr, br, norm, normals, weights, single, abs_cos)
    for pr, br, norm, normals, weights, single, abs_cos in itertools.product(
        ["mean", "sum", "max", None], ["mean", "sum", None], [1, 2], [False, True],
        [False, True], [False, True], [True, False],
    )
    if not (pr is None and br is not None)
    and not (pr == "max" and normals)
    and not (not normals and not abs_cos)  # abs_cosine only matters with normals
]


@pytest.mark.parametrize("pr, br, norm, normals, weights, single, abs_cos", _COMBOS)
def test_against_naive(pr, br, norm, normals, weights, single, abs_cos):
    x, y, xl, yl, xn, yn, w = _data(len(str((pr, br, norm))) + norm)
    kwargs = dict(
        x_lengths=xl, y_lengths=yl, weights=w if weights else None, batch_reduction=br,
        point_reduction=pr, norm=norm, single_directional=single, abs_cosine=abs_cos,
    )
    if normals:
        kwargs.update(x_normals=xn, y_normals=yn)
    loss, loss_n = chamfer_distance(x, y, **kwargs)
    ref_loss, ref_n = naive_chamfer(
        x.tolist(), y.tolist(), xl.tolist(), yl.tolist(),
        xn.tolist() if normals else None, yn.tolist() if normals else None,
        w.tolist() if weights else None, br, pr, norm, single, abs_cos,
    )
    _assert_match(loss, ref_loss)
    _assert_match(loss_n, ref_n)


def test_eighteen_example_and_defaults():
    x = torch.tensor([[[0.0, 0.0, 0.0]]])
    y = torch.tensor([[[3.0, 0.0, 0.0]]])
    loss, loss_n = chamfer_distance(x, y)
    assert float(loss) == 18.0 and loss_n is None  # 3^2 + 3^2: squared, both directions
    assert float(chamfer_distance(x, y, single_directional=True)[0]) == 9.0
    assert float(chamfer_distance(x, y, norm=1)[0]) == 6.0
    assert float(chamfer_distance(x, y, point_reduction="max")[0]) == 9.0


def test_homogeneous_without_lengths_equals_full_lengths():
    x, y, _, _, xn, yn, _ = _data(3, hetero=False)
    a = chamfer_distance(x, y, x_normals=xn, y_normals=yn)
    b = chamfer_distance(x, y, torch.full((3,), 9), torch.full((3,), 7), xn, yn)
    torch.testing.assert_close(a[0], b[0])
    torch.testing.assert_close(a[1], b[1])


def test_padding_values_are_ignored():
    x, y, xl, yl, xn, yn, _ = _data(4)
    x2, y2 = x.clone(), y.clone()
    x2[1, 4:] = 1e3  # garbage in padding
    y2[2, 3:] = -1e3
    a = chamfer_distance(x, y, xl, yl, xn, yn, batch_reduction=None)
    b = chamfer_distance(x2, y2, xl, yl, xn, yn, batch_reduction=None)
    torch.testing.assert_close(a[0], b[0])
    torch.testing.assert_close(a[1], b[1])


def test_empty_cloud_and_zero_weights():
    x, y, _, _, _, _, _ = _data(5, N=2)
    loss, _ = chamfer_distance(x, y, torch.tensor([9, 0]), torch.tensor([7, 7]), batch_reduction=None)
    # element 1: x is empty -> x->y term 0 (mean over clamp(0, 1)), y->x term 0 (no target)
    assert float(loss[1]) == 0.0
    w0 = torch.zeros(2, dtype=torch.float64)
    loss, _ = chamfer_distance(x, y, weights=w0)
    assert float(loss) == 0.0


def test_integer_weights_are_cast():
    x, y, xl, yl, _, _, _ = _data(9)
    a = chamfer_distance(x, y, xl, yl, weights=torch.tensor([1, 0, 2]))[0]
    b = chamfer_distance(x, y, xl, yl, weights=torch.tensor([1.0, 0.0, 2.0], dtype=torch.float64))[0]
    assert a.dtype == torch.float64
    torch.testing.assert_close(a, b)


def test_dtype_device_and_grad_kept():
    x, y, xl, yl, xn, yn, w = _data(6)
    x32 = x.float().requires_grad_(True)
    loss, loss_n = chamfer_distance(x32, y.float(), xl, yl, xn.float(), yn.float())
    assert loss.dtype == torch.float32 and loss.shape == () and loss_n.shape == ()
    loss.backward()
    assert x32.grad is not None and x32.grad[1, 4:].abs().sum() == 0  # padding gets no grad


def test_gradcheck():
    x, y, xl, yl, xn, yn, w = _data(7, N=2, P1=5, P2=4)
    x.requires_grad_(True)
    y.requires_grad_(True)
    xn.requires_grad_(True)
    for norm, pr in [(2, "mean"), (1, "sum"), (2, "max")]:
        def f(a, b, na):
            normals = {} if pr == "max" else dict(x_normals=na, y_normals=yn)
            loss, ln = chamfer_distance(a, b, xl[:2], yl[:2], weights=w, norm=norm,
                                        point_reduction=pr, **normals)
            return loss if ln is None else loss + ln

        assert torch.autograd.gradcheck(f, (x, y, xn), eps=1e-6, atol=1e-6)


def test_pointclouds_input():
    structures = pytest.importorskip("geomgen.structures")
    PointClouds = getattr(structures, "PointClouds", None)
    if PointClouds is None:
        mod = pytest.importorskip("geomgen.structures.pointclouds")
        PointClouds = mod.PointClouds
    x, y, xl, yl, xn, yn, w = _data(8)
    px = PointClouds([x[i, : xl[i]] for i in range(3)], normals=[xn[i, : xl[i]] for i in range(3)])
    py = PointClouds([y[i, : yl[i]] for i in range(3)], normals=[yn[i, : yl[i]] for i in range(3)])
    got = chamfer_distance(px, py, weights=w)
    ref = chamfer_distance(x, y, xl, yl, xn, yn, weights=w)
    torch.testing.assert_close(got[0], ref[0])
    torch.testing.assert_close(got[1], ref[1])
    # mixed: tensor + PointClouds
    got = chamfer_distance(px, y, y_lengths=yl)
    torch.testing.assert_close(got[0], chamfer_distance(x, y, xl, yl)[0])
    with pytest.raises(InvalidInputError, match="'x_lengths'"):
        chamfer_distance(px, py, x_lengths=xl)
    with pytest.raises(InvalidInputError, match="'y_normals'"):
        chamfer_distance(px, py, y_normals=yn)
    # "max" silently ignores normals that come from the clouds (as PyTorch3D with no explicit normals)
    assert chamfer_distance(px, py, point_reduction="max")[1] is None


_X = torch.zeros(2, 4, 3)
_Y = torch.ones(2, 5, 3)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(x="points"), "x"),
        (dict(x=torch.zeros(4, 3)), "x"),
        (dict(x=torch.zeros(2, 4, 3, dtype=torch.long)), "x"),
        (dict(y=torch.zeros(3, 5, 3)), "y"),
        (dict(y=torch.zeros(2, 5, 2)), "y"),
        (dict(y=torch.zeros(2, 5, 3, dtype=torch.float64)), "y"),
        (dict(x=torch.full((2, 4, 3), float("nan"))), "x"),
        (dict(y=torch.full((2, 5, 3), float("inf"))), "y"),
        (dict(x_lengths=torch.tensor([5, 1])), "x_lengths"),
        (dict(x_lengths=torch.tensor([1])), "x_lengths"),
        (dict(y_lengths=torch.tensor([-1, 1])), "y_lengths"),
        (dict(x_normals=torch.ones(2, 4, 3)), "y_normals"),
        (dict(y_normals=torch.ones(2, 5, 3)), "x_normals"),
        (dict(x_normals=torch.ones(2, 3, 3), y_normals=torch.ones(2, 5, 3)), "x_normals"),
        (dict(x_normals=torch.ones(2, 4, 3), y_normals=torch.ones(2, 5, 3, dtype=torch.float64)),
         "y_normals"),
        (dict(x_normals=torch.ones(2, 4, 3), y_normals=torch.full((2, 5, 3), float("nan"))),
         "y_normals"),
        (dict(weights=torch.ones(3)), "weights"),
        (dict(weights=torch.tensor([1.0, -1.0])), "weights"),
        (dict(weights=torch.tensor([True, True])), "weights"),
        (dict(weights=torch.tensor([1.0, float("nan")])), "weights"),
        (dict(batch_reduction="max"), "batch_reduction"),
        (dict(point_reduction="median"), "point_reduction"),
        (dict(point_reduction=None), "batch_reduction"),  # batch_reduction defaults to "mean"
        (dict(point_reduction="max", x_normals=torch.ones(2, 4, 3), y_normals=torch.ones(2, 5, 3)),
         "point_reduction"),
        (dict(norm=3), "norm"),
        (dict(norm=2.0), "norm"),
        (dict(single_directional=1), "single_directional"),
        (dict(abs_cosine=None), "abs_cosine"),
    ],
)
def test_validation_errors_name_argument(kwargs, name):
    args = dict(x=_X, y=_Y)
    args.update(kwargs)
    with pytest.raises(InvalidInputError) as info:
        chamfer_distance(**args)
    assert f"'{name}'" in str(info.value)
    assert "chamfer_distance" in str(info.value)


# --------------------------------------------------------------------------- #
# the numba fast path (float32/float64 CPU clouds with D <= 3)
# --------------------------------------------------------------------------- #


def _run_both(monkeypatch, fn):
    """``fn()`` through the fast path, then through knn_points' torch reference."""
    fast = fn()
    import geomgen.ops.knn as knn_mod

    with monkeypatch.context() as m:
        m.setattr(knn_mod, "_numba_applicable", lambda p: False)  # chamfer's fast path and knn's "auto"
        ref = fn()
    return fast, ref


def test_fast_path_is_taken(monkeypatch):
    import geomgen.kernels.knn_numba as kn

    calls = []
    orig = kn.chamfer_nn
    monkeypatch.setattr(kn, "chamfer_nn", lambda *a, **k: calls.append(a[5] if len(a) > 5 else k)
                        or orig(*a, **k))
    x, y, xl, yl, xn, yn, w = _data(30)
    chamfer_distance(x, y, xl, yl)
    chamfer_distance(x.float(), y.float(), xl, yl, single_directional=True)
    assert calls == [True, False]  # both directions in one call; one direction alone
    chamfer_distance(x[..., :2], y[..., :2], xl, yl)  # D = 2 too
    assert len(calls) == 3


@pytest.mark.parametrize("pr, br, norm, normals, weights, single, abs_cos", _COMBOS[::3])
def test_fast_path_equals_reference_path(monkeypatch, pr, br, norm, normals, weights, single,
                                         abs_cos):
    """Every option through the fast path gives the reference path's values and gradients."""
    g = torch.Generator().manual_seed(31)
    N, P1, P2 = 4, 300, 250
    x = torch.randn(N, P1, 3, generator=g)
    y = torch.randn(N, P2, 3, generator=g) * 1.3
    xn = torch.randn(N, P1, 3, generator=g)
    yn = torch.randn(N, P2, 3, generator=g)
    xl = torch.tensor([P1, 100, 0, 7])
    yl = torch.tensor([P2, 250, 5, 0])
    w = torch.rand(N, generator=g) + 0.1

    def fn():
        a = x.clone().requires_grad_(True)
        b = y.clone().requires_grad_(True)
        kwargs = dict(x_lengths=xl, y_lengths=yl, weights=w if weights else None,
                      batch_reduction=br, point_reduction=pr, norm=norm,
                      single_directional=single, abs_cosine=abs_cos)
        if normals:
            kwargs.update(x_normals=xn, y_normals=yn)
        loss, loss_n = chamfer_distance(a, b, **kwargs)
        parts = list(loss) if isinstance(loss, tuple) else [loss]
        if loss_n is not None:
            parts += list(loss_n) if isinstance(loss_n, tuple) else [loss_n]
        sum(p.sum() for p in parts).backward()
        return loss, loss_n, a.grad, b.grad

    fast, ref = _run_both(monkeypatch, fn)
    _assert_match(fast[0], ref[0])
    _assert_match(fast[1], ref[1])
    torch.testing.assert_close(fast[2], ref[2])
    if fast[3] is None:
        assert ref[3] is None or not ref[3].any()
    else:
        torch.testing.assert_close(fast[3], ref[3])


def test_fast_path_real_meshes(cgal_data, monkeypatch):
    from geomgen.io import load_mesh
    from geomgen.ops.sample_points import sample_points_from_meshes

    meshes = [load_mesh(cgal_data / "meshes" / name) for name in ("armadillo.off", "bunny00.off")]
    gen = torch.Generator().manual_seed(5)
    pts = [sample_points_from_meshes(m, 3000, return_normals=True, generator=gen) for m in meshes]
    x, xn = pts[0][0].float(), pts[0][1].float()
    y, yn = pts[1][0].float(), pts[1][1].float()
    y = y * (x.abs().max() / y.abs().max())  # bring the bunny to the armadillo's scale

    def fn():
        return chamfer_distance(x, y, x_normals=xn, y_normals=yn, point_reduction=None,
                                batch_reduction=None)

    fast, ref = _run_both(monkeypatch, fn)
    torch.testing.assert_close(fast[0][0], ref[0][0], rtol=1e-6, atol=0)
    torch.testing.assert_close(fast[0][1], ref[0][1], rtol=1e-6, atol=0)
    torch.testing.assert_close(fast[1][0], ref[1][0])
    torch.testing.assert_close(fast[1][1], ref[1][1])


@pytest.mark.parametrize("case", ["far_apart", "plane", "duplicates", "outliers"])
def test_fast_path_awkward_clouds(monkeypatch, case):
    g = torch.Generator().manual_seed(11)
    x = torch.randn(2, 700, 3, generator=g, dtype=torch.float64)
    y = torch.randn(2, 600, 3, generator=g, dtype=torch.float64)
    if case == "far_apart":
        x = x + torch.tensor([100.0, -40.0, 7.0], dtype=torch.float64)
    elif case == "plane":
        x[..., 2] = 0.0
        y[..., 2] = 0.0
    elif case == "duplicates":
        y = y[:, :30].repeat(1, 20, 1)
        x[:, :100] = y[:, :100]
    elif case == "outliers":
        y[:, :3] *= 1e5
        x[:, :2] *= 1e6

    def fn():
        return chamfer_distance(x, y, batch_reduction=None)[0]

    fast, ref = _run_both(monkeypatch, fn)
    torch.testing.assert_close(fast, ref, rtol=1e-12, atol=0)


def test_against_pytorch3d():
    p3d_loss = pytest.importorskip("pytorch3d.loss")
    x, y, xl, yl, xn, yn, w = (t.float() if t.is_floating_point() else t
                               for t in _data(40, N=3, P1=60, P2=45))
    for kwargs in [dict(), dict(norm=1), dict(point_reduction="sum", batch_reduction=None),
                   dict(x_normals=xn, y_normals=yn), dict(single_directional=True),
                   dict(point_reduction="max"), dict(weights=w)]:
        ours = chamfer_distance(x, y, xl, yl, **kwargs)
        theirs = p3d_loss.chamfer_distance(x, y, xl, yl, **kwargs)
        torch.testing.assert_close(ours[0], theirs[0])
        if theirs[1] is None:
            assert ours[1] is None
        else:
            torch.testing.assert_close(ours[1], theirs[1])
