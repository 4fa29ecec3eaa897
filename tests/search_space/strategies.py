"""Hypothesis strategies and helpers shared by the search-space tests."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from attnas.search_space import INPUT, CellSpec, load_space

SPACES = {name: load_space(name) for name in ("small", "default")}

seeds = st.integers(min_value=0, max_value=2**32 - 1)
space_names = st.sampled_from(sorted(SPACES))


def relabelled(spec: CellSpec, rng: np.random.Generator) -> CellSpec:
    """The same cell with fresh node names, listed in another random topological order."""
    names = [f"x{i}_{rng.integers(1000)}" for i in range(len(spec.nodes))]
    rng.shuffle(names)
    rename = {INPUT: INPUT, **{n.name: new for n, new in zip(spec.nodes, names)}}
    remaining = list(spec.nodes)
    placed: set[str] = {INPUT}
    order = []
    while remaining:
        ready = [n for n in remaining if {src for _, src in n.inputs} <= placed]
        node = ready[rng.integers(len(ready))]
        order.append(node)
        placed.add(node.name)
        remaining.remove(node)
    nodes = [
        {"name": rename[n.name], "op": n.op, "inputs": {p: rename[s] for p, s in n.inputs}, **n.attr_map}
        for n in order
    ]
    output = [rename[name] for name in spec.output]
    rng.shuffle(output)
    return CellSpec.from_nodes(nodes, width=spec.width, output=output, name=spec.name)
