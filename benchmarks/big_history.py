"""A run folder holding a long search history (10,000 or 100,000 trials) in seconds, for the tests and benchmarks
of what reads histories at scale (`attnas status`, `list`, `resume`, the dashboard's trial list).

The run is started as `attnas search` starts one (`launch.start_run`: experiment and space files, the history's
metadata), then its trials are written in one transaction of bulk inserts (`optuna_tables.insert_trials`): each
trial holds what the driver records for a real one (`History.start` and `History.finish` through the searcher: cell,
hash, controller, Ray trial id, the cell's encoding as params, one intermediate value per epoch, values, costs,
node, closing state), with distinct cells of the experiment's space, made-up scores (a fixed function of the cell
plus noise), mostly complete, some pruned, a few failed and the last `running` trials left running as a killed
driver leaves them. `History` reads them back exactly as it reads trials it wrote itself
(tests/experiments/test_big_history.py checks this against trials written through History).

    python -m benchmarks.big_history /tmp/runs --trials 100000
"""
from __future__ import annotations

import argparse
import datetime
import math
import os
import time
from dataclasses import dataclass, replace
from typing import Any, Iterator

import numpy as np
import optuna
from optuna.trial import TrialState

from attnas.experiments.config import ExperimentConfig, load_experiment
from attnas.experiments.dashboard.synthetic import made_up_score
from attnas.experiments.history import COMPLETE, FAILED, PRUNED, RUNNING, History
from attnas.experiments.launch import start_run
from attnas.experiments.optuna_tables import insert_trials
from attnas.experiments.run_folder import RunFolder
from attnas.experiments.trial_params import categorical_params
from attnas.search_space import SearchSpace

QUICKSTART = os.path.join(os.path.dirname(__file__), "..", "experiments", "configs", "quickstart.yaml")
DISTINCT_CELLS = 2_000
BATCH = 5_000  # trials per bulk insert: bounded memory at 100,000 trials
_OPTUNA_STATES = {COMPLETE: TrialState.COMPLETE, PRUNED: TrialState.PRUNED, FAILED: TrialState.FAIL,
                  RUNNING: TrialState.RUNNING}


@dataclass(frozen=True)
class TrialPlan:
    """One made-up trial: what the driver would have recorded for it."""

    state: str
    cell: Any  # a cell of the space
    curve: tuple[float, ...]
    values: dict[str, float]
    controller: str
    node: str


def plan_trials(space: SearchSpace, trials: int, *, epochs: int, seed: int = 0, running: int = 2,
                controller: str = "evolution", distinct: int = DISTINCT_CELLS) -> Iterator[TrialPlan]:
    """`trials` made-up trials: about 80 % complete, 17 % pruned, 3 % failed, then the last `running` left running.
    Their cells are `distinct` distinct ones of the space in a random order, repeated beyond that (sampling a
    cell takes a millisecond; nothing that reads a history relies on cells being distinct)."""
    rng = np.random.default_rng(seed)
    pool: dict[str, Any] = {}
    for _ in range(20 * min(trials, distinct)):  # a small space may hold fewer cells
        if len(pool) == min(trials, distinct):
            break
        cell = space.sample(rng)
        pool.setdefault(space.hash(cell), cell)
    pool = list(pool.values())
    cells = [pool[i % len(pool)] for i in rng.permutation(trials)] if pool else []
    for index, cell in enumerate(cells):
        fate = rng.random()
        state = RUNNING if index >= trials - running else COMPLETE if fate < 0.8 else PRUNED if fate < 0.97 \
            else FAILED
        final = made_up_score(cell, rng)
        done = epochs if state == COMPLETE else 1 + int(rng.integers(max(1, epochs - 1)))
        curve = tuple(final * (1.0 - 0.5 * math.exp(-1.3 * (e + 1))) / (1.0 - 0.5 * math.exp(-1.3 * epochs))
                      for e in range(done))
        nodes = len(cell.nodes)
        values = {"accuracy": curve[-1], "macs": 2.0e8 * (1.0 + cell.width * 0.05 * nodes) * float(
                  rng.uniform(0.95, 1.05)), "params": 1.0e5 * (1 + cell.width * nodes),
                  "latency_ms": 5.0 + 2.0 * nodes, "wall_time_s": 20.0 + 5.0 * nodes}
        yield TrialPlan(state=state, cell=cell, curve=curve if state != FAILED else curve[:1],
                        values=values if state in (COMPLETE, PRUNED) else {}, controller=controller,
                        node=f"10.0.0.{1 + index % 4}/big-history")


