"""`SearchSpace`: a YAML-defined space of attention cells (shared/DESIGN.md, "The search space").

A space fixes which ops may appear, each attribute's choices, the number of operation nodes (1..max_nodes) and the
inner widths. Its cells take as output every map node nothing else consumes (AttentionNAS's sink), so a cell is
fully described by its nodes.

Counting and sampling work on *ordered specs*: a list of nodes in which every port names an earlier node (with
commutative ports filled in source order). A dynamic programme over (nodes placed, maps available, gathers of each
dim consumed or not) counts them exactly, and `sample` draws each ordered spec with equal probability by walking
that programme. A cell with L topological orders and A automorphisms has L / A ordered specs, so the number of
distinct cells is the sum of A / L over ordered specs: exact by enumeration for small spaces, an unbiased
estimate from uniform samples for large ones (`count`).
"""
from __future__ import annotations

import difflib
import itertools
import math
from collections import Counter
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
from networkx.algorithms import isomorphism

from attnas.search_space.errors import SpecError, quoted
from attnas.search_space.interface import Space
from attnas.search_space.spec import INPUT, CellSpec, leaves, unique_cells
from attnas.search_space.vocabulary import BAG, MAP, OPERATIONS, Operation, get_operation
from attnas.search_space.yaml_io import load_yaml

SPACE_FIELDS = ("name", "max_nodes", "widths", "ops")
MAX_NODES_LIMIT = 8
MUTATION_KINDS = ("op", "attribute", "edge", "add", "remove")
WL_FEATURE_ITERATIONS = 2
_NOT_APPLICABLE = 0


@dataclass(frozen=True)
class SpaceSize:
    """How big a space is: ordered specs (exact) and distinct cells (exact, or estimated with a standard error)."""

    ordered_specs: int
    cells: float
    exact: bool
    method: str
    standard_error: float = 0.0


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


