"""Tests of geomgen.nn.image_encoder: ResNetEncoder, BasicBlock, Bottleneck, Conv2dBlock."""

from __future__ import annotations

import math

import pytest
import torch

from geomgen.errors import InvalidInputError
from geomgen.nn.image_encoder import BasicBlock, Bottleneck, Conv2dBlock, ResNetEncoder


def nparams(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_default_encoder_shapes_and_params():
    enc = ResNetEncoder()
    assert nparams(enc) == 1_226_400  # reported in the docstring
    feats, vec = enc(torch.randn(2, 3, 64, 64))
    assert [tuple(f.shape) for f in feats] == [(2, 32, 32, 32), (2, 64, 16, 16), (2, 128, 8, 8), (2, 256, 4, 4)]
    assert vec.shape == (2, 256) and enc.out_dim == 256
    assert enc.feature_channels == (32, 64, 128, 256)
    assert enc.feature_strides == (2, 4, 8, 16)
    out = enc(torch.randn(2, 3, 64, 64))
    assert out.features is out[0] and out.pooled.shape == (2, 256)


@pytest.mark.parametrize(
    ("name", "count"),
    [("tiny", 307_536), ("small", 1_226_400), ("resnet10", 4_905_792), ("resnet18", 11_176_512)],
)
def test_preset_parameter_counts(name, count):
    # resnet18's count is torchvision's resnet18 without its 1000-way classifier (11,689,512 - 513,000)
    assert nparams(ResNetEncoder.from_name(name)) == count


def test_bottleneck_preset_and_block():
    blk = Bottleneck(64, 16, stride=2)
    y = blk(torch.randn(2, 64, 9, 9))
    assert y.shape == (2, 64, 5, 5) and blk.out_channels == 64
    enc = ResNetEncoder(widths=(8, 16), depths=(2, 1), block="bottleneck", norm="group", groups=4)
    feats, vec = enc(torch.randn(2, 3, 20, 20))
    assert [f.shape[1] for f in feats] == [32, 64] == list(enc.feature_channels)
    assert vec.shape == (2, 64)


@pytest.mark.parametrize("size", [(37, 50), (1, 1), (5, 64), (63, 47)])
def test_odd_sizes_and_feature_sizes(size):
    enc = ResNetEncoder.from_name("tiny", in_channels=1).eval()
    h, w = size
    feats, vec = enc(torch.randn(1, 1, h, w))
    assert [tuple(f.shape[2:]) for f in feats] == enc.feature_sizes(h, w)
    assert [tuple(f.shape[2:]) for f in feats] == [(math.ceil(h / s), math.ceil(w / s)) for s in enc.feature_strides]
    assert vec.shape == (1, 128)


def test_imagenet_stem_sizes_and_overrides():
    enc = ResNetEncoder.from_name("resnet10", widths=(8, 8, 16, 16), stem_channels=8).eval()
    feats, _ = enc(torch.randn(1, 3, 64, 64))
    assert [tuple(f.shape[2:]) for f in feats] == [(16, 16), (8, 8), (4, 4), (2, 2)] == enc.feature_sizes(64, 64)
    assert enc.feature_strides == (4, 8, 16, 32)
    feats, _ = enc(torch.randn(1, 3, 37, 29))
    assert [tuple(f.shape[2:]) for f in feats] == enc.feature_sizes(37, 29)
    small = ResNetEncoder.from_name("tiny", stem_stride=1, strides=(1, 1, 2, 2), out_dim=10, pool="max")
    feats, vec = small(torch.randn(2, 3, 16, 16))
    assert [tuple(f.shape[2:]) for f in feats] == [(16, 16), (16, 16), (8, 8), (4, 4)]
    assert vec.shape == (2, 10) and small.out_dim == 10


def test_max_pool_is_global_max():
    enc = ResNetEncoder.from_name("tiny", pool="max").eval()
    feats, vec = enc(torch.randn(2, 3, 32, 32))
    assert torch.allclose(vec, feats[-1].amax(dim=(2, 3)))


@pytest.mark.parametrize("norm", ["batch", "group", "instance", "layer", "none"])
def test_gradients_flow_for_every_norm(norm):
    enc = ResNetEncoder(widths=(8, 16), depths=(1, 2), norm=norm, groups=4, out_dim=6)
    x = torch.randn(2, 3, 16, 16, requires_grad=True)
    feats, vec = enc(x)
    (vec.sum() + sum(f.mean() for f in feats)).backward()
    missing = [n for n, p in enc.named_parameters() if p.grad is None]
    assert not missing
    assert all(torch.isfinite(p.grad).all() for p in enc.parameters())
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_train_eval_batch_dependence():
    enc = ResNetEncoder.from_name("tiny")
    x = torch.randn(4, 3, 16, 16)
    enc.train()
    full, _ = enc(x)
    part, _ = enc(x[:2])
    assert not torch.allclose(full[-1][:2], part[-1], atol=1e-4)  # batch statistics
    enc.eval()
    full, _ = enc(x)
    part, _ = enc(x[:2])
    assert torch.allclose(full[-1][:2], part[-1], atol=1e-5)  # running statistics
    gn = ResNetEncoder.from_name("tiny", norm="group").train()
    assert torch.allclose(gn(x)[1][:2], gn(x[:2])[1], atol=1e-5)  # group norm: per sample in both modes


def test_kaiming_init_statistics():
    enc = ResNetEncoder()
    conv = enc.stages[3][0].conv2  # 256 -> 256, 3x3
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (256 * 9)), rel=0.05)
    xav = ResNetEncoder(init="xavier")
    w = xav.stages[3][0].conv2.weight
    assert w.std().item() == pytest.approx(math.sqrt(2 / (2 * 256 * 9)), rel=0.05)


