"""The search study's analysis: best-so-far curves, evaluations to a target, the Pareto front, the best trial, and
the verdicts it draws from them."""
from __future__ import annotations

from benchmarks.search_study import (PLANS, CellScores, best_so_far, best_trial, conclusions, evaluations_to_reach,
                                     pareto_front, transfer_proxy)


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


def stat(mean, sd, macs):
    return CellScores(mean, sd, [mean - sd, mean + sd], macs, 1000)


def test_conclusions_say_a_claim_held_only_beyond_the_seed_spread_and_within_the_cost():
    searches = {"random": [{"trials": [trial(0.3), trial(0.6)]}], "tpe": [{"trials": [trial(0.2)]}]}
    transfer = {"none": stat(0.50, 0.01, 10), "non_local": stat(0.505, 0.01, 12)}
    clear = {"searched abc": stat(0.90, 0.02, 14), "none": stat(0.2, 0.02, 10), "non_local": stat(0.6, 0.05, 15),
             "double_attention": stat(0.75, 0.05, 11)}
    text = "\n".join(conclusions(searches, [0], {0: 0.5}, clear, transfer))
    assert "held for `searched abc`" in text
    assert "random 1/1, tpe 0/1" in text
    assert "+15.0 points against non_local (above the seed spread) at 20% of non_local's extra" in text
    assert "held." in text.split("A^2-Nets")[1].split("\n")[0]
    assert "says nothing about transfer" in text
    # the gap is real but the cell costs more than non_local: not held
    costly = {**clear, "searched abc": stat(0.90, 0.02, 16)}
    assert "did not hold (`searched abc` +30.0 against non_local, +15.0 against double_attention" in \
        "\n".join(conclusions(searches, [0], {0: 0.5}, costly, transfer))
    # within the seed spread: not held
    noisy = {**clear, "searched abc": stat(0.90, 0.2, 14)}
    text = "\n".join(conclusions(searches, [0], {0: 0.5}, noisy, transfer))
    assert "did not hold" in text and "`searched abc` is ahead of both on the mean" in text
    behind = {**clear, "searched abc": stat(0.70, 0.2, 14)}
    assert "ahead of both" not in "\n".join(conclusions(searches, [0], {0: 0.5}, behind, transfer))
    learned = {"none": stat(0.5, 0.01, 10), "non_local": stat(0.7, 0.01, 12)}
    assert "beating the backbone alone beyond the seed spread: non_local (" in \
        "\n".join(conclusions(searches, [0], {0: 0.5}, clear, learned))
    worse = {**clear, "double_attention": stat(0.3, 0.05, 11)}
    assert "the cost half held, the accuracy half did not." in \
        "\n".join(conclusions(searches, [0], {0: 0.5}, worse, transfer))
