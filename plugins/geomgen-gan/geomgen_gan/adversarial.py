"""The adversarial training logic shared by the GAN generators: :class:`AdversarialGenerator`.

A subclass supplies two networks and four small methods:

* ``self.generator_net`` / ``self.discriminator_net`` - the modules whose
  parameters the ``"gen"`` and ``"disc"`` optimizers train;
* :meth:`~AdversarialGenerator.real_input` - a batch's shapes in the
  discriminator's input form (e.g. ``(N, 1, R, R, R)`` occupancies);
* :meth:`~AdversarialGenerator.fake_input` - ``n`` generated shapes in that form,
  differentiable with respect to the generator;
* :meth:`~AdversarialGenerator.critic` - ``(N,)`` discriminator scores;
* :meth:`~AdversarialGenerator.generate` - the sampling contract of
  :class:`~geomgen.generative.ShapeGenerator`.

Training (:meth:`~AdversarialGenerator.training_step`) is a Python generator
of :class:`~geomgen.train.OptimizerStep` items: the discriminator update
(``"disc"``: adversarial loss + ``gp_weight`` x gradient penalty on a fresh
fake batch and the real batch), then - on every ``d_steps``-th training step -
the generator update (``"gen"``), whose loss is computed *after* the
discriminator was updated (the trainer steps each item before resuming the
generator).  So ``max_steps`` counts discriminator updates; the generator is
updated ``max_steps / d_steps`` times.

There is no likelihood: :meth:`log_prob` and :meth:`elbo` raise
:class:`~geomgen.generative.LikelihoodUnavailableError` (the base class's
behaviour); compare samples with :func:`geomgen.metrics.generative_metrics`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn

from geomgen import checks as V
from geomgen.generative import ShapeGenerator
from geomgen.train import OptimizerStep

from geomgen_gan.losses import discriminator_loss, generator_loss, gradient_penalty

__all__ = ["AdversarialGenerator"]

#: Default gradient-penalty weight of ``loss="wgan-gp"`` (Gulrajani et al. 2017).
WGAN_GP_WEIGHT: float = 10.0


@contextlib.contextmanager
def _frozen(module: nn.Module) -> Iterator[None]:
    """Build graphs that do not reach ``module``'s parameters (saves their weight gradients)."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


