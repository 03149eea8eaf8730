"""The training loop: :class:`Trainer` and its :class:`FitSummary`.

``Trainer(model, task, train_data, val_data, config).fit()`` trains
``model`` with the step logic of ``task`` (see :mod:`geomgen.train.task`) on
map-style datasets, and writes into ``config.out_dir``::

    out_dir/config.json          the TrainConfig of the run
    out_dir/metrics.csv          one row per log/validation (step, epoch, train/*, lr, val/*)
    out_dir/loss.png             loss curves drawn from metrics.csv
    out_dir/checkpoints/ckpt-<step>.pt, best.pt
    out_dir/tensorboard/         when config.tensorboard

Determinism and resume.  The order of the training samples is a function of
``(seed, epoch)`` (:class:`~geomgen.train.distributed.ResumableSampler`), and
a checkpoint stores the epoch, the number of batches already taken from it,
the global step and every RNG state (Python, NumPy, torch CPU and CUDA, per
rank).  A run resumed from the checkpoint of step ``k`` therefore feeds
exactly the batches the uninterrupted run fed after step ``k``, and on CPU
with ``num_workers=0`` ends with bit-identical weights.  (With worker
processes the order is still the same, but random augmentations drawn inside
workers restart from the epoch's worker seeds.)

Distributed data parallel: run the same script under
``torchrun --nproc_per_node=N``; the trainer joins the process group (gloo on
CPU, NCCL on CUDA), shards the data, averages gradients and metrics, and only
rank 0 writes files and draws progress bars.  With the same global batch
(``batch_size * N``) and mean-reduced losses the updates equal those of one
process up to floating-point summation order.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import random
import time
import warnings
from collections.abc import Iterator, Mapping, Sized
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from geomgen import checks as V
from geomgen.errors import FileFormatError, InvalidInputError
from geomgen.train import distributed as D
from geomgen.train.checkpoint import (
    CHECKPOINT_FORMAT,
    CheckpointManager,
    load_checkpoint,
    rng_state,
    set_rng_state,
)
from geomgen.train.config import TrainConfig
from geomgen.train.logging import CSVLogger, TensorBoardLogger, plot_loss_curve
from geomgen.train.optim import build_optimizer
from geomgen.train.schedules import build_scheduler
from geomgen.train.task import NonFiniteLossError, OptimizerStep

__all__ = ["Trainer", "FitSummary", "move_to_device"]

_FN = "Trainer"


@dataclass
class FitSummary:
    """What :meth:`Trainer.fit` returns.

    Attributes:
        steps: Training steps done in total (including those before a resume).
        epochs: Completed epochs plus the fraction of the current one.
        stopped_early: Early stopping ended the run.
        best_metric: Best value of ``early_stopping_metric`` (``None`` if not monitored).
        best_step: Step of ``best_metric``.
        best_checkpoint: Path of ``best.pt`` (``None`` when not written).
        last_checkpoint: Path of the final step checkpoint (``None`` without ``out_dir``).
        train_metrics: Last logged training metrics (``train/*``, ``lr`` ...).
        val_metrics: Last validation metrics (no prefix).
        resumed_from: Checkpoint the run continued from, if any.
        world_size: Number of processes.
        wall_time_s: Seconds spent in this call of ``fit``.
    """

    steps: int
    epochs: float
    stopped_early: bool
    best_metric: float | None
    best_step: int | None
    best_checkpoint: str | None
    last_checkpoint: str | None
    train_metrics: dict[str, float] = field(default_factory=dict)
    val_metrics: dict[str, float] = field(default_factory=dict)
    resumed_from: str | None = None
    world_size: int = 1
    wall_time_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def move_to_device(batch: Any, device: torch.device, non_blocking: bool = False) -> Any:
    """Move tensors inside ``batch`` (nested dicts, lists, tuples, namedtuples,
    objects with a ``.to(device)`` method such as geomgen structures) to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, Mapping):
        moved = {k: move_to_device(v, device, non_blocking) for k, v in batch.items()}
        try:
            return moved if type(batch) is dict else type(batch)(moved)
        except TypeError:
            return moved
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(move_to_device(v, device, non_blocking) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to_device(v, device, non_blocking) for v in batch)
    to = getattr(batch, "to", None)
    if callable(to) and not isinstance(batch, (str, bytes, np.ndarray)):
        try:
            return to(device)
        except TypeError:
            return batch
    return batch


def _batch_len(batch: Any) -> int:
    """Number of samples in a batch (leading size of its first tensor; 1 if unknown)."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.dim() else 1
    if isinstance(batch, Mapping):
        for v in batch.values():
            return _batch_len(v)
        return 1
    if isinstance(batch, (list, tuple)):
        return _batch_len(batch[0]) if batch else 1
    try:
        return max(1, len(batch))
    except TypeError:
        return 1


def _seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed NumPy from torch's per-worker seed."""
    np.random.seed(torch.initial_seed() % 2**32)


def _as_float(v: Any) -> float:
    if isinstance(v, torch.Tensor):
        if v.numel() != 1:
            raise InvalidInputError(f"metric values must be scalars, got a tensor of shape {tuple(v.shape)}")
        return float(v.detach().float().item())
    return float(v)


class Trainer:
    """Train ``model`` with ``task`` on ``train_data`` (see the module docstring).

    Args:
        model: The ``nn.Module`` to train (moved to the config's device).
        task: Step logic (:mod:`geomgen.train.task`): ``training_step`` and,
            with ``val_data``, ``validation_step``.
        train_data: A map-style dataset (``__len__`` + ``__getitem__``).
        val_data: Optional map-style validation dataset.
        config: A :class:`TrainConfig` (or a dict of its fields).
        collate_fn: DataLoader ``collate_fn`` for both datasets (default
            PyTorch's), e.g. one that batches geomgen structures.

    Raises:
        geomgen.errors.InvalidInputError: bad config, a task without
            ``training_step`` (or ``validation_step`` when there is validation
            data), a dataset that is not map-style, or an ``out_dir`` that
            already holds checkpoints while ``resume`` is False.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        task: Any,
        train_data: Dataset,
        val_data: Dataset | None = None,
        config: TrainConfig | Mapping[str, Any] | None = None,
        *,
        collate_fn: Any = None,
    ) -> None:
        if config is None:
            raise V.fail("config", "is required (a TrainConfig with max_steps or epochs)", _FN)
        if isinstance(config, Mapping):
            config = TrainConfig.from_dict(config)
        if not isinstance(config, TrainConfig):
            raise V.fail("config", f"must be a TrainConfig, got {type(config).__name__}", _FN)
        config.validate()
        if not isinstance(model, torch.nn.Module):
            raise V.fail("model", f"must be a torch.nn.Module, got {type(model).__name__}", _FN)
        if not callable(getattr(task, "training_step", None)):
            raise V.fail(
                "task", f"must have a training_step(model, batch, step) method ({type(task).__name__} has none)", _FN
            )
        if val_data is not None and not callable(getattr(task, "validation_step", None)):
            raise V.fail("task", "must have a validation_step(model, batch) method when val_data is given", _FN)
        for name, data in (("train_data", train_data), ("val_data", val_data)):
            if data is None:
                continue
            if isinstance(data, DataLoader):
                raise V.fail(name, "must be a Dataset, not a DataLoader: the trainer builds its own loaders "
                             "so that it can shard and resume the data order", _FN)
            if not isinstance(data, Sized) or not hasattr(data, "__getitem__"):
                raise V.fail(
                    name, f"must be a map-style dataset (__len__ and __getitem__), got {type(data).__name__}", _FN
                )
        if len(train_data) == 0:
            raise V.fail("train_data", "is empty", _FN)
        if config.early_stopping_metric is not None and val_data is None:
            raise V.fail("early_stopping_metric", f"is {config.early_stopping_metric!r} but there is no val_data "
                         "to compute it on", "TrainConfig")

        self.config = config
        self.task = task
        self.train_data = train_data
        self.val_data = val_data
        self.collate_fn = collate_fn

        self.dist = D.init_distributed(config.device)
        self.device = self.dist.device
        self.rank = self.dist.rank
        self.world_size = self.dist.world_size
        self.is_main = self.dist.is_main

        self.model = model.to(self.device)
        self.out_dir = Path(config.out_dir) if config.out_dir is not None else None
        self.ckpt = CheckpointManager(self.out_dir / "checkpoints", config.keep_last) if self.out_dir else None

        # optimizers and schedules
        self._build_loaders()
        self.total_steps = self._total_steps()
        if config.schedule != "inverse-sqrt" and config.warmup_steps > self.total_steps:
            raise V.fail(
                "warmup_steps",
                f"must be <= the run's total steps ({self.total_steps}), got {config.warmup_steps}",
                "TrainConfig",
            )
        self.optimizers, self.schedulers = self._build_optimizers()
        self.ddp_mode = config.ddp_mode
        if self.ddp_mode == "auto":
            self.ddp_mode = "ddp" if len(self.optimizers) == 1 else "allreduce"

        # AMP
        amp_dtype = config.amp_dtype or ("float16" if self.device.type == "cuda" else "bfloat16")
        self.amp_dtype = getattr(torch, amp_dtype)
        use_scaler = config.amp and self.amp_dtype == torch.float16
        self.scaler = _grad_scaler(self.device, use_scaler)

        # run state
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.early = {"best": None, "best_step": None, "bad_count": 0, "stopped": False}
        self.last_val: dict[str, float] = {}
        self.last_train: dict[str, float] = {}
        self.resumed_from: str | None = None
        self._train_model: torch.nn.Module = self.model
        self._sync_buffers = False
        self._csv: CSVLogger | None = None
        self._tb: TensorBoardLogger | None = None
        self._last_ckpt: Path | None = None
        self._ckpt_step = -1
        self._val_step = -1
        if config.tensorboard and self.is_main and self.out_dir is not None:
            self._tb = TensorBoardLogger(self.out_dir / "tensorboard")  # fails early when not installed
        if self.ckpt is not None and config.resume is False and self.ckpt.step_checkpoints():
            raise V.fail(
                "out_dir",
                f"{str(self.out_dir)!r} already holds checkpoints of an earlier run; pass resume=True "
                "(--resume) to continue it, or choose another out_dir",
                "TrainConfig",
            )

    # ------------------------------------------------------------------ setup

    def _build_loaders(self) -> None:
        c = self.config
        self.sampler = D.ResumableSampler(
            self.train_data, num_replicas=self.world_size, rank=self.rank, shuffle=c.shuffle, seed=c.seed,
            drop_last=False,
        )
        self._loader_gen = torch.Generator()
        kw: dict[str, Any] = {"num_workers": c.num_workers, "pin_memory": c.pin_memory, "collate_fn": self.collate_fn}
        if c.num_workers > 0:
            kw["worker_init_fn"] = _seed_worker
        self.train_loader = DataLoader(
            self.train_data, batch_size=c.batch_size, sampler=self.sampler, drop_last=c.drop_last,
            generator=self._loader_gen, **kw,
        )
        n = self.sampler.num_samples
        self.batches_per_epoch = n // c.batch_size if c.drop_last else math.ceil(n / c.batch_size)
        if self.batches_per_epoch == 0:
            raise V.fail("batch_size", f"is larger than this process's share of train_data ({n} samples) "
                         "and drop_last=True: an epoch has no batch", "TrainConfig")
        self.val_loader = None
        if self.val_data is not None:
            # every rank takes a strided shard without padding; metrics are summed over ranks
            idx = list(range(self.rank, len(self.val_data), self.world_size))
            self._val_gen = torch.Generator()  # reseeded per validation: the global RNG is never drawn from
            self.val_loader = DataLoader(
                torch.utils.data.Subset(self.val_data, idx), batch_size=c.val_batch_size or c.batch_size,
                shuffle=False, generator=self._val_gen, **kw,
            )

    def _total_steps(self) -> int:
        c = self.config
        limits = []
        if c.max_steps is not None:
            limits.append(c.max_steps)
        if c.epochs is not None:
            limits.append(c.epochs * self.batches_per_epoch)
        return min(limits)

    def _build_optimizers(self) -> tuple[dict[str, torch.optim.Optimizer], dict[str, Any]]:
        c = self.config
        conf = getattr(self.task, "configure_optimizers", None)
        result = conf(self.model, c) if callable(conf) else None
        if result is None:
            result = {
                "main": build_optimizer(
                    self.model, c.optimizer, lr=c.lr, momentum=c.momentum, nesterov=c.nesterov,
                    weight_decay=c.weight_decay, betas=c.betas, eps=c.eps,
                )
            }
        elif isinstance(result, torch.optim.Optimizer):
            result = {"main": result}
        if not isinstance(result, Mapping) or not result:
            raise V.fail("task", "configure_optimizers must return None, an Optimizer or a non-empty dict "
                         f"name -> Optimizer | (Optimizer, scheduler); got {type(result).__name__}", _FN)
        optimizers: dict[str, torch.optim.Optimizer] = {}
        schedulers: dict[str, Any] = {}
        for name, item in result.items():
            sched = None
            if isinstance(item, (tuple, list)):
                item, sched = item
            if not isinstance(name, str) or not isinstance(item, torch.optim.Optimizer):
                raise V.fail("task", f"configure_optimizers returned {name!r}: {type(item).__name__}; "
                             "expected str -> torch.optim.Optimizer", _FN)
            optimizers[name] = item
            schedulers[name] = sched if sched is not None else build_scheduler(
                item, c.schedule, warmup_steps=c.warmup_steps,
                total_steps=self.total_steps if c.schedule != "inverse-sqrt" else None, min_lr=c.min_lr,
            )
        return optimizers, schedulers

    # ------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict[str, Any]:
        """The full checkpoint of the run now (collective in distributed runs:
        every rank must call it; RNG states are gathered from all ranks)."""
        rngs = D.all_gather_object(rng_state())
        task_sd = getattr(self.task, "state_dict", None)
        state: dict[str, Any] = {
            "format": CHECKPOINT_FORMAT,
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "samples_in_epoch": self.batch_in_epoch * self.config.batch_size * self.world_size,
            "world_size": self.world_size,
            "model": D.unwrap_model(self.model).state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "rng": rngs,
            "early_stopping": dict(self.early),
            "val_metrics": dict(self.last_val),
            "val_step": self._val_step,
            "task": task_sd() if callable(task_sd) else {},
            "config": self.config.to_dict(),
        }
        return state

    def load_state_dict(self, state: Mapping[str, Any], source: str = "checkpoint") -> None:
        """Restore a state from :meth:`state_dict` (model, optimizers, schedules,
        position in the data, RNGs, early-stopping state, task state)."""
        if state.get("format") != CHECKPOINT_FORMAT:
            raise FileFormatError(
                f"{source}: not a geomgen.train checkpoint (format {state.get('format')!r}, "
                f"expected {CHECKPOINT_FORMAT!r})"
            )
        if set(self.optimizers) != set(state["optimizers"]):
            raise FileFormatError(
                f"{source}: optimizers {sorted(state['optimizers'])} do not match the task's {sorted(self.optimizers)}"
            )
        D.unwrap_model(self.model).load_state_dict(state["model"])
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        for k, s in self.schedulers.items():
            s.load_state_dict(state["schedulers"][k])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.epoch = int(state["epoch"])
        same_layout = int(state["world_size"]) == self.world_size and int(
            state["config"]["batch_size"]
        ) == self.config.batch_size
        if same_layout:
            self.batch_in_epoch = int(state["batch_in_epoch"])
        else:
            warnings.warn(
                f"{source}: saved with world_size={state['world_size']} and "
                f"batch_size={state['config']['batch_size']}, "
                f"resumed with {self.world_size} and {self.config.batch_size}: the data order is not reproduced "
                "exactly (the run continues after the same number of samples of the epoch)",
                stacklevel=3,
            )
            per_rank = int(state["samples_in_epoch"]) // (self.config.batch_size * self.world_size)
            self.batch_in_epoch = min(per_rank, self.batches_per_epoch)
        self.early = dict(state["early_stopping"])
        self.last_val = {k: float(v) for k, v in state.get("val_metrics", {}).items()}
        rngs = state["rng"]
        if len(rngs) == self.world_size:
            set_rng_state(rngs[self.rank])
        else:
            self._seed_everything(self.config.seed + self.rank + 7919 * self.step)
        task_load = getattr(self.task, "load_state_dict", None)
        if callable(task_load) and state.get("task") is not None:
            task_load(state["task"])

    def save_checkpoint(self) -> Path | None:
        """Save ``ckpt-<step>.pt`` now (rank 0 writes; every rank must call)."""
        state = self.state_dict()
        path = None
        if self.is_main and self.ckpt is not None:
            path = self.ckpt.save(self.step, state)
            self._plot()
        D.barrier()
        self._ckpt_step = self.step
        if self.ckpt is not None:
            self._last_ckpt = self.ckpt.path_for(self.step)
        return path

    # ----------------------------------------------------------------- helpers

    @staticmethod
    def _seed_everything(seed: int) -> None:
        seed = int(seed) % 2**63
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if not self.config.amp:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def _plot(self) -> None:
        if self.config.plot and self.is_main and self.out_dir is not None and (self.out_dir / "metrics.csv").is_file():
            try:
                plot_loss_curve(self.out_dir / "metrics.csv", self.out_dir / "loss.png", title="loss")
            except Exception as e:  # a plot must never kill a run
                warnings.warn(f"could not draw {self.out_dir / 'loss.png'}: {e}", stacklevel=2)

    def _log_row(self, metrics: Mapping[str, float]) -> None:
        if not self.is_main:
            return
        epoch = round(self.epoch + self.batch_in_epoch / self.batches_per_epoch, 6)
        if self._csv is not None:
            self._csv.log(self.step, metrics, epoch=epoch)
        if self._tb is not None:
            self._tb.log(self.step, metrics)

    def _lr_metrics(self) -> dict[str, float]:
        out = {}
        for name, opt in self.optimizers.items():
            key = "lr" if len(self.optimizers) == 1 else f"lr/{name}"
            out[key] = float(opt.param_groups[0]["lr"])
        return out

    # ------------------------------------------------------------ one step

    def _params_of(self, opts: list[torch.optim.Optimizer]) -> list[torch.nn.Parameter]:
        seen: set[int] = set()
        out = []
        for o in opts:
            for g in o.param_groups:
                for p in g["params"]:
                    if id(p) not in seen:
                        seen.add(id(p))
                        out.append(p)
        return out

    def _update(self, names: list[str], loss: Any, logs: dict[str, Any], tag: str) -> None:
        """Backward ``loss``, sync/unscale/clip, step the named optimizers."""
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1 or not loss.requires_grad:
            what = f"a tensor of shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) else type(loss).__name__
            scalar = isinstance(loss, torch.Tensor) and loss.numel() == 1
            detail = " without grad (requires_grad=False)" if scalar else ""
            raise InvalidInputError(
                f"Trainer: training_step must give a scalar loss tensor with grad for {tag}, got {what}{detail}"
            )
        if self.config.check_finite and not bool(torch.isfinite(loss.detach())):
            raise NonFiniteLossError(
                f"Trainer: the loss of {tag} is {float(loss.detach())} at step {self.step} "
                "(lower the learning rate, clip gradients, or check the data)"
            )
        opts = [self.optimizers[n] for n in names]
        for o in opts:
            o.zero_grad(set_to_none=True)
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
        params = self._params_of(opts)
        if self.ddp_mode == "allreduce":
            D.sync_gradients(params)
        if self.scaler is not None:
            for o in opts:
                self.scaler.unscale_(o)
        if self.config.clip_grad_norm is not None:
            norm = torch.nn.utils.clip_grad_norm_(
                [p for p in params if p.grad is not None], self.config.clip_grad_norm
            )
            logs["grad_norm" if tag == "loss" else f"grad_norm/{tag.split('/', 1)[-1]}"] = norm.detach()
        for o in opts:
            if self.scaler is not None:
                self.scaler.step(o)
            else:
                o.step()
        if self.scaler is not None:
            self.scaler.update()

    def _training_step(self, batch: Any) -> dict[str, Any]:
        logs: dict[str, Any] = {}
        if self._sync_buffers:
            D.broadcast_module(self.model, buffers_only=True)  # as DistributedDataParallel does
        with self._autocast():
            result = self.task.training_step(self._train_model, batch, self.step)
        if isinstance(result, Mapping):
            if "loss" not in result:
                raise InvalidInputError(
                    f"Trainer: training_step returned a dict without a 'loss' key (keys: {sorted(result)})"
                )
            for k, v in result.items():
                logs[k] = v.detach() if isinstance(v, torch.Tensor) else v
            self._update(list(self.optimizers), result["loss"], logs, "loss")
            return logs
        if isinstance(result, torch.Tensor) or not hasattr(result, "__iter__"):
            raise InvalidInputError(
                "Trainer: training_step must return a dict with a 'loss' or yield/return "
                f"OptimizerStep items or (optimizer_name, loss) pairs, got {type(result).__name__}"
            )
        it: Iterator[Any] = iter(result)
        is_gen = inspect.isgenerator(result)
        while True:
            try:
                if is_gen:
                    with self._autocast():
                        item = next(it)
                else:
                    item = next(it)
            except StopIteration:
                break
            if isinstance(item, OptimizerStep):
                name, loss, extra = item.optimizer, item.loss, dict(item.logs)
            elif isinstance(item, tuple) and len(item) in (2, 3):
                name, loss = item[0], item[1]
                extra = dict(item[2]) if len(item) == 3 else {}
            else:
                raise InvalidInputError(
                    f"Trainer: training_step gave {type(item).__name__}; expected OptimizerStep or "
                    "(optimizer_name, loss[, logs])"
                )
            if name not in self.optimizers:
                raise InvalidInputError(
                    f"Trainer: training_step named optimizer {name!r}; the task has {sorted(self.optimizers)}"
                )
            key = f"loss/{name}"
            logs[key] = loss.detach() if isinstance(loss, torch.Tensor) else loss
            for k, v in extra.items():
                logs[k] = v.detach() if isinstance(v, torch.Tensor) else v
            self._update([name], loss, logs, key)
        return logs

    # -------------------------------------------------------------- validation

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Average ``validation_step`` over the validation set (and ranks); ``{}`` without val data."""
        if self.val_loader is None:
            return {}
        model = D.unwrap_model(self.model)
        was_training = model.training
        model.eval()
        sums: dict[str, float] = {}
        count = 0
        self._val_gen.manual_seed(self.config.seed)
        from tqdm import tqdm

        bar = tqdm(self.val_loader, desc="val", leave=False, disable=not (self.config.progress and self.is_main),
                   dynamic_ncols=True)
        try:
            for batch in bar:
                batch = move_to_device(batch, self.device, self.config.pin_memory)
                n = _batch_len(batch)
                with self._autocast():
                    out = self.task.validation_step(model, batch)
                if not isinstance(out, Mapping):
                    raise InvalidInputError(
                        f"Trainer: validation_step must return a dict of scalar metrics, got {type(out).__name__}"
                    )
                for k, v in out.items():
                    sums[k] = sums.get(k, 0.0) + _as_float(v) * n
                count += n
        finally:
            bar.close()
            model.train(was_training)
        # a rank whose shard is empty has no keys: agree on the union (every rank calls this)
        keys = sorted(set().union(*D.all_gather_object(sorted(sums))))
        vals = torch.tensor([sums.get(k, 0.0) for k in keys] + [float(count)], dtype=torch.float64)
        vals = D.all_reduce_sum(vals)
        total = float(vals[-1])
        metrics = {k: (float(vals[i]) / total if total > 0 else math.nan) for i, k in enumerate(keys)}
        return metrics

    def _after_validation(self, metrics: dict[str, float]) -> bool:
        """Log, track the best, save best.pt; return True when early stopping fires."""
        self.last_val = metrics
        self._val_step = self.step
        self._log_row({f"val/{k}": v for k, v in metrics.items()})
        hook = getattr(self.task, "on_validation_end", None)
        if callable(hook):
            hook(self, metrics)
        c = self.config
        if c.early_stopping_metric is None:
            return False
        key = c.early_stopping_metric
        key = key[4:] if key.startswith("val/") and key not in metrics else key
        if key not in metrics:
            raise V.fail("early_stopping_metric", f"is {c.early_stopping_metric!r}, which validation_step does not "
                         f"return (it returns {sorted(metrics)})", "TrainConfig")
        value = metrics[key]
        best = self.early["best"]
        if c.early_stopping_mode == "min":
            improved = best is None or value < best - c.early_stopping_min_delta
        else:
            improved = best is None or value > best + c.early_stopping_min_delta
        if improved and math.isfinite(value):
            self.early.update(best=float(value), best_step=self.step, bad_count=0)
            state = self.state_dict()
            if self.is_main and self.ckpt is not None:
                self.ckpt.save_best(state)
            D.barrier()
        else:
            self.early["bad_count"] = int(self.early["bad_count"]) + 1
        if c.early_stopping_patience is not None and self.early["bad_count"] >= c.early_stopping_patience:
            self.early["stopped"] = True
            return True
        return False

    # ----------------------------------------------------------------- the loop

    def _start(self) -> None:
        c = self.config
        resume_path: Path | None = None
        if isinstance(c.resume, str):
            resume_path = Path(c.resume)
        elif c.resume is True and self.ckpt is not None:
            if self.is_main:
                self.ckpt.remove_stale_temp_files()
            resume_path = self.ckpt.latest()
            if resume_path is None and self.is_main:
                warnings.warn(f"resume=True but {str(self.ckpt.folder)!r} holds no checkpoint: starting a new run",
                              stacklevel=3)
        if resume_path is not None:
            state = load_checkpoint(resume_path, map_location=self.device)
            self.load_state_dict(state, source=f"checkpoint {str(resume_path)!r}")
            self.resumed_from = str(resume_path)
            self._ckpt_step = self.step
            self._last_ckpt = resume_path
            self._val_step = int(state.get("val_step", -1))
        else:
            self._seed_everything(c.seed + self.rank)
        if self.out_dir is not None and self.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            (self.out_dir / "config.json").write_text(c.to_json() + "\n")
            self._csv = CSVLogger(self.out_dir / "metrics.csv", resume_from_step=self.step if resume_path else None)
        if D.is_distributed():
            if self.ddp_mode == "ddp":
                self._train_model = D.wrap_ddp(self.model, self.device, c.find_unused_parameters)
            else:
                D.broadcast_module(self.model)
                self._train_model = self.model
                self._sync_buffers = any(True for _ in self.model.buffers())
        self.model.train()
        hook = getattr(self.task, "on_train_start", None)
        if callable(hook):
            hook(self)

    def fit(self) -> FitSummary:
        """Train until ``max_steps``/``epochs`` or early stopping; return a :class:`FitSummary`.

        Raises whatever the task raises (the last checkpoint stays valid, so
        ``resume=True`` continues from it), :class:`~geomgen.train.task.NonFiniteLossError`
        on a NaN/Inf loss when ``check_finite``.
        """
        t0 = time.perf_counter()
        c = self.config
        self._start()
        from tqdm import tqdm

        bar = tqdm(total=self.total_steps, initial=min(self.step, self.total_steps), desc="train", unit="step",
                   disable=not (c.progress and self.is_main), dynamic_ncols=True)
        window: dict[str, torch.Tensor] = {}
        window_n: dict[str, int] = {}
        stop = self.early.get("stopped", False) or self.step >= self.total_steps
        try:
            while not stop:
                self.sampler.set_epoch(self.epoch, start=self.batch_in_epoch * c.batch_size)
                self._loader_gen.manual_seed((c.seed * 1_000_003 + self.epoch) % 2**63)
                for batch in self.train_loader:
                    batch = move_to_device(batch, self.device, c.pin_memory)
                    logs = self._training_step(batch)
                    for s in self.schedulers.values():
                        s.step()
                    self.step += 1
                    self.batch_in_epoch += 1
                    end_of_epoch = self.batch_in_epoch >= self.batches_per_epoch
                    if end_of_epoch:
                        self.epoch += 1
                        self.batch_in_epoch = 0
                    for k, v in logs.items():  # summed on the device: no sync until the log step
                        v = torch.as_tensor(v).detach().float().reshape(())
                        window[k] = window[k] + v if k in window else v.clone()
                        window_n[k] = window_n.get(k, 0) + 1
                    bar.update(1)
                    last = self.step >= self.total_steps
                    if self.step % c.log_every == 0 or last:
                        self._flush_window(window, window_n, bar)
                    if self.val_loader is not None and (
                        (c.val_every is not None and self.step % c.val_every == 0)
                        or (c.val_every is None and end_of_epoch)
                    ):
                        stop = self._after_validation(self.validate()) or stop
                    if self.ckpt is not None and (
                        (c.checkpoint_every is not None and self.step % c.checkpoint_every == 0)
                        or (c.checkpoint_every is None and end_of_epoch)
                    ):
                        self.save_checkpoint()
                    if last:
                        stop = True
                    if stop:
                        break
            # the end: a last validation and checkpoint when the loop did not just make them
            self._flush_window(window, window_n, bar)
            if self.val_loader is not None and self._val_step != self.step and not self.early.get("stopped"):
                self._after_validation(self.validate())
            if self.ckpt is not None and self._ckpt_step != self.step:
                self.save_checkpoint()
            else:
                self._plot()
        finally:
            bar.close()
            if self._tb is not None:
                self._tb.close()
        summary = FitSummary(
            steps=self.step,
            epochs=self.epoch + self.batch_in_epoch / self.batches_per_epoch,
            stopped_early=bool(self.early.get("stopped")),
            best_metric=self.early.get("best"),
            best_step=self.early.get("best_step"),
            best_checkpoint=(
                str(self.ckpt.best_path) if self.ckpt is not None and self.ckpt.best_path.is_file() else None
            ),
            last_checkpoint=str(self._last_ckpt) if self._last_ckpt is not None else None,
            train_metrics=dict(self.last_train),
            val_metrics=dict(self.last_val),
            resumed_from=self.resumed_from,
            world_size=self.world_size,
            wall_time_s=time.perf_counter() - t0,
        )
        if self.is_main and self.out_dir is not None:
            (self.out_dir / "summary.json").write_text(json.dumps(summary.to_dict(), indent=2) + "\n")
        return summary

    def _flush_window(
        self, window: dict[str, torch.Tensor], window_n: dict[str, int], bar: Any
    ) -> dict[str, float] | None:
        if not window:
            return None
        means = {f"train/{k}": window[k] / window_n[k] for k in window}
        means = D.all_reduce_mean(means)
        means.update(self._lr_metrics())
        window.clear()
        window_n.clear()
        self.last_train = means
        self._log_row(means)
        if "train/loss" in means:
            bar.set_postfix(loss=f"{means['train/loss']:.4g}", refresh=False)
        return means


def _grad_scaler(device: torch.device, enabled: bool) -> Any:
    if not enabled:
        return None
    amp = getattr(torch, "amp", None)
    if amp is not None and hasattr(amp, "GradScaler"):
        return amp.GradScaler(device.type)
    return torch.cuda.amp.GradScaler()  # pragma: no cover - torch < 2.3
