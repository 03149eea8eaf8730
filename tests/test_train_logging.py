"""geomgen.train.logging: CSV log with a stable header, PNG loss curve without matplotlib, TensorBoard."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
from PIL import Image

from geomgen.errors import BackendUnavailableError, InvalidInputError, MeshFileNotFoundError
from geomgen.train import CSVLogger, plot_loss_curve
from geomgen.train.logging import _PALETTE, TensorBoardLogger, _nice_ticks, read_csv_log


def _read(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_csv_header_grows_and_stays_stable(tmp_path):
    log = CSVLogger(tmp_path / "logs/m.csv")
    log.log(1, {"train/loss": torch.tensor(2.0), "lr": 0.1}, epoch=0.5)
    log.log(2, {"train/loss": 1.5, "lr": 0.1})
    log.log(2, {"val/loss": 1.25}, epoch=1)  # a new column: the file is rewritten once
    log.log(3, {"lr": 0.05, "train/loss": float("nan")})
    rows = _read(tmp_path / "logs/m.csv")
    assert rows[0] == ["step", "epoch", "train/loss", "lr", "val/loss"]
    assert rows[1:] == [
        ["1", "0.5", "2.0", "0.1", ""],
        ["2", "", "1.5", "0.1", ""],
        ["2", "1", "", "", "1.25"],
        ["3", "", "nan", "0.05", ""],
    ]
    # resuming from step 2 drops the rows a killed run wrote after its checkpoint
    log2 = CSVLogger(tmp_path / "logs/m.csv", resume_from_step=2)
    log2.log(3, {"train/loss": 1.0})
    rows = _read(tmp_path / "logs/m.csv")
    assert [r[0] for r in rows[1:]] == ["1", "2", "2", "3"] and rows[-1][2] == "1.0"
    assert rows[0] == ["step", "epoch", "train/loss", "lr", "val/loss"]
    # a fresh logger starts a new file
    CSVLogger(tmp_path / "logs/m.csv")
    assert _read(tmp_path / "logs/m.csv") == [["step", "epoch"]]
    assert [p.name for p in (tmp_path / "logs").iterdir()] == ["m.csv"]


def _csv(path, n=50):
    log = CSVLogger(path)
    for s in range(1, n + 1):
        log.log(s, {"train/loss": 2.0 * math.exp(-s / 10) + 0.1, "lr": 1e-3})
        if s % 10 == 0:
            log.log(s, {"val/loss": 1.5 * math.exp(-s / 12) + 0.2})
    return path


def _has_color(img: np.ndarray, rgb) -> int:
    return int((np.abs(img.astype(int) - np.array(rgb)).sum(-1) < 30).sum())


def test_plot_loss_curve_draws_lines_axes_and_legend(tmp_path):
    png = plot_loss_curve(_csv(tmp_path / "m.csv"), tmp_path / "out/loss.png", size=(640, 400))
    img = np.asarray(Image.open(png).convert("RGB"))
    assert img.shape == (400, 640, 3)
    assert _has_color(img, _PALETTE[0]) > 300  # train/loss line (+ legend swatch)
    assert _has_color(img, _PALETTE[1]) > 100  # val/loss line
    assert _has_color(img, (0, 0, 0)) > 1000  # axes box, ticks, labels
    # the lr column is not drawn by default; asking for an unknown column is an error
    with pytest.raises(InvalidInputError, match="keys.*nope"):
        plot_loss_curve(tmp_path / "m.csv", tmp_path / "x.png", keys=["nope"])
    with pytest.raises(MeshFileNotFoundError, match="missing.csv"):
        plot_loss_curve(tmp_path / "missing.csv", tmp_path / "x.png")
    with pytest.raises(InvalidInputError, match="size"):
        plot_loss_curve(tmp_path / "m.csv", tmp_path / "x.png", size=(10, 10))


def test_plot_log_scale_and_degenerate_inputs(tmp_path):
    log = CSVLogger(tmp_path / "wide.csv")
    for s in range(1, 30):
        log.log(s, {"loss": 10.0 ** (-s / 5)})
    png = plot_loss_curve(tmp_path / "wide.csv", tmp_path / "wide.png", title="wide range")
    assert _has_color(np.asarray(Image.open(png).convert("RGB")), _PALETTE[0]) > 200

    CSVLogger(tmp_path / "empty.csv")  # header only
    png = plot_loss_curve(tmp_path / "empty.csv", tmp_path / "empty.png")
    assert Image.open(png).size == (800, 500)
    one = CSVLogger(tmp_path / "one.csv")
    one.log(5, {"loss": 1.0})
    one.log(6, {"loss": float("inf")})
    plot_loss_curve(tmp_path / "one.csv", tmp_path / "one.png")
    assert Image.open(tmp_path / "one.png").size == (800, 500)


def test_nice_ticks():
    assert _nice_ticks(0.0, 1.0) == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert _nice_ticks(3, 97) == [20, 40, 60, 80]
    assert _nice_ticks(-0.013, 0.021) == pytest.approx([-0.01, 0.0, 0.01, 0.02])
    assert _nice_ticks(0.1, 0.7, n=7) == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    assert _nice_ticks(5.0, 5.0)[0] <= 5.0


def test_read_csv_log_missing(tmp_path):
    with pytest.raises(MeshFileNotFoundError):
        read_csv_log(tmp_path / "none.csv")


def test_tensorboard(tmp_path, monkeypatch):
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        with pytest.raises(BackendUnavailableError, match="tensorboard"):
            TensorBoardLogger(tmp_path)
        from geomgen.train import TrainConfig, Trainer, SupervisedTask

        cfg = TrainConfig(max_steps=1, out_dir=str(tmp_path / "run"), tensorboard=True, progress=False)
        data = torch.utils.data.TensorDataset(torch.zeros(4, 2), torch.zeros(4, 1))
        with pytest.raises(BackendUnavailableError):
            Trainer(torch.nn.Linear(2, 1), SupervisedTask(torch.nn.functional.mse_loss), data, config=cfg)
    else:  # pragma: no cover - tensorboard installed
        tb = TensorBoardLogger(tmp_path)
        tb.log(1, {"loss": 1.0})
        tb.close()
        assert any(tmp_path.iterdir())
