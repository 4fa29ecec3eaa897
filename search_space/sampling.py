"""Counting and sampling the cells of a `SearchSpace` (mixed into it; see search_space/space.py).

Counting and sampling work on *ordered specs*: a list of nodes in which every port names an earlier node (with
commutative ports filled in source order). A dynamic programme over (nodes placed, maps available, gathers of each
dim consumed or not) counts them exactly, and `sample` draws each ordered spec with equal probability by walking
that programme. A cell with L topological orders and A automorphisms has L / A ordered specs, so the number of
distinct cells is the sum of A / L over ordered specs: exact by enumeration for small spaces, an unbiased
estimate from uniform samples for large ones (`count`).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any, Iterator, Sequence

import numpy as np
from networkx.algorithms import isomorphism

from attnas.search_space.spec import INPUT, CellSpec, unique_cells
from attnas.search_space.vocabulary import MAP, bag_port, get_operation, makes_bag, map_ports


@dataclass(frozen=True)
class SpaceSize:
    """How big a space is: ordered specs (exact) and distinct cells (exact, or estimated with a standard error)."""

    ordered_specs: int
    cells: float
    exact: bool
    method: str
    standard_error: float = 0.0


class Sampling:
    """Counting, uniform sampling and enumeration of ordered specs, for a class with `ops`, `widths`, `max_nodes`
    and `gather_dims` (SearchSpace)."""

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
            if name == self.bag_maker:
                for d, dim in enumerate(choices.dims()):
                    unconsumed, consumed = bags[d]
                    after = bags[:d] + ((unconsumed + 1, consumed),) + bags[d + 1:]
                    result.append((maps * choices.weight(dim), name, dim, (placed + 1, maps, after)))
            elif name == self.bag_taker:
                for d, dim in enumerate(self.gather_dims):
                    unconsumed, consumed = bags[d]
                    if unconsumed:
                        after = bags[:d] + ((unconsumed - 1, consumed + 1),) + bags[d + 1:]
                        result.append((unconsumed * maps, name, (dim, "unconsumed"), (placed + 1, maps + 1, after)))
                    if consumed:
                        result.append((consumed * maps, name, (dim, "consumed"), grown))
            else:
                map_inputs = len(map_ports(name))
                if choices.op.commutative:
                    sources = math.comb(maps + map_inputs - 1, map_inputs)
                else:
                    sources = maps ** map_inputs
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
        if op == self.bag_taker:
            dim, which = detail
            bags = self._bags(earlier, dim, which)
            return {"name": name, "op": op, "dim": dim, "inputs": {
                bag_port(op): _choice(rng, bags), **{port: _choice(rng, maps) for port in map_ports(op)}}}
        dim = detail
        node = {"name": name, "op": op}
        if dim is not None:
            node["dim"] = dim
        for attr, values in choices.free_attributes(dim):
            node[attr] = _choice(rng, values)
        ports = map_ports(op)
        if choices.op.commutative:
            node["inputs"] = _uniform_multiset(rng, maps, ports)
        else:
            node["inputs"] = {p: _choice(rng, maps) for p in ports}
        return node

    @staticmethod
    def _bags(earlier: list[dict], dim: Any, which: str) -> list[str]:
        """Names of the earlier bag-making nodes of `dim` that some node already consumes ("consumed") or not."""
        consumed = {n["inputs"][bag_port(n["op"])] for n in earlier if bag_port(n["op"])}
        return [n["name"] for n in earlier if makes_bag(n["op"]) and n["dim"] == dim
                and (n["name"] in consumed) == (which == "consumed")]

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
        if op == self.bag_taker:
            dim, which = detail
            for bag in self._bags(earlier, dim, which):
                for sources in itertools.product(maps, repeat=len(map_ports(op))):
                    yield {"name": name, "op": op, "dim": dim,
                           "inputs": {bag_port(op): bag, **dict(zip(map_ports(op), sources))}}
            return
        dim = detail
        ports = map_ports(op)
        if choices.op.commutative:
            wirings = [dict(zip(ports, combo)) for combo in _multisets(maps, len(ports))]
        else:
            wirings = [dict(zip(ports, combo)) for combo in itertools.product(maps, repeat=len(ports))]
        free = choices.free_attributes(dim)
        for values in itertools.product(*[v for _, v in free]):
            for inputs in wirings:
                node = {"name": name, "op": op, "inputs": inputs}
                if dim is not None:
                    node["dim"] = dim
                node.update({attr: value for (attr, _), value in zip(free, values)})
                yield node


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