class SearchSpace(Space):
    """A space of attention cells loaded from YAML; see the module docstring for how it counts and samples."""

    def __init__(self, *, name: str, max_nodes: int, widths: Sequence[float], ops: Mapping[str, OpChoices]):
        self.name = name
        self.max_nodes = max_nodes
        self.widths = tuple(widths)
        self.ops = dict(ops)
        self.gather_dims = tuple(self.ops["gather"].dims()) if "gather" in self.ops else ()

    # ----------------------------------------------------------------------------------------------- loading
    @classmethod
    def from_yaml(cls, path_or_text: str, *, source: str | None = None) -> "SearchSpace":
        data, where = load_yaml(path_or_text, source=source)
        return cls.from_dict(data, source=where)

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "search space") -> "SearchSpace":
        try:
            return _parse_space(data)
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
        expected = leaves(_node_dicts(spec))
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

    # ----------------------------------------------------------------------------------------- counting
    def _initial_state(self) -> tuple:
        return (0, 1, tuple((0, 0) for _ in self.gather_dims))

    def _transitions(self, state: tuple) -> list[tuple[int, str, Any, tuple]]:
        """(multiplicity, op, detail, next state) for each way to append one node to an ordered spec."""
        placed, maps, bags = state
        if placed >= self.max_nodes:
            return []
        grown = (placed + 1, maps + 1, bags)
        result = []
        for name, choices in self.ops.items():
            if name == "gather":
                for d, dim in enumerate(choices.dims()):
                    unconsumed, consumed = bags[d]
                    after = bags[:d] + ((unconsumed + 1, consumed),) + bags[d + 1:]
                    result.append((maps * choices.weight(dim), name, dim, (placed + 1, maps, after)))
            elif name == "distribute":
                for d, dim in enumerate(self.gather_dims):
                    unconsumed, consumed = bags[d]
                    if unconsumed:
                        after = bags[:d] + ((unconsumed - 1, consumed + 1),) + bags[d + 1:]
                        result.append((unconsumed * maps, name, (dim, "unconsumed"), (placed + 1, maps + 1, after)))
                    if consumed:
                        result.append((consumed * maps, name, (dim, "consumed"), grown))
            else:
                map_ports = sum(1 for t in choices.op.ports.values() if t == MAP)
                if choices.op.commutative:
                    sources = math.comb(maps + map_ports - 1, map_ports)
                else:
                    sources = maps ** map_ports
                for dim in choices.dims():
                    result.append((sources * choices.weight(dim), name, dim, grown))
        return [t for t in result if t[0] > 0]

    def _is_complete(self, state: tuple) -> bool:
        placed, _, bags = state
        return placed >= 1 and all(unconsumed == 0 for unconsumed, _ in bags)

    @lru_cache(maxsize=None)
    def _completions(self, state: tuple) -> int:
        """Ordered specs (without width) that extend a prefix in this state, the prefix itself included."""
        total = 1 if self._is_complete(state) else 0
        for multiplicity, _, _, after in self._transitions(state):
            total += multiplicity * self._completions(after)
        return total

    @cached_property
    def ordered_count(self) -> int:
        """The exact number of ordered specs in the space (widths included)."""
        return len(self.widths) * self._completions(self._initial_state())

    def count(self, *, exact_limit: int = 200_000, samples: int = 20_000, seed: int = 0) -> SpaceSize:
        """The number of distinct cells: by enumeration up to `exact_limit` ordered specs, else estimated."""
        if self.ordered_count <= exact_limit:
            distinct = len(unique_cells(self.enumerate()))
            return SpaceSize(self.ordered_count, distinct, True, "enumerated every ordered spec, deduplicated "
                             "by hash and isomorphism")
        rng = np.random.default_rng(seed)
        ratios = np.array([symmetry_ratio(self.sample(rng)) for _ in range(samples)])
        estimate = self.ordered_count * ratios.mean()
        stderr = self.ordered_count * ratios.std(ddof=1) / math.sqrt(samples)
        return SpaceSize(self.ordered_count, float(estimate), False,
                         f"ordered specs counted exactly by dynamic programming; distinct cells estimated as "
                         f"ordered specs x mean(automorphisms / topological orders) over {samples} uniform samples",
                         float(stderr))

    def size(self) -> int | None:
        return int(self.count().cells) if self.ordered_count <= 200_000 else None

    # ----------------------------------------------------------------------------------------- sampling
    def sample(self, rng: np.random.Generator) -> CellSpec:
        """An ordered spec drawn uniformly among all ordered specs of the space."""
        width = self.widths[rng.integers(len(self.widths))]
        state = self._initial_state()
        nodes: list[dict] = []
        while True:
            options = self._transitions(state)
            weights = [m * self._completions(after) for m, _, _, after in options]
            stop = 1 if self._is_complete(state) else 0
            pick = _weighted_index(rng, [stop, *weights])
            if pick == 0:
                break
            _, op, detail, state = options[pick - 1]
            nodes.append(self._random_node(op, detail, nodes, rng, name=f"n{len(nodes) + 1}"))
        return CellSpec.from_nodes(nodes, width=width)

    def _random_node(self, op: str, detail: Any, earlier: list[dict], rng: np.random.Generator, *,
                     name: str) -> dict:
        choices = self.ops[op]
        maps = [INPUT] + [n["name"] for n in earlier if get_operation(n["op"]).output == MAP]
        if op == "distribute":
            dim, which = detail
            consumed = {n["inputs"]["bag"] for n in earlier if n["op"] == "distribute"}
            bags = [n["name"] for n in earlier if n["op"] == "gather" and n["dim"] == dim
                    and (n["name"] in consumed) == (which == "consumed")]
            return {"name": name, "op": op, "dim": dim,
                    "inputs": {"bag": _choice(rng, bags), "x": _choice(rng, maps)}}
        dim = detail
        node = {"name": name, "op": op}
        if dim is not None:
            node["dim"] = dim
        for attr, values in choices.free_attributes(dim):
            node[attr] = _choice(rng, values)
        map_ports = [p for p, t in choices.op.ports.items() if t == MAP]
        if choices.op.commutative:
            node["inputs"] = _uniform_multiset(rng, maps, map_ports)
        else:
            node["inputs"] = {p: _choice(rng, maps) for p in map_ports}
        return node

    def enumerate(self) -> Iterator[CellSpec]:
        """Every ordered spec of the space (use only for small spaces: see `ordered_count`)."""
        for width in self.widths:
            yield from self._extend([], self._initial_state(), width)

    def _extend(self, nodes: list[dict], state: tuple, width: float) -> Iterator[CellSpec]:
        if self._is_complete(state):
            yield CellSpec.from_nodes(nodes, width=width)
        for _, op, detail, after in self._transitions(state):
            for node in self._all_nodes(op, detail, nodes, name=f"n{len(nodes) + 1}"):
                yield from self._extend(nodes + [node], after, width)

    def _all_nodes(self, op: str, detail: Any, earlier: list[dict], *, name: str) -> Iterator[dict]:
        choices = self.ops[op]
        maps = [INPUT] + [n["name"] for n in earlier if get_operation(n["op"]).output == MAP]
        if op == "distribute":
            dim, which = detail
            consumed = {n["inputs"]["bag"] for n in earlier if n["op"] == "distribute"}
            for bag in [n["name"] for n in earlier if n["op"] == "gather" and n["dim"] == dim
                        and (n["name"] in consumed) == (which == "consumed")]:
                for x in maps:
                    yield {"name": name, "op": op, "dim": dim, "inputs": {"bag": bag, "x": x}}
            return
        dim = detail
        map_ports = [p for p, t in choices.op.ports.items() if t == MAP]
        if choices.op.commutative:
            wirings = [dict(zip(map_ports, combo)) for combo in _multisets(maps, len(map_ports))]
        else:
            wirings = [dict(zip(map_ports, combo)) for combo in itertools.product(maps, repeat=len(map_ports))]
        free = choices.free_attributes(dim)
        for values in itertools.product(*[v for _, v in free]):
            for inputs in wirings:
                node = {"name": name, "op": op, "inputs": inputs}
                if dim is not None:
                    node["dim"] = dim
                node.update({attr: value for (attr, _), value in zip(free, values)})
                yield node

    # ----------------------------------------------------------------------------------------- mutation
    def mutate(self, cell: CellSpec, rng: np.random.Generator, *, kind: str | None = None,
               attempts: int = 200) -> CellSpec:
        """A different cell of the space, one edit away; `kind` forces one of MUTATION_KINDS."""
        if kind is not None and kind not in MUTATION_KINDS:
            raise SpecError(f"unknown mutation kind {kind!r}; expected one of {', '.join(MUTATION_KINDS)}")
        for _ in range(attempts):
            edit = kind or MUTATION_KINDS[rng.integers(len(MUTATION_KINDS))]
            nodes = _node_dicts(cell)
            width = cell.width
            if edit == "attribute" and rng.random() < 1 / (1 + len(nodes)) and len(self.widths) > 1:
                width = _choice(rng, [w for w in self.widths if w != cell.width])
            else:
                nodes = getattr(self, f"_mutate_{edit}")(nodes, rng)
            if nodes is None:
                continue
            try:
                child = CellSpec.from_nodes(nodes, width=width)
                self.check(child)
            except SpecError:
                continue
            if child.hash != cell.hash or not child.same_cell(cell):
                return child
        raise SpecError(f"found no valid neighbour of cell {cell.hash} in {attempts} attempts")

    def _mutate_op(self, nodes: list[dict], rng) -> list[dict] | None:
        index = int(rng.integers(len(nodes)))
        old = nodes[index]
        ops = [op for op in self.ops if op != old["op"]]
        if not ops:
            return None
        op = _choice(rng, ops)
        first_map = next((src for p, src in old["inputs"].items() if get_operation(old["op"]).ports[p] == MAP),
                         INPUT)
        if op in ("gather", "distribute"):
            # A bag is no map: the node becomes an A^2 pair, its distribute keeping the name consumers refer to.
            if op == "gather" or not _gathers(nodes[:index]) or rng.random() < 0.5:
                if len(nodes) >= self.max_nodes:
                    return None
                nodes.insert(index, self._new_gather(nodes, index, rng, x=first_map))
                index += 1
        new = self._random_node("distribute" if op == "gather" else op,
                                self._random_detail("distribute" if op == "gather" else op, nodes[:index], rng),
                                nodes[:index], rng, name=old["name"])
        for port, port_type in get_operation(new["op"]).ports.items():
            if port_type == MAP:
                new["inputs"][port] = first_map
                break
        nodes[index] = new
        return _without_orphan_gathers(nodes)

    def _new_gather(self, nodes: list[dict], position: int, rng, *, x: str | None = None) -> dict:
        taken = {n["name"] for n in nodes}
        name = next(f"n{i}" for i in range(1, len(nodes) + 2) if f"n{i}" not in taken)
        gather = self._random_node("gather", self._random_detail("gather", nodes[:position], rng),
                                   nodes[:position], rng, name=name)
        if x is not None:
            gather["inputs"]["x"] = x
        return gather

    def _random_detail(self, op: str, earlier: list[dict], rng) -> Any:
        if op == "distribute":
            bag = _choice(rng, _gathers(earlier))
            consumed = any(n["op"] == "distribute" and n["inputs"]["bag"] == bag["name"] for n in earlier)
            return bag["dim"], "consumed" if consumed else "unconsumed"
        return _choice(rng, self.ops[op].dims())

    def _mutate_attribute(self, nodes: list[dict], rng) -> list[dict] | None:
        index = rng.integers(len(nodes))
        node = nodes[index]
        choices = self.ops.get(node["op"])
        if choices is None:
            return None
        candidates = [(a, v) for a, v in choices.choices.items() if len(v) > 1 and a in node]
        if not candidates:
            return None
        attr, values = candidates[rng.integers(len(candidates))]
        node[attr] = _choice(rng, [v for v in values if v != node[attr]])
        if attr == "dim":
            for extra, extra_values in choices.free_attributes(node["dim"]):
                if extra not in node:
                    node[extra] = _choice(rng, extra_values)
            applicable = {a.name for a in choices.op.applicable(node["dim"])}
            for key in [k for k in node if k not in ("name", "op", "inputs") and k not in applicable]:
                del node[key]
            if node["op"] == "gather":
                for other in nodes:
                    if other["op"] == "distribute" and other["inputs"]["bag"] == node["name"]:
                        other["dim"] = node["dim"]
        return nodes

    def _mutate_edge(self, nodes: list[dict], rng) -> list[dict] | None:
        index = rng.integers(len(nodes))
        node = nodes[index]
        port = _choice(rng, list(node["inputs"]))
        port_type = get_operation(node["op"]).ports[port]
        sources = [n["name"] for n in nodes[:index] if get_operation(n["op"]).output == port_type]
        if port_type == MAP:
            sources.insert(0, INPUT)
        sources = [s for s in sources if s != node["inputs"][port]]
        if not sources:
            return None
        node["inputs"][port] = _choice(rng, sources)
        return nodes

    def _mutate_add(self, nodes: list[dict], rng) -> list[dict] | None:
        if len(nodes) >= self.max_nodes:
            return None
        position = int(rng.integers(len(nodes) + 1))
        op = _choice(rng, list(self.ops))
        if op in ("gather", "distribute") and (op == "gather" or not _gathers(nodes[:position])):
            # gather and distribute arrive as a pair, since a lone gather's bag would feed nothing
            if len(nodes) + 2 > self.max_nodes:
                return None
            nodes.insert(position, self._new_gather(nodes, position, rng))
            position += 1
            op = "distribute"
        taken = {n["name"] for n in nodes}
        name = next(f"n{i}" for i in range(1, len(nodes) + 2) if f"n{i}" not in taken)
        new = self._random_node(op, self._random_detail(op, nodes[:position], rng), nodes[:position], rng,
                                name=name)
        later = [(n, p) for n in nodes[position:] for p, t in get_operation(n["op"]).ports.items() if t == MAP]
        if later and rng.random() < 0.5:
            consumer, port = later[rng.integers(len(later))]
            consumer["inputs"][port] = name
        nodes.insert(position, new)
        return nodes

    def _mutate_remove(self, nodes: list[dict], rng) -> list[dict] | None:
        if len(nodes) <= 1:
            return None
        return _without_orphan_gathers(_remove(nodes, nodes[rng.integers(len(nodes))]["name"]))

    # ----------------------------------------------------------------------------------------- encodings
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
            if op == "distribute":
                bag = next((n for n in nodes if n["name"] == node["inputs"]["bag"]), {})
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
        features = Counter({f"width={cell.width!r}": 1})
        for hashes in cell.wl_node_hashes.values():
            for iteration in range(WL_FEATURE_ITERATIONS + 1):
                features[f"{iteration}:{hashes[iteration]}"] += 1
        return dict(features)


