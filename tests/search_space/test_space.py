"""SearchSpace: sampling, mutation, membership, counting and encodings, as properties over many seeds."""
import json
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from scipy import stats

from attnas.search_space import CellSpec, SearchSpace, SpecError, load_zoo, space_names
from attnas.search_space.space import MUTATION_KINDS, symmetry_ratio
from attnas.search_space.vocabulary import OPERATIONS
from tests.search_space.strategies import SPACES, relabelled, seeds, space_names as space_name_strategy


def test_shipped_spaces():
    assert set(space_names()) >= {"default", "small"}


@given(name=space_name_strategy, seed=seeds)
@settings(max_examples=150, deadline=None)
def test_sampled_cells_validate_round_trip_and_belong(name, seed):
    space = SPACES[name]
    cell = space.sample(np.random.default_rng(seed))
    again = CellSpec.from_yaml(cell.to_yaml())
    assert again.hash == cell.hash and again == cell
    assert space.contains(cell)
    assert space.from_data(json.loads(json.dumps(space.to_data(cell)))) == cell


@given(name=space_name_strategy, seed=seeds)
@settings(max_examples=150, deadline=None)
def test_mutated_cells_validate_round_trip_belong_and_differ(name, seed):
    space = SPACES[name]
    rng = np.random.default_rng(seed)
    parent = space.sample(rng)
    child = space.mutate(parent, rng)
    assert space.contains(child)
    assert not child.same_cell(parent)
    assert CellSpec.from_yaml(child.to_yaml()).hash == child.hash


@given(name=space_name_strategy, seed=seeds)
@settings(max_examples=150, deadline=None)
def test_relabelling_and_reordering_never_change_the_hash(name, seed):
    rng = np.random.default_rng(seed)
    cell = SPACES[name].sample(rng)
    other = relabelled(cell, rng)
    assert other.hash == cell.hash
    assert other.canonical().to_dict() == cell.canonical().to_dict()
    assert SPACES[name].wl_features(other) == SPACES[name].wl_features(cell)
    assert list(SPACES[name].encode_vector(other)) == list(SPACES[name].encode_vector(cell))


@given(name=space_name_strategy, seed=seeds)
@settings(max_examples=100, deadline=None)
def test_vector_encoding_round_trips(name, seed):
    space = SPACES[name]
    cell = space.sample(np.random.default_rng(seed))
    vector = space.encode_vector(cell)
    assert len(vector) == len(space.vector_cardinalities())
    assert all(0 <= v < c for v, c in zip(vector, space.vector_cardinalities()))
    assert space.decode_vector(vector).same_cell(cell)


@pytest.mark.slow
def test_different_cells_get_different_hashes_in_a_10000_sample():
    space = SPACES["default"]
    rng = np.random.default_rng(2024)
    by_hash: dict[str, CellSpec] = {}
    for _ in range(10_000):
        cell = space.sample(rng)
        seen = by_hash.setdefault(cell.hash, cell)
        # a shared hash must mean the same cell, confirmed by the exact isomorphism test
        assert seen is cell or seen.same_cell(cell), f"hash collision: {seen} vs {cell}"
    assert len(by_hash) > 9_000


def test_small_space_count_is_exact_and_consistent():
    space = SPACES["small"]
    ordered = list(space.enumerate())
    assert len(ordered) == space.ordered_count == 201
    assert len({json.dumps(c.to_dict(), sort_keys=True) for c in ordered}) == 201
    size = space.count()
    assert size.exact and size.cells == 173
    representatives: list[CellSpec] = []
    for cell in ordered:
        if not any(cell.same_cell(r) for r in representatives):
            representatives.append(cell)
    assert len(representatives) == 173


def test_distinct_cell_estimator_agrees_with_the_exact_count():
    space = SPACES["small"]
    estimate = space.count(exact_limit=0, samples=4000, seed=1)
    assert not estimate.exact
    assert abs(estimate.cells - 173) < 4 * estimate.standard_error + 1


def test_symmetry_ratio_counts_orders_and_automorphisms():
    two_branches = CellSpec.from_dict({"width": 0.25, "nodes": {
        "a": {"op": "map_attention", "inputs": {"x": "input"}, "dim": "spatial"},
        "b": {"op": "map_attention", "inputs": {"x": "input"}, "dim": "spatial"},
        "c": {"op": "combine", "inputs": {"a": "a", "b": "b"}}}, "output": ["c"]})
    assert symmetry_ratio(two_branches) == 2 / 2  # a<->b is an automorphism; orders a,b,c and b,a,c
    chain = load_zoo("cbam")
    assert symmetry_ratio(chain) == 1.0


def test_sampling_is_uniform_over_ordered_specs():
    space = SPACES["small"]
    rng = np.random.default_rng(7)
    draws = Counter(json.dumps(space.sample(rng).to_dict(), sort_keys=True) for _ in range(20_100))
    assert len(draws) == 201
    assert stats.chisquare(list(draws.values())).pvalue > 1e-4


def test_sampling_is_deterministic_for_a_seed():
    space = SPACES["default"]
    first = [space.sample(np.random.default_rng(3)).hash for _ in range(3)]
    second = [space.sample(np.random.default_rng(3)).hash for _ in range(3)]
    assert first == second


