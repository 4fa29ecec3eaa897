"""dot_attention(query, key) -> map: pairwise attention over the positions of each group along `dim`."""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F

from attnas.cells.errors import CellBuildError
from attnas.cells.ops.base import POSITION_DIMS, Operation, choice, pointwise, port_channels, positive_int
from attnas.cells.ops.grouping import from_groups, to_groups

SIMILARITIES = ("softmax", "scaled_softmax", "dot")


def compute_dot_attention(layers, query, key, *, dim: str, similarity: str, heads: int):
    """A V per group and head, with Q = q(query), K = k(key), V = v(key) and A from `similarity`."""
    q = to_groups(layers.q(query), dim)
    k = to_groups(layers.k(key), dim)
    v = to_groups(layers.v(key), dim)
    groups, channels, positions = q.shape
    # (groups, c, P) -> (groups, heads, P, c / heads), the layout scaled_dot_product_attention takes; contiguous,
    # because on strided inputs it falls back to its math path, which holds the P x P matrix.
    q, k, v = [z.reshape(groups, heads, channels // heads, positions).transpose(2, 3).contiguous() for z in (q, k, v)]
    if similarity == "dot":
        # Associative form: Q (K^T V) / P costs O(P d^2) and never forms the P x P matrix.
        out = q @ (k.transpose(2, 3) @ v) / positions
    else:
        # softmax: Wang et al.'s embedded Gaussian, unscaled; scaled_softmax: the Transformer's 1/sqrt(d).
        out = F.scaled_dot_product_attention(q, k, v, scale=1.0 if similarity == "softmax" else None)
    return from_groups(out.transpose(2, 3).reshape(groups, channels, positions), dim, query.shape)


class DotAttention(Operation):
    """Non-local / Transformer attention: layers q, k, v (1x1x1 convs to `channels`); `heads` splits channels."""

    ports = ("query", "key")
    compute = staticmethod(compute_dot_attention)

    def __init__(self, in_channels: int | Mapping[str, int], channels: int, *, dim: str = "spatiotemporal",
                 similarity: str = "softmax", heads: int = 1) -> None:
        super().__init__()
        name = "dot_attention"
        ports = port_channels(name, in_channels, self.ports)
        positive_int(name, "channels", channels)
        positive_int(name, "heads", heads)
        if channels % heads:
            raise CellBuildError(f"dot_attention: heads={heads} does not divide the inner width channels={channels}")
        self.options = {"dim": choice(name, "dim", dim, POSITION_DIMS),
                        "similarity": choice(name, "similarity", similarity, SIMILARITIES), "heads": heads}
        self.q = pointwise(ports["query"], channels)
        self.k = pointwise(ports["key"], channels)
        self.v = pointwise(ports["key"], channels)

    def forward(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        return compute_dot_attention(self, query, key, **self.options)

