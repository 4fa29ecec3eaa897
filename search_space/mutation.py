"""Mutating a cell of a `SearchSpace` into a valid neighbour, one edit away (mixed into it; see space.py)."""
from __future__ import annotations

from typing import Any

import numpy as np

from attnas.search_space.errors import SpecError
from attnas.search_space.sampling import _choice
from attnas.search_space.spec import INPUT, CellSpec
from attnas.search_space.vocabulary import BAG, MAP, bag_port, get_operation, makes_bag, map_ports

MUTATION_KINDS = ("op", "attribute", "edge", "add", "remove")


class Mutation:
    """`mutate` and its edits, for a class with `ops`, `widths`, `max_nodes`, `check` and `_random_node`
    (SearchSpace)."""

    def mutate(self, cell: CellSpec, rng: np.random.Generator, *, kind: str | None = None,
               attempts: int = 200) -> CellSpec:
        """A different cell of the space, one edit away; `kind` forces one of MUTATION_KINDS."""
        if kind is not None and kind not in MUTATION_KINDS:
            raise SpecError(f"unknown mutation kind {kind!r}; expected one of {', '.join(MUTATION_KINDS)}")
        for _ in range(attempts):
            edit = kind or MUTATION_KINDS[rng.integers(len(MUTATION_KINDS))]
            nodes = node_dicts(cell)
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
        if op in (self.bag_maker, self.bag_taker):
            # A bag is no map: the node becomes an A^2 pair, its distribute keeping the name consumers refer to.
            if op == self.bag_maker or not _bag_makers(nodes[:index]) or rng.random() < 0.5:
                if len(nodes) >= self.max_nodes:
                    return None
                nodes.insert(index, self._new_gather(nodes, index, rng, x=first_map))
                index += 1
        op = self.bag_taker if op == self.bag_maker else op
        new = self._random_node(op, self._random_detail(op, nodes[:index], rng),
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
        gather = self._random_node(self.bag_maker, self._random_detail(self.bag_maker, nodes[:position], rng),
                                   nodes[:position], rng, name=name)
        if x is not None:
            gather["inputs"][map_ports(self.bag_maker)[0]] = x
        return gather

    def _random_detail(self, op: str, earlier: list[dict], rng) -> Any:
        if op == self.bag_taker:
            bag = _choice(rng, _bag_makers(earlier))
            consumed = any(bag_port(n["op"]) and n["inputs"][bag_port(n["op"])] == bag["name"] for n in earlier)
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
            if makes_bag(node["op"]):
                for other in nodes:
                    if bag_port(other["op"]) and other["inputs"][bag_port(other["op"])] == node["name"]:
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
        if op in (self.bag_maker, self.bag_taker) and (op == self.bag_maker or not _bag_makers(nodes[:position])):
            # gather and distribute arrive as a pair, since a lone gather's bag would feed nothing
            if len(nodes) + 2 > self.max_nodes:
                return None
            nodes.insert(position, self._new_gather(nodes, position, rng))
            position += 1
            op = self.bag_taker
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


def _bag_makers(nodes: list[dict]) -> list[dict]:
    return [n for n in nodes if makes_bag(n["op"])]


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
    bags = {n["inputs"][bag_port(n["op"])] for n in nodes if bag_port(n["op"])}
    return [n for n in nodes if not makes_bag(n["op"]) or n["name"] in bags]


def node_dicts(spec: CellSpec) -> list[dict]:
    return [{"name": n.name, "op": n.op, "inputs": dict(n.inputs), **dict(n.attrs)} for n in spec.nodes]


