"""The vocabulary of trial results: every value a trial reports to Ray Tune and the history, defined once.

The trainable reports these names, the searcher records them, the objective is checked against them when the
experiment file is read (so `objective: {metric: acc}` is refused by `--dry-run`, not found mid-search), and the
driver hands the objective's metric to the scheduler.
"""
from __future__ import annotations

import difflib

from attnas.controllers.objective import Objective
from attnas.search_space.schema import ConfigError

# name: what it is. Every name is reported by a complete trial; PER_EPOCH ones after every epoch too.
TRIAL_RESULTS = {
    "accuracy": "validation top-1 accuracy (0..1)",
    "top5": "validation top-5 accuracy (0..1)",
    "loss": "validation loss",
    "macs": "multiply-adds of one clip through the model",
    "params": "parameters of the model",
    "latency_ms": "milliseconds of one forward pass",
    "wall_time_s": "seconds the trial trained",
}
PER_EPOCH = ("accuracy", "top5", "loss")
# Metrics an objective maximises: higher is better and reported every epoch, so early stopping can compare them.
MAXIMISED = ("accuracy", "top5")
# Metrics a budget or trade-off may bound: lower is better.
COSTS = ("macs", "params", "latency_ms", "wall_time_s", "loss")


def check_objective(objective: Objective, *, where: str) -> Objective:
    """`objective` if its metric, budget and trade-off keys name values a trial reports; else one ConfigError
    naming the file and the field."""
    _check_name(objective.metric, MAXIMISED, f"{where}: objective.metric", "a metric a trial reports every epoch")
    for name in objective.budget:
        _check_name(name, COSTS, f"{where}: objective.budget.{name}", "a cost a trial reports")
    if objective.tradeoff is not None:
        _check_name(objective.tradeoff.cost, COSTS, f"{where}: objective.tradeoff.cost", "a cost a trial reports")
    return objective


def _check_name(name: str, allowed: tuple[str, ...], where: str, what: str) -> None:
    if name in allowed:
        return
    hint = [a for a in allowed if a.startswith(str(name))] or difflib.get_close_matches(str(name), allowed, n=1)
    raise ConfigError(f"{where}: {name!r} is not {what}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                      + f"; expected one of: {', '.join(allowed)}")
