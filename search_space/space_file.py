"""Reading a search space's YAML fields (name, max_nodes, widths, ops) into checked values."""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from attnas.search_space.errors import SpecError, quoted
from attnas.search_space.vocabulary import OPERATIONS, Operation, bag_port, makes_bag

SPACE_FIELDS = ("name", "max_nodes", "widths", "ops")
MAX_NODES_LIMIT = 8


@dataclass(frozen=True)
class OpChoices:
    """One op as a space allows it: the values each applicable attribute may take."""

    op: Operation
    choices: Mapping[str, tuple]

    def dims(self) -> tuple:
        return self.choices.get("dim", (None,))

    def free_attributes(self, dim: Any) -> list[tuple[str, tuple]]:
        """(attribute, choices) for the attributes other than dim that a node with this dim carries."""
        return [(a.name, self.choices[a.name]) for a in self.op.applicable(dim) if a.name != "dim"]

    def weight(self, dim: Any) -> int:
        """Number of attribute assignments for a node of this op with this dim."""
        return math.prod(len(values) for _, values in self.free_attributes(dim))


def parse_space(data: Any) -> dict[str, Any]:
    """The keyword arguments of `SearchSpace` from a space file's data; SpecError naming the field."""
    if not isinstance(data, Mapping):
        raise SpecError(f"expected a mapping with fields {', '.join(SPACE_FIELDS)}")
    _check_keys(data, SPACE_FIELDS, "")
    name = data.get("name", "space")
    if not isinstance(name, str):
        raise SpecError(f"name: expected a string, got {quoted(name)}")
    max_nodes = data.get("max_nodes")
    if isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or not 1 <= max_nodes <= MAX_NODES_LIMIT:
        raise SpecError(f"max_nodes: expected an integer from 1 to {MAX_NODES_LIMIT}, got {quoted(max_nodes)}")
    widths = data.get("widths")
    if not isinstance(widths, list) or not widths:
        raise SpecError(f"widths: expected a non-empty list of numbers in (0, 4], got {quoted(widths)}")
    for width in widths:
        if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0 < width <= 4:
            raise SpecError(f"widths: expected numbers in (0, 4], got {quoted(width)}")
    raw_ops = data.get("ops")
    if not isinstance(raw_ops, Mapping) or not raw_ops:
        raise SpecError(f"ops: expected a mapping of op name to attribute choices, got {quoted(raw_ops)}")
    ops = {}
    for op_name, raw_choices in raw_ops.items():
        if op_name not in OPERATIONS:
            hint = difflib.get_close_matches(str(op_name), OPERATIONS, n=1)
            raise SpecError(f"ops.{op_name}: unknown op" + (f" (did you mean {quoted(hint[0])}?)" if hint else "")
                            + f"; known ops: {', '.join(OPERATIONS)}")
        ops[op_name] = _parse_op_choices(OPERATIONS[op_name], raw_choices or {})
    makers = [op for op in ops if makes_bag(op)]
    takers = [op for op in ops if bag_port(op)]
    if bool(makers) != bool(takers):
        maker = makers[0] if makers else next(op for op in OPERATIONS if makes_bag(op))
        taker = takers[0] if takers else next(op for op in OPERATIONS if bag_port(op))
        raise SpecError(f"ops: {maker} and {taker} come together (a {maker}'s bag must feed a {taker})")
    return {"name": name, "max_nodes": max_nodes, "widths": [float(w) for w in widths], "ops": ops}


def _parse_op_choices(op: Operation, raw: Any) -> OpChoices:
    where = f"ops.{op.name}"
    if not isinstance(raw, Mapping):
        raise SpecError(f"{where}: expected a mapping of attribute to list of choices, got {quoted(raw)}")
    _check_keys(raw, tuple(op.attributes), where + ".")
    if bag_port(op.name) and "dim" in raw:
        maker = next(name for name in OPERATIONS if makes_bag(name))
        raise SpecError(f"{where}.dim: a {op.name} takes its {maker}'s dim; list dims under ops.{maker}.dim")
    choices = {}
    for attribute in op.attributes.values():
        if bag_port(op.name):  # its dim is its bag's
            continue
        values = raw.get(attribute.name)
        if values is None:
            if attribute.default is None:
                raise SpecError(f"{where}.{attribute.name}: missing; expected a list of {attribute.describe()}")
            values = [attribute.default]
        if not isinstance(values, list):
            values = [values]
        if not values:
            raise SpecError(f"{where}.{attribute.name}: expected at least one choice")
        checked = []
        for value in values:
            problem = attribute.check(value)
            if problem:
                raise SpecError(f"{where}.{attribute.name}: {problem}")
            checked.append(float(value) if attribute.kind is float else value)
        if len(set(checked)) != len(checked):
            raise SpecError(f"{where}.{attribute.name}: lists a choice twice: {checked}")
        choices[attribute.name] = tuple(checked)
    return OpChoices(op=op, choices=choices)


def _check_keys(data: Mapping, allowed: Sequence[str], prefix: str) -> None:
    for key in data:
        if key not in allowed:
            hint = difflib.get_close_matches(str(key), allowed, n=1)
            raise SpecError(f"{prefix}{key}: unknown field" + (f" (did you mean {quoted(hint[0])}?)" if hint else "")
                            + f"; expected one of: {', '.join(allowed)}")
