"""Tests of geomgen.nn.conv3d: 3-D blocks, VoxelDecoder and VoxelEncoder."""

from __future__ import annotations

import math

import pytest
import torch

from geomgen.errors import InvalidInputError
from geomgen.nn.conv3d import Conv3dBlock, Down3d, ResBlock3d, Up3d, VoxelDecoder, VoxelEncoder


def nparams(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_conv3d_block_shapes():
    x = torch.randn(2, 3, 5, 6, 7)
    assert Conv3dBlock(3, 4)(x).shape == (2, 4, 5, 6, 7)
    assert Conv3dBlock(3, 4, 3, 2, norm="group")(x).shape == (2, 4, 3, 3, 4)
    assert Conv3dBlock(3, 4, 1, norm="instance", act="none")(x).shape == (2, 4, 5, 6, 7)
    assert Conv3dBlock(3, 4, norm="none")[0].bias is not None
    assert Conv3dBlock(3, 4)[0].bias is None


def test_resblock3d():
    x = torch.randn(2, 4, 5, 3, 4)
    blk = ResBlock3d(4)
    assert isinstance(blk.shortcut, torch.nn.Identity)
    assert blk(x).shape == x.shape
    proj = ResBlock3d(4, 6, 2, norm="group", groups=2)
    assert proj(x).shape == (2, 6, 3, 2, 2)
    z = ResBlock3d(4, zero_init_residual=True).eval()
    assert torch.allclose(z(x), torch.relu(x))
    zn = ResBlock3d(4, norm="none", zero_init_residual=True)
    assert torch.allclose(zn(x), torch.relu(x))


@pytest.mark.parametrize("mode", ["conv", "pool", "res"])
def test_down3d_rounds_up(mode):
    x = torch.randn(2, 3, 5, 8, 1)
    assert Down3d(3, 6, mode=mode)(x).shape == (2, 6, 3, 4, 1)


@pytest.mark.parametrize("mode", ["transpose", "trilinear", "nearest"])
def test_up3d_doubles(mode):
    x = torch.randn(2, 6, 3, 4, 1)
    assert Up3d(6, 3, mode=mode)(x).shape == (2, 3, 6, 8, 2)


def test_voxel_decoder_default():
    dec = VoxelDecoder()
    assert nparams(dec) == 696_777  # reported in the docstring
    assert dec.channels == (64, 32, 16, 8)
    z = torch.randn(2, 128, requires_grad=True)
    y = dec(z)
    assert y.shape == (2, 1, 32, 32, 32)
    y.square().mean().backward()
    assert all(p.grad is not None for p in dec.parameters())
    assert z.grad is not None and z.grad.abs().sum() > 0


def test_voxel_decoder_configurations():
    dec = VoxelDecoder(16, 3, 16, channels=(12, 6), start_resolution=8, up_mode="trilinear",
                       blocks_per_level=2, norm="group", groups=3, act="leaky_relu")
    assert dec(torch.randn(2, 16)).shape == (2, 3, 16, 16, 16)
    same = VoxelDecoder(8, resolution=4, start_resolution=4, norm="none")  # no up-sampling at all
    assert same.channels == (64,) and same(torch.randn(1, 8)).shape == (1, 1, 4, 4, 4)
    dec = VoxelDecoder(8, resolution=48, start_resolution=3)
    assert dec.channels == (64, 32, 16, 8, 8)
    assert dec.eval()(torch.randn(1, 8)).shape == (1, 1, 48, 48, 48)


def test_voxel_decoder_train_eval():
    dec = VoxelDecoder(8, resolution=8, start_resolution=4)
    z = torch.randn(4, 8)
    dec.train()
    assert not torch.allclose(dec(z)[:1], dec(z[:1].repeat(2, 1))[:1], atol=1e-4)
    dec.eval()
    assert torch.allclose(dec(z)[:1], dec(z[:1]), atol=1e-5)


def test_voxel_encoder():
    enc = VoxelEncoder()
    assert nparams(enc) == 81_352  # reported in the docstring
    g = torch.rand(2, 1, 32, 32, 32, requires_grad=True)
    h = enc(g)
    assert h.shape == (2, 128)
    h.sum().backward()
    assert all(p.grad is not None for p in enc.parameters()) and g.grad is not None
    assert enc(torch.rand(2, 1, 7, 9, 5)).shape == (2, 128)  # pooling takes any size
    assert VoxelEncoder(2, 5, pool="max", down_mode="pool")(torch.rand(3, 2, 9, 9, 9)).shape == (3, 5)
    flat = VoxelEncoder(out_dim=4, channels=(4, 8), pool="flatten", resolution=9, norm="none", act="leaky_relu")
    assert flat.fc.in_features == 8 * 5**3
    assert flat(torch.rand(2, 1, 9, 9, 9)).shape == (2, 4)
    with pytest.raises(InvalidInputError, match="'grid'.*\\(9, 9, 9\\)"):
        flat(torch.rand(2, 1, 8, 8, 8))


def test_kaiming_statistics():
    dec = VoxelDecoder(channels=(64, 64, 32, 8))
    w = dec.ups[0].body[0].weight  # ConvTranspose3d(64, 64, 4): torch's fan_in = 64 * 4^3
    assert w.std().item() == pytest.approx(math.sqrt(2 / (64 * 64)), rel=0.05)
    enc = VoxelEncoder(channels=(32, 64))
    w = enc.body[1].body[0].weight  # Conv3d(32, 64, 3)
    assert w.std().item() == pytest.approx(math.sqrt(2 / (32 * 27)), rel=0.05)


def test_bad_arguments():
    with pytest.raises(InvalidInputError, match="'resolution'"):
        VoxelDecoder(resolution=24)
    with pytest.raises(InvalidInputError, match="'channels'.*4 entries"):
        VoxelDecoder(channels=(32, 16))
    with pytest.raises(InvalidInputError, match="'z'"):
        VoxelDecoder()(torch.randn(2, 64))
    with pytest.raises(InvalidInputError, match="'z'"):
        VoxelDecoder()(torch.randn(2, 128, 1))
    with pytest.raises(InvalidInputError, match="'norm'"):
        VoxelDecoder(norm="batch3d")
    with pytest.raises(InvalidInputError, match="'up_mode'|'mode'"):
        VoxelDecoder(up_mode="bicubic")
    with pytest.raises(InvalidInputError, match="'grid'.*C=1"):
        VoxelEncoder()(torch.rand(2, 2, 8, 8, 8))
    with pytest.raises(InvalidInputError, match="'grid'.*5-D"):
        VoxelEncoder()(torch.rand(2, 8, 8, 8))
    with pytest.raises(InvalidInputError, match="'resolution'"):
        VoxelEncoder(pool="flatten")
    with pytest.raises(InvalidInputError, match="'x'.*C=3"):
        Conv3dBlock(3, 4)(torch.randn(1, 4, 2, 2, 2))
    with pytest.raises(InvalidInputError, match="'x'"):
        Up3d(3, 4)(torch.randn(1, 3, 2, 2))
    with pytest.raises(InvalidInputError, match="'x'"):
        Down3d(3, 4)(torch.randn(1, 2, 2, 2, 2))
    with pytest.raises(InvalidInputError, match="'x'"):
        ResBlock3d(3)(torch.randn(1, 2, 2, 2, 2))
    with pytest.raises(InvalidInputError, match="'kernel_size'"):
        Conv3dBlock(3, 4, 4)
    with pytest.raises(InvalidInputError, match="'mode'"):
        Down3d(3, 4, mode="avg")
