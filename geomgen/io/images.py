"""Images: load (files, PIL images, arrays, tensors), save, colourize depth, contact sheets.

Conventions: images travel inside geomgen as float32 tensors ``(3, H, W)``
(channels first) with values in ``[0, 1]``, sRGB-encoded as stored in the
file (no gamma conversion); ``H`` rows, ``W`` columns.  Alpha is straight
(not premultiplied) and is composited over a background colour on loading.

Layout rule for 3-D inputs (``load_image``, ``save_image``): torch tensors
are channels-first ``(C, H, W)`` and NumPy arrays channels-last ``(H, W, C)``
-- each library's convention -- with ``C`` = 1 (grey), 3 (RGB) or 4 (RGBA).
When that axis cannot hold channels (its size is 5 or more) but the other
end can, the other layout is used, so an ``(H, W, 3)`` tensor or a ``(3, H,
W)`` array work too; an ambiguous ``(3, 5, 4)`` input follows its library's
convention.  A channel axis of size 2 (grey + alpha) is an error, as are
other shapes.  2-D inputs are grey ``(H, W)``.

Value rule: ``uint8`` is divided by 255, ``uint16`` by 65535, ``bool`` gives
0 / 1, and floating inputs must already lie in ``[0, 1]`` (anything else is
an error rather than a silent clip or rescale).  Other integer dtypes are
rejected: their range is ambiguous.

PIL is imported on first use, so ``import geomgen.io`` stays light.
"""

from __future__ import annotations

import math
import numbers
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geomgen import checks as V
from geomgen.errors import FileFormatError, InvalidInputError
from geomgen.io import _common as C

__all__ = ["load_image", "save_image", "colorize_depth", "image_grid", "IMAGE_SAVE_FORMATS"]

#: Extensions :func:`save_image` writes (PNG is lossless; JPEG is lossy and has no alpha).
IMAGE_SAVE_FORMATS: tuple[str, ...] = ("png", "jpg", "jpeg")

ImageLike = Any  # str | os.PathLike | PIL.Image.Image | numpy.ndarray | torch.Tensor


# ---------------------------------------------------------------------------
# argument parsing
# ---------------------------------------------------------------------------


