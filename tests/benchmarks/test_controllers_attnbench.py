"""The controller comparison on AttnBench (benchmarks/controllers_attnbench.py) on the tiny table the build command
makes, and its ASHA replay on curves whose outcome is known."""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks.controllers_attnbench import CONTROLLER_NAMES, ReplayedAsha, asha_curve, compare, report
from attnas.controllers import create_controller
from attnas.controllers.attnbench import AttnBenchSpace
from attnas.search_space.attnbench import load_table
from tests.attnbench_tables import TINY_CELLS, write_made_up_table


@pytest.mark.slow
def test_on_the_tiny_table_every_controller_ends_at_the_tables_best(tiny_attnbench_table):
    table = load_table(tiny_attnbench_table)
    result = compare(str(tiny_attnbench_table), list(CONTROLLER_NAMES), seeds=3)
    assert result["evaluations"] == TINY_CELLS, "the budget is capped at the table's size"
    best = max(r.accuracy for r in table.records.values())
    assert result["optimum"] == best
    for name in CONTROLLER_NAMES:
        curves = result["curves"][name]
        assert curves.shape == (3, TINY_CELLS)
        assert np.all(curves[:, -1] == best), "the budget covers the whole table: regret 0"
        assert np.all(np.diff(curves, axis=1) >= 0)
        asha = result["asha"][name]
        assert asha.shape == (3, TINY_CELLS * table.epochs) and np.all(asha[:, -1] == best)
    text = report(result)
    assert "PARTIAL AttnBench table, 4 cells" in text
    assert text.count("| 0.0 |") >= 2 * len(CONTROLLER_NAMES), "regret 0.0 in both tables"
    tests = {h: r.test_accuracy for h, r in table.records.items()}
    assert result["test_at_end"]["random"] in {tests[h] for h, r in table.records.items() if r.accuracy == best}


def test_replayed_asha_stops_a_trial_below_the_rungs_quantile():
    asha = ReplayedAsha(4)  # rungs at epochs 1 and 2 (grace period 1, reduction factor 2)
    assert list(asha.rungs) == [1, 2]
    assert asha.run([0.5, 0.6, 0.7, 0.8]) == 4, "the first trial sees empty rungs"
    assert asha.run([0.1, 0.2, 0.3, 0.4]) == 1, "below the median of {0.5}"
    assert asha.run([0.9, 0.3, 0.3, 0.3]) == 2, "above 0.3 at rung 1, below 0.6 at rung 2"
    assert asha.rungs == {1: [0.5, 0.1, 0.9], 2: [0.6, 0.3]}


def test_asha_on_a_made_up_table_counts_epochs_and_best_only_among_finished_trials(tmp_path):
    """MADE-UP numbers (tests/attnbench_tables.py): only the epoch accounting is under test."""
    space = AttnBenchSpace(write_made_up_table(tmp_path / "t.json.gz", space="tiny", epochs=4))
    curve = asha_curve("random", 0, space, budget_epochs=13 * 4)
    assert len(curve) == 13 * 4 and np.all(np.diff(curve[3:]) >= 0)
    assert curve[-1] <= space.table.best.accuracy
    first = create_controller("random", space=space, seed=0).propose(0)
    assert np.all(curve[:3] == -np.inf), "nothing finished before the first trial's 4th epoch"
    assert curve[3] == space.table.record(first.hash).curve[-1], "the first trial always finishes (empty rungs)"
