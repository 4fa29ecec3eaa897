"""map_attention(x) -> map: weights over `dim` (or over channels) computed from x, gated, times a projection of x."""
from __future__ import annotations

import torch
from torch import nn

from attnas.cells.errors import CellBuildError
from attnas.cells.ops.base import Operation, choice, pointwise, port_channels, positive_int
from attnas.cells.ops.grouping import from_groups, to_groups


class MapAttention(Operation):
    """AttentionNAS map-based attention: layer v (1x1x1 conv to `channels`) and the weights' layers: `mlp`
    (in -> max(1, channels // reduction) -> channels, dim channel) or `conv` (pooled channels -> 1, kernel along dim).
    """

    ports = ("x",)
    option_names = ("dim", "gate", "pooling")

    def __init__(self, in_channels: int, channels: int, *, dim: str = "spatiotemporal", gate: str = "sigmoid",
                 pooling: str = "avg", kernel: int = 1, reduction: int = 4) -> None:
        super().__init__()
        name = "map_attention"
        in_channels = port_channels(name, in_channels, self.ports)["x"]
        positive_int(name, "channels", channels)
        self.dim = choice(name, "dim", dim)
        self.gate = choice(name, "gate", gate)
        self.pooling = choice(name, "pooling", pooling)
        self.v = pointwise(in_channels, channels)
        if dim == "channel":
            hidden = max(1, channels // positive_int(name, "reduction", reduction))
            self.mlp = nn.Sequential(nn.Linear(in_channels, hidden), nn.ReLU(), nn.Linear(hidden, channels))
        else:
            if positive_int(name, "kernel", kernel) % 2 == 0:
                raise CellBuildError(f"{name}: kernel: expected a positive odd integer, got {kernel!r}")
            size = {"spatial": (1, kernel, kernel), "temporal": (kernel, 1, 1),
                    "spatiotemporal": (kernel, kernel, kernel)}[dim]
            self.conv = nn.Conv3d(2 if pooling == "avg_max" else 1, 1, kernel_size=size,
                                  padding=tuple(k // 2 for k in size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """w * v with v = v(x) and w from x: an MLP on pooled channels (dim channel) or a conv on pooled positions."""
        v = self.v(x)
        pooling = self.pooling
        # Only dim channel has an MLP, the other dims a conv; TorchScript resolves hasattr when it compiles, so it
        # compiles only the branch whose layer this op has (a test of self.dim would compile both).
        if hasattr(self, "mlp"):
            if pooling == "avg":
                logits = self.mlp(x.mean((2, 3, 4)))
            elif pooling == "max":
                logits = self.mlp(x.amax((2, 3, 4)))
            else:  # CBAM: one MLP shared by both poolings, summed
                logits = self.mlp(x.mean((2, 3, 4))) + self.mlp(x.amax((2, 3, 4)))
            if self.gate == "sigmoid":
                weights = torch.sigmoid(logits)
            else:  # times the channel count, so that uniform weights are 1
                weights = torch.softmax(logits, dim=1) * logits.shape[1]
            weights = weights[:, :, None, None, None]
        else:
            if pooling == "avg":
                pooled = x.mean(1, keepdim=True)
            elif pooling == "max":
                pooled = x.amax(1, keepdim=True)
            else:  # CBAM: both poolings as two channels
                pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], dim=1)
            logits = self.conv(pooled)
            if self.gate == "sigmoid":
                weights = torch.sigmoid(logits)
            else:  # softmax over each group's positions, times the group size, so that uniform weights are 1
                grouped = to_groups(logits, self.dim)
                weights = from_groups(torch.softmax(grouped, dim=-1) * grouped.shape[-1], self.dim, logits.shape)
        return v * weights