# ------------------------------------------------------------------------------------------------- helpers
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



def _gathers(nodes: list[dict]) -> list[dict]:
    return [n for n in nodes if n["op"] == "gather"]


def _remove(nodes: list[dict], name: str) -> list[dict]:
    """Remove a node; map consumers take its first map input instead, and a gather takes its distributes along."""
    removed = next(n for n in nodes if n["name"] == name)
    ports = get_operation(removed["op"]).ports
    replacement = next((src for p, src in removed["inputs"].items() if ports[p] == MAP), INPUT)
    nodes = [n for n in nodes if n is not removed]
    distributes = []
    for node in nodes:
        for port, src in node["inputs"].items():
            if src == name and get_operation(node["op"]).ports[port] == BAG:
                distributes.append(node["name"])
            elif src == name:
                node["inputs"][port] = replacement
    for distribute in distributes:
        nodes = _remove(nodes, distribute)
    return nodes


def _without_orphan_gathers(nodes: list[dict]) -> list[dict]:
    bags = {n["inputs"]["bag"] for n in nodes if n["op"] == "distribute"}
    return [n for n in nodes if n["op"] != "gather" or n["name"] in bags]


def _node_dicts(spec: CellSpec) -> list[dict]:
    return [{"name": n.name, "op": n.op, "inputs": dict(n.inputs), **dict(n.attrs)} for n in spec.nodes]