def _parse_color(value: Any, name: str, fn: str) -> torch.Tensor:
    """A grey level or an RGB triple in [0, 1] -> (3,) float32 tensor."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        t = torch.full((3,), float(value), dtype=torch.float32)
    else:
        try:
            t = torch.as_tensor(value.detach().cpu() if isinstance(value, torch.Tensor) else value,
                                dtype=torch.float32).flatten()
        except (TypeError, ValueError, RuntimeError):
            raise V.fail(name, f"must be a number or an RGB triple in [0, 1], got {value!r}", fn) from None
        if t.numel() != 3:
            raise V.fail(name, f"must be a number or an RGB triple in [0, 1], got {value!r}", fn)
    if not bool(torch.isfinite(t).all()) or bool((t < 0).any()) or bool((t > 1).any()):
        raise V.fail(name, f"must lie in [0, 1], got {t.tolist()}", fn)
    return t


def _layout(shape: tuple[int, ...], channels_first: bool, fn: str, name: str) -> tuple[str, int]:
    """("chw" | "hwc" | "hw", channels) of an image array shape (see the module docstring)."""
    if len(shape) == 2:
        return "hw", 1
    if len(shape) != 3:
        raise V.fail(name, f"must be (H, W), (C, H, W) or (H, W, C) with C in 1, 3, 4; got shape {tuple(shape)}", fn)
    native, other = ("chw", "hwc") if channels_first else ("hwc", "chw")
    size = {"chw": shape[0], "hwc": shape[2]}
    if size[native] in (1, 3, 4):
        return native, size[native]
    if size[native] == 2:
        raise V.fail(name, f"has shape {tuple(shape)}: 2-channel (grey + alpha) arrays are not supported; "
                    "give grey (1), RGB (3) or RGBA (4) channels", fn)
    if size[other] in (1, 3, 4):
        return other, size[other]
    raise V.fail(name, f"has shape {tuple(shape)}: no channel axis of size 1, 3 or 4 (grey, RGB, RGBA) "
        f"{'first' if channels_first else 'last'} (or {'last' if channels_first else 'first'})", fn)


def _to_float_chw(
    x: torch.Tensor, fn: str, name: str, channels_first: bool, scale: float | None = None
) -> torch.Tensor:
    """Array/tensor image -> float32 (C, H, W) in [0, 1], C in (1, 3, 4).
    ``scale``: integer data to divide by (NumPy uint16 arrives as int32)."""
    kind, _ = _layout(tuple(x.shape), channels_first, fn, name)
    if kind == "hw":
        x = x[None]
    elif kind == "hwc":
        x = x.permute(2, 0, 1)
    if x.shape[1] == 0 or x.shape[2] == 0:
        raise V.fail(name, f"is empty (height {x.shape[1]}, width {x.shape[2]})", fn)
    dt = x.dtype
    if scale is not None:
        return x.to(torch.float32) / scale
    if dt == torch.uint8:
        return x.to(torch.float32) / 255.0
    if dt == torch.bool:
        return x.to(torch.float32)
    if dt == getattr(torch, "uint16", None):
        return x.to(torch.int32).to(torch.float32) / 65535.0
    if dt.is_floating_point:
        xf = x.to(torch.float32)
        bad = ~torch.isfinite(xf) | (xf < 0) | (xf > 1)
        if bool(bad.any()):
            vals = xf[torch.isfinite(xf)]
            rng = f"[{float(vals.min()):g}, {float(vals.max()):g}]" if vals.numel() else "no finite value"
            raise V.fail(name, f"has {int(bad.sum())} value(s) outside [0, 1] or not finite (range {rng}); "
                "floating images must lie in [0, 1] (divide 0..255 data by 255)", fn)
        return xf
    raise V.fail(name, f"has dtype {dt}; images must be uint8, uint16, bool or floating in [0, 1]", fn)


def _numpy_to_tensor(a: np.ndarray, fn: str, name: str) -> tuple[torch.Tensor, float | None]:
    """NumPy image -> (tensor, scale): uint16 goes through int32 (torch's
    uint16 support is partial) with scale 65535; other dtypes keep theirs."""
    if a.dtype == np.uint16:
        return torch.from_numpy(a.astype(np.int32)), 65535.0
    if a.dtype != np.uint8 and a.dtype.kind not in "bf":
        raise V.fail(name, f"has dtype {a.dtype}; images must be uint8, uint16, bool or floating in [0, 1]", fn)
    a = np.ascontiguousarray(a)
    return torch.from_numpy(a if a.flags.writeable else a.copy()), None


def _pil_to_chw(img: Any, fn: str, name: str) -> torch.Tensor:
    """PIL image of any mode -> float32 (C, H, W) in [0, 1], C in (1, 2, 3, 4)
    (2 = grey + alpha, from mode LA)."""
    mode = img.mode
    if mode in ("1", "L", "RGB", "RGBA", "LA"):
        pass
    elif mode in ("La",):
        img = img.convert("LA")
    elif mode in ("P", "PA", "RGBa"):
        img = img.convert("RGBA")
    elif mode.startswith("I;16"):
        a = np.array(img).astype(np.float32) / 65535.0
        return _nonempty(torch.from_numpy(a)[None], fn, name)
    elif mode == "I":  # 32-bit ints: 16-bit PNGs are read this way by some Pillow versions
        a = np.array(img)
        if a.size and (a.min() < 0 or a.max() > 65535):
            raise V.fail(name, "is a 32-bit integer image (mode 'I') with values outside 0..65535; "
                        "convert it to 8 or 16 bits first", fn)
        return _nonempty(torch.from_numpy(a.astype(np.float32) / 65535.0)[None], fn, name)
    elif mode == "F":
        return _to_float_chw(torch.from_numpy(np.array(img, dtype=np.float32)), fn, name, True)
    else:  # CMYK, YCbCr, LAB, HSV, RGBX, ...
        img = img.convert("RGB")
    a = np.array(img)  # a writable copy
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    if a.ndim == 2:
        a = a[:, :, None]
    t = torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).to(torch.float32) / 255.0
    return _nonempty(t, fn, name)


def _nonempty(t: torch.Tensor, fn: str, name: str) -> torch.Tensor:
    if t.shape[1] == 0 or t.shape[2] == 0:
        raise V.fail(name, f"is empty (height {t.shape[1]}, width {t.shape[2]})", fn)
    return t


def _is_pil(x: Any) -> bool:
    return any(c.__module__.startswith("PIL.") and c.__name__ == "Image" for c in type(x).__mro__)


def _open_file(path: Path, fn: str) -> torch.Tensor:
    from PIL import Image, UnidentifiedImageError

    C.check_readable_file(path, fn)
    try:
        with Image.open(path) as img:
            img.load()  # decode now: truncated or corrupt data fails here
            return _pil_to_chw(img, fn, "image")
    except (PermissionError, IsADirectoryError):
        raise
    except InvalidInputError as e:  # e.g. an empty or 32-bit image: about the file's contents
        raise FileFormatError(f"{fn}: cannot read '{path}': {e}") from e
    except UnidentifiedImageError:
        raise FileFormatError(f"{fn}: cannot read '{path}': not an image format Pillow recognises") from None
    except Exception as e:  # noqa: BLE001 - Pillow raises OSError, SyntaxError, ValueError, ...
        raise FileFormatError(
            f"{fn}: cannot read '{path}': corrupt or truncated image ({type(e).__name__}: {e})"
        ) from e


# ---------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------


def load_image(
    image: ImageLike,
    *,
    size: int | tuple[int, int] | None = None,
    background: float | Sequence[float] = (1.0, 1.0, 1.0),
    return_alpha: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Read an image into a ``(3, H, W)`` float32 tensor in ``[0, 1]``.

    Accepted inputs (see the module docstring for the layout and value rules):

    * a path (``str`` / ``os.PathLike``) to any format Pillow reads (PNG,
      JPEG, BMP, TIFF, WebP, ...), including 16-bit grey PNGs;
    * a ``PIL.Image.Image`` of any mode (``1``, ``L``, ``LA``, ``P``,
      ``RGB``, ``RGBA``, ``I;16``, ``I``, ``F``, ``CMYK``, ...);
    * a NumPy array ``(H, W)`` or ``(H, W, C)`` (``(C, H, W)`` when only the
      first axis can hold channels), ``C`` in 1, 3, 4;
    * a torch tensor ``(C, H, W)`` or ``(H, W, C)`` or ``(H, W)`` (kept on its
      device).

    Grey becomes 3 equal channels; alpha (RGBA, LA, palette transparency) is
    composited over ``background``: ``rgb * a + background * (1 - a)``.

    Args:
        image: the image, as above.
        size: resize to ``(H, W)`` (an int ``S`` means ``(S, S)``; note the
            order is rows, columns, unlike PIL's ``(W, H)``), bilinear with
            antialiasing when shrinking, after compositing (which equals
            resizing premultiplied colour).  ``None`` keeps the size.
        background: grey level or RGB triple in ``[0, 1]``.
        return_alpha: also return the alpha channel ``(H, W)`` float32 (ones
            for images without alpha), resized like the image.

    Returns:
        ``(3, H, W)`` float32 tensor in ``[0, 1]`` (CPU, or the input
        tensor's device), and the alpha ``(H, W)`` with ``return_alpha``.

    Raises:
        MeshFileNotFoundError: the path does not exist or is a directory.
        FileFormatError: the file is empty, not an image, truncated or corrupt
            (the message names the file).
        InvalidInputError: an unsupported type, shape, channel count (2, 5,
            ...), dtype or value range; an empty (0-pixel) image; bad
            ``size`` or ``background``.
    """
    fn = "load_image"
    out_size = None if size is None else V.check_image_size(size, "size", fn=fn)
    bg = _parse_color(background, "background", fn)
    if not isinstance(return_alpha, bool):
        raise V.fail("return_alpha", f"must be True or False, got {return_alpha!r}", fn)
    if isinstance(image, (str, os.PathLike)):
        chw = _open_file(C.as_path(image, fn, "image"), fn)
    elif _is_pil(image):
        chw = _pil_to_chw(image, fn, "image")
    elif isinstance(image, np.ndarray):
        t, scale = _numpy_to_tensor(image, fn, "image")
        chw = _to_float_chw(t, fn, "image", channels_first=False, scale=scale)
    elif isinstance(image, torch.Tensor):
        if image.is_complex():
            raise V.fail("image", f"has dtype {image.dtype}; images must be real", fn)
        chw = _to_float_chw(image.detach(), fn, "image", channels_first=True)
    else:
        raise V.fail("image", "must be a path, a PIL image, a NumPy array or a torch tensor, got "
                     f"{type(image).__name__}", fn)
    nc = chw.shape[0]
    if nc in (2, 4):
        color, alpha = chw[:-1], chw[-1]
    else:
        color, alpha = chw, torch.ones_like(chw[0])
    if color.shape[0] == 1:
        color = color.expand(3, -1, -1)
    bg = bg.to(color.device)
    rgb = color * alpha + bg[:, None, None] * (1.0 - alpha)
    if out_size is not None and tuple(rgb.shape[1:]) != out_size:
        both = torch.cat([rgb, alpha[None]], dim=0)[None]
        both = torch.nn.functional.interpolate(both, size=out_size, mode="bilinear", align_corners=False,
                                               antialias=True)[0].clamp(0.0, 1.0)
        rgb, alpha = both[:3], both[3]
    rgb = rgb.contiguous()
    return (rgb, alpha.contiguous()) if return_alpha else rgb


