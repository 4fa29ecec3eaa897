"""`CellSpec`: an attention cell as an immutable, validated DAG of typed operations (docs/design.md, "The cell").

A spec is data. It comes from YAML/JSON (`from_dict`, `from_yaml`), goes back out (`to_dict`, `to_yaml`), and is
checked on construction: an invalid spec raises `SpecError` and never exists as an object.

Identity: node names and the order nodes are listed in do not matter. `canonical()` renames and reorders nodes
deterministically, and `hash` names the cell everywhere. Both rest on networkx's Weisfeiler-Lehman hashes of the
labelled graph (input -> operations -> output, edges labelled with ports). Like any WL hash it can in principle
collide on non-isomorphic graphs, so wherever two cells must be told apart, `same_cell` confirms with an exact
labelled-isomorphism check.
"""
from __future__ import annotations

import hashlib
import heapq
import json
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Iterable, Mapping

import networkx as nx
from networkx.algorithms import isomorphism

from attnas.search_space.errors import SpecError, quoted
from attnas.search_space.vocabulary import MAP, OPERATIONS, bag_port, get_operation, makes_bag
from attnas.search_space.yaml_io import describe_value, dump_yaml, load_yaml

INPUT = "input"
OUTPUT = "output"
TOP_LEVEL_FIELDS = ("name", "width", "nodes", "output")
NODE_FIELDS = ("op", "inputs")
MAX_WIDTH = 4.0
MAX_NODES = 32  # operation nodes in one cell (a search space allows at most 8)
# Enough rounds for a vertex to see every vertex within three edges, which covers the cells of any shipped space;
# more rounds cost time on every hash and only matter for collisions that `same_cell` resolves anyway.
WL_ITERATIONS = 3
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Node:
    """One operation node: its name, op, the node feeding each input port, and its attributes (all filled in)."""

    name: str
    op: str
    inputs: tuple[tuple[str, str], ...]
    attrs: tuple[tuple[str, Any], ...]

    def source(self, port: str) -> str:
        return dict(self.inputs)[port]

    def attr(self, name: str) -> Any:
        return dict(self.attrs)[name]

    @property
    def input_map(self) -> dict[str, str]:
        return dict(self.inputs)

    @property
    def attr_map(self) -> dict[str, Any]:
        return dict(self.attrs)

    @property
    def label(self) -> str:
        """The node's op and attributes as one string: what WL hashing sees of a node."""
        return self.op + "(" + ",".join(f"{k}={v}" for k, v in self.attrs) + ")"


