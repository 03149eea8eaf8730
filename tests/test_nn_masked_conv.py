"""Tests of geomgen.nn.masked_conv: raster-order (z, y, x) causality of MaskedConv3d and PixelCNN3d."""

from __future__ import annotations

import itertools

import pytest
import torch

from geomgen.errors import InvalidInputError
from geomgen.nn.masked_conv import MaskedConv3d, MaskedResBlock3d, PixelCNN3d, causal_mask_3d


def nparams(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def randomise(m: torch.nn.Module) -> torch.nn.Module:
    """Random non-zero parameters everywhere (zero-initialised layers would hide dependencies)."""
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.5)
    return m


def input_gradient(net: torch.nn.Module, shape: tuple[int, ...], z: int, y: int, x: int) -> torch.Tensor:
    """|d out[0, :, z, y, x] / d input|, summed over channels, flattened in raster order (D * H * W,)."""
    inp = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    out = net.double()(inp)
    (g,) = torch.autograd.grad(out[0, :, z, y, x].sum(), inp)
    assert g[1:].abs().sum() == 0  # other batch elements never matter
    return g[0].abs().sum(0).reshape(-1)


def test_causal_mask_3d():
    a, b = causal_mask_3d(3, "A"), causal_mask_3d(3, "B")
    assert a.shape == (3, 3, 3) and int(a.sum()) == 13 and int(b.sum()) == 14
    for dz, dy, dx in itertools.product(range(3), repeat=3):
        before = (dz, dy, dx) < (1, 1, 1)  # lexicographic = raster order
        assert a[dz, dy, dx] == before
        assert b[dz, dy, dx] == (before or (dz, dy, dx) == (1, 1, 1))
    m = causal_mask_3d((1, 3, 5), "A")
    assert m.shape == (1, 3, 5) and m[0, 1].tolist() == [1, 1, 0, 0, 0] and m[0, 0].sum() == 5 and m[0, 2].sum() == 0


@pytest.mark.parametrize("mask_type", ["A", "B"])
@pytest.mark.parametrize(("kernel", "dilation"), [(3, 1), (5, 1), ((3, 5, 3), 1), (3, 2)])
def test_single_layer_causality(mask_type, kernel, dilation):
    conv = randomise(MaskedConv3d(2, 3, kernel, mask_type, dilation=dilation))
    shape = (2, 2, 4, 5, 6)
    for z, y, x in [(0, 0, 0), (2, 3, 1), (1, 0, 5), (3, 4, 5), (2, 2, 2)]:
        i = (z * 5 + y) * 6 + x
        g = input_gradient(conv, shape, z, y, x)
        assert g[i + (mask_type == "B") :].sum() == 0  # never depends on inputs at >= i (A) / > i (B)
        assert (g[i] > 0) == (mask_type == "B")
        if i > 0 and dilation == 1:
            assert g[i - 1] > 0 or x == 0  # the previous voxel in the row is seen


def test_pixelcnn_stack_is_strictly_causal():
    net = randomise(PixelCNN3d(1, 2, hidden=8, num_blocks=3, act="tanh"))  # no dead ReLUs hiding paths
    shape = (2, 1, 4, 4, 5)
    n = 4 * 4 * 5
    for i in [0, 1, 7, 22, 40, n - 1]:
        z, rem = divmod(i, 20)
        y, x = divmod(rem, 5)
        g = input_gradient(net, shape, z, y, x)
        assert g[i:].sum() == 0
        if i > 0:
            assert g[:i].sum() > 0
        if x > 0:  # (the end of the previous row may lie in PixelCNN's blind spot)
            assert g[i - 1] > 0


def test_masked_weights_get_no_gradient_and_shapes():
    conv = MaskedConv3d(3, 4, 3, "A")
    x = torch.randn(2, 3, 5, 3, 7)
    y = conv(x)
    assert y.shape == (2, 4, 5, 3, 7)
    y.sum().backward()
    assert conv.weight.grad[:, :, 1, 1, 1].abs().sum() == 0  # the centre is masked in "A"
    assert conv.weight.grad[:, :, 2].abs().sum() == 0  # the next z-slice is masked
    assert conv.weight.grad[:, :, 0].abs().sum() > 0
    assert "mask" not in conv.state_dict()  # rebuilt from mask_type: not saved


def test_blocks_and_defaults():
    net = PixelCNN3d()
    assert nparams(net) == 37_121  # reported in the docstring
    g = torch.rand(2, 1, 6, 5, 7).round()
    out = net(g)
    assert out.shape == (2, 1, 6, 5, 7)
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    blk = MaskedResBlock3d(8)
    x = torch.randn(1, 8, 3, 3, 3)
    assert torch.equal(blk(x), x)  # last convolution starts at zero
    assert PixelCNN3d(2, 3, hidden=4, num_blocks=0, stem_kernel=3, act="elu")(torch.randn(1, 2, 3, 3, 3)).shape == (1, 3, 3, 3, 3)


def test_masked_fan_in_init():
    conv = MaskedConv3d(32, 64, 3, "B")
    assert conv.effective_fan_in() == 32 * 14
    w = conv.weight[:, :, conv.mask[0, 0] > 0]
    assert w.std().item() == pytest.approx((2 / (32 * 14)) ** 0.5, rel=0.05)
    assert torch.count_nonzero(conv.bias) == 0


def test_bad_arguments():
    with pytest.raises(InvalidInputError, match="'kernel_size'"):
        MaskedConv3d(1, 2, 4)
    with pytest.raises(InvalidInputError, match="'kernel_size'"):
        MaskedConv3d(1, 2, (3, 3))
    with pytest.raises(InvalidInputError, match="'kernel_size'"):
        MaskedConv3d(1, 2, 1, "A")
    with pytest.raises(InvalidInputError, match="'mask_type'"):
        MaskedConv3d(1, 2, 3, "C")
    with pytest.raises(InvalidInputError, match="'mask_type'"):
        causal_mask_3d(3, "a")
    conv = MaskedConv3d(2, 2)
    with pytest.raises(InvalidInputError, match="'x'.*5-D"):
        conv(torch.randn(2, 4, 4, 4))
    with pytest.raises(InvalidInputError, match="'x'.*C_in=2"):
        conv(torch.randn(1, 3, 4, 4, 4))
    with pytest.raises(InvalidInputError, match="'grid'.*C_in=1"):
        PixelCNN3d()(torch.randn(1, 2, 4, 4, 4))
    with pytest.raises(InvalidInputError, match="'num_blocks'"):
        PixelCNN3d(num_blocks=-1)
