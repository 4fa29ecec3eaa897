"""Grouping the positions of a (N, C, T, H, W) map by `dim`, shared by every op.

`to_groups` turns a map into (groups, C, P): one row per group of positions an op attends over, channels first;
`from_groups` puts such a tensor back into map form. spatiotemporal: one group of T*H*W per clip; spatial: one
group of H*W per frame; temporal: one group of T per pixel location. Pure torch in the Python torch.jit.script
compiles (annotated, no `!r` in f-strings), so cells.export copies this source into standalone files verbatim.
"""
import torch


def to_groups(x: torch.Tensor, dim: str) -> torch.Tensor:
    """(N, C, T, H, W) -> (N * groups, C, positions per group)."""
    n, c, t, h, w = x.shape
    if dim == "spatiotemporal":
        return x.reshape(n, c, t * h * w)
    if dim == "spatial":
        return x.transpose(1, 2).reshape(n * t, c, h * w)
    if dim == "temporal":
        return x.permute(0, 3, 4, 1, 2).reshape(n * h * w, c, t)
    raise ValueError(f"dim: expected 'spatial', 'temporal' or 'spatiotemporal', got '{dim}'")


def from_groups(y: torch.Tensor, dim: str, size: list[int]) -> torch.Tensor:
    """(N * groups, C', positions) -> (N, C', T, H, W), the inverse of `to_groups` for a map of 5-D `size`."""
    n, _, t, h, w = size
    c = y.shape[1]
    if dim == "spatiotemporal":
        return y.reshape(n, c, t, h, w)
    if dim == "spatial":
        return y.reshape(n, t, c, h, w).transpose(1, 2)
    if dim == "temporal":
        return y.reshape(n, h, w, c, t).permute(0, 3, 4, 1, 2)
    raise ValueError(f"dim: expected 'spatial', 'temporal' or 'spatiotemporal', got '{dim}'")
