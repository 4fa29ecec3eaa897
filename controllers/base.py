"""`Controller`: the small abstract base every search strategy implements (Optuna's BaseSampler in spirit).

A controller proposes cells of a `search_space.Space` and learns from finished trials. It sees cells only through
the `Space` interface, never imports torch, and keeps no state that cannot be rebuilt from its history.
"""
from __future__ import annotations

import abc
import inspect
import json
import os
import tempfile
from dataclasses import dataclass
from typing import Any, ClassVar, Iterable, Mapping, Union

import numpy as np

from attnas.controllers.objective import COMPLETE, Objective, check_state
from attnas.search_space.errors import AttnasError
from attnas.search_space.interface import Space
from attnas.search_space.schema import unknown_key

TrialId = Union[str, int]
STATE_FORMAT = "attnas.controller"
STATE_VERSION = 1
# How many uniform draws `random_unseen` makes before it concludes that no unseen cell is left.
UNSEEN_DRAWS = 5000


class SpaceExhausted(AttnasError):
    """Every cell of the space is already observed or pending: there is nothing new to propose."""


@dataclass(frozen=True)
class Observation:
    """One finished trial as a controller knows it: which cell, what it measured, how it ended."""

    trial_id: TrialId
    cell: Any
    values: Mapping[str, float]
    state: str = COMPLETE


