"""Tests of geomgen.nn.decoder2d: UNetDecoder2d over a ResNetEncoder pyramid."""

from __future__ import annotations

import pytest
import torch

from geomgen.errors import InvalidInputError
from geomgen.nn.decoder2d import UPSAMPLE_MODES, UNetDecoder2d
from geomgen.nn.image_encoder import ResNetEncoder


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _pyramid(n=2, chans=(4, 6, 8), size=(16, 16), dtype=torch.float32):
    h, w = size
    return [torch.randn(n, c, -(-h // 2 ** (i + 1)), -(-w // 2 ** (i + 1)), dtype=dtype) for i, c in enumerate(chans)]


@pytest.mark.parametrize("upsample", UPSAMPLE_MODES)
def test_shapes_over_a_resnet_pyramid(upsample):
    enc = ResNetEncoder.from_name("tiny")
    dec = UNetDecoder2d.from_encoder(enc, 5, upsample=upsample)
    assert dec.widths == (64, 32, 16, 16) and dec.strides == (2, 4, 8, 16)
    x = torch.rand(2, 3, 64, 64)
    assert dec(enc(x).features).shape == (2, 5, 64, 64)
    # odd sizes: ceil-sized levels, output at the requested size
    x = torch.rand(1, 3, 37, 50)
    assert dec(enc(x).features, size=(37, 50)).shape == (1, 5, 37, 50)


def test_full_resolution_skip_and_custom_widths():
    dec = UNetDecoder2d((4, 6, 8), 1, widths=(5, 3, 7), skip_channels=3, depth=2, norm="group", act="leaky_relu")
    feats = _pyramid()
    img = torch.rand(2, 3, 16, 16)
    out = dec(feats, skip=img)
    assert out.shape == (2, 1, 16, 16)
    # the full-resolution skip reaches the output
    img2 = img.clone()
    img2[:, :, 8, 8] += 1.0
    assert not torch.allclose(dec(feats, skip=img2), out)


def test_skip_connections_are_used_and_local():
    """A change in the finest encoder map changes the output near that location only."""
    dec = UNetDecoder2d((4, 6, 8), 2, norm="none").eval()
    feats = _pyramid(n=1, size=(32, 32))
    out = dec(feats)
    f0 = [f.clone() for f in feats]
    f0[0][0, :, 2, 2] += 3.0  # level 0 (stride 2): pixel (2, 2) covers output pixels 4..5
    diff = (dec(f0) - out).abs().sum(1)[0]
    assert diff[3:7, 3:7].sum() > 0
    assert diff[12:, :].sum() == 0 and diff[:, 12:].sum() == 0


def test_backward_reaches_every_parameter():
    enc = ResNetEncoder.from_name("tiny")
    dec = UNetDecoder2d.from_encoder(enc, 2, upsample="transposed")
    out = dec(enc(torch.rand(2, 3, 32, 32)).features)
    out.square().mean().backward()
    for name, p in dec.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_gradcheck_float64():
    dec = UNetDecoder2d((2, 3), 1, widths=(2, 2), norm="none", upsample="bilinear").double()
    feats = [f.requires_grad_() for f in _pyramid(n=1, chans=(2, 3), size=(4, 4), dtype=torch.float64)]
    assert torch.autograd.gradcheck(lambda a, b: dec([a, b]), tuple(feats))


def test_parameter_count_of_the_tiny_default():
    dec = UNetDecoder2d.from_encoder(ResNetEncoder.from_name("tiny"), 2)
    assert sum(p.numel() for p in dec.parameters()) == 147_746  # stated in the module docstring


@pytest.mark.parametrize("kwargs, match", [
    ({"encoder_channels": []}, "encoder_channels"),
    ({"out_channels": 0}, "out_channels"),
    ({"widths": (4, 4)}, "widths"),
    ({"strides": (2, 4)}, "strides"),
    ({"strides": (2, 6, 8)}, "strides"),
    ({"upsample": "cubic"}, "upsample"),
    ({"depth": 0}, "depth"),
    ({"norm": "weird"}, "norm"),
    ({"act": "weird"}, "act"),
])
def test_bad_constructor_arguments(kwargs, match):
    args = {"encoder_channels": (4, 6, 8), "out_channels": 1, **kwargs}
    with pytest.raises(InvalidInputError, match=match):
        UNetDecoder2d(**args)


def test_bad_forward_arguments():
    dec = UNetDecoder2d((4, 6, 8), 1)
    feats = _pyramid()
    with pytest.raises(InvalidInputError, match="features"):
        dec(feats[:2])
    with pytest.raises(InvalidInputError, match="features"):
        dec(torch.rand(2, 4, 8, 8))
    with pytest.raises(InvalidInputError, match=r"features\[1\]"):
        dec([feats[0], torch.rand(2, 5, 4, 4), feats[2]])
    with pytest.raises(InvalidInputError, match="size"):
        dec(feats, size=(16,))
    with pytest.raises(InvalidInputError, match="skip"):
        dec(feats, skip=torch.rand(2, 3, 16, 16))
    with pytest.raises(InvalidInputError, match="encoder"):
        UNetDecoder2d.from_encoder(object(), 1)
    dec = UNetDecoder2d((4, 6, 8), 1, skip_channels=3)
    with pytest.raises(InvalidInputError, match="skip"):
        dec(feats)
    with pytest.raises(InvalidInputError, match="skip"):
        dec(feats, skip=torch.rand(2, 3, 8, 8))
