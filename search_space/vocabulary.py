"""The operation vocabulary of attention cells, as data (docs/design.md, "The cell").

Each operation has typed input ports, an output type and attributes. An attribute's `values` is the universe of
what the operation understands; a search space's YAML narrows it to the choices it searches over. Attributes that
only make sense for some values of `dim` say so with `dims`, and a spec that sets one elsewhere is invalid.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from attnas.search_space.errors import SpecError, quoted

MAP = "map"
BAG = "bag"

POSITION_DIMS = ("spatial", "temporal", "spatiotemporal")
# Bounds on numeric attributes: far above anything useful, low enough that a typo cannot allocate the machine away.
MAX_HEADS = 64
MAX_KERNEL = 15
MAX_REDUCTION = 256
MAX_DESCRIPTORS = 4.0
CHANNEL_DIM = "channel"


@dataclass(frozen=True)
class Attribute:
    """One attribute of an operation: its type, allowed values (None: any value passing `check`) and default."""

    name: str
    kind: type
    values: tuple | None = None
    default: Any = None
    dims: tuple[str, ...] | None = None
    expectation: str = ""
    maximum: float | None = None  # numbers: the largest value a cell may use (a bound against absurd input)

    def applies_to(self, dim: str | None) -> bool:
        return self.dims is None or dim in self.dims

    def check(self, value: Any) -> str | None:
        """Return why `value` is not allowed, or None when it is."""
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, self.kind):
            return f"expected {self.describe()}, got {quoted(value)}"
        if self.values is not None and value not in self.values:
            return f"expected {self.describe()}, got {quoted(value)}"
        if self.kind is int and value < 1:
            return f"expected {self.describe()}, got {quoted(value)}"
        if self.kind is float and not value > 0:
            return f"expected {self.describe()}, got {quoted(value)}"
        if self.maximum is not None and not value <= self.maximum:
            return f"expected {self.describe()}, got {quoted(value)}"
        if self.name == "kernel" and value % 2 == 0:
            return f"expected {self.describe()}, got {quoted(value)}"
        return None

    def describe(self) -> str:
        if self.expectation:
            return self.expectation
        return "one of " + ", ".join(repr(v) for v in self.values)


@dataclass(frozen=True)
class Operation:
    """An operation: named input ports with their types, the type it outputs, and its attributes."""

    name: str
    ports: dict[str, str]
    output: str
    attributes: dict[str, Attribute] = field(default_factory=dict)
    commutative: bool = False
    summary: str = ""

    def attribute(self, name: str) -> Attribute:
        if name not in self.attributes:
            known = ", ".join(self.attributes) or "none"
            raise SpecError(f"operation {self.name!r} has no attribute {quoted(name)}; its attributes are: {known}")
        return self.attributes[name]

    def applicable(self, dim: str | None) -> list[Attribute]:
        """The attributes that a node of this op with this `dim` must carry (dim itself included)."""
        return [a for a in self.attributes.values() if a.applies_to(dim)]


def _dim(values: tuple[str, ...]) -> Attribute:
    return Attribute("dim", str, values=values)


OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        Operation(
            "dot_attention",
            ports={"query": MAP, "key": MAP},
            output=MAP,
            attributes={
                "dim": _dim(POSITION_DIMS),
                "similarity": Attribute("similarity", str, ("softmax", "scaled_softmax", "dot"), "softmax"),
                "heads": Attribute("heads", int, None, 1, maximum=MAX_HEADS,
                                   expectation=f"an integer from 1 to {MAX_HEADS}"),
            },
            summary="pairwise attention: softmax(Q K^T) V with Q from query, K and V from key (non-local, Transformer)",
        ),
        Operation(
            "map_attention",
            ports={"x": MAP},
            output=MAP,
            attributes={
                "dim": _dim(POSITION_DIMS + (CHANNEL_DIM,)),
                "gate": Attribute("gate", str, ("sigmoid", "softmax"), "sigmoid"),
                "pooling": Attribute("pooling", str, ("avg", "max", "avg_max"), "avg"),
                "kernel": Attribute(
                    "kernel", int, None, 1, dims=POSITION_DIMS, maximum=MAX_KERNEL,
                    expectation=f"an odd integer from 1 to {MAX_KERNEL}",
                ),
                "reduction": Attribute(
                    "reduction", int, None, 4, dims=(CHANNEL_DIM,), maximum=MAX_REDUCTION,
                    expectation=f"an integer from 1 to {MAX_REDUCTION}",
                ),
            },
            summary="weights over dim (or channels) computed from x, gated, multiplied onto a projection of x",
        ),
        Operation(
            "gather",
            ports={"x": MAP},
            output=BAG,
            attributes={
                "dim": _dim(POSITION_DIMS),
                "descriptors": Attribute(
                    "descriptors", float, None, 1.0, maximum=MAX_DESCRIPTORS,
                    expectation=f"a number in (0, {MAX_DESCRIPTORS:g}] (descriptors = round(value * inner width))",
                ),
            },
            summary="A^2 step 1: second-order attention pooling into n global descriptors",
        ),
        Operation(
            "distribute",
            ports={"bag": BAG, "x": MAP},
            output=MAP,
            attributes={"dim": _dim(POSITION_DIMS)},
            summary="A^2 step 2: each position takes a softmax-weighted mix of the gathered descriptors",
        ),
        Operation(
            "combine",
            ports={"a": MAP, "b": MAP},
            output=MAP,
            attributes={"mode": Attribute("mode", str, ("add", "mul"), "add")},
            commutative=True,
            summary="elementwise sum or product (gating) of two maps",
        ),
    )
}


def makes_bag(op: str) -> bool:
    """Whether `op` outputs a bag (global descriptors, A^2's gather) rather than a map; read from its output type."""
    return get_operation(op).output == BAG


def bag_port(op: str) -> str | None:
    """The port through which `op` takes a bag (A^2's distribute), found by its type; None for maps-only ops."""
    return next((port for port, kind in get_operation(op).ports.items() if kind == BAG), None)


def map_ports(op: str) -> list[str]:
    """The ports of `op` that take maps, in declaration order."""
    return [port for port, kind in get_operation(op).ports.items() if kind == MAP]


def get_operation(name: str) -> Operation:
    """Look up an operation by name, raising with the list of known ones."""
    try:
        return OPERATIONS[name]
    except (KeyError, TypeError):
        raise SpecError(f"unknown op {quoted(name)}; known ops: {', '.join(OPERATIONS)}") from None
