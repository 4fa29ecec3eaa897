"""The driver off the critical path (issue 14): a search writes each trial's record in two transactions on the
driver's thread (its start and its close), and the dashboard's drawings and notes, made on a thread of their own,
are there for every trial when the search returns, even when that thread fails."""
from __future__ import annotations

import optuna
import pytest
from optuna.artifacts import get_all_artifact_meta
from optuna_dashboard import get_note

import attnas
from attnas.experiments.dashboard.drawing import cell_svg
from attnas.experiments.dashboard.publisher import DashboardPublisher
from attnas.experiments.dashboard.store import artifact_store, run_artifact_dir
from attnas.experiments.history import COMPLETE, History
from attnas.experiments.run_folder import open_run
from benchmarks.driver_overhead import WriteCounter

TRIALS = 6


def instant(cell, context):
    """A custom evaluator that does no work: a score from the cell's hash."""
    return {"accuracy": (int(cell.hash[-6:], 16) % 1000) / 1000.0, "macs": 5.0}


def experiment(**changes) -> dict:
    return {"name": "instant", "space": "small", "controller": {"name": "random"},
            "evaluator": {"custom": "tests.experiments.test_driver_writes:instant", "epochs": 1},
            "budget": {"trials": TRIALS}, "concurrency": 2, **changes}


@pytest.mark.slow
def test_a_search_writes_two_transactions_per_trial_on_the_drivers_thread(tmp_path, ray_module, monkeypatch):
    counter = WriteCounter()
    at_first_start = []
    start = History.start

    def counted_start(self, **kwargs):  # what the search writes before its first trial is not per trial
        if not at_first_start:
            at_first_start.append(counter.writes["driver"])
        return start(self, **kwargs)

    monkeypatch.setattr(History, "start", counted_start)
    with counter.counting():
        run = attnas.search(experiment(), runs_dir=tmp_path / "runs")
    assert counter.writes["driver"] - at_first_start[0] == 2 * TRIALS
    trials = run.trials
    assert len(trials) == TRIALS and all(t.state == COMPLETE for t in trials)
    for trial in trials:
        cell = attnas.CellSpec.from_dict(trial.cell)
        expected = (int(cell.hash[-6:], 16) % 1000) / 1000.0
        assert (trial.value, trial.curve) == (expected, [expected])
        assert trial.values == {"accuracy": expected, "macs": 5.0, "wall_time_s": trial.values["wall_time_s"]}
        assert trial.attrs["epochs_done"] == 1 and trial.attrs["ray_trial_id"]
        assert "checkpoint" not in trial.attrs  # the evaluator keeps no files: no empty checkpoint is saved


@pytest.mark.slow
def test_every_trial_has_its_drawing_and_note_when_the_search_returns(tmp_path, ray_module):
    run = attnas.search(experiment(), runs_dir=tmp_path / "runs")
    history = open_run(run.path).history()
    store = artifact_store(run_artifact_dir(open_run(run.path)))
    for trial in history.study.get_trials():
        [meta] = get_all_artifact_meta(trial, storage=history.study._storage)
        spec = attnas.CellSpec.from_dict(trial.user_attrs["cell"])
        with store.open_reader(meta.artifact_id) as reader:
            assert reader.read().decode() == cell_svg(spec, title=f"trial {trial.number}: cell {spec.hash}")
        note = get_note(optuna.trial.Trial(history.study, trial._trial_id))
        assert spec.hash in note and meta.artifact_id in note


@pytest.mark.slow
def test_a_failing_dashboard_never_stops_the_search_nor_loses_a_record(tmp_path, ray_module, monkeypatch, caplog):
    def broken(self, number):
        raise RuntimeError("drawing board on fire")

    monkeypatch.setattr(DashboardPublisher, "write_note", broken)
    monkeypatch.setattr(DashboardPublisher, "_upload_drawing", broken)
    run = attnas.search(experiment(), runs_dir=tmp_path / "runs")
    trials = run.trials
    assert len(trials) == TRIALS and all(t.state == COMPLETE and t.value is not None for t in trials)
    failures = [r for r in caplog.records if "drawing board on fire" in r.getMessage()]
    assert len(failures) == 2 * TRIALS and {r.name for r in failures} == {"attnas.dashboard"}
