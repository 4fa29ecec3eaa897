"""Encodings of a `SearchSpace`'s cells for surrogate models: a fixed-length integer vector (TPE, GPs over flat
inputs) and Weisfeiler-Lehman graph features (graph kernels); mixed into SearchSpace (see space.py)."""
from __future__ import annotations

from collections import Counter
from functools import cached_property
from typing import Any, Sequence

import numpy as np

from attnas.search_space.errors import SpecError, quoted
from attnas.search_space.spec import INPUT, CellSpec
from attnas.search_space.vocabulary import BAG, MAP, bag_port, get_operation

WL_FEATURE_ITERATIONS = 2


class Encoding:
    """`encode_vector`, `decode_vector` and `wl_features`, for a class with `ops`, `widths`, `max_nodes` and
    `check` (SearchSpace)."""

    @cached_property
    def _vector_layout(self) -> list[tuple[str, Any]]:
        """What each vector entry means, and its categories."""
        layout: list[tuple[str, Any]] = [("width", self.widths)]
        for slot in range(self.max_nodes):
            layout.append((f"{slot}.op", (None, *self.ops)))
            for op, choices in self.ops.items():
                for attr, values in choices.choices.items():
                    if len(values) > 1:
                        layout.append((f"{slot}.{op}.{attr}", (None, *values)))
            for port_kind in ("map0", "map1", "bag"):
                layout.append((f"{slot}.{port_kind}", (None, INPUT, *range(slot))))
        return layout

    def vector_cardinalities(self) -> list[int]:
        return [len(values) for _, values in self._vector_layout]

    def vector_names(self) -> list[str]:
        return [name for name, _ in self._vector_layout]

    def vector_choices(self) -> list[tuple[str, ...]]:
        """Each vector entry's categories by name: `-` for an empty slot or an attribute its op lacks, `slot N` for
        an input taken from slot N's node, else the op, value or width itself."""
        def named(entry: str, value: Any) -> str:
            if value is None:
                return "-"
            return f"slot {value}" if entry.endswith((".map0", ".map1", ".bag")) and value != INPUT else str(value)

        return [tuple(named(entry, value) for value in values) for entry, values in self._vector_layout]

    def encode_vector(self, cell: CellSpec) -> np.ndarray:
        self.check(cell)
        canonical = cell.canonical()
        slot_of = {node.name: i for i, node in enumerate(canonical.nodes)}
        values: dict[str, Any] = {"width": canonical.width}
        for slot, node in enumerate(canonical.nodes):
            values[f"{slot}.op"] = node.op
            for attr, value in node.attrs:
                values[f"{slot}.{node.op}.{attr}"] = value
            for kind, (port, src) in zip(_port_kinds(node.op), _inputs_by_kind(node)):
                values[f"{slot}.{kind}"] = INPUT if src == INPUT else slot_of[src]
        vector = np.zeros(len(self._vector_layout), dtype=np.int64)
        for i, (name, categories) in enumerate(self._vector_layout):
            if name in values:
                vector[i] = categories.index(values[name])
        return vector

    def decode_vector(self, vector: Sequence[int]) -> CellSpec:
        if len(vector) != len(self._vector_layout):
            raise SpecError(f"vector has {len(vector)} entries; expected {len(self._vector_layout)}")
        values = {}
        for (name, categories), index in zip(self._vector_layout, vector):
            if not 0 <= int(index) < len(categories):
                raise SpecError(f"vector entry {quoted(name)} = {index} is outside 0..{len(categories) - 1}")
            values[name] = categories[int(index)]
        nodes: list[dict] = []
        for slot in range(self.max_nodes):
            op = values[f"{slot}.op"]
            if op is None:
                break
            node: dict[str, Any] = {"name": f"n{slot + 1}", "op": op, "inputs": {}}
            for kind, port in zip(_port_kinds(op), _ports_by_kind(op)):
                src = values[f"{slot}.{kind}"]
                if src is None:
                    raise SpecError(f"vector slot {slot}: port {quoted(port)} of {quoted(op)} has no source")
                node["inputs"][port] = src if src == INPUT else f"n{src + 1}"
            if bag_port(op):  # it takes the dim of the node its bag comes from
                bag = next((n for n in nodes if n["name"] == node["inputs"][bag_port(op)]), {})
                node["dim"] = bag.get("dim")
            else:
                choices = self.ops[op]
                dim = values.get(f"{slot}.{op}.dim") or choices.choices.get("dim", (None,))[0]
                for attribute in choices.op.applicable(dim):
                    value = values.get(f"{slot}.{op}.{attribute.name}")
                    node[attribute.name] = value if value is not None else choices.choices[attribute.name][0]
            nodes.append(node)
        if any(values[f"{slot}.op"] is not None for slot in range(len(nodes), self.max_nodes)):
            raise SpecError("vector has an operation after an empty slot")
        if not nodes:
            raise SpecError("vector describes no operation")
        spec = CellSpec.from_nodes(nodes, width=values["width"])
        self.check(spec)
        return spec

    def wl_features(self, cell: CellSpec) -> dict[str, int]:
        return wl_features(cell)


def wl_features(cell: CellSpec) -> dict[str, int]:
    """The bag of WL subtree features of a cell (its width, then each vertex's hash at iterations 0..2): what
    `SearchSpace.wl_features` gives the Bayesian controller, and the simulated evaluator scores, without a space."""
    features = Counter({f"width={cell.width!r}": 1})
    for hashes in cell.wl_node_hashes.values():
        for iteration in range(WL_FEATURE_ITERATIONS + 1):
            features[f"{iteration}:{hashes[iteration]}"] += 1
    return dict(features)



def _port_kinds(op: str) -> list[str]:
    return ["map0" if i == 0 else "map1" for i, _ in enumerate(_map_ports(op))] + (
        ["bag"] if BAG in get_operation(op).ports.values() else [])


def _map_ports(op: str) -> list[str]:
    return [p for p, t in get_operation(op).ports.items() if t == MAP]


def _ports_by_kind(op: str) -> list[str]:
    return _map_ports(op) + [p for p, t in get_operation(op).ports.items() if t == BAG]


def _inputs_by_kind(node) -> list[tuple[str, str]]:
    inputs = dict(node.inputs)
    return [(port, inputs[port]) for port in _ports_by_kind(node.op)]
