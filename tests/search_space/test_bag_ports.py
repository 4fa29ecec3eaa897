"""Bag-typed ports are found by their type, never by the op names "gather"/"distribute": under other names, the
same two ops validate, sample, count, mutate and encode exactly as A^2's pair does."""
from __future__ import annotations

import contextlib
import dataclasses

import numpy as np
import pytest

from attnas.search_space import CellSpec, SearchSpace, SpecError
from attnas.search_space import vocabulary
from attnas.search_space.conformance import check_space

RENAMED = {"gather": "pool_descriptors", "distribute": "spread"}


def space_text(names: dict[str, str]) -> str:
    return f"""
name: bags
max_nodes: 3
widths: [0.25]
ops:
  {names["gather"]}: {{dim: [spatial, temporal], descriptors: [1.0]}}
  {names["distribute"]}: {{}}
  combine: {{mode: [add]}}
"""


@contextlib.contextmanager
def renamed_vocabulary():
    """The vocabulary with gather and distribute under other names, restored afterwards in its own order."""
    saved = dict(vocabulary.OPERATIONS)
    try:
        for old, new in RENAMED.items():
            vocabulary.OPERATIONS[new] = dataclasses.replace(saved[old], name=new)
            del vocabulary.OPERATIONS[old]
        yield
    finally:
        vocabulary.OPERATIONS.clear()
        vocabulary.OPERATIONS.update(saved)


@pytest.fixture
def renamed_ops():
    with renamed_vocabulary():
        yield


def test_renamed_bag_ops_behave_as_gather_and_distribute(renamed_ops):
    renamed = SearchSpace.from_yaml(space_text(RENAMED))
    assert (renamed.bag_maker, renamed.bag_taker) == ("pool_descriptors", "spread")
    assert renamed.gather_dims == ("spatial", "temporal")
    check_space(renamed)
    rng = np.random.default_rng(0)
    cells = [renamed.sample(rng) for _ in range(200)]
    assert any("spread" in {n.op for n in c.nodes} for c in cells)
    for cell in cells:
        for node in cell.nodes:
            if node.op == "spread":
                maker = next(n for n in cell.nodes if n.name == node.source("bag"))
                assert maker.op == "pool_descriptors" and maker.attr("dim") == node.attr("dim")
        renamed.mutate(cell, rng)
    with pytest.raises(SpecError, match="its bag is consumed by no spread; every pool_descriptors must feed a spread"):
        CellSpec.from_dict({"width": 0.25, "nodes": {
            "g": {"op": "pool_descriptors", "inputs": {"x": "input"}, "dim": "spatial", "descriptors": 1.0},
            "c": {"op": "combine", "inputs": {"a": "input", "b": "input"}, "mode": "add"}}, "output": ["c"]})
    with pytest.raises(SpecError, match="pool_descriptors and spread come together"):
        SearchSpace.from_yaml(space_text(RENAMED).replace("  spread: {}\n", ""))
    renamed_count = renamed.count()
    assert renamed_count.exact


def test_the_renamed_space_counts_what_the_original_counts():
    with renamed_vocabulary():
        renamed = SearchSpace.from_yaml(space_text(RENAMED)).count()
    original = SearchSpace.from_yaml(space_text({"gather": "gather", "distribute": "distribute"})).count()
    assert (renamed.ordered_specs, renamed.cells) == (original.ordered_specs, original.cells)
    assert original.cells > 10
