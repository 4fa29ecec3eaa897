"""Keeps what optuna-dashboard shows of a search current while it runs: the driver calls `trial_started` when a
trial is recorded (its cell's drawing is stored as an SVG artifact) and `trial_finished` when it is closed (its
markdown note is written; attnas's figures are refreshed at most every `min_interval_s` seconds, and at most a tenth
of the time), then `finish` once at the end of the search (a last refresh). The driver runs all of this on a thread
of its own (`background.py`); a trial that finishes before its drawing is made still gets it, because the drawing's
artifact is named in the trial's start (`drawing_attrs`) and only its file is written later.

Artifacts live in the run folder (runs/<name>/artifacts, see `store.py`); notes and figures live in the study.
The dashboard is an addition to the search, never a reason for it to stop: an error here is logged, remembered in
`errors`, and the search goes on.
"""
from __future__ import annotations

import io
import json
import logging
import os
import tempfile
import time
import uuid
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import optuna
from optuna.artifacts import ArtifactMeta, FileSystemArtifactStore, upload_artifact
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna_dashboard import save_note, save_plotly_graph_object

from attnas.experiments.dashboard.data import load_points, load_references, point_from_trial
from attnas.experiments.dashboard.drawing import cell_svg
from attnas.experiments.dashboard.figures import build_figures
from attnas.experiments.dashboard.notes import study_note, trial_note
from attnas.experiments.dashboard.store import artifact_store
from attnas.experiments.history import History

logger = logging.getLogger("attnas.dashboard")
DRAWING_PREFIX = "cell-"
_ARTIFACT_KEY = "artifacts:"


