"""The conformance suite every registered controller passes, and a synthetic objective to run it in milliseconds.

tests/controllers/test_conformance.py runs every check in `CHECKS` for every controller in the registry, on
attnas's `small` space and on the NAS-Bench-201 adapter (so a controller that looked inside a cell would fail
on one of them). A new controller is registered in `controllers.registry.CONTROLLERS` and is then tested with no
further code. Each check takes a factory `make(space, seed, objective=None) -> Controller` and a space.
"""
from __future__ import annotations

import hashlib
import json
import math
from typing import Any, Callable

import numpy as np

from attnas.controllers.base import Controller, SpaceExhausted
from attnas.controllers.objective import COMPLETE, FAILED, PRUNED, Objective
from attnas.search_space.interface import Space

Factory = Callable[..., Controller]


def synthetic_values(space: Space, cell: Any) -> dict[str, float]:
    """Deterministic stand-in metrics of a cell: accuracy in (0, 1) and macs > 0, both smooth in its WL features.

    Each WL feature gets fixed pseudo-random weights from its name, so graph-based models can learn the
    accuracy, and cost correlates positively with accuracy (so budgets bind, as they do for real cells).
    """
    score = cost = 0.0
    for name, count in space.wl_features(cell).items():
        digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
        score += count * (digest[0] / 255 - 0.5)
        cost += count * (0.5 + digest[1] / 255) + max(0.0, digest[0] / 255 - 0.5)
    return {"accuracy": 1 / (1 + math.exp(-score / 2)), "macs": cost}


def run(controller: Controller, trials: int, *, start: int = 0, batch: int = 1,
        state_of: Callable[[int], str] | None = None) -> list[Any]:
    """Propose and observe `trials` trials, `batch` pending at a time, with synthetic values; return the cells."""
    cells = []
    trial = start
    while trial < start + trials:
        ids = list(range(trial, min(trial + batch, start + trials)))
        proposed = [(i, controller.propose(i)) for i in ids]
        for i, cell in reversed(proposed):  # finish out of order, as parallel workers do
            state = state_of(i) if state_of else COMPLETE
            values = synthetic_values(controller.space, cell) if state != FAILED else {}
            controller.observe(i, cell, values, state)
            cells.append(cell)
        trial += len(ids)
    return cells


def check_valid_and_new(make: Factory, space: Space) -> None:
    """Proposals are in the space and never repeat a pending or observed cell, with four workers in parallel."""
    controller = make(space, 0)
    seen = set()
    for trial in range(0, 40, 4):
        batch = [controller.propose(trial + k) for k in range(4)]
        for cell in batch:
            assert space.contains(cell), f"{controller.name}: proposed a cell outside the space"
            digest = space.hash(cell)
            assert digest not in seen, f"{controller.name}: proposed {digest} twice"
            seen.add(digest)
        assert {space.hash(c) for c in controller.pending.values()} == {space.hash(c) for c in batch}
        for k, cell in enumerate(batch):
            controller.observe(trial + k, cell, synthetic_values(space, cell))
    assert not controller.pending


def check_idempotent_propose(make: Factory, space: Space) -> None:
    """Asking again for the same trial id returns the same cell, pending or observed, and changes nothing."""
    controller = make(space, 3)
    run(controller, 12)
    first = controller.propose("a")
    assert controller.propose("a") == first and len(controller.pending) == 1
    controller.observe("a", first, synthetic_values(space, first))
    assert controller.propose("a") == first and not controller.pending


