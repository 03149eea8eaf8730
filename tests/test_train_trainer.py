"""geomgen.train.Trainer: the loop, resume bit-exactness, early stopping, several optimizers."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, TensorDataset

from geomgen.errors import FileFormatError, InvalidInputError
from geomgen.train import (
    NonFiniteLossError,
    OptimizerStep,
    SupervisedTask,
    Task,
    TrainConfig,
    Trainer,
    load_checkpoint,
)


def _data(n: int = 40, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    w = torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    return TensorDataset(x, x @ w + 0.1 * torch.randn(n, 1, generator=g))


class _NoisyData(Dataset):
    """Draws from torch's global RNG in __getitem__ (an "augmentation")."""

    def __init__(self, base: TensorDataset) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int):
        x, y = self.base[i]
        return x + 0.01 * torch.randn(4), y


def _rows(path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.2), torch.nn.Linear(8, 1))


def _cfg(tmp_path, **kw) -> TrainConfig:
    base = dict(max_steps=10, batch_size=4, lr=0.01, progress=False, out_dir=str(tmp_path / "run"), log_every=2)
    base.update(kw)
    return TrainConfig(**base)


class _Crash(Exception):
    pass


class _CrashingTask(SupervisedTask):
    def __init__(self, at_step: int | None) -> None:
        super().__init__(F.mse_loss)
        self.at_step = at_step

    def training_step(self, model, batch, step):
        if step == self.at_step:
            raise _Crash(f"simulated kill at step {step}")
        return super().training_step(model, batch, step)


