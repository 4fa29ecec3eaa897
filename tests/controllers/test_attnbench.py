"""The AttnBench adapter (controllers/attnbench.py): a `Space` of the table's cells that every controller searches,
passing the conformance suite; only cells present in the table are in the space."""
from __future__ import annotations

import numpy as np
import pytest

from attnas.controllers import CONTROLLERS
from attnas.controllers.attnbench import AttnBenchSpace
from attnas.controllers.testing import CHECKS
from attnas.search_space import SpecError, load_space
from attnas.search_space.attnbench import enumerate_cells
from attnas.search_space.conformance import check_space
from tests.attnbench_tables import TINY_CELLS, write_made_up_table
from tests.controllers.test_conformance import NAMES, factory


MADE_UP_CELLS = 60  # of the `small` space's 173: enough for every check, few enough for the exhaustion checks


@pytest.fixture(scope="module")
def made_up_space(tmp_path_factory):
    """Part of the `small` space in a table of MADE-UP numbers: only the adapter's bookkeeping is tested."""
    return AttnBenchSpace(write_made_up_table(tmp_path_factory.mktemp("t") / "small.json.gz", space="small",
                                              cells=MADE_UP_CELLS))


def test_the_adapter_follows_every_rule_of_the_space_interface(made_up_space):
    check_space(made_up_space)
    assert made_up_space.size() == MADE_UP_CELLS < len(enumerate_cells(load_space("small")))


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", NAMES)
def test_conformance(name, check, made_up_space):
    check(factory(name), made_up_space)


def test_only_the_tables_cells_are_in_the_space(tiny_attnbench_table):
    space = AttnBenchSpace(tiny_attnbench_table)
    tiny = load_space("tiny")
    inside = set(space.table.records)
    assert space.size() == TINY_CELLS == len(inside)
    rng = np.random.default_rng(0)
    assert {space.hash(space.sample(rng)) for _ in range(200)} == inside, "sample: uniform over the table's cells"
    outside = [c for c in enumerate_cells(tiny) if c.hash not in inside]
    assert outside and not any(space.contains(c) for c in outside)
    with pytest.raises(SpecError, match="which the table .* does not hold"):
        space.decode_vector(tiny.encode_vector(outside[0]))
    for digest in inside:
        cell = space.table.records[digest]
        assert space.accuracy(space.from_data(dict(cell.cell))) == cell.accuracy
    for name in CONTROLLERS:  # a search over the whole table sees each of its cells once
        controller = factory(name)(space, 0)
        seen = []
        for trial in range(TINY_CELLS):
            cell = controller.propose(trial)
            controller.observe(trial, cell, {"accuracy": space.accuracy(cell)})
            seen.append(cell.hash)
        assert sorted(seen) == sorted(inside), name
