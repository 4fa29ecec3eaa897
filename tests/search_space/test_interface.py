"""The rules of search_space/interface.py hold for attnas's spaces and the NAS-Bench-201 adapter, and each check of
search_space/conformance.py fails on a space that breaks its rule."""
from __future__ import annotations

import numpy as np
import pytest

from attnas.controllers.nasbench201 import NASBench201Space
from attnas.search_space import SpecError, load_space
from attnas.search_space.conformance import (
    SPACE_CHECKS, check_data_round_trip, check_only_spec_errors, check_seeded_and_contained,
    check_size_counts_hashes, check_vector_encoding, check_wl_features_follow_hash)
from attnas.search_space.interface import Space

SPACES = {"small": lambda: load_space("small"), "default": lambda: load_space("default"),
          "nasbench201": NASBench201Space}


@pytest.mark.parametrize("check", SPACE_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", list(SPACES))
def test_spaces_follow_every_rule(name, check):
    check(SPACES[name]())


class Broken(Space):
    """The small space with one method replaced, to break one rule."""

    def __init__(self, **replaced):
        self.inner = load_space("small")
        self.replaced = replaced

    def __getattribute__(self, name):
        replaced = object.__getattribute__(self, "replaced")
        if name in replaced:
            return replaced[name]
        if name in ("inner", "replaced"):
            return object.__getattribute__(self, name)
        return getattr(object.__getattribute__(self, "inner"), name)

    sample = mutate = contains = hash = vector_cardinalities = encode_vector = decode_vector = None
    wl_features = to_data = from_data = None


def test_each_check_fails_when_its_rule_is_broken():
    inner = load_space("small")

    def decode_raising_value_error(vector):
        raise ValueError("not a SpecError")

    def wl_by_node_names(cell):  # depends on how the cell is written, not on what it is
        return {name: 1 for name in inner.to_data(cell)["nodes"]} | dict(inner.wl_features(cell))

    def from_data_renaming(data):
        data = dict(data, nodes={f"x{name}": node for name, node in data["nodes"].items()})
        nodes = data["nodes"]
        for node in nodes.values():
            node["inputs"] = {port: (f"x{src}" if src != "input" else src) for port, src in node["inputs"].items()}
        data["output"] = [f"x{name}" for name in data["output"]]
        return inner.from_data(data)

    cases = [
        (check_only_spec_errors, {"decode_vector": decode_raising_value_error}),
        (check_seeded_and_contained, {"mutate": lambda cell, rng: cell}),
        (check_seeded_and_contained, {"sample": lambda rng: inner.sample(np.random.default_rng())}),
        (check_data_round_trip, {"from_data": lambda data: inner.sample(np.random.default_rng(0))}),
        (check_vector_encoding, {"encode_vector": lambda cell: list(inner.encode_vector(cell)) + [0]}),
        (check_wl_features_follow_hash, {"wl_features": wl_by_node_names, "from_data": from_data_renaming}),
        (check_size_counts_hashes, {"size": lambda: inner.size() + 1}),
    ]
    for check, replaced in cases:
        with pytest.raises(AssertionError, match="rule"):
            check(Broken(**replaced))


def test_mutate_and_decode_raise_spec_error_where_they_cannot():
    space = load_space("small")
    with pytest.raises(SpecError):
        space.decode_vector([0] * (len(space.vector_cardinalities()) + 1))