@dataclass(frozen=True)
class CellSpec:
    """A validated attention cell. Build it with `from_dict`/`from_yaml`/`from_nodes`, not the constructor."""

    nodes: tuple[Node, ...]
    output: tuple[str, ...]
    width: float
    name: str | None = None

    # ----------------------------------------------------------------------------------------------- construction
    @classmethod
    def from_dict(cls, data: Any, *, source: str = "cell spec") -> "CellSpec":
        """Parse and validate a spec given as plain data (the YAML/JSON form)."""
        try:
            return _parse(data)
        except SpecError as error:
            raise SpecError(f"{source}: {error}") from None

    @classmethod
    def from_yaml(cls, path_or_text: str, *, source: str | None = None) -> "CellSpec":
        """Load a spec from a YAML (or JSON) file path or from YAML text."""
        data, where = load_yaml(path_or_text, source=source)
        return cls.from_dict(data, source=where)

    @classmethod
    def from_json(cls, text: str, *, source: str = "cell spec") -> "CellSpec":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise SpecError(f"{source}: not valid JSON: {error}") from None
        return cls.from_dict(data, source=source)

    @classmethod
    def from_nodes(
        cls, nodes: Iterable[Mapping[str, Any]], *, width: float, output: Iterable[str] | None = None,
        name: str | None = None,
    ) -> "CellSpec":
        """Build from node dicts `{"name", "op", "inputs", **attrs}`; `output=None` means every unconsumed map."""
        nodes = list(nodes)
        node_table = {n["name"]: {k: v for k, v in n.items() if k != "name"} for n in nodes}
        if len(node_table) != len(nodes):
            raise SpecError("node names must be unique")
        if output is None:
            output = leaves(nodes)
        data = {"width": width, "nodes": node_table, "output": list(output)}
        if name is not None:
            data["name"] = name
        return cls.from_dict(data)

    # ------------------------------------------------------------------------------------------------- output
    def to_dict(self) -> dict[str, Any]:
        """The spec as plain data, every attribute explicit; `from_dict(to_dict())` gives an equal spec."""
        data: dict[str, Any] = {}
        if self.name is not None:
            data["name"] = self.name
        data["width"] = self.width
        data["nodes"] = {
            n.name: {"op": n.op, "inputs": dict(n.inputs), **dict(n.attrs)} for n in self.nodes
        }
        data["output"] = list(self.output)
        return data

    def to_yaml(self) -> str:
        return dump_yaml(self.to_dict())

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=False)

    # ------------------------------------------------------------------------------------------------ structure
    @cached_property
    def node_map(self) -> dict[str, Node]:
        return {n.name: n for n in self.nodes}

    def output_type(self, name: str) -> str:
        return MAP if name == INPUT else get_operation(self.node_map[name].op).output

    def consumers(self, name: str) -> list[Node]:
        return [n for n in self.nodes if name in dict(n.inputs).values()]

    def graph(self) -> nx.DiGraph:
        """The labelled DAG: `input`, one vertex per node, `output`; edges carry the ports they feed."""
        return self._graph.copy()

    @cached_property
    def _graph(self) -> nx.DiGraph:
        g = nx.DiGraph()
        g.add_nodes_from(self._vertices())
        g.add_edges_from(self._edges())
        return g

    def _vertices(self) -> list[tuple[str, dict]]:
        return [(INPUT, {"label": INPUT}), *((n.name, {"label": n.label}) for n in self.nodes),
                (OUTPUT, {"label": OUTPUT})]

    def _edges(self) -> list[tuple[str, str, dict]]:
        labels: dict[tuple[str, str], list[str]] = {}
        for node in self.nodes:
            commutative = get_operation(node.op).commutative
            for port, src in node.inputs:
                labels.setdefault((src, node.name), []).append("operand" if commutative else port)
        for name in self.output:
            labels[(name, OUTPUT)] = [OUTPUT]
        return [(src, dst, {"label": "+".join(sorted(ports))}) for (src, dst), ports in labels.items()]

    # ------------------------------------------------------------------------------------------------ identity
    @cached_property
    def wl_node_hashes(self) -> dict[str, tuple[str, ...]]:
        """Per-vertex Weisfeiler-Lehman hashes of the undirected labelled graph, initial labels first.

        Undirected so that a vertex sees both what feeds it and what it feeds; one iteration per vertex, so every
        hash covers the whole cell.
        """
        undirected = nx.Graph()
        undirected.add_nodes_from(self._vertices())
        undirected.add_edges_from(self._edges())
        hashes = nx.weisfeiler_lehman_subgraph_hashes(
            undirected, edge_attr="label", node_attr="label",
            iterations=WL_ITERATIONS, digest_size=8, include_initial_labels=True,
        )
        # Tuples of strings are not tracked by the cyclic collector, which keeps bulk hashing of many cells fast.
        return {vertex: tuple(labels) for vertex, labels in hashes.items()}

    @cached_property
    def hash(self) -> str:
        """The cell's name everywhere: 16 hex digits from its WL hashes and width, blind to node names and order."""
        histogram = sorted("/".join(h) for h in self.wl_node_hashes.values())
        payload = "|".join(histogram) + f"|width={self.width!r}"
        return hashlib.blake2b(payload.encode(), digest_size=8).hexdigest()

    def same_cell(self, other: "CellSpec") -> bool:
        """Exact test: same width and a label-preserving isomorphism between the two graphs."""
        if self.width != other.width or len(self.nodes) != len(other.nodes):
            return False
        if self.hash != other.hash:
            return False
        return nx.is_isomorphic(
            self._graph, other._graph,
            node_match=isomorphism.categorical_node_match("label", None),
            edge_match=isomorphism.categorical_edge_match("label", None),
        )

    def canonical(self) -> "CellSpec":
        """The same cell with nodes renamed n1, n2, ... in a topological order fixed by their WL hashes."""
        return _from_order(self, self.canonical_order)

    @cached_property
    def canonical_order(self) -> tuple[str, ...]:
        """Node names in canonical order: topological, ties broken by each node's WL hashes."""
        hashes = self.wl_node_hashes
        pending = {n.name: len(set(dict(n.inputs).values()) - {INPUT}) for n in self.nodes}
        ready = [(hashes[name], name) for name, count in pending.items() if count == 0]
        heapq.heapify(ready)
        order = []
        while ready:
            _, name = heapq.heappop(ready)
            order.append(name)
            for consumer in self.consumers(name):
                pending[consumer.name] -= 1
                if pending[consumer.name] == 0:
                    heapq.heappush(ready, (hashes[consumer.name], consumer.name))
        return tuple(order)

    def __str__(self) -> str:
        body = "; ".join(
            f"{n.name}={n.op}[{','.join(f'{p}:{s}' for p, s in n.inputs)}]" for n in self.nodes
        )
        return f"CellSpec({self.hash}, width={self.width}, {body}, output={list(self.output)})"


