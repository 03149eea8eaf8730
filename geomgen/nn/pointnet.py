"""PointNet encoder: a shared per-point network and a symmetric pooling, padding-aware.

Shape letters: ``N`` clouds, ``P`` (max) points per cloud, ``F`` extra
per-point features, ``D`` output size.

::

    enc = PointNetEncoder()                         # 107,392 parameters
    g = enc(points)                                 # (N, P, 3) -> (N, 256)
    g = enc(points, lengths=lengths)                # padded clouds: points past lengths[n] are ignored
    enc = PointNetEncoder(block="resnet", out_dim=128, feat_dim=3)   # occupancy networks' ResnetPointnet
    g = enc(points, features=normals, lengths=lengths)
    g = enc(pointclouds)                            # a geomgen.structures.PointClouds

Two architectures:

* ``block="simple"``: Qi et al., "PointNet" (CVPR 2017) without the
  transform networks: ``Linear -> norm -> act`` per point for each hidden
  size, pooling over the points, then a linear layer.
* ``block="resnet"``: the point encoder of occupancy networks (Mescheder et
  al., CVPR 2019): a linear layer to ``2 h``, then :class:`~geomgen.nn.mlp.ResnetBlockFC`
  blocks, each after the first fed the per-point features concatenated with
  their pooled value, a final pooling, activation and linear layer.

Padded points never influence the result: the per-point layers run on the
packed valid points only (so ``norm="batch"`` takes its statistics over
valid points), and pooling covers each cloud's valid points.  An empty cloud
(length 0) pools to zeros.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from geomgen import checks as V
from geomgen.nn.activation import activation_gain_name, make_activation
from geomgen.nn.init import INIT_SCHEMES, init_weights
from geomgen.nn.mlp import ResnetBlockFC, RowNorm

__all__ = ["PointNetEncoder", "masked_pool"]

_POOLS = ("max", "mean")


def masked_pool(x: torch.Tensor, lengths: torch.Tensor | None = None, mode: str = "max") -> torch.Tensor:
    """Pool padded per-point features over each cloud's first ``lengths[n]`` points.

    Args:
        x: ``(N, P, C)`` features.
        lengths: ``(N,)`` integer counts in ``[0, P]``; ``None`` means all ``P``.
        mode: ``"max"`` or ``"mean"``.

    Returns:
        ``(N, C)``; zeros for clouds with no points.

    Raises:
        InvalidInputError: wrong shapes, bad lengths or ``mode``.
    """
    fn = "masked_pool"
    V.check_choice(mode, "mode", _POOLS, fn=fn)
    V.check_tensor(x, "x", ndim=3, shape_desc="(N, P, C)", floating=True, fn=fn)
    n, p, _ = x.shape
    mask = None
    if lengths is not None:
        lengths = V.check_lengths(lengths, "lengths", batch_size=n, max_len=p, device=x.device, fn=fn)
        if bool((lengths < p).any()):
            mask = torch.arange(p, device=x.device)[None, :] < lengths[:, None]
    return _pool_padded(x, mask, lengths, mode)


def _pool_padded(x: torch.Tensor, mask: torch.Tensor | None, lengths: torch.Tensor | None, mode: str) -> torch.Tensor:
    n, p, c = x.shape
    if p == 0:
        return x.new_zeros((n, c)) + 0.0 * x.sum()
    if mask is None:
        return x.amax(dim=1) if mode == "max" else x.mean(dim=1)
    m = mask.unsqueeze(-1)
    if mode == "max":
        out = x.masked_fill(~m, float("-inf")).amax(dim=1)
        return torch.where((lengths > 0)[:, None], out, out.new_zeros(()))
    count = lengths.clamp(min=1).to(x.dtype)[:, None]
    return (x * m).sum(dim=1) / count


class PointNetEncoder(nn.Module):
    """Encode (padded) point clouds to one vector each.

    Args:
        in_dim: coordinates per point (3).
        out_dim: ``D``.
        feat_dim: ``F`` extra per-point features (normals, colours, ...),
            concatenated to the coordinates; 0 for none.
        hidden_dims: ``"simple"``: sizes of the per-point layers (default
            ``(64, 128, 256)``); ``"resnet"``: the hidden size ``h_i`` of each
            block (default ``(128,) * 5``).
        block: ``"simple"`` or ``"resnet"`` (see the module docstring).
        pool: ``"max"`` or ``"mean"`` over each cloud's valid points.
        norm: ``"simple"`` only: ``"batch"``, ``"group"``, ``"layer"`` or
            ``"none"`` after each per-point layer (statistics over valid points).
        groups: maximum group count of ``norm="group"``.
        act: activation name.
        init: :func:`~geomgen.nn.init.init_weights` scheme.

    Parameters of the defaults: 107,392 (``"simple"``); 428,416 for
    ``PointNetEncoder(block="resnet", out_dim=128)``.

    Shapes: ``forward(points (N, P, in_dim), features (N, P, F) = None,
    lengths (N,) = None) -> (N, D)``.
    """

    def __init__(
        self,
        in_dim: int = 3,
        out_dim: int = 256,
        *,
        feat_dim: int = 0,
        hidden_dims: Sequence[int] | None = None,
        block: str = "simple",
        pool: str = "max",
        norm: str = "none",
        groups: int = 8,
        act: str = "relu",
        init: str = "kaiming",
    ) -> None:
        fn = "PointNetEncoder"
        in_dim = V.check_int(in_dim, "in_dim", min_value=1, fn=fn)
        out_dim = V.check_int(out_dim, "out_dim", min_value=1, fn=fn)
        feat_dim = V.check_int(feat_dim, "feat_dim", min_value=0, fn=fn)
        V.check_choice(block, "block", ("simple", "resnet"), fn=fn)
        V.check_choice(pool, "pool", _POOLS, fn=fn)
        V.check_choice(init, "init", INIT_SCHEMES, fn=fn)
        if block == "resnet" and norm != "none":
            raise V.fail("norm", f"must be 'none' with block='resnet' (its blocks have no norm), got {norm!r}", fn)
        if hidden_dims is None:
            hidden_dims = (64, 128, 256) if block == "simple" else (128,) * 5
        hidden = tuple(V.check_int_list(hidden_dims, "hidden_dims", fn=fn))
        super().__init__()
        self.in_dim, self.feat_dim, self.out_dim = in_dim, feat_dim, out_dim
        self.block, self.pool = block, pool
        self.act = make_activation(act, fn=fn)
        c = in_dim + feat_dim
        if block == "simple":
            layers: list[nn.Module] = []
            for h in hidden:
                layers += [nn.Linear(c, h, bias=norm == "none"), RowNorm(norm, h, groups, fn=fn), make_activation(act, fn=fn)]
                c = h
            self.point_net: nn.Module = nn.Sequential(*layers)
            self.fc_out = nn.Linear(c, out_dim)
        else:
            self.fc_pos = nn.Linear(c, 2 * hidden[0])
            blocks = [ResnetBlockFC(2 * hidden[0], hidden[0], act=act)]
            blocks += [ResnetBlockFC(2 * a, b, act=act) for a, b in zip(hidden[:-1], hidden[1:])]
            self.blocks = nn.ModuleList(blocks)
            self.fc_out = nn.Linear(hidden[-1], out_dim)
        nonlin, slope = activation_gain_name(act)
        init_weights(self, init, nonlinearity=nonlin, a=slope)

    def forward(
        self,
        points: Any,
        features: torch.Tensor | None = None,
        lengths: torch.Tensor | Sequence[int] | None = None,
    ) -> torch.Tensor:
        """Encode a batch of clouds.

        Args:
            points: ``(N, P, in_dim)`` padded coordinates, or a
                :class:`~geomgen.structures.PointClouds` (its padded points,
                its features when ``feat_dim > 0``, its per-cloud counts).
            features: ``(N, P, F)`` per-point features; required iff ``feat_dim > 0``.
            lengths: ``(N,)`` valid points per cloud (the first ``lengths[n]``
                rows of cloud ``n``); ``None``: all ``P``.

        Returns:
            ``(N, D)``.

        Raises:
            InvalidInputError: wrong ranks/sizes, missing or unexpected
                ``features``, lengths outside ``[0, P]``.
        """
        fn = "PointNetEncoder.forward"
        if not isinstance(points, torch.Tensor) and hasattr(points, "points_padded"):
            if lengths is not None:
                raise V.fail("lengths", "must be None when points is a PointClouds (it has its own)", fn)
            lengths = points.num_points_per_cloud()
            if features is None and self.feat_dim > 0:
                features = points.features_padded()
            points = points.points_padded()
        V.check_tensor(points, "points", ndim=3, shape_desc=f"(N, P, {self.in_dim})", floating=True, fn=fn)
        n, p, d = points.shape
        if d != self.in_dim:
            raise V.fail("points", f"must have shape (N, P, {self.in_dim}), got {tuple(points.shape)}", fn)
        if self.feat_dim > 0:
            if features is None:
                raise V.fail("features", f"must be given: the encoder was built with feat_dim={self.feat_dim}", fn)
            V.check_tensor(
                features, "features", shape=(n, p, self.feat_dim), shape_desc=f"(N, P, {self.feat_dim})",
                floating=True, fn=fn,
            )
            x = torch.cat([points, features.to(points.dtype)], dim=-1)
        else:
            if features is not None:
                raise V.fail("features", "must be None: the encoder was built with feat_dim=0", fn)
            x = points
        mask = None
        if lengths is not None:
            lengths = V.check_lengths(lengths, "lengths", batch_size=n, max_len=p, device=points.device, fn=fn)
            if bool((lengths < p).any()):
                mask = torch.arange(p, device=points.device)[None, :] < lengths[:, None]
        rows = x.reshape(n * p, x.shape[-1]) if mask is None else x[mask]

        def pool(r: torch.Tensor) -> torch.Tensor:
            """Packed ``(M, C)`` rows -> ``(N, C)`` pooled over each cloud's valid points."""
            if mask is None:
                padded = r.view(n, p, r.shape[-1])
            else:
                padded = r.new_zeros((n, p, r.shape[-1])).masked_scatter(mask.unsqueeze(-1), r)
            return _pool_padded(padded, mask, lengths, self.pool)

        if self.block == "simple":
            return self.fc_out(pool(self.point_net(rows)))
        if mask is None:
            cloud = torch.arange(n, device=points.device).repeat_interleave(p)
        else:
            cloud = torch.arange(n, device=points.device)[:, None].expand(n, p)[mask]
        net = self.blocks[0](self.fc_pos(rows))
        for blk in self.blocks[1:]:
            net = blk(torch.cat([net, pool(net)[cloud]], dim=-1))
        return self.fc_out(self.act(pool(net)))
