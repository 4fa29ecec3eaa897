"""The Ray Tune `Searcher` that lets an attnas controller drive a Tuner, recording every trial in the history."""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from ray.tune.search import Searcher

from attnas.controllers import Controller, SpaceExhausted
from attnas.controllers.objective import Objective
from attnas.experiments.history import COMPLETE, FAILED, PRUNED, RUNNING, History, TrialRecord
from attnas.experiments.results import TRIAL_RESULTS
from attnas.experiments.run_folder import resolve_checkpoint
from attnas.search_space.interface import Space

log = logging.getLogger(__name__)


class ControllerSearcher(Searcher):
    """Ray Tune Searcher around an attnas controller; callbacks are keyed by Ray trial id and safe to call twice.

    A callback that raises (the controller, the history, the dashboard publisher) never leaves its trial running:
    the trial is closed as failed with the reason, and the search goes on; if the history itself cannot be
    written, the search stops and the driver reports `fatal` in one line."""

    def __init__(self, *, controller: Controller, space: Space, history: History,
                 evaluator: dict, epochs: int, trials: int, deadline: float | None,
                 interrupted: list[TrialRecord], objective: Objective, publisher: Any | None = None,
                 run_path: Path | None = None):
        super().__init__(metric=objective.metric, mode="max")
        self.objective = objective
        self.run_path = run_path  # checkpoint paths are recorded relative to it, so a moved run still finds them
        self.fatal: str | None = None
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
        self.restarts: dict[str, list[dict]] = {}  # Ray restarted these trials after their worker or node died
        self.resuming: set[str] = set()  # trials that go on from a checkpoint: their next epoch says from which
        self.resumed_from: dict[str, int] = {}  # that epoch, the one their checkpoint holds
        # Ray tells the searcher a trial failed before the callbacks hear of the error; this reads the reason
        # from the failed trial itself (set by experiments.progress.SearchProgress).
        self.error_reader: Any = None
        self.names = list(getattr(space, "vector_names", lambda: [])())
        self.cardinalities = list(space.vector_cardinalities())
        self.choices = list(space.vector_choices())

    def suggest(self, trial_id: str):
        if self.fatal is not None:
            return Searcher.FINISHED
        try:
            return self._suggest(trial_id)
        except Exception as error:  # the controller or the history: stop the search, say why (driver)
            self.fatal = f"starting a trial failed: {_describe(error)}"
            log.error(self.fatal)
            return Searcher.FINISHED

    def _suggest(self, trial_id: str):
        if self.interrupted:
            record = self.interrupted.pop(0)
            cell = self.space.from_data(record.cell)
            checkpoint = self.checkpoint_path(record.attrs.get("checkpoint"))
            if record.state == RUNNING:  # left running by a driver that was killed: same trial number
                number = record.number
                self.history.set_attrs(number, ray_trial_id=trial_id, resumed=True)
            else:  # closed as interrupted by a driver that stopped: trained again as a new trial, which resumes
                # from the old one's checkpoint, so its curve starts with the old epochs
                number = self._start(trial_id, cell, curve=record.curve, rerun_of=record.number)
            self._track(trial_id, number, cell, record.attrs.get("ray_trial_id", trial_id))
            if checkpoint is not None:
                self.resuming.add(trial_id)
            if self.publisher is not None:
                self.publisher.trial_started(number)
            return self._config(number, cell, checkpoint)
        if self.started >= self.trials or (self.deadline is not None and time.time() >= self.deadline):
            return Searcher.FINISHED
        try:
            cell = self.controller.propose(trial_id)
        except SpaceExhausted:
            return Searcher.FINISHED
        number = self._start(trial_id, cell)
        self.started += 1
        self._track(trial_id, number, cell, trial_id)
        if self.publisher is not None:
            self.publisher.trial_started(number)
        return self._config(number, cell, None)

    def _start(self, trial_id: str, cell: Any, curve: list[float] = (), **attrs: Any) -> int:
        cell_hash = self.space.hash(cell)
        # the drawing's artifact is named in the start's own transaction; the publisher draws it later, off this thread
        drawing = self.publisher.drawing_attrs(cell_hash) if self.publisher is not None else {}
        return self.history.start(
            cell=self.space.to_data(cell), cell_hash=cell_hash, controller=self.controller.name,
            encoding=[int(v) for v in self.space.encode_vector(cell)], encoding_names=self.names,
            cardinalities=self.cardinalities, choices=self.choices, curve=curve, system_attrs=drawing,
            ray_trial_id=trial_id, started_at=time.time(), **attrs)

    def trial_restarted(self, trial_id: str, *, reason: str, node: str | None, epoch: int) -> None:
        """Ray restarts a trial whose worker or node died, from its last checkpoint (`retries` times at most): its
        record lists each restart (the node lost, the last epoch it reported there, why)."""
        number = self.numbers.get(trial_id)
        if number is None or trial_id in self.finished:
            return
        self.restarts.setdefault(trial_id, []).append({"node": node, "epoch": epoch, "reason": reason[:500]})
        self.resuming.add(trial_id)
        try:
            self.history.set_attrs(number, restarts=self.restarts[trial_id])
        except Exception as error:
            self._fail(trial_id, f"recording its restart failed: {_describe(error)}")

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        number = self.numbers.get(trial_id)
        if number is None or trial_id in self.finished or "epoch" not in result:
            return
        try:
            if trial_id in self.resuming:  # its first epoch since it went on from its checkpoint
                self.resuming.discard(trial_id)
                self.resumed_from[trial_id] = int(result["epoch"]) - 1
                self.history.set_attrs(number, resumed_from_epoch=self.resumed_from[trial_id])
            self.history.report(number, int(result["epoch"]), result.get(self.metric))
        except Exception as error:
            self._fail(trial_id, f"recording epoch {result.get('epoch')} failed: {_describe(error)}")

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self.finished or trial_id not in self.numbers:
            return
        self.finished.add(trial_id)
        number = self.numbers[trial_id]
        result = result or {}
        try:
            message = self.errors.get(trial_id) or (self.error_reader(trial_id) if error and self.error_reader
                                                    else None)
            state, reason = classify(result, error=error, epochs=self.epochs, error_message=message)
            values = {k: float(result[k]) for k in TRIAL_RESULTS
                      if isinstance(result.get(k), (int, float)) and not isinstance(result.get(k), bool)}
            if state == FAILED:
                values.pop(self.metric, None)
            elif "epoch" in result:
                # Ray hands a trial's last result (its final epoch, or the one at which the scheduler stopped
                # it) only to this callback: it completes the curve, and is a pruned trial's value.
                self.history.report(number, int(result["epoch"]), result.get(self.metric))
            self.controller.observe(self.controller_ids[trial_id], self.cells[trial_id], values, state)
            self.history.finish(number, state=state, values=values, reason=reason,
                                value=self.objective.reward(values) if state == COMPLETE else None,
                                node=result.get("node"), epochs_done=int(result.get("epoch", 0) or 0),
                                resumed_from_epoch=int(result.get("resumed_from")
                                                       or self.resumed_from.get(trial_id, 0)),
                                trainable_s=float(result.get("trainable_s", 0.0) or 0.0), finished_at=time.time(),
                                **{k: result[k] for k in ("skipped_videos", "feature_path") if result.get(k)})
        except Exception as failure:
            self._fail(trial_id, f"recording the trial failed: {_describe(failure)}")
            return
        self._publish_finished(number)

    def close_open(self, reason: str) -> list[int]:
        """Close every trial this searcher started that is still open as failed and `interrupted` (a later resume
        trains it again from its last checkpoint); the numbers closed."""
        closed = []
        for trial_id, number in self.numbers.items():
            if trial_id not in self.finished:
                self.finished.add(trial_id)
                try:
                    self.history.finish(number, state=FAILED, reason=reason, interrupted=True)
                except Exception as error:  # nothing more can be done here: the history is unwritable
                    self.fatal = self.fatal or f"closing trial {number} failed: {_describe(error)}"
                    continue
                closed.append(number)
        return closed

    def checkpoint_attr(self, path: str | os.PathLike) -> str:
        """How a trial checkpoint's path is recorded: relative to the run folder when inside it."""
        if self.run_path is not None:
            try:
                return str(Path(path).resolve().relative_to(self.run_path.resolve()))
            except ValueError:
                pass
        return str(path)

    def checkpoint_path(self, recorded: str | None) -> str | None:
        """The recorded checkpoint as a path on this machine (relative paths are inside the run folder)."""
        path = resolve_checkpoint(self.run_path, recorded)
        return None if path is None else str(path)

    def _fail(self, trial_id: str, reason: str) -> None:
        """Close a trial whose recording raised as failed with `reason`; stop the search if even that fails."""
        self.finished.add(trial_id)
        number = self.numbers[trial_id]
        log.error("trial %s: %s", number, reason)
        try:
            self.history.finish(number, state=FAILED, reason=reason)
        except Exception as error:
            self.fatal = f"the history cannot be written ({_describe(error)}); trial {number}: {reason}"
            return
        try:
            self.controller.observe(self.controller_ids[trial_id], self.cells[trial_id], {}, FAILED)
        except Exception:  # the controller already rejected this trial once; it stays failed in the history
            pass
        self._publish_finished(number)

    def _publish_finished(self, number: int) -> None:
        if self.publisher is None:
            return
        try:
            self.publisher.trial_finished(number)
        except Exception as error:  # drawings and figures are a view: the trial's record is already complete
            log.warning("trial %s: the dashboard's figures were not updated (%s)", number, _describe(error))

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



def _describe(error: BaseException) -> str:
    text = (str(error).strip().splitlines() or [""])[0][:300]
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


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
