"""``TrainConfig``: every knob of :class:`geomgen.train.Trainer`, checked on creation.

Also maps to and from command-line flags (:meth:`TrainConfig.add_arguments`,
:meth:`TrainConfig.from_args`): each field ``foo_bar`` becomes ``--foo-bar``,
booleans get ``--foo``/``--no-foo``, so a training script gets ``--resume``,
``--max-steps``, ``--lr`` ... for free.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from geomgen import checks as V
from geomgen.train.optim import OPTIMIZERS
from geomgen.train.schedules import SCHEDULES

__all__ = ["TrainConfig"]

_FN = "TrainConfig"


@dataclass
class TrainConfig:
    """Settings of a training run.

    Length of the run: ``max_steps`` (training steps = batches per process)
    and/or ``epochs`` (passes over the training set); training stops at
    whichever comes first, and at least one is required.

    Attributes:
        max_steps: Number of training steps; ``None`` = ``epochs`` full epochs.
        epochs: Number of epochs; ``None`` = as many as ``max_steps`` needs.
        batch_size: Samples per step *per process* (the global batch is
            ``batch_size * world_size``).
        val_batch_size: Validation batch size; ``None`` = ``batch_size``.
        num_workers: DataLoader worker processes (0 = load in the main process;
            needed for bit-exact resume when the dataset draws random numbers).
        shuffle: Reshuffle the training set every epoch (order = f(seed, epoch)).
        drop_last: Drop the last incomplete batch of every epoch.
        pin_memory: DataLoader ``pin_memory`` (useful on CUDA).
        optimizer: ``"adamw"`` or ``"sgd"`` (see :func:`~geomgen.train.build_optimizer`).
        lr: Peak learning rate, ``>= 0``.
        momentum: SGD momentum in ``[0, 1)``.
        nesterov: SGD Nesterov momentum (needs ``momentum > 0``).
        weight_decay: ``>= 0``, not applied to biases and normalisation layers.
        betas: AdamW betas.
        eps: AdamW epsilon.
        schedule: ``"constant"``, ``"cosine"``, ``"linear"`` or ``"inverse-sqrt"``.
        warmup_steps: Linear warm-up steps, ``<= `` the run's total steps.
        min_lr: Final/floor learning rate of the decaying schedules.
        clip_grad_norm: Clip each optimizer's gradients to this global L2 norm
            (``None`` = no clipping); the pre-clip norm is logged as ``grad_norm``.
        val_every: Validate every this many steps; ``None`` = at the end of
            every epoch.  Validation also runs at the end of training.
        checkpoint_every: Save ``ckpt-<step>.pt`` every this many steps;
            ``None`` = at the end of every epoch.  One is always saved at the end.
        keep_last: Step checkpoints to keep (``best.pt`` is kept apart).
        log_every: Log averaged training metrics every this many steps.
        early_stopping_metric: Validation metric (a key of ``validation_step``'s
            result, ``"val/"`` prefix optional) whose best value is kept in
            ``best.pt``; ``None`` = no best checkpoint, no early stopping.
        early_stopping_mode: ``"min"`` or ``"max"``.
        early_stopping_patience: Stop after this many validations without
            improvement; ``None`` = never stop early (``best.pt`` still kept).
        early_stopping_min_delta: Improvements smaller than this do not count.
        seed: Seeds the data order, and torch/NumPy/``random`` (``seed + rank``).
        out_dir: Folder for ``metrics.csv``, ``loss.png``, ``config.json``,
            ``checkpoints/`` and ``tensorboard/``; ``None`` = write nothing.
        resume: ``False``: start fresh (``out_dir`` must hold no checkpoints);
            ``True``: continue from the newest checkpoint in ``out_dir`` if any;
            a path: continue from that checkpoint.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (under
            torchrun ``"auto"``/``"cuda"`` mean ``cuda:LOCAL_RANK``).
        amp: Mixed precision (autocast) in the training step; off by default.
        amp_dtype: ``"float16"`` (with loss scaling) or ``"bfloat16"``; ``None``
            = float16 on CUDA, bfloat16 on CPU.
        ddp_mode: ``"auto"``, ``"ddp"`` or ``"allreduce"`` (see
            :mod:`geomgen.train.distributed`); ``"auto"`` = ``"ddp"`` for one
            optimizer, ``"allreduce"`` for several.
        find_unused_parameters: Passed to ``DistributedDataParallel``.
        check_finite: Raise when a loss is NaN/Inf (one device sync per step).
        progress: Show tqdm progress bars (rank 0 only).
        tensorboard: Also log to TensorBoard (needs ``tensorboard``).
        plot: Redraw ``loss.png`` at every checkpoint and at the end.
    """

    max_steps: int | None = None
    epochs: int | None = None
    batch_size: int = 32
    val_batch_size: int | None = None
    num_workers: int = 0
    shuffle: bool = True
    drop_last: bool = False
    pin_memory: bool = False
    optimizer: str = "adamw"
    lr: float = 1e-3
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    schedule: str = "constant"
    warmup_steps: int = 0
    min_lr: float = 0.0
    clip_grad_norm: float | None = None
    val_every: int | None = None
    checkpoint_every: int | None = None
    keep_last: int = 3
    log_every: int = 10
    early_stopping_metric: str | None = None
    early_stopping_mode: str = "min"
    early_stopping_patience: int | None = None
    early_stopping_min_delta: float = 0.0
    seed: int = 0
    out_dir: str | None = None
    resume: bool | str = False
    device: str = "auto"
    amp: bool = False
    amp_dtype: str | None = None
    ddp_mode: str = "auto"
    find_unused_parameters: bool = False
    check_finite: bool = True
    progress: bool = True
    tensorboard: bool = False
    plot: bool = True

    def __post_init__(self) -> None:
        self.validate()

    # -- checks -----------------------------------------------------------

    def validate(self) -> None:
        """Check every field; raise :class:`~geomgen.errors.InvalidInputError` naming the first bad one."""

        def opt_int(name: str, lo: int) -> None:
            v = getattr(self, name)
            if v is not None:
                V.check_int(v, name, min_value=lo, fn=_FN)

        def flag(name: str) -> None:
            V.check_bool(getattr(self, name), name, fn=_FN)

        opt_int("max_steps", 1)
        opt_int("epochs", 1)
        if self.max_steps is None and self.epochs is None:
            raise V.fail("max_steps", "or 'epochs' must be given (both are None)", _FN)
        V.check_int(self.batch_size, "batch_size", min_value=1, fn=_FN)
        opt_int("val_batch_size", 1)
        V.check_int(self.num_workers, "num_workers", min_value=0, fn=_FN)
        for name in ("shuffle", "drop_last", "pin_memory", "nesterov", "amp", "find_unused_parameters",
                     "check_finite", "progress", "tensorboard", "plot"):
            flag(name)
        V.check_choice(self.optimizer, "optimizer", OPTIMIZERS, fn=_FN)
        V.check_float(self.lr, "lr", nonnegative=True, fn=_FN)
        m = V.check_float(self.momentum, "momentum", nonnegative=True, fn=_FN)
        if m >= 1.0:
            raise V.fail("momentum", f"must be < 1, got {m}", _FN)
        if self.nesterov and self.optimizer == "sgd" and m == 0.0:
            raise V.fail("nesterov", "needs momentum > 0, got momentum=0.0", _FN)
        V.check_float(self.weight_decay, "weight_decay", nonnegative=True, fn=_FN)
        if not isinstance(self.betas, (tuple, list)) or len(self.betas) != 2:
            raise V.fail("betas", f"must be a pair (beta1, beta2), got {self.betas!r}", _FN)
        for b in self.betas:
            if V.check_float(b, "betas", nonnegative=True, fn=_FN) >= 1.0:
                raise V.fail("betas", f"entries must lie in [0, 1), got {tuple(self.betas)!r}", _FN)
        self.betas = (float(self.betas[0]), float(self.betas[1]))
        V.check_float(self.eps, "eps", positive=True, fn=_FN)
        V.check_choice(self.schedule, "schedule", SCHEDULES, fn=_FN)
        V.check_int(self.warmup_steps, "warmup_steps", min_value=0, fn=_FN)
        min_lr = V.check_float(self.min_lr, "min_lr", nonnegative=True, fn=_FN)
        if self.schedule != "constant" and min_lr > self.lr:
            raise V.fail("min_lr", f"must be <= lr ({self.lr}), got {min_lr}", _FN)
        if self.max_steps is not None and self.schedule != "inverse-sqrt" and self.warmup_steps > self.max_steps:
            raise V.fail("warmup_steps", f"must be <= max_steps ({self.max_steps}), got {self.warmup_steps}", _FN)
        if self.clip_grad_norm is not None:
            V.check_float(self.clip_grad_norm, "clip_grad_norm", positive=True, fn=_FN)
        opt_int("val_every", 1)
        opt_int("checkpoint_every", 1)
        V.check_int(self.keep_last, "keep_last", min_value=1, fn=_FN)
        V.check_int(self.log_every, "log_every", min_value=1, fn=_FN)
        if self.early_stopping_metric is not None and (
            not isinstance(self.early_stopping_metric, str) or not self.early_stopping_metric
        ):
            raise V.fail(
                "early_stopping_metric", f"must be a metric name or None, got {self.early_stopping_metric!r}", _FN
            )
        V.check_choice(self.early_stopping_mode, "early_stopping_mode", ("min", "max"), fn=_FN)
        opt_int("early_stopping_patience", 1)
        V.check_float(self.early_stopping_min_delta, "early_stopping_min_delta", nonnegative=True, fn=_FN)
        V.check_int(self.seed, "seed", min_value=0, fn=_FN)
        if self.out_dir is not None:
            if not isinstance(self.out_dir, (str, os.PathLike)):
                raise V.fail("out_dir", f"must be a path or None, got {type(self.out_dir).__name__}", _FN)
            self.out_dir = os.fspath(self.out_dir)
        if not isinstance(self.resume, (bool, str, os.PathLike)):
            raise V.fail("resume", f"must be True, False or a checkpoint path, got {self.resume!r}", _FN)
        if not isinstance(self.resume, bool):
            self.resume = os.fspath(self.resume)
        if self.resume is True and self.out_dir is None:
            raise V.fail("resume", "=True needs an out_dir to look for checkpoints in", _FN)
        if not isinstance(self.device, str):
            self.device = str(self.device)
        V.check_choice(self.amp_dtype, "amp_dtype", (None, "float16", "bfloat16"), fn=_FN)
        V.check_choice(self.ddp_mode, "ddp_mode", ("auto", "ddp", "allreduce"), fn=_FN)

    # -- conversions -------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Fields as plain values (``betas`` as a list), for JSON and checkpoints."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if not f.name.startswith("_")}
        d["betas"] = list(d["betas"])
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        names = {f.name for f in dataclasses.fields(cls) if not f.name.startswith("_")}
        unknown = sorted(set(d) - names)
        if unknown:
            raise V.fail("config", f"has unknown keys {unknown}; known: {sorted(names)}", _FN)
        kw = dict(d)
        if "betas" in kw and isinstance(kw["betas"], list):
            kw["betas"] = tuple(kw["betas"])
        return cls(**kw)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    # -- command line ------------------------------------------------------

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser,
                      defaults: TrainConfig | None = None) -> dict[str, argparse.Action]:
        """Add a ``--flag`` per field to ``parser`` (defaults from ``defaults`` or the class).

        Returns:
            field name -> the :class:`argparse.Action` added for it (e.g. to
            reword a flag's ``help`` or wrap its ``default``).
        """
        group = parser.add_argument_group("training")
        actions: dict[str, argparse.Action] = {}
        for f in dataclasses.fields(cls):
            if f.name.startswith("_"):
                continue
            default = getattr(defaults, f.name) if defaults is not None else (
                f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            )
            flag = "--" + f.name.replace("_", "-")
            doc = f"(default: {default!r})"
            if f.name == "resume":
                actions[f.name] = group.add_argument(
                    flag, nargs="?", const=True, default=default, metavar="CHECKPOINT",
                    help="continue from the newest checkpoint in --out-dir, or from CHECKPOINT " + doc,
                )
            elif isinstance(default, bool):
                actions[f.name] = group.add_argument(flag, action=argparse.BooleanOptionalAction, default=default,
                                                     help=doc)
            elif f.name == "betas":
                actions[f.name] = group.add_argument(flag, type=float, nargs=2, default=default, metavar=("B1", "B2"),
                                                     help=doc)
            else:
                kind = {
                    "max_steps": int, "epochs": int, "val_batch_size": int, "val_every": int,
                    "checkpoint_every": int, "early_stopping_patience": int, "clip_grad_norm": float,
                }.get(f.name)
                if kind is None:
                    kind = type(default) if default is not None else str
                actions[f.name] = group.add_argument(flag, type=_none_or(kind), default=default, help=doc)
        return actions

    @classmethod
    def from_args(cls, args: argparse.Namespace | Sequence[str] | None = None) -> TrainConfig:
        """Build from parsed arguments (a namespace from a parser prepared with
        :meth:`add_arguments`) or from a list of command-line strings."""
        if args is None or isinstance(args, Sequence):
            parser = argparse.ArgumentParser()
            cls.add_arguments(parser)
            args = parser.parse_args(args)
        names = [f.name for f in dataclasses.fields(cls) if not f.name.startswith("_")]
        kw = {n: getattr(args, n) for n in names if hasattr(args, n)}
        if isinstance(kw.get("betas"), list):
            kw["betas"] = tuple(kw["betas"])
        return cls(**kw)


def _none_or(kind: type) -> Any:
    def parse(s: str) -> Any:
        if s.lower() == "none":
            return None
        return kind(s)

    parse.__name__ = kind.__name__
    return parse
