"""combine(a, b) -> map: the elementwise sum or product (gating) of two maps."""
from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from attnas.cells.ops.base import Operation, choice, pointwise, port_channels, positive_int


class Combine(Operation):
    """Elementwise add or mul. A port whose map does not have `channels` channels (the cell input, when width is
    not 1) gets a 1x1x1 conv projection (`project_a` / `project_b`); the others pass through unchanged."""

    ports = ("a", "b")
    option_names = ("mode",)

    def __init__(self, in_channels: int | Mapping[str, int], channels: int, *, mode: str = "add") -> None:
        super().__init__()
        name = "combine"
        ports = port_channels(name, in_channels, self.ports)
        positive_int(name, "channels", channels)
        self.mode = choice(name, "mode", mode)
        self.project_a = nn.Identity() if ports["a"] == channels else pointwise(ports["a"], channels)
        self.project_b = nn.Identity() if ports["b"] == channels else pointwise(ports["b"], channels)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """a + b or a * b, each first brought to the inner width by its projection (identity when already there)."""
        a = self.project_a(a)
        b = self.project_b(b)
        return a * b if self.mode == "mul" else a + b
