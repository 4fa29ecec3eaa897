"""What a search maximises: one metric, optionally under cost budgets or traded off against a cost (MnasNet).

The experiment YAML holds it as a plain mapping, read by `Objective.from_dict`::

    objective:
      metric: accuracy              # the value to maximise (default: accuracy)
      budget:                       # optional hard constraints: cost metric <= limit, any number of them
        macs: 2.0e8
        latency_ms: 30
      tradeoff:                     # optional soft trade-off (MnasNet, Tan et al. 2019):
        cost: macs                  #   reward = metric * (cost / target) ** weight
        target: 2.0e8               #   target > 0: the cost at which the reward equals the metric
        weight: -0.07               #   weight <= 0: how much a cell pays for exceeding the target

`budget` and `tradeoff` may be combined. Every controller ranks trials with `Objective.rank`, a total order:

1. complete trials within every budget, by reward (highest first);
2. pruned trials within budget, by the reward of their last reported values (they stopped early, so their
   values understate them, but they are still ranked above a cell that cannot be deployed);
3. trials (complete or pruned) over a budget, by how little they exceed it (sum of cost / limit - 1);
4. failed trials, and trials whose reward is missing or not finite: the worst.

An infeasible trial therefore never outranks a feasible complete one, whatever its accuracy.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from attnas.search_space.errors import AttnasError
from attnas.search_space.schema import unknown_key

COMPLETE, FAILED, PRUNED = "complete", "failed", "pruned"
TRIAL_STATES = (COMPLETE, FAILED, PRUNED)
OBJECTIVE_FIELDS = ("metric", "budget", "tradeoff")
TRADEOFF_FIELDS = ("cost", "target", "weight")

# Tiers of `Objective.rank`, best last so that tuples compare the natural way.
TIER_FAILED, TIER_INFEASIBLE, TIER_PRUNED, TIER_FEASIBLE = 0, 1, 2, 3


@dataclass(frozen=True)
class Tradeoff:
    """MnasNet's soft constraint: reward = metric * (cost / target) ** weight."""

    cost: str
    target: float
    weight: float