@pytest.mark.parametrize("name", ["default", "small"])
def test_mutation_reaches_every_op_attribute_value_and_kind(name):
    space = SPACES[name]
    rng = np.random.default_rng(11)
    seen_ops, seen_values, kinds_done = set(), set(), Counter()
    for _ in range(20):
        cell = space.sample(rng)
        for _ in range(100):
            kind = MUTATION_KINDS[rng.integers(len(MUTATION_KINDS))]
            try:
                child = space.mutate(cell, rng, kind=kind)
            except SpecError:
                continue
            assert space.contains(child) and not child.same_cell(cell)
            kinds_done[kind] += 1
            cell = child
            for node in cell.nodes:
                seen_ops.add(node.op)
                seen_values.update((node.op, attr, value) for attr, value in node.attrs)
    assert set(kinds_done) == set(MUTATION_KINDS)
    assert seen_ops == set(space.ops)
    wanted = {(op, attr, value) for op, choices in space.ops.items()
              for attr, values in choices.choices.items() for value in values}
    if "distribute" in space.ops:
        wanted |= {("distribute", "dim", d) for d in space.gather_dims}
    assert wanted <= seen_values, wanted - seen_values


def test_a_full_cell_always_has_a_neighbour():
    space = SPACES["default"]
    rng = np.random.default_rng(5)
    for _ in range(200):
        cell = space.sample(rng)
        assert not space.mutate(cell, rng).same_cell(cell)


def test_membership_explains_why_not():
    space = SPACES["small"]
    cbam = load_zoo("cbam")
    with pytest.raises(SpecError, match=r"^width 1.0 is outside the space; expected one of 0.25$"):
        space.check(cbam)
    narrow = CellSpec.from_dict(dict(cbam.to_dict(), width=0.25))
    with pytest.raises(SpecError, match=r"attribute 'pooling' = 'avg_max' is outside the space; "
                                        r"expected one of 'avg'"):
        space.check(narrow)
    assert not space.contains(narrow) and not space.contains("not a cell")
    sum_of_both = CellSpec.from_dict({"width": 0.25, "nodes": {
        "a": {"op": "map_attention", "inputs": {"x": "input"}, "dim": "spatial", "kernel": 3},
        "b": {"op": "map_attention", "inputs": {"x": "a"}, "dim": "temporal", "kernel": 3}},
        "output": ["a", "b"]})
    with pytest.raises(SpecError, match=r"output \['a', 'b'\] is outside the space; .*: \['b'\]"):
        space.check(sum_of_both)


def test_zoo_cells_belong_to_the_default_space_where_their_choices_allow():
    space = SPACES["default"]
    assert space.contains(load_zoo("non_local"))
    assert space.contains(CellSpec.from_dict(dict(load_zoo("double_attention").to_dict())))


def test_wl_features_separate_different_cells():
    space = SPACES["default"]
    a, b = load_zoo("non_local"), load_zoo("double_attention")
    fa, fb = space.wl_features(a), space.wl_features(b)
    assert fa != fb and sum(fa.values()) > len(a.nodes)


def test_encoding_a_cell_outside_the_space_says_why():
    with pytest.raises(SpecError, match="width 1.0 is outside the space"):
        SPACES["small"].encode_vector(load_zoo("cbam"))


def test_decode_rejects_invalid_vectors():
    space = SPACES["small"]
    vector = space.encode_vector(load_zoo("double_attention"))
    broken = list(vector)
    broken[space.vector_names().index("1.bag")] = 0
    with pytest.raises(SpecError):
        space.decode_vector(broken)
    with pytest.raises(SpecError, match="entries"):
        space.decode_vector(list(vector)[:-1])


SPACE_ERRORS = {
    "unknown op": ({"max_nodes": 2, "widths": [0.25], "ops": {"dot_atention": {}}},
                   "ops.dot_atention: unknown op (did you mean 'dot_attention'?); known ops: dot_attention, "
                   "map_attention, gather, distribute, combine"),
    "unknown field": ({"max_node": 2, "widths": [0.25], "ops": {}},
                      "max_node: unknown field (did you mean 'max_nodes'?); expected one of: name, max_nodes, "
                      "widths, ops"),
    "bad choice": ({"max_nodes": 2, "widths": [0.25], "ops": {"combine": {"mode": ["add", "sub"]}}},
                   "ops.combine.mode: expected one of 'add', 'mul', got 'sub'"),
    "unknown attribute": ({"max_nodes": 2, "widths": [0.25], "ops": {"combine": {"head": [1]}}},
                          "ops.combine.head: unknown field; expected one of: mode"),
    "gather alone": ({"max_nodes": 2, "widths": [0.25], "ops": {"gather": {"dim": ["spatial"]}}},
                     "ops: gather and distribute come together (a gather's bag must feed a distribute)"),
    "bad max_nodes": ({"max_nodes": 0, "widths": [0.25], "ops": {"combine": {}}},
                      "max_nodes: expected an integer from 1 to 8, got 0"),
    "missing dim": ({"max_nodes": 2, "widths": [0.25], "ops": {"map_attention": {}}},
                    "ops.map_attention.dim: missing; expected a list of one of 'spatial', 'temporal', "
                    "'spatiotemporal', 'channel'"),
}


@pytest.mark.parametrize("case", sorted(SPACE_ERRORS))
def test_space_yaml_errors(case):
    data, message = SPACE_ERRORS[case]
    with pytest.raises(SpecError) as error:
        SearchSpace.from_dict(data, source="space.yaml")
    assert str(error.value) == "space.yaml: " + message


def test_every_vocabulary_op_is_in_the_default_space():
    assert set(SPACES["default"].ops) == set(OPERATIONS)
