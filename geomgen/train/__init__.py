"""Training: a resumable, data-parallel trainer with pluggable step logic.

Quick start::

    from geomgen.train import Trainer, TrainConfig, SupervisedTask
    import torch.nn.functional as F

    config = TrainConfig(max_steps=1000, batch_size=64, lr=3e-4, schedule="cosine",
                         warmup_steps=100, val_every=200, checkpoint_every=200,
                         early_stopping_metric="loss", out_dir="runs/exp1", resume=True)
    summary = Trainer(model, SupervisedTask(F.mse_loss), train_set, val_set, config).fit()

Run the same script under ``torchrun --nproc_per_node=N`` for data
parallelism; re-run it after a crash (``resume=True`` / ``--resume``) to
continue from the last checkpoint with the same data order.

Modules: :mod:`~geomgen.train.trainer` (the loop), :mod:`~geomgen.train.task`
(the step protocol, incl. several optimizers for GANs),
:mod:`~geomgen.train.config`, :mod:`~geomgen.train.optim`,
:mod:`~geomgen.train.schedules`, :mod:`~geomgen.train.checkpoint`,
:mod:`~geomgen.train.logging`, :mod:`~geomgen.train.distributed`,
:mod:`~geomgen.train.fit_mesh` (:func:`fit_mesh_to_silhouettes`: a mesh from
calibrated multi-view masks by differentiable rendering, ``geomgen fit``).
"""

from __future__ import annotations

from geomgen.train.checkpoint import (
    CheckpointManager,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from geomgen.train.config import TrainConfig
from geomgen.train.distributed import (
    DistInfo,
    ResumableSampler,
    all_reduce_mean,
    barrier,
    cleanup_distributed,
    get_rank,
    get_world_size,
    init_distributed,
    is_main_process,
    unwrap_model,
)
from geomgen.train.fit_mesh import FitResult, fit_mesh_to_silhouettes, silhouette_iou
from geomgen.train.logging import CSVLogger, plot_loss_curve
from geomgen.train.optim import OPTIMIZERS, build_optimizer
from geomgen.train.schedules import SCHEDULES, WarmupScheduler, build_scheduler
from geomgen.train.task import NonFiniteLossError, OptimizerStep, SupervisedTask, Task, TrainTask
from geomgen.train.trainer import FitSummary, Trainer, move_to_device

__all__ = [
    "fit_mesh_to_silhouettes",
    "FitResult",
    "silhouette_iou",
    "Trainer",
    "TrainConfig",
    "FitSummary",
    "Task",
    "TrainTask",
    "SupervisedTask",
    "OptimizerStep",
    "NonFiniteLossError",
    "build_optimizer",
    "OPTIMIZERS",
    "build_scheduler",
    "WarmupScheduler",
    "SCHEDULES",
    "save_checkpoint",
    "load_checkpoint",
    "CheckpointManager",
    "rng_state",
    "set_rng_state",
    "CSVLogger",
    "plot_loss_curve",
    "DistInfo",
    "init_distributed",
    "cleanup_distributed",
    "get_rank",
    "get_world_size",
    "is_main_process",
    "barrier",
    "all_reduce_mean",
    "ResumableSampler",
    "unwrap_model",
    "move_to_device",
]
