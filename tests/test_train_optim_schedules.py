"""geomgen.train optimizers, schedules and TrainConfig checks."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from geomgen.errors import InvalidInputError
from geomgen.train import TrainConfig, build_optimizer, build_scheduler, load_checkpoint, save_checkpoint
from geomgen.train.optim import param_groups
from geomgen.train.schedules import schedule_lr


def _net() -> nn.Module:
    return nn.Sequential(nn.Embedding(5, 3), nn.Linear(3, 4), nn.LayerNorm(4), nn.BatchNorm1d(4), nn.Linear(4, 1))


def test_param_groups_exclude_norms_and_biases():
    net = _net()
    net[4].bias.requires_grad_(False)
    groups = {g["name"]: g for g in param_groups(net, 0.1)}
    ids = lambda ps: {id(p) for p in ps}  # noqa: E731
    assert ids(groups["decay"]["params"]) == ids([net[0].weight, net[1].weight, net[4].weight])
    assert ids(groups["no_decay"]["params"]) == ids(
        [net[1].bias, net[2].weight, net[2].bias, net[3].weight, net[3].bias]
    )
    assert groups["decay"]["weight_decay"] == 0.1 and groups["no_decay"]["weight_decay"] == 0.0
    # plain tensors: by dimension; param-group dicts: passed through
    w, b = torch.zeros(2, 2, requires_grad=True), torch.zeros(2, requires_grad=True)
    assert [g["name"] for g in param_groups([w, b], 0.5)] == ["decay", "no_decay"]
    assert param_groups([{"params": [w], "lr": 3.0}], 0.5) == [{"params": [w], "lr": 3.0}]


@pytest.mark.parametrize(
    "name, kw, cls",
    [
        ("adamw", dict(betas=(0.8, 0.9), weight_decay=0.01), torch.optim.AdamW),
        ("sgd", dict(), torch.optim.SGD),
        ("sgd", dict(momentum=0.9), torch.optim.SGD),
        ("sgd", dict(momentum=0.9, nesterov=True), torch.optim.SGD),
    ],
)
def test_build_optimizer(name, kw, cls):
    opt = build_optimizer(_net(), name, lr=0.1, **kw)
    assert isinstance(opt, cls) and all(g["lr"] == 0.1 for g in opt.param_groups)
    if name == "sgd":
        assert opt.defaults["momentum"] == kw.get("momentum", 0.0)
        assert opt.defaults["nesterov"] == kw.get("nesterov", False)
    else:
        assert opt.defaults["betas"] == (0.8, 0.9)
        assert [g["weight_decay"] for g in opt.param_groups] == [0.01, 0.0]


@pytest.mark.parametrize(
    "kw, field",
    [
        (dict(name="adam"), "name"),
        (dict(lr=-1.0), "lr"),
        (dict(name="sgd", nesterov=True), "nesterov"),
        (dict(name="sgd", momentum=1.0), "momentum"),
        (dict(weight_decay=-0.1), "weight_decay"),
        (dict(betas=(0.9, 1.0)), "betas"),
        (dict(eps=0.0), "eps"),
    ],
)
def test_build_optimizer_errors_name_the_argument(kw, field):
    with pytest.raises(InvalidInputError, match=f"build_optimizer: argument '{field}'"):
        build_optimizer(_net(), **kw)
    frozen = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(InvalidInputError, match="'params'.*no trainable"):
        build_optimizer(frozen)


# base lr 1.0, W=4, T=12, min_lr=0.1 (formulas of geomgen.train.schedules)
KEY_STEPS = {
    "constant": {0: 0.25, 3: 1.0, 4: 1.0, 100: 1.0},
    "linear": {0: 0.25, 1: 0.5, 3: 1.0, 4: 1.0, 8: 0.55, 12: 0.1, 50: 0.1},
    "cosine": {0: 0.25, 3: 1.0, 4: 1.0, 6: 0.1 + 0.9 * (1 + math.cos(math.pi / 4)) / 2, 8: 0.55, 12: 0.1, 50: 0.1},
    "inverse-sqrt": {0: 0.25, 3: 1.0, 4: 1.0, 16: 0.5, 100: 0.2, 400: 0.1, 1600: 0.1},
}


@pytest.mark.parametrize("name", sorted(KEY_STEPS))
def test_schedule_formulas_at_key_steps(name):
    p = nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = build_scheduler(opt, name, warmup_steps=4, total_steps=12, min_lr=0.1)
    seen = {}
    for s in range(max(KEY_STEPS[name]) + 1):
        seen[s] = opt.param_groups[0]["lr"]  # the rate the (s+1)-th update uses
        opt.step()
        sched.step()
    for s, want in KEY_STEPS[name].items():
        assert seen[s] == pytest.approx(want, rel=1e-12), (name, s)
        assert schedule_lr(s, 1.0, name=name, warmup_steps=4, total_steps=12, min_lr=0.1) == pytest.approx(want)


def test_schedule_without_warmup_and_per_group_base_rates():
    a, b = nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [a], "lr": 1.0}, {"params": [b], "lr": 0.5}])
    sched = build_scheduler(opt, "linear", total_steps=4)
    lrs = []
    for _ in range(5):
        lrs.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    assert lrs == [[1.0, 0.5], [0.75, 0.375], [0.5, 0.25], [0.25, 0.125], [0.0, 0.0]]
    # inverse-sqrt without warm-up: 1/sqrt(max(s, 1))
    assert [schedule_lr(s, 1.0, name="inverse-sqrt") for s in (0, 1, 4)] == [1.0, 1.0, 0.5]


def test_scheduler_state_survives_a_weights_only_checkpoint(tmp_path):
    p = nn.Parameter(torch.zeros(2))
    opt = torch.optim.AdamW([p], lr=1.0)
    sched = build_scheduler(opt, "cosine", warmup_steps=2, total_steps=10, min_lr=0.01)
    for _ in range(5):
        opt.step()
        sched.step()
    save_checkpoint(tmp_path / "s.pt", {"sched": sched.state_dict(), "opt": opt.state_dict()})
    state = load_checkpoint(tmp_path / "s.pt")
    p2 = nn.Parameter(torch.zeros(2))
    opt2 = torch.optim.AdamW([p2], lr=1.0)
    sched2 = build_scheduler(opt2, "cosine", warmup_steps=2, total_steps=10, min_lr=0.01)
    opt2.load_state_dict(state["opt"])
    sched2.load_state_dict(state["sched"])
    for _ in range(3):
        opt.step(), sched.step(), opt2.step(), sched2.step()
    assert opt.param_groups[0]["lr"] == opt2.param_groups[0]["lr"] == sched.get_last_lr()[0]


@pytest.mark.parametrize(
    "name, kw, field",
    [
        ("step", dict(total_steps=10), "name"),
        ("linear", dict(warmup_steps=20, total_steps=10), "warmup_steps"),
        ("cosine", dict(), "total_steps"),
        ("cosine", dict(total_steps=10, min_lr=2.0), "min_lr"),
        ("cosine", dict(total_steps=10, warmup_steps=-1), "warmup_steps"),
        ("cosine", dict(total_steps=0), "total_steps"),
    ],
)
def test_build_scheduler_errors(name, kw, field):
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(InvalidInputError, match=f"build_scheduler: argument '{field}'"):
        build_scheduler(opt, name, **kw)


@pytest.mark.parametrize(
    "kw, field",
    [
        (dict(optimizer="adam"), "optimizer"),
        (dict(schedule="step"), "schedule"),
        (dict(lr=-0.1), "lr"),
        (dict(warmup_steps=20, schedule="cosine"), "warmup_steps"),
        (dict(max_steps=None), "max_steps"),
        (dict(batch_size=0), "batch_size"),
        (dict(early_stopping_mode="best"), "early_stopping_mode"),
        (dict(min_lr=1.0, schedule="cosine"), "min_lr"),
        (dict(clip_grad_norm=0.0), "clip_grad_norm"),
        (dict(amp="yes"), "amp"),
        (dict(resume=True), "resume"),
        (dict(ddp_mode="fsdp"), "ddp_mode"),
    ],
)
def test_train_config_errors_name_the_field(kw, field):
    base = dict(max_steps=10, lr=0.1)
    base.update(kw)
    with pytest.raises(InvalidInputError, match=f"TrainConfig: argument '{field}'"):
        TrainConfig(**base)


def test_train_config_command_line_and_dict_round_trip(tmp_path):
    cfg = TrainConfig.from_args(
        ["--max-steps", "5", "--lr", "0.1", "--no-shuffle", "--betas", "0.8", "0.95", "--clip-grad-norm", "2",
         "--schedule", "inverse-sqrt", "--out-dir", str(tmp_path), "--resume"]
    )
    assert (cfg.max_steps, cfg.lr, cfg.shuffle, cfg.betas, cfg.clip_grad_norm, cfg.resume) == (
        5, 0.1, False, (0.8, 0.95), 2.0, True
    )
    assert TrainConfig.from_args(["--epochs", "2", "--resume", "x.pt", "--val-every", "none"]).resume == "x.pt"
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(InvalidInputError, match="unknown keys.*'nope'"):
        TrainConfig.from_dict({"max_steps": 1, "nope": 2})
    with pytest.raises(SystemExit):
        TrainConfig.from_args(["--optimizer"])