def check_deterministic(make: Factory, space: Space) -> None:
    """Equal seeds give equal proposals; a different seed gives different ones."""
    runs = [[space.hash(c) for c in run(make(space, seed), 25, batch=2)] for seed in (7, 7, 8)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def check_state_round_trip(make: Factory, space: Space) -> None:
    """state_dict -> JSON -> load_state_dict (with trials pending) gives the same next proposals."""
    original = make(space, 5)
    run(original, 20, batch=3)
    original.propose(100)
    original.propose(101)
    state = json.loads(json.dumps(original.state_dict()))
    copy = make(space, 5)
    copy.load_state_dict(state)
    assert copy.state_dict() == original.state_dict()
    assert [space.hash(c) for c in run(copy, 10, start=200)] == [space.hash(c) for c in run(original, 10, start=200)]


def check_rebuild_from_history(make: Factory, space: Space) -> None:
    """A controller rebuilt from the observations proposes exactly what the continued run proposes."""
    states = {3: FAILED, 7: PRUNED, 11: FAILED}
    original = make(space, 11)
    run(original, 24, batch=3, state_of=lambda i: states.get(i, COMPLETE))
    history = [{"trial_id": o.trial_id, "cell": space.to_data(o.cell), "values": dict(o.values),
                "state": o.state} for o in original.observations]
    rebuilt = type(original).from_history(space, json.loads(json.dumps(history)), seed=11,
                                          objective=original.objective, **original.settings())
    assert [space.hash(c) for c in run(rebuilt, 12, start=50, batch=2)] == [
        space.hash(c) for c in run(original, 12, start=50, batch=2)]


def check_failed_and_pruned(make: Factory, space: Space) -> None:
    """Failed and pruned trials are recorded, never proposed again, and rank below complete ones."""
    controller = make(space, 2)
    cells = run(controller, 30, state_of=lambda i: (FAILED, PRUNED, COMPLETE)[i % 3])
    states = [o.state for o in controller.observations]
    assert states.count(FAILED) == 10 and states.count(PRUNED) == 10
    assert len({space.hash(c) for c in cells}) == 30
    assert controller.best().state == COMPLETE
    assert controller.ranked()[-1].state == FAILED


def check_observe_twice(make: Factory, space: Space) -> None:
    """A second report of the same trial id is ignored, even with other values."""
    controller = make(space, 4)
    run(controller, 12)
    cell = controller.propose(99)
    controller.observe(99, cell, {"accuracy": 0.5, "macs": 1.0})
    before = controller.state_dict()
    controller.observe(99, cell, {"accuracy": 0.9, "macs": 1.0}, FAILED)
    assert controller.state_dict() == before


def check_budget_respected(make: Factory, space: Space) -> None:
    """Under a macs budget, no infeasible trial ever ranks above a feasible one, and the best is feasible."""
    costs = sorted(synthetic_values(space, space.sample(np.random.default_rng(i)))["macs"]
                   for i in range(50))
    objective = Objective.from_dict({"metric": "accuracy", "budget": {"macs": costs[len(costs) // 3]}})
    controller = make(space, 6, objective=objective)
    run(controller, 30)
    feasible = [objective.feasible(o.values) for o in controller.ranked()]
    assert any(feasible) and not all(feasible)
    assert feasible == sorted(feasible, reverse=True), "an infeasible trial outranked a feasible one"
    best = controller.best()
    assert best.values["accuracy"] == max(o.values["accuracy"] for o in controller.observations
                                          if objective.feasible(o.values))


def check_exhaustion(make: Factory, space: Space) -> None:
    """On a space of known size, every cell is proposed exactly once, then propose raises SpaceExhausted."""
    size = space.size()
    assert size is not None and size <= 500, "check_exhaustion needs a small space of known size"
    controller = make(space, 9)
    cells = run(controller, size, batch=2)
    assert len({space.hash(c) for c in cells}) == size
    try:
        controller.propose("one too many")
    except SpaceExhausted:
        return
    raise AssertionError(f"{controller.name}: proposed a cell from an exhausted space")


CHECKS = [check_valid_and_new, check_idempotent_propose, check_deterministic, check_state_round_trip,
          check_rebuild_from_history, check_failed_and_pruned, check_observe_twice, check_budget_respected,
          check_exhaustion]
