"""The cell module and `build(spec, channels)`, which wires it from a spec (docs/design.md, "The cell").

The cell runs its ops in the spec's topological order, sums its output nodes, projects the sum back to the input's
channels with a 1x1x1 conv (no bias), applies BatchNorm3d whose scale starts at zero, and adds the input: at
initialisation every cell is the identity. Its state_dict keys are `ops.<node key>.<layer>...`, `project.weight`
and `norm.*`; cells.export reproduces them exactly. A node's key is its name, except for a name torch.nn.ModuleDict
already uses as an attribute ("keys", "forward", "training", ...), which cannot be a submodule's name: such a node is
stored under "node:<name>" (a colon never occurs in a spec's node names, so keys stay distinct).
"""
from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from attnas.cells.errors import CellBuildError, CellInputError
from attnas.cells.ops import OPS, create_op
from attnas.search_space import INPUT, CellSpec


class Cell(nn.Module):
    """A cell wired from the op modules it is handed.

    `ops` maps node names to op modules in topological order; `sources` gives, per node, the nodes feeding its ports
    in the order its forward takes them ("input" is the cell input); `output` names the nodes that are summed.
    """

    def __init__(self, *, channels: int, inner_channels: int, ops: Mapping[str, nn.Module],
                 sources: Mapping[str, tuple[str, ...]], output: tuple[str, ...], spec: CellSpec | None = None) -> None:
        super().__init__()
        self.channels = channels
        self.inner_channels = inner_channels
        self.nodes = tuple(ops)
        self.ops = nn.ModuleDict({module_key(name): op for name, op in ops.items()})
        self.sources = {name: tuple(sources[name]) for name in ops}
        self.output = tuple(output)
        self.project = nn.Conv3d(inner_channels, channels, kernel_size=1, bias=False)
        self.norm = nn.BatchNorm3d(channels)
        nn.init.zeros_(self.norm.weight)
        self.spec = spec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5:
            raise CellInputError(f"cell input: expected a 5-D (N, C, T, H, W) tensor, got shape {tuple(x.shape)}")
        if x.shape[1] != self.channels:
            raise CellInputError(f"cell input: expected {self.channels} channels, got {x.shape[1]} "
                                 f"(shape {tuple(x.shape)})")
        values = {INPUT: x}
        for name, op in zip(self.nodes, self.ops.values()):
            values[name] = op(*(values[source] for source in self.sources[name]))
        total = values[self.output[0]]
        for name in self.output[1:]:
            total = total + values[name]
        return x + self.norm(self.project(total))

    def op(self, name: str) -> nn.Module:
        """The op module of the spec's node `name`."""
        return self.ops[module_key(name)]

    def extra_repr(self) -> str:
        spec = f", spec={self.spec.hash}" if self.spec is not None else ""
        return f"channels={self.channels}, inner_channels={self.inner_channels}{spec}"


_CONTAINER = nn.ModuleDict()


def module_key(name: str) -> str:
    """The key under which Cell.ops holds node `name`'s module (module docstring)."""
    return f"node:{name}" if hasattr(_CONTAINER, name) else name


def inner_width(spec: CellSpec, channels: int) -> int:
    """The inner width c = max(1, round(width * channels)) that every op of the cell outputs."""
    return max(1, round(spec.width * channels))


def descriptor_count(fraction: float, inner_channels: int) -> int:
    """A gather's number of descriptors n = max(1, round(descriptors * c))."""
    return max(1, round(fraction * inner_channels))


def build(spec: CellSpec, channels: int) -> Cell:
    """The cell module for `spec` on maps of `channels` channels."""
    if not isinstance(spec, CellSpec):
        raise CellBuildError(f"build: expected a CellSpec (see search_space.CellSpec.from_yaml), got "
                             f"{type(spec).__name__}")
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise CellBuildError(f"build: channels: expected a positive integer, got {channels!r}")
    c = inner_width(spec, channels)
    widths = {INPUT: channels}
    descriptors: dict[str, int] = {}
    ops: dict[str, nn.Module] = {}
    sources: dict[str, tuple[str, ...]] = {}
    for node in spec.nodes:
        attrs = node.attr_map
        if node.op == "gather":
            attrs["descriptors"] = descriptors[node.name] = descriptor_count(attrs["descriptors"], c)
        elif node.op == "distribute":
            attrs["descriptors"] = descriptors[node.source("bag")]
        port_order = OPS[node.op].ports
        in_channels = {port: widths[node.source(port)] for port in port_order}
        try:
            ops[node.name] = create_op(node.op, in_channels, c, **attrs)
        except CellBuildError as error:
            raise CellBuildError(f"node {node.name!r} (width {spec.width:g} x {channels} channels = inner width "
                                 f"{c}): {error}") from None
        sources[node.name] = tuple(node.source(port) for port in port_order)
        widths[node.name] = c
    return Cell(channels=channels, inner_channels=c, ops=ops, sources=sources, output=spec.output, spec=spec)
