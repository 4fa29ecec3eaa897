"""What each strategy does beyond the shared suite: evolution's tournament, the GP's pending handling and
transform, TPE's mapping of trials onto Optuna, and search quality on a synthetic task with a known optimum."""
from __future__ import annotations

import numpy as np
import pytest
from optuna.trial import TrialState

from attnas.controllers import create_controller
from attnas.controllers.bayesian import _normal_scores
from attnas.controllers.nasbench201 import NASBench201Space, NB201Cell
from attnas.controllers.objective import FAILED, PRUNED
from attnas.controllers.testing import run, synthetic_values
from attnas.search_space import load_space

SPACE = NASBench201Space()


def conv_count(cell: NB201Cell) -> dict[str, float]:
    """A task with a unique optimum (all six edges conv3x3) that rewards every step towards it."""
    return {"accuracy": sum(op == "nor_conv_3x3" for op in cell.ops) + 0.1 * sum(op == "nor_conv_1x1"
                                                                                   for op in cell.ops)}


def search(name: str, seed: int, trials: int, **settings) -> float:
    controller = create_controller(name, space=SPACE, seed=seed, **settings)
    for trial in range(trials):
        cell = controller.propose(trial)
        controller.observe(trial, cell, conv_count(cell))
    return controller.best().values["accuracy"]


def test_evolution_fills_population_randomly_then_mutates_the_tournament_winner():
    evolution = create_controller("evolution", space=SPACE, seed=4, population_size=8, sample_size=8)
    random = create_controller("random", space=SPACE, seed=4)
    assert run(evolution, 8) == run(random, 8)  # the initial population is exactly random search's
    for trial in range(8, 30):
        population = evolution.observations[-8:]
        top = max(o.values["accuracy"] for o in population)  # sample_size = population: the best is the parent
        child = evolution.propose(trial)
        distance = min(sum(a != b for a, b in zip(o.cell.ops, child.ops)) for o in population
                       if o.values["accuracy"] == top)  # cells with equal live graphs tie
        assert distance in (1, 2)
        evolution.observe(trial, child, synthetic_values(SPACE, child))


def test_evolution_ages_out_old_members():
    evolution = create_controller("evolution", space=SPACE, seed=0, population_size=4, sample_size=4)
    champion = NB201Cell(("nor_conv_3x3",) * 6)
    evolution.observe("old", champion, {"accuracy": 100.0})
    run(evolution, 4)  # four younger trials push the champion out of the population
    child = evolution.propose("next")
    assert sum(a != b for a, b in zip(champion.ops, child.ops)) > 2 or child not in evolution.observations


def test_normal_scores_are_quantiles_of_ranks():
    assert _normal_scores(np.array([10.0, 90.0, 91.0])) == pytest.approx([-0.9674216, 0.0, 0.9674216])
    assert _normal_scores(np.array([1.0, 5.0])) == pytest.approx(_normal_scores(np.array([-3.0, 1e6])))


def test_kriging_believer_lowers_acquisition_next_to_pending_cells():
    controller = create_controller("bayesian", space=SPACE, seed=0, initial_random=5)
    run(controller, 12)
    # Two cells with the same live graph (only 0 -> 3 by conv3x3; all else is dead) have identical features.
    pending = NB201Cell(("avg_pool_3x3", "none", "none", "nor_conv_3x3", "none", "nor_conv_1x1"))
    twin = NB201Cell(("skip_connect", "none", "none", "nor_conv_3x3", "none", "nor_conv_1x1"))
    assert SPACE.wl_features(pending) == SPACE.wl_features(twin)
    before = controller.acquisition([twin])[0]
    controller._pending["p"] = pending  # as if proposed to another worker
    controller._pending_hashes[SPACE.hash(pending)] = "p"
    after = controller.acquisition([twin])[0]
    assert after < 0.5 * before


@pytest.mark.slow
def test_budget_steers_bayesian_towards_feasible_cells():
    objective = {"budget": {"macs": 20.0}}
    cells = {}
    for name in ("random", "bayesian"):
        controller = create_controller(name, space=SPACE, seed=1, objective=objective)
        run(controller, 25)
        late = controller.observations[10:]
        cells[name] = sum(o.values["macs"] <= 20.0 for o in late)
    assert cells["bayesian"] > cells["random"]


def test_tpe_maps_states_and_budgets_onto_optuna_trials():
    controller = create_controller("tpe", space=SPACE, seed=0, objective={"budget": {"macs": 20.0}})
    run(controller, 6, state_of=lambda i: (FAILED, PRUNED, "complete")[i % 3])
    trials = [t for t in controller._study.trials if t.state != TrialState.FAIL]  # FAIL: retired proposals
    assert [t.state for t in trials] == [TrialState.PRUNED, TrialState.PRUNED, TrialState.COMPLETE] * 2
    failed, pruned, complete = trials[:3]
    assert failed.intermediate_values == {} and failed.constraints == {}
    observed = controller.observations
    assert pruned.intermediate_values == {0: observed[1].values["accuracy"]}
    assert complete.value == observed[2].values["accuracy"]
    assert complete.constraints == {"macs": pytest.approx(observed[2].values["macs"] / 20.0 - 1.0)}
    assert [int(complete.params[f"x{i}"]) for i in range(6)] == list(SPACE.encode_vector(observed[2].cell))


def test_tpe_repairs_invalid_vectors_on_the_default_space():
    space = load_space("default")
    controller = create_controller("tpe", space=space, seed=0, n_startup_trials=5)
    cells = run(controller, 15)
    assert all(space.contains(c) for c in cells) and len({space.hash(c) for c in cells}) == 15


@pytest.mark.slow
@pytest.mark.parametrize("name, trials", [("evolution", 60), ("bayesian", 30), ("tpe", 40)])
def test_model_based_controllers_beat_random_on_a_learnable_task(name, trials):
    seeds = range(2)
    random = np.mean([search("random", seed, trials) for seed in seeds])
    learned = np.mean([search(name, seed, trials) for seed in seeds])
    assert learned > random + 0.5