@dataclass(frozen=True)
class Objective:
    """The quantity a search maximises, with optional cost budgets and trade-off (module docstring: schema)."""

    metric: str = "accuracy"
    budget: Mapping[str, float] = field(default_factory=dict)
    tradeoff: Tradeoff | None = None

    # ------------------------------------------------------------------------------------------------ building
    @classmethod
    def from_dict(cls, data: Any, *, source: str = "objective") -> "Objective":
        """Read and validate the `objective:` mapping of an experiment file; errors name `source` and the field."""
        if data is None:
            return cls()
        if isinstance(data, Objective):
            return data
        if not isinstance(data, Mapping):
            raise AttnasError(f"{source}: expected a mapping with fields {', '.join(OBJECTIVE_FIELDS)}, got {data!r}")
        _check_fields(data, OBJECTIVE_FIELDS, source)
        metric = data.get("metric", "accuracy")
        if not isinstance(metric, str) or not metric:
            raise AttnasError(f"{source}.metric: expected a metric name such as 'accuracy', got {metric!r}")
        raw_budget = data.get("budget") or {}
        if not isinstance(raw_budget, Mapping):
            raise AttnasError(f"{source}.budget: expected a mapping of cost metric to limit, e.g. {{macs: 2.0e8}}, "
                              f"got {raw_budget!r}")
        budget = {}
        for name, limit in raw_budget.items():
            if not isinstance(name, str) or name == metric:
                raise AttnasError(f"{source}.budget: {name!r} cannot be budgeted; expected a cost metric other "
                                  f"than the maximised metric {metric!r}")
            budget[name] = _positive(limit, f"{source}.budget.{name}")
        tradeoff = None
        raw_tradeoff = data.get("tradeoff")
        if raw_tradeoff is not None:
            where = f"{source}.tradeoff"
            if not isinstance(raw_tradeoff, Mapping):
                raise AttnasError(f"{where}: expected a mapping with fields {', '.join(TRADEOFF_FIELDS)}, "
                                  f"got {raw_tradeoff!r}")
            _check_fields(raw_tradeoff, TRADEOFF_FIELDS, where)
            for name in TRADEOFF_FIELDS:
                if name not in raw_tradeoff:
                    raise AttnasError(f"{where}.{name}: missing; expected fields {', '.join(TRADEOFF_FIELDS)}")
            cost = raw_tradeoff["cost"]
            if not isinstance(cost, str) or cost == metric:
                raise AttnasError(f"{where}.cost: expected a cost metric name such as 'macs', got {cost!r}")
            weight = _number(raw_tradeoff["weight"], f"{where}.weight")
            if weight > 0:
                raise AttnasError(f"{where}.weight: expected a number <= 0 (a larger cost lowers the reward), "
                                  f"got {weight!r}")
            tradeoff = Tradeoff(cost=cost, target=_positive(raw_tradeoff["target"], f"{where}.target"),
                                weight=weight)
        return cls(metric=metric, budget=budget, tradeoff=tradeoff)

    def to_dict(self) -> dict:
        """The inverse of `from_dict` (plain data, for state dicts and histories)."""
        data: dict[str, Any] = {"metric": self.metric}
        if self.budget:
            data["budget"] = dict(self.budget)
        if self.tradeoff is not None:
            data["tradeoff"] = {"cost": self.tradeoff.cost, "target": self.tradeoff.target,
                                "weight": self.tradeoff.weight}
        return data

    # ----------------------------------------------------------------------------------------------- scoring
    @property
    def required_metrics(self) -> tuple[str, ...]:
        """Metrics a complete trial must report."""
        names = [self.metric, *self.budget]
        if self.tradeoff is not None and self.tradeoff.cost not in names:
            names.append(self.tradeoff.cost)
        return tuple(names)

    def reward(self, values: Mapping[str, float]) -> float | None:
        """The scalar maximised (the metric, times the trade-off factor); None when it cannot be computed."""
        value = values.get(self.metric)
        if value is None or not math.isfinite(value):
            return None
        if self.tradeoff is not None:
            cost = values.get(self.tradeoff.cost)
            if cost is None or not math.isfinite(cost) or cost <= 0:
                return None
            value = value * (cost / self.tradeoff.target) ** self.tradeoff.weight
        return float(value)

    def violation(self, values: Mapping[str, float]) -> float:
        """How far `values` exceed the budgets: sum of (cost / limit - 1) over exceeded ones; 0 when feasible.

        A budgeted cost that was not reported counts as feasible: pruned and failed trials may lack it.
        """
        total = 0.0
        for name, limit in self.budget.items():
            cost = values.get(name)
            if cost is not None and (not math.isfinite(cost) or cost > limit):
                total += (cost / limit - 1.0) if math.isfinite(cost) else math.inf
        return total

    def feasible(self, values: Mapping[str, float]) -> bool:
        """Whether every reported budgeted cost is within its limit."""
        return self.violation(values) == 0.0

    def rank(self, values: Mapping[str, float], state: str) -> tuple[int, float]:
        """A sort key, higher is better, implementing the order in the module docstring."""
        if state == FAILED:
            return (TIER_FAILED, 0.0)
        violation = self.violation(values)
        if violation > 0:
            return (TIER_INFEASIBLE, -violation)
        reward = self.reward(values)
        if reward is None:
            return (TIER_FAILED, 0.0)
        return (TIER_FEASIBLE if state == COMPLETE else TIER_PRUNED, reward)

    def check_values(self, values: Mapping[str, float], state: str, *, where: str) -> None:
        """Raise AttnasError when a complete trial lacks a metric this objective needs."""
        if state != COMPLETE:
            return
        missing = [name for name in self.required_metrics if name not in values]
        if missing:
            raise AttnasError(f"{where}: values lack {', '.join(map(repr, missing))}; the objective needs "
                              f"{', '.join(self.required_metrics)} from every complete trial")


def check_state(state: Any, *, where: str) -> str:
    """Validate a trial state string."""
    if state not in TRIAL_STATES:
        raise AttnasError(f"{where}: state {state!r} is unknown; expected one of {', '.join(TRIAL_STATES)}")
    return state


def _check_fields(data: Mapping, allowed: tuple[str, ...], where: str) -> None:
    for key in data:
        if key not in allowed:
            raise AttnasError(unknown_key(key, allowed, f"{where}.{key}"))


def _number(value: Any, where: str) -> float:
    if isinstance(value, str):
        # PyYAML reads exponents without a sign ("2.0e8") as strings: accept any text float() reads.
        try:
            value = float(value)
        except ValueError:
            raise AttnasError(f"{where}: expected a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise AttnasError(f"{where}: expected a number, got {value!r}")
    return float(value)


def _positive(value: Any, where: str) -> float:
    number = _number(value, where)
    if number <= 0:
        raise AttnasError(f"{where}: expected a number > 0, got {value!r}")
    return number
