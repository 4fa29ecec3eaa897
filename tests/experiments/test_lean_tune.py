"""What a search hands Ray Tune to keep the driver's work per trial small (issue 14): Tune writes no per-trial
result files of its own (attnas's history is the record) but still the TensorBoard curves, saves its experiment
state rarely, and keeps every checkpoint while attnas deletes all but each trial's last two; every trial's
checkpoint and history are still there."""
from __future__ import annotations

import os

import pytest
import yaml

from attnas.experiments.cli import main
from attnas.experiments.history import COMPLETE
from attnas.experiments.ray_session import EXPERIMENT_STATE_PERIOD_S, lean_tune
from attnas.experiments.run_folder import open_run, resolve_checkpoint
from tests.experiments.test_dashboard_search import scalars

TUNE_VARIABLES = ("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "TUNE_GLOBAL_CHECKPOINT_S")


def test_lean_tune_sets_rays_documented_variables_and_keeps_what_the_user_set(monkeypatch):
    from ray.tune.logger import TBXLoggerCallback

    for name in TUNE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    callbacks = lean_tune()
    assert os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] == "1"
    assert os.environ["TUNE_GLOBAL_CHECKPOINT_S"] == str(EXPERIMENT_STATE_PERIOD_S) == "600"
    assert [type(c) for c in callbacks] == [TBXLoggerCallback]
    monkeypatch.setenv("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "0")
    monkeypatch.setenv("TUNE_GLOBAL_CHECKPOINT_S", "auto")
    lean_tune()
    assert (os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"], os.environ["TUNE_GLOBAL_CHECKPOINT_S"]) == ("0", "auto")


@pytest.mark.slow
def test_a_search_leaves_no_tune_result_files_but_its_curves_checkpoints_and_history(tmp_path, monkeypatch,
                                                                                    ray_local):
    for name in TUNE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    experiment = {"name": "lean", "space": "small", "controller": {"name": "random"},
                  "evaluator": {"kind": "simulated", "epochs": 3, "seed": 3, "costs": False},
                  "budget": {"trials": 4}, "concurrency": 2, "early_stopping": {"scheduler": "none"}}
    path = tmp_path / "lean.yaml"
    path.write_text(yaml.safe_dump(experiment))
    assert main(["search", str(path), "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 0
    run = open_run(tmp_path / "runs" / "lean")
    records = run.history().trials()
    assert len(records) == 4 and {r.state for r in records} == {COMPLETE}
    folders = {int(p.name.split("-")[1]): p for p in run.ray_dir.glob("tune-*/trial-*")}
    assert sorted(folders) == sorted(r.number for r in records)
    for record in records:
        folder = folders[record.number]
        written = {p.name for p in folder.iterdir()}
        assert not written & {"result.json", "progress.csv", "params.json", "params.pkl"}, written
        [events] = folder.glob("events.out.*")
        assert [v for _, v in scalars(str(events), "ray/tune/accuracy")] == pytest.approx(record.curve, abs=1e-6)
        assert len(record.curve) == 3
        checkpoint = resolve_checkpoint(run.path, record.attrs["checkpoint"])
        assert checkpoint.parent == folder and (checkpoint / "simulated_epoch.txt").read_text() == "3"
        # the last two checkpoints are kept (a killed driver resumes from the one before the last), no more
        kept = sorted(folder.glob("checkpoint_*"))
        assert [(p / "simulated_epoch.txt").read_text() for p in kept] == ["2", "3"] and kept[-1] == checkpoint
    # Tune's experiment state is still saved when the search ends (Tuner.restore could read it)
    assert len(list(run.ray_dir.glob("tune-*/experiment_state-*.json"))) == 1