class Controller(abc.ABC):
    """Proposes cells of a search space and learns from finished trials.

    Call order (one controller per search; any number of workers):

    1. ``controller = create_controller(name, space=space, seed=seed, objective=objective, **settings)``, or
       ``Cls.from_history(space, observations, seed=..., objective=..., **settings)`` to resume a search.
    2. ``cell = controller.propose(trial_id)`` for each new trial; the cell is *pending* until observed. Proposals
       never repeat a pending or observed cell (by `space.hash`); when no unseen cell is left, `propose` raises
       `SpaceExhausted`. Asking again for the same trial id returns the same cell.
    3. ``controller.observe(trial_id, cell, values, state)`` when the trial ends, with state "complete", "failed"
       or "pruned" and `values` its metrics (the objective's metric and any budgeted costs). Trials may finish in
       any order, and trials the controller did not propose may be observed too. Observing a trial id a second
       time does nothing (Ray Tune may report a trial twice): the first report stands.
    4. ``controller.state_dict()`` / ``load_state_dict(state)`` (or ``save(path)`` / ``restore(path)``) at any
       point between calls: a versioned, JSON-serialisable dict of the seed, settings, objective, observations
       and pending proposals.

    Determinism: every proposal draws from a generator seeded by (seed, number of observations, number of pending
    trials), and subclasses derive all model state from the observations in order. So equal seeds and equal call
    sequences give equal proposals, and a controller rebuilt with `from_history` (or `load_state_dict`) proposes
    exactly what the original would have proposed next.

    Subclasses implement `_propose(rng)` (return a cell for which `is_new` holds) and may override `_observed`
    (update a model with one observation), `_reset` (drop such model state) and `settings` (their constructor
    keywords, for the state dict).
    """

    #: the registry name, recorded in state dicts
    name: ClassVar[str] = "controller"

    def __init__(self, *, space: Space, seed: int = 0, objective: Objective | Mapping | None = None):
        if not isinstance(space, Space):
            raise AttnasError(f"controller {self.name!r}: space must be a search_space.Space, got "
                              f"{type(space).__name__}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise AttnasError(f"controller {self.name!r}: seed must be a whole number >= 0, got {seed!r}")
        self.space = space
        self.seed = int(seed)
        self.objective = Objective.from_dict(objective)
        self._size = space.size()
        self._observations: list[Observation] = []
        self._observed_ids: dict[TrialId, int] = {}
        self._observed_hashes: set[str] = set()
        self._pending: dict[TrialId, Any] = {}
        self._pending_hashes: dict[str, TrialId] = {}

    # ------------------------------------------------------------------------------------------------ public
    def settings(self) -> dict:
        """The keyword settings this controller was built with, besides space, seed and objective."""
        return {}

    @property
    def pending(self) -> dict[TrialId, Any]:
        """Proposed trials not yet observed: trial id -> cell (a copy)."""
        return dict(self._pending)

    @property
    def observations(self) -> tuple[Observation, ...]:
        """Every observed trial, in the order observed."""
        return tuple(self._observations)

    def propose(self, trial_id: TrialId) -> Any:
        """The cell to evaluate as trial `trial_id` (see the class docstring for the guarantees)."""
        _check_trial_id(trial_id)
        if trial_id in self._pending:
            return self._pending[trial_id]
        if trial_id in self._observed_ids:
            return self._observations[self._observed_ids[trial_id]].cell
        used = len(self._observed_hashes | self._pending_hashes.keys())
        if self._size is not None and used >= self._size:
            raise SpaceExhausted(f"space {self.space.name!r} is exhausted: all {self._size} cells are observed "
                                 f"or pending")
        cell = self._propose(self._rng())
        digest = self.space.hash(cell)
        if not self.is_new(cell) or not self.space.contains(cell):
            raise RuntimeError(f"controller {self.name!r} proposed cell {digest}, which is not new or not in "
                               f"the space: a bug in the controller")
        self._pending[trial_id] = cell
        self._pending_hashes[digest] = trial_id
        return cell

    def observe(self, trial_id: TrialId, cell: Any, values: Mapping[str, float], state: str = COMPLETE) -> None:
        """Record a finished trial (a second report of the same trial id is ignored)."""
        _check_trial_id(trial_id)
        if trial_id in self._observed_ids:
            return
        where = f"trial {trial_id!r}"
        state = check_state(state, where=where)
        values = _clean_values(values, where=where)
        self.objective.check_values(values, state, where=where)
        if not self.space.contains(cell):
            raise AttnasError(f"{where}: its cell is not in search space {self.space.name!r}")
        proposed = self._pending.pop(trial_id, None)
        if proposed is not None:
            self._pending_hashes.pop(self.space.hash(proposed), None)
        observation = Observation(trial_id=trial_id, cell=cell, values=values, state=state)
        self._observed_ids[trial_id] = len(self._observations)
        self._observations.append(observation)
        self._observed_hashes.add(self.space.hash(cell))
        self._observed(observation)

    def best(self) -> Observation | None:
        """The best observation under the objective's ranking (the earliest among equals); None before any."""
        ranked = self.ranked()
        return ranked[0] if ranked else None

    def ranked(self) -> list[Observation]:
        """Observations best first, by `Objective.rank`; ties keep observation order."""
        return sorted(self._observations, key=lambda o: self.objective.rank(o.values, o.state), reverse=True)

    def is_new(self, cell: Any) -> bool:
        """Whether `cell` is neither observed nor pending (by hash)."""
        digest = self.space.hash(cell)
        return digest not in self._observed_hashes and digest not in self._pending_hashes

    def random_unseen(self, rng: np.random.Generator, *, draws: int = UNSEEN_DRAWS) -> Any:
        """A uniform sample of the space among cells that are neither observed nor pending."""
        for _ in range(draws):
            cell = self.space.sample(rng)
            if self.is_new(cell):
                return cell
        raise SpaceExhausted(f"space {self.space.name!r} looks exhausted: {draws} uniform draws found no cell "
                             f"that is not already observed or pending")

    # ----------------------------------------------------------------------------------------- persistence
    def state_dict(self) -> dict:
        """Everything needed to continue this search, as plain JSON-serialisable data (versioned)."""
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "controller": self.name,
            "space": self.space.name,
            "seed": self.seed,
            "objective": self.objective.to_dict(),
            "settings": self.settings(),
            "observations": [{"trial_id": o.trial_id, "cell": self.space.to_data(o.cell), "values": dict(o.values),
                              "state": o.state} for o in self._observations],
            "pending": [{"trial_id": t, "cell": self.space.to_data(c)} for t, c in self._pending.items()],
        }

    def load_state_dict(self, state: Mapping) -> None:
        """Replace this controller's history with the one in `state` (saved by a controller of the same kind,
        space, seed, objective and settings; anything else raises AttnasError naming the mismatch)."""
        if not isinstance(state, Mapping) or state.get("format") != STATE_FORMAT:
            raise AttnasError(f"controller state: expected a mapping with format {STATE_FORMAT!r}")
        if state.get("version") != STATE_VERSION:
            raise AttnasError(f"controller state: version {state.get('version')!r} is not supported; expected "
                              f"{STATE_VERSION}")
        expected = {"controller": self.name, "space": self.space.name, "seed": self.seed,
                    "objective": self.objective.to_dict(), "settings": _jsonable(self.settings())}
        for key, value in expected.items():
            if _jsonable(state.get(key)) != value:
                raise AttnasError(f"controller state: {key} is {state.get(key)!r} but this controller has "
                                  f"{value!r}")
        observations = [_observation(self.space, item, where=f"controller state: observations[{i}]")
                        for i, item in enumerate(state.get("observations", []))]
        pending = [(item["trial_id"], self.space.from_data(item["cell"])) for item in state.get("pending", [])]
        self._clear()
        for observation in observations:
            self.observe(observation.trial_id, observation.cell, observation.values, observation.state)
        for trial_id, cell in pending:
            self.hold_pending(trial_id, cell)

    def hold_pending(self, trial_id: TrialId, cell: Any) -> None:
        """Take `cell` as proposed for `trial_id` and not yet observed (a resumed search's trials that are trained
        again): what `load_state_dict` does with a state's pending proposals, without reloading the rest."""
        self._pending[trial_id] = cell
        self._pending_hashes[self.space.hash(cell)] = trial_id

    def save(self, path: str | os.PathLike) -> None:
        """Write `state_dict()` as JSON to `path` atomically (a temporary file, then os.replace)."""
        path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".controller.", suffix=".json")
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(self.state_dict(), handle)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def restore(self, path: str | os.PathLike) -> None:
        """Load a state written by `save`."""
        try:
            with open(path) as handle:
                state = json.load(handle)
        except (OSError, json.JSONDecodeError) as error:
            raise AttnasError(f"{os.fspath(path)}: cannot read a controller state: {error}") from None
        self.load_state_dict(state)

    @classmethod
    def from_history(cls, space: Space, observations: Iterable[Observation | Mapping], **settings: Any
                     ) -> "Controller":
        """Rebuild a controller from past observations (how a search resumes): `settings` are the constructor's
        keywords (seed, objective, ...); observations are `Observation`s, or mappings with trial_id, cell (as
        `space.to_data` gives it), values and state, in the order they were observed."""
        check_settings(cls, settings)
        controller = cls(space=space, **settings)
        for i, item in enumerate(observations):
            observation = item if isinstance(item, Observation) else _observation(
                space, item, where=f"history[{i}]")
            controller.observe(observation.trial_id, observation.cell, observation.values, observation.state)
        return controller

    # --------------------------------------------------------------------------------------- for subclasses
    @abc.abstractmethod
    def _propose(self, rng: np.random.Generator) -> Any:
        """A new cell (`is_new` holds) of the space, drawing randomness from `rng` only."""

    def _observed(self, observation: Observation) -> None:
        """Update model state with one observation (called in observation order)."""

    def _reset(self) -> None:
        """Drop all model state derived from observations (before a history is loaded)."""

    # ---------------------------------------------------------------------------------------------- private
    def _rng(self) -> np.random.Generator:
        # (observations, pending) strictly increases along any run, so each proposal gets fresh randomness, and
        # a rebuilt controller in the same state draws exactly what the original would.
        return np.random.default_rng(np.random.SeedSequence([self.seed, len(self._observations),
                                                             len(self._pending)]))

    def _clear(self) -> None:
        self._observations.clear()
        self._observed_ids.clear()
        self._observed_hashes.clear()
        self._pending.clear()
        self._pending_hashes.clear()
        self._reset()


