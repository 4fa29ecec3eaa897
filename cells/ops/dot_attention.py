"""dot_attention(query, key) -> map: pairwise attention over the positions of each group along `dim`.

Heads. `heads` splits the inner width c into heads of width d = ceil(c / heads): Q, K and V are zero-padded from c
to heads x d channels when heads does not divide c, and the padded channels are dropped from the output. Zero
channels add nothing to Q K^T (nor to K^T V), so the last head is simply narrower (and a head past c is empty);
`scaled_softmax` scales by 1 / sqrt(d). When heads divides c nothing is padded and this is plain multi-head
attention, so every inner width builds with any number of heads (the spec's width is relative to the channels a
backbone offers, so an odd c cannot be ruled out by the search space) and the layers' shapes depend on c alone.
"""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F

from attnas.cells.ops.base import Operation, choice, pointwise, port_channels, positive_int
from attnas.cells.ops.grouping import from_groups, to_groups


class DotAttention(Operation):
    """Non-local / Transformer attention: layers q, k, v (1x1x1 convs to `channels`); `heads` splits channels into
    heads of width ceil(channels / heads) (module docstring)."""

    ports = ("query", "key")
    option_names = ("dim", "similarity", "heads")

    def __init__(self, in_channels: int | Mapping[str, int], channels: int, *, dim: str = "spatiotemporal",
                 similarity: str = "softmax", heads: int = 1) -> None:
        super().__init__()
        name = "dot_attention"
        ports = port_channels(name, in_channels, self.ports)
        positive_int(name, "channels", channels)
        positive_int(name, "heads", heads)
        self.dim = choice(name, "dim", dim)
        self.similarity = choice(name, "similarity", similarity)
        self.heads = heads
        self.q = pointwise(ports["query"], channels)
        self.k = pointwise(ports["key"], channels)
        self.v = pointwise(ports["key"], channels)

    def forward(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        """A V per group and head, with Q = q(query), K = k(key), V = v(key) and A from `similarity`."""
        dim, heads = self.dim, self.heads
        q = to_groups(self.q(query), dim)
        k = to_groups(self.k(key), dim)
        v = to_groups(self.v(key), dim)
        groups, channels, positions = q.shape
        width = -(-channels // heads)  # ceil(c / heads); the channels are zero-padded up to heads x width
        if width * heads != channels:
            q, k, v = [F.pad(z, (0, 0, 0, width * heads - channels)) for z in (q, k, v)]
        # (groups, c, P) -> (groups, heads, P, c / heads), the layout scaled_dot_product_attention takes; contiguous,
        # because on strided inputs it falls back to its math path, which holds the P x P matrix.
        q, k, v = [z.reshape(groups, heads, width, positions).transpose(2, 3).contiguous() for z in (q, k, v)]
        if self.similarity == "dot":
            # Associative form: Q (K^T V) / P costs O(P d^2) and never forms the P x P matrix.
            out = q @ (k.transpose(2, 3) @ v) / positions
        else:
            # softmax: Wang et al.'s embedded Gaussian, unscaled; scaled_softmax: the Transformer's 1/sqrt(d).
            out = F.scaled_dot_product_attention(q, k, v, scale=1.0 if self.similarity == "softmax" else None)
        out = out.transpose(2, 3).reshape(groups, width * heads, positions)[:, :channels]
        return from_groups(out, dim, query.shape)
