"""`SearchSpace`: a YAML-defined space of attention cells (docs/design.md, "The search space").

A space fixes which ops may appear, each attribute's choices, the number of operation nodes (1..max_nodes) and the
inner widths. Its cells take as output every map node nothing else consumes (AttentionNAS's sink), so a cell is
fully described by its nodes. The class is assembled from one module per idea: counting and sampling
(search_space/sampling.py), mutation (mutation.py), encodings (encoding.py) and reading the YAML (space_file.py);
this module holds membership and the `Space` interface's data conversions.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from attnas.search_space.encoding import WL_FEATURE_ITERATIONS, Encoding
from attnas.search_space.errors import SpecError, quoted
from attnas.search_space.interface import Space
from attnas.search_space.mutation import MUTATION_KINDS, Mutation, node_dicts
from attnas.search_space.sampling import Sampling, SpaceSize, symmetry_ratio
from attnas.search_space.space_file import MAX_NODES_LIMIT, SPACE_FIELDS, OpChoices, parse_space
from attnas.search_space.spec import CellSpec, leaves
from attnas.search_space.vocabulary import bag_port, makes_bag
from attnas.search_space.yaml_io import load_yaml

__all__ = ["SearchSpace", "SpaceSize", "OpChoices", "MUTATION_KINDS", "WL_FEATURE_ITERATIONS", "MAX_NODES_LIMIT",
           "SPACE_FIELDS", "symmetry_ratio"]


class SearchSpace(Sampling, Mutation, Encoding, Space):
    """A space of attention cells loaded from YAML; see the module docstring for how it counts and samples."""

    def __init__(self, *, name: str, max_nodes: int, widths: Sequence[float], ops: Mapping[str, OpChoices]):
        self.name = name
        self.max_nodes = max_nodes
        self.widths = tuple(widths)
        self.ops = dict(ops)
        # The op that makes bags and the op that takes them (A^2's gather and distribute), found by port type.
        self.bag_maker = next((op for op in self.ops if makes_bag(op)), None)
        self.bag_taker = next((op for op in self.ops if bag_port(op)), None)
        self.gather_dims = tuple(self.ops[self.bag_maker].dims()) if self.bag_maker else ()

    # ----------------------------------------------------------------------------------------------- loading
    @classmethod
    def from_yaml(cls, path_or_text: str, *, source: str | None = None) -> "SearchSpace":
        data, where = load_yaml(path_or_text, source=source)
        return cls.from_dict(data, source=where)

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "search space") -> "SearchSpace":
        try:
            return cls(**parse_space(data))
        except SpecError as error:
            raise SpecError(f"{source}: {error}") from None

    def __repr__(self) -> str:
        return f"SearchSpace({self.name!r}, max_nodes={self.max_nodes}, ops={list(self.ops)})"

    # ------------------------------------------------------------------------------------------- membership
    def check(self, spec: CellSpec) -> None:
        """Raise `SpecError` saying why `spec` is not in this space; return None when it is."""
        if spec.width not in self.widths:
            raise SpecError(f"width {quoted(spec.width)} is outside the space; expected one of {_listing(self.widths)}")
        if not 1 <= len(spec.nodes) <= self.max_nodes:
            raise SpecError(f"{len(spec.nodes)} nodes is outside the space; expected 1 to {self.max_nodes}")
        for node in spec.nodes:
            if node.op not in self.ops:
                raise SpecError(f"node {node.name!r}: op {quoted(node.op)} is outside the space; "
                                f"allowed ops: {', '.join(self.ops)}")
            choices = self.ops[node.op].choices
            for attr, value in node.attrs:
                if attr in choices and value not in choices[attr]:
                    raise SpecError(f"node {node.name!r}: attribute {attr!r} = {quoted(value)} is outside the space; "
                                    f"expected one of {_listing(choices[attr])}")
        expected = leaves(node_dicts(spec))
        if sorted(spec.output) != sorted(expected):
            raise SpecError(f"output {list(spec.output)} is outside the space; its cells output exactly the map "
                            f"nodes nothing else consumes: {expected}")

    def contains(self, cell: Any) -> bool:
        if not isinstance(cell, CellSpec):
            return False
        try:
            self.check(cell)
        except SpecError:
            return False
        return True

    def hash(self, cell: CellSpec) -> str:
        return cell.hash

    def to_data(self, cell: CellSpec) -> dict:
        return cell.to_dict()

    def from_data(self, data: Any) -> CellSpec:
        return CellSpec.from_dict(data)


def _listing(values: Sequence) -> str:
    return ", ".join(repr(v) for v in values)