def unique_cells(cells: Iterable[CellSpec]) -> list[CellSpec]:
    """The distinct cells among `cells`, first occurrence kept: grouped by hash, confirmed by isomorphism."""
    by_hash: dict[str, list[CellSpec]] = {}
    unique = []
    for cell in cells:
        bucket = by_hash.setdefault(cell.hash, [])
        if not any(cell.same_cell(other) for other in bucket):
            bucket.append(cell)
            unique.append(cell)
    return unique


def leaves(nodes: Iterable[Mapping[str, Any]]) -> list[str]:
    """The nodes no other node consumes, excluding bags: the output of a cell whose output is its sinks."""
    nodes = list(nodes)
    consumed = {src for n in nodes for src in dict(n.get("inputs") or {}).values()}
    return [
        n["name"] for n in nodes
        if n["name"] not in consumed and _op_output(n.get("op")) == MAP
    ]


def _op_output(op: Any) -> str | None:
    try:
        return get_operation(op).output
    except SpecError:
        return None


def _from_order(spec: CellSpec, order: Iterable[str]) -> CellSpec:
    rename = {INPUT: INPUT}
    for index, name in enumerate(order, start=1):
        rename[name] = f"n{index}"
    nodes = []
    for name in order:
        node = spec.node_map[name]
        nodes.append({
            "name": rename[name], "op": node.op,
            "inputs": {port: rename[src] for port, src in node.inputs}, **dict(node.attrs),
        })
    output = sorted(rename[name] for name in spec.output)
    return CellSpec.from_nodes(nodes, width=spec.width, output=output, name=spec.name)


# --------------------------------------------------------------------------------------------------- validation
def _parse(data: Any) -> CellSpec:
    if not isinstance(data, Mapping):
        raise SpecError(f"expected a mapping with fields {', '.join(TOP_LEVEL_FIELDS)}, got {describe_value(data)}")
    for key in data:
        if key not in TOP_LEVEL_FIELDS:
            raise SpecError(f"unknown field {quoted(key)}; expected fields: {', '.join(TOP_LEVEL_FIELDS)}")
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise SpecError(f"name: expected a string, got {describe_value(name)}")
    width = _parse_width(data.get("width"))
    raw_nodes = data.get("nodes")
    if not isinstance(raw_nodes, Mapping) or not raw_nodes:
        raise SpecError(f"nodes: expected a non-empty mapping of node name to node, got {describe_value(raw_nodes)}")
    if len(raw_nodes) > MAX_NODES:  # before any work: a huge graph would take minutes to parse and hash
        raise SpecError(f"nodes: expected at most {MAX_NODES} nodes, got {len(raw_nodes)}")

    nodes: list[Node] = []
    types: dict[str, str] = {INPUT: MAP}
    dims: dict[str, str] = {}
    all_names = set(raw_nodes)
    for node_name, raw in raw_nodes.items():
        node = _parse_node(node_name, raw, types, all_names)
        types[node.name] = get_operation(node.op).output
        if makes_bag(node.op):
            dims[node.name] = node.attr("dim")
        if bag_port(node.op):
            bag = node.source(bag_port(node.op))
            maker = next(n.op for n in nodes if n.name == bag)
            if node.attr("dim") != dims[bag]:
                raise SpecError(
                    f"node {node_name!r}: dim {node.attr('dim')!r} does not match dim {dims[bag]!r} of its {maker} "
                    f"{bag!r}; a {node.op} must use its {maker}'s dim"
                )
        nodes.append(node)

    output = _parse_output(data.get("output"), types)
    _check_connectivity(nodes, output)
    return CellSpec(nodes=tuple(nodes), output=output, width=width, name=name)


def _parse_width(width: Any) -> float:
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0 < width <= MAX_WIDTH:
        raise SpecError(f"width: expected a number in (0, {MAX_WIDTH:g}] (inner width = width * channels), "
                        f"got {quoted(width)}")
    return float(width)


