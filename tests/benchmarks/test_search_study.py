"""The search study's analysis: best-so-far curves, evaluations to a target, the Pareto front, the best trial."""
from __future__ import annotations

from benchmarks.search_study import PLANS, best_so_far, best_trial, evaluations_to_reach, pareto_front, transfer_proxy


def trial(value, state="complete", macs=1.0, hash_="h"):
    return {"state": state, "value": value, "macs": macs, "hash": hash_}


def test_best_so_far_ignores_failed_and_pruned_trials():
    trials = [trial(0.2), trial(None, "failed"), trial(0.9, "pruned"), trial(0.5), trial(0.4)]
    assert best_so_far(trials) == [0.2, 0.2, 0.2, 0.5, 0.5]
    assert best_so_far([trial(None, "failed")]) == [float("-inf")]


def test_evaluations_to_reach_counts_from_one_and_says_never():
    curve = [0.2, 0.2, 0.5, 0.5]
    assert evaluations_to_reach(curve, 0.5) == 3
    assert evaluations_to_reach(curve, 0.2) == 1
    assert evaluations_to_reach(curve, 0.6) is None


def test_pareto_front_keeps_points_nothing_beats_on_both_axes():
    points = [("a", 10, 0.5), ("b", 12, 0.4), ("c", 12, 0.7), ("d", 9, 0.3), ("e", 15, 0.7), ("f", 20, 0.8)]
    assert pareto_front(points) == [("d", 9, 0.3), ("a", 10, 0.5), ("c", 12, 0.7), ("f", 20, 0.8)]


def test_best_trial_breaks_ties_by_fewer_multiply_adds():
    searches = [{"trials": [trial(0.5, macs=3, hash_="x"), trial(0.7, "pruned", hash_="p")]},
                {"trials": [trial(0.5, macs=2, hash_="y"), trial(None, "failed", hash_="f")]}]
    assert best_trial(searches)["hash"] == "y"


def test_transfer_runs_a_narrowed_resnet26_on_a_task_nobody_searched_on():
    proxy = transfer_proxy(PLANS["quick"])
    assert proxy.backbone == "resnet26" and proxy.backbone_args["width_multiplier"] < 1
    assert proxy.data.task != "odd_one_out" and proxy.data.train_size == PLANS["quick"].transfer_train
