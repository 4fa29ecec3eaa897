"""What `attnas dashboard` serves of a long history: the best trials and the latest ones, read fast.

optuna-dashboard sends a study's whole trial list to the browser on the first load, about 23 kB of JSON per trial of
the default space (57 categorical params, each with its choices). At 10,000 trials that is 230 MB, read through
Optuna's ORM at about 10 ms a trial: a minute before the page shows anything. `TrialWindow` is the storage the
dashboard reads instead. Its trial list holds at most `limit` trials of each study: the `limit // 10` best complete
trials, then the latest ones (every trial when the study holds no more than `limit`). The window is fixed when it is
first read, and trials that start later are added at its end, so the list only grows, as optuna-dashboard's
incremental refresh (`?after=N`) expects. Finished trials are read once and kept; each refresh reads only the
unfinished and new ones, by one query per table (`optuna_tables.frozen_trials`). Everything else is the run's
storage itself.
"""
from __future__ import annotations

import copy
import math
import threading
from dataclasses import dataclass, field
from typing import Any, Container

from optuna.storages import BaseStorage
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from attnas.experiments.optuna_tables import best_numbers, count_states, frozen_trials

DEFAULT_LIMIT = 1_000  # trials served per study: about 23 MB of JSON for the default space


@dataclass
class _Window:
    best: list[int]  # the best trials' numbers, all below `first_latest`
    first_latest: int  # the number of the first of the latest trials
    total: int  # trials in the study when the window was fixed
    seen: int  # the highest trial number read so far (at first: none of the latest)
    finished: dict[int, FrozenTrial] = field(default_factory=dict)  # read once: finished trials never change

    @property
    def shown(self) -> int:
        return len(self.best) + self.total - self.first_latest


class TrialWindow(BaseStorage):
    """`storage` with each study's trial list cut to a window of at most `limit` trials (None: every trial), read
    fast; every other call goes to `storage`."""

    def __init__(self, storage: BaseStorage, limit: int | None = DEFAULT_LIMIT):
        self.storage = storage
        self.limit = limit
        self._windows: dict[int, _Window] = {}
        self._lock = threading.Lock()  # the dashboard serves requests from several threads

    def window(self, study_id: int) -> _Window:
        """The study's window, fixed on first use."""
        with self._lock:
            if study_id not in self._windows:
                self._windows[study_id] = self._fix_window(study_id)
            return self._windows[study_id]

    def _fix_window(self, study_id: int) -> _Window:
        counts = count_states(self.storage, study_id)
        total = sum(counts.values()) if counts is not None else len(self.storage.get_all_trials(study_id, False))
        if self.limit is None or total <= self.limit:
            return _Window(best=[], first_latest=0, total=total, seen=-1)
        maximize = self.storage.get_study_directions(study_id)[0] == StudyDirection.MAXIMIZE
        first_latest = total - (self.limit - self.limit // 10)
        best = best_numbers(self.storage, study_id, self.limit // 10, maximize=maximize)
        if best is None:
            complete = [t for t in self.storage.get_all_trials(study_id, False, states=(TrialState.COMPLETE,))
                        if t.value is not None and math.isfinite(t.value)]
            complete.sort(key=lambda t: (-t.value if maximize else t.value, t.number))
            best = [t.number for t in complete[:self.limit // 10]]
        return _Window(best=sorted(n for n in best if n < first_latest), first_latest=first_latest, total=total,
                       seen=first_latest - 1)

    # ------------------------------------------------------------------------------------------ the trial list
    def get_all_trials(self, study_id: int, deepcopy: bool = True,
                       states: Container[Any] | None = None) -> list[FrozenTrial]:
        window = self.window(study_id)
        with self._lock:
            seen = window.seen
            wanted = [n for n in (*window.best, *range(window.first_latest, seen + 1)) if n not in window.finished]
        fresh = frozen_trials(self.storage, study_id, numbers=wanted, number_above=seen)
        if fresh is None:  # an Optuna version or storage the fast reader does not know
            fresh = [t for t in self.storage.get_all_trials(study_id, deepcopy=False)
                     if t.number in wanted or t.number > seen]
        with self._lock:
            for trial in fresh:
                if trial.state.is_finished():
                    window.finished[trial.number] = trial
            window.seen = max([seen, *(t.number for t in fresh)])
            current = {**window.finished, **{t.number: t for t in fresh}}
        trials = [current[n] for n in sorted(current)]
        if states is not None:
            trials = [t for t in trials if t.state in states]
        return copy.deepcopy(trials) if deepcopy else trials

    # ------------------------------------------------------------------------- everything else: the storage
    def __getattr__(self, name: str) -> Any:
        return getattr(self.storage, name)


def _delegate(name: str):
    def method(self, *args, **kwargs):
        return getattr(self.storage, name)(*args, **kwargs)

    method.__name__ = name
    return method


# Every other method of the storage interface, abstract or not, is the run's storage's own (its `get_best_trial`
# is one query, where the base class's would read every trial).
for _name in [n for n in dir(BaseStorage) if not n.startswith("_") and n != "get_all_trials"]:
    setattr(TrialWindow, _name, _delegate(_name))
TrialWindow.__abstractmethods__ = frozenset()
