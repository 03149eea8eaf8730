"""Training logs: a CSV file, optional TensorBoard, and a PNG loss curve drawn with Pillow.

:class:`CSVLogger` appends one row per :meth:`~CSVLogger.log` call to a CSV
file whose first columns are ``step`` and ``epoch`` and whose other columns
are the metric names in order of first appearance.  When a new metric shows
up the file is rewritten once with the wider header (older rows get empty
cells), so the header always describes every row.  Empty cell = not logged
at that step.

:func:`plot_loss_curve` reads such a CSV and draws the chosen columns against
``step`` into a PNG, with NumPy and Pillow only (no matplotlib): axes, tick
labels, a legend and a title in PIL's default font.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from geomgen import checks as V
from geomgen.errors import BackendUnavailableError, FileFormatError, MeshFileNotFoundError
from geomgen.io._fs import atomic_write

__all__ = ["CSVLogger", "TensorBoardLogger", "plot_loss_curve", "read_csv_log"]

_FIXED = ("step", "epoch")


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else str(v)
    return str(v)


class CSVLogger:
    """Append rows of metrics to a CSV file with a stable header.

    Args:
        path: The CSV file (its folder is created).
        resume_from_step: ``None`` starts a new file (an existing one is
            replaced).  An int continues an existing file, first dropping the
            rows with ``step`` greater than it (rows a killed run logged after
            its last checkpoint, which the resumed run logs again).
    """

    def __init__(self, path: str | os.PathLike[str], *, resume_from_step: int | None = None) -> None:
        self.path = Path(os.fspath(path))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.columns: list[str] = list(_FIXED)
        rows: list[dict[str, str]] = []
        if resume_from_step is not None and self.path.is_file():
            header, rows = read_csv_log(self.path)
            self.columns = list(dict.fromkeys(list(_FIXED) + header))
            keep = []
            for r in rows:
                try:
                    s = int(float(r.get("step") or 0))
                except ValueError:
                    continue
                if s <= resume_from_step:
                    keep.append(r)
            rows = keep
        self._rewrite(rows)

    def _rewrite(self, rows: Sequence[Mapping[str, str]]) -> None:
        with atomic_write(self.path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(self.columns)
            for r in rows:
                w.writerow([r.get(c, "") for c in self.columns])

    def log(self, step: int, metrics: Mapping[str, Any], epoch: int | float | None = None) -> None:
        """Append one row: ``step``, ``epoch`` and ``metrics`` (numbers or 0-d tensors)."""
        values = {k: (float(v) if not isinstance(v, (int, str)) else v) for k, v in metrics.items()}
        new = [k for k in values if k not in self.columns]
        if new:
            _, rows = read_csv_log(self.path)
            self.columns.extend(new)
            self._rewrite(rows)
        row = {"step": str(int(step)), "epoch": _fmt(epoch)}
        row.update({k: _fmt(v) for k, v in values.items()})
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow([row.get(c, "") for c in self.columns])

    def close(self) -> None:
        """Nothing to release (each row is written and closed); kept for symmetry."""


def read_csv_log(path: str | os.PathLike[str]) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows (dicts of strings) of a CSV log."""
    path = Path(os.fspath(path))
    if not path.is_file():
        raise MeshFileNotFoundError(f"read_csv_log: CSV log {str(path)!r} does not exist")
    with open(path, newline="") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            return [], []
        rows = [dict(zip(header, r)) for r in reader if r]
    return header, rows


class TensorBoardLogger:
    """Scalars to TensorBoard through ``torch.utils.tensorboard`` (needs the
    ``tensorboard`` package).

    Raises:
        geomgen.errors.BackendUnavailableError: ``tensorboard`` is not installed.
    """

    def __init__(self, log_dir: str | os.PathLike[str]) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:  # tensorboard missing
            raise BackendUnavailableError(
                "TensorBoard logging needs the 'tensorboard' package (pip install tensorboard), "
                f"which cannot be imported: {e}"
            ) from e
        self.writer = SummaryWriter(log_dir=os.fspath(log_dir))

    def log(self, step: int, metrics: Mapping[str, Any], epoch: int | float | None = None) -> None:
        for k, v in metrics.items():
            self.writer.add_scalar(k, float(v), global_step=int(step))
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