def symmetry_ratio(spec: CellSpec) -> float:
    """automorphisms / topological orders: the weight that turns a count of ordered specs into one of cells."""
    graph = spec._graph
    matcher = isomorphism.DiGraphMatcher(
        graph, graph,
        node_match=isomorphism.categorical_node_match("label", None),
        edge_match=isomorphism.categorical_edge_match("label", None),
    )
    automorphisms = sum(1 for _ in matcher.isomorphisms_iter())
    return automorphisms / _linear_extensions(spec)


def _linear_extensions(spec: CellSpec) -> int:
    index = {node.name: i for i, node in enumerate(spec.nodes)}
    preds = [sum(1 << index[src] for src in {src for _, src in node.inputs} - {INPUT}) for node in spec.nodes]
    full = (1 << len(spec.nodes)) - 1

    @lru_cache(maxsize=None)
    def orders(placed: int) -> int:
        if placed == full:
            return 1
        return sum(orders(placed | 1 << i) for i in range(len(preds))
                   if not placed >> i & 1 and preds[i] & placed == preds[i])

    return orders(0)


def _weighted_index(rng: np.random.Generator, weights: Sequence[int]) -> int:
    total = sum(weights)
    target = rng.random() * total
    running = 0
    for i, weight in enumerate(weights):
        running += weight
        if target < running:
            return i
    return max(i for i, w in enumerate(weights) if w > 0)


