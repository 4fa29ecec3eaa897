"""The objective: its YAML schema, its errors, and the order it puts trials in."""
from __future__ import annotations

import math

import pytest

from attnas.controllers.objective import COMPLETE, FAILED, PRUNED, Objective, Tradeoff
from attnas.search_space import AttnasError


def test_default_maximises_accuracy():
    objective = Objective.from_dict(None)
    assert objective == Objective(metric="accuracy")
    assert objective.rank({"accuracy": 0.7}, COMPLETE) > objective.rank({"accuracy": 0.6}, COMPLETE)


def test_schema_round_trip_and_yaml_exponents():
    # PyYAML reads 2.0e8 (no exponent sign) as a string: the objective accepts it as the number it means.
    data = {"metric": "accuracy", "budget": {"macs": "2.0e8"}, "tradeoff": {"cost": "latency_ms", "target": 30,
                                                                           "weight": -0.07}}
    objective = Objective.from_dict(data)
    assert objective.budget == {"macs": 2.0e8}
    assert objective.tradeoff == Tradeoff(cost="latency_ms", target=30.0, weight=-0.07)
    assert Objective.from_dict(objective.to_dict()) == objective
    assert objective.required_metrics == ("accuracy", "macs", "latency_ms")


def test_tradeoff_reward_is_mnasnet_formula():
    objective = Objective.from_dict({"tradeoff": {"cost": "macs", "target": 2e8, "weight": -0.07}})
    assert objective.reward({"accuracy": 0.8, "macs": 4e8}) == pytest.approx(0.8 * 2 ** -0.07)
    assert objective.reward({"accuracy": 0.8, "macs": 2e8}) == pytest.approx(0.8)
    assert objective.reward({"accuracy": 0.8}) is None


def test_rank_order_feasible_pruned_infeasible_failed():
    objective = Objective.from_dict({"budget": {"macs": 100}})
    feasible = objective.rank({"accuracy": 0.1, "macs": 100}, COMPLETE)
    pruned = objective.rank({"accuracy": 0.9, "macs": 50}, PRUNED)
    slightly_over = objective.rank({"accuracy": 0.99, "macs": 110}, COMPLETE)
    far_over = objective.rank({"accuracy": 0.99, "macs": 300}, COMPLETE)
    failed = objective.rank({"accuracy": 0.99, "macs": 1}, FAILED)
    assert feasible > pruned > slightly_over > far_over > failed
    assert objective.violation({"macs": 110}) == pytest.approx(0.1)
    assert objective.violation({"macs": 300}) == pytest.approx(2.0)
    assert objective.rank({"accuracy": math.nan, "macs": 1}, COMPLETE) == failed


@pytest.mark.parametrize("data, message", [
    ({"metrc": "accuracy"}, "objective.metrc: unknown field (did you mean 'metric'?)"),
    ({"budget": {"macs": -1}}, "objective.budget.macs: expected a number > 0"),
    ({"budget": {"macs": "lots"}}, "objective.budget.macs: expected a number"),
    ({"budget": [2e8]}, "objective.budget: expected a mapping"),
    ({"budget": {"accuracy": 1}}, "objective.budget: 'accuracy' cannot be budgeted"),
    ({"tradeoff": {"cost": "macs", "target": 1}}, "objective.tradeoff.weight: missing"),
    ({"tradeoff": {"cost": "macs", "target": 1, "weight": 0.5}}, "objective.tradeoff.weight: expected a number <= 0"),
    ({"tradeoff": {"cost": "macs", "target": 0, "weight": -1}}, "objective.tradeoff.target: expected a number > 0"),
    ("accuracy", "objective: expected a mapping"),
])
def test_errors_name_the_field(data, message):
    with pytest.raises(AttnasError) as error:
        Objective.from_dict(data)
    assert str(error.value).startswith(message)


def test_complete_trial_must_report_required_metrics():
    objective = Objective.from_dict({"budget": {"macs": 1}})
    with pytest.raises(AttnasError, match="trial 3: values lack 'macs'"):
        objective.check_values({"accuracy": 0.5}, COMPLETE, where="trial 3")
    objective.check_values({}, FAILED, where="trial 3")
