"""Data-parallel training with torchrun: 2 processes on gloo (CPU).

One torchrun launch runs four trainings (the process group is joined once):
DDP and all-reduce gradient sync of a supervised model, a two-optimizer GAN
(all-reduce), and a DDP run that crashes on both ranks and resumes.  The test
then checks the ranks agree bit for bit, equal single-process training with
the same global batch, and that the resume is exact.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F

from geomgen.train import SupervisedTask, Trainer, load_checkpoint

pytestmark = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(), reason="torch.distributed with gloo is not available"
)

COMMON = r'''
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset


def data(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return TensorDataset(x, x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]) + 0.1 * torch.randn(n, 1, generator=g))


def model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))


def config(out, **kw):
    from geomgen.train import TrainConfig
    base = dict(max_steps=8, batch_size=4, optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=1e-3,
                schedule="cosine", warmup_steps=2, clip_grad_norm=1.0, val_every=4, checkpoint_every=4,
                log_every=2, progress=False, early_stopping_metric="loss", out_dir=out)
    base.update(kw)
    return TrainConfig(**base)
'''

SCRIPT = COMMON + r'''
import json, sys
import torch.distributed as dist
from geomgen.train import OptimizerStep, SupervisedTask, Task, Trainer, build_optimizer, get_rank


class Crash(Exception):
    pass


class CrashAt(SupervisedTask):
    def training_step(self, m, batch, step):
        if step == 5:
            raise Crash()
        return super().training_step(m, batch, step)


class Gan(Task):
    def configure_optimizers(self, m, config):
        return {"disc": build_optimizer(m.disc, "adamw", lr=1e-2), "gen": build_optimizer(m.gen, "adamw", lr=1e-2)}

    def training_step(self, m, batch, step):
        fake = m.gen(torch.randn(batch[0].shape[0], 2))  # different noise on each rank
        d_loss = F.softplus(-m.disc(batch[0])).mean() + F.softplus(m.disc(fake.detach())).mean()
        yield OptimizerStep("disc", d_loss)
        yield OptimizerStep("gen", F.softplus(-m.disc(fake)).mean())


out = sys.argv[1]
train, val = data(32, 0), data(7, 1)  # 7 validation samples: shards of 4 and 3
results = {}
for name, kw in (("ddp", {"ddp_mode": "ddp"}), ("allreduce", {"ddp_mode": "allreduce"})):
    m = model()
    s = Trainer(m, SupervisedTask(F.mse_loss), train, val, config(f"{out}/{name}", **kw)).fit()
    torch.save(m.state_dict(), f"{out}/{name}_rank{get_rank()}.pt")
    results[name] = {"val": s.val_metrics, "steps": s.steps, "world": s.world_size,
                     "train_loss": s.train_metrics["train/loss"]}

torch.manual_seed(0)
gan = torch.nn.Module()
gan.gen, gan.disc = torch.nn.Linear(2, 4), torch.nn.Linear(4, 1)
torch.manual_seed(1 + get_rank())  # different initial weights per rank: the trainer broadcasts rank 0's
gan.gen.reset_parameters()
Trainer(gan, Gan(), train, config=config(f"{out}/gan", max_steps=6, early_stopping_metric=None)).fit()
torch.save(gan.state_dict(), f"{out}/gan_rank{get_rank()}.pt")

m = model()
try:
    Trainer(m, CrashAt(F.mse_loss), train, val, config(f"{out}/resume", ddp_mode="ddp")).fit()
except Crash:
    pass
m = model()
Trainer(m, SupervisedTask(F.mse_loss), train, val, config(f"{out}/resume", ddp_mode="ddp", resume=True)).fit()
torch.save(m.state_dict(), f"{out}/resume_rank{get_rank()}.pt")

if get_rank() == 0:
    with open(f"{out}/results.json", "w") as f:
        json.dump(results, f)
dist.destroy_process_group()
'''


def _load(path):
    return torch.load(path, weights_only=True)


def _equal(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def torchrun_out(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    script = tmp / "ddp_script.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
           str(script), str(tmp)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-8000:]
    return tmp


def _single_process(tmp, **kw):
    ns: dict = {}
    exec(COMMON, ns)
    m = ns["model"]()
    cfg = ns["config"](str(tmp), batch_size=8, **kw)  # the same global batch as 2 x 4
    s = Trainer(m, SupervisedTask(F.mse_loss), ns["data"](32, 0), ns["data"](7, 1), cfg).fit()
    return m.state_dict(), s


def test_ranks_agree_and_match_single_process(torchrun_out, tmp_path):
    out = torchrun_out
    results = json.loads((out / "results.json").read_text())
    ref, s = _single_process(tmp_path / "single")
    for name in ("ddp", "allreduce"):
        r0, r1 = _load(out / f"{name}_rank0.pt"), _load(out / f"{name}_rank1.pt")
        assert _equal(r0, r1), f"{name}: the ranks' weights differ"
        for k in ref:
            torch.testing.assert_close(r0[k], ref[k], rtol=1e-5, atol=1e-6)
        res = results[name]
        assert res["steps"] == 8 and res["world"] == 2
        # validation over uneven shards (4 + 3 samples) is the plain mean over all 7
        assert res["val"]["loss"] == pytest.approx(s.val_metrics["loss"], rel=1e-5)
        assert res["train_loss"] == pytest.approx(s.train_metrics["train/loss"], rel=1e-5)
        # only rank 0 wrote files
        assert (out / name / "metrics.csv").is_file() and (out / name / "checkpoints/ckpt-00000008.pt").is_file()
        assert load_checkpoint(out / name / "checkpoints/ckpt-00000008.pt")["world_size"] == 2


def test_gan_allreduce_ranks_agree(torchrun_out):
    g0, g1 = _load(torchrun_out / "gan_rank0.pt"), _load(torchrun_out / "gan_rank1.pt")
    assert _equal(g0, g1)


def test_distributed_resume_is_exact(torchrun_out):
    a = _load(torchrun_out / "ddp_rank0.pt")
    for r in (0, 1):
        assert _equal(a, _load(torchrun_out / f"resume_rank{r}.pt"))
    ck = load_checkpoint(torchrun_out / "resume/checkpoints/ckpt-00000004.pt")
    assert len(ck["rng"]) == 2  # every rank's RNG states


def test_resumable_sampler_shards_and_resumes():
    from geomgen.train import ResumableSampler

    data = list(range(10))
    full = list(ResumableSampler(data, seed=3))
    assert sorted(full) == data and len(ResumableSampler(data)) == 10
    s0 = ResumableSampler(data, num_replicas=2, rank=0, seed=3)
    a, b = list(s0), list(ResumableSampler(data, num_replicas=2, rank=1, seed=3))
    assert a == full[0::2] and b == full[1::2]  # round-robin deal of the same permutation
    s0.set_epoch(0, start=2)
    assert list(s0) == a[2:] and len(s0) == 3
    s0.set_epoch(1)
    assert list(s0) != a and len(s0) == 5
    odd = ResumableSampler(list(range(5)), num_replicas=2, rank=1, shuffle=False)
    assert list(odd) == [1, 3, 0]  # padded with the first indices, as DistributedSampler does


def test_helpers_without_a_process_group(monkeypatch):
    from geomgen.train import all_reduce_mean, barrier, get_rank, get_world_size, init_distributed, is_main_process

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    info = init_distributed("cpu")
    assert (info.rank, info.world_size, info.backend, info.is_main) == (0, 1, None, True)
    assert info.device == torch.device("cpu")
    assert not dist.is_initialized()
    assert (get_rank(), get_world_size(), is_main_process()) == (0, 1, True)
    barrier()
    assert all_reduce_mean({"b": torch.tensor(2.0), "a": 1}) == {"a": 1.0, "b": 2.0}
