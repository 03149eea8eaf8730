"""Occupancy decoders ``f(p, c) -> logit``: query points and a shape code to occupancy logits.

Shape letters: ``N`` shapes, ``T`` query points per shape, ``F`` code size,
``C`` hidden width.  Channels-last, as :mod:`geomgen.nn.mlp`.

Two conditionings (:data:`CONDITIONINGS`):

* ``"cbn"`` (occupancy networks, Mescheder et al. 2019): ``p -> Linear -> B x``
  :class:`~geomgen.nn.CondResnetBlockFC` (conditional batch norm: the code
  predicts each norm's scale and shift) ``-> ConditionalBatchNorm -> act ->
  Linear -> logit``.  Batch statistics over all ``N T`` query rows in
  training, running estimates in eval mode.
* ``"add"``: no normalisation: ``net = Linear(p) + Linear_0(c)``, then before
  each :class:`~geomgen.nn.ResnetBlockFC` ``net += Linear_b(c)`` (the code is
  added to the features), ``-> act -> Linear -> logit``.  Rows are independent
  (train and eval behave alike).

Points are in the object frame (shapes within ``[-0.5, 0.5]^3``); the output
is the logit of the occupancy probability (inside ``> 0``).
"""

from __future__ import annotations

import torch
from torch import nn

from geomgen import checks as V
from geomgen.errors import InvalidInputError
from geomgen.nn import ConditionalBatchNorm, CondResnetBlockFC, ResnetBlockFC, make_activation
from geomgen_implicit.config import CONDITIONINGS

__all__ = ["OccupancyDecoder", "CONDITIONINGS"]

_FN = "OccupancyDecoder"


class OccupancyDecoder(nn.Module):
    """``f(p, c)``: occupancy logits of query points given a shape code (module docstring).

    Args:
        code_dim: ``F``.
        hidden: ``C``, width of the residual blocks.
        num_blocks: ``B`` residual blocks.
        conditioning: ``"cbn"`` or ``"add"``.
        act: activation name (:func:`geomgen.nn.make_activation`).

    Shapes: ``forward(points (N, T, 3), code (N, F)) -> (N, T)`` logits.
    """

    def __init__(self, code_dim: int = 128, hidden: int = 128, num_blocks: int = 4,
                 conditioning: str = "cbn", act: str = "relu") -> None:
        code_dim = V.check_int(code_dim, "code_dim", min_value=1, fn=_FN)
        hidden = V.check_int(hidden, "hidden", min_value=1, fn=_FN)
        num_blocks = V.check_int(num_blocks, "num_blocks", min_value=1, fn=_FN)
        V.check_choice(conditioning, "conditioning", CONDITIONINGS, fn=_FN)
        super().__init__()
        self.code_dim, self.hidden, self.conditioning = code_dim, hidden, conditioning
        self.fc_p = nn.Linear(3, hidden)
        if conditioning == "cbn":
            self.blocks = nn.ModuleList(CondResnetBlockFC(hidden, code_dim, act=act) for _ in range(num_blocks))
            self.norm_out: nn.Module | None = ConditionalBatchNorm(hidden, code_dim)
            self.fc_c = None
        else:
            self.blocks = nn.ModuleList(ResnetBlockFC(hidden, act=act) for _ in range(num_blocks))
            self.fc_c = nn.ModuleList(nn.Linear(code_dim, hidden) for _ in range(num_blocks))
            self.norm_out = None
        self.act = make_activation(act)
        self.fc_out = nn.Linear(hidden, 1)

    def forward(self, points: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        """Occupancy logits ``(N, T)`` of ``points (N, T, 3)`` for codes ``code (N, F)``.

        Raises:
            InvalidInputError: wrong shapes or batch sizes.
        """
        if not isinstance(points, torch.Tensor) or points.dim() != 3 or points.shape[-1] != 3:
            got = tuple(points.shape) if isinstance(points, torch.Tensor) else type(points).__name__
            raise InvalidInputError(f"{_FN}.forward: argument 'points' must be an (N, T, 3) tensor, got {got}")
        if not isinstance(code, torch.Tensor) or code.shape != (points.shape[0], self.code_dim):
            got = tuple(code.shape) if isinstance(code, torch.Tensor) else type(code).__name__
            raise InvalidInputError(f"{_FN}.forward: argument 'code' must be ({points.shape[0]}, {self.code_dim}), "
                                    f"got {got}")
        net = self.fc_p(points)
        if self.conditioning == "cbn":
            for block in self.blocks:
                net = block(net, code)
            net = self.norm_out(net, code)  # type: ignore[misc]
        else:
            for block, fc in zip(self.blocks, self.fc_c):  # type: ignore[arg-type]
                net = block(net + fc(code).unsqueeze(1))
        return self.fc_out(self.act(net)).squeeze(-1)