def check_settings(cls: type[Controller], settings: Mapping[str, Any]) -> None:
    """Raise AttnasError naming any key of `settings` that `cls` does not accept, and listing those it does."""
    valid = [p.name for p in inspect.signature(cls.__init__).parameters.values()
             if p.kind is inspect.Parameter.KEYWORD_ONLY]
    for key in settings:
        if key not in valid:
            own = [name for name in valid if name not in ("space", "seed", "objective")]  # set by the experiment
            raise AttnasError(f"{unknown_key(key, own, f'controller.{key}')} (controller {cls.name!r})")


def whole_number(value: Any, minimum: int, name: str) -> int:
    """A controller setting that must be an integer >= minimum; AttnasError naming it otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise AttnasError(f"controller setting {name}: expected a whole number >= {minimum}, got {value!r}")
    return int(value)


def _check_trial_id(trial_id: Any) -> None:
    if isinstance(trial_id, bool) or not isinstance(trial_id, (str, int)):
        raise AttnasError(f"trial id {trial_id!r}: expected a string or an integer")


def _clean_values(values: Any, *, where: str) -> dict[str, float]:
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise AttnasError(f"{where}: values must be a mapping of metric name to number, got {values!r}")
    clean = {}
    for name, value in values.items():
        if not isinstance(name, str) or isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            raise AttnasError(f"{where}: value {name!r} = {value!r} is not a number; values map metric names to "
                              f"numbers")
        clean[name] = float(value)
    return clean


def _observation(space: Space, item: Any, *, where: str) -> Observation:
    if not isinstance(item, Mapping) or not {"trial_id", "cell", "values"} <= item.keys():
        raise AttnasError(f"{where}: expected a mapping with trial_id, cell, values and state")
    try:
        cell = space.from_data(item["cell"])
    except AttnasError as error:
        raise AttnasError(f"{where}.cell: {error}") from None
    return Observation(trial_id=item["trial_id"], cell=cell, values=item["values"],
                       state=item.get("state", COMPLETE))


def _jsonable(value: Any) -> Any:
    """`value` as it reads back from JSON (tuples become lists), for comparing saved and current settings."""
    return json.loads(json.dumps(value)) if value is not None else None
