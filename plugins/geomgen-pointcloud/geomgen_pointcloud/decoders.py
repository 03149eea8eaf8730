"""Point-set decoders of the ``pointcloud`` representation: global shape code -> 3D points.

Shape letters: ``N`` codes, ``D`` code size, ``P`` points, ``K`` patches,
``T`` points per patch.

* :class:`MLPPointDecoder` - a fully connected network emitting a fixed set
  of ``P`` points (Fan et al., "A Point Set Generation Network", 2017).
* :class:`FoldingPointDecoder` - ``K`` learned patches: each patch is an MLP
  that maps 2-D parameters ``uv`` in ``[0, 1]^2`` together with the code to a
  3-D point (the folding / atlas idea of Yang et al. 2018 and Groueix et al.
  2018).  It is a continuous surface map, so it can be sampled with any number
  of points: random ``uv`` while training, a deterministic low-discrepancy
  set of ``uv`` at inference (see :func:`r2_sequence`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from geomgen.errors import InvalidInputError
from geomgen.nn import MLP

__all__ = ["MLPPointDecoder", "FoldingPointDecoder", "r2_sequence"]

_G2 = 1.32471795724474602596  # plastic number: the R2 sequence's generator


def r2_sequence(n: int, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(n, 2)`` points of the additive-recurrence R2 low-discrepancy sequence in
    ``[0, 1)^2`` (Roberts 2018): ``frac(0.5 + i (1/g, 1/g^2))`` with ``g`` the plastic
    number.  Deterministic, evenly spread for every ``n``."""
    i = torch.arange(1, n + 1, dtype=torch.float64, device=device)[:, None]
    a = torch.tensor([1.0 / _G2, 1.0 / _G2 ** 2], dtype=torch.float64, device=device)
    return torch.frac(0.5 + i * a).to(dtype)


class MLPPointDecoder(nn.Module):
    """``(N, D)`` code -> ``(N, P, 3)`` points through an MLP (ReLU hidden layers).

    Args:
        code_dim: ``D``.
        num_points: ``P`` (fixed).
        hidden_dims: hidden layer sizes.

    The output layer has ``hidden_dims[-1] * 3 P`` weights: the size of the
    model grows linearly with ``P``.
    """

    def __init__(self, code_dim: int, num_points: int, hidden_dims: tuple[int, ...] = (256, 256)) -> None:
        super().__init__()
        self.num_points = num_points
        self.mlp = MLP(code_dim, 3 * num_points, hidden_dims)
        with torch.no_grad():  # start as a small blob around the origin
            self.mlp.out.weight.mul_(0.1)

    def forward(self, code: torch.Tensor, num_points: int | None = None) -> torch.Tensor:
        """``(N, D) -> (N, P, 3)``; ``num_points`` must be None or ``P`` (a fixed set)."""
        if num_points is not None and num_points != self.num_points:
            raise InvalidInputError(f"MLPPointDecoder: emits exactly {self.num_points} points, "
                                    f"got num_points={num_points}")
        return self.mlp(code).view(code.shape[0], self.num_points, 3)


class FoldingPointDecoder(nn.Module):
    """``K`` patch MLPs folding ``[0, 1]^2`` onto the surface, conditioned on a code.

    Patch ``k`` maps ``uv`` to ``W_out relu(... relu(A_k uv + B_k code + b_k))``:
    a first layer on ``[uv, code]`` (the code part computed once per shape),
    ``layers - 1`` more hidden layers of width ``hidden`` and a linear output,
    each patch with its own weights (batched matrix products over patches).

    Args:
        code_dim: ``D``.
        num_patches: ``K``.
        hidden: hidden width.
        layers: hidden layers per patch (>= 1).

    Shapes: ``forward(code (N, D), num_points=P, uv=None) -> (N, P, 3)``.
    """

    def __init__(self, code_dim: int, num_patches: int = 8, hidden: int = 128, layers: int = 2) -> None:
        super().__init__()
        self.num_patches, self.hidden, self.layers = num_patches, hidden, layers
        K = num_patches
        self.code_proj = nn.Linear(code_dim, K * hidden)
        self.uv_weight = nn.Parameter(torch.randn(K, 2, hidden) * math.sqrt(2.0 / 2))
        self.hidden_w = nn.ParameterList([nn.Parameter(torch.randn(K, hidden, hidden) * math.sqrt(2.0 / hidden))
                                          for _ in range(layers - 1)])
        self.hidden_b = nn.ParameterList([nn.Parameter(torch.zeros(K, 1, hidden)) for _ in range(layers - 1)])
        self.out_w = nn.Parameter(torch.randn(K, hidden, 3) * 0.1 * math.sqrt(1.0 / hidden))
        self.out_b = nn.Parameter(torch.zeros(K, 1, 3))
        nn.init.kaiming_normal_(self.code_proj.weight, nonlinearity="relu")
        nn.init.zeros_(self.code_proj.bias)

    def patch_sizes(self, num_points: int) -> list[int]:
        """Points per patch for ``num_points`` in total (as even as possible, the first
        patches get the remainder)."""
        base, extra = divmod(num_points, self.num_patches)
        return [base + (1 if k < extra else 0) for k in range(self.num_patches)]

    def grid(self, num_points: int, device: torch.device | None = None) -> torch.Tensor:
        """Deterministic inference parameters: ``(K, T, 2)`` R2-sequence ``uv`` with
        ``T = ceil(num_points / K)`` (:meth:`forward` keeps ``num_points`` of the
        ``K T`` results, see :meth:`patch_sizes`)."""
        t = -(-num_points // self.num_patches)
        return r2_sequence(t, device=device)[None].expand(self.num_patches, t, 2)

    def forward(self, code: torch.Tensor, num_points: int, uv: torch.Tensor | None = None) -> torch.Tensor:
        """Fold ``num_points`` parameters per shape.

        Args:
            code: ``(N, D)`` shape codes.
            num_points: ``P`` points per shape.
            uv: optional ``(N, K, T, 2)`` or ``(K, T, 2)`` parameters in
                ``[0, 1]^2`` with ``K T >= P``; default :meth:`grid` (the same
                deterministic set for every shape).  Training passes uniform
                random ``uv``.

        Returns:
            ``(N, P, 3)`` points, patch after patch (:meth:`patch_sizes` of each).
        """
        N, K = code.shape[0], self.num_patches
        if uv is None:
            uv = self.grid(num_points, code.device)
        if uv.dim() == 3:
            uv = uv[None].expand(N, *uv.shape)
        T = uv.shape[2]
        c = self.code_proj(code).view(N, K, 1, self.hidden)
        h = torch.einsum("nktc,kch->nkth", uv.to(code.dtype), self.uv_weight) + c
        h = torch.relu(h)
        for w, b in zip(self.hidden_w, self.hidden_b):
            h = torch.relu(torch.einsum("nkth,khg->nktg", h, w) + b)
        out = torch.einsum("nkth,khc->nktc", h, self.out_w) + self.out_b  # (N, K, T, 3)
        sizes = self.patch_sizes(num_points)
        if all(s == T for s in sizes):
            return out.reshape(N, K * T, 3)
        return torch.cat([out[:, k, :s] for k, s in enumerate(sizes)], dim=1)