def save_image(path: C.PathLike, image: ImageLike) -> Path:
    """Write an image file (PNG, or JPEG at quality 95 without chroma subsampling), atomically.

    Args:
        path: file to create or overwrite; extension ``.png``, ``.jpg`` or
            ``.jpeg``.  Its folder must exist (it is not created: a typo in a
            folder name then fails loudly instead of scattering files).
        image: torch tensor or NumPy array ``(3, H, W)`` / ``(H, W, 3)`` (RGB),
            ``(4, H, W)`` / ``(H, W, 4)`` (RGBA, PNG only), ``(1, H, W)`` /
            ``(H, W, 1)`` / ``(H, W)`` (grey), with the layout rule of the module
            docstring; ``uint8`` (written as is), ``bool``, floating in
            ``[0, 1]`` (rounded to 8 bits), or ``uint16`` grey (a 16-bit PNG); or
            a PIL image (written as is).

    Returns:
        The path written (``~`` expanded).  The data goes to a temporary file
        in the same folder that is then renamed over ``path``, so readers never
        see a partial file.

    Raises:
        FileFormatError: unsupported extension.
        MeshFileNotFoundError: the folder of ``path`` does not exist.
        InvalidInputError: bad image type, shape, dtype or values; alpha or
            16 bits with JPEG.
    """
    from PIL import Image

    fn = "save_image"
    p = C.as_path(path, fn)
    fmt = C.file_format(p, IMAGE_SAVE_FORMATS, fn)
    C.check_writable_file(p, fn)
    pil_format = "PNG" if fmt == "png" else "JPEG"
    if _is_pil(image):
        img = image
    else:
        img = Image.fromarray(_to_hwc_array(image, fn))
    if pil_format == "JPEG" and img.mode not in ("L", "RGB"):
        raise V.fail("image", f"has mode {img.mode}; JPEG stores 8-bit grey or RGB only (save alpha or "
                    "16-bit images as PNG)", fn)
    tmp = p.with_name(f".{p.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        options = {"quality": 95, "subsampling": 0} if pil_format == "JPEG" else {}
        img.save(tmp, format=pil_format, **options)
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()
    return p


def _to_hwc_array(image: Any, fn: str) -> np.ndarray:
    """Tensor/array image -> uint8 (H, W), (H, W, 3|4) or uint16 (H, W) NumPy array."""
    if isinstance(image, torch.Tensor):
        if image.is_complex():
            raise V.fail("image", f"has dtype {image.dtype}; images must be real", fn)
        t = image.detach().cpu()
        is16 = t.dtype == getattr(torch, "uint16", None)
        if is16:
            t = t.to(torch.int32)
        channels_first = True
    elif isinstance(image, np.ndarray):
        t, scale = _numpy_to_tensor(image, fn, "image")
        is16 = scale is not None
        channels_first = False
    else:
        raise V.fail("image", f"must be a torch tensor, a NumPy array or a PIL image, got {type(image).__name__}", fn)
    kind, nc = _layout(tuple(t.shape), channels_first, fn, "image")
    if kind == "chw":
        t = t.permute(1, 2, 0)
    elif kind == "hw":
        t = t[:, :, None]
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise V.fail("image", f"is empty (height {t.shape[0]}, width {t.shape[1]})", fn)
    if is16:
        if nc != 1:
            raise V.fail("image", "is uint16 with colour channels; only grey images can be written with 16 bits", fn)
        return np.ascontiguousarray(t[:, :, 0].to(torch.int32).numpy().astype(np.uint16))
    if t.dtype == torch.uint8:
        a = t.numpy()
    else:
        a = (_to_float_chw(t.permute(2, 0, 1), fn, "image", True) * 255.0).round().to(torch.uint8)
        a = a.permute(1, 2, 0).numpy()
    a = np.ascontiguousarray(a)
    return a[:, :, 0] if nc == 1 else a


# ---------------------------------------------------------------------------
# depth colouring
# ---------------------------------------------------------------------------


def _oklab_to_srgb(L: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """OKLab -> gamma-encoded sRGB (..., 3), unclipped."""
    l_ = (L + 0.3963377774 * a + 0.2158037573 * b) ** 3
    m_ = (L - 0.1055613458 * a - 0.0638541728 * b) ** 3
    s_ = (L - 0.0894841775 * a - 1.2914855480 * b) ** 3
    r = 4.0767416621 * l_ - 3.3077115913 * m_ + 0.2309699292 * s_
    g = -1.2684380046 * l_ + 2.6097574011 * m_ - 0.3413193965 * s_
    bb = -0.0041960863 * l_ - 0.7034186147 * m_ + 1.7076147010 * s_
    lin = np.stack([r, g, bb], axis=-1)
    return np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * np.abs(lin) ** (1 / 2.4) - 0.055)


def _build_depth_colormap(n: int = 256) -> np.ndarray:
    """(n, 3) float32 sRGB ramp, dark violet -> red -> pale yellow.

    Built in OKLCh: lightness rises linearly (0.18 -> 0.96, so equal steps in
    the value give equal perceived steps in brightness), hue turns from 300
    to 460 (= 100) degrees, chroma follows a hump; colours outside the sRGB
    gamut get their chroma reduced (lightness kept)."""
    s = np.linspace(0.0, 1.0, n)
    L = 0.18 + 0.78 * s
    hue = np.deg2rad(300.0 + 160.0 * s)
    chroma = 0.05 + 0.13 * np.sin(np.pi * np.clip(s * 1.1, 0, 1)) + 0.04 * s
    out = np.empty((n, 3))
    for i in range(n):
        c = chroma[i]
        for _ in range(60):
            rgb = _oklab_to_srgb(np.array(L[i]), np.array(c * math.cos(hue[i])), np.array(c * math.sin(hue[i])))
            if (rgb >= -1e-6).all() and (rgb <= 1 + 1e-6).all():
                break
            c *= 0.95
        out[i] = np.clip(rgb, 0.0, 1.0)
    return out.astype(np.float32)


_DEPTH_COLORMAP: torch.Tensor | None = None


def _depth_colormap() -> torch.Tensor:
    global _DEPTH_COLORMAP
    if _DEPTH_COLORMAP is None:
        _DEPTH_COLORMAP = torch.from_numpy(_build_depth_colormap())
    return _DEPTH_COLORMAP


def colorize_depth(
    depth: torch.Tensor | np.ndarray,
    mask: torch.Tensor | np.ndarray | None = None,
    *,
    near: float | None = None,
    far: float | None = None,
    background: float | Sequence[float] = 1.0,
) -> torch.Tensor:
    """False-colour a depth map: near is bright (pale yellow), far is dark (violet).

    The colormap is built in (not matplotlib): in OKLCh with lightness
    rising linearly from far to near, so the picture reads like a shaded
    render and equal depth steps look equally different.

    Args:
        depth: ``(H, W)`` z-depth (any units), tensor or array.
        mask: ``(H, W)`` bool, pixels to colour; default ``depth > 0`` and
            finite (the ``0 = background`` convention of geomgen's depth maps).
            Depth under the mask must be finite.
        near: depth mapped to the brightest colour (nearer depths are
            clamped); default the min over the mask.  Pass ``near`` and
            ``far`` to give several maps one scale.  A single depth value
            maps to the brightest colour.
        far: depth mapped to the darkest colour (farther depths are
            clamped); default the max over the mask.
        background: grey level or RGB triple for pixels outside the mask.

    Returns:
        ``(3, H, W)`` float32 in ``[0, 1]`` (on the depth tensor's device).

    Raises:
        InvalidInputError: bad shapes or dtypes, non-finite depth under the
            mask, ``far <= near``, bad ``background``.
    """
    fn = "colorize_depth"
    d = torch.from_numpy(np.asarray(depth)) if isinstance(depth, np.ndarray) else depth
    if not isinstance(d, torch.Tensor):
        raise V.fail("depth", f"must be an (H, W) tensor or array, got {type(depth).__name__}", fn)
    if d.dim() != 2:
        raise V.fail("depth", f"must be an (H, W) depth map, got shape {tuple(d.shape)}", fn)
    if d.dtype == torch.bool or d.is_complex():
        raise V.fail("depth", f"must hold real numbers, got dtype {d.dtype}", fn)
    d = d.detach().to(torch.float64)
    if mask is None:
        m = torch.isfinite(d) & (d > 0)
    else:
        m = torch.from_numpy(np.asarray(mask)) if isinstance(mask, np.ndarray) else mask
        if not isinstance(m, torch.Tensor) or m.dtype != torch.bool or tuple(m.shape) != tuple(d.shape):
            got = f"{m.dtype} {tuple(m.shape)}" if isinstance(m, torch.Tensor) else type(mask).__name__
            raise V.fail("mask", f"must be a bool (H, W) = {tuple(d.shape)} tensor or array, got {got}", fn)
        m = m.to(d.device)
        if not bool(torch.isfinite(d[m]).all()):
            raise V.fail("depth", "must be finite where 'mask' is True", fn)
    bg = _parse_color(background, "background", fn).to(d.device)
    near = None if near is None else V.check_float(near, "near", fn=fn)
    far = None if far is None else V.check_float(far, "far", fn=fn)
    if near is not None and far is not None and not far > near:
        raise V.fail("far", f"must be > near ({near}), got {far}", fn)
    out = bg[:, None, None].expand(3, *d.shape).to(torch.float32).clone()
    vals = d[m]
    if vals.numel() == 0:
        return out
    lo = near if near is not None else float(vals.min())
    hi = far if far is not None else float(vals.max())
    if hi > lo:
        t = ((vals - lo) / (hi - lo)).clamp(0.0, 1.0)
    else:  # one depth value (or near given beyond every depth): a step at `lo`
        t = (vals > lo).to(vals.dtype)
    cmap = _depth_colormap().to(d.device).to(torch.float64)
    x = (1.0 - t) * (cmap.shape[0] - 1)  # near -> bright end of the ramp
    i0 = x.floor().long().clamp(max=cmap.shape[0] - 2)
    w = (x - i0)[:, None]
    colors = cmap[i0] * (1 - w) + cmap[i0 + 1] * w
    out[:, m] = colors.T.to(torch.float32)
    return out


# ---------------------------------------------------------------------------
# contact sheets
# ---------------------------------------------------------------------------


def _label_font() -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=11)  # Pillow >= 10.1: a scalable font
    except TypeError:  # older Pillow: the fixed bitmap font
        return ImageFont.load_default()