class TrialWriter:
    """Turns `TrialPlan`s into the Optuna trials `History` leaves for them (start, reports, finish), as
    `Study.add_trial` takes them; what depends on the cell alone is worked out once per cell."""

    def __init__(self, space: SearchSpace):
        self.space = space
        self._cells: dict[str, tuple] = {}

    def frozen_trial(self, plan: TrialPlan, number: int, *, started: datetime.datetime,
                     reward: float | None) -> optuna.trial.FrozenTrial:
        space = self.space
        cell_hash = space.hash(plan.cell)
        if cell_hash not in self._cells:
            self._cells[cell_hash] = (space.to_data(plan.cell), *categorical_params(
                space.vector_names(), [int(v) for v in space.encode_vector(plan.cell)],
                space.vector_cardinalities(), space.vector_choices()))
        data, params, distributions = self._cells[cell_hash]
        attrs: dict[str, Any] = {"cell": data, "hash": cell_hash, "controller": plan.controller,
                                 "ray_trial_id": f"big{number:06d}", "started_at": started.timestamp()}
        finished = started + datetime.timedelta(seconds=plan.values.get("wall_time_s", 30.0))
        if plan.state != RUNNING:
            attrs.update({key: float(plan.values[key]) for key in ("macs", "params", "latency_ms", "wall_time_s")
                          if key in plan.values})
            attrs["values"] = dict(plan.values)
            if plan.state == FAILED:
                attrs["failure"] = "synthetic failure: out of memory"
            attrs.update(node=plan.node, epochs_done=len(plan.curve), resumed_from_epoch=0,
                         trainable_s=plan.values.get("wall_time_s", 1.0), finished_at=finished.timestamp())
            attrs["closing"] = {"state": plan.state, "value": reward if plan.state == COMPLETE else None}
        # Optuna gives a pruned trial its last reported value
        value = reward if plan.state == COMPLETE else plan.curve[-1] if plan.state == PRUNED else None
        return optuna.trial.FrozenTrial(
            number=number, state=_OPTUNA_STATES[plan.state], value=value, values=None, datetime_start=started,
            datetime_complete=None if plan.state == RUNNING else finished, params=params,
            distributions=distributions, user_attrs=attrs, system_attrs={},
            intermediate_values=dict(enumerate(plan.curve, start=1)), trial_id=number)


def write_big_history(root: str | os.PathLike, *, trials: int = 10_000, name: str = "big",
                      config: ExperimentConfig | str = QUICKSTART, space: str | None = "default", seed: int = 0,
                      running: int = 2) -> RunFolder:
    """A run folder runs/<name>/ under `root` with `trials` trials of the experiment `config` (by default the
    quick-start experiment on the default space, its budget the number of trials), made up as `plan_trials` says."""
    if not isinstance(config, ExperimentConfig):
        config = load_experiment(str(config))
    if space is not None:
        config = replace(config, space=space)
    config = replace(config, budget=replace(config.budget, trials=trials, time=None))
    run = start_run(config, name=name, runs_dir=root)
    history = run.history()
    search_space = SearchSpace.from_yaml(str(run.space_file))
    from attnas.controllers.objective import Objective
    from attnas.experiments.config import evaluator_config

    objective = Objective.from_dict(config.objective)
    history.set_metadata(objective=objective.to_dict())
    epochs = int(evaluator_config(config.evaluator, where=config.source).epochs)
    origin = datetime.datetime(2026, 1, 1, 0, 0, 0)
    writer = TrialWriter(search_space)
    batch: list[optuna.trial.FrozenTrial] = []
    for number, plan in enumerate(plan_trials(search_space, trials, epochs=epochs, seed=seed, running=running,
                                              controller=config.controller_name)):
        reward = objective.reward(plan.values) if plan.state == COMPLETE else None
        batch.append(writer.frozen_trial(plan, number, reward=reward,
                                  started=origin + datetime.timedelta(seconds=10 * number)))
        if len(batch) == BATCH:
            _add(history, batch)
            batch = []
    _add(history, batch)
    return run


def _add(history: History, trials: list[optuna.trial.FrozenTrial]) -> None:
    if trials and not insert_trials(history.storage, history.study_id, trials):
        history.study.add_trials(trials)  # an Optuna or a storage the bulk writer does not know: slower, same trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", help="folder for the run folder")
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--name", default="big")
    args = parser.parse_args()
    started = time.perf_counter()
    run = write_big_history(args.root, trials=args.trials, name=args.name)
    print(f"wrote {args.trials:,} trials to {run.path} in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
