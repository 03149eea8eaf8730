"""Data parallelism through ``torch.distributed``, launched with ``torchrun``.

``torchrun --nproc_per_node=N script.py`` starts N processes and gives each
the environment variables ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``.  :func:`init_distributed` reads them and
joins the process group with the ``gloo`` backend on CPU or ``nccl`` on CUDA
(one GPU per process: ``cuda:LOCAL_RANK``).  Without those variables every
helper here behaves as a world of one process (rank 0), so the same code runs
unchanged on a laptop.

Conventions: rank 0 is the *main* process, the only one that writes files or
draws progress bars; metrics are averaged over ranks with :func:`all_reduce_mean`;
each rank reads its own shard of the data through :class:`ResumableSampler`, a
``DistributedSampler`` that can also start mid-epoch.

Two ways of synchronising gradients (see :func:`sync_gradients`):

* wrap the model in ``DistributedDataParallel`` (:func:`wrap_ddp`): gradients
  are averaged during ``backward()``, overlapping communication; the task
  must call the wrapper's ``forward`` once per backward;
* ``"allreduce"``: the plain model is used and the trainer averages the
  gradients of the parameters an optimizer is about to update, after each
  backward.  Works for any call pattern (several optimizers, GAN-style
  alternation, calling sub-modules directly) at the cost of no overlap.
"""

from __future__ import annotations

import datetime
import inspect
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler

from geomgen import checks as V

__all__ = [
    "DistInfo",
    "launched_by_torchrun",
    "init_distributed",
    "cleanup_distributed",
    "is_distributed",
    "get_rank",
    "get_world_size",
    "is_main_process",
    "barrier",
    "all_reduce_mean",
    "all_gather_object",
    "broadcast_module",
    "sync_gradients",
    "wrap_ddp",
    "unwrap_model",
    "ResumableSampler",
]


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``rank`` in ``[0, world_size)``, ``local_rank``
    on this node, the ``backend`` (``None`` when not distributed) and the ``device``."""

    rank: int
    world_size: int
    local_rank: int
    backend: str | None
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """True when the environment says this process is one of several (``WORLD_SIZE > 1``)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