class DashboardPublisher:
    """Writes each trial's drawing and note and attnas's figures into a run's study (call order: `trial_started`
    then `trial_finished` per trial, `refresh` any time, `finish` at the end)."""

    def __init__(self, *, history: History, artifact_dir: str | os.PathLike, run_path: str | None = None,
                 min_interval_s: float = 30.0, clock: Callable[[], float] = time.monotonic):
        self.history = history
        self.study = history.study
        self.store: FileSystemArtifactStore = artifact_store(artifact_dir)
        self.min_interval_s = min_interval_s
        self.clock = clock
        self.last_refresh: float | None = None
        self.pending = 0  # trials finished since the last refresh
        self.refreshes = 0
        self.refresh_seconds = 0.0  # how long the last refresh took
        self.errors: list[str] = []
        self._guard("study note", lambda: save_note(self.study, study_note(history.metadata, run_path=run_path)))
        self._guard("objective name", self._name_objective)

    @classmethod
    def for_run(cls, run, history: History, **kwargs) -> "DashboardPublisher":
        """The publisher of a run folder (`experiments.run_folder.RunFolder`) whose history is `history`."""
        from attnas.experiments.dashboard.store import run_artifact_dir

        return cls(history=history, artifact_dir=run_artifact_dir(run), run_path=str(run.path), **kwargs)

    # ------------------------------------------------------------------------------------- driver hooks
    @staticmethod
    def drawing_attrs(cell_hash: str) -> dict[str, Any]:
        """The system attribute naming a trial's drawing artifact, for the trial's start to hold (cheap: no drawing);
        `trial_started` writes the drawing's file under that artifact id. Optuna's `upload_artifact` layout."""
        meta = ArtifactMeta(artifact_id=str(uuid.uuid4()), filename=f"{DRAWING_PREFIX}{cell_hash}.svg",
                            mimetype="image/svg+xml", encoding=None)
        return {_ARTIFACT_KEY + meta.artifact_id: json.dumps(asdict(meta))}

    def trial_started(self, number: int) -> None:
        """Store the drawing of trial `number`'s cell (once; a resumed trial keeps its drawing)."""
        self._guard(f"drawing of trial {number}", lambda: self._upload_drawing(number))

    def trial_finished(self, number: int) -> None:
        """Write trial `number`'s note, and refresh the figures when the last refresh is old enough."""
        self.write_note(number)
        self.refresh_if_due()

    def write_note(self, number: int) -> None:
        """Write trial `number`'s note; the figures then have a trial to catch up with (`refresh_if_due`)."""
        self._guard(f"note of trial {number}", lambda: self._write_note(number))
        self.pending += 1

    def refresh_if_due(self) -> None:
        """Refresh the figures when a trial finished since the last refresh and that refresh is old enough."""
        # On a long history a refresh takes seconds: wait at least ten times its last duration, so that it never
        # takes more than a tenth of the time.
        interval = max(self.min_interval_s, 10 * self.refresh_seconds)
        if self.pending and (self.last_refresh is None or self.clock() - self.last_refresh >= interval):
            self.refresh()

    def finish(self) -> None:
        """The search is over: one last refresh if any trial finished since the previous one."""
        if self.pending or self.last_refresh is None:
            self.refresh()

    def refresh(self) -> None:
        """Rebuild attnas's figures from the whole history and save them into the study."""
        started = time.perf_counter()
        self._guard("figures", self._save_figures)
        self.refresh_seconds = time.perf_counter() - started
        self.last_refresh = self.clock()
        self.pending = 0

    # --------------------------------------------------------------------------------------- the work
    def _frozen(self, number: int) -> optuna.trial.FrozenTrial:
        storage = self.history.storage
        return storage.get_trial(storage.get_trial_id_from_study_id_trial_number(self.history.study_id, number))

    def _upload_drawing(self, number: int) -> None:
        trial = self._frozen(number)
        cell = trial.user_attrs.get("cell")
        cell_hash = trial.user_attrs.get("hash", "cell")
        named = drawing_id(trial)
        if named is not None:  # named by the trial's start (`drawing_attrs`): its file, unless already there
            if not self._stored(named):
                svg = cell_svg(cell, title=f"trial {number}: cell {cell_hash}")
                self.store.write(named, io.BytesIO(svg.encode()))
            return
        if trial.state.is_finished():  # a trial started without a name for its drawing can no longer take one
            return
        with tempfile.TemporaryDirectory(prefix="attnas-drawing-") as folder:
            path = Path(folder) / f"{DRAWING_PREFIX}{cell_hash}.svg"
            path.write_text(cell_svg(cell, title=f"trial {number}: cell {cell_hash}"))
            upload_artifact(artifact_store=self.store, file_path=str(path), study_or_trial=trial,
                            storage=self.history.storage, mimetype="image/svg+xml")

    def _stored(self, artifact_id: str) -> bool:
        try:
            with self.store.open_reader(artifact_id):
                return True
        except ArtifactNotFound:
            return False

    def _write_note(self, number: int) -> None:
        trial = self._frozen(number)
        artifact_id = drawing_id(trial)
        # The dashboard serves a trial's artifacts at this path; the note shows the drawing full size from it.
        url = None if artifact_id is None else f"/artifacts/{self.history.study_id}/{trial._trial_id}/{artifact_id}"
        note = trial_note(point_from_trial(trial), reason=trial.user_attrs.get("failure"), drawing_url=url)
        save_note(optuna.trial.Trial(self.study, trial._trial_id), note)

    def _name_objective(self) -> None:
        with warnings.catch_warnings():  # experimental in Optuna; the dashboard labels the objective with it
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.study.set_metric_names([self.history.metric])

    def _save_figures(self) -> None:
        figures = build_figures(load_points(self.study), load_references(self.history))
        for figure_id, figure in figures.items():
            save_plotly_graph_object(self.study, figure, graph_object_id=figure_id)
        self.refreshes += 1

    def _guard(self, what: str, work: Callable[[], None]) -> None:
        try:
            work()
        except Exception as error:  # a dashboard problem must never stop a search that may run for days
            self.errors.append(f"{what}: {type(error).__name__}: {error}")
            logger.warning("attnas dashboard: could not write the %s: %s", what, error, exc_info=True)


def drawing_id(trial: optuna.trial.FrozenTrial) -> str | None:
    """The artifact id of the trial's cell drawing, or None when it has none."""
    for key, value in trial.system_attrs.items():
        if key.startswith(_ARTIFACT_KEY) and value:
            meta = json.loads(value) if isinstance(value, str) else value
            if isinstance(meta, dict) and str(meta.get("filename", "")).startswith(DRAWING_PREFIX):
                return str(meta["artifact_id"])
    return None


def has_drawing(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether the trial already holds its cell's drawing as an artifact."""
    return drawing_id(trial) is not None