# ---------------------------------------------------------------------------
# PNG loss curve
# ---------------------------------------------------------------------------

_PALETTE = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
]


def _nice_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    """Round tick values (1, 2, 5 x 10^k spacing) covering ``[lo, hi]``."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        hi = lo + (abs(lo) if lo else 1.0)
    raw = (hi - lo) / max(n - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9)
    last = math.floor(hi / step + 1e-9)
    return [round(i * step, 12) for i in range(first, last + 1)]


def _tick_label(v: float, log: bool) -> str:
    if log:
        v = 10**v
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e5 or a < 1e-3:
        return f"{v:.1e}"
    return f"{v:.4g}"


def plot_loss_curve(
    csv_path: str | os.PathLike[str],
    png_path: str | os.PathLike[str],
    *,
    keys: Sequence[str] | None = None,
    log_y: bool | None = None,
    size: tuple[int, int] = (800, 500),
    title: str | None = None,
) -> Path:
    """Draw columns of a CSV log against ``step`` into a PNG (NumPy + Pillow only).

    Args:
        csv_path: A CSV written by :class:`CSVLogger` (a ``step`` column and
            metric columns; empty cells are skipped).
        png_path: The PNG to write (atomically; its folder is created).
        keys: Columns to draw; default every column whose name contains
            ``"loss"``.  Missing columns are an error.
        log_y: Logarithmic y axis; default: when every value is positive and
            they span more than two decades.
        size: ``(width, height)`` in pixels, each ``>= 200``.
        title: Title at the top; default the CSV's file name.

    Returns:
        The PNG's path.  With nothing to draw (no rows yet) the axes and a
        "no data" note are drawn.

    Raises:
        geomgen.errors.MeshFileNotFoundError: the CSV does not exist.
        geomgen.errors.InvalidInputError: a key is not a column, or a bad ``size``.
    """
    from PIL import Image, ImageDraw, ImageFont

    fn = "plot_loss_curve"
    csv_path = Path(os.fspath(csv_path))
    png_path = Path(os.fspath(png_path))
    header, rows = read_csv_log(csv_path)
    if (
        not isinstance(size, (tuple, list))
        or len(size) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 200 for s in size)
    ):
        raise V.fail("size", f"must be (width, height) with ints >= 200, got {size!r}", fn)
    if keys is None:
        keys = [h for h in header if "loss" in h.lower()]
    else:
        keys = list(keys)
        missing = [k for k in keys if k not in header]
        if missing:
            raise V.fail("keys", f"names columns {missing} that {str(csv_path)!r} does not have (it has {header})", fn)
    if header and "step" not in header:
        raise FileFormatError(f"{fn}: CSV log {str(csv_path)!r} has no 'step' column")

    def _num(s: str | None) -> float:
        try:
            return float(s) if s not in (None, "") else math.nan
        except ValueError:
            return math.nan

    steps = np.array([_num(r.get("step")) for r in rows], dtype=np.float64)
    series = {k: np.array([_num(r.get(k)) for r in rows], dtype=np.float64) for k in keys}
    finite_vals = np.concatenate(
        [v[np.isfinite(v) & np.isfinite(steps)] for v in series.values()] or [np.zeros(0)]
    )
    if log_y is None:
        log_y = bool(
            finite_vals.size
            and (finite_vals > 0).all()
            and finite_vals.max() / finite_vals.min() > 100.0
        )
    if log_y:
        finite_vals = finite_vals[finite_vals > 0]
        series = {k: np.where(v > 0, np.log10(np.where(v > 0, v, 1.0)), np.nan) for k, v in series.items()}
        finite_vals = np.log10(finite_vals) if finite_vals.size else finite_vals

    W, H = size
    img = Image.new("RGB", (W, H), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    left, right, top, bottom = 72, 16, 32, 44
    x0, x1, y0, y1 = left, W - right, top, H - bottom  # plot box (pixels)
    draw.rectangle([x0, y0, x1, y1], outline=(0, 0, 0))
    title = title if title is not None else csv_path.name
    draw.text(((x0 + x1) / 2 - draw.textlength(title, font=font) / 2, 10), title, fill=(0, 0, 0), font=font)

    have = finite_vals.size > 0
    xs_ok = steps[np.isfinite(steps)]
    if not have or xs_ok.size == 0:
        draw.text(((x0 + x1) // 2 - 20, (y0 + y1) // 2), "no data", fill=(120, 120, 120), font=font)
    else:
        xlo, xhi = float(xs_ok.min()), float(xs_ok.max())
        if xhi <= xlo:
            xlo, xhi = xlo - 1.0, xhi + 1.0
        ylo, yhi = float(finite_vals.min()), float(finite_vals.max())
        if yhi <= ylo:
            pad = abs(ylo) * 0.05 or 0.5
            ylo, yhi = ylo - pad, yhi + pad
        pad = 0.04 * (yhi - ylo)
        ylo, yhi = ylo - pad, yhi + pad

        def px(x: np.ndarray) -> np.ndarray:
            return x0 + (x - xlo) / (xhi - xlo) * (x1 - x0)

        def py(y: np.ndarray) -> np.ndarray:
            return y1 - (y - ylo) / (yhi - ylo) * (y1 - y0)

        grid = (230, 230, 230)
        yticks = _nice_ticks(ylo, yhi)
        if log_y:  # whole decades when there are at least two of them
            decades = [float(d) for d in range(math.ceil(ylo), math.floor(yhi) + 1)]
            if len(decades) >= 2:
                stride = max(1, math.ceil(len(decades) / 6))
                yticks = decades[::stride]
        for t in yticks:
            if ylo <= t <= yhi:
                yp = float(py(np.array(t)))
                draw.line([(x0 + 1, yp), (x1 - 1, yp)], fill=grid)
                draw.line([(x0 - 4, yp), (x0, yp)], fill=(0, 0, 0))
                label = _tick_label(t, log_y)
                tw = draw.textlength(label, font=font)
                draw.text((x0 - 6 - tw, yp - 5), label, fill=(0, 0, 0), font=font)
        for t in _nice_ticks(xlo, xhi):
            if xlo <= t <= xhi:
                xp = float(px(np.array(t)))
                draw.line([(xp, y0 + 1), (xp, y1 - 1)], fill=grid)
                draw.line([(xp, y1), (xp, y1 + 4)], fill=(0, 0, 0))
                label = f"{t:g}"
                tw = draw.textlength(label, font=font)
                draw.text((xp - tw / 2, y1 + 6), label, fill=(0, 0, 0), font=font)
        draw.rectangle([x0, y0, x1, y1], outline=(0, 0, 0))
        xlabel = "step"
        draw.text(((x0 + x1) / 2 - draw.textlength(xlabel, font=font) / 2, H - 16), xlabel, fill=(0, 0, 0), font=font)
        if log_y:
            draw.text((4, 8), "log scale", fill=(90, 90, 90), font=font)

        for i, (k, v) in enumerate(series.items()):
            color = _PALETTE[i % len(_PALETTE)]
            ok = np.isfinite(v) & np.isfinite(steps)
            if not ok.any():
                continue
            # rows where this column is empty (e.g. validation every k steps) are skipped,
            # so the line joins consecutive logged points
            pts = list(zip(px(steps[ok]).tolist(), py(v[ok]).tolist()))
            if len(pts) == 1:
                x, y = pts[0]
                draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=color)
            else:
                draw.line(pts, fill=color, width=2)

        # legend, top right inside the box
        names = list(series)
        if names:
            lw = max(draw.textlength(n, font=font) for n in names) + 34
            lh = 14 * len(names) + 8
            lx, ly = x1 - 8 - lw, y0 + 8
            draw.rectangle([lx, ly, lx + lw, ly + lh], fill=(255, 255, 255), outline=(160, 160, 160))
            for i, n in enumerate(names):
                color = _PALETTE[i % len(_PALETTE)]
                yy = ly + 6 + 14 * i
                draw.line([(lx + 6, yy + 5), (lx + 24, yy + 5)], fill=color, width=2)
                draw.text((lx + 28, yy), n, fill=(0, 0, 0), font=font)

    with atomic_write(png_path, "wb") as f:
        img.save(f, format="PNG")
    return png_path