def test_zero_init_residual_starts_as_shortcut():
    blk = BasicBlock(8, 8, zero_init_residual=True).eval()
    x = torch.randn(2, 8, 5, 5)
    assert torch.allclose(blk(x), torch.relu(x))
    enc = ResNetEncoder.from_name("tiny", zero_init_residual=True)
    assert all(torch.count_nonzero(s[0].norm2.weight) == 0 for s in enc.stages)
    nonorm = BasicBlock(8, 8, norm="none", zero_init_residual=True)
    assert torch.allclose(nonorm(x), torch.relu(x))


def test_conv2d_block():
    blk = Conv2dBlock(3, 5, 5, 2, norm="none", act="leaky_relu")
    assert blk[0].bias is not None
    assert blk(torch.randn(1, 3, 9, 10)).shape == (1, 5, 5, 5)
    assert Conv2dBlock(3, 5)[0].bias is None  # a norm follows: no bias


def test_bad_arguments():
    enc = ResNetEncoder.from_name("tiny")
    with pytest.raises(InvalidInputError, match="'images'.*4-D"):
        enc(torch.randn(3, 32, 32))
    with pytest.raises(InvalidInputError, match="'images'.*C=3"):
        enc(torch.randn(1, 4, 32, 32))
    with pytest.raises(InvalidInputError, match="'images'.*floating"):
        enc(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(InvalidInputError, match="'norm'"):
        ResNetEncoder(norm="batchnorm")
    with pytest.raises(InvalidInputError, match="'act'"):
        ResNetEncoder(act="swish")
    with pytest.raises(InvalidInputError, match="'name'"):
        ResNetEncoder.from_name("resnet101")
    with pytest.raises(InvalidInputError, match="'depths'"):
        ResNetEncoder(widths=(8, 16), depths=(1,))
    with pytest.raises(InvalidInputError, match="'widths'"):
        ResNetEncoder(widths=())
    with pytest.raises(InvalidInputError, match="'block'"):
        ResNetEncoder(block="dense")
    with pytest.raises(InvalidInputError, match="'stem_stride'"):
        ResNetEncoder(stem_stride=4)
    with pytest.raises(InvalidInputError, match="'kernel_size'"):
        Conv2dBlock(3, 4, 2)
    with pytest.raises(InvalidInputError, match="'x'.*C=8"):
        BasicBlock(8, 8)(torch.randn(1, 3, 4, 4))
