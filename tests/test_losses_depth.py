"""Tests of geomgen.losses.depth.scale_invariant_depth_loss."""

from __future__ import annotations

import math

import pytest
import torch

from geomgen.errors import InvalidInputError
from geomgen.losses.depth import scale_invariant_depth_loss
from geomgen.structures import DepthMaps


def naive_si(pred, target, mask, lam, eps=1e-6):
    """Eigen et al. with python loops: per image (1/n) sum d^2 - (lam/n^2) (sum d)^2, mean over images with n > 0."""
    per_image = []
    for n in range(pred.shape[0]):
        ds = []
        for p, t, m in zip(pred[n].reshape(-1).tolist(), target[n].reshape(-1).tolist(), mask[n].reshape(-1).tolist()):
            if m and math.isfinite(t) and t > 0:
                ds.append(math.log(max(p, eps)) - math.log(t))
        if ds:
            k = len(ds)
            per_image.append(sum(d * d for d in ds) / k - lam * sum(ds) ** 2 / k**2)
        else:
            per_image.append(None)
    return per_image


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(3, 5, 6, generator=g, dtype=torch.float64) * 4 + 0.5
    pred = target * torch.exp(0.3 * torch.randn(3, 5, 6, generator=g, dtype=torch.float64))
    target[0, 0, :3] = 0.0  # missing ground truth
    target[1, 2, 2] = float("nan")
    target[2] = 0.0  # an image without any valid pixel
    mask = torch.rand(3, 5, 6, generator=g) > 0.2
    return pred, target, mask


@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0])
def test_against_naive(lam):
    pred, target, mask = batch()
    ref = naive_si(pred, target, mask, lam)
    none = scale_invariant_depth_loss(pred, target, mask, lam=lam, reduction="none")
    assert none.shape == (3,) and none[2].item() == 0.0
    for a, b in zip(none.tolist(), ref):
        assert b is None or a == pytest.approx(b, rel=1e-10, abs=1e-12)
    valid = [b for b in ref if b is not None]
    mean = scale_invariant_depth_loss(pred, target, mask, lam=lam)
    assert mean.dim() == 0 and mean.item() == pytest.approx(sum(valid) / len(valid), rel=1e-10)
    assert scale_invariant_depth_loss(pred, target, mask, lam=lam, reduction="sum").item() == pytest.approx(sum(valid))
    # without a mask every finite positive target pixel counts
    ref_all = naive_si(pred, target, torch.ones_like(mask), lam)
    got_all = scale_invariant_depth_loss(pred, target, lam=lam, reduction="none")
    assert got_all[0].item() == pytest.approx(ref_all[0], rel=1e-10)


def test_scale_invariance_and_lambda_zero():
    pred, target, mask = batch(1)
    base = scale_invariant_depth_loss(pred, target, mask, lam=1.0, reduction="none")
    scales = torch.tensor([0.1, 3.0, 7.0], dtype=torch.float64)[:, None, None]
    scaled = scale_invariant_depth_loss(pred * scales, target, mask, lam=1.0, reduction="none")
    assert torch.allclose(base, scaled, atol=1e-12)
    half = scale_invariant_depth_loss(pred * 2.0, target, mask, lam=0.5)
    assert not math.isclose(half.item(), scale_invariant_depth_loss(pred, target, mask, lam=0.5).item())
    # lam = 0: mean squared log error; perfect prediction: 0
    valid = mask & (target > 0)
    d = (pred.log() - target.log())[0][valid[0]]
    assert scale_invariant_depth_loss(pred[:1], target[:1], mask[:1], lam=0.0).item() == pytest.approx(d.square().mean().item())
    assert scale_invariant_depth_loss(target.nan_to_num(1.0) + 0, target, lam=0.5).item() == pytest.approx(0.0, abs=1e-15)


def test_pred_clamped_and_gradients():
    pred, target, mask = batch(2)
    p = pred.clone()
    p[0, 4, 4] = -1.0  # clamped to eps: finite loss, no gradient there
    p.requires_grad_()
    loss = scale_invariant_depth_loss(p, target, mask)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(p.grad).all() and p.grad[0, 4, 4] == 0
    assert (p.grad[~mask] == 0).all() and (p.grad[2] == 0).all()
    small = (torch.rand(2, 3, 4, dtype=torch.float64) + 0.5).requires_grad_()
    tgt = torch.rand(2, 3, 4, dtype=torch.float64) + 0.5
    m = torch.rand(2, 3, 4) > 0.3
    assert torch.autograd.gradcheck(lambda x: scale_invariant_depth_loss(x, tgt, m, lam=0.7), (small,))


def test_depthmaps_inputs_and_shapes():
    pred, target, _ = batch(3)
    K = torch.tensor([[10.0, 0, 3], [0, 10.0, 2.5], [0, 0, 1]])
    tdm = DepthMaps(target, K)  # masks = finite & > 0
    a = scale_invariant_depth_loss(pred, tdm)
    b = scale_invariant_depth_loss(pred, target)
    assert torch.allclose(a, b)
    pm = torch.ones_like(tdm.masks)
    pm[0, :2] = False
    pdm = DepthMaps(pred, K, masks=pm)
    assert torch.allclose(scale_invariant_depth_loss(pdm, target), scale_invariant_depth_loss(pred, target, pm))
    four = scale_invariant_depth_loss(pred[:, None], target[:, None])  # (N, 1, H, W)
    assert torch.allclose(four, b)
    empty = scale_invariant_depth_loss(pred, torch.zeros_like(target))
    assert empty.item() == 0.0


def test_validation():
    pred, target, mask = batch()
    with pytest.raises(InvalidInputError, match="target"):
        scale_invariant_depth_loss(pred, target[:, :4])
    with pytest.raises(InvalidInputError, match="pred"):
        scale_invariant_depth_loss(pred.numpy(), target)
    with pytest.raises(InvalidInputError, match="pred"):
        scale_invariant_depth_loss(pred[0, 0], target[0, 0])
    with pytest.raises(InvalidInputError, match="mask"):
        scale_invariant_depth_loss(pred, target, mask.float())
    with pytest.raises(InvalidInputError, match="lam"):
        scale_invariant_depth_loss(pred, target, lam=1.5)
    with pytest.raises(InvalidInputError, match="eps"):
        scale_invariant_depth_loss(pred, target, eps=0.0)
    with pytest.raises(InvalidInputError, match="reduction"):
        scale_invariant_depth_loss(pred, target, reduction="batchmean")