class AdversarialGenerator(ShapeGenerator):
    """Base class of the GAN generators (see the module docstring).

    Build arguments read from ``config`` (declared by
    :class:`~geomgen_gan.config.AdversarialConfig`): ``loss`` (one of
    :data:`~geomgen_gan.losses.LOSSES`), ``gp_weight`` (see :attr:`gp_weight`), ``d_steps``, ``lr_d``
    (discriminator learning rate; None = the TrainConfig's ``lr``), ``betas``
    (AdamW betas of both optimizers; None = the TrainConfig's).
    """

    likelihood = None
    generator_net: nn.Module
    discriminator_net: nn.Module

    # ------------------------------------------------------------------ subclass hooks
    def real_input(self, batch: Mapping[str, Any],
                   generator: torch.Generator | None = None) -> torch.Tensor:  # pragma: no cover - abstract
        """A batch's shapes as the discriminator's input ``(B, ...)``."""
        raise NotImplementedError

    def fake_input(self, n: int, labels: torch.Tensor | None,
                   generator: torch.Generator | None = None) -> torch.Tensor:  # pragma: no cover - abstract
        """``n`` generated shapes as the discriminator's input, differentiable in the generator."""
        raise NotImplementedError

    def critic(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:  # pragma: no cover
        """``(N,)`` discriminator scores of inputs ``x`` (labels ``(N,)`` for conditional models)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers
    @property
    def loss_kind(self) -> str:
        """The adversarial loss, one of :data:`~geomgen_gan.losses.LOSSES`."""
        return str(self.config["loss"])

    @property
    def gp_weight(self) -> float:
        """Weight of the gradient penalty: the ``gp_weight`` build argument, or
        when it is None 10 for ``loss="wgan-gp"`` and 0 otherwise."""
        w = self.config.get("gp_weight")
        if w is None:
            return WGAN_GP_WEIGHT if self.loss_kind == "wgan-gp" else 0.0
        return float(w)

    @property
    def latent_dim(self) -> int:
        """``L``, size of the noise vector."""
        return int(self.config["latent_dim"])

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(n, L)`` standard normal noise on the model's device, drawn from
        ``generator`` (None: torch's global RNG)."""
        if generator is None:
            return torch.randn(n, self.latent_dim, device=self.device)
        return torch.randn(n, self.latent_dim, generator=generator, device=generator.device).to(self.device)

    def check_labels(self, labels: Any, n: int, fn: str) -> torch.Tensor | None:
        """``(n,)`` int64 labels on the model's device for a conditional model
        (None for an unconditional one, whatever is given).

        Raises:
            InvalidInputError: a conditional model without ``(n,)`` integer
                labels in ``[0, num_classes)``.
        """
        if not self.conditional:
            return None
        if not isinstance(labels, torch.Tensor) or labels.shape != (n,) or labels.is_floating_point() \
                or labels.dtype == torch.bool:
            got = tuple(labels.shape) if isinstance(labels, torch.Tensor) else labels
            raise V.fail("labels", f"a class-conditional model needs ({n},) integer labels, got {got!r}", fn)
        if n and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
            raise V.fail("labels", f"must lie in [0, {self.num_classes}), got {labels.tolist()}", fn)
        return labels.to(self.device, torch.int64)

    def _discriminator_terms(self, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor | None,
                             generator: torch.Generator | None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``d_loss`` and its logged terms; ``fake`` is detached here."""
        d_real = self.critic(real, labels)
        d_fake = self.critic(fake.detach(), labels)
        d_loss = discriminator_loss(self.loss_kind, d_real, d_fake)
        logs = {"d_real": d_real.detach().mean(), "d_fake": d_fake.detach().mean()}
        w = self.gp_weight
        if w > 0:
            gp = gradient_penalty(lambda x: self.critic(x, labels), real, fake, generator=generator)
            d_loss = d_loss + w * gp
            logs["gp"] = gp.detach()
        return d_loss, logs

    # ------------------------------------------------------------------ training
    def configure_optimizers(self, config: Any) -> dict[str, torch.optim.Optimizer]:
        """``{"disc": AdamW/SGD over the discriminator, "gen": ... over the generator}``
        built from a :class:`~geomgen.train.TrainConfig` (its optimizer, ``lr``,
        weight decay, momentum, betas, eps); the model's ``lr_d`` and ``betas``
        override the config's for the discriminator / both when set.

        Raises:
            InvalidInputError: ``config`` is not a TrainConfig.
        """
        from geomgen.train import TrainConfig, build_optimizer

        if not isinstance(config, TrainConfig):
            raise V.fail("config", f"must be a geomgen.train.TrainConfig, got {type(config).__name__}",
                         f"{type(self).__name__}.configure_optimizers")
        betas = tuple(self.config["betas"]) if self.config.get("betas") is not None else config.betas
        kw: dict[str, Any] = {"momentum": config.momentum, "nesterov": config.nesterov,
                              "weight_decay": config.weight_decay, "betas": betas, "eps": config.eps}
        lr_d = self.config.get("lr_d")
        disc = build_optimizer(self.discriminator_net, config.optimizer, lr=config.lr if lr_d is None else lr_d, **kw)
        gen = build_optimizer(self.generator_net, config.optimizer, lr=config.lr, **kw)
        return {"disc": disc, "gen": gen}

    def training_step(self, batch: Mapping[str, Any], step: int) -> Iterator[OptimizerStep]:
        """One training step: yields ``OptimizerStep("disc", d_loss, logs)`` and,
        when ``(step + 1) % d_steps == 0``, then ``OptimizerStep("gen", g_loss, logs)``.

        ``g_loss`` is computed when the generator resumes, i.e. with the
        discriminator the trainer has just updated; it reuses the fake batch
        of the discriminator step (through the generator's graph).  Conditional
        models generate the batch's labels.  Random numbers come from torch's
        global RNG (the trainer seeds it).

        Logs: ``d_real`` / ``d_fake`` (mean scores), ``gp`` (when
        ``gp_weight > 0``), ``g_fake`` (mean score of the generator step).
        """
        fn = f"{type(self).__name__}.training_step"
        step = V.check_int(step, "step", min_value=0, fn=fn)
        real = self.real_input(batch)
        n = real.shape[0]
        labels = self.batch_labels_of(batch, n, fn)
        update_gen = (step + 1) % int(self.config["d_steps"]) == 0
        with contextlib.nullcontext() if update_gen else torch.no_grad():
            fake = self.fake_input(n, labels)
        d_loss, logs = self._discriminator_terms(real, fake, labels, None)
        yield OptimizerStep("disc", d_loss, logs)
        if not update_gen:
            return
        with _frozen(self.discriminator_net):
            g_scores = self.critic(fake, labels)
        g_loss = generator_loss(self.loss_kind, g_scores)
        yield OptimizerStep("gen", g_loss, {"g_fake": g_scores.detach().mean()})

    def compute_loss(self, batch: Mapping[str, Any], generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Both players' losses on a batch with the current weights, updating nothing.

        Returns ``{"loss": g_loss, "g_loss", "d_loss" (with the gradient penalty),
        "d_real", "d_fake", ["gp"]}`` (batch means).  ``generator`` is the
        source of the fake batch's noise (None: torch's global RNG).
        """
        fn = f"{type(self).__name__}.compute_loss"
        real = self.real_input(batch, generator)
        n = real.shape[0]
        labels = self.batch_labels_of(batch, n, fn)
        fake = self.fake_input(n, labels, generator)
        d_loss, logs = self._discriminator_terms(real, fake, labels, generator)
        g_loss = generator_loss(self.loss_kind, self.critic(fake, labels))
        return {"loss": g_loss, "g_loss": g_loss, "d_loss": d_loss, **logs}

    def validation_metrics(self, batch: Mapping[str, Any]) -> dict[str, float | torch.Tensor]:
        """:meth:`compute_loss` with noise from a generator seeded 0 (so validation is
        reproducible and leaves torch's global RNG alone)."""
        g = torch.Generator(device=self.device)
        g.manual_seed(0)
        return {k: v.detach() for k, v in self.compute_loss(batch, g).items()}