def is_distributed() -> bool:
    """True inside an initialised process group with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    """This process's rank (0 when not distributed)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def get_world_size() -> int:
    """Number of processes (1 when not distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main_process() -> bool:
    """True on rank 0 (and when not distributed)."""
    return get_rank() == 0


def _resolve_device(device: str | torch.device, local_rank: int) -> torch.device:
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    d = torch.device(device)
    if d.type == "cuda" and d.index is None:
        return torch.device(f"cuda:{local_rank}")
    return d


def init_distributed(
    device: str | torch.device = "auto",
    backend: str | None = None,
    timeout_s: float = 1800.0,
) -> DistInfo:
    """Join the process group described by torchrun's environment variables.

    Args:
        device: ``"auto"`` (``cuda:LOCAL_RANK`` when CUDA is available, else
            CPU), ``"cpu"``, ``"cuda"`` (= ``cuda:LOCAL_RANK``) or a device.
        backend: ``None`` picks ``"nccl"`` for CUDA devices and ``"gloo"`` otherwise.
        timeout_s: Collective timeout in seconds.

    Returns:
        A :class:`DistInfo`.  Without torchrun's variables (``WORLD_SIZE``
        unset or 1) nothing is initialised and rank 0 of a world of 1 is
        returned.  An already initialised group is used as it is.
    """
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local_rank = int(os.environ.get("LOCAL_RANK", rank))
        dev = _resolve_device(device, local_rank)
        return DistInfo(rank, world, local_rank, dist.get_backend(), dev)
    if not launched_by_torchrun():
        local_rank = int(os.environ.get("LOCAL_RANK", "0") or 0)
        return DistInfo(0, 1, local_rank, None, _resolve_device(device, local_rank))
    if not dist.is_available():
        raise RuntimeError("torch.distributed is not available in this build of torch")
    rank = int(os.environ["RANK"])
    world = int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    dev = _resolve_device(device, local_rank)
    if backend is None:
        backend = "nccl" if dev.type == "cuda" else "gloo"
    V.check_choice(backend, "backend", ("gloo", "nccl", "mpi"), fn="init_distributed")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    kwargs: dict[str, Any] = {}
    has_device_id = "device_id" in inspect.signature(dist.init_process_group).parameters
    if backend == "nccl" and dev.type == "cuda" and has_device_id:
        kwargs["device_id"] = dev  # binds the communicator to this GPU (torch >= 2.3)
    dist.init_process_group(
        backend=backend,
        init_method="env://",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=timeout_s),
        **kwargs,
    )
    return DistInfo(rank, world, local_rank, backend, dev)


def cleanup_distributed() -> None:
    """Leave the process group (no-op when there is none)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every rank (no-op when not distributed)."""
    if is_distributed():
        if dist.get_backend() == "nccl":
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


def _comm_device() -> torch.device:
    if is_distributed() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_mean(metrics: Mapping[str, float | torch.Tensor]) -> dict[str, float]:
    """Average scalar metrics over ranks (one collective); returns Python floats.

    Every rank must pass the same keys (they are sorted, so order does not
    matter).  Without distribution the values are returned as floats.
    """
    keys = sorted(metrics)
    if not keys:
        return {}
    vals = torch.stack(
        [torch.as_tensor(metrics[k], dtype=torch.float64).detach().reshape(()).cpu() for k in keys]
    )
    if is_distributed():
        vals = vals.to(_comm_device())
        dist.all_reduce(vals, op=dist.ReduceOp.SUM)
        vals = vals.cpu() / dist.get_world_size()
    return {k: float(v) for k, v in zip(keys, vals.tolist())}


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over ranks (returned on its own device); identity when not distributed."""
    if not is_distributed():
        return values
    out = values.detach().to(_comm_device(), copy=True)
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out.to(values.device)


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` when not distributed)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_module(module: torch.nn.Module, src: int = 0, buffers_only: bool = False) -> None:
    """Copy rank ``src``'s parameters (unless ``buffers_only``) and buffers to every rank."""
    if not is_distributed():
        return
    tensors = [] if buffers_only else [p.data for p in module.parameters()]
    tensors += [b for b in module.buffers()]
    for t in tensors:
        if t.device.type != _comm_device().type:
            tmp = t.to(_comm_device())
            dist.broadcast(tmp, src=src)
            t.copy_(tmp)
        else:
            dist.broadcast(t, src=src)


def sync_gradients(params: Sequence[torch.nn.Parameter]) -> None:
    """Average the gradients of ``params`` over ranks, in place.

    One collective per (dtype, device).  A parameter whose gradient is
    ``None`` on every rank keeps ``None``; one that has a gradient on some ranks
    only gets the sum of those divided by the world size (the others counted
    as zero), as ``DistributedDataParallel`` with unused parameters does.
    """
    if not is_distributed():
        return
    world = dist.get_world_size()
    groups: dict[tuple[torch.dtype, torch.device], list[torch.nn.Parameter]] = {}
    for p in params:
        if p.requires_grad:
            groups.setdefault((p.dtype, p.device), []).append(p)
    for (dtype, device), ps in groups.items():
        grads = [
            p.grad.detach().reshape(-1) if p.grad is not None else torch.zeros(p.numel(), dtype=dtype, device=device)
            for p in ps
        ]
        has_grad = torch.tensor([1.0 if p.grad is not None else 0.0 for p in ps], dtype=dtype, device=device)
        flat = torch.cat(grads + [has_grad])
        flat = all_reduce_sum(flat) / world
        offset = 0
        n_params = len(ps)
        mask = flat[-n_params:]
        for i, p in enumerate(ps):
            n = p.numel()
            if float(mask[i]) > 0:
                g = flat[offset : offset + n].view_as(p)
                if p.grad is None:
                    p.grad = g.clone()
                else:
                    p.grad.copy_(g)
            offset += n


def wrap_ddp(
    model: torch.nn.Module, device: torch.device, find_unused_parameters: bool = False
) -> torch.nn.Module:
    """Wrap ``model`` in ``DistributedDataParallel`` (returned unchanged when not distributed).

    The parameters are broadcast from rank 0 when the wrapper is built, so
    every rank starts from the same weights.
    """
    if not is_distributed():
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    return DistributedDataParallel(
        model, device_ids=ids, output_device=ids[0] if ids else None, find_unused_parameters=find_unused_parameters
    )


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside a ``DistributedDataParallel`` / ``DataParallel`` wrapper (or ``model``)."""
    while isinstance(model, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)):
        model = model.module
    return model


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` that can start an epoch after its first ``start`` indices.

    The order of an epoch is a function of ``(seed, epoch)`` only (a
    ``torch.randperm`` seeded with ``seed + epoch``, padded or cut to a
    multiple of ``num_replicas`` and dealt out round-robin: rank ``r`` gets
    positions ``r, r + num_replicas, ...``), so a resumed run that calls
    ``set_epoch(epoch, start)`` sees exactly the indices the uninterrupted run
    saw after its first ``start`` samples of that epoch.  Works without a
    process group (pass ``num_replicas`` and ``rank``).
    """

    def __init__(
        self,
        dataset: Any,
        *,
        num_replicas: int = 1,
        rank: int = 0,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last)
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:  # type: ignore[override]
        """Select the epoch and skip this rank's first ``start`` indices of it."""
        super().set_epoch(epoch)
        self.start = V.check_int(start, "start", min_value=0, fn="ResumableSampler.set_epoch")

    def __iter__(self) -> Iterator[int]:
        it = super().__iter__()
        for _ in range(min(self.start, self.num_samples)):
            next(it)
        return it

    def __len__(self) -> int:
        return max(0, self.num_samples - self.start)