def _choice(rng: np.random.Generator, values: Sequence) -> Any:
    return values[int(rng.integers(len(values)))]


def _uniform_multiset(rng: np.random.Generator, maps: list[str], ports: list[str]) -> dict[str, str]:
    combos = list(_multisets(maps, len(ports)))
    return dict(zip(ports, combos[int(rng.integers(len(combos)))]))


def _multisets(values: list, k: int) -> Iterator[tuple]:
    return itertools.combinations_with_replacement(values, k)


def _listing(values: Sequence) -> str:
    return ", ".join(repr(v) for v in values)


# --------------------------------------------------------------------------------------------------- parsing
def _parse_space(data: Any) -> SearchSpace:
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
    if ("gather" in ops) != ("distribute" in ops):
        raise SpecError("ops: gather and distribute come together (a gather's bag must feed a distribute)")
    return SearchSpace(name=name, max_nodes=max_nodes, widths=[float(w) for w in widths], ops=ops)


def _parse_op_choices(op: Operation, raw: Any) -> OpChoices:
    where = f"ops.{op.name}"
    if not isinstance(raw, Mapping):
        raise SpecError(f"{where}: expected a mapping of attribute to list of choices, got {quoted(raw)}")
    _check_keys(raw, tuple(op.attributes), where + ".")
    if op.name == "distribute" and "dim" in raw:
        raise SpecError(f"{where}.dim: a distribute takes its gather's dim; list dims under ops.gather.dim")
    choices = {}
    for attribute in op.attributes.values():
        if op.name == "distribute":
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
