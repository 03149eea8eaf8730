"""Tests of geomgen.io.images: load_image, save_image, colorize_depth, image_grid."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import torch
from PIL import Image

from geomgen.errors import FileFormatError, InvalidInputError, MeshFileNotFoundError
from geomgen.io import colorize_depth, image_grid, load_image, save_image
from geomgen.io.images import _build_depth_colormap

RNG = np.random.default_rng(0)


def rand_u8(*shape):
    return RNG.integers(0, 256, size=shape, dtype=np.uint8)


def chw(a_hwc_u8):
    """uint8 (H, W, C) -> float32 (C, H, W) / 255."""
    return torch.from_numpy(a_hwc_u8).permute(2, 0, 1).float() / 255


def srgb_luminance(rgb):
    """Relative luminance of sRGB colours (..., 3)."""
    rgb = np.asarray(rgb, dtype=np.float64)
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    return lin @ np.array([0.2126, 0.7152, 0.0722])


# --------------------------------------------------------------------------- round trips


def test_png_round_trip_is_exact_for_uint8(tmp_path):
    a = rand_u8(7, 9, 3)
    out = save_image(tmp_path / "a.png", a)
    assert out == tmp_path / "a.png" and out.is_file()
    got = load_image(out)
    assert got.dtype == torch.float32 and got.shape == (3, 7, 9)
    assert torch.equal(got, chw(a))
    # the same pixels from a CHW uint8 tensor
    save_image(tmp_path / "b.png", torch.from_numpy(a).permute(2, 0, 1))
    assert torch.equal(load_image(tmp_path / "b.png"), chw(a))
    # no temporary files are left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]


def test_png_round_trip_rgba_grey_and_16_bit(tmp_path):
    rgba = rand_u8(5, 6, 4)
    save_image(tmp_path / "rgba.png", rgba)
    rgb, alpha = load_image(tmp_path / "rgba.png", return_alpha=True, background=(0.0, 0.5, 1.0))
    a = torch.from_numpy(rgba[..., 3]).float() / 255
    assert torch.equal(alpha, a)
    bg = torch.tensor([0.0, 0.5, 1.0])[:, None, None]
    torch.testing.assert_close(rgb, chw(rgba[..., :3]) * a + bg * (1 - a))
    grey = rand_u8(4, 3)
    save_image(tmp_path / "g.png", grey)
    assert Image.open(tmp_path / "g.png").mode == "L"
    assert torch.equal(load_image(tmp_path / "g.png"), torch.from_numpy(grey).float().div(255).expand(3, -1, -1))
    deep = RNG.integers(0, 65536, size=(4, 5), dtype=np.uint16)
    save_image(tmp_path / "d.png", deep)
    want = torch.from_numpy(deep.astype(np.float32) / 65535).expand(3, -1, -1)
    assert torch.equal(load_image(tmp_path / "d.png"), want)


def test_float_images_are_rounded_to_8_bits(tmp_path):
    x = torch.rand(3, 6, 5, generator=torch.Generator().manual_seed(0))
    save_image(tmp_path / "f.png", x)
    got = load_image(tmp_path / "f.png")
    assert torch.equal(got, (x * 255).round() / 255)
    smooth = torch.stack(torch.meshgrid(torch.linspace(0, 1, 16), torch.linspace(0.2, 0.8, 24), indexing="ij"))
    smooth = torch.cat([smooth, smooth[:1].flip(1)])
    save_image(tmp_path / "f.jpg", smooth)  # lossy, but close on a smooth image
    assert (load_image(tmp_path / "f.jpg") - smooth).abs().max() < 0.03
    save_image(tmp_path / "mask.png", torch.tensor([[True, False], [False, True]]))
    assert load_image(tmp_path / "mask.png")[0].tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_save_replaces_existing_file_atomically(tmp_path, monkeypatch):
    target = tmp_path / "x.png"
    save_image(target, rand_u8(3, 3, 3))
    before = target.read_bytes()

    def broken_save(self, fp, *a, **k):
        with open(fp, "wb") as fh:
            fh.write(b"\x89PNG partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_image(target, rand_u8(3, 3, 3))
    assert target.read_bytes() == before  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]  # and the partial temp file is gone


# --------------------------------------------------------------------------- input forms


@pytest.mark.parametrize(
    "mode, make, want",
    [
        ("L", lambda a: Image.fromarray(a[..., 0]), lambda a: chw(a[..., :1]).expand(3, -1, -1)),
        ("RGB", lambda a: Image.fromarray(a[..., :3]), lambda a: chw(a[..., :3])),
        ("1", lambda a: Image.fromarray(a[..., 0] > 127),
         lambda a: chw((a[..., :1] > 127) * np.uint8(255)).expand(3, -1, -1)),
        ("CMYK", lambda a: Image.fromarray(a[..., :3]).convert("CMYK"), lambda a: chw(a[..., :3])),
    ],
)
def test_pil_modes_without_alpha(mode, make, want):
    a = rand_u8(4, 5, 4)
    img = make(a)
    assert img.mode == mode
    assert torch.equal(load_image(img), want(a))


def test_pil_modes_with_alpha_palette_16_bit_and_float():
    a = rand_u8(4, 5, 4)
    white = torch.ones(3, 1, 1)
    # RGBA and LA composite over the background
    rgb, alpha = load_image(Image.fromarray(a), return_alpha=True)
    al = torch.from_numpy(a[..., 3]).float() / 255
    torch.testing.assert_close(rgb, chw(a[..., :3]) * al + white * (1 - al))
    assert torch.equal(alpha, al)
    la = Image.fromarray(np.ascontiguousarray(a[..., [0, 3]]))
    assert la.mode == "LA"
    rgb, alpha = load_image(la, return_alpha=True, background=0.0)
    assert torch.equal(alpha, al)
    torch.testing.assert_close(rgb, (chw(a[..., :1]) * al).expand(3, -1, -1))
    # a palette image with a transparent index
    p = Image.new("P", (2, 1))
    p.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    p.putpixel((0, 0), 0)
    p.putpixel((1, 0), 1)
    p.info["transparency"] = 1
    rgb, alpha = load_image(p, return_alpha=True, background=(0.0, 1.0, 0.0))
    assert rgb[:, 0, 0].tolist() == [1.0, 0.0, 0.0] and rgb[:, 0, 1].tolist() == [0.0, 1.0, 0.0]
    assert alpha[0].tolist() == [1.0, 0.0]
    # 16-bit grey
    d = RNG.integers(0, 65536, size=(3, 4), dtype=np.uint16)
    img16 = Image.fromarray(d)
    assert img16.mode.startswith("I;16")
    assert torch.equal(load_image(img16)[0], torch.from_numpy(d.astype(np.float32) / 65535))
    # 32-bit ints within 16 bits (how some Pillow versions read 16-bit PNGs), and floats
    assert torch.equal(load_image(Image.fromarray(d.astype(np.int32)))[1], torch.from_numpy(d / 65535).float())
    f = RNG.random((3, 4)).astype(np.float32)
    assert torch.equal(load_image(Image.fromarray(f))[2], torch.from_numpy(f))


def test_numpy_arrays():
    a = rand_u8(4, 6, 4)
    assert torch.equal(load_image(a[..., :3]), chw(a[..., :3]))
    assert torch.equal(load_image(a[..., 0]), chw(a[..., :1]).expand(3, -1, -1))
    assert torch.equal(load_image(a[..., :1]), chw(a[..., :1]).expand(3, -1, -1))
    rgb, alpha = load_image(a, return_alpha=True)
    assert torch.equal(alpha, torch.from_numpy(a[..., 3]).float() / 255)
    f = a[..., :3].astype(np.float64) / 255
    torch.testing.assert_close(load_image(f), chw(a[..., :3]))
    d = RNG.integers(0, 65536, size=(4, 6, 3), dtype=np.uint16)
    torch.testing.assert_close(load_image(d), torch.from_numpy(d.astype(np.float32) / 65535).permute(2, 0, 1))
    assert load_image(np.eye(3, dtype=bool))[0].tolist() == np.eye(3).tolist()
    # channels-first arrays are read as such when only the first axis can hold channels
    assert torch.equal(load_image(np.ascontiguousarray(a[..., :3].transpose(2, 0, 1))), chw(a[..., :3]))
    # non-contiguous views work
    assert torch.equal(load_image(a[::-1, :, :3]), chw(np.ascontiguousarray(a[::-1, :, :3])))


def test_torch_tensors_and_the_layout_rule():
    a = rand_u8(5, 7, 3)
    t = torch.from_numpy(a)
    assert torch.equal(load_image(t.permute(2, 0, 1)), chw(a))  # CHW uint8
    assert torch.equal(load_image(t), chw(a))  # HWC: only the last axis can hold channels
    assert torch.equal(load_image(t[..., 0]), chw(a[..., :1]).expand(3, -1, -1))
    x = torch.rand(4, 6, 5, dtype=torch.float64)
    rgb, alpha = load_image(x, return_alpha=True, background=0.0)
    torch.testing.assert_close(rgb, (x[:3] * x[3]).float())
    assert load_image(x.half()[:1]).shape == (3, 6, 5)
    # ambiguous (3, 5, 4): tensors are channels-first, arrays channels-last
    amb = rand_u8(3, 5, 4)
    assert load_image(torch.from_numpy(amb)).shape == (3, 5, 4)
    assert load_image(amb).shape == (3, 3, 5)


def test_resize():
    a = rand_u8(8, 12, 3)
    assert load_image(a, size=4).shape == (3, 4, 4)
    assert load_image(a, size=(6, 10)).shape == (3, 6, 10)  # (H, W), unlike PIL
    assert torch.equal(load_image(a, size=(8, 12)), chw(a))  # same size: untouched
    rgb, alpha = load_image(rand_u8(8, 12, 4), size=(16, 24), return_alpha=True)
    assert rgb.shape == (3, 16, 24) and alpha.shape == (16, 24)
    assert 0 <= float(rgb.min()) and float(rgb.max()) <= 1
    # antialiased shrink: a 1-pixel checkerboard becomes flat grey, not a moire of 0 and 1
    cb = ((np.indices((64, 64)).sum(0) % 2) * 255).astype(np.uint8)
    small = load_image(cb, size=(16, 16))
    assert abs(float(small.mean()) - 0.5) < 0.02 and float(small.std()) < 0.05


# --------------------------------------------------------------------------- errors


def test_file_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.png"
    with pytest.raises(MeshFileNotFoundError, match="nope.png"):
        load_image(missing)
    with pytest.raises(MeshFileNotFoundError, match="directory"):
        load_image(tmp_path)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(FileFormatError, match="empty.png"):
        load_image(empty)
    text = tmp_path / "text.png"
    text.write_text("not an image")
    with pytest.raises(FileFormatError, match="text.png"):
        load_image(str(text))
    # a truncated PNG: the header parses, the pixel data does not
    buf = io.BytesIO()
    Image.fromarray(rand_u8(64, 64, 3)).save(buf, format="PNG")
    trunc = tmp_path / "trunc.png"
    trunc.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(FileFormatError, match="trunc.png") as info:
        load_image(trunc)
    assert "truncated" in str(info.value)
    # save: a missing folder is an error naming it (folders are not created)
    with pytest.raises(MeshFileNotFoundError, match="no_such_dir"):
        save_image(tmp_path / "no_such_dir" / "x.png", rand_u8(2, 2, 3))
    with pytest.raises(FileFormatError, match="'.gif'"):
        save_image(tmp_path / "x.gif", rand_u8(2, 2, 3))
    with pytest.raises(InvalidInputError, match="JPEG"):
        save_image(tmp_path / "x.jpg", rand_u8(2, 2, 4))
    with pytest.raises(InvalidInputError, match="JPEG"):
        save_image(tmp_path / "x.jpg", np.zeros((2, 2), np.uint16))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.png", "text.png", "trunc.png"]


@pytest.mark.parametrize(
    "image, kwargs, words",
    [
        (np.zeros((4, 4, 2), np.uint8), {}, ["'image'", "2-channel"]),
        (np.zeros((6, 4, 5), np.uint8), {}, ["'image'", "(6, 4, 5)"]),
        (torch.zeros(6, 4, 2), {}, ["'image'", "(6, 4, 2)"]),
        (torch.zeros(2, 4, 4), {}, ["'image'", "2-channel"]),
        (np.zeros((0, 4, 3), np.uint8), {}, ["'image'", "empty"]),
        (torch.zeros(3, 4, 0), {}, ["'image'", "empty"]),
        (np.zeros((1, 4, 4, 3), np.uint8), {}, ["'image'", "(1, 4, 4, 3)"]),
        (np.full((2, 2, 3), 1.5), {}, ["'image'", "[0, 1]", "255"]),
        (torch.tensor([[0.5, float("nan")]]), {}, ["'image'", "not finite"]),
        (np.zeros((2, 2), np.int64), {}, ["'image'", "int64"]),
        (torch.zeros(2, 2, dtype=torch.int32), {}, ["'image'", "int32"]),
        ([[0.0, 1.0]], {}, ["'image'", "list"]),
        (np.zeros((2, 2)), {"size": 0}, ["'size'"]),
        (np.zeros((2, 2)), {"size": (2, 2, 2)}, ["'size'"]),
        (np.zeros((2, 2)), {"background": (1.0, 0.0)}, ["'background'"]),
        (np.zeros((2, 2)), {"background": 2.0}, ["'background'", "[0, 1]"]),
        (np.zeros((2, 2)), {"return_alpha": 1}, ["'return_alpha'"]),
    ],
)
def test_load_validation_errors(image, kwargs, words):
    with pytest.raises(InvalidInputError) as info:
        load_image(image, **kwargs)
    msg = str(info.value)
    assert msg.startswith("load_image:"), msg
    for w in words:
        assert w in msg, msg


def test_save_validation_errors(tmp_path):
    for bad, word in [
        (np.full((2, 2, 3), -0.1), "[0, 1]"),
        (np.zeros((2, 2, 2), np.uint8), "2-channel"),
        (np.zeros((2, 2, 3), np.uint16), "16 bits"),
        ("pixels", "str"),
    ]:
        with pytest.raises(InvalidInputError, match="save_image") as info:
            save_image(tmp_path / "x.png", bad)
        assert word in str(info.value), info.value
    assert not any(tmp_path.iterdir())


# --------------------------------------------------------------------------- colorize_depth


def test_colormap_is_perceptually_ordered():
    cmap = _build_depth_colormap(256)
    assert cmap.min() >= 0 and cmap.max() <= 1
    lum = srgb_luminance(cmap)
    assert (np.diff(lum) > 0).all()  # brighter at every step
    assert lum[0] < 0.05 and lum[-1] > 0.8
    assert np.ptp(cmap[128]) > 0.3  # a colour ramp, not grey


def test_colorize_depth_near_bright_far_dark_background_white():
    d = torch.zeros(4, 6)
    d[1:3, 1:5] = torch.tensor([1.0, 2.0, 3.0, 4.0])  # depth grows to the right
    out = colorize_depth(d)
    assert out.shape == (3, 4, 6) and out.dtype == torch.float32
    assert torch.equal(out[:, 0], torch.ones(3, 6)) and torch.equal(out[:, :, 0], torch.ones(3, 4))
    lum = srgb_luminance(out[:, 1, 1:5].T.numpy())
    assert (np.diff(lum) < 0).all()  # farther is darker
    cmap = _build_depth_colormap(256)
    torch.testing.assert_close(out[:, 1, 1], torch.from_numpy(cmap[-1]))  # nearest = brightest end
    torch.testing.assert_close(out[:, 1, 4], torch.from_numpy(cmap[0]))  # farthest = darkest end
    # a shared scale: near/far clamp; a mask picks the pixels; another background
    out2 = colorize_depth(d, near=0.0, far=8.0, background=(0.0, 0.0, 0.0))
    assert torch.equal(out2[:, 0, 0], torch.zeros(3))
    assert srgb_luminance(out2[:, 1, 1].numpy()) < srgb_luminance(out[:, 1, 1].numpy())
    mask = d > 2.5
    out3 = colorize_depth(d, mask)
    assert torch.equal(out3[:, 1, 1], torch.ones(3)) and not torch.equal(out3[:, 1, 3], torch.ones(3))
    # constant depth maps to the brightest colour; no valid pixel gives the background
    torch.testing.assert_close(colorize_depth(torch.full((2, 2), 3.0))[:, 0, 0], torch.from_numpy(cmap[-1]))
    assert torch.equal(colorize_depth(torch.zeros(2, 3)), torch.ones(3, 2, 3))
    # NumPy depth and mask
    assert torch.equal(colorize_depth(d.numpy(), mask.numpy()), out3)


def test_colorize_depth_errors():
    d = torch.rand(3, 3) + 1
    for kwargs, word in [
        ({"depth": torch.rand(1, 3, 3)}, "'depth'"),
        ({"depth": torch.ones(3, 3, dtype=torch.bool)}, "'depth'"),
        ({"depth": d, "mask": torch.ones(3, 3)}, "'mask'"),
        ({"depth": d, "mask": torch.ones(2, 3, dtype=torch.bool)}, "'mask'"),
        ({"depth": torch.tensor([[1.0, float("nan")]]), "mask": torch.ones(1, 2, dtype=torch.bool)}, "finite"),
        ({"depth": d, "near": 2.0, "far": 1.0}, "'far'"),
        ({"depth": d, "near": float("inf")}, "'near'"),
        ({"depth": d, "background": (1, 2, 3)}, "'background'"),
    ]:
        with pytest.raises(InvalidInputError, match="colorize_depth") as info:
            colorize_depth(**kwargs)
        assert word in str(info.value), info.value


# --------------------------------------------------------------------------- image_grid


def test_grid_geometry_and_placement():
    H, W, pad = 4, 6, 2
    imgs = [torch.full((3, H, W), i / 10) for i in range(5)]
    sheet = image_grid(imgs, 3, padding=pad, background=(1.0, 0.0, 1.0))
    assert sheet.shape == (3, 2 * H + 3 * pad, 3 * W + 4 * pad)
    for i in range(5):
        r, c = divmod(i, 3)
        y, x = pad + r * (H + pad), pad + c * (W + pad)
        assert torch.equal(sheet[:, y : y + H, x : x + W], imgs[i])
    bg = torch.tensor([1.0, 0.0, 1.0])[:, None]
    assert torch.equal(sheet[:, 0, :], bg.expand(3, sheet.shape[2]))  # top padding
    assert torch.equal(sheet[:, pad + H, :], bg.expand(3, sheet.shape[2]))  # between rows
    last = sheet[:, pad + H + pad :, pad + 2 * (W + pad) :][:, :H, :W]  # the empty 6th slot
    assert torch.equal(last, bg[:, :, None].expand(3, H, W))
    # defaults, a batch tensor, uint8 and grey tiles, ncols beyond B
    batch = torch.rand(4, 3, H, W)
    assert image_grid(batch).shape == (3, 2 * H + 3 * 2, 2 * W + 3 * 2)
    u8 = (batch[0] * 255).round().to(torch.uint8)
    grey = batch[0, 0]
    s = image_grid([u8, grey, grey[None]], ncols=10, padding=0)
    assert s.shape == (3, H, 3 * W)
    assert torch.equal(s[:, :, W : 2 * W], grey.expand(3, -1, -1))
    torch.testing.assert_close(s[:, :, :W], u8.float() / 255)


def test_grid_labels():
    H, W, pad = 20, 80, 3
    imgs = [torch.full((3, H, W), 0.5) for _ in range(4)]
    plain = image_grid(imgs, 2, padding=pad)
    sheet = image_grid(imgs, 2, padding=pad, labels=["chair 0", "", "a very long label that cannot fit", "x"])
    band = (sheet.shape[1] - plain.shape[1]) // 2
    assert sheet.shape[2] == plain.shape[2] and 8 <= band <= 40
    assert sheet.shape[1] == 2 * (H + band) + 3 * pad
    # tiles stay in place above their bands; text is dark ink on the white band
    assert torch.equal(sheet[:, pad : pad + H, pad : pad + W], imgs[0])
    band0 = sheet[:, pad + H : pad + H + band, pad : pad + W]
    band1 = sheet[:, pad + H : pad + H + band, 2 * pad + W : 2 * pad + 2 * W]
    assert float(band0.min()) < 0.3 and torch.equal(band1, torch.ones_like(band1))
    long = sheet[:, 2 * pad + 2 * H + band : 2 * pad + 2 * H + 2 * band, pad : pad + W]
    assert float(long.min()) < 0.3 and float(long[:, :, -2:].min()) == 1.0  # cut to fit, margin kept
    # above: the band comes first
    above = image_grid(imgs, 2, padding=pad, labels=["a", "b", "c", "d"], label_position="above")
    assert torch.equal(above[:, pad + band : pad + band + H, pad : pad + W], imgs[0])
    assert float(above[:, pad : pad + band, pad : pad + W].min()) < 0.3
    # white ink on a dark background
    dark = image_grid(imgs, 2, labels=["a", "b", "c", "d"], background=0.0)
    assert float(dark[:, 2 + H : 2 + H + band, 2 : 2 + W].max()) > 0.7


@pytest.mark.parametrize(
    "images, kwargs, words",
    [
        ([], {}, ["'images'", "empty"]),
        ([torch.rand(3, 4, 5), torch.rand(3, 4, 6)], {}, ["'images'", "images[1]", "4x6"]),
        ([torch.rand(3, 4, 5), torch.rand(2, 4, 5)], {}, ["'images[1]'"]),
        ([torch.rand(3, 4, 5) * 2], {}, ["'images[0]'", "[0, 1]"]),
        ([np.zeros((4, 5, 3))], {}, ["'images[0]'", "ndarray"]),
        (torch.rand(3, 4, 5), {}, ["'images'", "(3, 4, 5)"]),
        ([torch.rand(3, 4, 5)], {"ncols": 0}, ["'ncols'"]),
        ([torch.rand(3, 4, 5)], {"padding": -1}, ["'padding'"]),
        ([torch.rand(3, 4, 5)] * 2, {"labels": ["a"]}, ["'labels'", "2 strings"]),
        ([torch.rand(3, 4, 5)], {"labels": "a"}, ["'labels'"]),
        ([torch.rand(3, 4, 5)], {"labels": [3]}, ["'labels'", "int"]),
        ([torch.rand(3, 4, 5)], {"label_position": "left"}, ["'label_position'"]),
        ([torch.rand(3, 4, 5)], {"background": -1.0}, ["'background'"]),
    ],
)
def test_grid_errors(images, kwargs, words):
    with pytest.raises(InvalidInputError) as info:
        image_grid(images, **kwargs)
    msg = str(info.value)
    assert msg.startswith("image_grid:"), msg
    for w in words:
        assert w in msg, msg


def test_exports_and_sheet_save(tmp_path):
    import geomgen.io as gio

    for name in ("load_image", "save_image", "colorize_depth", "image_grid"):
        assert name in gio.__all__ and callable(getattr(gio, name))
    sheet = image_grid([colorize_depth(torch.rand(8, 8) + 1)] * 3, labels=["a", "b", "c"])
    path = save_image(tmp_path / "sheet.png", sheet)
    assert torch.equal(load_image(path), (sheet * 255).round() / 255)
    assert os.path.getsize(path) > 0
