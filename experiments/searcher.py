"""The Ray Tune `Searcher` that lets an attnas controller drive a Tuner, recording every trial in the history."""
from __future__ import annotations

import time
from typing import Any

from ray.tune.search import Searcher

from attnas.controllers import Controller, SpaceExhausted
from attnas.experiments.history import COMPLETE, FAILED, PRUNED, History, TrialRecord
from attnas.search_space.interface import Space

REPORTED_VALUES = ("accuracy", "top5", "loss", "macs", "params", "latency_ms", "wall_time_s")


class ControllerSearcher(Searcher):
    """Ray Tune Searcher around an attnas controller; callbacks are keyed by Ray trial id and safe to call twice."""

    def __init__(self, *, controller: Controller, space: Space, history: History,
                 evaluator: dict, epochs: int, trials: int, deadline: float | None,
                 interrupted: list[TrialRecord], metric: str, publisher: Any | None = None):
        super().__init__(metric=metric, mode="max")
        self.controller = controller
        self.publisher = publisher  # experiments.dashboard.DashboardPublisher: drawings, notes, figures (or None)
        self.space = space
        self.history = history
        self.evaluator = evaluator
        self.epochs = epochs
        self.trials = trials
        self.deadline = deadline
        self.interrupted = list(interrupted)
        self.numbers: dict[str, int] = {}
        self.cells: dict[str, Any] = {}
        self.controller_ids: dict[str, Any] = {}
        self.finished: set[str] = set()
        self.started = 0
        self.errors: dict[str, str] = {}
        # Ray tells the searcher a trial failed before the callbacks hear of the error; this reads the reason
        # from the failed trial itself (set by experiments.progress.SearchProgress).
        self.error_reader: Any = None
        self.names = list(getattr(space, "vector_names", lambda: [])())
        self.cardinalities = list(space.vector_cardinalities())
        self.choices = list(space.vector_choices())

    def suggest(self, trial_id: str):
        if self.interrupted:
            record = self.interrupted.pop(0)
            cell = self.space.from_data(record.cell)
            self._track(trial_id, record.number, cell, record.attrs.get("ray_trial_id", trial_id))
            self.history.set_attrs(record.number, ray_trial_id=trial_id, resumed=True)
            if self.publisher is not None:
                self.publisher.trial_started(record.number)
            return self._config(record.number, cell, record.attrs.get("checkpoint"))
        if self.started >= self.trials or (self.deadline is not None and time.time() >= self.deadline):
            return Searcher.FINISHED
        try:
            cell = self.controller.propose(trial_id)
        except SpaceExhausted:
            return Searcher.FINISHED
        number = self.history.start(
            cell=self.space.to_data(cell), cell_hash=self.space.hash(cell), controller=self.controller.name,
            encoding=[int(v) for v in self.space.encode_vector(cell)], encoding_names=self.names,
            cardinalities=self.cardinalities, choices=self.choices, ray_trial_id=trial_id, started_at=time.time())
        self.started += 1
        self._track(trial_id, number, cell, trial_id)
        if self.publisher is not None:
            self.publisher.trial_started(number)
        return self._config(number, cell, None)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        number = self.numbers.get(trial_id)
        if number is not None and "epoch" in result:
            self.history.report(number, int(result["epoch"]), result.get(self.metric))

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self.finished or trial_id not in self.numbers:
            return
        self.finished.add(trial_id)
        result = result or {}
        # The result a scheduler stops a trial on (ASHA at a rung, or at max_t) reaches only this callback.
        self.on_trial_result(trial_id, result)
        message = self.errors.get(trial_id) or (self.error_reader(trial_id) if error and self.error_reader else None)
        state, reason = classify(result, error=error, epochs=self.epochs, error_message=message)
        values = {k: float(result[k]) for k in REPORTED_VALUES
                  if isinstance(result.get(k), (int, float)) and not isinstance(result.get(k), bool)}
        if state == FAILED:
            values.pop(self.metric, None)
        self.controller.observe(self.controller_ids[trial_id], self.cells[trial_id], values, state)
        self.history.finish(self.numbers[trial_id], state=state, values=values, reason=reason,
                            node=result.get("node"), epochs_done=int(result.get("epoch", 0) or 0),
                            resumed_from_epoch=int(result.get("resumed_from", 0) or 0),
                            trainable_s=float(result.get("trainable_s", 0.0) or 0.0), finished_at=time.time(),
                            **({"skipped_videos": result["skipped_videos"]} if result.get("skipped_videos") else {}),
                            **({"feature_path": result["feature_path"]} if result.get("feature_path") else {}))
        if self.publisher is not None:
            self.publisher.trial_finished(self.numbers[trial_id])

    def save(self, checkpoint_path: str) -> None:
        """Ray's periodic experiment checkpoint: the controller's versioned state dict as JSON."""
        self.controller.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        self.controller.restore(checkpoint_path)

    def __getstate__(self) -> dict:
        # The Tuner pickles its searcher when it starts. attnas resumes from the history, never from Ray's
        # experiment state, so the copy keeps the plain attributes and leaves out the live controller and store.
        return {k: v for k, v in self.__dict__.items()
                if k not in ("controller", "history", "publisher", "error_reader")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, controller=None, history=None, publisher=None, error_reader=None)

    def _track(self, trial_id: str, number: int, cell: Any, controller_id: Any) -> None:
        self.numbers[trial_id] = number
        self.cells[trial_id] = cell
        self.controller_ids[trial_id] = controller_id

    def _config(self, number: int, cell: Any, resume_from: str | None) -> dict:
        return {"number": number, "cell": self.space.to_data(cell), "evaluator": self.evaluator,
                "resume_from": resume_from}



def classify(result: dict, *, error: bool, epochs: int,
             error_message: str | None = None) -> tuple[str, str | None]:
    """A finished Ray trial's attnas state: failed (raised, or the evaluator reported failure), pruned (stopped
    by the scheduler before its last epoch) or complete."""
    if error:
        return FAILED, error_message or "the trial's worker raised or died (details in the run's ray/ folder)"
    if result.get("failed"):
        return FAILED, str(result.get("failure") or "the evaluator reported a failure")
    if int(result.get("epoch", 0) or 0) < epochs:
        return PRUNED, None
    return COMPLETE, None
