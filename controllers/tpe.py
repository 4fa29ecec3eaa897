"""`tpe`: Optuna's TPESampler over the space's fixed-length vector encoding, a strong off-the-shelf baseline.

Each entry of `space.encode_vector` becomes a categorical parameter ("x0", "x1", ...) with
`space.vector_cardinalities()` choices. The controller keeps an in-memory Optuna study, through Optuna's public
API only, holding one trial per observation in observation order, built from the *observed* cell's encoding
(`study.add_trial`):

- complete -> COMPLETE with value = the objective's reward; a trial over a budget also carries Optuna constraints
  (cost / limit - 1 per budgeted cost), which TPE ranks below every feasible trial;
- pruned -> PRUNED, with the reward as its last intermediate value when known;
- failed -> PRUNED with no intermediate value, which TPE ranks as its worst trial (a FAIL trial would be ignored
  by TPE altogether, so it would learn nothing from a crash).

To propose, pending proposals are added as RUNNING trials (TPE's constant liar keeps away from them), a fresh
TPESampler seeded from the controller's per-proposal generator is attached, and `study.ask` draws a vector.
Repair: a vector that `space.decode_vector` rejects (most vectors of attnas's own space describe no valid cell),
or that decodes to a cell already observed or pending, stays RUNNING so the next ask avoids it, and TPE is asked
again, up to `repair_attempts` times; then the proposal falls back to an unseen uniform sample. Finally every
RUNNING trial of the round is told FAIL, which TPE ignores: the study's visible trials are exactly the
observations, in order, so the proposal is a function of the history and the seed (rebuild-from-history holds).
"""
from __future__ import annotations

import contextlib
import warnings
from typing import Any, Iterator

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState, create_trial

from attnas.controllers.base import Controller, Observation, whole_number
from attnas.controllers.objective import COMPLETE, FAILED, Objective
from attnas.search_space.errors import AttnasError, SpecError
from attnas.search_space.interface import Space


class TPEController(Controller):
    """Optuna's TPE over `space.encode_vector` (see the module docstring for the mapping and the repair)."""

    name = "tpe"

    def __init__(self, *, space: Space, seed: int = 0, objective: Objective | dict | None = None,
                 n_startup_trials: int = 10, multivariate: bool = True, repair_attempts: int = 10):
        super().__init__(space=space, seed=seed, objective=objective)
        self.n_startup_trials = whole_number(n_startup_trials, 0, "n_startup_trials")
        if not isinstance(multivariate, bool):
            raise AttnasError(f"controller setting multivariate: expected true or false, got {multivariate!r}")
        self.multivariate = multivariate
        self.repair_attempts = whole_number(repair_attempts, 1, "repair_attempts")
        self._names = [f"x{i}" for i in range(len(space.vector_cardinalities()))]
        self._distributions = {name: CategoricalDistribution(list(range(int(cardinality))))
                               for name, cardinality in zip(self._names, space.vector_cardinalities())}
        self._study: optuna.Study | None = None

    def settings(self) -> dict:
        return {"n_startup_trials": self.n_startup_trials, "multivariate": self.multivariate,
                "repair_attempts": self.repair_attempts}

    def _reset(self) -> None:
        self._study = None

    def _observed(self, observation: Observation) -> None:
        with _quiet():
            self._get_study().add_trial(self._frozen(observation))

    def _propose(self, rng: np.random.Generator) -> Any:
        study = self._get_study()
        with _quiet():
            placeholders = []
            for cell in self._pending.values():
                study.add_trial(create_trial(state=TrialState.RUNNING, params=self._params(cell),
                                             distributions=self._distributions))
                placeholders.append(study.trials[-1].number)
            study.sampler = optuna.samplers.TPESampler(
                seed=int(rng.integers(2**31)), n_startup_trials=self.n_startup_trials,
                multivariate=self.multivariate, constant_liar=True)
            try:
                for _ in range(self.repair_attempts):
                    trial = study.ask(self._distributions)
                    placeholders.append(trial.number)
                    params = trial.params  # a copy on every access: read it once
                    try:
                        cell = self.space.decode_vector([params[name] for name in self._names])
                    except SpecError:
                        continue
                    if self.is_new(cell):
                        return cell
                return self.random_unseen(rng)
            finally:
                for number in placeholders:
                    study.tell(number, state=TrialState.FAIL)

    def _get_study(self) -> optuna.Study:
        if self._study is None:
            with _quiet():
                self._study = optuna.create_study(direction="maximize",
                                                  sampler=optuna.samplers.RandomSampler(seed=self.seed))
        return self._study

    def _params(self, cell: Any) -> dict[str, int]:
        return {name: int(v) for name, v in zip(self._names, self.space.encode_vector(cell))}

    def _frozen(self, observation: Observation) -> FrozenTrial:
        params = self._params(observation.cell)
        reward = None if observation.state == FAILED else self.objective.reward(observation.values)
        constraints = {name: observation.values[name] / limit - 1.0
                       for name, limit in self.objective.budget.items() if name in observation.values}
        if observation.state == COMPLETE and reward is not None:
            return create_trial(state=TrialState.COMPLETE, value=reward, params=params,
                                distributions=self._distributions, constraints=constraints or None)
        intermediate = {0: reward} if reward is not None else None
        return create_trial(state=TrialState.PRUNED, params=params, distributions=self._distributions,
                            intermediate_values=intermediate,
                            constraints=constraints if observation.state != FAILED and constraints else None)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence Optuna's per-trial log lines and experimental-feature warnings around our own calls only."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(verbosity)
