"""Tests of geomgen.metrics.f1_score (Mesh R-CNN protocol: unsquared, strict <, percent)."""

from __future__ import annotations

import pytest
import torch

from geomgen.errors import InvalidInputError
from geomgen.metrics import f1_score
from geomgen.structures import PointClouds


def _hand_case(dtype=torch.float32):
    pred = torch.tensor([[[0.0, 0, 0], [1, 0, 0], [5, 0, 0]]], dtype=dtype)
    gt = torch.tensor([[[0.0, 0, 0.05], [1, 0, 0.5]]], dtype=dtype)
    # pred -> gt: 0.05, 0.5 (exactly), ~4.03      gt -> pred: 0.05, 0.5 (exactly)
    return pred, gt


def test_hand_count_and_strict_threshold():
    pred, gt = _hand_case()
    out = f1_score(pred, gt, thresholds=(0.1, 0.5, 1.0))
    assert list(out) == [
        "Precision@0.1", "Recall@0.1", "F1@0.1",
        "Precision@0.5", "Recall@0.5", "F1@0.5",
        "Precision@1.0", "Recall@1.0", "F1@1.0",
    ]
    for k, v in out.items():
        assert v.shape == (1,) and v.dtype == torch.float32, k
    # t = 0.1: 1 of 3 pred, 1 of 2 gt
    torch.testing.assert_close(out["Precision@0.1"], torch.tensor([100 / 3]))
    torch.testing.assert_close(out["Recall@0.1"], torch.tensor([50.0]))
    torch.testing.assert_close(out["F1@0.1"], torch.tensor([40.0]))
    # t = 0.5: the points exactly 0.5 away are NOT counted (strict <), same as 0.1
    torch.testing.assert_close(out["Precision@0.5"], torch.tensor([100 / 3]))
    torch.testing.assert_close(out["Recall@0.5"], torch.tensor([50.0]))
    # t = 1.0: 2 of 3 pred, 2 of 2 gt
    torch.testing.assert_close(out["Precision@1.0"], torch.tensor([200 / 3]))
    torch.testing.assert_close(out["Recall@1.0"], torch.tensor([100.0]))
    torch.testing.assert_close(out["F1@1.0"], torch.tensor([80.0]))


def test_unsquared_distances():
    # distance 0.3 -> squared 0.09 < 0.1 would count under a squared convention
    pred = torch.tensor([[[0.0, 0, 0]]], dtype=torch.float64)
    gt = torch.tensor([[[0.3, 0, 0]]], dtype=torch.float64)
    out = f1_score(pred, gt, thresholds=(0.1, 0.31))
    assert float(out["F1@0.1"]) == 0.0
    assert float(out["Precision@0.31"]) == 100.0 and float(out["Recall@0.31"]) == 100.0
    assert abs(float(out["F1@0.31"]) - 100.0) < 1e-6  # eps 1e-8 in the denominator


def test_default_thresholds_and_f1_formula():
    pred, gt = _hand_case()
    out = f1_score(pred * 0.1, gt * 0.1)
    assert {k.split("@")[1] for k in out} == {"0.1", "0.3", "0.5"}
    for t in ("0.1", "0.3", "0.5"):
        p, r = out[f"Precision@{t}"], out[f"Recall@{t}"]
        torch.testing.assert_close(out[f"F1@{t}"], 2 * p * r / (p + r + 1e-8))


def test_padded_batch_against_brute_force():
    g = torch.Generator().manual_seed(0)
    N, P1, P2 = 3, 40, 30
    pred = torch.rand(N, P1, 3, generator=g, dtype=torch.float64)
    gt = torch.rand(N, P2, 3, generator=g, dtype=torch.float64)
    pl = torch.tensor([40, 17, 1])
    gl = torch.tensor([30, 30, 9])
    ts = (0.05, 0.1, 0.2)
    out = f1_score(pred, gt, ts, pred_lengths=pl, gt_lengths=gl)
    for n in range(N):
        d = torch.cdist(pred[n, : pl[n]], gt[n, : gl[n]])
        for t in ts:
            p = 100.0 * float((d.min(1).values < t).double().mean())
            r = 100.0 * float((d.min(0).values < t).double().mean())
            f = 2 * p * r / (p + r + 1e-8)
            assert abs(float(out[f"Precision@{t!r}"][n]) - p) < 1e-9
            assert abs(float(out[f"Recall@{t!r}"][n]) - r) < 1e-9
            assert abs(float(out[f"F1@{t!r}"][n]) - f) < 1e-9


def test_empty_clouds_give_zero():
    pred, gt = _hand_case()
    pred = pred.expand(2, -1, -1)
    gt = gt.expand(2, -1, -1)
    out = f1_score(pred, gt, (1.0,), pred_lengths=torch.tensor([0, 3]), gt_lengths=torch.tensor([2, 0]))
    for k in ("Precision@1.0", "Recall@1.0", "F1@1.0"):
        assert out[k].tolist() == [0.0, 0.0], k
        assert torch.isfinite(out[k]).all()


def test_pointclouds_input():
    pred, gt = _hand_case()
    out_t = f1_score(pred, gt, (0.1, 1.0))
    out_p = f1_score(PointClouds([pred[0]]), PointClouds([gt[0]]), (0.1, 1.0))
    for k in out_t:
        torch.testing.assert_close(out_t[k], out_p[k])
    with pytest.raises(InvalidInputError, match="'pred_lengths'"):
        f1_score(PointClouds([pred[0]]), gt, pred_lengths=torch.tensor([3]))


def test_no_grad_and_identical_clouds():
    x = torch.rand(2, 50, 3, requires_grad=True)
    out = f1_score(x, x.detach().clone())
    for v in out.values():
        assert not v.requires_grad
        torch.testing.assert_close(v, torch.full((2,), 100.0), atol=1e-5, rtol=0)


_PRED = torch.zeros(2, 4, 3)
_GT = torch.ones(2, 5, 3)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(pred=[[0.0, 0.0, 0.0]]), "pred"),
        (dict(pred=torch.zeros(4, 3)), "pred"),
        (dict(gt=torch.zeros(3, 5, 3)), "gt"),
        (dict(gt=torch.zeros(2, 5, 2)), "gt"),
        (dict(gt=torch.zeros(2, 5, 3, dtype=torch.float64)), "gt"),
        (dict(gt=torch.full((2, 5, 3), float("nan"))), "gt"),
        (dict(thresholds=()), "thresholds"),
        (dict(thresholds=(0.1, -0.3)), "thresholds"),
        (dict(thresholds=(0.0,)), "thresholds"),
        (dict(thresholds=(float("nan"),)), "thresholds"),
        (dict(thresholds=(0.1, 0.1)), "thresholds"),
        (dict(thresholds=0.1), "thresholds"),
        (dict(thresholds="0.1"), "thresholds"),
        (dict(pred_lengths=torch.tensor([5, 1])), "pred_lengths"),
        (dict(gt_lengths=torch.tensor([1])), "gt_lengths"),
    ],
)
def test_validation_errors_name_argument(kwargs, name):
    args = dict(pred=_PRED, gt=_GT)
    args.update(kwargs)
    with pytest.raises(InvalidInputError) as info:
        f1_score(**args)
    assert f"'{name}'" in str(info.value)
    assert "f1_score" in str(info.value)
