"""The task protocol: what a model computes in a training and a validation step.

The :class:`~geomgen.train.Trainer` owns the loop (data order, devices,
optimizer steps, clipping, AMP, distribution, checkpoints, logs); a *task*
owns the maths.  Any object with these methods is a task (duck typing; the
:class:`Task` base class only adds defaults):

``training_step(model, batch, step) -> result``
    ``step`` is the number of training steps already done (0-based).
    ``result`` is either

    * a mapping with a ``"loss"`` tensor (and optionally more scalar tensors
      or floats, which are logged as ``train/<key>``): the trainer zeroes the
      gradients of every optimizer, back-propagates ``loss`` once and steps
      every optimizer; or
    * an iterable of :class:`OptimizerStep` items (or ``(optimizer_name,
      loss)`` / ``(optimizer_name, loss, logs)`` tuples): for each item, in
      order, the trainer zeroes that optimizer's gradients, back-propagates
      the loss, synchronises and clips the gradients, and steps that
      optimizer.  When ``training_step`` is a *generator* (``yield`` instead
      of ``return``), each update happens before the generator resumes, so
      the next loss is computed with the updated weights — the alternating
      D/G updates of a GAN::

          def training_step(self, model, batch, step):
              fake = model.generator(noise)
              d_loss = ...(model.discriminator(batch), model.discriminator(fake.detach()))
              yield OptimizerStep("disc", d_loss)
              g_loss = ...(model.discriminator(fake))          # sees the updated D
              yield OptimizerStep("gen", g_loss)

      A list of precomputed losses is only right when the graphs do not go
      through parameters an earlier item updates (autograd would otherwise
      complain that a tensor was modified in place).

``validation_step(model, batch) -> Mapping[str, float | Tensor]``
    Scalar metrics of one batch, averaged over the batch.  The trainer
    averages them over the validation set weighted by batch size (and over
    ranks), and logs them as ``val/<key>``.  Runs under ``torch.no_grad()``
    with ``model.eval()`` on the unwrapped model.

Optional methods:

``configure_optimizers(model, config) -> None | Optimizer | Mapping[str, Optimizer | (Optimizer, scheduler)]``
    ``None`` (the default): one optimizer ``"main"`` built from the config
    over the whole model.  A mapping names several optimizers; those given
    without a scheduler get the config's schedule.  Schedulers are stepped
    once per training step, whether or not their optimizer stepped.
``state_dict() / load_state_dict(state)``
    Extra task state saved in checkpoints (tensors and plain values only).
``on_train_start(trainer)``, ``on_validation_end(trainer, metrics)``
    Hooks; ``metrics`` are the averaged validation metrics (no prefix).

In distributed runs ``model`` is the ``DistributedDataParallel`` wrapper in
``ddp`` mode (call it, not its sub-modules, so gradients are synchronised) and
the plain model in ``allreduce`` mode (the default when there are several
optimizers).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, Union, runtime_checkable

import torch

from geomgen.errors import GeomgenError

if TYPE_CHECKING:
    from geomgen.train.config import TrainConfig

__all__ = [
    "OptimizerStep",
    "StepResult",
    "TrainTask",
    "Task",
    "SupervisedTask",
    "NonFiniteLossError",
]


class NonFiniteLossError(GeomgenError, FloatingPointError):
    """A training loss was NaN or infinite (the message gives the step and optimizer)."""


@dataclass
class OptimizerStep:
    """One update inside a training step: back-propagate ``loss`` and step
    optimizer ``optimizer``; ``logs`` are extra scalars to log."""

    optimizer: str
    loss: torch.Tensor
    logs: Mapping[str, float | torch.Tensor] = field(default_factory=dict)


StepResult = Union[Mapping[str, Any], Iterable[Union[OptimizerStep, tuple]]]


@runtime_checkable
class TrainTask(Protocol):
    """What the trainer needs from a task (see the module docstring)."""

    def training_step(self, model: torch.nn.Module, batch: Any, step: int) -> StepResult: ...

    def validation_step(self, model: torch.nn.Module, batch: Any) -> Mapping[str, float | torch.Tensor]: ...


class Task:
    """Base class with the optional methods' defaults; override ``training_step``
    and (when there is validation data) ``validation_step``."""

    def configure_optimizers(self, model: torch.nn.Module, config: TrainConfig) -> Any:
        """``None``: let the trainer build one optimizer ``"main"`` from ``config``."""
        return None

    def training_step(self, model: torch.nn.Module, batch: Any, step: int) -> StepResult:
        raise NotImplementedError(f"{type(self).__name__} does not implement training_step")

    def validation_step(self, model: torch.nn.Module, batch: Any) -> Mapping[str, float | torch.Tensor]:
        raise NotImplementedError(f"{type(self).__name__} does not implement validation_step")

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pass

    def on_train_start(self, trainer: Any) -> None:
        pass

    def on_validation_end(self, trainer: Any, metrics: Mapping[str, float]) -> None:
        pass


class SupervisedTask(Task):
    """``loss_fn(model(inputs), targets)`` on batches ``(inputs, targets)``.

    Args:
        loss_fn: ``(prediction, target) -> scalar tensor``, a mean over the
            batch (e.g. ``torch.nn.functional.mse_loss``).
        metrics: Extra validation metrics ``name -> fn(prediction, target)``,
            each a batch mean.

    Validation reports ``loss`` and the extra metrics.
    """

    def __init__(
        self,
        loss_fn: Callable[[Any, Any], torch.Tensor],
        metrics: Mapping[str, Callable[[Any, Any], torch.Tensor | float]] | None = None,
    ) -> None:
        self.loss_fn = loss_fn
        self.metrics = dict(metrics or {})

    @staticmethod
    def _split(batch: Any) -> tuple[Any, Any]:
        if isinstance(batch, Mapping):
            return batch["input"], batch["target"]
        inputs, targets = batch
        return inputs, targets

    def training_step(self, model: torch.nn.Module, batch: Any, step: int) -> dict[str, torch.Tensor]:
        x, y = self._split(batch)
        return {"loss": self.loss_fn(model(x), y)}

    def validation_step(self, model: torch.nn.Module, batch: Any) -> dict[str, float | torch.Tensor]:
        x, y = self._split(batch)
        pred = model(x)
        out: dict[str, float | torch.Tensor] = {"loss": self.loss_fn(pred, y)}
        for name, fn in self.metrics.items():
            out[name] = fn(pred, y)
        return out