def _parse_node(name: Any, raw: Any, types: dict[str, str], all_names: set) -> Node:
    if not isinstance(name, str) or not _NAME.match(name) or name in (INPUT, OUTPUT):
        raise SpecError(f"node {quoted(name)}: a node name must be an identifier other than 'input' and 'output'")
    where = f"node {quoted(name)}"
    if not isinstance(raw, Mapping):
        raise SpecError(f"{where}: expected a mapping with 'op', 'inputs' and attributes, got {describe_value(raw)}")
    if "op" not in raw:
        raise SpecError(f"{where}: field 'op' is missing")
    try:
        op = get_operation(raw["op"])
    except SpecError as error:
        raise SpecError(f"{where}: {error}") from None

    raw_inputs = raw.get("inputs")
    if not isinstance(raw_inputs, Mapping):
        raise SpecError(f"{where}: inputs: expected a mapping of port to node, got {describe_value(raw_inputs)}; "
                        f"op {op.name!r} takes ports: {', '.join(op.ports)}")
    for port in raw_inputs:
        if port not in op.ports:
            raise SpecError(f"{where}: op {op.name!r} has no port {quoted(port)}; its ports are: {', '.join(op.ports)}")
    inputs = []
    for port, port_type in op.ports.items():
        if port not in raw_inputs:
            raise SpecError(f"{where}: port {quoted(port)} is missing; op {op.name!r} needs ports: "
                            f"{', '.join(op.ports)}")
        src = raw_inputs[port]
        if not isinstance(src, str):
            raise SpecError(f"{where}: port {quoted(port)}: expected a node name, got {describe_value(src)}")
        if src not in types:
            if src in all_names:
                raise SpecError(f"{where}: port {quoted(port)} refers to {quoted(src)}, which is not an earlier node; "
                                "a port takes 'input' or a node listed before it (no cycles)")
            raise SpecError(f"{where}: port {quoted(port)} refers to unknown node {quoted(src)}; "
                            f"expected 'input' or an earlier node")
        if types[src] != port_type:
            raise SpecError(f"{where}: port {quoted(port)} takes a {port_type}, but {quoted(src)} is a {types[src]}")
        inputs.append((port, src))
    if op.commutative:
        # Commutative ports are filled in order of their sources, so an ordered spec names a cell one way only.
        order = {n: i for i, n in enumerate(types)}
        sources = sorted((src for _, src in inputs), key=order.__getitem__)
        inputs = [(port, src) for (port, _), src in zip(inputs, sources)]

    dim = raw.get("dim")
    attrs = []
    for key in raw:
        if key in NODE_FIELDS:
            continue
        attribute = op.attributes.get(key)
        if attribute is None:
            raise SpecError(f"{where}: op {op.name!r} has no attribute {quoted(key)}; "
                            f"its attributes are: {', '.join(op.attributes)}")
        if not attribute.applies_to(dim):
            raise SpecError(f"{where}: attribute {quoted(key)} does not apply to dim {quoted(dim)}; "
                            f"it applies to dims: {', '.join(attribute.dims)}")
    for attribute in op.applicable(dim):
        value = raw.get(attribute.name, attribute.default)
        if value is None:
            raise SpecError(f"{where}: attribute {attribute.name!r} is missing; expected {attribute.describe()}")
        problem = attribute.check(value)
        if problem:
            raise SpecError(f"{where}: attribute {attribute.name!r}: {problem}")
        attrs.append((attribute.name, float(value) if attribute.kind is float else value))
    return Node(name=name, op=op.name, inputs=tuple(inputs), attrs=tuple(attrs))


def _parse_output(output: Any, types: dict[str, str]) -> tuple[str, ...]:
    if not isinstance(output, list) or not output:
        raise SpecError(f"output is empty; expected a list of one or more map nodes, got {quoted(output)}")
    for name in output:
        if not isinstance(name, str) or name not in types or name == INPUT:
            raise SpecError(f"output: {quoted(name)} is not a node; expected names of map nodes")
        if types[name] != MAP:
            raise SpecError(f"output: {quoted(name)} is a {types[name]}; the output takes map nodes only")
    if len(set(output)) != len(output):
        raise SpecError(f"output: lists a node twice: {output}")
    return tuple(output)


def _check_connectivity(nodes: list[Node], output: tuple[str, ...]) -> None:
    consumed = {src for n in nodes for _, src in n.inputs}
    for node in nodes:
        takers = sorted({op for op in OPERATIONS if bag_port(op)})
        if makes_bag(node.op) and not any(
            bag_port(n.op) and n.source(bag_port(n.op)) == node.name for n in nodes
        ):
            raise SpecError(f"node {node.name!r}: its bag is consumed by no {' or '.join(takers)}; "
                            f"every {node.op} must feed a {' or '.join(takers)}")
    reaching = set(output)
    for node in reversed(nodes):
        if node.name in reaching:
            reaching.update(src for _, src in node.inputs)
    for node in nodes:
        if node.name not in reaching:
            detail = "it feeds nothing" if node.name not in consumed else "nothing it feeds reaches the output"
            raise SpecError(f"node {node.name!r} does not reach the output ({detail}); "
                            "every node must feed the output, directly or through other nodes")

