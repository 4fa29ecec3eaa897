"""gather(x) -> bag and distribute(bag, x) -> map: the two steps of the A^2 double attention block (Chen et al.
2018, Eq. 4-6), per group of positions along `dim`, always with left association: G = A B^T (c x n) first, then
Z = G V, so memory and time are O(c n P), never the P x P matrix of the right association (Eq. 7).

A bag is a tensor (N * groups, c, n): n descriptors of size c for each group, grouped as cells.ops.grouping does.
"""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F

from attnas.cells.errors import CellBuildError
from attnas.cells.ops.base import Operation, choice, pointwise, port_channels, positive_int
from attnas.cells.ops.grouping import from_groups, to_groups


class Gather(Operation):
    """A^2 step 1: layers phi (1x1x1 conv to `channels`) and theta (1x1x1 conv to `descriptors` maps)."""

    ports = ("x",)
    option_names = ("dim",)

    def __init__(self, in_channels: int, channels: int, *, dim: str = "spatiotemporal", descriptors: int) -> None:
        super().__init__()
        name = "gather"
        in_channels = port_channels(name, in_channels, self.ports)["x"]
        positive_int(name, "channels", channels)
        positive_int(name, "descriptors", descriptors)
        self.dim = choice(name, "dim", dim)
        self.phi = pointwise(in_channels, channels)
        self.theta = pointwise(in_channels, descriptors)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Eq. (4): G = phi(x) softmax(theta(x))^T, the softmax over each group's positions; (groups, c, n)."""
        # phi and theta as one convolution: one pass over x, and one over its gradient, instead of two.
        weight = torch.cat([self.phi.weight, self.theta.weight])
        phi_bias, theta_bias = self.phi.bias, self.theta.bias
        assert phi_bias is not None and theta_bias is not None  # (types them as tensors for TorchScript)
        bias = torch.cat([phi_bias, theta_bias])
        sizes = [self.phi.out_channels, self.theta.out_channels]
        a, logits = to_groups(F.conv3d(x, weight, bias), self.dim).split(sizes, dim=1)
        return a @ torch.softmax(logits, dim=-1).transpose(1, 2)


class Distribute(Operation):
    """A^2 step 2: layer rho (1x1x1 conv of x to `descriptors` maps); the bag must hold `descriptors` descriptors
    of size `channels` (in_channels of port bag), gathered along the same `dim`."""

    ports = ("bag", "x")
    option_names = ("dim",)

    def __init__(self, in_channels: int | Mapping[str, int], channels: int, *, dim: str = "spatiotemporal",
                 descriptors: int) -> None:
        super().__init__()
        name = "distribute"
        ports = port_channels(name, in_channels, self.ports)
        positive_int(name, "channels", channels)
        positive_int(name, "descriptors", descriptors)
        if ports["bag"] != channels:
            raise CellBuildError(f"{name}: the bag's descriptors have {ports['bag']} channels, expected "
                                 f"channels={channels}")
        self.dim = choice(name, "dim", dim)
        self.rho = pointwise(ports["x"], descriptors)

    def forward(self, bag: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Eq. (5): Z = G softmax(rho(x)), softmax over the n descriptors at each position; a (N, c, T, H, W) map."""
        selection = torch.softmax(to_groups(self.rho(x), self.dim), dim=1)
        return from_groups(bag @ selection, self.dim, x.shape)