def image_grid(
    images: Sequence[torch.Tensor] | torch.Tensor,
    ncols: int | None = None,
    *,
    padding: int = 2,
    labels: Sequence[str] | None = None,
    background: float | Sequence[float] = 1.0,
    label_position: str = "below",
) -> torch.Tensor:
    """Tile equally sized images into one contact sheet.

    Tiles are placed row-major, ``ncols`` per row, with ``padding`` pixels of
    ``background`` around and between them.  With ``labels`` every tile gets
    a text band (Pillow's default font, ``label_height`` = text height + 4
    px) below or above it; labels wider than the tile are cut with "...".

    Sheet size: ``H' = rows * (H + band) + (rows + 1) * padding`` and
    ``W' = cols * W + (cols + 1) * padding`` with ``cols = min(ncols, B)``,
    ``rows = ceil(B / cols)``, ``band`` 0 without labels.

    Args:
        images: ``B >= 1`` images ``(3, H, W)`` (or grey ``(1, H, W)`` /
            ``(H, W)``), float in ``[0, 1]`` or uint8; or one ``(B, 3, H, W)``
            tensor.
        ncols: tiles per row; default ``ceil(sqrt(B))``.
        padding: pixels (>= 0) around and between tiles.
        labels: ``B`` strings (``""`` for none) or ``None``.
        background: grey level or RGB triple in ``[0, 1]``; labels are black
            on a light background, white on a dark one.
        label_position: ``"below"`` or ``"above"`` the tile.

    Returns:
        ``(3, H', W')`` float32 on the first image's device.

    Raises:
        InvalidInputError: no images, images of different sizes (naming the
            first that differs), bad values, ``ncols``/``padding`` < valid
            range, a label count or type that does not match.
    """
    fn = "image_grid"
    if isinstance(images, torch.Tensor) and images.dim() == 4:
        items = list(images.unbind(0))
    elif isinstance(images, (list, tuple)):
        items = list(images)
    else:
        raise V.fail("images", f"must be a sequence of (3, H, W) tensors or a (B, 3, H, W) tensor, got "
                    f"{type(images).__name__}" + (f" of shape {tuple(images.shape)}"
                                                  if isinstance(images, torch.Tensor) else ""), fn)
    if not items:
        raise V.fail("images", "is empty; give at least one image", fn)
    tiles = []
    for i, im in enumerate(items):
        name = f"images[{i}]"
        if not isinstance(im, torch.Tensor):
            raise V.fail(name, f"must be a torch tensor (3, H, W), got {type(im).__name__}", fn)
        if not (im.dim() == 2 or (im.dim() == 3 and im.shape[0] in (1, 3))):
            raise V.fail(name, f"must have shape (3, H, W), (1, H, W) or (H, W), got {tuple(im.shape)}", fn)
        t = _to_float_chw(im.detach(), fn, name, channels_first=True)
        tiles.append(t.expand(3, -1, -1) if t.shape[0] == 1 else t)
    H, W = tiles[0].shape[1:]
    for i, t in enumerate(tiles[1:], 1):
        if tuple(t.shape[1:]) != (H, W):
            raise V.fail("images", f"must all have the same size; images[0] is {H}x{W} (H x W) but "
                        f"images[{i}] is {t.shape[1]}x{t.shape[2]}", fn)
    B = len(tiles)
    if ncols is None:
        ncols = math.ceil(math.sqrt(B))
    ncols = V.check_int(ncols, "ncols", min_value=1, fn=fn)
    padding = V.check_int(padding, "padding", min_value=0, fn=fn)
    if label_position not in ("below", "above"):
        raise V.fail("label_position", f"must be 'below' or 'above', got {label_position!r}", fn)
    bg = _parse_color(background, "background", fn)
    if labels is not None:
        if isinstance(labels, str) or not isinstance(labels, Sequence) or len(labels) != B:
            raise V.fail("labels", f"must be a sequence of {B} strings (one per image), got {labels!r}", fn)
        for i, s in enumerate(labels):
            if not isinstance(s, str):
                raise V.fail("labels", f"must hold strings; labels[{i}] is {type(s).__name__}", fn)
    cols = min(ncols, B)
    rows = math.ceil(B / cols)
    pad = padding
    band, masks = (0, None) if labels is None else _label_masks(labels, W)
    cell_h = H + band
    device = tiles[0].device
    sheet = bg[:, None, None].expand(3, rows * cell_h + (rows + 1) * pad, cols * W + (cols + 1) * pad)
    sheet = sheet.to(device).clone()
    ink = torch.zeros(3) if float(bg.mean()) >= 0.5 else torch.ones(3)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        y = pad + r * (cell_h + pad)
        x = pad + c * (W + pad)
        iy, ly = (y, y + H) if label_position == "below" else (y + band, y)
        sheet[:, iy : iy + H, x : x + W] = t.to(device)
        if masks is not None:
            a = masks[i].to(device)  # (band, W) coverage in [0, 1]
            region = sheet[:, ly : ly + band, x : x + W]
            sheet[:, ly : ly + band, x : x + W] = region * (1 - a) + ink.to(device)[:, None, None] * a
    return sheet


def _label_masks(labels: Sequence[str], width: int) -> tuple[int, list[torch.Tensor]]:
    """Text band height and one ``(band, width)`` coverage mask per label."""
    from PIL import Image, ImageDraw

    font = _label_font()
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    top, bottom = probe.textbbox((0, 0), "Agjy|", font=font)[1::2]
    band = int(bottom) + 4
    masks = []
    for text in labels:
        text = " ".join(text.split())  # one line
        if probe.textlength(text, font=font) > width - 4:
            while text and probe.textlength(text + "...", font=font) > width - 4:
                text = text[:-1]
            text = text + "..." if text else ""
        img = Image.new("L", (width, band), 0)
        if text:
            ImageDraw.Draw(img).text((2, 2), text, fill=255, font=font)
        masks.append(torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0))
    return band, masks