def test_fit_writes_logs_checkpoints_and_learns(tmp_path):
    data = _data()
    model = _model()
    cfg = _cfg(tmp_path, max_steps=40, val_every=10, checkpoint_every=10, keep_last=2, lr=0.05,
               schedule="cosine", warmup_steps=5, early_stopping_metric="val/loss")
    s = Trainer(model, SupervisedTask(F.mse_loss), data, _data(12, seed=1), cfg).fit()
    run = tmp_path / "run"
    assert s.steps == 40 and not s.stopped_early and s.world_size == 1
    assert s.epochs == pytest.approx(4.0)
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert ckpts == ["best.pt", "ckpt-00000030.pt", "ckpt-00000040.pt"]
    assert s.last_checkpoint.endswith("ckpt-00000040.pt")
    state = load_checkpoint(s.last_checkpoint)
    assert state["step"] == 40 and state["epoch"] == 4 and state["batch_in_epoch"] == 0
    assert (run / "loss.png").stat().st_size > 0
    assert json.loads((run / "config.json").read_text())["max_steps"] == 40
    assert json.loads((run / "summary.json").read_text())["steps"] == 40
    rows = list(_rows(run / "metrics.csv"))
    assert [r["step"] for r in rows if r["val/loss"]] == ["10", "20", "30", "40"]
    train = [float(r["train/loss"]) for r in rows if r["train/loss"]]
    assert len(train) == 20 and train[-1] < 0.5 * train[0]
    lrs = [float(r["lr"]) for r in rows if r["lr"]]
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12)  # cosine to min_lr=0 at the last step
    assert s.best_metric == min(float(r["val/loss"]) for r in rows if r["val/loss"])
    assert s.best_checkpoint is not None and load_checkpoint(s.best_checkpoint)["step"] == s.best_step


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_resume_after_crash_is_bit_exact(tmp_path, optimizer):
    """10 steps straight == 6 steps, crash, resume to 10 (same weights bit for bit), with dropout,
    random augmentations in the dataset, shuffling across epochs and a warm-up + cosine schedule."""
    data = _NoisyData(_data(18))  # 18 samples / batch 4 -> 5 batches per epoch, the last short
    kw = dict(optimizer=optimizer, momentum=0.9 if optimizer == "sgd" else 0.0, nesterov=optimizer == "sgd",
              schedule="cosine", warmup_steps=3, clip_grad_norm=1.0, weight_decay=0.01)
    ref = _model()
    Trainer(ref, SupervisedTask(F.mse_loss), data, config=_cfg(tmp_path / "a", checkpoint_every=3, **kw)).fit()

    model = _model()
    cfg = _cfg(tmp_path / "b", checkpoint_every=3, **kw)
    with pytest.raises(_Crash):
        Trainer(model, _CrashingTask(at_step=7), data, config=cfg).fit()
    assert load_checkpoint(tmp_path / "b/run/checkpoints/ckpt-00000006.pt")["step"] == 6
    torch.manual_seed(1234)  # a fresh process: the RNG is anywhere
    resumed = _model(seed=99)  # and the weights are different until the checkpoint is loaded
    s = Trainer(resumed, SupervisedTask(F.mse_loss), data, config=cfg.replace(resume=True)).fit()
    assert s.resumed_from.endswith("ckpt-00000006.pt") and s.steps == 10
    for p, q in zip(ref.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(p, q)
    # the CSV has no duplicate rows from the steps replayed after the checkpoint
    steps = [int(r["step"]) for r in _rows(tmp_path / "b/run/metrics.csv")]
    assert steps == sorted(set(steps)) and steps[-1] == 10


def test_resume_of_a_finished_run_does_nothing(tmp_path):
    cfg = _cfg(tmp_path, max_steps=4, val_every=2, early_stopping_metric="loss")
    data = _data(16)
    s1 = Trainer(_model(), SupervisedTask(F.mse_loss), data, data, cfg).fit()
    model = _model(seed=5)
    s2 = Trainer(model, SupervisedTask(F.mse_loss), data, data, cfg.replace(resume=True)).fit()
    assert s2.steps == 4 and s2.best_metric == s1.best_metric
    rows = list(_rows(tmp_path / "run/metrics.csv"))
    assert [r["step"] for r in rows if r["val/loss"]] == ["2", "4"]


def test_resume_from_explicit_path_and_fresh_run_guard(tmp_path):
    data = _data(16)
    cfg = _cfg(tmp_path, max_steps=6, checkpoint_every=2, keep_last=5)
    Trainer(_model(), SupervisedTask(F.mse_loss), data, config=cfg).fit()
    with pytest.raises(InvalidInputError, match="out_dir.*already holds checkpoints"):
        Trainer(_model(), SupervisedTask(F.mse_loss), data, config=cfg)
    ck = tmp_path / "run/checkpoints/ckpt-00000002.pt"
    other = _cfg(tmp_path / "o", max_steps=6, resume=str(ck))
    s = Trainer(_model(), SupervisedTask(F.mse_loss), data, config=other).fit()
    assert s.resumed_from == str(ck) and s.steps == 6
    bad = tmp_path / "bad.pt"
    bad.write_bytes(ck.read_bytes()[:100])
    with pytest.raises(FileFormatError, match="bad.pt"):
        Trainer(_model(), SupervisedTask(F.mse_loss), data, config=_cfg(tmp_path / "c", resume=str(bad))).fit()


def test_resume_true_without_checkpoint_starts_fresh(tmp_path):
    data = _data(8)
    with pytest.warns(UserWarning, match="holds no checkpoint"):
        s = Trainer(_model(), SupervisedTask(F.mse_loss), data, config=_cfg(tmp_path, max_steps=2, resume=True)).fit()
    assert s.steps == 2 and s.resumed_from is None


def test_early_stopping_keeps_best(tmp_path):
    class Task_(SupervisedTask):
        """Validation metric improves twice, then gets worse."""

        def __init__(self):
            super().__init__(F.mse_loss)
            self.calls = 0

        def validation_step(self, model, batch):
            return {"score": [3.0, 2.0, 1.0, 1.5, 1.2, 1.1, 0.5][self.calls]}

        def on_validation_end(self, trainer, metrics):
            self.calls += 1

    data = _data(16)
    cfg = _cfg(tmp_path, max_steps=100, val_every=2, early_stopping_metric="score",
               early_stopping_patience=3, early_stopping_mode="min")
    s = Trainer(_model(), Task_(), data, _data(4), cfg).fit()
    assert s.stopped_early and s.steps == 12  # validations at 2,4,6 improve; 8,10,12 do not
    assert s.best_metric == 1.0 and s.best_step == 6
    assert load_checkpoint(s.best_checkpoint)["step"] == 6
    assert load_checkpoint(s.last_checkpoint)["step"] == 12

    cfg = _cfg(tmp_path / "x", max_steps=4, val_every=2, early_stopping_metric="nope")
    with pytest.raises(InvalidInputError, match="early_stopping_metric.*score"):
        Trainer(_model(), Task_(), data, _data(4), cfg).fit()


def test_validation_is_weighted_by_batch_size(tmp_path):
    class T(SupervisedTask):
        def validation_step(self, model, batch):
            return {"mean_x": batch[0][:, 0].mean(), "ones": 1.0}

    val = _data(10, seed=3)  # batches of 4, 4, 2
    s = Trainer(_model(), T(F.mse_loss), _data(8), val, _cfg(tmp_path, max_steps=1, out_dir=None)).fit()
    assert s.val_metrics["mean_x"] == pytest.approx(float(val.tensors[0][:, 0].mean()), rel=1e-6)
    assert s.val_metrics["ones"] == pytest.approx(1.0)


class _GanTask(Task):
    """A toy GAN: alternating D/G updates through a generator, each loss seeing the updated weights."""

    def __init__(self):
        self.seen_d_weights = []

    def configure_optimizers(self, model, config):
        from geomgen.train import build_optimizer

        return {
            "disc": build_optimizer(model.disc, "adamw", lr=1e-2),
            "gen": build_optimizer(model.gen, "sgd", lr=1e-2, momentum=0.5),
        }

    def training_step(self, model, batch, step):
        real = batch[0]
        z = torch.randn(real.shape[0], 2)
        fake = model.gen(z)
        d_real, d_fake = model.disc(real), model.disc(fake.detach())
        d_loss = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        yield OptimizerStep("disc", d_loss, {"d_real": d_real.mean()})
        self.seen_d_weights.append(model.disc.weight.detach().clone())
        g_loss = F.softplus(-model.disc(fake)).mean()  # through the updated D: needs the yield
        yield "gen", g_loss


def test_several_optimizers_alternate(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Module()
    model.gen, model.disc = torch.nn.Linear(2, 4), torch.nn.Linear(4, 1)
    d0, g0 = model.disc.weight.detach().clone(), model.gen.weight.detach().clone()
    task = _GanTask()
    cfg = _cfg(tmp_path, max_steps=6, schedule="linear", warmup_steps=2, checkpoint_every=3, clip_grad_norm=5.0)
    s = Trainer(model, task, _data(16), config=cfg).fit()
    assert not torch.equal(task.seen_d_weights[0], d0)  # D had stepped before G's loss was computed
    assert not torch.equal(model.gen.weight, g0)
    assert {"train/loss/disc", "train/loss/gen", "train/d_real", "lr/disc", "lr/gen",
            "train/grad_norm/disc", "train/grad_norm/gen"} <= set(s.train_metrics)
    state = load_checkpoint(s.last_checkpoint)
    assert set(state["optimizers"]) == {"disc", "gen"}
    # a resumed two-optimizer run continues
    s2 = Trainer(model, _GanTask(), _data(16), config=cfg.replace(max_steps=8, resume=True)).fit()
    assert s2.steps == 8


def test_bad_task_results(tmp_path):
    data = _data(8)

    class NoLoss(Task):
        def training_step(self, model, batch, step):
            return {"foo": torch.tensor(1.0)}

    class WrongOpt(Task):
        def training_step(self, model, batch, step):
            return [("nope", model(batch[0]).mean())]

    class NaN(Task):
        def training_step(self, model, batch, step):
            return {"loss": model(batch[0]).mean() * float("nan")}

    cfg = _cfg(tmp_path, max_steps=2, out_dir=None)
    with pytest.raises(InvalidInputError, match="'loss'"):
        Trainer(_model(), NoLoss(), data, config=cfg).fit()
    with pytest.raises(InvalidInputError, match="'nope'.*main"):
        Trainer(_model(), WrongOpt(), data, config=cfg).fit()
    with pytest.raises(NonFiniteLossError, match="step 0"):
        Trainer(_model(), NaN(), data, config=cfg).fit()
    with pytest.raises(InvalidInputError, match="validation_step"):
        Trainer(_model(), object.__new__(type("T", (), {"training_step": lambda *a: None})), data, data, cfg)
    with pytest.raises(InvalidInputError, match="train_data.*DataLoader"):
        Trainer(_model(), SupervisedTask(F.mse_loss), torch.utils.data.DataLoader(data), config=cfg)
    with pytest.raises(InvalidInputError, match="warmup_steps"):
        cfg = cfg.replace(max_steps=None, epochs=1, warmup_steps=5)
        Trainer(_model(), SupervisedTask(F.mse_loss), data, config=cfg)


def test_epochs_drop_last_and_amp_bf16(tmp_path):
    cfg = _cfg(tmp_path, max_steps=None, epochs=2, batch_size=3, drop_last=True, amp=True, out_dir=None,
               progress=True, val_every=None)
    s = Trainer(_model(), SupervisedTask(F.mse_loss), _data(10), _data(5), cfg).fit()
    assert s.steps == 6 and s.epochs == pytest.approx(2.0)  # 3 full batches of 10 samples per epoch
    assert math.isfinite(s.val_metrics["loss"])


def test_dict_batches_and_num_workers(tmp_path):
    class DictData(Dataset):
        def __init__(self, base):
            self.base = base

        def __len__(self):
            return len(self.base)

        def __getitem__(self, i):
            x, y = self.base[i]
            return {"input": x, "target": y}

    cfg = _cfg(tmp_path, max_steps=4, num_workers=1, out_dir=None)
    s = Trainer(_model(), SupervisedTask(F.mse_loss), DictData(_data(8)), DictData(_data(4)), cfg).fit()
    assert s.steps == 4 and "loss" in s.val_metrics


def test_move_to_device_keeps_containers():
    from collections import namedtuple

    from geomgen.train import move_to_device

    Pair = namedtuple("Pair", "a b")
    batch = {"x": torch.zeros(2), "items": [Pair(torch.ones(1), "name"), (torch.ones(3),)], "n": 3}
    out = move_to_device(batch, torch.device("cpu"))
    assert isinstance(out["items"][0], Pair) and out["items"][0].b == "name" and out["n"] == 3
    assert torch.equal(out["items"][1][0], torch.ones(3))
